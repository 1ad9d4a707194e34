"""Another tool's prediction (masks, probability maps or a label map, on any grid) put on the
reference grid."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryosse.geometry import DensityMap, MapGeometry, read_map
from cryosse.score.reference import Reference
from cryosse.score.regrid import _slabs, covered, on_grid

log = logging.getLogger(__name__)

OVERLAP_RULES = {
    "probability": "higher probability wins (a tie goes to helix)",
    "mask": "helix wins (a binary mask is involved)",
    "labels": "none (one label per voxel)",
}


@dataclass
class Prediction:
    """A prediction on the reference grid: labels 0/1/2 and what was made of each file."""

    labels: np.ndarray
    files: list[dict[str, Any]]
    coverage: float
    overlap_voxels: int
    overlap_rule: str
    threshold: float


def _describe(geom: MapGeometry) -> str:
    lo = geom.lower - np.asarray(geom.voxel_size) / 2
    hi = geom.upper + np.asarray(geom.voxel_size) / 2
    return ", ".join(f"{a} {lo[i]:.1f} to {hi[i]:.1f}" for i, a in enumerate("xyz")) + " A"


def read_prediction_map(path: str | os.PathLike, what: str) -> tuple[DensityMap, str, tuple[float, float]]:
    """A prediction file read and checked: its map, its kind (mask, probability) and value range.

    Refuses NaN or infinite values anywhere in the file (naming it)."""
    dmap = read_map(path)
    lo, hi, values = math.inf, -math.inf, set()
    for a, b in _slabs(dmap):
        v = np.asarray(dmap.data[a:b], np.float32)
        finite = np.isfinite(v)
        if not finite.all():
            k, j, i = (int(x) for x in np.argwhere(~finite)[0])
            raise ValueError(
                f"{path}: the {what} map has NaN or infinite values (the first at voxel x, y, z = "
                f"{i}, {j}, {a + k}); the tool's output is damaged"
            )
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
        if len(values) <= 2:
            values |= set(np.unique(v).tolist())
    kind = "mask" if len(values) <= 2 and min(values) == 0 else "probability"
    return dmap, kind, (lo, hi)


def _place(
    path: str | os.PathLike, role: str, ref: Reference, scored: np.ndarray, is_labels: bool, threshold: float
) -> tuple[np.ndarray, str, dict[str, Any], np.ndarray]:
    """One prediction file on the reference grid: (values, kind, what was read, voxels it covers)."""
    target = ref.geometry
    if is_labels:
        dmap = read_map(path)
        _check_integral(dmap)
        kind, rng = "labels", (math.nan, math.nan)
    else:
        dmap, kind, rng = read_prediction_map(path, role)
    cov = covered(target, dmap.geometry)
    share = float(cov[scored].mean())
    if share == 0:
        raise ValueError(
            f"{path}: the prediction does not overlap the {ref.region} of pair {ref.pair_id}: it "
            f"spans {_describe(dmap.geometry)}, the box {_describe(target)}; its origin may follow "
            "another convention (ORIGIN or NSTART) or belong to another map"
        )
    if kind == "probability" and (rng[0] < 0 or rng[1] > 1):
        log.warning(
            "%s: values run from %g to %g, not 0-1; the threshold %g applies as given", path, *rng, threshold
        )
    src = (
        dmap
        if kind != "mask"
        else DensityMap((np.asarray(dmap.data) != 0).astype(np.float32), dmap.geometry, dmap.path)
    )
    values = on_grid(src, target, 1 if kind == "probability" else 0)
    g = dmap.geometry
    info = {
        "role": role,
        "path": str(path),
        "kind": kind,
        "shape_zyx": list(g.shape_zyx),
        "voxel_size_xyz": list(g.voxel_size),
        "origin_xyz": list(g.origin_xyz),
        "origin_source": dmap.header.get("origin_source", ""),
        "coverage": share,
    }
    if kind != "labels":
        info["value_range"] = list(rng)
    return values, kind, info, cov


def read_prediction(
    ref: Reference,
    helix: str | os.PathLike | None = None,
    sheet: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    threshold: float = 0.5,
    helix_value: int = 1,
    sheet_value: int = 2,
) -> Prediction:
    """Put a prediction (helix and/or sheet maps, or one label map) on the reference's grid."""
    if labels is not None and (helix is not None or sheet is not None):
        raise ValueError("give a label map, or helix and sheet maps, not both")
    if labels is None and helix is None and sheet is None:
        raise ValueError("no prediction given: a helix map and a sheet map, or a label map")
    if helix_value == sheet_value:
        raise ValueError(f"helix and sheet values are both {helix_value}; they must differ")
    if not math.isfinite(threshold):
        raise ValueError(f"threshold {threshold} is not a number")
    target = ref.geometry
    scored = ref.scored_mask()
    n_scored = int(scored.sum())
    if n_scored == 0:
        raise ValueError(
            f"pair {ref.pair_id}: no voxel of its {ref.region} is scored (none lies within the map)"
        )
    files: list[dict[str, Any]] = []
    cover_all = np.ones(target.shape_zyx, bool)

    def place(path: str | os.PathLike, role: str) -> tuple[np.ndarray, str, dict[str, Any]]:
        values, kind, info, cov = _place(path, role, ref, scored, labels is not None, threshold)
        cover_all[~cov] = False
        files.append(info)
        return values, kind, info

    if labels is not None:
        values, _, _ = place(labels, "labels")
        lab = np.rint(values)
        out = np.where(lab == helix_value, 1, np.where(lab == sheet_value, 2, 0)).astype(np.uint8)
        overlap, rule = 0, OVERLAP_RULES["labels"]
    else:
        shape = target.shape_zyx
        h_val, h_kind = (
            place(helix, "helix")[:2] if helix is not None else (np.zeros(shape, np.float32), "mask")
        )
        s_val, s_kind = (
            place(sheet, "sheet")[:2] if sheet is not None else (np.zeros(shape, np.float32), "mask")
        )
        h_on = h_val > 0.5 if h_kind == "mask" else h_val >= threshold
        s_on = s_val > 0.5 if s_kind == "mask" else s_val >= threshold
        both = h_on & s_on
        if h_kind == s_kind == "probability":
            rule = OVERLAP_RULES["probability"]
            h_on = h_on & ~(both & (s_val > h_val))
        else:
            rule = OVERLAP_RULES["mask"]
        out = np.where(h_on, 1, np.where(s_on, 2, 0)).astype(np.uint8)
        overlap = int((both & scored).sum())
    return Prediction(out, files, float(cover_all[scored].mean()), overlap, rule, float(threshold))


def _check_integral(dmap: DensityMap) -> None:
    for a, b in _slabs(dmap):
        v = np.asarray(dmap.data[a:b], np.float32)
        if not np.all(np.isfinite(v)):
            raise ValueError(
                f"{dmap.path}: the label map has NaN or infinite values; the tool's output is damaged"
            )
        frac = v != np.rint(v)
        if frac.any():
            raise ValueError(
                f"{dmap.path}: holds {float(v[frac].flat[0]):g}, not a label map (whole numbers); "
                "give probability or mask maps with --helix and --sheet instead"
            )
