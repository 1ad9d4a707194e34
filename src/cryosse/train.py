"""Training one setting (SPEC 9), resuming after a kill, and model selection per loss.

One call of :func:`train_setting` trains the network for one (split, loss,
setting) on the split's training pairs and validates it every epoch on the
split's validation pairs:

* Adam, batch of one box (boxes differ in size), optionally a random ``patch``^3
  crop around a point of the centre box (CPU demos); boxes are zero-padded to a
  multiple of 8 and the loss sees the centre-box voxels only (the mask).
* CUDA with bf16 autocast where present, CPU otherwise (``device: auto``); the
  device is recorded in the history and the checkpoint.
* Fixed seeds; after every epoch ``state.pt`` (model, optimiser, epoch, history,
  every RNG state) is written atomically, so a rerun after a kill resumes from
  the last finished epoch and the finished history has every epoch once.
* Early stopping on the validation figure, the mean of (helix F1 + sheet F1) / 2
  (SPEC 9), with the nucleic-acid F1 a third term of the mean for a 4-class network
  (``classes: 4``); ``checkpoint.pt`` is the best epoch's network, stand-alone.

:func:`select_models` picks, per loss, the setting with the highest validation
figure and writes ``selection.tsv`` and ``models/{split}/{loss}.pt``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import random
import re
import shutil
import sys
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cryosse import __version__
from cryosse.argtypes import AT_LEAST_ONE, COUNT, FRACTION, NON_NEGATIVE, number
from cryosse.classes import NAMES, PAPER_CLASSES, check_classes, require_dataset_classes
from cryosse.infer import pick_device, predict_probabilities
from cryosse.io import atomic_path, write_tsv
from cryosse.losses import LOSSES, make_loss, takes_gamma, takes_weights
from cryosse.metrics import confusion, f1_from_counts
from cryosse.model import (
    INITS,
    CheckpointError,
    DeepSSETracerUNet,
    checkpoint_classes,
    init_weights,
    load_checkpoint,
    save_checkpoint,
    shipped_model_path,
)
from cryosse.patches import PatchSampler

log = logging.getLogger(__name__)

STATE_FORMAT = "cryosse-train-state/1"
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "val_helix_f1",
    "val_sheet_f1",
    "val_mean",
    "seconds",
    "steps",
    "device",
    "amp",
]
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

# --------------------------------------------------------------------------- settings


def setting_name(
    loss: str, lr: float, gamma: float | None = None, weights: Sequence[float] = (1.0, 1.0)
) -> str:
    """``lr{lr:g}`` + ``_g{gamma:g}`` (FL, FL_DL) + ``_w{wa:g}-{wb:g}`` (CE_DL, FL_DL, weights != (1, 1))."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    name = f"lr{lr:g}"
    if takes_gamma(loss):
        if gamma is None:
            raise ValueError(f"loss {loss} needs a gamma")
        name += f"_g{gamma:g}"
    if takes_weights(loss):
        wa, wb = (float(w) for w in weights)
        if (wa, wb) != (1.0, 1.0):
            name += f"_w{wa:g}-{wb:g}"
    return name


_NUM = r"[0-9.eE+-]+"
SETTING_RE = re.compile(
    rf"lr(?P<lr>{_NUM}?)(?:_g(?P<gamma>{_NUM}?))?(?:_w(?P<wa>[0-9.eE+]+)-(?P<wb>[0-9.eE+]+))?"
)
#: a regular expression for the ``setting`` wildcard
SETTING_WILDCARD = r"lr[0-9.eE+-]+(_g[0-9.eE+-]+)?(_w[0-9.eE+]+-[0-9.eE+]+)?"


def parse_setting(loss: str, setting: str) -> dict[str, Any]:
    """The inverse of :func:`setting_name`: ``{"lr": .., "loss_params": {..}}``; a name that does not round-trip is an error."""
    m = SETTING_RE.fullmatch(setting)
    if not m:
        raise ValueError(f"setting {setting!r} is not of the form lr<lr>[_g<gamma>][_w<wa>-<wb>]")
    try:
        lr = float(m["lr"])
        gamma = float(m["gamma"]) if m["gamma"] is not None else None
        weights = (float(m["wa"]), float(m["wb"])) if m["wa"] is not None else (1.0, 1.0)
    except ValueError as exc:
        raise ValueError(f"setting {setting!r}: {exc}") from exc
    if takes_gamma(loss) != (gamma is not None) or (not takes_weights(loss) and m["wa"] is not None):
        raise ValueError(
            f"setting {setting!r} does not fit loss {loss} (parameters {list(LOSSES[loss].params)})"
        )
    if setting_name(loss, lr, gamma, weights) != setting:
        raise ValueError(
            f"setting {setting!r} is not in canonical form ({setting_name(loss, lr, gamma, weights)!r})"
        )
    params: dict[str, float] = {}
    if takes_gamma(loss):
        params["gamma"] = gamma  # type: ignore[assignment]
    if takes_weights(loss):
        params["w_a"], params["w_b"] = weights
    return {"lr": lr, "loss_params": params}


