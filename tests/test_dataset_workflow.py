"""`snakemake dataset` on two demo entries (simulated maps) in a temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cryosse.dataset.pairs import DATASET_COLUMNS


@pytest.mark.slow
def test_snakemake_dataset_two_entries(root, tmp_path):
    if not (root / "data" / "demo_structures" / "2FMJ.cif.gz").exists():
        pytest.skip("demo structures not present")
    shutil.copytree(root / "config", tmp_path / "config")
    (tmp_path / "data").symlink_to(root / "data")
    (tmp_path / "config" / "two.tsv").write_text(
        "emdb_id\tpdb_id\tchain\nEMD-90018\t2FMJ\t\nEMD-90029\t6WG6\t\n"
    )
    cmd = [sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "--configfile", "config/demo.yaml",
           "--config", "entries=config/two.tsv", "--cores", "2", "dataset"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "results" / "demo" / "dataset"
    dataset = pd.read_csv(out / "dataset.tsv", sep="\t", dtype={"chain": str})
    rejected = pd.read_csv(out / "rejected.tsv", sep="\t")
    assert list(dataset.columns) == DATASET_COLUMNS
    assert (
        dataset["pair_id"].tolist()
        == sorted(dataset["pair_id"])
        == ["90018_2FMJ_A", "90029_6WG6_G", "90029_6WG6_H"]
    )
    assert rejected.values.tolist() == [["dataset", "90029_6WG6_I", "duplicate of chain G (identity 1.00)"]]
    for path in dataset["path"]:
        z = np.load(tmp_path / path / "arrays.npz")
        assert z["labels"].shape == z["density"].shape and (z["labels"] == 1).any()
    assert (out / "entries" / "EMD-90018.tsv").exists()
