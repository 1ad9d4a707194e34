"""Scoring another tool's prediction (issue 18): ``cryosse score`` and the workflow's external rows.

A prediction is what another tool writes: a helix map and a sheet map (0/1 masks or
probability maps), or one label map, on any grid, voxel size and origin convention. It is
put on the reference grid with the geometry module (:func:`cryosse.geometry.resample`:
nearest neighbour for masks and label maps, trilinear for probabilities before the
threshold) and scored exactly as the evaluation stage scores our networks
(:func:`cryosse.evaluate.score_case`: voxel F1 in the centre box, the box's voxels beyond
its map left out, residue F1 by the vote of the voxels within 3 A of each CA).

The reference (the truth) is:

* our labels: a pair folder (``--pair``), or a pair built here from a map, a model and a
  chain exactly as the dataset stage builds one (kept whatever its quality bin);
* or a label map given with ``--truth``: an MRC label map (0 background, 1 helix, 2 sheet),
  or the DeepSSETracer authors' voxel-label text file (``i,j,k,density,label``; i, j, k the
  x, y, z indices into the grid of the map given with ``--map``). Residue F1 needs each
  residue's true class, which a label map does not give: it is scored against our labels
  only.

Rules where tools differ (each one is recorded in the JSON output):

* A map with at most two values, the lower 0, is a mask: non-zero is on. Any other map is a
  probability map: on at or above the threshold (default 0.5).
* Where helix and sheet are both on: with two probability maps the higher probability wins
  (a tie goes to helix); with a mask involved helix wins.
* Voxels beyond a prediction's grid (a crop) count as background; ``coverage`` is the share
  of the scored voxels that lie within every prediction file's grid (a voxel whose centre
  lies within the file's voxels). A prediction that covers none of them is refused.
* Voxels beyond a truth label map's grid are unknown: not scored.
* The authors' text file lists only voxels with density (map value > 0). By default the
  others count as background (label 0), as the authors count them in their published
  figures; ``listed_only`` scores the listed voxels alone.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse.evaluate import (
    add_pair_meta,
    centre_slices,
    load_pair_arrays,
    read_case_tables,
    role_cases,
    score_case,
    write_per_case,
)
from cryosse.geometry import DensityMap, MapError, MapGeometry, read_map, resample
from cryosse.io import read_json

log = logging.getLogger(__name__)

SCORED_CLASSES = 3  # helix and sheet: the classes every tool predicts
#: file name endings of a prediction in an external tool's folder (workflow layout)
MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrc.gz", ".map.gz", ".ccp4.gz")
#: most source voxels one resampling may read (a grid far finer than the box: 512 MiB of float32)
MAX_BLOCK_VOXELS = 1 << 27
OVERLAP_RULES = {
    "probability": "higher probability wins (a tie goes to helix)",
    "mask": "helix wins (a binary mask is involved)",
    "labels": "none (one label per voxel)",
}


# --------------------------------------------------------------------------- the reference


@dataclass
class Reference:
    """The truth on one grid: an ``arrays.npz``-like dict for :func:`score_case` and what it is."""

    arrays: dict[str, np.ndarray]
    pair_id: str
    region: str  # "centre box" | "whole box"
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def geometry(self) -> MapGeometry:
        shape = tuple(int(s) for s in np.asarray(self.arrays["labels"]).shape)
        vs = float(np.asarray(self.arrays["voxel_size"]))
        origin = tuple(float(v) for v in np.asarray(self.arrays["origin_xyz"], float))
        return MapGeometry(shape, (vs, vs, vs), origin)  # type: ignore[arg-type]

    def region_mask(self) -> np.ndarray:
        """Bool [z, y, x]: the voxels of the scored region (centre box or whole box)."""
        out = np.zeros(np.asarray(self.arrays["labels"]).shape, bool)
        out[centre_slices(self.arrays["centre"])] = True
        return out

    def scored_mask(self) -> np.ndarray:
        """Bool [z, y, x]: the voxels :func:`score_case` counts (the region, within the map)."""
        out = self.region_mask()
        if "inside" in self.arrays:
            out &= np.asarray(self.arrays["inside"], bool)
        return out


def _whole(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays with the whole box as the scored region and every CA in the box counted."""
    nz, ny, nx = np.asarray(arrays["labels"]).shape
    out = dict(arrays)
    out["centre"] = np.array([0, nz, 0, ny, 0, nx], np.int64)
    out["ca_in_centre"] = np.ones(len(np.asarray(arrays["ca_xyz"]).reshape(-1, 3)), bool)
    if "na_xyz" in arrays:
        out["na_in_centre"] = np.ones(len(np.asarray(arrays["na_xyz"]).reshape(-1, 3)), bool)
    return out


