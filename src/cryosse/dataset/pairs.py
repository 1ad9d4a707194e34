"""Map/label pairs: one chain (:func:`build_pair`), one entry (:func:`build_entry`),
and the dataset tables over all entries (:func:`aggregate`).

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
from cryosse.dataset.chains import select_chains
from cryosse.dataset.crop import chain_box, contour_level, crop
from cryosse.dataset.dssp import HELIX, OTHER, SHEET, assign
from cryosse.dataset.labels import label_box
from cryosse.dataset.quality import QualityParams, chain_cylinder_score, precision_recall, quality_bin
from cryosse.dataset.structure import Model, ModelError, read_model
from cryosse.density import normalise_density
from cryosse.geometry import DensityMap, MapError, MapGeometry, read_map, write_map
from cryosse.ids import pair_id
from cryosse.io import read_json, remove_stale_staging, sha256_file, staging_dir, write_json, write_tsv
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
    contour_sd: float = 3.0
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
    idx = model.chain_index(chain)
    if len(idx) == 0:
        raise PairRejected(f"chain {chain} has no protein residue with a CA atom")
    if len(idx) < params.min_residues:
        raise PairRejected(f"chain {chain} has {len(idx)} residues with CA (< {params.min_residues})")
    ca_chain = model.ca[idx]
    atoms = model.chain_atoms[chain]
    inside = float(np.mean(dmap.geometry.contains(ca_chain)))
    if inside < params.min_ca_inside:
        raise PairRejected(
            f"model lies outside the map ({100 * inside:.0f}% of the chain's CA inside, need"
            f" {100 * params.min_ca_inside:.0f}%); wrong model, or the map's origin is wrong"
        )
    box = chain_box(atoms, dmap.geometry, params.padding, params.spacing)
    geom = box.geometry
    inside = box_inside(geom, dmap.geometry)
    box_in = round(float(inside.mean()), 4)
    if box_in < params.min_box_inside:
        raise PairRejected(
            f"only {100 * box_in:.0f}% of the box lies inside the map (need {100 * params.min_box_inside:.0f}%):"
            " the map is cropped or small around this chain",
            {"box_inside": box_in},
        )
    try:
        raw = crop(dmap, box)
    except MapError as exc:
        raise PairRejected(str(exc)) from exc
    cls_chain = np.array([classes.get(model.keys[i], OTHER) for i in idx], np.uint8)
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
    scores = {
        "bin": b,
        **around,
        "cyl_score": cyl,
        "n_helices": n_hel,
        "precision": prec,
        "recall": rec,
        "pr_diff": pr_diff,
        "box_inside": box_in,
    }
    if b not in params.keep_bins:
        why = (
            f" no helix of >= {q.helix_min_residues} residues to score, and the paper bins on both scores;"
            if not np.isfinite(cyl)
            else ""
        )
        raise PairRejected(f"bin {b} (cyl {_fmt(cyl)}, |P-R| {pr_diff:.2f});{why}".rstrip(";"), scores)
    try:
        density = normalise_density(raw)
    except ValueError as exc:
        raise PairRejected(f"box density: {exc}", scores) from exc

    # Every CA that can label a voxel of the box (all chains), then those in the box.
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
    ca_class = cls_near[in_box]
    ca_in_centre = box.in_centre(ca_xyz) if len(ca_xyz) else np.zeros(0, bool)
    counts = {
        "n_ca_helix": int(np.sum(ca_in_centre & (ca_class == HELIX))),
        "n_ca_sheet": int(np.sum(ca_in_centre & (ca_class == SHEET))),
        "n_ca_other": int(np.sum(ca_in_centre & (ca_class == OTHER))),
    }
    if extra:
        counts[NA_COLUMN] = int(np.sum(extra["na_in_centre"]))
    if not np.all(box.in_centre(ca_chain)):
        raise PairRejected("internal: a CA of the central chain lies outside the centre box", scores)

    pid = pair_id(ids["emdb_id"], ids["pdb_id"], chain)
    inputs = tuple(p for p in (dmap.path, model.path) if p)
    check_pair_output(out_dir, inputs)
    remove_stale_staging(out_dir.parent, f"{out_dir.name}.tmp")
    remove_stale_staging(out_dir.parent, f"{out_dir.name}.old")
    tmp = staging_dir(out_dir.parent, f"{out_dir.name}.tmp")
    try:
        if write_mrc:
            write_map(tmp / "map.mrc", density, geom)
            write_map(tmp / "labels.mrc", labels, geom, dtype=np.int8)
        write_pair_arrays(
            tmp / ARRAYS,
            density=density,
            labels=labels,
            centre=box.centre,
            ca_xyz=ca_xyz,
            ca_class=ca_class,
            ca_in_centre=ca_in_centre,
            origin_xyz=geom.origin_xyz,
            voxel_size=geom.voxel_size[0],
            **extra,
            # only where part of the box lies beyond the map: those voxels are unknown, not solvent
            **({"inside": inside} if params.mask_outside and not inside.all() else {}),
        )
        c_lo, c_hi = box.centre_bounds_xyz()
        b_lo, b_hi = box.box_bounds_xyz()
        record = {
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
            "files": {name: sha256_file(tmp / name) for name in ("map.mrc", "labels.mrc", ARRAYS) if (tmp / name).exists()},
        }  # fmt: skip
        write_json(tmp / "record.json", record)
        _replace_dir(tmp, out_dir, inputs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    nz, ny, nx = geom.shape_zyx
    return {
        "pair_id": pid, "emdb_id": ids["emdb_id"], "pdb_id": ids["pdb_id"], "chain": chain,
        "status": "kept", "stage": "dataset", "reason": "", "resolution": ids.get("resolution"),
        **scores, "contour": contour, "contour_source": contour_source, **counts,
        "nx": nx, "ny": ny, "nz": nz, "sequence": record["sequence"],
        "dssp_engine": params.dssp_engine, "path": str(out_dir),
    }  # fmt: skip


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


def _resolve(path: str | None, base: Path) -> Path | None:
    if not path:
        return None
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return base / p


def _reject_row(entry: str, stage: str, reason: str, **extra) -> dict:
    row = {"entry": entry, "status": "rejected", "stage": stage, "reason": reason}
    row.update(extra)
    return row


def _entry_table(rows: list[dict], classes: int = PAPER_CLASSES) -> pd.DataFrame:  # noqa: F821
    import pandas as pd

    columns = _with_na(ENTRY_COLUMNS, classes)
    df = pd.DataFrame(rows)
    for col in columns:
        if col not in df:
            df[col] = None
    df = df[columns].copy()
    for col in INT_COLUMNS:  # "3", not "3.0", where other rows of the entry have none
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    return df


def load_inputs(
    map_path: str | os.PathLike, model_path: str | os.PathLike, engine: str
) -> tuple[DensityMap, Model, dict]:
    """Read a map and a model and assign DSSP; raise ValueError/RuntimeError with the cause."""
    model = read_model(model_path)
    if len(model.keys) == 0:
        if model.n_nucleic:
            raise ModelError(
                f"{model_path}: nucleic acids only ({model.n_nucleic} residues), no protein chain"
            )
        raise ModelError(f"{model_path}: no protein residue with a CA atom")
    if not np.any(model.has_full_backbone):
        raise ModelError(
            f"{model_path}: CA-only model (no residue has N, CA, C and O); DSSP needs the backbone"
        )
    classes = assign(model, engine)
    dmap = read_map(map_path)
    return dmap, model, classes


def build_entry(
    record_path: str | os.PathLike,
    table_path: str | os.PathLike,
    pairs_dir: str | os.PathLike,
    params: DatasetParams,
    entry: str | None = None,
) -> pd.DataFrame:  # noqa: F821
    """All pairs of one entry from its acquisition record; writes the per-entry table.

    Never raises for a bad map, model or chain: each becomes a rejected row.
    """
    record_path = Path(record_path)
    pairs_dir = Path(pairs_dir)
    rec = read_json(record_path)
    entry = entry or rec.get("emdb_id") or record_path.parent.name
    emdb_id = rec.get("emdb_id") or entry
    pdb_id = str(rec.get("pdb_id") or "").upper()
    base = {"emdb_id": emdb_id, "pdb_id": pdb_id, "resolution": rec.get("resolution")}
    rows: list[dict] = []
    if rec.get("status") != "ok":
        rows.append(_reject_row(entry, "acquire", rec.get("reason") or "rejected upstream", **base))
        write_tsv(table_path, _entry_table(rows, params.classes))
        return _entry_table(rows, params.classes)
    try:
        map_path = _resolve(rec.get("map"), record_path.parent)
        model_path = _resolve(rec.get("model"), record_path.parent)
        if map_path is None or model_path is None:
            raise ValueError(f"{record_path}: the record names no map or no model file")
        dmap, model, classes = load_inputs(map_path, model_path, params.dssp_engine)
        given = rec.get("contour_level")
        contour, source = contour_level(dmap, given, params.contour_sd)
        if given is not None and rec.get("contour_source"):
            source = rec["contour_source"]
    except (ValueError, RuntimeError, OSError) as exc:
        rows.append(_reject_row(entry, "dataset", str(exc), **base))
        write_tsv(table_path, _entry_table(rows, params.classes))
        return _entry_table(rows, params.classes)

    chains = model.chain_order
    sequences = {c: model.sequence(c) for c in chains}
    cls = {c: np.array([classes[model.keys[i]] for i in model.chain_index(c)]) for c in chains}
    requested = [str(c) for c in (rec.get("chains") or [])]
    choices = select_chains(
        chains, sequences, cls, requested, params.min_residues, params.dedup_identity, params.require_helix
    )
    # One pair per 70%-identity group: its first chain that makes a usable pair. A group whose
    # first chain fails (e.g. bin 4) falls to the next member, not out of the dataset.
    kept_for: dict[str, str] = {}
    for choice in choices:
        pid = pair_id(emdb_id, pdb_id, choice.chain)
        common = {"entry": entry, "pair_id": pid, "chain": choice.chain, "dssp_engine": params.dssp_engine,
                  "sequence": sequences.get(choice.chain, ""), "contour": contour, "contour_source": source, **base}  # fmt: skip
        if choice.group in kept_for or not (choice.kept or choice.standby):
            reason = choice.reason
            if choice.group in kept_for and kept_for[choice.group] != choice.group:  # the first chain failed
                reason = f"duplicate of chain {kept_for[choice.group]} (the group's pair; chain {choice.group} failed)"
            rows.append({**common, "status": "rejected", "stage": "dataset", "reason": reason})
            continue
        try:
            row = build_pair(
                dmap, model, classes, choice.chain, pairs_dir / pid, params, contour, source, base
            )
            rows.append({**common, **row})
            kept_for[choice.group] = choice.chain
        except PairRejected as exc:
            rows.append(
                {**common, **exc.scores, "status": "rejected", "stage": "dataset", "reason": str(exc)}
            )
        except (ValueError, RuntimeError, OSError) as exc:
            log.exception("%s chain %s", entry, choice.chain)
            rows.append(
                {**common, "status": "rejected", "stage": "dataset", "reason": f"{type(exc).__name__}: {exc}"}
            )
    for chain, n in model.nucleic_chains.items():  # listed, so that no chain of the model goes unmentioned
        role = (
            "its nucleotides label class 3 (nucleic acid) where they fall in a box"
            if params.classes == 4
            else "background in the labels (classes: 4 labels nucleic acid)"
        )
        rows.append({"entry": entry, "pair_id": pair_id(emdb_id, pdb_id, chain), "chain": chain, **base,
                     "status": "rejected", "stage": "dataset",
                     "reason": f"not protein: DNA/RNA chain of {n} nucleotide(s); {role}"})  # fmt: skip
    if not choices:
        rows.append(_reject_row(entry, "dataset", "no protein chain to use", **base))
    df = _entry_table(rows, params.classes)
    write_tsv(table_path, df)
    return df


QUALITY_COLUMNS = ["pair_id", "status", "contour_source", "bin", "bin_at_0.8x", "bin_at_1.2x", "cyl_score",
                   "precision", "recall", "pr_diff", "box_inside"]  # fmt: skip
#: integer columns of the per-entry and dataset tables (written as integers, empty where unknown)
INT_COLUMNS = ("bin", "bin_at_0.8x", "bin_at_1.2x", "n_helices", "n_ca_helix", "n_ca_sheet", "n_ca_other",
               NA_COLUMN, "nx", "ny", "nz")  # fmt: skip


def aggregate(entry_tables: list[str | os.PathLike], dataset_path: str | os.PathLike,
              rejected_path: str | os.PathLike, quality_path: str | os.PathLike | None = None,
              ) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: F821  # fmt: skip
    """Dataset table (kept pairs, sorted by pair_id) and rejection table (stage, id, reason);
    with ``quality_path``, the scores of every chain that was scored, kept or not (the card's
    bin distribution needs the bin-4 chains too).

    Entry tables of a 4-class run carry ``n_na``, and so does the dataset table.
    """
    import pandas as pd

    frames = [pd.read_csv(p, sep="\t", dtype={"chain": str, "pair_id": str}, keep_default_na=False,
                          na_values=[""]) for p in entry_tables]  # fmt: skip
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ENTRY_COLUMNS)
    kept = df[df["status"] == "kept"].sort_values("pair_id", kind="stable")
    with_na = [NA_COLUMN in f.columns for f in frames]
    if any(with_na) and not all(with_na):
        raise ValueError(
            "entry tables of 3-class and 4-class runs mixed (some have n_na, some not); "
            "rebuild the dataset stage with one `classes` setting"
        )
    columns = _with_na(DATASET_COLUMNS, 4 if any(with_na) else PAPER_CLASSES)
    dataset = kept.reindex(columns=columns)
    for col in INT_COLUMNS:
        if col in dataset:
            dataset[col] = dataset[col].astype("Int64")
    rej = df[df["status"] != "kept"]
    ids = rej["pair_id"].where(rej["pair_id"].notna() & (rej["pair_id"] != ""), rej["entry"])
    rejected = pd.DataFrame({"stage": rej["stage"].values, "id": ids.values, "reason": rej["reason"].values})
    write_tsv(dataset_path, dataset, float_format="%.4f")
    write_tsv(rejected_path, rejected)
    if quality_path is not None:
        scored = df[df["bin"].notna()].sort_values("pair_id", kind="stable").reindex(columns=QUALITY_COLUMNS)
        for col in ("bin", "bin_at_0.8x", "bin_at_1.2x"):
            scored[col] = scored[col].astype("Int64")
        write_tsv(quality_path, scored, float_format="%.4f")
    return dataset, rejected
