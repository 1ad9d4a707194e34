"""`snakemake dataset` on two demo entries (simulated maps) in a temporary folder."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from conftest import copy_workflow, run_snakemake
from cryosse.dataset.pairs import DATASET_COLUMNS


@pytest.mark.slow
def test_snakemake_dataset_two_entries(root, tmp_path):
    if not (root / "data" / "demo_structures" / "2FMJ.cif.gz").exists():
        pytest.skip("demo structures not present")
    wf = copy_workflow(tmp_path / "wf")
    (wf / "config" / "two.tsv").write_text("emdb_id\tpdb_id\tchain\nEMD-90018\t2FMJ\t\nEMD-90029\t6WG6\t\n")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ("--config", "entries=config/two.tsv", "--", "dataset")
    run_snakemake(wf, *args, configfiles=["config/demo.yaml"], cores=2, env=env, timeout=600)
    out = wf / "results" / "demo" / "dataset"
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
        z = np.load(wf / path / "arrays.npz")
        assert z["labels"].shape == z["density"].shape and (z["labels"] == 1).any()
    assert (out / "entries" / "EMD-90018.tsv").exists()
