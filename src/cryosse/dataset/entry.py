"""One entry's pairs (``build_entry``: every selected chain of one EMDB map, each kept or
rejected with its reason) and the dataset tables of all entries (``aggregate``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.classes import NA_COLUMN, PAPER_CLASSES
from cryosse.dataset.chains import select_chains
from cryosse.dataset.crop import contour_level
from cryosse.dataset.dssp import assign
from cryosse.dataset.pairs import (
    DATASET_COLUMNS,
    ENTRY_COLUMNS,
    DatasetParams,
    PairRejected,
    _with_na,
    build_pair,
)
from cryosse.dataset.structure import Model, ModelError, read_model
from cryosse.geometry import DensityMap, read_map
from cryosse.ids import pair_id
from cryosse.io import read_json, read_tsv, write_tsv

log = logging.getLogger(__name__)


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


def _nucleic_rows(model, entry: str, emdb_id: str, pdb_id: str, base: dict, classes: int) -> list[dict]:
    """A rejected row for every DNA/RNA chain, so that no chain of the model goes unmentioned."""
    rows = []
    for chain, n in model.nucleic_chains.items():
        role = (
            "its nucleotides label class 3 (nucleic acid) where they fall in a box"
            if classes == 4
            else "background in the labels (classes: 4 labels nucleic acid)"
        )
        rows.append(
            {
                "entry": entry,
                "pair_id": pair_id(emdb_id, pdb_id, chain),
                "chain": chain,
                **base,
                "status": "rejected",
                "stage": "dataset",
                "reason": f"not protein: DNA/RNA chain of {n} nucleotide(s); {role}",
            }
        )
    return rows


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
        common = {
            "entry": entry,
            "pair_id": pid,
            "chain": choice.chain,
            "dssp_engine": params.dssp_engine,
            "sequence": sequences.get(choice.chain, ""),
            "contour": contour,
            "contour_source": source,
            **base,
        }
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
    rows += _nucleic_rows(model, entry, emdb_id, pdb_id, base, params.classes)
    if not choices:
        rows.append(_reject_row(entry, "dataset", "no protein chain to use", **base))
    df = _entry_table(rows, params.classes)
    write_tsv(table_path, df)
    return df


QUALITY_COLUMNS = [
    "pair_id",
    "status",
    "contour_source",
    "bin",
    "bin_at_0.8x",
    "bin_at_1.2x",
    "cyl_score",
    "precision",
    "recall",
    "pr_diff",
    "box_inside",
]
#: integer columns of the per-entry and dataset tables (written as integers, empty where unknown)
INT_COLUMNS = (
    "bin",
    "bin_at_0.8x",
    "bin_at_1.2x",
    "n_helices",
    "n_ca_helix",
    "n_ca_sheet",
    "n_ca_other",
    NA_COLUMN,
    "nx",
    "ny",
    "nz",
)


def aggregate(
    entry_tables: list[str | os.PathLike],
    dataset_path: str | os.PathLike,
    rejected_path: str | os.PathLike,
    quality_path: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: F821
    """Dataset table (kept pairs, sorted by pair_id) and rejection table (stage, id, reason);
    with ``quality_path``, the scores of every chain that was scored, kept or not (the card's
    bin distribution needs the bin-4 chains too).

    Entry tables of a 4-class run carry ``n_na``, and so does the dataset table.
    """
    import pandas as pd

    frames = [read_tsv(p) for p in entry_tables]
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
