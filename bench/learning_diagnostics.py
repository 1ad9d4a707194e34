"""Why small CPU networks did not learn: one factor at a time, measured (issue 13, item 1).

Each variant trains through the package's own trainer (``cryosse.train.train_setting``) on a
finished demo run's split 0, validating every epoch on the validation AND test pairs (9 boxes,
so one noisy box moves the figure less). After training, the final weights are scored twice on
those boxes and on 6 training boxes: in eval mode (BatchNorm running statistics, as every user
runs the network) and with batch statistics (BatchNorm in train mode, dropout off), which shows
how much the running statistics cost.

    python bench/learning_diagnostics.py --results results/demo --out docs/learning \
        --variants baseline no_dropout ... --threads 1

Writes ``{out}/{variant}/history.tsv`` and appends to ``{out}/summary.tsv``; ``--plot`` draws
``{out}/curves.png`` from whatever summary and histories exist.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cryosse.metrics import confusion, f1_from_counts  # noqa: E402
from cryosse.train import TrainConfig, load_pair, read_split_pairs, train_setting  # noqa: E402

BASE = dict(width=0.25, patch=32, dropout=0.5, batch=1, foreground=0.0, init="default", rotate=False)
#: variant -> (loss, setting, overrides of BASE); one factor changes at a time from its parent
VARIANTS = {
    "baseline": ("CE_DL", "lr0.001", {}),
    "init_normal": ("CE_DL", "lr0.001", {"init": "normal"}),
    "no_dropout": ("CE_DL", "lr0.001", {"dropout": 0.0}),
    "fg": ("CE_DL", "lr0.001", {"dropout": 0.0, "foreground": 0.5}),
    "fg_batch4": ("CE_DL", "lr0.001", {"dropout": 0.0, "foreground": 0.5, "batch": 4}),
    "fg_batch4_lr1e-4": ("CE_DL", "lr0.0001", {"dropout": 0.0, "foreground": 0.5, "batch": 4}),
    "fg_batch4_rot": ("CE_DL", "lr0.001", {"dropout": 0.0, "foreground": 0.5, "batch": 4, "rotate": True}),
    "fg_batch4_p48": ("CE_DL", "lr0.001", {"dropout": 0.0, "foreground": 0.5, "batch": 2, "patch": 48}),
    "fg_batch4_CE": ("CE", "lr0.001", {"dropout": 0.0, "foreground": 0.5, "batch": 4}),
}


def diag_split(results: Path, out: Path) -> Path:
    """Split 0 with its test pairs moved to validation (the network never trains on them)."""
    sp = pd.read_csv(results / "splits" / "split_0.tsv", sep="\t", dtype=str)
    sp.loc[sp["role"] == "test", "role"] = "val"
    path = out / "split_diag.tsv"
    out.mkdir(parents=True, exist_ok=True)
    sp.to_csv(path, sep="\t", index=False)
    return path


def score(model: torch.nn.Module, pairs, batch_stats: bool) -> tuple[float, float]:
    """Mean centre-box voxel F1 (helix, sheet) over ``pairs``, eval mode or batch statistics.

    Batch statistics: BatchNorm normalises each box by its own statistics (train mode with
    momentum 0, so the running averages stay as they are); dropout stays off either way.
    """
    from cryosse.infer import pad_to_multiple
    from cryosse.patches import solvent_value

    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d) and batch_stats:
            m.train()
            m.momentum = 0.0
    f = {1: [], 2: []}
    with torch.no_grad():
        for p in pairs:
            x = torch.from_numpy(np.ascontiguousarray(p.density))[None, None]
            x, (d, h, w) = pad_to_multiple(x, value=solvent_value(p.density))
            prob = torch.softmax(model(x)[0, :, :d, :h, :w], 0).numpy()
            z0, z1, y0, y1, x0, x1 = p.centre
            pred, truth = prob.argmax(0)[z0:z1, y0:y1, x0:x1], p.labels[z0:z1, y0:y1, x0:x1]
            for k in f:
                f[k].append(f1_from_counts(*confusion(pred, truth, k)))
    model.eval()
    return tuple(float(np.nanmean(f[k])) if not np.all(np.isnan(f[k])) else float("nan") for k in (1, 2))  # type: ignore[return-value]


def run(
    variant: str, results: Path, out: Path, epochs: int, steps: int, threads: int, rescore: bool = False
) -> dict:
    loss, setting, over = VARIANTS[variant]
    cfg = TrainConfig(**{**BASE, **over}, max_epochs=epochs, patience=epochs, max_steps_per_epoch=steps,
                      threads=threads, device="cpu", seed=42, progress_interval_s=60.0)  # fmt: skip
    split = diag_split(results, out)
    t0 = time.perf_counter()
    if not rescore:
        train_setting(results / "dataset" / "dataset.tsv", split, 0, loss, setting, out / variant, cfg)
    seconds = time.perf_counter() - t0
    from cryosse.model import build_model

    st = torch.load(out / variant / "state.pt", weights_only=True)
    model = build_model({"width": cfg.width, "dropout": cfg.dropout, "n_classes": 3, "in_channels": 1})
    model.load_state_dict(st["model"])
    roles = read_split_pairs(results / "dataset" / "dataset.tsv", split)
    val = [load_pair(pid, f) for pid, f in roles["val"]]
    train = [load_pair(pid, f) for pid, f in roles["train"][:6]]
    hist = pd.read_csv(out / variant / "history.tsv", sep="\t")
    row = {"variant": variant, "loss": loss, "setting": setting, **{k: v for k, v in {**BASE, **over}.items()},
           "steps": int(hist["steps"].sum()), "voxels_seen": int(hist["steps"].sum()) * cfg.batch * cfg.patch**3,
           "seconds": round(seconds, 1) if not rescore else float(hist["seconds"].sum()), "best_val_mean": float(hist["val_mean"].max()),
           "last_val_helix": float(hist["val_helix_f1"].iloc[-1]), "last_val_sheet": float(hist["val_sheet_f1"].iloc[-1])}  # fmt: skip
    for name, pairs in (("val", val), ("train", train)):
        for mode, bs in (("eval", False), ("batchstats", True)):
            h, s = score(model, pairs, bs)
            row[f"{name}_{mode}_helix"], row[f"{name}_{mode}_sheet"] = round(h, 4), round(s, 4)
    summary = out / "summary.tsv"
    df = pd.read_csv(summary, sep="\t") if summary.exists() else pd.DataFrame()
    df = pd.concat(
        [df[df.get("variant", pd.Series(dtype=str)) != variant] if len(df) else df, pd.DataFrame([row])]
    )
    df.to_csv(summary, sep="\t", index=False)
    print(pd.DataFrame([row]).T.to_string(header=False), flush=True)
    return row


#: the legend's words for each variant (what it changes from the one before it, as docs/learning.md)
DESCRIPTIONS = {
    "baseline": "baseline: dropout 0.5, batch 1, 32^3 anywhere",
    "init_normal": "baseline + N(0, 0.1) init",
    "no_dropout": "baseline, dropout 0",
    "fg": "+ half the patches on helix/sheet",
    "fg_batch4": "+ 4 patches a step",
    "fg_batch4_lr1e-4": "4 patches a step, lr 1e-4",
    "fg_batch4_rot": "4 patches a step + 24 rotations",
    "fg_batch4_p48": "2 patches of 48^3 a step",
    "fg_batch4_CE": "4 patches a step, CE alone",
}


def plot(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in VARIANTS if (out / v / "history.tsv").exists()]
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, len(VARIANTS))))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    for v in variants:
        h = pd.read_csv(out / v / "history.tsv", sep="\t")
        steps = h["steps"].cumsum()
        style = {"color": colours[list(VARIANTS).index(v)], "label": DESCRIPTIONS[v],
                 "ls": "--" if VARIANTS[v][0] == "CE" else "-"}  # fmt: skip
        axes[0].plot(steps, h["train_loss"], **style)
        axes[1].plot(steps, 100 * h["val_helix_f1"], **style)
        axes[2].plot(steps, 100 * h["val_sheet_f1"], **style)
    axes[0].set_ylabel("training loss (CE_DL; dashed: CE)")
    axes[1].set_ylabel("validation helix F1 (%)")
    axes[2].set_ylabel("validation sheet F1 (%)")
    for ax in axes:
        ax.set_xlabel("training steps")
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=7, loc="upper left")
    fig.suptitle("Demo split 0, width 0.25, 9 validation boxes scored in eval mode after every epoch")
    fig.savefig(out / "curves.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "demo")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "learning")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40, help="steps per epoch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plot", action="store_true", help="only draw curves.png")
    ap.add_argument(
        "--rescore", action="store_true", help="score the finished variants again from their state.pt"
    )
    a = ap.parse_args()
    if not a.plot:
        for v in a.variants:
            run(v, a.results, a.out, a.epochs, a.steps, a.threads, a.rescore)
    plot(a.out)


if __name__ == "__main__":
    main()
