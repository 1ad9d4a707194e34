"""The pairs a training run reads: one pair file, the split's pairs, sampling weights."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.classes import PAPER_CLASSES
from cryosse.io import read_tsv
from cryosse.pairfile import TRAINING, Pair, read_pair_arrays

log = logging.getLogger(__name__)


def _with_nucleic(columns: list[str], classes: int) -> list[str]:
    """History/selection columns: ``val_nucleic_f1`` after ``val_sheet_f1`` for 4 classes only."""
    if classes == PAPER_CLASSES:
        return list(columns)
    i = columns.index("val_sheet_f1") + 1
    return columns[:i] + ["val_nucleic_f1"] + columns[i:]


def load_pair(pair_id: str, folder: str | Path, classes: int = PAPER_CLASSES) -> Pair:
    """Read one pair's ``arrays.npz`` for training (:func:`cryosse.pairfile.read_pair_arrays`)."""
    return read_pair_arrays(folder, pair_id, classes, need=TRAINING)


def read_split_pairs(dataset_tsv: str | Path, split_tsv: str | Path) -> dict[str, list[tuple[str, Path]]]:
    """Training and validation pairs of a split: ``{"train": [(pair_id, folder)], "val": [...]}``."""
    ds = read_tsv(dataset_tsv, dtype={"path": str})
    sp = read_tsv(split_tsv)
    for name, df, cols in ((dataset_tsv, ds, ("pair_id", "path")), (split_tsv, sp, ("pair_id", "role"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name}: missing column(s) {missing}")
    base = Path(dataset_tsv).parent
    paths = {}
    for pid, p in zip(ds["pair_id"], ds["path"], strict=True):
        p = Path(p)
        paths[pid] = p if p.is_absolute() or p.exists() else base / p
    out: dict[str, list[tuple[str, Path]]] = {"train": [], "val": []}
    for pid, role in zip(sp["pair_id"], sp["role"], strict=True):
        if role not in ("train", "val", "test"):
            raise ValueError(f"{split_tsv}: pair {pid} has role {role!r}, expected train/val/test")
        if role == "test":
            continue
        if pid not in paths:
            raise ValueError(f"{split_tsv}: pair {pid} is not in {dataset_tsv}")
        out[role].append((pid, paths[pid]))
    for role in ("train", "val"):
        if not out[role]:
            raise ValueError(f"{split_tsv}: no {role} pairs; the split is too small to train on")
    return out


def cluster_weights(split_tsv: str | Path, pair_ids: Sequence[str], balance: float) -> np.ndarray | None:
    """Sampling probabilities of ``pair_ids``: (size of the pair's cluster) ** -balance, normalised.

    ``balance`` 0 gives None (every pair once per round); 1 gives every cluster the same
    share; the split table's ``cluster`` column names the clusters.
    """
    if balance <= 0:
        return None
    sp = read_tsv(split_tsv, text=True)
    cluster = dict(zip(sp["pair_id"], sp["cluster"], strict=True)) if "cluster" in sp else {}
    names = [cluster.get(p, p) for p in pair_ids]
    sizes = pd.Series(names).value_counts()
    w = np.array([float(sizes[n]) ** -balance for n in names])
    return w / w.sum()


def _load_pairs(
    items: Sequence[tuple[str, Path]],
    role: str,
    split_tsv: str | Path,
    skipped: list[dict[str, str]],
    classes: int = PAPER_CLASSES,
) -> list[Pair]:
    """Load pairs; a broken one is logged, recorded in ``skipped`` and left out (it never stops the job)."""
    pairs = []
    for pid, folder in items:
        try:
            pairs.append(load_pair(pid, folder, classes))
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping %s pair %s: %s", role, pid, exc)
            skipped.append({"pair_id": pid, "role": role, "reason": str(exc)})
    if not pairs:
        raise ValueError(f"{split_tsv}: none of the {len(items)} {role} pairs could be loaded (see the log)")
    return pairs
