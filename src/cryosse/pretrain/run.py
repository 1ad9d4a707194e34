"""Training the pretraining run and reporting it: held-out families, learning curves.

:func:`train` hands the ``pretrain.train`` section to the package's trainer
(:func:`cryosse.train.train_setting`: seeded, resumable after a kill from its
``state.pt``). :func:`report` scores the best checkpoint on every pair that was
never trained on (validation families and held-out families, listed apart),
per fold class, and draws the learning curves.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse.classes import COLOURS
from cryosse.density import prepare_input
from cryosse.infer import predict_probabilities
from cryosse.io import read_tsv, write_tsv
from cryosse.loss_names import series_colours
from cryosse.metrics import confusion, f1_from_counts
from cryosse.model import load_checkpoint
from cryosse.train import TrainConfig, load_pair, train_setting

log = logging.getLogger(__name__)


def train(dataset_tsv: str, split_tsv: str, checkpoint: str, cfg: dict[str, Any], seed: int) -> dict:
    """Train the pretraining network into ``checkpoint``'s folder (resumes from its state.pt)."""
    c = dict(cfg)
    loss, setting = c.pop("loss"), c.pop("setting")
    tc = TrainConfig.from_mapping(c, seed)
    return train_setting(dataset_tsv, split_tsv, "pretrain", loss, setting, Path(checkpoint).parent, tc)


def attach_spectrum(checkpoint: str, dataset_tsv: str, split_tsv: str, out: str) -> list[float]:
    """``checkpoint``'s network with an input preparation added: every input brought to the mean
    radial amplitude profile of its training boxes (:mod:`cryosse.spectrum`; the same boxes the
    trainer would take with ``match_spectrum``). The weights are unchanged."""
    from cryosse.model import build_model, save_checkpoint
    from cryosse.spectrum import reference_profile, reference_sample
    from cryosse.train.data import _load_pairs, read_split_pairs

    model, meta = load_checkpoint(checkpoint)
    pairs = _load_pairs(read_split_pairs(dataset_tsv, split_tsv)["train"], "train", split_tsv, [])
    sample = reference_sample(pairs)
    ref = reference_profile(p.density for p in sample)
    net = build_model({**model.model_args, "input_spectrum": ref})
    net.load_state_dict(model.state_dict())
    keep = {
        k: v
        for k, v in meta.items()
        if k not in ("format", "arch", "model_args", "state_dict", "weights_sha256", "cryosse_version")
    }
    save_checkpoint(
        out,
        net,
        **keep,
        input_spectrum_from={
            "weights": str(checkpoint),
            "boxes": len(sample),
            "of_training_pairs": len(pairs),
        },
    )
    log.info(
        "%s: %s's weights with the amplitude profile of %d training boxes",
        out,
        checkpoint,
        len(sample),
    )
    return ref


def _scores(model, pair, device: str = "cpu") -> dict[str, float]:
    prob = predict_probabilities(model, prepare_input(pair.density, model.model_args), device)
    pred, truth = prob.argmax(0)[pair.centre.slices], pair.labels[pair.centre.slices]
    out: dict[str, float] = {}
    for k, name in ((1, "helix"), (2, "sheet")):
        tp, fp, fn = confusion(pred, truth, k)
        out[f"{name}_f1"], out[f"{name}_true"] = f1_from_counts(tp, fp, fn), float(tp + fn)
    return out


def weighted(df: pd.DataFrame, name: str) -> float:
    """F1 weighted by true voxels (SPEC 10), NaN cases weigh 0."""
    f, w = df[f"{name}_f1"].astype(float), df[f"{name}_true"].astype(float)
    ok = f.notna() & (w > 0)
    return float(np.average(f[ok], weights=w[ok])) if ok.any() else math.nan


def report(
    checkpoint: str,
    dataset_tsv: str,
    split_tsv: str,
    structures_tsv: str,
    history_tsv: str,
    out_tsv: str,
    out_md: str,
    out_png: str,
    threads: int = 1,
) -> pd.DataFrame:
    """Per-pair F1 of every pair not trained on; a Markdown summary and the curves figure."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    model, meta = load_checkpoint(checkpoint)
    ds = read_tsv(dataset_tsv)
    split = read_tsv(split_tsv, text=True)
    ds = ds.merge(split[["pair_id", "role"]].rename(columns={"role": "split_role"}), on="pair_id")
    rows = []
    for r in ds[ds["split_role"] != "train"].itertuples(index=False):
        pair = load_pair(r.pair_id, Path(r.path))
        rows.append(
            {
                "pair_id": r.pair_id,
                "structure": r.structure,
                "role": r.role,
                "resolution": r.resolution,
                "sim": r.sim,
                **_scores(model, pair),
            }
        )
    df = pd.DataFrame(rows)
    write_tsv(out_tsv, df, float_format="%.4f")
    folds = read_tsv(structures_tsv, text=True)[["structure", "fold"]]
    df = df.merge(folds, on="structure", how="left")
    lines = [
        f"# Pretraining: {meta.get('loss', {}).get('name')} {meta.get('setting')}, width "
        f"{meta['model_args']['width']:g}, best epoch {meta.get('epoch')}",
        "",
        "Weighted voxel F1 (%) on the centre boxes of pairs never trained on:",
        "",
        "| pairs | role | structures | n | helix F1 | sheet F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for role in ("val", "holdout"):
        for fold in ("all", "all-alpha", "all-beta", "alpha/beta", "few-sse"):
            sub = df[(df["role"] == role) & ((df["fold"] == fold) if fold != "all" else True)]
            if len(sub):
                lines.append(
                    f"| {fold} | {role} | {sub['structure'].nunique()} | {len(sub)} | "
                    f"{100 * weighted(sub, 'helix'):.1f} | {100 * weighted(sub, 'sheet'):.1f} |"
                )
    Path(out_md).write_text("\n".join(lines) + "\n")
    curves(history_tsv, out_png, meta.get("loss", {}).get("name", "FL_DL"))
    return df


def curves(history_tsv: str | os.PathLike, out_png: str | os.PathLike, loss: str = "FL_DL") -> None:
    """Training loss and validation F1 (%) against training steps, in the workflow figures'
    colours (the loss's, and one per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = read_tsv(history_tsv)
    steps = h["steps"].cumsum()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(steps, h["train_loss"], color=series_colours([loss])[loss])
    a.set_xlabel("training steps")
    a.set_ylabel(f"training loss ({loss})")
    for cls in ("helix", "sheet"):
        b.plot(steps, 100 * h[f"val_{cls}_f1"], label=cls, color=COLOURS[cls])
    b.set_xlabel("training steps")
    b.set_ylabel("validation voxel F1 (%)")
    b.set_ylim(0, 100)
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