def grid_settings(
    loss: str, lrs: Iterable[float], gammas: Iterable[float], term_weights: Iterable[Sequence[float]]
) -> list[str]:
    """Every setting of one loss in the grid, in a stable order, without duplicates."""
    names: list[str] = []
    for lr in lrs:
        for g in gammas if takes_gamma(loss) else [None]:
            for w in term_weights if takes_weights(loss) else [(1.0, 1.0)]:
                n = setting_name(loss, float(lr), g, w)
                if n not in names:
                    names.append(n)
    return names


def workflow_targets(train: dict[str, Any], results: str | Path) -> list[Path]:
    """The train stage's final files: each split's ``selection.tsv`` and ``models/{split}/{loss}.pt``."""
    results = Path(results)
    return [results / "train" / str(k) / "selection.tsv" for k in train["splits"]] + [
        results / "models" / str(k) / f"{loss}.pt" for k in train["splits"] for loss in train["losses"]
    ]


#: the ``train:`` keys a training job depends on (its Snakemake params: changing any other
#: key, such as the grid, the splits or the resources, retrains nothing that exists)
JOB_KEYS = (
    "width",
    "max_epochs",
    "patience",
    "patch",
    "max_steps_per_epoch",
    "device",
    "dropout",
    "init",
    "batch",
    "foreground",
    "rotate",
    "balance",
    "intensity",
    "lr_schedule",
    "init_from",
)


def job_config(train: dict[str, Any]) -> dict[str, Any]:
    """The part of the ``train:`` section that one training job's results depend on."""
    return {k: train[k] for k in JOB_KEYS if k in train}


def split_checkpoints(train: dict[str, Any], results: str | Path, wildcards: Any) -> list[Path]:
    """Every setting's ``checkpoint.pt`` of one split (``wildcards.split``) in the configured grid."""
    base = Path(results) / "train" / str(wildcards.split)
    return [
        base / loss / setting / "checkpoint.pt"
        for loss in train["losses"]
        for setting in grid_settings(loss, train["lrs"], train["gammas"], train["term_weights"])
    ]


# --------------------------------------------------------------------------- data


@dataclass
class Pair:
    pair_id: str
    density: np.ndarray  # float32 [z, y, x]
    labels: np.ndarray  # uint8 [z, y, x]
    centre: tuple[int, int, int, int, int, int]  # z0, z1, y0, y1, x0, x1
    inside: np.ndarray | None = None  # bool [z, y, x]: within the map (None: the whole box is)


def _with_nucleic(columns: list[str], classes: int) -> list[str]:
    """History/selection columns: ``val_nucleic_f1`` after ``val_sheet_f1`` for 4 classes only."""
    if classes == PAPER_CLASSES:
        return list(columns)
    i = columns.index("val_sheet_f1") + 1
    return columns[:i] + ["val_nucleic_f1"] + columns[i:]


