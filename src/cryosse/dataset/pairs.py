"""Map/label pairs: one chain (:func:`build_pair`); one entry's pairs are built by
:func:`~cryosse.dataset.entry.build_entry`, and the dataset tables over all entries by
:func:`~cryosse.dataset.entry.aggregate`.

A pair folder ``{pairs}/{pair_id}/`` holds ``map.mrc`` (the normalised 1 A
crop), ``labels.mrc``, ``arrays.npz`` and ``record.json``; it is built in a
temporary folder beside it and renamed into place, so it appears whole or not
at all. One broken chain or entry is recorded as rejected with its reason and
never stops the others.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cryosse import __version__
from cryosse.classes import NA_COLUMN, NUCLEIC, PAPER_CLASSES, check_classes
from cryosse.dataset.crop import Box, chain_box, crop
from cryosse.dataset.dssp import HELIX, OTHER, SHEET
from cryosse.dataset.labels import label_box
from cryosse.dataset.quality import QualityParams, chain_cylinder_score, precision_recall, quality_bin
from cryosse.dataset.structure import Model
from cryosse.density import CONTOUR_SD, normalise_density
from cryosse.geometry import DensityMap, MapError, MapGeometry, write_map
from cryosse.ids import pair_id
from cryosse.io import read_json, remove_stale_staging, sha256_file, staging_dir, write_json
from cryosse.pairfile import ARRAYS, write_pair_arrays

log = logging.getLogger(__name__)

ENTRY_COLUMNS = [
    "entry", "pair_id", "emdb_id", "pdb_id", "chain", "status", "stage", "reason",
    "resolution", "bin", "bin_at_0.8x", "bin_at_1.2x", "cyl_score", "n_helices", "precision", "recall", "pr_diff",
    "box_inside",
    "contour", "contour_source", "n_ca_helix", "n_ca_sheet", "n_ca_other",
    "nx", "ny", "nz", "sequence", "dssp_engine", "path",
]  # fmt: skip
DATASET_COLUMNS = [
    "pair_id", "emdb_id", "pdb_id", "chain", "resolution", "bin", "bin_at_0.8x", "bin_at_1.2x", "cyl_score", "pr_diff",
    "box_inside",
    "n_ca_helix", "n_ca_sheet", "n_ca_other", "nx", "ny", "nz", "sequence", "dssp_engine", "path",
]  # fmt: skip
REJECTED_COLUMNS = ["stage", "id", "reason"]


def _with_na(columns: list[str], classes: int) -> list[str]:
    """``columns`` with ``n_na`` after ``n_ca_other`` for 4 classes (3-class tables keep their columns)."""
    if classes == PAPER_CLASSES:
        return list(columns)
    i = columns.index("n_ca_other") + 1
    return columns[:i] + [NA_COLUMN] + columns[i:]


@dataclass(frozen=True)
class DatasetParams:
    """The ``dataset:`` section of the config (defaults = config/config.yaml)."""

    min_residues: int = 30
    dedup_identity: float = 0.70
    padding: float = 17.0
    spacing: float = 1.0
    label_radius: float = 3.0
    dssp_engine: str = "pydssp"
    contour_sd: float = CONTOUR_SD
    min_ca_inside: float = 0.95
    quality: QualityParams = field(default_factory=QualityParams)
    keep_bins: tuple[int, ...] = (1, 2, 3)
    require_helix: bool = True  # PAPER: a chain needs a helix; pretraining keeps all-beta chains too
    min_box_inside: float = 0.5  # CHOSEN: a box mostly outside its map (a cropped or small map) is rejected
    mask_outside: bool = True  # voxels of the box beyond the map: out of loss and metrics (else solvent)
    classes: int = PAPER_CLASSES  # the top-level config key; 4 labels nucleic acids as class 3

    def __post_init__(self) -> None:
        check_classes(self.classes, "dataset classes")

    @classmethod
    def from_config(cls, cfg: dict | None) -> DatasetParams:
        cfg = dict(cfg or {})
        q = dict(cfg.pop("quality", {}) or {})
        keep = tuple(int(b) for b in q.pop("keep_bins", cls.keep_bins))
        known = {k: v for k, v in cfg.items() if k in cls.__dataclass_fields__}
        return cls(**known, quality=QualityParams.from_config(q), keep_bins=keep)


def _fmt(x: float) -> str:
    return "NA" if x is None or not np.isfinite(x) else f"{x:.2f}"


class PairRejected(ValueError):
    """A chain that does not become a pair; the message is the reason."""

    def __init__(self, reason: str, scores: dict | None = None):
        super().__init__(reason)
        self.scores = scores or {}


#: the files of a pair folder; a folder holding anything else was not written by cryosse
PAIR_FILES = frozenset({"map.mrc", "labels.mrc", ARRAYS, "record.json"})


class OutputRefused(ValueError):
    """An output folder that cryosse will not replace; the message names it and the cause."""


def _is_pair_record(path: Path) -> bool:
    try:
        rec = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(rec, dict) and {"pair_id", "cryosse_version", "files"} <= rec.keys()


def check_pair_output(out_dir: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Refuse ``out_dir`` unless it is absent, empty, or a pair folder that cryosse wrote.

    A pair folder is replaced as a whole, so anything else there would be lost: a
    folder of other files, a regular file, a link, or a folder that holds one of
    the ``inputs`` (the map or the model being read) is refused by name.
    """
    out = Path(out_dir)
    target = out.resolve()
    for item in inputs:
        src = Path(item).resolve()
        if src == target or target in src.parents:
            raise OutputRefused(f"{out}: the output folder holds the input {item}; choose another folder")
    if out.is_symlink():
        raise OutputRefused(f"{out}: is a symbolic link; give the folder itself")
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputRefused(f"{out}: exists and is not a folder; choose another output or remove it yourself")
    names = sorted(e.name for e in out.iterdir())
    if not names:
        return
    foreign = [n for n in names if n not in PAIR_FILES]
    if foreign or "record.json" not in names or not _is_pair_record(out / "record.json"):
        shown = ", ".join(foreign[:3] or names[:3]) + (" ..." if len(foreign or names) > 3 else "")
        raise OutputRefused(
            f"{out}: exists and is not a pair folder written by cryosse (it holds {shown}); "
            "choose another output folder, or remove this one yourself"
        )


