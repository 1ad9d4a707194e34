"""Input preparation by the radial amplitude spectrum: every map brought to the training maps' falloff.

Deposited maps differ from one another, and from simulated ones, mostly in how their Fourier
amplitudes fall off with resolution: a map sharpened with a negative B-factor has far more
high-frequency amplitude than a Gaussian-blurred one, a map on 3.5 A voxels far less. A
network learns the falloff of its training maps. :func:`match_spectrum` filters a 1 A box so
that its radial amplitude profile, relative to its own 25-100 A band (the box's envelope),
follows a reference profile: the mean over the training boxes (:func:`reference_profile`),
stored in the checkpoint (``model_args["input_spectrum"]``). Phases are kept, and the gain of
each shell is bounded (1/8 to 8), so noise beyond the signal is not blown up without limit.
The same function prepares every box in training, validation, evaluation and ``cryosse
predict`` (:func:`cryosse.density.prepare_input`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import fft

#: shells of spatial frequency on the 1 A grid: 0 to Nyquist (0.5 1/A) in 50 steps
SHELLS = 50
#: the shells a profile is scaled by (0.01-0.04 1/A: 25-100 A)
ENVELOPE = slice(1, 4)
#: largest gain of a shell, and smallest (its inverse)
MAX_GAIN = 8.0


def _shells(shape: tuple[int, ...]) -> np.ndarray:
    """The shell index of every rfftn coefficient of a 1 A box of ``shape``."""
    from cryosse.realism import frequency_squared

    s = np.sqrt(frequency_squared(shape))
    return np.minimum((s * 2 * SHELLS).astype(np.int64), SHELLS - 1)


def _profile(spec: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """RMS amplitude per shell, relative to the envelope shells' mean."""
    power = np.bincount(idx.ravel(), (np.abs(spec) ** 2).ravel(), SHELLS)
    counts = np.maximum(np.bincount(idx.ravel(), minlength=SHELLS), 1)
    p = np.sqrt(power / counts)
    return p / max(float(p[ENVELOPE].mean()), 1e-30)


def radial_profile(box: np.ndarray) -> np.ndarray:
    """The box's radial amplitude profile (:data:`SHELLS` values, envelope-relative)."""
    b = np.asarray(box, np.float32)
    return _profile(fft.rfftn(b - b.mean(), workers=1), _shells(b.shape))


#: most training boxes a reference profile is averaged over (every k-th of them)
REFERENCE_BOXES = 100


def reference_sample(items: Sequence) -> Sequence:
    """Every k-th of ``items`` (the training pairs), at most about :data:`REFERENCE_BOXES` of them."""
    return items[:: max(1, len(items) // REFERENCE_BOXES)]


def reference_profile(boxes: Iterable[np.ndarray]) -> list[float]:
    """The mean profile of ``boxes`` (the training boxes): what :func:`match_spectrum` aims at."""
    profiles = [radial_profile(b) for b in boxes]
    if not profiles:
        raise ValueError("no boxes to make a reference amplitude profile from")
    return [round(float(v), 6) for v in np.mean(profiles, axis=0)]


def check_reference(ref: Sequence[float]) -> np.ndarray:
    r = np.asarray(ref, np.float64)
    if r.shape != (SHELLS,) or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"input_spectrum must be {SHELLS} finite amplitudes >= 0, got {len(r)} values")
    return r


def match_spectrum(density: np.ndarray, ref: Sequence[float]) -> np.ndarray:
    """``density`` (a normalised 1 A box or map) filtered to the reference profile, normalised again.

    Solvent (the box's minimum) is taken as zero, as in a raw map, before filtering."""
    from cryosse.density import normalise_density

    r = check_reference(ref)
    x = np.asarray(density, np.float32)
    x = x - float(x.min())
    idx = _shells(x.shape)
    spec = fft.rfftn(x, workers=1)
    p = _profile(spec, idx)
    gain = np.clip(r / np.maximum(p, 1e-30), 1 / MAX_GAIN, MAX_GAIN).astype(np.float32)
    gain[0] = 1.0  # the mean and the longest waves stay
    out = fft.irfftn(spec * gain[idx], x.shape, workers=1)
    return normalise_density(out)