def load_pair(pair_id: str, folder: str | Path, classes: int = PAPER_CLASSES) -> Pair:
    """Read ``arrays.npz`` of one pair and check it against the contract (docs/design.md)."""
    path = Path(folder) / "arrays.npz"
    if not path.exists():
        raise FileNotFoundError(f"{pair_id}: {path} is missing; rerun the dataset stage")
    try:
        with np.load(path) as z:
            density = np.asarray(z["density"], np.float32)
            labels = np.asarray(z["labels"])
            centre = tuple(int(v) for v in np.asarray(z["centre"]).reshape(-1))
            inside = np.asarray(z["inside"], bool) if "inside" in z.files else None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{pair_id}: {path} is not a usable pair file ({exc})") from exc
    if density.ndim != 3 or labels.shape != density.shape:
        raise ValueError(
            f"{pair_id}: density {density.shape} and labels {labels.shape} must be equal 3-D shapes"
        )
    if len(centre) != 6 or any(
        not (0 <= centre[2 * i] < centre[2 * i + 1] <= density.shape[i]) for i in range(3)
    ):
        raise ValueError(f"{pair_id}: centre {centre} is not a non-empty box inside shape {density.shape}")
    if not np.all(np.isfinite(density)):
        raise ValueError(f"{pair_id}: density has NaN or infinite values")
    if labels.size and int(labels.max()) >= classes:
        raise ValueError(
            f"{pair_id}: labels must be 0..{classes - 1} for {classes} classes, found {int(labels.max())}"
        )
    if inside is not None and inside.shape != density.shape:
        raise ValueError(f"{pair_id}: inside mask {inside.shape} does not match the density {density.shape}")
    return Pair(pair_id, density, labels.astype(np.uint8), centre, inside)  # type: ignore[arg-type]