def _replace_dir(tmp: Path, final: Path, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Put the finished folder ``tmp`` at ``final`` by renames; only a pair folder is ever replaced."""
    check_pair_output(final, inputs)  # again: the folder may have changed while the pair was built
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_pair(
    dmap: DensityMap,
    model: Model,
    classes: dict[tuple[str, int, str], int],
    chain: str,
    out_dir: str | os.PathLike,
    params: DatasetParams,
    contour: float,
    contour_source: str,
    ids: dict,
    write_mrc: bool = True,
) -> dict:
    """Build the pair of ``chain`` into ``out_dir`` (made atomically); return its table row.

    ``ids``: emdb_id, pdb_id, resolution (and anything else to record). With
    ``write_mrc`` False only ``arrays.npz`` and ``record.json`` are written (what
    training reads; pretraining makes thousands of pairs).
    Raises :class:`PairRejected` with the reason (and scores so far) when the
    chain cannot make a usable pair.
    """
    out_dir = Path(out_dir)
    idx, atoms = _chain_in_map(dmap, model, chain, params)
    ca_chain = model.ca[idx]
    box = chain_box(atoms, dmap.geometry, params.padding, params.spacing)
    geom = box.geometry
    edge = max(geom.shape_xyz) * params.spacing
    if edge > MAX_BOX_EDGE_A:
        raise PairRejected(
            f"the chain's box would be {'x'.join(map(str, geom.shape_xyz))} voxels ({edge:.0f} A across; at most"
            f" {MAX_BOX_EDGE_A:.0f} A){_outliers(dmap, model, idx, atoms)}"
        )
    inside = box_inside(geom, dmap.geometry)
    box_in = round(float(inside.mean()), 4)
    if box_in < params.min_box_inside:
        raise PairRejected(
            f"only {100 * box_in:.0f}% of the box lies inside the map (need {100 * params.min_box_inside:.0f}%):"
            f" the map is cropped or small around this chain{_outliers(dmap, model, idx, atoms)}",
            {"box_inside": box_in},
        )
    try:
        raw = crop(dmap, box)
    except MapError as exc:
        raise PairRejected(str(exc)) from exc
    cls_chain = np.array([classes.get(model.keys[i], OTHER) for i in idx], np.uint8)
    scores = _quality(raw, geom, contour, ca_chain, cls_chain, atoms, params, box_in)
    try:
        density = normalise_density(raw)
    except ValueError as exc:
        raise PairRejected(f"box density: {exc}", scores) from exc
    labels, cas, extra = _labels(model, classes, box, params)
    counts = {f"n_ca_{name}": int(np.sum(cas["ca_in_centre"] & (cas["ca_class"] == c)))
              for name, c in (("helix", HELIX), ("sheet", SHEET), ("other", OTHER))}  # fmt: skip
    if extra:
        counts[NA_COLUMN] = int(np.sum(extra["na_in_centre"]))
    if not np.all(box.in_centre(ca_chain)):
        raise PairRejected("internal: a CA of the central chain lies outside the centre box", scores)
    if params.mask_outside and not inside.all():  # voxels beyond the map are unknown, not solvent
        extra["inside"] = inside
    pid = pair_id(ids["emdb_id"], ids["pdb_id"], chain)
    record = _record(pid, ids, chain, model, box, counts, scores, contour, contour_source, dmap, params)
    arrays = {"density": density, "labels": labels, "centre": box.centre, **cas, "origin_xyz": geom.origin_xyz,
              "voxel_size": geom.voxel_size[0], **extra}  # fmt: skip
    _write_pair(out_dir, tuple(p for p in (dmap.path, model.path) if p), geom, arrays, record, write_mrc)
    nz, ny, nx = geom.shape_zyx
    return {
        "pair_id": pid, "emdb_id": ids["emdb_id"], "pdb_id": ids["pdb_id"], "chain": chain,
        "status": "kept", "stage": "dataset", "reason": "", "resolution": ids.get("resolution"),
        **scores, "contour": contour, "contour_source": contour_source, **counts,
        "nx": nx, "ny": ny, "nz": nz, "sequence": record["sequence"],
        "dssp_engine": params.dssp_engine, "path": str(out_dir),
    }  # fmt: skip


def _record(pid: str, ids: dict, chain: str, model: Model, box: Box, counts: dict, scores: dict, contour: float,
            contour_source: str, dmap: DensityMap, params: DatasetParams) -> dict:  # fmt: skip
    """The pair's ``record.json`` (without the file digests, added as the files are written)."""
    geom = box.geometry
    c_lo, c_hi = box.centre_bounds_xyz()
    b_lo, b_hi = box.box_bounds_xyz()
    return {
        "pair_id": pid,
        "emdb_id": ids["emdb_id"],
        "pdb_id": ids["pdb_id"],
        "chain": chain,
        "resolution": ids.get("resolution"),
        "sequence": model.sequence(chain),
        "box": {"lower_xyz": b_lo, "upper_xyz": b_hi, "shape_zyx": list(geom.shape_zyx),
                "voxel_size": geom.voxel_size[0], "padding": params.padding},
        "centre_box": {"lower_xyz": c_lo, "upper_xyz": c_hi, "slices_zyx": list(box.centre)},
        "ca_counts_centre": counts,
        "quality": {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in scores.items()},
        "contour": {"level": contour, "source": contour_source},
        "dssp_engine": params.dssp_engine,
        "inputs": {"map": dmap.path, "model": model.path, "map_header": dmap.header},
        "params": _params_dict(params),
        "cryosse_version": __version__,
    }  # fmt: skip


#: the largest box edge a pair may have: a chain several times longer than any protein chain
#: in a cryo-EM map means an atom far from the rest (a typo in the coordinates)
MAX_BOX_EDGE_A = 600.0


def _outliers(dmap: DensityMap, model: Model, idx: np.ndarray, atoms: np.ndarray, shown: int = 3) -> str:
    """'; beyond the map: ...' naming the residues whose CA (else the atoms) lie farthest outside it."""
    lower, upper = dmap.geometry.lower, dmap.geometry.upper

    def beyond(xyz: np.ndarray) -> np.ndarray:  # distance outside the map's extent, 0 inside
        return np.linalg.norm(np.maximum(lower - xyz, 0) + np.maximum(xyz - upper, 0), axis=1)

    ca = model.ca[idx]
    far = beyond(ca)
    if (far > 0).any():
        order = np.argsort(-far)[: min(shown, int((far > 0).sum()))]
        named = [f"residue {model.keys[idx[i]][0]} {model.keys[idx[i]][1]}{model.keys[idx[i]][2]}".rstrip()
                 + f" (CA at {tuple(round(float(v), 1) for v in ca[i])})" for i in order]  # fmt: skip
        return f"; {int((far > 0).sum())} CA atom(s) lie beyond the map, farthest: {', '.join(named)}"
    far = beyond(atoms)
    if (far > 0).any():
        order = np.argsort(-far)[:shown]
        named = [str(tuple(round(float(v), 1) for v in atoms[i])) for i in order]
        return f"; {int((far > 0).sum())} atom(s) lie beyond the map, farthest at {', '.join(named)} A"
    return ""


def _chain_in_map(
    dmap: DensityMap, model: Model, chain: str, params: DatasetParams
) -> tuple[np.ndarray, np.ndarray]:
    """The chain's residue indices (with a CA) and atoms; refused when too short or outside the map."""
    idx = model.chain_index(chain)
    if len(idx) == 0:
        raise PairRejected(f"chain {chain} has no protein residue with a CA atom")
    if len(idx) < params.min_residues:
        raise PairRejected(f"chain {chain} has {len(idx)} residues with CA (< {params.min_residues})")
    inside = float(np.mean(dmap.geometry.contains(model.ca[idx])))
    if inside < params.min_ca_inside:
        raise PairRejected(
            f"model lies outside the map ({100 * inside:.0f}% of the chain's CA inside, need"
            f" {100 * params.min_ca_inside:.0f}%); wrong model, or the map's origin is wrong"
        )
    return idx, model.chain_atoms[chain]


def _quality(raw, geom, contour, ca_chain, cls_chain, atoms, params: DatasetParams, box_in: float) -> dict:
    """The quality scores and bin (and the bins at 0.8x and 1.2x the contour); refused outside ``keep_bins``."""
    q = params.quality
    cyl, n_hel = chain_cylinder_score(raw, geom, contour, ca_chain, cls_chain, q)
    prec, rec = precision_recall(raw, geom, contour, atoms, q)
    pr_diff = abs(prec - rec)
    b = quality_bin(cyl, pr_diff, q)
    # How much the bin hangs on the contour the depositors chose: the bin at 0.8x and 1.2x it.
    around = {}
    for f, col in ((0.8, "bin_at_0.8x"), (1.2, "bin_at_1.2x")):
        level = contour + (f - 1.0) * abs(contour)
        cyl_f, _ = chain_cylinder_score(raw, geom, level, ca_chain, cls_chain, q)
        p_f, r_f = precision_recall(raw, geom, level, atoms, q)
        around[col] = quality_bin(cyl_f, abs(p_f - r_f), q)
    scores = {"bin": b, **around, "cyl_score": cyl, "n_helices": n_hel, "precision": prec, "recall": rec,
              "pr_diff": pr_diff, "box_inside": box_in}  # fmt: skip
    if b not in params.keep_bins:
        why = (
            f" no helix of >= {q.helix_min_residues} residues to score, and the paper bins on both scores;"
            if not np.isfinite(cyl)
            else ""
        )
        raise PairRejected(f"bin {b} (cyl {_fmt(cyl)}, |P-R| {pr_diff:.2f});{why}".rstrip(";"), scores)
    return scores


def _labels(model: Model, classes: dict, box: Box, params: DatasetParams) -> tuple[np.ndarray, dict, dict]:
    """The box's voxel labels from every CA that can reach it (all chains; with 4 classes the
    nucleotide atoms too), and the CA arrays of the pair file (the CAs in the box)."""
    geom = box.geometry
    reach = params.label_radius + max(geom.voxel_size)

    def near(xyz: np.ndarray) -> np.ndarray:
        return np.all((xyz >= geom.lower - reach) & (xyz <= geom.upper + reach), axis=1)

    near_idx = np.flatnonzero(near(model.ca))
    ca_near = model.ca[near_idx]
    cls_near = np.array([classes.get(model.keys[i], OTHER) for i in near_idx], np.uint8)
    extra: dict[str, np.ndarray] = {}
    if params.classes == PAPER_CLASSES:
        labels = label_box(geom, ca_near, cls_near, params.label_radius)
    else:  # nucleotide atoms compete with the CAs: the nearest atom of either kind wins
        na_near = model.na[near(model.na)]
        labels = label_box(
            geom,
            np.concatenate([ca_near, na_near]),
            np.concatenate([cls_near, np.full(len(na_near), NUCLEIC, np.uint8)]),
            params.label_radius,
        )
        na_xyz = na_near[geom.contains(na_near)].astype(np.float32).reshape(-1, 3)
        extra = {
            "na_xyz": na_xyz,
            "na_in_centre": box.in_centre(na_xyz) if len(na_xyz) else np.zeros(0, bool),
        }
    in_box = geom.contains(ca_near)
    ca_xyz = ca_near[in_box].astype(np.float32)
    cas = {"ca_xyz": ca_xyz, "ca_class": cls_near[in_box],
           "ca_in_centre": box.in_centre(ca_xyz) if len(ca_xyz) else np.zeros(0, bool)}  # fmt: skip
    return labels, cas, extra


def _write_pair(
    out_dir: Path, inputs: tuple, geom: MapGeometry, arrays: dict, record: dict, write_mrc: bool
) -> None:
    """Write the pair's files into a staging folder beside ``out_dir`` and swap it in (all or nothing)."""
    check_pair_output(out_dir, inputs)
    remove_stale_staging(out_dir.parent, f"{out_dir.name}.tmp")
    remove_stale_staging(out_dir.parent, f"{out_dir.name}.old")
    tmp = staging_dir(out_dir.parent, f"{out_dir.name}.tmp")
    try:
        if write_mrc:
            write_map(tmp / "map.mrc", arrays["density"], geom)
            write_map(tmp / "labels.mrc", arrays["labels"], geom, dtype=np.int8)
        write_pair_arrays(tmp / ARRAYS, **arrays)
        record["files"] = {
            n: sha256_file(tmp / n) for n in ("map.mrc", "labels.mrc", ARRAYS) if (tmp / n).exists()
        }
        write_json(tmp / "record.json", record)
        _replace_dir(tmp, out_dir, inputs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def box_inside(box: MapGeometry, map_geom: MapGeometry) -> np.ndarray:
    """Bool [z, y, x] of the box's voxels whose centres lie within the map's voxel-centre extent."""
    lo, hi = map_geom.lower - 1e-6, map_geom.upper + 1e-6
    axes = []
    for a, n in zip((2, 1, 0), box.shape_zyx, strict=True):  # z, y, x of the box grid
        coords = box.origin_xyz[a] + box.voxel_size[a] * np.arange(n)
        axes.append((coords >= lo[a]) & (coords <= hi[a]))
    return axes[0][:, None, None] & axes[1][None, :, None] & axes[2][None, None, :]


def _params_dict(params: DatasetParams) -> dict:
    d = asdict(params)
    d["keep_bins"] = list(params.keep_bins)
    if params.classes == PAPER_CLASSES:
        del d["classes"]  # records of 3-class runs stay as they were before the fourth class
    if params.require_helix:
        del d["require_helix"]  # likewise: records of the paper's selection are unchanged
    return d
