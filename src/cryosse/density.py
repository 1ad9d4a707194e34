"""Density normalisation shared by the dataset, training, evaluation and prediction (numpy only)."""

from __future__ import annotations

import mmap

import numpy as np

from cryosse.geometry import DensityMap, MapError


def normalise_density(box: np.ndarray) -> np.ndarray:
    """SPEC 4 (TOOL): divide by the box maximum, set negatives to 0, z-score over the box."""
    box = np.asarray(box, np.float32)
    if not np.all(np.isfinite(box)):
        raise ValueError("density has NaN or infinite values")
    mx = float(box.max())
    if mx <= 0:
        raise ValueError("density has no positive value (all zero or negative); nothing to segment")
    out = np.maximum(box / mx, 0.0)
    sd = float(out.std())
    if sd == 0:
        raise ValueError("density is constant after normalisation; nothing to segment")
    return ((out - out.mean()) / sd).astype(np.float32)


def value_range(data: np.ndarray, slab: int = 16) -> tuple[float, float]:
    """Smallest and largest value of a map's data [z, y, x], read in slabs (no full copy)."""
    lo, hi = np.inf, -np.inf
    for z in range(0, data.shape[0], slab):
        block = np.asarray(data[z : z + slab])
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    return lo, hi


def contour_check(level: float, data: np.ndarray) -> tuple[str | None, str | None]:
    """(why ``level`` leaves nothing of the map, why it changes nothing): at or above the map's
    maximum no voxel counts as density; below its minimum the level masks nothing."""
    lo, hi = value_range(data)
    span = f"(its values run from {lo:g} to {hi:g})"
    if level >= hi:
        return (
            f"the contour level {level:g} is at or above the map's maximum {span}: no voxel would count as density",
            None,
        )
    if level < lo:
        return None, f"the contour level {level:g} is below the map's minimum {span}: it masks nothing"
    return None, None


#: the estimated contour level: mean + this many standard deviations of the full map
CONTOUR_SD = 3.0


def display_level(
    dmap: DensityMap, contour: float | None, contour_sd: float = CONTOUR_SD
) -> tuple[float, str]:
    """The level a viewer shows a map at, and where it comes from: the contour given, else the
    dataset's estimate (:func:`map_statistics`: mean + ``contour_sd`` sd of the full map)."""
    if contour is not None:
        return contour, "the contour level given"
    mean, sd = map_statistics(dmap)
    return mean + contour_sd * sd, f"mean + {contour_sd:g} sd of the map (no contour level given)"


def map_statistics(dmap: DensityMap, slab: int = 16) -> tuple[float, float]:
    """Mean and standard deviation of the FULL map, read in slabs (no full copy).

    Raises :class:`MapError` when the map holds NaN or infinite values.
    """
    data = dmap.data
    n = 0
    total = 0.0
    total2 = 0.0
    nz = data.shape[0]
    for z in range(0, nz, slab):
        block = np.asarray(data[z : z + slab], np.float64)
        if not np.all(np.isfinite(block)):
            raise MapError(f"{dmap.path}: the map has NaN or infinite values")
        n += block.size
        total += float(block.sum())
        total2 += float(np.square(block).sum())
        _drop_mapped_pages(data)
    mean = total / n
    var = max(total2 / n - mean * mean, 0.0)
    return mean, float(np.sqrt(var))


def _drop_mapped_pages(arr: np.ndarray) -> None:
    """For a memory-mapped map, let the pages read so far leave this process's RSS
    (they stay in the page cache): a pass over a large map then costs no memory."""
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)


def prepare_input(density: np.ndarray, model_args: dict) -> np.ndarray:
    """A normalised 1 A box or map as a model expects it: brought to its reference amplitude
    spectrum where the model has one (:func:`cryosse.spectrum.match_spectrum`), else unchanged.
    Every path that hands a box to a network calls this: training, validation, evaluation, predict."""
    ref = model_args.get("input_spectrum")
    if not ref:
        return density
    from cryosse.spectrum import match_spectrum

    return match_spectrum(density, ref)


def input_preparation(model_args: dict) -> dict:
    """What is done to a map before the network sees it (``summary.json``), for a model's settings."""
    sigma = float(model_args.get("input_lowpass", 0.0) or 0.0)
    spectrum = "amplitudes brought to the training maps' radial profile (cryosse.spectrum), normalised again"
    return {
        "steps": [
            "resampled to 1 A voxels (trilinear) where the map is on another grid",
            "divided by its maximum, negatives set to 0, z-scored over the map",
            *([spectrum] if model_args.get("input_spectrum") else []),
            *([f"Gaussian low-pass, sigma {sigma:g} A (the network's first, fixed layer)"] if sigma else []),
        ],
        "uses_resolution": False,
        "note": "the map's stated resolution is not used: every map is prepared the same way",
    }
