"""Scoring a prediction against a reference, and the workflow's rows for external tools."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from cryosse.classes import PAPER_CLASSES
from cryosse.evaluate import (
    add_pair_meta,
    load_pair_arrays,
    read_case_tables,
    role_cases,
    score_case,
    write_per_case,
)
from cryosse.score.prediction import Prediction, read_prediction
from cryosse.score.reference import Reference, pair_reference

log = logging.getLogger(__name__)

SCORED_CLASS_COUNT = PAPER_CLASSES  # background, helix and sheet: what every tool predicts
#: file name endings of a prediction in an external tool's folder (workflow layout)
MAP_SUFFIXES = (".mrc", ".map", ".ccp4", ".mrc.gz", ".map.gz", ".ccp4.gz")


def score_prediction(
    pred: Prediction, ref: Reference, radius: float = 3.0, ties: str = "background"
) -> dict[str, Any]:
    """Every figure of one prediction against one reference (a JSON-ready record).

    ``scores`` holds :func:`cryosse.evaluate.score_case`'s row (the columns of the evaluation's
    per-case table); the rest says what was scored against what."""
    row = score_case(pred.labels, ref.arrays, radius=radius, ties=ties, n_classes=SCORED_CLASS_COUNT)
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
        "prediction": {
            "files": pred.files,
            "threshold": pred.threshold,
            "overlap_rule": pred.overlap_rule,
            "overlap_voxels": pred.overlap_voxels,
        },
        "coverage": pred.coverage,
        "residue_radius": radius,
        "residue_ties": ties,
        "scores": row,
    }


def find_prediction(folder: str | os.PathLike, pair_id: str) -> dict[str, Path]:
    """An external tool's files for one pair: ``{pair_id}_helix`` + ``{pair_id}_sheet``, or ``{pair_id}``
    (one label map), each ending in one of :data:`MAP_SUFFIXES`. Raises FileNotFoundError (missing)
    or ValueError (ambiguous) with the reason."""
    folder = Path(folder)

    def one(stem: str) -> Path | None:
        hits = [folder / f"{stem}{s}" for s in MAP_SUFFIXES if (folder / f"{stem}{s}").is_file()]
        if len(hits) > 1:
            raise ValueError(
                f"{len(hits)} files for {stem} in {folder} ({', '.join(p.name for p in hits)}); keep one"
            )
        return hits[0] if hits else None

    h, s, lab = one(f"{pair_id}_helix"), one(f"{pair_id}_sheet"), one(pair_id)
    if (h or s) and lab:
        raise ValueError(
            f"both {lab.name} and {(h or s).name} in {folder}: keep one layout (label map, or "  # type: ignore[union-attr]
            "helix and sheet maps)"
        )
    if h and s:
        return {"helix": h, "sheet": s}
    if lab:
        return {"labels": lab}
    if h or s:
        have, lack = ("helix", "sheet") if h else ("sheet", "helix")
        raise FileNotFoundError(f"{pair_id}_{have} is in {folder} but no {pair_id}_{lack}.mrc")
    raise FileNotFoundError(f"no {pair_id}_helix.mrc + {pair_id}_sheet.mrc or {pair_id}.mrc in {folder}")


def _score_case(
    pid: str,
    meta: Any,
    files: dict[str, Path],
    threshold: float,
    helix_value: int,
    sheet_value: int,
    radius: float,
    ties: str,
) -> dict[str, Any]:
    """One case's per-case row entries: scores against our labels, coverage, overlap, the files."""
    ref = pair_reference(load_pair_arrays(Path(str(meta["path"]))), pid)
    pred = read_prediction(
        ref, files.get("helix"), files.get("sheet"), files.get("labels"), threshold, helix_value, sheet_value
    )
    res = score_prediction(pred, ref, radius, ties)
    return {
        **res["scores"],
        "coverage": res["coverage"],
        "overlap_voxels": pred.overlap_voxels,
        "prediction": ",".join(p.name for p in files.values()),
        "status": "ok",
        "reason": "",
    }


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
        row: dict[str, Any] = {
            "pair_id": pid,
            "split": str(split),
            "loss": tool,
            "setting": "external",
            "gamma": math.nan,
            "best_val": math.nan,
        }
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
            row.update(_score_case(pid, meta, files, threshold, helix_value, sheet_value, radius, ties))
        except (ValueError, FileNotFoundError, OSError, RuntimeError) as exc:
            log.error("%s: %s: scoring failed: %s", tool, pid, exc)
            row["status"], row["reason"] = "failed", str(exc)
        rows.append(row)
    df = pd.DataFrame(rows)
    if not (df["status"] == "ok").any():
        raise RuntimeError(
            f"{tool}: none of the {len(cases)} {role} cases of {split_tsv} could be scored from "
            f"{folder} (expected {{pair_id}}_helix.mrc + {{pair_id}}_sheet.mrc or {{pair_id}}.mrc): "
            + "; ".join(df["reason"].astype(str).head(3))
        )
    df = write_per_case(df, out_tsv)
    log.info("%s: %d of %d %s cases scored", tool, int((df["status"] == "ok").sum()), len(df), role)
    return df
