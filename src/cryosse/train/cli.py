"""``cryosse train`` and ``cryosse select``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cryosse import paths
from cryosse.argtypes import AT_LEAST_ONE, COUNT, FRACTION, NON_NEGATIVE, number, out_dir_option
from cryosse.losses import LOSSES
from cryosse.model import INITS
from cryosse.train.select import select_models
from cryosse.train.trainer import AMPS, LR_SCHEDULES, TrainConfig, train_setting


def _json_object(text: str) -> dict:
    """A JSON object given on the command line (argparse type)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = TrainConfig(
        width=args.width,
        max_epochs=args.max_epochs,
        patience=args.patience,
        patch=args.patch,
        max_steps_per_epoch=args.max_steps,
        device=args.device,
        seed=args.seed,
        threads=args.threads,
        dropout=args.dropout,
        init=args.init,
        batch=args.batch,
        foreground=args.foreground,
        rotate=args.rotate,
        balance=args.balance,
        lr_schedule=args.lr_schedule,
        intensity=args.intensity,
        init_from=args.init_from,
        input_lowpass=args.input_lowpass,
        realism=args.realism,
        amp=args.amp,
        match_spectrum=args.match_spectrum,
        progress_interval_s=args.progress_interval,
    )
    meta = train_setting(
        args.dataset,
        args.split_table,
        args.split,
        args.loss,
        args.setting,
        args.out,
        cfg,
        classes=args.classes,
    )
    b = meta["best_val"]
    print(
        f"best epoch {b['epoch']}: val helix F1 {b['val_helix_f1']:.4f} sheet F1 {b['val_sheet_f1']:.4f} mean {b['val_mean']:.4f}"
    )
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    df = select_models(args.checkpoints, args.table, args.models_dir, args.losses)
    print(df[df["chosen"]][["loss", "setting", "val_mean"]].to_string(index=False))
    return 0


def add_cli(subparsers: Any) -> None:
    _add_train(subparsers)
    _add_select(subparsers)


def _add_train(subparsers: Any) -> None:
    d = TrainConfig()
    p = subparsers.add_parser("train", help="train the network for one split, loss and setting (resumable)")
    p.add_argument("--dataset", required=True, help="results/dataset/dataset.tsv")
    p.add_argument("--split-table", required=True, help="results/splits/split_{k}.tsv")
    p.add_argument("--split", required=True, help="split id recorded in the checkpoint (k)")
    p.add_argument("--loss", required=True, choices=list(LOSSES), help="the loss to train with")
    p.add_argument("--setting", required=True, help="e.g. lr0.001_g2 (docs/design.md)")
    out_dir_option(p, "folder for checkpoint.pt, history.tsv, state.pt")
    p.add_argument(
        "--width",
        type=number(0, 4, lo_open=True),
        default=d.width,
        help="channel multiplier (1 = the paper's network)",
    )
    p.add_argument("--max-epochs", type=AT_LEAST_ONE, default=d.max_epochs, help="most epochs")
    p.add_argument(
        "--patience",
        type=AT_LEAST_ONE,
        default=d.patience,
        help="epochs without a better validation figure before stopping",
    )
    p.add_argument("--patch", type=COUNT, default=d.patch, help="0 = whole boxes; N = random N^3 crops")
    p.add_argument(
        "--max-steps", type=int, default=d.max_steps_per_epoch, help="0 = every training pair per epoch"
    )
    p.add_argument(
        "--device",
        default=d.device,
        choices=["auto", "cpu", "cuda"],
        help="auto: CUDA (bf16 autocast) when present, else the CPU",
    )
    p.add_argument("--seed", type=COUNT, default=d.seed, help="seed of every random choice")
    p.add_argument("--threads", type=COUNT, default=d.threads, help="torch CPU threads (0 = torch's default)")
    _add_training_options(p, d)
    p.set_defaults(func=_cmd_train)
    paths.declare(p, inputs=["dataset", "split_table", "init_from"], out_dirs=["out"])


def _add_training_options(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The network, sampling and augmentation options of ``cryosse train``."""
    p.add_argument(
        "--dropout",
        type=number(0, 1, hi_open=True),
        default=d.dropout,
        help=f"dropout probability (default {d.dropout:g}, the authors')",
    )
    p.add_argument(
        "--init",
        choices=list(INITS),
        default=d.init,
        help="weight initialisation: default (PyTorch) or normal (the authors' N(0, 0.1) for every Conv3d)",
    )
    p.add_argument(
        "--batch", type=AT_LEAST_ONE, default=d.batch, help="patches per step (with --patch; whole boxes: 1)"
    )
    p.add_argument(
        "--foreground",
        type=FRACTION,
        default=d.foreground,
        help="fraction of patches centred on a helix/sheet voxel (0 = any centre-box voxel)",
    )
    p.add_argument(
        "--rotate", action="store_true", help="turn each patch by a random one of the cube's 24 rotations"
    )
    p.add_argument(
        "--intensity",
        type=NON_NEGATIVE,
        default=d.intensity,
        help="scale each patch by exp(U(-a, a)) and shift it by U(-a, a) / 2 (0 = off)",
    )
    p.add_argument(
        "--init-from",
        default=d.init_from,
        help="start from these weights: a checkpoint, or 'package' for the shipped model (default: none)",
    )
    p.add_argument(
        "--input-lowpass",
        type=NON_NEGATIVE,
        default=d.input_lowpass,
        help="sigma (A) of a fixed Gaussian low-pass at the network's input, kept in the checkpoint (0 = none)",
    )
    p.add_argument(
        "--realism",
        type=_json_object,
        default={},
        help="make training boxes look deposited, as JSON, e.g. '{\"probability\": 0.8}' (keys: cryosse.realism)",
    )
    p.add_argument(
        "--match-spectrum",
        action="store_true",
        help="bring every input to the training boxes' mean amplitude profile (kept in the checkpoint)",
    )
    p.add_argument(
        "--amp",
        choices=list(AMPS),
        default=d.amp,
        help="auto (bf16 autocast on a GPU, fp32 on a CPU), bf16 (on a CPU too), none",
    )
    p.add_argument(
        "--lr-schedule",
        choices=list(LR_SCHEDULES),
        default=d.lr_schedule,
        help="constant, or cosine from the setting's rate down to 1/50 of it at --max-epochs",
    )
    p.add_argument(
        "--balance",
        type=FRACTION,
        default=d.balance,
        help="draw pairs with probability (cluster size) ** -BALANCE (split table's cluster; 0 = uniform)",
    )
    p.add_argument(
        "--classes", type=int, choices=[3, 4], default=3, help="3 (the paper) or 4 (with nucleic acids)"
    )
    p.add_argument(
        "--progress-interval",
        type=NON_NEGATIVE,
        default=d.progress_interval_s,
        help="seconds between progress lines (0: every step)",
    )


def _add_select(subparsers: Any) -> None:
    s = subparsers.add_parser("select", help="pick the best setting per loss from trained checkpoints")
    s.add_argument("checkpoints", nargs="+", help=".../{split}/{loss}/{setting}/checkpoint.pt of one split")
    s.add_argument("--table", required=True, help="selection.tsv to write")
    s.add_argument("--models-dir", required=True, help="folder for {loss}.pt")
    s.add_argument(
        "--losses",
        nargs="*",
        default=None,
        choices=list(LOSSES),
        help="losses that must each have a checkpoint (default: those found)",
    )
    s.set_defaults(func=_cmd_select)
    paths.declare(s, inputs=["checkpoints"], outputs=["table"], out_dirs=["models_dir"])
