"""Training boxes made to look like deposited maps: post-processing and reconstruction noise.

A simulated map is a blurred image of the atoms. A deposited map at 5-10 A is not: it was
sharpened with a negative B-factor, low-passed with a soft edge at its FSC resolution, and
carries reconstruction noise that the sharpening amplified (RELION's and cryoSPARC's
post-processing, and most depositions, do exactly this). :func:`deposited_like` does the
same to a normalised 1 A training box, in Fourier space, with parameters drawn from
:class:`Realism`'s ranges, then normalises the result as every box and map is
(:func:`cryosse.density.normalise_density`). Depositors' masks (exact zeros) are kept
where the box had them, with probability ``keep_mask``.

The trainer applies it to a pair's whole box before the window is cut
(:class:`cryosse.patches.PatchSampler`), on a share ``probability`` of the draws.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import fft

from cryosse.density import normalise_density

#: a box whose exact zeros are at least this share of its voxels was masked by its depositor
MASKED_SHARE = 0.3


@dataclass(frozen=True)
class Realism:
    """The ``train.realism`` config section: ranges ``[low, high]`` drawn uniformly."""

    probability: float = 0.0
    sharpen_b: tuple[float, float] = (-150.0, 0.0)  # A^2 applied as exp(-B s^2 / 4): < 0 sharpens
    cutoff: tuple[float, float] = (4.5, 9.0)  # A: the soft low-pass at the "FSC resolution"
    noise: tuple[float, float] = (0.0, 0.6)  # noise sd / signal sd, added before sharpening
    noise_b: tuple[float, float] = (0.0, 200.0)  # A^2: how smooth (coloured) the noise is
    keep_mask: float = 0.7

    @classmethod
    def from_mapping(cls, cfg: dict[str, Any] | None) -> Realism:
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"train.realism: unknown key(s) {unknown}; known: {sorted(known)}")
        out = {
            k: tuple(float(x) for x in v) if isinstance(v, list | tuple) else float(v) for k, v in cfg.items()
        }
        r = cls(**out)
        if not 0.0 <= r.probability <= 1.0 or not 0.0 <= r.keep_mask <= 1.0:
            raise ValueError("train.realism: probability and keep_mask must lie in [0, 1]")
        for name in ("sharpen_b", "cutoff", "noise", "noise_b"):
            lo, hi = getattr(r, name)
            if not lo <= hi:
                raise ValueError(f"train.realism.{name}: [{lo}, {hi}] is not a range [low, high]")
        if r.cutoff[0] <= 2.0 or r.noise[0] < 0:
            raise ValueError("train.realism: cutoff must be over 2 A (the 1 A grid's Nyquist), noise >= 0")
        return r


def frequency_squared(shape: tuple[int, ...]) -> np.ndarray:
    """|s|^2 in 1/A^2 on the rfftn grid of a 1 A box of ``shape``."""
    fz, fy = (np.fft.fftfreq(n).astype(np.float32) for n in shape[:2])
    fx = np.fft.rfftfreq(shape[2]).astype(np.float32)
    return fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2


def soft_lowpass(s: np.ndarray, cutoff: float, width: float = 0.1) -> np.ndarray:
    """1 below (1 - width/2)/cutoff, 0 above (1 + width/2)/cutoff, a raised cosine between."""
    lo, hi = (1 - width / 2) / cutoff, (1 + width / 2) / cutoff
    t = np.clip((s - lo) / (hi - lo), 0.0, 1.0)
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def postprocess(
    box: np.ndarray, rng: np.random.Generator, b: float, cutoff: float, noise: float, noise_b: float
) -> np.ndarray:
    """``box`` (solvent at 0) plus coloured noise, sharpened by ``b`` and low-passed at ``cutoff``."""
    s2 = frequency_squared(box.shape)
    spec = fft.rfftn(box, workers=1)
    if noise > 0:
        n = fft.rfftn(rng.standard_normal(box.shape, dtype=np.float32), workers=1)
        n *= np.exp(-noise_b * s2 / 4).astype(np.float32)
        n_real = fft.irfftn(n, box.shape, workers=1)
        scale = noise * float(box.std()) / max(float(n_real.std()), 1e-12)
        spec += n * np.float32(scale)
    spec *= (np.exp(np.minimum(-b * s2 / 4, 30.0)) * soft_lowpass(np.sqrt(s2), cutoff)).astype(np.float32)
    return fft.irfftn(spec, box.shape, workers=1).astype(np.float32)


def deposited_like(density: np.ndarray, rng: np.random.Generator, r: Realism) -> np.ndarray:
    """A normalised box made to look deposited (see the module's docstring); normalised again."""
    box = np.asarray(density, np.float32)
    solvent = float(box.min())
    x = box - solvent
    zeros = x == 0
    out = postprocess(
        x,
        rng,
        b=float(rng.uniform(*r.sharpen_b)),
        cutoff=float(rng.uniform(*r.cutoff)),
        noise=float(rng.uniform(*r.noise)),
        noise_b=float(rng.uniform(*r.noise_b)),
    )
    if zeros.mean() >= MASKED_SHARE and rng.random() < r.keep_mask:
        out[zeros] = 0.0
    try:
        return normalise_density(out)
    except ValueError:  # nothing positive left (an empty box): keep the box as it was
        return box
