"""Training examples from pair boxes: padding, patches, class-balanced centres, rotations.

A training step sees either one whole box (``patch`` 0, the paper's batch of one
box) or a batch of ``batch`` random ``patch``^3 windows. Windows are centred on a
random centre-box voxel, or, with probability ``foreground``, on a voxel of a
secondary-structure class drawn uniformly among the classes the box has (helix
and sheet voxels are 1% of a box; without this most windows hold none). With
``rotate``, each window is turned by one of the 24 rotations of the cube (no
mirror images: a mirror turns right-handed helices left-handed). With ``intensity``
a, each window's values are scaled by exp(U(-a, a)) and shifted by U(-a, a) / 2. With
``realism`` (:class:`cryosse.realism.Realism`), a share of the draws first makes the
pair's whole box look like a deposited map (sharpened, low-passed, noisy); with
``spectrum``, every box is then brought to that amplitude profile, as predict does.

Padding (to the pooling multiple, or to the window size where a box is smaller)
takes the solvent value of the normalised box, its minimum (the value that zero
density maps to), and is masked out of the loss like everything outside the
centre box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cryosse.model import PAD_MULTIPLE
from cryosse.realism import Realism, deposited_like
from cryosse.spectrum import match_spectrum


def solvent_value(density: np.ndarray) -> float:
    """The value of empty space in a normalised box: its minimum (negatives were set to 0 first)."""
    return float(np.min(density)) if density.size else 0.0


def pad_array(a: np.ndarray, shape: tuple[int, ...], value: float) -> np.ndarray:
    """``a`` padded at the high end of each axis up to ``shape`` with ``value``."""
    pad = [(0, int(s) - n) for s, n in zip(shape, a.shape, strict=True)]
    return np.pad(a, pad, constant_values=value) if any(p[1] for p in pad) else a


def padded_shape(shape: tuple[int, ...], multiple: int = PAD_MULTIPLE) -> tuple[int, ...]:
    return tuple(int(n + (-n) % multiple) for n in shape)


#: the 24 proper rotations of the cube as (axis permutation, flips) of a [z, y, x] array
def _rotations() -> list[tuple[tuple[int, int, int], tuple[bool, bool, bool]]]:
    out = []
    for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1), (2, 1, 0), (1, 0, 2)):
        even = perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1))
        for flips in np.ndindex(2, 2, 2):
            if (sum(flips) % 2 == 0) == even:  # determinant +1
                out.append((perm, tuple(bool(f) for f in flips)))
    return out


ROTATIONS = _rotations()


def rotate(arrays: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Apply rotation ``k`` (0..23) of :data:`ROTATIONS` to each array alike."""
    perm, flips = ROTATIONS[k]
    axes = tuple(ax for ax, f in enumerate(flips) if f)
    return [
        np.ascontiguousarray(np.flip(np.transpose(a, perm), axes) if axes else np.transpose(a, perm))
        for a in arrays
    ]


@dataclass
class PatchSampler:
    """Draws training examples from pairs (``density``, ``labels``, ``centre``, ``pair_id``)."""

    patch: int = 0
    batch: int = 1
    foreground: float = 0.0
    rotate: bool = False
    intensity: float = 0.0
    realism: Realism | None = None
    spectrum: list[float] | None = None  # the model's input preparation (cryosse.spectrum), after realism
    _fg: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.patch < 0 or self.batch < 1 or not 0.0 <= self.foreground <= 1.0:
            raise ValueError(
                f"patch {self.patch} (>= 0), batch {self.batch} (>= 1), foreground {self.foreground} (0..1)"
            )
        if self.patch == 0 and self.batch != 1:
            raise ValueError("whole boxes (patch 0) differ in size: batch must be 1")
        if self.patch % 4:
            raise ValueError(f"patch {self.patch} must be a multiple of 4 (the network pools twice by 2)")

    def _foreground(self, pair) -> list[np.ndarray]:
        """Flat indices of each secondary-structure class's centre-box voxels (cached per pair)."""
        if pair.pair_id not in self._fg:
            z0, z1, y0, y1, x0, x1 = pair.centre
            inner = np.zeros(pair.labels.shape, bool)
            inner[z0:z1, y0:y1, x0:x1] = True
            lab = np.where(inner, pair.labels, 0).ravel()
            self._fg[pair.pair_id] = [np.flatnonzero(lab == k) for k in range(1, int(lab.max(initial=0)) + 1)]
            self._fg[pair.pair_id] = [ix for ix in self._fg[pair.pair_id] if ix.size]
        return self._fg[pair.pair_id]

    def _point(self, pair, rng: np.random.Generator) -> tuple[int, int, int]:
        fg = self._foreground(pair) if self.foreground > 0 else []
        if fg and rng.random() < self.foreground:
            idx = fg[int(rng.integers(len(fg)))]
            return tuple(
                int(v) for v in np.unravel_index(int(idx[rng.integers(idx.size)]), pair.labels.shape)
            )  # type: ignore[return-value]
        z0, z1, y0, y1, x0, x1 = pair.centre
        return int(rng.integers(z0, z1)), int(rng.integers(y0, y1)), int(rng.integers(x0, x1))

    def window(self, pair, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(density, labels, mask) of one example, padded to its final size with the solvent value."""
        mask = np.zeros(pair.density.shape, bool)
        z0, z1, y0, y1, x0, x1 = pair.centre
        mask[z0:z1, y0:y1, x0:x1] = True
        if getattr(pair, "inside", None) is not None:
            mask &= pair.inside  # voxels beyond the map are unknown: out of the loss
        dens, lab = pair.density, pair.labels
        r = self.realism
        if r is not None and r.probability > 0 and rng.random() < r.probability:
            dens = deposited_like(dens, rng, r)
        if self.spectrum:
            dens = match_spectrum(dens, self.spectrum)
        solvent = solvent_value(dens)
        if self.patch > 0:
            point = self._point(pair, rng)
            sl = []
            for ax, p in enumerate(point):
                n = dens.shape[ax]
                size = min(self.patch, n)
                start = min(max(p - size // 2, 0), n - size)
                sl.append(slice(start, start + size))
            dens, lab, mask = dens[tuple(sl)], lab[tuple(sl)], mask[tuple(sl)]
            shape = (self.patch,) * 3
        else:
            shape = padded_shape(dens.shape)
        dens, lab, mask = (
            pad_array(dens, shape, solvent),
            pad_array(lab, shape, 0),
            pad_array(mask, shape, False),
        )
        if self.rotate:
            dens, lab, mask = rotate([dens, lab, mask], int(rng.integers(len(ROTATIONS))))
        if self.intensity > 0:  # boxes of other sizes and contents normalise a little differently
            a = self.intensity
            dens = (dens * np.exp(rng.uniform(-a, a)) + rng.uniform(-a, a) / 2).astype(np.float32)
        return dens, lab, mask

    def batch_of(
        self, pairs: list, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step's examples: x (B, 1, D, H, W) float32, target (B, D, H, W) int64, mask (B, D, H, W) bool."""
        parts = [self.window(p, rng) for p in pairs]
        x = torch.from_numpy(np.stack([d for d, _, _ in parts]).astype(np.float32))[:, None]
        t = torch.from_numpy(np.stack([lab for _, lab, _ in parts]).astype(np.int64))
        m = torch.from_numpy(np.stack([m for _, _, m in parts]))
        return x, t, m
