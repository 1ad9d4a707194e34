"""The train stage through Snakemake: one job per setting, selection, resume state beside the outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, planned_jobs, run_snakemake, synthetic_dataset
from cryosse.model import load_checkpoint
from cryosse.train import TrainConfig, job_config

TRAIN = {
    "width": 0.125,
    "losses": ["CE", "FL_DL"],
    "lrs": [1.0e-3],
    "gammas": [1, 2],
    "term_weights": [[1.0, 1.0], [0.5, 1.0]],
    "splits": [0],
    "max_epochs": 2,
    "patience": 2,
    "patch": 16,
    "max_steps_per_epoch": 2,
    "threads": 1,
    "gpus_per_job": 0,
    "mem_mb": 1000,
    "runtime": 10,
}


def test_jobs_follow_the_grid(tmp_path):
    """The workflow plans one training job per (loss, setting) of the configured grid, one
    selection per split, and no job for a setting outside the grid."""
    grid = {k: TRAIN[k] for k in ("losses", "lrs", "gammas", "term_weights", "splits")}
    wf = copy_workflow(tmp_path / "wf", overlay=yaml.safe_dump({"train": grid}))
    cfg = ["config/demo.yaml", "config/test.yaml"]
    proc = run_snakemake(wf, "train", configfiles=cfg, dry_run=True)
    planned = re.findall(r"^\s*output: (results/demo/train/\S+/checkpoint\.pt)", proc.stdout, re.M)
    assert sorted(planned) == [
        "results/demo/train/0/CE/lr0.001/checkpoint.pt",
        "results/demo/train/0/FL_DL/lr0.001_g1/checkpoint.pt",
        "results/demo/train/0/FL_DL/lr0.001_g1_w0.5-1/checkpoint.pt",
        "results/demo/train/0/FL_DL/lr0.001_g2/checkpoint.pt",
        "results/demo/train/0/FL_DL/lr0.001_g2_w0.5-1/checkpoint.pt",
    ]
    assert planned_jobs(proc)["train_select"] == 1
    outside = run_snakemake(
        wf, "results/demo/train/0/FL_DL/lr0.5_g3/checkpoint.pt", configfiles=cfg, dry_run=True, check=False
    )
    assert outside.returncode != 0 and "MissingRuleException" in outside.stdout + outside.stderr


def test_job_config_holds_what_a_run_depends_on():
    # a job's params: what its result depends on, not the grid, the splits or the resources
    assert job_config(TRAIN) == {
        "width": 0.125,
        "max_epochs": 2,
        "patience": 2,
        "patch": 16,
        "max_steps_per_epoch": 2,
    }
    assert TrainConfig.from_mapping(job_config(TRAIN), 7).seed == 7


@pytest.mark.slow
def test_snakemake_train_writes_selection(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    res = wf / "results"
    (res / "splits").mkdir(parents=True)
    _, sp = synthetic_dataset(res / "dataset", ["train", "train", "val", "test"], n=24)
    Path(sp).rename(res / "splits" / "split_0.tsv")
    train = {
        **TRAIN,
        "gammas": [2],
        "term_weights": [[1.0, 1.0]],
        "init_from": "",
    }  # from scratch at width 0.125
    cfg = {"entries": "config/demo_entries.tsv", "results": "results", "logs": "logs", "train": train}
    (wf / "config" / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    run_snakemake(
        wf,
        "--workflow-profile",
        "none",
        # dataset.tsv and split_0.tsv are given: only this stage's rules may run
        "--allowed-rules",
        "train_setting",
        "train_select",
        "train",
        "--",
        "train",
        configfiles=["config/config.yaml", "config/demo.yaml", "config/cfg.yaml"],
        cores=2,
        timeout=600,
    )
    sel = pd.read_csv(res / "train" / "0" / "selection.tsv", sep="\t")
    assert list(sel["setting"]) == ["lr0.001", "lr0.001_g2"] and sel["chosen"].all()
    for loss, setting in [("CE", "lr0.001"), ("FL_DL", "lr0.001_g2")]:
        run = res / "train" / "0" / loss / setting
        assert (run / "state.pt").exists()
        assert list(pd.read_csv(run / "history.tsv", sep="\t")["epoch"]) == [1, 2]
        _, meta = load_checkpoint(res / "models" / "0" / f"{loss}.pt")
        assert meta["setting"] == setting and meta["loss"]["name"] == loss and meta["split"] == "0"
        assert "epoch 2" in (wf / "logs" / "train" / "0" / loss / f"{setting}.log").read_text()
