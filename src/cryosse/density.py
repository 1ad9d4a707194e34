"""Density normalisation shared by the dataset, training, evaluation and prediction (numpy only)."""

from __future__ import annotations

import numpy as np


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