def read_split_pairs(dataset_tsv: str | Path, split_tsv: str | Path) -> dict[str, list[tuple[str, Path]]]:
    """Training and validation pairs of a split: ``{"train": [(pair_id, folder)], "val": [...]}``."""
    ds = pd.read_csv(dataset_tsv, sep="\t", dtype={"pair_id": str, "path": str})
    sp = pd.read_csv(split_tsv, sep="\t", dtype={"pair_id": str, "role": str})
    for name, df, cols in ((dataset_tsv, ds, ("pair_id", "path")), (split_tsv, sp, ("pair_id", "role"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name}: missing column(s) {missing}")
    base = Path(dataset_tsv).parent
    paths = {}
    for pid, p in zip(ds["pair_id"], ds["path"], strict=True):
        p = Path(p)
        paths[pid] = p if p.is_absolute() or p.exists() else base / p
    out: dict[str, list[tuple[str, Path]]] = {"train": [], "val": []}
    for pid, role in zip(sp["pair_id"], sp["role"], strict=True):
        if role not in ("train", "val", "test"):
            raise ValueError(f"{split_tsv}: pair {pid} has role {role!r}, expected train/val/test")
        if role == "test":
            continue
        if pid not in paths:
            raise ValueError(f"{split_tsv}: pair {pid} is not in {dataset_tsv}")
        out[role].append((pid, paths[pid]))
    for role in ("train", "val"):
        if not out[role]:
            raise ValueError(f"{split_tsv}: no {role} pairs; the split is too small to train on")
    return out


LR_SCHEDULES = ("constant", "cosine")


def epoch_lr(lr: float, epoch: int, max_epochs: int, schedule: str) -> float:
    """The learning rate of ``epoch`` (1-based): constant, or cosine from ``lr`` down to lr / 50.

    A function of the epoch alone, so a resumed run continues on the same curve.
    """
    if schedule == "constant":
        return lr
    if schedule != "cosine":
        raise ValueError(f"lr_schedule {schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
    f = 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(1, max_epochs)))
    return lr * (0.02 + 0.98 * f)


def cluster_weights(split_tsv: str | Path, pair_ids: Sequence[str], balance: float) -> np.ndarray | None:
    """Sampling probabilities of ``pair_ids``: (size of the pair's cluster) ** -balance, normalised.

    ``balance`` 0 gives None (every pair once per round); 1 gives every cluster the same
    share; the split table's ``cluster`` column names the clusters.
    """
    if balance <= 0:
        return None
    sp = pd.read_csv(split_tsv, sep="\t", dtype=str, keep_default_na=False)
    cluster = dict(zip(sp["pair_id"], sp["cluster"], strict=True)) if "cluster" in sp else {}
    names = [cluster.get(p, p) for p in pair_ids]
    sizes = pd.Series(names).value_counts()
    w = np.array([float(sizes[n]) ** -balance for n in names])
    return w / w.sum()


def _load_pairs(
    items: Sequence[tuple[str, Path]],
    role: str,
    split_tsv: str | Path,
    skipped: list[dict[str, str]],
    classes: int = PAPER_CLASSES,
) -> list[Pair]:
    """Load pairs; a broken one is logged, recorded in ``skipped`` and left out (it never stops the job)."""
    pairs = []
    for pid, folder in items:
        try:
            pairs.append(load_pair(pid, folder, classes))
        except (ValueError, FileNotFoundError) as exc:
            log.warning("skipping %s pair %s: %s", role, pid, exc)
            skipped.append({"pair_id": pid, "role": role, "reason": str(exc)})
    if not pairs:
        raise ValueError(f"{split_tsv}: none of the {len(items)} {role} pairs could be loaded (see the log)")
    return pairs


# --------------------------------------------------------------------------- metrics


def f1_scores(pred: np.ndarray, truth: np.ndarray, classes: Sequence[int] = (1, 2)) -> dict[int, float]:
    """Voxel F1 per class; NaN where the class has no true voxels (SPEC 10)."""
    return {k: f1_from_counts(*confusion(pred, truth, k)) for k in classes}


def _amp(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def validate(model: torch.nn.Module, pairs: Sequence[Pair], device: torch.device) -> dict[str, float]:
    """Mean over validation pairs of the voxel F1 of each class on the centre box; their mean.

    Classes: helix and sheet, and nucleic acid for a 4-class network. A pair with no
    true voxels of a class has no F1 for it and is left out of that class's mean; the
    validation figure is the mean of the class means that exist ((helix + sheet) / 2
    for 3 classes, SPEC 9; 0 when none does).
    """
    n_classes = int(getattr(model, "model_args", {}).get("n_classes", PAPER_CLASSES))
    classes = tuple(range(1, n_classes))
    per: dict[int, list[float]] = {k: [] for k in classes}
    for p in pairs:  # fp32, as the final evaluation predicts: the chosen epoch is judged as it will be used
        prob = predict_probabilities(model, p.density, device)
        z0, z1, y0, y1, x0, x1 = p.centre
        pred, truth = prob.argmax(0)[z0:z1, y0:y1, x0:x1], p.labels[z0:z1, y0:y1, x0:x1]
        if p.inside is not None:  # voxels beyond the map are not scored
            keep = p.inside[z0:z1, y0:y1, x0:x1]
            pred, truth = pred[keep], truth[keep]
        f = f1_scores(pred, truth, classes)
        for k in classes:
            per[k].append(f[k])
    out = {}
    for k in classes:
        v = np.asarray(per[k], float)
        out[f"val_{NAMES[k]}_f1"] = float(np.nanmean(v)) if not np.all(np.isnan(v)) else math.nan
    have = [v for v in out.values() if not math.isnan(v)]
    return {**out, "val_mean": float(np.mean(have)) if have else 0.0}


# --------------------------------------------------------------------------- training


@dataclass
class TrainConfig:
    """The ``train:`` config section (what one job needs of it)."""

    width: float = 1.0
    max_epochs: int = 100
    patience: int = 10
    patch: int = 0
    max_steps_per_epoch: int = 0
    device: str = "auto"
    seed: int = 42
    threads: int = 0
    dropout: float = 0.5
    init: str = "default"
    batch: int = 1
    foreground: float = 0.0
    rotate: bool = False
    balance: float = 0.0
    intensity: float = 0.0
    lr_schedule: str = "constant"
    init_from: str = ""
    progress_interval_s: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, cfg: dict[str, Any], seed: int = 42) -> TrainConfig:
        keys = {f for f in cls.__dataclass_fields__ if f not in ("extra", "seed")}
        return cls(seed=int(seed), **{k: cfg[k] for k in keys if k in cfg})


def _rng_state(np_rng: np.random.Generator) -> dict[str, Any]:
    st = {
        "torch": torch.get_rng_state(),
        "numpy": _to_plain(np_rng.bit_generator.state),
        "python": _to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _to_plain(obj: Any) -> Any:
    """RNG states as lists/ints/strings only (loadable with weights_only=True)."""
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def _restore_rng(st: dict[str, Any], np_rng: np.random.Generator) -> None:
    torch.set_rng_state(st["torch"])
    np_rng.bit_generator.state = st["numpy"]
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _fingerprint(**kw: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}


def _write_history(path: Path, history: list[dict[str, Any]], classes: int = PAPER_CLASSES) -> None:
    columns = _with_nucleic(HISTORY_COLUMNS, classes)
    write_tsv(path, pd.DataFrame(history, columns=columns), float_format="%.6g")


def train_setting(
    dataset_tsv: str | Path,
    split_tsv: str | Path,
    split: str | int,
    loss: str,
    setting: str,
    out_dir: str | Path,
    cfg: TrainConfig | dict[str, Any] | None = None,
    classes: int = PAPER_CLASSES,
) -> dict[str, Any]:
    """Train one (split, loss, setting); write ``checkpoint.pt``, ``history.tsv``, ``state.pt`` in ``out_dir``.

    ``classes``: 3 (the paper) or 4 (nucleic acids are class 3); the dataset must have
    been built with the same count. Resumes from ``state.pt`` when it exists and was
    made with the same inputs and settings (otherwise starts afresh, saying so); a
    state of a network with another class count is refused. Returns the checkpoint's
    metadata (best validation figures, epoch, device).
    """
    classes = check_classes(classes, "train classes")
    if cfg is None:
        cfg = TrainConfig()
    elif isinstance(cfg, dict):
        cfg = TrainConfig.from_mapping(cfg, cfg.get("seed", 42))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, hist_path, state_path = out / "checkpoint.pt", out / "history.tsv", out / "state.pt"
    parsed = parse_setting(loss, setting)
    lr, loss_params = parsed["lr"], parsed["loss_params"]
    criterion = make_loss(loss, **loss_params)
    if cfg.threads > 0:
        torch.set_num_threads(int(cfg.threads))
    device = pick_device(cfg.device)
    amp = "bf16" if device.type == "cuda" else "none"

    require_dataset_classes(pd.read_csv(dataset_tsv, sep="\t", nrows=0).columns, classes, dataset_tsv)
    roles = read_split_pairs(dataset_tsv, split_tsv)
    skipped: list[dict[str, str]] = []
    train_pairs = _load_pairs(roles["train"], "train", split_tsv, skipped, classes)
    val_pairs = _load_pairs(roles["val"], "val", split_tsv, skipped, classes)
    ids = [p.pair_id for p in train_pairs] + ["|"] + [p.pair_id for p in val_pairs]
    fingerprint = _fingerprint(
        split=str(split),
        loss=loss,
        setting=setting,
        pairs=ids,
        **{
            k: v
            for k, v in asdict(cfg).items()
            if k not in ("device", "threads", "progress_interval_s", "extra")
        },
        **({} if classes == PAPER_CLASSES else {"classes": classes}),
    )

    random.seed(cfg.seed)
    np_rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = init_weights(DeepSSETracerUNet(width=cfg.width, dropout=cfg.dropout, n_classes=classes), cfg.init)
    start_from = _start_weights(model, cfg.init_from)
    model = model.to(device)
    sampler = PatchSampler(cfg.patch, cfg.batch, cfg.foreground, cfg.rotate, cfg.intensity)
    weights = cluster_weights(split_tsv, [p.pair_id for p in train_pairs], cfg.balance)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"val_mean": -math.inf, "epoch": 0}
    best_weights: dict[str, torch.Tensor] = {}
    stale, start_epoch, finished = 0, 1, False
    if state_path.exists():
        try:
            st = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged state is not worth failing the job for
            log.warning("%s: cannot read resume state (%s); starting afresh", state_path, exc)
            st = None
        state_classes = _state_classes(st)
        if state_classes is not None and state_classes != classes:
            raise CheckpointError(
                f"{state_path}: the resume state is of a {state_classes}-class network, this run has {classes} "
                f"classes; delete {out} (or use another results folder) to train with `classes: {classes}`"
            )
        if st is not None and st.get("format") == STATE_FORMAT and st.get("fingerprint") == fingerprint:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            _restore_rng(st["rng"], np_rng)
            history, best, stale = list(st["history"]), dict(st["best"]), int(st["stale"])
            start_epoch, finished = int(st["epoch"]) + 1, bool(st["finished"])
            best_weights = st["best_model"]
            log.info(
                "resuming %s from epoch %d (best %.4f at epoch %d)",
                out,
                start_epoch,
                best["val_mean"],
                best["epoch"],
            )
        elif st is not None:
            log.warning("%s: made with other inputs or settings; starting afresh", state_path)
    if start_epoch == 1 and ckpt_path.exists():
        ckpt_path.unlink()  # from an earlier, different run: never mix

    meta_base = {
        "loss": {"name": loss, **loss_params},
        "lr": lr,
        "setting": setting,
        "split": str(split),
        "device": str(device),
        "amp": amp,
        "seed": cfg.seed,
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "init_from": start_from,
        "train_pairs": [p.pair_id for p in train_pairs],
        "val_pairs": [p.pair_id for p in val_pairs],
        "skipped_pairs": skipped,
    }
    if start_epoch > 1 and not ckpt_path.exists():
        # Snakemake removes the outputs of an interrupted job before rerunning it:
        # rebuild the best checkpoint from the weights kept in the resume state.
        with torch.random.fork_rng(devices=[]):  # building a network draws from the torch RNG
            best_model = DeepSSETracerUNet(width=cfg.width, dropout=cfg.dropout, n_classes=classes)
        best_model.load_state_dict(best_weights)
        save_checkpoint(ckpt_path, best_model, **meta_base, epoch=best["epoch"], best_val=dict(best))
    # An epoch is every training pair once, or max_steps_per_epoch steps (cycling
    # through shuffled pairs when that is more than there are pairs).
    n_steps = cfg.max_steps_per_epoch if cfg.max_steps_per_epoch > 0 else len(train_pairs)
    log.info(
        "training %s %s split %s on %s (amp %s): %d train / %d val pairs, %d steps per epoch, up to %d epochs",
        loss,
        setting,
        split,
        device,
        amp,
        len(train_pairs),
        len(val_pairs),
        n_steps,
        cfg.max_epochs,
    )
    from tqdm import tqdm

    bar = tqdm(
        total=cfg.max_epochs * n_steps,
        initial=(start_epoch - 1) * n_steps,
        desc=f"{split}/{loss}/{setting}",
        unit="step",
        file=sys.stderr,
        mininterval=cfg.progress_interval_s,
        maxinterval=max(cfg.progress_interval_s, 60.0),
        disable=finished,
    )
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.max_epochs + 1):
        if finished:
            break
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = epoch_lr(lr, epoch, cfg.max_epochs, cfg.lr_schedule)
        model.train()
        if weights is not None:  # clusters balanced: a pair's chance is (its cluster's size) ** -balance
            order = np_rng.choice(len(train_pairs), size=n_steps, p=weights)
        else:
            rounds = -(-n_steps // len(train_pairs))
            order = np.concatenate([np_rng.permutation(len(train_pairs)) for _ in range(rounds)])[:n_steps]
        losses = []
        for i in order:
            chosen = [train_pairs[i]] + [train_pairs[j] for j in np_rng.integers(len(train_pairs), size=cfg.batch - 1)]
            x, t, m = sampler.batch_of(chosen, np_rng)
            x, t, m = x.to(device), t.to(device), m.to(device)
            opt.zero_grad(set_to_none=True)
            with _amp(device):
                logits = model(x)
            value = criterion(logits.float(), t, m)
            if not torch.isfinite(value):
                raise RuntimeError(
                    f"{out}: loss became {value.item()} at epoch {epoch} on {train_pairs[i].pair_id}; "
                    f"lower the learning rate ({lr:g})"
                )
            value.backward()
            opt.step()
            losses.append(float(value.detach()))
            bar.update(1)
        v = validate(model, val_pairs, device)
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            **v,
            "seconds": time.perf_counter() - t0,
            "steps": len(losses),
            "device": str(device),
            "amp": amp,
        }
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{v['val_mean']:.4f}", refresh=False)
        log.info(
            "epoch %d: loss %.4f, val helix %.4f sheet %.4f mean %.4f (%.1f s)",
            epoch,
            row["train_loss"],
            v["val_helix_f1"],
            v["val_sheet_f1"],
            v["val_mean"],
            row["seconds"],
        )
        if v["val_mean"] > best["val_mean"] or not ckpt_path.exists():
            best = {"val_mean": v["val_mean"], **{k: x for k, x in v.items() if k != "val_mean"}, "epoch": epoch}
            stale = 0
            best_weights = {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}
            save_checkpoint(ckpt_path, model, **meta_base, epoch=epoch, best_val=dict(best))
        else:
            stale += 1
        finished = stale >= cfg.patience or epoch == cfg.max_epochs
        _write_history(hist_path, history, classes)
        state = {
            "format": STATE_FORMAT,
            "fingerprint": fingerprint,
            "epoch": epoch,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": _cpu(opt.state_dict()),
            "rng": _rng_state(np_rng),
            "history": history,
            "best": best,
            "best_model": best_weights,
            "stale": stale,
            "finished": finished,
            "cryosse_version": __version__,
        }
        with atomic_path(state_path) as tmp:
            torch.save(state, tmp)
        if finished and epoch < cfg.max_epochs:
            log.info(
                "early stop at epoch %d: no gain for %d epochs (best %.4f at epoch %d)",
                epoch,
                stale,
                best["val_mean"],
                best["epoch"],
            )
    bar.close()
    _write_history(hist_path, history, classes)  # also when resuming a finished run
    if not ckpt_path.exists():
        raise RuntimeError(f"{out}: no checkpoint was written (max_epochs {cfg.max_epochs})")
    return {**meta_base, "best_val": best, "epochs": len(history)}


