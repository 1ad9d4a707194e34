"""The truth a prediction is scored against: one of our pairs, or a label map (MRC, or the
DeepSSETracer authors' voxel-label text)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse.evaluate import centre_slices, load_pair_arrays
from cryosse.geometry import DensityMap, MapGeometry, read_map
from cryosse.io import read_json
from cryosse.score.regrid import _slabs, covered, on_grid

log = logging.getLogger(__name__)


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


def pair_reference(
    arrays: dict[str, np.ndarray], pair_id: str, whole_box: bool = False, source: str = ""
) -> Reference:
    """Our labels of a pair, scored in its centre box (as evaluation does) or its whole box."""
    truth = {
        "kind": "cryosse",
        "path": source,
        "what": "our labels (DSSP classes of the model, label radius around each CA)",
        "residues": True,
    }
    return Reference(
        _whole(arrays) if whole_box else dict(arrays),
        pair_id,
        "whole box" if whole_box else "centre box",
        truth,
    )


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
        # the authors' voxel label text (no header, commas): not a cryosse table, so not read_tsv
        df = pd.read_csv(path, header=None, comment="#", skip_blank_lines=True)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: cannot read as i,j,k,density,label lines ({exc})") from exc
    if df.shape[1] != 5:
        raise ValueError(
            f"{path}: {df.shape[1]} comma-separated fields per line; a voxel-label file has 5 "
            "(i,j,k,density,label)"
        )
    if not pd.api.types.is_numeric_dtype(df[0]):  # a header line
        df = df.iloc[1:]
    vals = df.apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.all(np.isfinite(vals), axis=1)
    if bad.any():
        raise ValueError(
            f"{path}: line {int(np.flatnonzero(bad)[0]) + 1}: not five numbers i,j,k,density,label"
        )
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
        raise ValueError(
            f"{path}: line {i + 1}: voxel {tuple(int(v) for v in ijk[i])} lies beyond the grid of "
            f"{dmap.path} ({n_xyz[0]}x{n_xyz[1]}x{n_xyz[2]}): the file belongs to another map"
        )
    if np.any((lab < 0) | (lab > 2)):
        i = int(np.flatnonzero((lab < 0) | (lab > 2))[0])
        raise ValueError(
            f"{path}: line {i + 1}: label {lab[i]:g}; expected 0 (other), 1 (helix) or 2 (sheet)"
        )
    flat = np.ravel_multi_index((ijk[:, 2], ijk[:, 1], ijk[:, 0]), dmap.geometry.shape_zyx)
    order = np.lexsort((lab, flat))
    clash = np.flatnonzero((np.diff(flat[order]) == 0) & (np.diff(lab[order]) != 0))
    if len(clash):
        a, b = sorted(order[clash[0] : clash[0] + 2])
        raise ValueError(
            f"{path}: lines {a + 1} and {b + 1} list voxel {tuple(int(v) for v in ijk[a])} with labels"
            f" {lab[a]:g} and {lab[b]:g}; a voxel has one label"
        )
    data = np.asarray(dmap.data, np.float32)
    at = data[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    if len(at) > 2 and np.std(at) > 0 and np.std(vals[:, 3]) > 0:
        r = float(np.corrcoef(at, vals[:, 3])[0, 1])
        if not r > 0.9:
            raise ValueError(
                f"{path}: its density column does not follow {dmap.path} at the voxels it lists "
                f"(correlation {r:.2f}): the file belongs to another map, or its i,j,k are not x,y,z"
            )
    labels = np.zeros(dmap.geometry.shape_zyx, np.uint8)
    listed = np.zeros(dmap.geometry.shape_zyx, bool)
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
            raise ValueError(
                f"{dmap.path}: {what} holds {float(v[bad].flat[0]):g}; a label map holds 0 (background), "
                "1 (helix), 2 (sheet) (3, nucleic acid, counts as background)"
            )


def _read_truth(truth: Path, map_path, listed_only: bool, notes: list[str]) -> tuple:
    """A truth label map or voxel-label text file: (labels, listed voxels or None, info, its geometry)."""
    if truth.suffix.lower() in (".txt", ".csv", ".tsv"):
        if map_path is None:
            raise ValueError(
                f"{truth}: a voxel-label text file indexes a map's grid: give that map with --map"
            )
        grid = read_map(map_path)
        labels, listed = read_voxel_label_text(truth, grid)
        info = {
            "kind": "voxel-label text",
            "path": str(truth),
            "grid": str(map_path),
            "listed_only": listed_only,
            "listed_voxels": int(listed.sum()),
        }
        notes.append(
            "the file lists only voxels with map value > 0; "
            + (
                "only those are scored"
                if listed_only
                else "the others count as background (label 0), as the DeepSSETracer authors count them"
            )
        )
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
    return labels, listed, info, geom


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
    labels, listed, info, geom = _read_truth(truth, map_path, listed_only, notes)
    info["residues"] = False
    notes.append("residue F1 is not scored against a label map (it gives no residue classes)")
    if base is None:
        nz, ny, nx = geom.shape_zyx
        if len({round(v, 6) for v in geom.voxel_size}) != 1:
            raise ValueError(
                f"{truth}: voxels of {geom.voxel_size} A are not cubic; score against a pair (a pair "
                "folder, or a model and its chain) on its 1 A grid"
            )
        arrays = {
            "labels": labels,
            "centre": np.array([0, nz, 0, ny, 0, nx], np.int64),
            "origin_xyz": np.asarray(geom.origin_xyz, float),
            "voxel_size": np.float64(geom.voxel_size[0]),
        }
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
        notes.append(
            f"the truth's grid covers {100 * share:.1f}% of the {base.region}; the rest is not scored"
        )
    info["notes"] = notes
    return Reference(arrays, base.pair_id, base.region, info)
