"""Where pairs lie in their maps: keeping a map on one side of a split, and auditing box overlap.

Pairs cut from one EMDB map share density: a test chain's centre box can lie inside the box
of a training chain of the same map, which carries the labels of every chain in it. Sequence
clustering cannot see this (the chains of a complex are often unrelated), so:

* :func:`entry_groups` joins pairs that share a sequence cluster OR an EMDB entry (single
  linkage): the cross-validation splits draw whole groups, and the main split whole entries
  (unless ``split.main_split_by: pair``, the paper's pair-level random split);
* :func:`box_overlaps` measures, for every validation and test pair, the largest fraction of
  its centre box covered by the box of one training pair of the same map; the audit fails an
  enforced split where that exceeds ``split.max_box_overlap``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.io import read_json

SPACE_COLUMNS = ["pair_id", "box_overlap", "overlapping_train"]


def entry_groups(cluster_of: Mapping[str, str], entry_of: Mapping[str, str]) -> dict[str, str]:
    """pair -> group: connected components of 'same sequence cluster' and 'same EMDB entry'."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for pid, cluster in cluster_of.items():
        union(f"p:{pid}", f"c:{cluster}")
        if entry_of.get(pid):
            union(f"p:{pid}", f"e:{entry_of[pid]}")
    # Name each group after its smallest pair id (stable, readable).
    members: dict[str, list[str]] = {}
    for pid in cluster_of:
        members.setdefault(find(f"p:{pid}"), []).append(pid)
    return {pid: min(m) for m in members.values() for pid in m}


def read_boxes(dataset: pd.DataFrame, base: str | os.PathLike = ".") -> dict[str, dict]:
    """pair -> {entry, box (lo, hi), centre (lo, hi)} in A, from each pair's record.json, for the
    pairs that share their map with another (a pair alone in its map overlaps no training box)."""
    out = {}
    shared = dataset["emdb_id"].duplicated(keep=False)
    for pid, entry, path in zip(
        dataset["pair_id"][shared], dataset["emdb_id"][shared], dataset["path"][shared], strict=True
    ):
        folder = Path(path) if Path(path).is_absolute() or Path(path).exists() else Path(base) / path
        try:
            rec = read_json(folder / "record.json")
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{pid}: {folder / 'record.json'} is missing: the dataset table names a pair folder that is not"
                " there (rerun the dataset stage)"
            ) from exc
        box, centre = rec["box"], rec["centre_box"]
        out[pid] = {
            "entry": str(entry),
            "box": (np.asarray(box["lower_xyz"], float), np.asarray(box["upper_xyz"], float)),
            "centre": (np.asarray(centre["lower_xyz"], float), np.asarray(centre["upper_xyz"], float)),
        }
    return out


def _covered(centre: tuple[np.ndarray, np.ndarray], box: tuple[np.ndarray, np.ndarray]) -> float:
    """Fraction of the centre box's volume inside ``box`` (axis-aligned, voxel-centre extents + 1 A)."""
    lo, hi = centre[0] - 0.5, centre[1] + 0.5
    blo, bhi = box[0] - 0.5, box[1] + 0.5
    inter = np.clip(np.minimum(hi, bhi) - np.maximum(lo, blo), 0, None)
    vol = float(np.prod(hi - lo))
    return float(np.prod(inter)) / vol if vol > 0 else 0.0


def box_overlaps(split: pd.DataFrame, boxes: Mapping[str, dict]) -> pd.DataFrame:
    """Per validation/test pair: the largest share of its centre box inside one training box of its map."""
    train = [p for p, r in zip(split["pair_id"], split["role"], strict=True) if r == "train" and p in boxes]
    by_entry: dict[str, list[str]] = {}
    for p in train:
        by_entry.setdefault(boxes[p]["entry"], []).append(p)
    rows = []
    for pid, role in zip(split["pair_id"], split["role"], strict=True):
        if role == "train" or pid not in boxes:
            continue
        best, near = 0.0, ""
        for t in sorted(by_entry.get(boxes[pid]["entry"], [])):
            f = _covered(boxes[pid]["centre"], boxes[t]["box"])
            if f > best:
                best, near = f, t
        rows.append({"pair_id": pid, "box_overlap": round(best, 3), "overlapping_train": near})
    return pd.DataFrame(rows, columns=SPACE_COLUMNS)