def _start_weights(model: DeepSSETracerUNet, init_from: str) -> dict[str, str]:
    """Load the weights training starts from (``init_from``: "" none, "package" the shipped model, or a checkpoint)."""
    if not init_from:
        return {}
    path = shipped_model_path() if init_from == "package" else Path(init_from)
    if init_from == "package" and not path.is_file():
        raise FileNotFoundError(f"{path}: the model shipped with cryosse is missing; reinstall cryosse")
    src, meta = load_checkpoint(path)
    if src.model_args["width"] != model.model_args["width"]:
        raise CheckpointError(
            f"{path}: width {src.model_args['width']:g}, but this run trains width {model.model_args['width']:g};"
            " set train.width to match"
        )
    weights = src.state_dict()
    new_head = checkpoint_classes(meta) != model.model_args["n_classes"]
    if new_head:  # e.g. the 3-class shipped model fine-tuned to 4 classes: all but the output layer
        weights = {k: v for k, v in weights.items() if not k.startswith("out.")}
        log.info(
            "%s: %d classes, this run %d: the output layer starts fresh, the rest from the checkpoint",
            path, checkpoint_classes(meta), model.model_args["n_classes"],
        )  # fmt: skip
    model.load_state_dict(weights, strict=not new_head)
    return {
        "path": "package" if init_from == "package" else str(path),
        "weights_sha256": str(meta["weights_sha256"]),
        **({"new_output_layer": "yes"} if new_head else {}),
    }


