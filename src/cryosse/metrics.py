"""Counting metrics shared by training validation and evaluation (SPEC 10)."""

from __future__ import annotations

import math

import numpy as np


def confusion(pred: np.ndarray, truth: np.ndarray, cls: int) -> tuple[int, int, int]:
    """(TP, FP, FN) of class ``cls`` between two label arrays of the same shape."""
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    p = pred == cls
    t = truth == cls
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """2TP / (2TP + FP + FN); NaN when the class has no true unit (TP + FN = 0)."""
    if tp + fn == 0:
        return math.nan
    return 2.0 * tp / (2.0 * tp + fp + fn)
