"""Training one setting, resuming after a kill, and model selection (SPEC 9)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import synthetic_dataset, synthetic_pair
from cryosse.model import CheckpointError, DeepSSETracerUNet, load_checkpoint, save_checkpoint
from cryosse.patches import PatchSampler
from cryosse.train import (
    SETTING_RE,
    TrainConfig,
    cluster_weights,
    epoch_lr,
    f1_scores,
    grid_settings,
    load_pair,
    parse_setting,
    read_split_pairs,
    select_models,
    setting_name,
    train_setting,
)

torch.set_num_threads(1)


# --------------------------------------------------------------------------- settings


def test_setting_names_and_what_they_parse_to():
    assert setting_name("FL", 1e-3, 2) == "lr0.001_g2"
    assert setting_name("CE", 1e-5) == "lr1e-05"
    assert setting_name("FL_DL", 1e-4, 1, (1, 1)) == "lr0.0001_g1"
    assert setting_name("FL_DL", 1e-4, 1, (0.5, 2)) == "lr0.0001_g1_w0.5-2"
    assert setting_name("CE_DL", 1e-3, None, (2, 1)) == "lr0.001_w2-1"
    assert setting_name("DL", 1e-3, None, (2, 1)) == "lr0.001"  # DL has no term weights
    # what the names parse to: the values a job trains with
    assert parse_setting("CE", "lr1e-05") == {"lr": 1e-5, "loss_params": {}}
    assert parse_setting("FL", "lr0.001_g2") == {"lr": 1e-3, "loss_params": {"gamma": 2.0}}
    assert parse_setting("CE_DL", "lr0.001_w2-1") == {"lr": 1e-3, "loss_params": {"w_a": 2.0, "w_b": 1.0}}
    assert all(SETTING_RE.fullmatch(n) for n in ("lr1e-05", "lr0.0001_g1_w0.5-2"))
    assert parse_setting("FL_DL", "lr0.0001_g1_w0.5-2") == {
        "lr": 1e-4,
        "loss_params": {"gamma": 1.0, "w_a": 0.5, "w_b": 2.0},
    }
    for loss, bad in [
        ("FL", "lr0.001"),
        ("CE", "lr0.001_g2"),
        ("DL", "lr0.001_w2-1"),
        ("CE", "lr0.0010"),
        ("CE", "x"),
    ]:
        with pytest.raises(ValueError):
            parse_setting(loss, bad)


def test_paper_grid():
    lrs, gammas, w = [1e-3, 1e-4, 1e-5], [1, 2, 5, 8], [[1.0, 1.0]]
    counts = {loss: len(grid_settings(loss, lrs, gammas, w)) for loss in ["CE", "FL", "DL", "CE_DL", "FL_DL"]}
    assert counts == {"CE": 3, "FL": 12, "DL": 3, "CE_DL": 3, "FL_DL": 12}
    assert len(grid_settings("FL_DL", [1e-3], [1], [[1, 1], [0.5, 1]])) == 2


# --------------------------------------------------------------------------- data and metrics


def test_f1_scores():
    t = np.array([0, 1, 1, 2, 2, 0])
    p = np.array([0, 1, 0, 2, 1, 2])
    f = f1_scores(p, t)
    assert f[1] == pytest.approx(2 * 1 / (2 + 2)) and f[2] == pytest.approx(2 * 1 / (2 + 2))
    f = f1_scores(np.array([2, 0]), np.array([1, 0]))
    assert f[1] == 0.0 and math.isnan(f[2])


def test_example_mask_is_centre_without_pad(tmp_path):
    synthetic_pair(tmp_path / "p", n=30, pad=5)
    pair = load_pair("p", tmp_path / "p")
    rng = np.random.default_rng(0)
    x, t, m = PatchSampler(0).batch_of([pair], rng)
    assert tuple(x.shape) == (1, 1, 32, 32, 32) and t.dtype == torch.int64 and m.dtype == torch.bool
    assert int(m.sum()) == 20**3 and not m[0, 30:].any() and not m[0, :5].any()
    assert float(x[0, 0, 31, 31, 31]) == float(pair.density.min())  # padded with the solvent value
    for _ in range(10):
        x, t, m = PatchSampler(16).batch_of([pair], rng)
        assert tuple(x.shape) == (1, 1, 16, 16, 16)
        assert m.any()  # a crop always holds centre-box voxels


def test_cosine_rate_and_cluster_balance(tmp_path):
    assert epoch_lr(1e-3, 7, 10, "constant") == 1e-3
    assert epoch_lr(1e-3, 1, 10, "cosine") == pytest.approx(1e-3)
    assert epoch_lr(1e-3, 11, 10, "cosine") == pytest.approx(2e-5)  # 1/50 at the end
    assert epoch_lr(1e-3, 4, 10, "cosine") > epoch_lr(1e-3, 5, 10, "cosine")
    with pytest.raises(ValueError, match="lr_schedule"):
        epoch_lr(1e-3, 1, 10, "step")
    split = tmp_path / "s.tsv"
    split.write_text(
        "pair_id\trole\tcluster\na\ttrain\tbig\nb\ttrain\tbig\nc\ttrain\tbig\nd\ttrain\tbig\ne\ttrain\tsmall\n"
    )
    assert cluster_weights(split, list("abcde"), 0.0) is None
    w = cluster_weights(split, list("abcde"), 1.0)
    assert w.sum() == pytest.approx(1.0) and w[:4].sum() == pytest.approx(
        w[4]
    )  # every cluster the same share
    w = cluster_weights(split, list("abcde"), 0.5)
    assert w[:4].sum() == pytest.approx(2 * w[4])


def test_fine_tuning_starts_from_a_checkpoint(tmp_path):
    ds, split = synthetic_dataset(tmp_path, ["train", "val"])
    torch.manual_seed(5)
    start = DeepSSETracerUNet(width=0.125, dropout=0.0)
    save_checkpoint(tmp_path / "start.pt", start)
    cfg = TrainConfig(width=0.125, max_epochs=1, patience=1, max_steps_per_epoch=1, device="cpu", threads=1,
                      dropout=0.0, init_from=str(tmp_path / "start.pt"))  # fmt: skip
    meta = train_setting(ds, split, 0, "CE", "lr1e-09", tmp_path / "ft", cfg)
    got, _ = load_checkpoint(tmp_path / "ft" / "checkpoint.pt")
    w0, w1 = start.state_dict()["down1.0.weight"], got.state_dict()["down1.0.weight"]
    assert torch.allclose(w0, w1, atol=1e-6)  # a learning rate of 1e-9 barely moves the start
    assert (
        meta["init_from"]["weights_sha256"]
        == torch.load(tmp_path / "start.pt", weights_only=True)["weights_sha256"]
    )
    cfg.width, cfg.init_from = 0.25, str(tmp_path / "start.pt")
    with pytest.raises(CheckpointError, match="set train.width"):
        train_setting(ds, split, 0, "CE", "lr1e-09", tmp_path / "ft2", cfg)
    # a start with other classes (a 4-class model fine-tuned to 3): every layer but the output one
    start4 = DeepSSETracerUNet(width=0.125, dropout=0.0, n_classes=4)
    save_checkpoint(tmp_path / "start4.pt", start4)
    cfg.width, cfg.init_from = 0.125, str(tmp_path / "start4.pt")
    meta = train_setting(ds, split, 0, "CE", "lr1e-09", tmp_path / "ft3", cfg)
    got, _ = load_checkpoint(tmp_path / "ft3" / "checkpoint.pt")
    assert meta["init_from"]["new_output_layer"] == "yes" and got.model_args["n_classes"] == 3
    assert torch.allclose(
        start4.state_dict()["down1.0.weight"], got.state_dict()["down1.0.weight"], atol=1e-6
    )


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="1_X_A"):
        load_pair("1_X_A", tmp_path / "nope")
    (tmp_path / "b").mkdir()
    np.savez(
        tmp_path / "b" / "arrays.npz",
        density=np.zeros((4, 4, 4), np.float32),
        labels=np.zeros((4, 4, 4), np.uint8),
        centre=np.array([0, 5, 0, 4, 0, 4]),
    )
    with pytest.raises(ValueError, match="centre"):
        load_pair("b", tmp_path / "b")
    ds, sp = synthetic_dataset(tmp_path, ["train"], n=16)
    with pytest.raises(ValueError, match="no val pairs"):
        read_split_pairs(ds, sp)


def test_a_broken_pair_is_skipped_not_fatal(tmp_path):
    ds, sp = synthetic_dataset(tmp_path, ["train", "train", "val"], n=16)
    (tmp_path / "pairs" / "1001_1ABC_A" / "arrays.npz").write_bytes(b"not a zip")
    cfg = TrainConfig(width=0.0625, max_epochs=1, threads=1)
    meta = train_setting(ds, sp, 0, "DL", "lr0.001", tmp_path / "run", cfg)
    assert meta["train_pairs"] == ["1000_1ABC_A"]
    assert [s["pair_id"] for s in meta["skipped_pairs"]] == ["1001_1ABC_A"]
    (tmp_path / "pairs" / "1002_1ABC_A" / "arrays.npz").unlink()
    with pytest.raises(ValueError, match="none of the 1 val pairs"):
        train_setting(ds, sp, 0, "DL", "lr0.001", tmp_path / "run2", cfg)


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_small_network_overfits_one_pair(tmp_path):
    ds, sp = synthetic_dataset(tmp_path, ["train+val"])
    cfg = TrainConfig(width=0.25, max_epochs=80, patience=1000, threads=1, seed=0)
    t0 = time.perf_counter()
    meta = train_setting(ds, sp, 0, "CE", "lr0.01", tmp_path / "run", cfg)
    assert time.perf_counter() - t0 < 120
    best = meta["best_val"]
    assert best["val_helix_f1"] > 0.9 and best["val_sheet_f1"] > 0.9
    hist = pd.read_csv(tmp_path / "run" / "history.tsv", sep="\t")
    assert list(hist["epoch"]) == list(range(1, 81)) and (hist["device"] == "cpu").all()
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0] / 3
    model, m = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert m["loss"] == {"name": "CE"} and m["split"] == "0" and m["best_val"] == best
    assert m["cryosse_version"] and m["model_args"]["width"] == 0.25 and m["device"] == "cpu"
    # the stand-alone checkpoint reproduces its validation figure
    pair = load_pair("1000_1ABC_A", tmp_path / "pairs" / "1000_1ABC_A")
    from cryosse.train import validate

    assert validate(model, [pair], torch.device("cpu"))["val_mean"] == pytest.approx(best["val_mean"])


def _train_cmd(ds, sp, out, epochs):
    return [
        sys.executable, "-m", "cryosse.cli", "train", "--dataset", str(ds), "--split-table", str(sp),
        "--split", "0", "--loss", "FL_DL", "--setting", "lr0.003_g2", "--out-dir", str(out),
        "--width", "0.125", "--max-epochs", str(epochs), "--patience", "100", "--threads", "1",
        "--patch", "24", "--progress-interval", "0",
    ]  # fmt: skip


@pytest.mark.slow
def test_killed_job_resumes_and_history_has_every_epoch_once(tmp_path):
    ds, sp = synthetic_dataset(tmp_path, ["train", "train", "train", "train", "val"], n=40)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    epochs = 6
    # reference: the same run, never interrupted
    subprocess.run(_train_cmd(ds, sp, tmp_path / "ref", epochs), check=True, env=env, capture_output=True)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _train_cmd(ds, sp, out, epochs), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    hist = out / "history.tsv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if hist.exists() and len(pd.read_csv(hist, sep="\t")) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "training ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(pd.read_csv(hist, sep="\t"))
    assert 2 <= done < epochs and (out / "state.pt").exists()
    (out / "checkpoint.pt").unlink()  # as Snakemake does with an interrupted job's outputs
    r = subprocess.run(_train_cmd(ds, sp, out, epochs), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"from epoch {done + 1}" in r.stderr
    h = pd.read_csv(hist, sep="\t")
    assert list(h["epoch"]) == list(range(1, epochs + 1))
    ref = pd.read_csv(tmp_path / "ref" / "history.tsv", sep="\t")
    # restored weights, optimiser and RNG states: the resumed run is the uninterrupted one
    np.testing.assert_allclose(h["train_loss"], ref["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(h["val_mean"], ref["val_mean"], atol=1e-6)
    _, m = load_checkpoint(out / "checkpoint.pt")
    _, mref = load_checkpoint(tmp_path / "ref" / "checkpoint.pt")
    assert m["best_val"] == pytest.approx(mref["best_val"]) and m["epoch"] == mref["epoch"]
    # a finished run is not trained again
    r = subprocess.run(_train_cmd(ds, sp, out, epochs), env=env, capture_output=True, text=True)
    assert r.returncode == 0 and f"from epoch {epochs + 1}" in r.stderr
    assert list(pd.read_csv(hist, sep="\t")["epoch"]) == list(range(1, epochs + 1))


# --------------------------------------------------------------------------- selection


def _fake_run(root: Path, loss: str, setting: str, val: float, params: dict) -> Path:
    path = root / "3" / loss / setting / "checkpoint.pt"
    torch.manual_seed(int(val * 1000))
    best = {"val_mean": val, "val_helix_f1": val + 0.1, "val_sheet_f1": val - 0.1, "epoch": 2}
    save_checkpoint(
        path,
        DeepSSETracerUNet(width=0.0625),
        loss={"name": loss, **params},
        lr=1e-3,
        setting=setting,
        split="3",
        epoch=2,
        best_val=best,
        device="cpu",
    )
    pd.DataFrame({"epoch": [1, 2, 3]}).to_csv(path.parent / "history.tsv", sep="\t", index=False)
    return path


def test_select_models_picks_best_per_loss(tmp_path):
    runs = [
        _fake_run(tmp_path, "FL", "lr0.001_g1", 0.40, {"gamma": 1.0}),
        _fake_run(tmp_path, "FL", "lr0.001_g2", 0.55, {"gamma": 2.0}),
        _fake_run(tmp_path, "FL", "lr0.0001_g2", 0.50, {"gamma": 2.0}),
        _fake_run(tmp_path, "CE", "lr0.001", 0.30, {}),
        _fake_run(tmp_path, "CE", "lr0.0001", 0.35, {}),
    ]
    table, models = tmp_path / "selection.tsv", tmp_path / "models" / "3"
    df = select_models(runs, table, models, ["CE", "FL"])
    got = pd.read_csv(table, sep="\t")
    assert len(got) == 5 and list(got.columns[:3]) == ["split", "loss", "setting"]
    chosen = got[got["chosen"]].set_index("loss")["setting"].to_dict()
    assert chosen == {"CE": "lr0.0001", "FL": "lr0.001_g2"}
    assert list(got["loss"]) == ["CE", "CE", "FL", "FL", "FL"] and (got["epochs"] == 3).all()
    assert df["chosen"].sum() == 2
    _, meta = load_checkpoint(models / "FL.pt")
    assert meta["setting"] == "lr0.001_g2" and meta["best_val"]["val_mean"] == 0.55
    with pytest.raises(ValueError, match="DL"):
        select_models(runs, table, models, ["CE", "DL"])
    # a run is known by its checkpoint's metadata, not by the folders it lies in
    moved = tmp_path / "elsewhere" / "a.pt"
    moved.parent.mkdir()
    shutil.copyfile(runs[1], moved)
    df = select_models([runs[0], moved], tmp_path / "s2.tsv", tmp_path / "m2", ["FL"])
    assert df.set_index("setting").at["lr0.001_g2", "chosen"] and len(df) == 2
    save_checkpoint(moved, DeepSSETracerUNet(width=0.0625), epoch=1)
    with pytest.raises(CheckpointError, match="not a training run"):
        select_models([moved], tmp_path / "s3.tsv", tmp_path / "m3")


def test_bf16_autocast_on_a_cpu_is_a_choice_recorded_in_the_checkpoint(tmp_path):
    ds, split = synthetic_dataset(tmp_path, ["train", "val"])
    cfg = TrainConfig(width=0.125, max_epochs=1, patience=1, max_steps_per_epoch=2, device="cpu", threads=1,
                      dropout=0.0, patch=16, batch=2, amp="bf16")  # fmt: skip
    train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "bf16", cfg)
    _, meta = load_checkpoint(tmp_path / "bf16" / "checkpoint.pt")
    assert meta["amp"] == "bf16" and meta["device"] == "cpu"
    cfg.amp = "auto"  # the default: fp32 on a CPU
    train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "auto", cfg)
    assert load_checkpoint(tmp_path / "auto" / "checkpoint.pt")[1]["amp"] == "none"
    cfg.amp = "fp16"
    with pytest.raises(ValueError, match="train.amp 'fp16' is not one of auto, bf16, none"):
        train_setting(ds, split, 0, "CE", "lr0.001", tmp_path / "bad", cfg)