def _state_classes(st: Any) -> int | None:
    """Output classes of the network in a resume state (None when it cannot tell)."""
    try:
        return int(st["model"]["out.weight"].shape[0])
    except (TypeError, KeyError, AttributeError, IndexError):
        return None


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj


def train_job(
    dataset: str,
    split_table: str,
    split: str,
    loss: str,
    setting: str,
    checkpoint: str,
    train_config: dict[str, Any],
    seed: int,
    threads: int,
) -> None:
    """Entry point of the Snakemake rule: log to stderr, train into ``checkpoint``'s folder."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
        )
    train_config = dict(train_config)
    classes = train_config.pop("classes", PAPER_CLASSES)  # set by cryosse.classes.with_classes
    cfg = TrainConfig.from_mapping(train_config, seed)
    cfg.threads = int(threads)
    out = Path(checkpoint).parent
    train_setting(dataset, split_table, split, loss, setting, out, cfg, classes=classes)


# --------------------------------------------------------------------------- selection


def _run_parts(path: Path) -> tuple[str, str, str]:
    """(split, loss, setting) of ``.../{split}/{loss}/{setting}/checkpoint.pt``."""
    p = Path(path)
    return p.parent.parent.parent.name, p.parent.parent.name, p.parent.name


def select_models(
    checkpoints: Iterable[str | Path],
    table: str | Path,
    models_dir: str | Path,
    losses: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per loss, the setting with the highest validation figure; write the table and the chosen checkpoints.

    ``checkpoints`` are ``.../{split}/{loss}/{setting}/checkpoint.pt`` of one split.
    Ties go to the first setting in name order (deterministic). Each chosen
    checkpoint is copied to ``models_dir/{loss}.pt`` (atomically); every loss in
    ``losses`` must have at least one checkpoint.
    """
    rows = []
    n_classes: set[int] = set()
    for path in sorted(Path(c) for c in checkpoints):
        _, meta = load_checkpoint(path)
        n_classes.add(checkpoint_classes(meta))
        split, loss, setting = _run_parts(path)
        if meta.get("setting", setting) != setting or meta.get("loss", {}).get("name", loss) != loss:
            raise ValueError(f"{path}: holds {meta.get('loss')} {meta.get('setting')}, not {loss} {setting}")
        best = meta.get("best_val", {})
        hist = path.parent / "history.tsv"
        epochs = len(pd.read_csv(hist, sep="\t")) if hist.exists() else math.nan
        params = meta.get("loss", {})
        rows.append(
            {
                "split": str(meta.get("split", split)),
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
        raise CheckpointError(f"checkpoints of 3-class and 4-class networks mixed: {sorted(r['checkpoint'] for r in rows)}")
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
    order = {lo: i for i, lo in enumerate(LOSSES)}
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


# --------------------------------------------------------------------------- CLI


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
        progress_interval_s=args.progress_interval,
    )
    meta = train_setting(
        args.dataset, args.split_table, args.split, args.loss, args.setting, args.out, cfg, classes=args.classes
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
    d = TrainConfig()
    p = subparsers.add_parser("train", help="train the network for one split, loss and setting (resumable)")
    p.add_argument("--dataset", required=True, help="results/dataset/dataset.tsv")
    p.add_argument("--split-table", required=True, help="results/splits/split_{k}.tsv")
    p.add_argument("--split", required=True, help="split id recorded in the checkpoint (k)")
    p.add_argument("--loss", required=True, choices=list(LOSSES), help="the loss to train with")
    p.add_argument("--setting", required=True, help="e.g. lr0.001_g2 (docs/design.md)")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt, history.tsv, state.pt")
    p.add_argument("--width", type=number(0, 4, lo_open=True), default=d.width, help="channel multiplier (1 = the paper's network)")
    p.add_argument("--max-epochs", type=AT_LEAST_ONE, default=d.max_epochs, help="most epochs")
    p.add_argument("--patience", type=AT_LEAST_ONE, default=d.patience, help="epochs without a better validation figure before stopping")
    p.add_argument("--patch", type=COUNT, default=d.patch, help="0 = whole boxes; N = random N^3 crops")
    p.add_argument(
        "--max-steps", type=int, default=d.max_steps_per_epoch, help="0 = every training pair per epoch"
    )
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"],
                   help="auto: CUDA (bf16 autocast) when present, else the CPU")
    p.add_argument("--seed", type=COUNT, default=d.seed, help="seed of every random choice")
    p.add_argument("--threads", type=COUNT, default=d.threads, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--dropout", type=number(0, 1, hi_open=True), default=d.dropout, help=f"dropout probability (default {d.dropout:g}, the authors')")
    p.add_argument("--init", choices=list(INITS), default=d.init,
                   help="weight initialisation: default (PyTorch) or normal (the authors' N(0, 0.1) for every Conv3d)")
    p.add_argument("--batch", type=AT_LEAST_ONE, default=d.batch, help="patches per step (with --patch; whole boxes: 1)")
    p.add_argument("--foreground", type=FRACTION, default=d.foreground,
                   help="fraction of patches centred on a helix/sheet voxel (0 = any centre-box voxel)")
    p.add_argument("--rotate", action="store_true", help="turn each patch by a random one of the cube's 24 rotations")
    p.add_argument("--intensity", type=NON_NEGATIVE, default=d.intensity,
                   help="scale each patch by exp(U(-a, a)) and shift it by U(-a, a) / 2 (0 = off)")
    p.add_argument("--init-from", default=d.init_from,
                   help="start from these weights: a checkpoint, or 'package' for the shipped model (default: none)")
    p.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), default=d.lr_schedule,
                   help="constant, or cosine from the setting's rate down to 1/50 of it at --max-epochs")
    p.add_argument("--balance", type=FRACTION, default=d.balance,
                   help="draw pairs with probability (cluster size) ** -BALANCE (split table's cluster; 0 = uniform)")
    p.add_argument(
        "--classes", type=int, choices=[3, 4], default=3, help="3 (the paper) or 4 (with nucleic acids)"
    )
    p.add_argument("--progress-interval", type=NON_NEGATIVE, default=d.progress_interval_s,
                   help="seconds between progress lines (0: every step)")
    p.set_defaults(func=_cmd_train)

    s = subparsers.add_parser("select", help="pick the best setting per loss from trained checkpoints")
    s.add_argument("checkpoints", nargs="+", help=".../{split}/{loss}/{setting}/checkpoint.pt of one split")
    s.add_argument("--table", required=True, help="selection.tsv to write")
    s.add_argument("--models-dir", required=True, help="folder for {loss}.pt")
    s.add_argument("--losses", nargs="*", default=None, choices=list(LOSSES),
                   help="losses that must each have a checkpoint (default: those found)")
    s.set_defaults(func=_cmd_select)
