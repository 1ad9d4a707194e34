"""Model selection: per loss, the setting with the highest validation figure."""

from __future__ import annotations

import logging
import math
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from cryosse.io import atomic_path, read_tsv, write_tsv
from cryosse.model import CheckpointError, checkpoint_classes, load_checkpoint
from cryosse.statistics import loss_order
from cryosse.train.data import _with_nucleic

log = logging.getLogger(__name__)

SELECTION_COLUMNS = [
    "split",
    "loss",
    "setting",
    "lr",
    "gamma",
    "w_a",
    "w_b",
    "best_epoch",
    "epochs",
    "val_helix_f1",
    "val_sheet_f1",
    "val_mean",
    "device",
    "chosen",
    "checkpoint",
]


def _run_identity(path: Path, meta: dict) -> tuple[str, str, str]:
    """(split, loss, setting) of a training run, from its checkpoint's metadata (never from
    where the file lies: the workflow's folder layout is the workflow's business)."""
    loss = meta.get("loss")
    name = loss.get("name") if isinstance(loss, dict) else None
    if meta.get("split") is None or not name or not meta.get("setting"):
        raise CheckpointError(f"{path}: not a training run's checkpoint (no split, loss name or setting)")
    return str(meta["split"]), str(name), str(meta["setting"])


def select_models(
    checkpoints: Iterable[str | Path],
    table: str | Path,
    models_dir: str | Path,
    losses: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per loss, the setting with the highest validation figure; write the table and the chosen checkpoints.

    ``checkpoints`` are training runs' ``checkpoint.pt`` of one split (their metadata names
    the split, loss and setting; ``history.tsv`` beside each gives the epochs run).
    Ties go to the first setting in name order (deterministic). Each chosen
    checkpoint is copied to ``models_dir/{loss}.pt`` (atomically); every loss in
    ``losses`` must have at least one checkpoint.
    """
    rows = []
    n_classes: set[int] = set()
    for path in sorted(Path(c) for c in checkpoints):
        _, meta = load_checkpoint(path)
        n_classes.add(checkpoint_classes(meta))
        split, loss, setting = _run_identity(path, meta)
        best = meta.get("best_val", {})
        hist = path.parent / "history.tsv"
        epochs = len(read_tsv(hist)) if hist.exists() else math.nan
        params = meta.get("loss", {})
        rows.append(
            {
                "split": split,
                "loss": loss,
                "setting": setting,
                "lr": meta.get("lr"),
                "gamma": params.get("gamma", math.nan),
                "w_a": params.get("w_a", math.nan),
                "w_b": params.get("w_b", math.nan),
                "best_epoch": meta.get("epoch"),
                "epochs": epochs,
                "val_helix_f1": best.get("val_helix_f1", math.nan),
                "val_sheet_f1": best.get("val_sheet_f1", math.nan),
                "val_nucleic_f1": best.get("val_nucleic_f1", math.nan),
                "val_mean": best.get("val_mean", math.nan),
                "device": meta.get("device", ""),
                "chosen": False,
                "checkpoint": str(path),
            }
        )
    if len(n_classes) > 1:
        raise CheckpointError(
            f"checkpoints of 3-class and 4-class networks mixed: {sorted(r['checkpoint'] for r in rows)}"
        )
    if not rows:
        raise ValueError("no checkpoints to select from")
    df = pd.DataFrame(rows, columns=_with_nucleic(SELECTION_COLUMNS, n_classes.pop()))
    if df["split"].nunique() != 1:
        raise ValueError(f"checkpoints of several splits given: {sorted(df['split'].unique())}")
    wanted = list(losses) if losses is not None else list(dict.fromkeys(df["loss"]))
    missing = [lo for lo in wanted if lo not in set(df["loss"])]
    if missing:
        raise ValueError(f"no checkpoint for loss(es) {missing}")
    models = Path(models_dir)
    for loss in wanted:
        sub = df[df["loss"] == loss].sort_values("setting", kind="stable")
        best_idx = sub["val_mean"].astype(float).fillna(-math.inf).idxmax()
        df.loc[best_idx, "chosen"] = True
        with atomic_path(models / f"{loss}.pt") as tmp:
            shutil.copyfile(df.loc[best_idx, "checkpoint"], tmp)
    order = {lo: i for i, lo in enumerate(loss_order(df["loss"]))}
    df = df.sort_values(
        ["loss", "setting"], key=lambda s: s.map(order) if s.name == "loss" else s, kind="stable"
    )
    write_tsv(table, df, float_format="%.6g")
    return df


def select_job(checkpoints: Sequence[str], table: str, models: Sequence[str], losses: Sequence[str]) -> None:
    """Entry point of the Snakemake rule: ``models`` are ``{models_dir}/{loss}.pt`` for ``losses``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    dirs = {Path(m).parent for m in models}
    if len(dirs) != 1 or sorted(Path(m).stem for m in models) != sorted(losses):
        raise ValueError(f"model outputs {list(models)} are not one folder's {{loss}}.pt for {list(losses)}")
    df = select_models(checkpoints, table, dirs.pop(), losses)
    for row in df[df["chosen"]].itertuples():
        log.info(
            "split %s %s: chose %s (validation mean %.4f)", row.split, row.loss, row.setting, row.val_mean
        )
