"""Training one setting: the configuration, the loop (:class:`Trainer`), validation and the
Snakemake rule's entry point (see :mod:`cryosse.train`)."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cryosse import __version__
from cryosse.classes import NAMES, PAPER_CLASSES, check_classes, require_dataset_classes
from cryosse.density import prepare_input
from cryosse.infer import pick_device, predict_probabilities
from cryosse.io import atomic_path, read_tsv, write_tsv
from cryosse.losses import make_loss
from cryosse.metrics import confusion, f1_from_counts
from cryosse.model import (
    CheckpointError,
    DeepSSETracerUNet,
    init_weights,
    save_checkpoint,
)
from cryosse.patches import PatchSampler
from cryosse.realism import Realism
from cryosse.spectrum import reference_profile, reference_sample
from cryosse.train.data import Pair, _load_pairs, _with_nucleic, cluster_weights, read_split_pairs
from cryosse.train.settings import parse_setting
from cryosse.train.start import _start_args, _start_weights
from cryosse.train.state import STATE_FORMAT, _cpu, _fingerprint, _restore_rng, _rng_state, _state_classes

log = logging.getLogger(__name__)

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


def f1_scores(pred: np.ndarray, truth: np.ndarray, classes: Sequence[int] = (1, 2)) -> dict[int, float]:
    """Voxel F1 per class; NaN where the class has no true voxels (SPEC 10)."""
    return {k: f1_from_counts(*confusion(pred, truth, k)) for k in classes}


#: ``amp``: auto (bf16 autocast on a GPU, fp32 on a CPU), bf16 (also on a CPU: pays where it
#: has AVX512-BF16 or AMX, bench/bench_train.py --precision both says), none (fp32)
AMPS = ("auto", "bf16", "none")


def _amp(device: torch.device, amp: str = "auto") -> contextlib.AbstractContextManager:
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
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
        prob = predict_probabilities(model, prepare_input(p.density, model.model_args), device)
        sl = p.centre.slices
        pred, truth = prob.argmax(0)[sl], p.labels[sl]
        if p.inside is not None:  # voxels beyond the map are not scored
            keep = p.inside[sl]
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
    input_lowpass: float = 0.0
    realism: dict = field(default_factory=dict)
    amp: str = "auto"
    match_spectrum: bool = False
    progress_interval_s: float = 10.0

    @classmethod
    def from_mapping(cls, cfg: dict[str, Any], seed: int = 42) -> TrainConfig:
        keys = {f for f in cls.__dataclass_fields__ if f != "seed"}
        return cls(seed=int(seed), **{k: cfg[k] for k in keys if k in cfg})


def _write_history(path: Path, history: list[dict[str, Any]], classes: int = PAPER_CLASSES) -> None:
    columns = _with_nucleic(HISTORY_COLUMNS, classes)
    write_tsv(path, pd.DataFrame(history, columns=columns), float_format="%.6g")


class Trainer:
    """One (split, loss, setting) run, one method per step in the manner of nnU-Net's trainer:
    set up (:meth:`__init__`), :meth:`resume`, :meth:`train_epoch`, :meth:`end_epoch`
    (validation figures, best checkpoint, history, resume state) and :meth:`fit`, which runs them."""

    def __init__(
        self,
        dataset_tsv: str | Path,
        split_tsv: str | Path,
        split: str | int,
        loss: str,
        setting: str,
        out_dir: str | Path,
        cfg: TrainConfig | dict[str, Any] | None = None,
        classes: int = PAPER_CLASSES,
    ):
        self.classes = check_classes(classes, "train classes")
        if cfg is None:
            cfg = TrainConfig()
        elif isinstance(cfg, dict):
            cfg = TrainConfig.from_mapping(cfg, cfg.get("seed", 42))
        self.cfg, self.split, self.loss, self.setting = cfg, split, loss, setting
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt_path, self.hist_path, self.state_path = (
            self.out / n for n in ("checkpoint.pt", "history.tsv", "state.pt")
        )
        parsed = parse_setting(loss, setting)
        self.lr, self.loss_params = parsed["lr"], parsed["loss_params"]
        self.criterion = make_loss(loss, **self.loss_params)
        if cfg.threads > 0:
            torch.set_num_threads(int(cfg.threads))
        self.device = pick_device(cfg.device)
        if cfg.amp not in AMPS:
            raise ValueError(f"train.amp {cfg.amp!r} is not one of {', '.join(AMPS)}")
        self.amp = (
            "bf16" if cfg.amp == "bf16" or (cfg.amp == "auto" and self.device.type == "cuda") else "none"
        )
        self._load_data(dataset_tsv, split_tsv)
        self._build(split_tsv)

    def _load_data(self, dataset_tsv: str | Path, split_tsv: str | Path) -> None:
        """The split's training and validation pairs (broken ones skipped and recorded) and the
        fingerprint of everything the run's results depend on."""
        cfg, classes = self.cfg, self.classes
        require_dataset_classes(read_tsv(dataset_tsv, nrows=0).columns, classes, dataset_tsv)
        roles = read_split_pairs(dataset_tsv, split_tsv)
        self.skipped: list[dict[str, str]] = []
        self.train_pairs = _load_pairs(roles["train"], "train", split_tsv, self.skipped, classes)
        self.val_pairs = _load_pairs(roles["val"], "val", split_tsv, self.skipped, classes)
        ids = [p.pair_id for p in self.train_pairs] + ["|"] + [p.pair_id for p in self.val_pairs]
        self.fingerprint = _fingerprint(
            split=str(self.split),
            loss=self.loss,
            setting=self.setting,
            pairs=ids,
            **{
                k: v
                for k, v in asdict(cfg).items()
                if k not in ("device", "threads", "progress_interval_s")
                and not (k in ("input_lowpass", "realism") and not v)
                and not (k == "amp" and v == "auto")
                and not (k == "match_spectrum" and not v)
            },  # unset: as before they existed
            **({} if classes == PAPER_CLASSES else {"classes": classes}),
        )

    def _build(self, split_tsv: str | Path) -> None:
        """Seeds, the network (and the weights it starts from), the patch sampler, the optimiser."""
        cfg = self.cfg
        random.seed(cfg.seed)
        self.np_rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        # The input preparation: with match_spectrum, the mean amplitude profile of (up to 100 of) the
        # training boxes; else, fine-tuning keeps that of the weights it starts from (they expect it).
        start = _start_args(cfg.init_from)
        spectrum = (
            reference_profile(p.density for p in reference_sample(self.train_pairs))
            if cfg.match_spectrum
            else start.get("input_spectrum")
        )
        lowpass = cfg.input_lowpass or float(start.get("input_lowpass", 0.0))
        model = init_weights(
            DeepSSETracerUNet(width=cfg.width, dropout=cfg.dropout, n_classes=self.classes,
                              input_lowpass=lowpass, input_spectrum=spectrum),
            cfg.init,
        )  # fmt: skip
        self.start_from = _start_weights(model, cfg.init_from)
        self.model = model.to(self.device)
        realism = Realism.from_mapping(cfg.realism) if cfg.realism else None
        self.sampler = PatchSampler(
            cfg.patch, cfg.batch, cfg.foreground, cfg.rotate, cfg.intensity, realism, spectrum
        )
        self.weights = cluster_weights(split_tsv, [p.pair_id for p in self.train_pairs], cfg.balance)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"val_mean": -math.inf, "epoch": 0}
        self.best_weights: dict[str, torch.Tensor] = {}
        self.stale, self.start_epoch, self.finished = 0, 1, False

    def resume(self) -> None:
        """Continue from ``state.pt`` when it was made with the same inputs and settings; a
        checkpoint of an earlier, different run is removed, one Snakemake removed is rebuilt."""
        if self.state_path.exists():
            self._load_state()
        if self.start_epoch == 1 and self.ckpt_path.exists():
            self.ckpt_path.unlink()  # from an earlier, different run: never mix
        cfg = self.cfg
        self.meta_base = {
            "loss": {"name": self.loss, **self.loss_params},
            "lr": self.lr,
            "setting": self.setting,
            "split": str(self.split),
            "device": str(self.device),
            "amp": self.amp,
            "seed": cfg.seed,
            "train_config": asdict(cfg),
            "init_from": self.start_from,
            "train_pairs": [p.pair_id for p in self.train_pairs],
            "val_pairs": [p.pair_id for p in self.val_pairs],
            "skipped_pairs": self.skipped,
        }
        if self.start_epoch > 1 and not self.ckpt_path.exists():
            # Snakemake removes the outputs of an interrupted job before rerunning it:
            # rebuild the best checkpoint from the weights kept in the resume state.
            with torch.random.fork_rng(devices=[]):  # building a network draws from the torch RNG
                best_model = DeepSSETracerUNet(width=cfg.width, dropout=cfg.dropout, n_classes=self.classes)
            best_model.load_state_dict(self.best_weights)
            save_checkpoint(
                self.ckpt_path,
                best_model,
                **self.meta_base,
                epoch=self.best["epoch"],
                best_val=dict(self.best),
            )

    def _load_state(self) -> None:
        state_path = self.state_path
        try:
            st = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged state is not worth failing the job for
            log.warning("%s: cannot read resume state (%s); starting afresh", state_path, exc)
            st = None
        state_classes = _state_classes(st)
        if state_classes is not None and state_classes != self.classes:
            raise CheckpointError(
                f"{state_path}: the resume state is of a {state_classes}-class network, this run has {self.classes} "
                f"classes; delete {self.out} (or use another results folder) to train with `classes: {self.classes}`"
            )
        if st is not None and st.get("format") == STATE_FORMAT and st.get("fingerprint") == self.fingerprint:
            self.model.load_state_dict(st["model"])
            self.opt.load_state_dict(st["optimizer"])
            _restore_rng(st["rng"], self.np_rng)
            self.history, self.best, self.stale = list(st["history"]), dict(st["best"]), int(st["stale"])
            self.start_epoch, self.finished = int(st["epoch"]) + 1, bool(st["finished"])
            self.best_weights = st["best_model"]
            log.info("resuming %s from epoch %d (best %.4f at epoch %d)", self.out, self.start_epoch,
                     self.best["val_mean"], self.best["epoch"])  # fmt: skip
        elif st is not None:
            log.warning("%s: made with other inputs or settings; starting afresh", state_path)

    def train_epoch(self, epoch: int, n_steps: int, bar: Any) -> list[float]:
        """``n_steps`` optimiser steps (each pair once per round, or drawn by cluster weight); the losses."""
        cfg, pairs, np_rng = self.cfg, self.train_pairs, self.np_rng
        for group in self.opt.param_groups:
            group["lr"] = epoch_lr(self.lr, epoch, cfg.max_epochs, cfg.lr_schedule)
        self.model.train()
        if self.weights is not None:  # clusters balanced: a pair's chance is (its cluster's size) ** -balance
            order = np_rng.choice(len(pairs), size=n_steps, p=self.weights)
        else:
            rounds = -(-n_steps // len(pairs))
            order = np.concatenate([np_rng.permutation(len(pairs)) for _ in range(rounds)])[:n_steps]
        losses = []
        for i in order:
            chosen = [pairs[i]] + [pairs[j] for j in np_rng.integers(len(pairs), size=cfg.batch - 1)]
            x, t, m = (a.to(self.device) for a in self.sampler.batch_of(chosen, np_rng))
            self.opt.zero_grad(set_to_none=True)
            with _amp(self.device, self.amp):
                logits = self.model(x)
            value = self.criterion(logits.float(), t, m)
            if not torch.isfinite(value):
                raise RuntimeError(
                    f"{self.out}: loss became {value.item()} at epoch {epoch} on {pairs[i].pair_id}; "
                    f"lower the learning rate ({self.lr:g})"
                )
            value.backward()
            self.opt.step()
            losses.append(float(value.detach()))
            bar.update(1)
        return losses

    def end_epoch(self, epoch: int, losses: list[float], seconds_from: float, bar: Any) -> None:
        """Validate; keep the best checkpoint; write the history and the resume state."""
        v = validate(self.model, self.val_pairs, self.device)
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **v, "seconds": time.perf_counter() - seconds_from,
               "steps": len(losses), "device": str(self.device), "amp": self.amp}  # fmt: skip
        self.history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", val=f"{v['val_mean']:.4f}", refresh=False)
        log.info("epoch %d: loss %.4f, val helix %.4f sheet %.4f mean %.4f (%.1f s)", epoch, row["train_loss"],
                 v["val_helix_f1"], v["val_sheet_f1"], v["val_mean"], row["seconds"])  # fmt: skip
        if v["val_mean"] > self.best["val_mean"] or not self.ckpt_path.exists():
            self.best = {
                "val_mean": v["val_mean"],
                **{k: x for k, x in v.items() if k != "val_mean"},
                "epoch": epoch,
            }
            self.stale = 0
            self.best_weights = {k: t.detach().cpu().clone() for k, t in self.model.state_dict().items()}
            save_checkpoint(
                self.ckpt_path, self.model, **self.meta_base, epoch=epoch, best_val=dict(self.best)
            )
        else:
            self.stale += 1
        self.finished = self.stale >= self.cfg.patience or epoch == self.cfg.max_epochs
        _write_history(self.hist_path, self.history, self.classes)
        self._save_state(epoch)
        if self.finished and epoch < self.cfg.max_epochs:
            log.info("early stop at epoch %d: no gain for %d epochs (best %.4f at epoch %d)", epoch, self.stale,
                     self.best["val_mean"], self.best["epoch"])  # fmt: skip

    def _save_state(self, epoch: int) -> None:
        state = {
            "format": STATE_FORMAT,
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": _cpu(self.opt.state_dict()),
            "rng": _rng_state(self.np_rng),
            "history": self.history,
            "best": self.best,
            "best_model": self.best_weights,
            "stale": self.stale,
            "finished": self.finished,
            "cryosse_version": __version__,
        }
        with atomic_path(self.state_path) as tmp:
            torch.save(state, tmp)

    def fit(self) -> dict[str, Any]:
        """Resume or start, train until early stopping or ``max_epochs``; the checkpoint's metadata."""
        from tqdm import tqdm

        self.resume()
        cfg = self.cfg
        # An epoch is every training pair once, or max_steps_per_epoch steps (cycling
        # through shuffled pairs when that is more than there are pairs).
        n_steps = cfg.max_steps_per_epoch if cfg.max_steps_per_epoch > 0 else len(self.train_pairs)
        log.info("training %s %s split %s on %s (amp %s): %d train / %d val pairs, %d steps per epoch, up to %d epochs",
                 self.loss, self.setting, self.split, self.device, self.amp, len(self.train_pairs),
                 len(self.val_pairs), n_steps, cfg.max_epochs)  # fmt: skip
        bar = tqdm(total=cfg.max_epochs * n_steps, initial=(self.start_epoch - 1) * n_steps,
                   desc=f"{self.split}/{self.loss}/{self.setting}", unit="step", file=sys.stderr,
                   mininterval=cfg.progress_interval_s, maxinterval=max(cfg.progress_interval_s, 60.0),
                   disable=self.finished)  # fmt: skip
        for epoch in range(self.start_epoch, cfg.max_epochs + 1):
            if self.finished:
                break
            t0 = time.perf_counter()
            losses = self.train_epoch(epoch, n_steps, bar)
            self.end_epoch(epoch, losses, t0, bar)
        bar.close()
        _write_history(self.hist_path, self.history, self.classes)  # also when resuming a finished run
        if not self.ckpt_path.exists():
            raise RuntimeError(f"{self.out}: no checkpoint was written (max_epochs {cfg.max_epochs})")
        return {**self.meta_base, "best_val": self.best, "epochs": len(self.history)}


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
    return Trainer(dataset_tsv, split_tsv, split, loss, setting, out_dir, cfg, classes).fit()


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