def pair_reference(arrays: dict[str, np.ndarray], pair_id: str, whole_box: bool = False,
                   source: str = "") -> Reference:
    """Our labels of a pair, scored in its centre box (as evaluation does) or its whole box."""
    truth = {"kind": "cryosse", "path": source,
             "what": "our labels (DSSP classes of the model, label radius around each CA)",
             "residues": True}
    return Reference(_whole(arrays) if whole_box else dict(arrays), pair_id,
                     "whole box" if whole_box else "centre box", truth)


def load_pair_reference(pair_dir: str | os.PathLike, whole_box: bool = False) -> Reference:
    """:func:`pair_reference` of a pair folder written by the dataset stage."""
    pair_dir = Path(pair_dir)
    arrays = load_pair_arrays(pair_dir)
    pid = pair_dir.name if pair_dir.is_dir() else pair_dir.parent.name
    rec = pair_dir / "record.json" if pair_dir.is_dir() else pair_dir.parent / "record.json"
    if rec.exists():
        try:
            pid = str(read_json(rec).get("pair_id") or pid)
        except (OSError, ValueError):
            pass
    return pair_reference(arrays, pid, whole_box, str(pair_dir))


def read_voxel_label_text(path: str | os.PathLike, dmap: DensityMap) -> tuple[np.ndarray, np.ndarray]:
    """The DeepSSETracer authors' voxel labels on the grid of ``dmap``: labels and listed voxels.

    Lines ``i,j,k,density,label``: i, j, k the x, y, z voxel indices (from 0) into the map's
    grid, density = map value / map maximum, label 0 other, 1 helix, 2 sheet. Returns uint8
    labels [z, y, x] (0 where not listed) and a bool [z, y, x] of the listed voxels. Refuses
    indices beyond the grid, labels other than 0-2, and a file whose density column does not
    follow the map (the file belongs to another map, or its axes differ).
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, header=None, comment="#", skip_blank_lines=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: cannot read as i,j,k,density,label lines ({exc})") from exc
    if df.shape[1] != 5:
        raise ValueError(f"{path}: {df.shape[1]} comma-separated fields per line; a voxel-label file has 5 "
                         "(i,j,k,density,label)")
    if not pd.api.types.is_numeric_dtype(df[0]):  # a header line
        df = df.iloc[1:].apply(pd.to_numeric, errors="coerce")
    vals = df.to_numpy(float)
    bad = ~np.all(np.isfinite(vals), axis=1)
    if bad.any():
        raise ValueError(f"{path}: line {int(np.flatnonzero(bad)[0]) + 1}: not five numbers i,j,k,density,label")
    if len(vals) == 0:
        raise ValueError(f"{path}: no voxel listed")
    ijk = vals[:, :3]
    lab = vals[:, 4]
    if np.any(ijk != np.rint(ijk)) or np.any(lab != np.rint(lab)):
        i = int(np.flatnonzero(np.any(ijk != np.rint(ijk), axis=1) | (lab != np.rint(lab)))[0])
        raise ValueError(f"{path}: line {i + 1}: voxel indices and labels must be whole numbers")
    ijk = ijk.astype(np.int64)
    n_xyz = np.asarray(dmap.geometry.shape_xyz)
    out = np.any((ijk < 0) | (ijk >= n_xyz), axis=1)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(f"{path}: line {i + 1}: voxel {tuple(int(v) for v in ijk[i])} lies beyond the grid of "
                         f"{dmap.path} ({n_xyz[0]}x{n_xyz[1]}x{n_xyz[2]}): the file belongs to another map")
    if np.any((lab < 0) | (lab > 2)):
        i = int(np.flatnonzero((lab < 0) | (lab > 2))[0])
        raise ValueError(f"{path}: line {i + 1}: label {lab[i]:g}; expected 0 (other), 1 (helix) or 2 (sheet)")
    data = np.asarray(dmap.data, np.float32)
    at = data[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    if len(at) > 2 and np.std(at) > 0 and np.std(vals[:, 3]) > 0:
        r = float(np.corrcoef(at, vals[:, 3])[0, 1])
        if not r > 0.9:
            raise ValueError(f"{path}: its density column does not follow {dmap.path} at the voxels it lists "
                             f"(correlation {r:.2f}): the file belongs to another map, or its i,j,k are not x,y,z")
    labels = np.zeros(dmap.geometry.shape, np.uint8)
    listed = np.zeros(dmap.geometry.shape, bool)
    labels[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = lab.astype(np.uint8)
    listed[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = True
    return labels, listed


def _no_residues(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: v for k, v in arrays.items() if k not in ("na_xyz", "na_in_centre")}
    out["ca_xyz"] = np.zeros((0, 3), np.float32)
    out["ca_class"] = np.zeros(0, np.uint8)
    out["ca_in_centre"] = np.zeros(0, bool)
    return out


def _check_label_values(dmap: DensityMap, what: str) -> None:
    for lo, hi in _slabs(dmap):
        v = np.asarray(dmap.data[lo:hi])
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{dmap.path}: {what} has NaN or infinite values")
        bad = (v != np.rint(v)) | (v < 0) | (v > 3)
        if bad.any():
            raise ValueError(f"{dmap.path}: {what} holds {float(v[bad].flat[0]):g}; a label map holds 0 (background), "
                             "1 (helix), 2 (sheet) (3, nucleic acid, counts as background)")


def truth_reference(
    truth: str | os.PathLike,
    base: Reference | None = None,
    map_path: str | os.PathLike | None = None,
    listed_only: bool = False,
) -> Reference:
    """A label map (MRC, or the authors' voxel-label text file on the grid of ``map_path``) as the truth.

    With ``base`` (our pair) the truth is put on the pair's grid (nearest neighbour) and scored
    in the base's region; the pair's ``inside`` mask still applies and voxels beyond the truth's
    grid are not scored. Without it the truth's own grid is the box, scored whole. Residues are
    not scored (a label map gives no residue classes).
    """
    truth = Path(truth)
    notes: list[str] = []
    if truth.suffix.lower() in (".txt", ".csv", ".tsv"):
        if map_path is None:
            raise ValueError(f"{truth}: a voxel-label text file indexes a map's grid: give that map with --map")
        grid = read_map(map_path)
        labels, listed = read_voxel_label_text(truth, grid)
        info = {"kind": "voxel-label text", "path": str(truth), "grid": str(map_path), "listed_only": listed_only,
                "listed_voxels": int(listed.sum())}
        notes.append("the file lists only voxels with map value > 0; "
                     + ("only those are scored" if listed_only else
                        "the others count as background (label 0), as the DeepSSETracer authors count them"))
        geom = grid.geometry
    else:
        if listed_only:
            raise ValueError(f"{truth}: listed_only applies to a voxel-label text file, not to a label map")
        tmap = read_map(truth)
        _check_label_values(tmap, "the truth label map")
        labels = np.rint(np.asarray(tmap.data, np.float32)).astype(np.uint8)
        listed = None
        info = {"kind": "label map", "path": str(truth), "listed_only": False}
        geom = tmap.geometry
    info["residues"] = False
    notes.append("residue F1 is not scored against a label map (it gives no residue classes)")
    if base is None:
        nz, ny, nx = geom.shape
        if len({round(v, 6) for v in geom.voxel_size}) != 1:
            raise ValueError(f"{truth}: voxels of {geom.voxel_size} A are not cubic; give a pair (--pair, or "
                             "--model and --chain) to score on its 1 A grid")
        arrays = {"labels": labels, "centre": np.array([0, nz, 0, ny, 0, nx], np.int64),
                  "origin_xyz": np.asarray(geom.origin, float), "voxel_size": np.float64(geom.voxel_size[0])}
        if listed_only and listed is not None:
            arrays["inside"] = listed
        info["notes"] = notes
        name = Path(map_path or truth).name.removesuffix(".gz")
        return Reference(_no_residues(arrays), Path(name).stem, "whole box", info)
    target = base.geometry
    on = np.rint(on_grid(DensityMap(labels.astype(np.float32), geom, str(truth)), target, 0)).astype(np.uint8)
    known = covered(target, geom)
    if listed_only and listed is not None:
        known &= on_grid(DensityMap(listed.astype(np.float32), geom, str(truth)), target, 0) > 0.5
    inside = known & np.asarray(base.arrays.get("inside", np.ones(on.shape, bool)), bool)
    arrays = _no_residues({**base.arrays, "labels": on, "inside": inside})
    share = float(known[base.region_mask()].mean())
    info["coverage"] = share
    if share == 0:
        raise ValueError(f"{truth}: its grid does not overlap the {base.region} of pair {base.pair_id}")
    if share < 1:
        notes.append(f"the truth's grid covers {100 * share:.1f}% of the {base.region}; the rest is not scored")
    info["notes"] = notes
    return Reference(arrays, base.pair_id, base.region, info)


# --------------------------------------------------------------------------- the prediction


@dataclass
class Prediction:
    """A prediction on the reference grid: labels 0/1/2 and what was made of each file."""

    labels: np.ndarray
    files: list[dict[str, Any]]
    coverage: float
    overlap_voxels: int
    overlap_rule: str
    threshold: float


def _slabs(dmap: DensityMap, voxels: int = 1 << 22) -> list[tuple[int, int]]:
    nz = dmap.data.shape[0]
    step = max(1, voxels // max(1, dmap.data.shape[1] * dmap.data.shape[2]))
    return [(z, min(nz, z + step)) for z in range(0, nz, step)]


def covered(target: MapGeometry, source: MapGeometry) -> np.ndarray:
    """Bool [z, y, x] of the target's voxels whose centres lie within the source's voxels
    (its voxel-centre extent plus half a voxel on each side)."""
    axes = []
    for ax in range(3):  # x, y, z
        centres = target.origin[ax] + target.voxel_size[ax] * np.arange(target.shape_xyz[ax])
        f = (centres - source.origin[ax]) / source.voxel_size[ax]  # fractional source index along the axis
        axes.append((f >= -0.5 - 1e-6) & (f <= source.shape_xyz[ax] - 0.5 + 1e-6))
    return axes[2][:, None, None] & axes[1][None, :, None] & axes[0][None, None, :]


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
            raise ValueError(f"{path}: the {what} map has NaN or infinite values (the first at voxel x, y, z = "
                             f"{i}, {j}, {a + k}); the tool's output is damaged")
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
        if len(values) <= 2:
            values |= set(np.unique(v).tolist())
    kind = "mask" if len(values) <= 2 and min(values) == 0 else "probability"
    return dmap, kind, (lo, hi)


def on_grid(dmap: DensityMap, target: MapGeometry, order: int) -> np.ndarray:
    """``dmap`` resampled onto ``target`` (0 beyond it), refusing grids that cannot be resampled."""
    src = dmap.geometry
    f = np.stack([src.xyz_to_index(target.lower[None])[0], src.xyz_to_index(target.upper[None])[0]])
    need = np.ceil(f.max(0)) - np.floor(f.min(0)) + 2 * (2 if order <= 1 else 4) + 1
    if float(np.prod(need)) > MAX_BLOCK_VOXELS:
        raise ValueError(f"{dmap.path}: voxels of {tuple(round(v, 4) for v in src.voxel_size)} A are too fine to "
                         f"resample onto a box of {target.shape_xyz} voxels of {target.voxel_size[0]:g} A "
                         f"({float(np.prod(need)):.3g} source voxels); the voxel size in its header is wrong")
    try:
        return resample(dmap, target, order=order)
    except MapError:
        raise
    except (RuntimeError, MemoryError, OverflowError) as exc:
        raise ValueError(f"{dmap.path}: cannot be resampled onto the box ({exc})") from exc


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
        raise ValueError(f"pair {ref.pair_id}: no voxel of its {ref.region} is scored (none lies within the map)")
    files: list[dict[str, Any]] = []
    cover_all = np.ones(target.shape, bool)

    def place(path: str | os.PathLike, role: str) -> tuple[np.ndarray, str, dict[str, Any]]:
        if labels is not None:
            dmap = read_map(path)
            _check_integral(dmap)
            kind, rng = "labels", (math.nan, math.nan)
        else:
            dmap, kind, rng = read_prediction_map(path, role)
        cov = covered(target, dmap.geometry)
        share = float(cov[scored].mean())
        if share == 0:
            raise ValueError(f"{path}: the prediction does not overlap the {ref.region} of pair {ref.pair_id}: it "
                             f"spans {_describe(dmap.geometry)}, the box {_describe(target)}; its origin may follow "
                             "another convention (ORIGIN or NSTART) or belong to another map")
        nonlocal cover_all
        cover_all &= cov
        if kind == "probability" and (rng[0] < 0 or rng[1] > 1):
            log.warning("%s: values run from %g to %g, not 0-1; the threshold %g applies as given", path, *rng,
                        threshold)
        order = 1 if kind == "probability" else 0
        src = dmap if kind != "mask" else DensityMap((np.asarray(dmap.data) != 0).astype(np.float32),
                                                    dmap.geometry, dmap.path)
        values = on_grid(src, target, order)
        g = dmap.geometry
        info = {"role": role, "path": str(path), "kind": kind, "shape_zyx": list(g.shape),
                "voxel_size_xyz": list(g.voxel_size), "origin_xyz": list(g.origin),
                "origin_source": dmap.header.get("origin_source", ""), "coverage": share}
        if kind != "labels":
            info["value_range"] = list(rng)
        files.append(info)
        return values, kind, info

    if labels is not None:
        values, _, _ = place(labels, "labels")
        lab = np.rint(values)
        out = np.where(lab == helix_value, 1, np.where(lab == sheet_value, 2, 0)).astype(np.uint8)
        overlap, rule = 0, OVERLAP_RULES["labels"]
    else:
        shape = target.shape
        h_val, h_kind = (place(helix, "helix")[:2] if helix is not None else (np.zeros(shape, np.float32), "mask"))
        s_val, s_kind = (place(sheet, "sheet")[:2] if sheet is not None else (np.zeros(shape, np.float32), "mask"))
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
            raise ValueError(f"{dmap.path}: the label map has NaN or infinite values; the tool's output is damaged")
        frac = v != np.rint(v)
        if frac.any():
            raise ValueError(f"{dmap.path}: holds {float(v[frac].flat[0]):g}, not a label map (whole numbers); "
                             "give probability or mask maps with --helix and --sheet instead")


# --------------------------------------------------------------------------- scoring


def _finite(v: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def score_prediction(pred: Prediction, ref: Reference, radius: float = 3.0, ties: str = "background") -> dict[str, Any]:
    """Every figure of one prediction against one reference (a JSON-ready record).

    ``scores`` holds :func:`cryosse.evaluate.score_case`'s row (the columns of the evaluation's
    per-case table); the rest says what was scored against what."""
    row = score_case(pred.labels, ref.arrays, radius=radius, ties=ties, n_classes=SCORED_CLASSES)
    if not ref.truth.get("residues", False):
        row = {k: v for k, v in row.items() if not k.startswith(("res_", "n_res_"))}
    region = ref.region_mask()
    scored = ref.scored_mask()
    return {
        "pair_id": ref.pair_id,
        "region": ref.region,
        "region_voxels": int(region.sum()),
        "scored_voxels": int(scored.sum()),
        "region_within_map": float(scored.sum() / max(1, region.sum())),
        "truth": ref.truth,
        "prediction": {"files": pred.files, "threshold": pred.threshold, "overlap_rule": pred.overlap_rule,
                       "overlap_voxels": pred.overlap_voxels},
        "coverage": pred.coverage,
        "residue_radius": radius,
        "residue_ties": ties,
        "scores": row,
    }


# --------------------------------------------------------------------------- the workflow's external rows


def find_prediction(folder: str | os.PathLike, pair_id: str) -> dict[str, Path]:
    """An external tool's files for one pair: ``{pair_id}_helix`` + ``{pair_id}_sheet``, or ``{pair_id}``
    (one label map), each ending in one of :data:`MAP_SUFFIXES`. Raises FileNotFoundError (missing)
    or ValueError (ambiguous) with the reason."""
    folder = Path(folder)

    def one(stem: str) -> Path | None:
        hits = [folder / f"{stem}{s}" for s in MAP_SUFFIXES if (folder / f"{stem}{s}").is_file()]
        if len(hits) > 1:
            raise ValueError(f"{len(hits)} files for {stem} in {folder} ({', '.join(p.name for p in hits)}); keep one")
        return hits[0] if hits else None

    h, s, lab = one(f"{pair_id}_helix"), one(f"{pair_id}_sheet"), one(pair_id)
    if (h or s) and lab:
        raise ValueError(f"both {lab.name} and {(h or s).name} in {folder}: keep one layout (label map, or "  # type: ignore[union-attr]
                         "helix and sheet maps)")
    if h and s:
        return {"helix": h, "sheet": s}
    if lab:
        return {"labels": lab}
    if h or s:
        have, lack = ("helix", "sheet") if h else ("sheet", "helix")
        raise FileNotFoundError(f"{pair_id}_{have} is in {folder} but no {pair_id}_{lack}.mrc")
    raise FileNotFoundError(f"no {pair_id}_helix.mrc + {pair_id}_sheet.mrc or {pair_id}.mrc in {folder}")


def score_external_split(
    folder: str | os.PathLike,
    split_tsv: str | os.PathLike,
    dataset_tsv: str | os.PathLike,
    out_tsv: str | os.PathLike,
    tool: str,
    split: str | int = "0",
    role: str = "test",
    threshold: float = 0.5,
    helix_value: int = 1,
    sheet_value: int = 2,
    radius: float = 3.0,
    ties: str = "background",
) -> pd.DataFrame:
    """Score an external tool's predictions of every ``role`` case of a split, as evaluation scores ours.

    Writes a per-case table with the evaluation's columns (``loss`` = the tool's name, so
    the tables treat the tool like a loss) plus ``coverage``, ``overlap_voxels`` and
    ``prediction``. A case without a prediction is recorded with status ``missing``, one
    that cannot be scored with ``failed``, each with its reason; the others go on. The run
    fails only when no case could be scored (a wrong folder or layout).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of {tool}'s predictions (external.tools.{tool})")
    sp, ds = read_case_tables(split_tsv, dataset_tsv)
    cases = role_cases(sp, role, split_tsv)
    rows = []
    for pid in cases:
        row: dict[str, Any] = {"pair_id": pid, "split": str(split), "loss": tool, "setting": "external",
                               "gamma": math.nan, "best_val": math.nan}
        meta = add_pair_meta(row, ds, pid)
        try:
            files = find_prediction(folder, pid)
        except (FileNotFoundError, ValueError) as exc:
            row["status"] = "missing" if isinstance(exc, FileNotFoundError) else "failed"
            row["reason"] = str(exc)
            log.warning("%s: %s: %s", tool, pid, exc)
            rows.append(row)
            continue
        try:
            if meta is None:
                raise ValueError(f"{pid}: not in {dataset_tsv}")
            ref = pair_reference(load_pair_arrays(Path(str(meta["path"]))), pid)
            pred = read_prediction(ref, files.get("helix"), files.get("sheet"), files.get("labels"), threshold,
                                   helix_value, sheet_value)
            res = score_prediction(pred, ref, radius, ties)
            row.update(res["scores"])
            row.update(coverage=res["coverage"], overlap_voxels=pred.overlap_voxels,
                       prediction=",".join(p.name for p in files.values()))
            row["status"], row["reason"] = "ok", ""
        except (ValueError, FileNotFoundError, OSError, RuntimeError) as exc:
            log.error("%s: %s: scoring failed: %s", tool, pid, exc)
            row["status"], row["reason"] = "failed", str(exc)
        rows.append(row)
    df = pd.DataFrame(rows)
    if not (df["status"] == "ok").any():
        raise RuntimeError(f"{tool}: none of the {len(cases)} {role} cases of {split_tsv} could be scored from "
                           f"{folder} (expected {{pair_id}}_helix.mrc + {{pair_id}}_sheet.mrc or {{pair_id}}.mrc): "
                           + "; ".join(df["reason"].astype(str).head(3)))
    df = write_per_case(df, out_tsv)
    log.info("%s: %d of %d %s cases scored", tool, int((df["status"] == "ok").sum()), len(df), role)
    return df
