"""The split rules through Snakemake (issues 4 and 9): a fake dataset with two paper cases."""

from __future__ import annotations

import random

import pandas as pd
import pytest
import yaml

from conftest import copy_workflow, planned_jobs, run_snakemake
from cryosse import splits as S


def _mmseqs_available() -> bool:
    try:
        S.find_mmseqs()
    except RuntimeError:
        return False
    return True


def _protein(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(n))


@pytest.mark.slow
@pytest.mark.skipif(not _mmseqs_available(), reason="no MMseqs2 executable")
def test_split_rules_paper_mode(tmp_path):
    rng = random.Random(2)
    pairs = {"1657_4V5H_AE": ("EMD-1657", "4V5H", "AE"), "6452_3JBO_Ae": ("EMD-6452", "3JBO", "Ae")}
    for i in range(18):
        pairs[f"{8800 + i}_8Y{i:02d}_{'Ab' if i % 3 else 'B'}"] = (
            f"EMD-{8800 + i}",
            f"8Y{i:02d}",
            "Ab" if i % 3 else "B",
        )
    res = tmp_path / "results"
    (res / "dataset").mkdir(parents=True)
    (res / "acquire").mkdir(parents=True)
    rows = [
        {
            "pair_id": p,
            "emdb_id": e,
            "pdb_id": d,
            "chain": c,
            "resolution": "6.5",
            "bin": str(1 + i % 3),
            "sequence": _protein(rng, 90 + i),
            "path": f"pairs/{p}",
        }
        for i, (p, (e, d, c)) in enumerate(sorted(pairs.items()))
    ]
    pd.DataFrame(rows).to_csv(res / "dataset" / "dataset.tsv", sep="\t", index=False)
    (res / "dataset" / "rejected.tsv").write_text("stage\tid\treason\ndataset\t1657_4V5H_AM\tquality bin 4\n")
    (res / "acquire" / "rejected.tsv").write_text("stage\tid\treason\n")
    entries = tmp_path / "entries.tsv"
    entries.write_text(
        "emdb_id\tpdb_id\tchain\n" + "".join(f"{e}\t{d}\t\n" for e, d, _ in sorted(set(pairs.values())))
    )
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "entries": str(entries),
                "results": str(res),
                "resources": str(tmp_path / "resources"),
                "logs": str(tmp_path / "logs"),
                "split": {
                    "test": "paper",
                    "fractions": [70, 10, 20],
                    "n_cv": 2,
                    "cv_test_size": 3,
                    "cv_val_size": 2,
                },
                "train": {"splits": [0, 1, 2]},
            }
        )
    )
    wf = copy_workflow(tmp_path / "wf")
    # the dataset is given: only the split rules may run
    allowed = ("--allowed-rules", "split_cluster", "split_make", "split_audit", "splits")
    run_snakemake(wf, *allowed, "--", "splits", configfiles=["config/demo.yaml", cfg], cores=2, timeout=600)
    out = res / "splits"
    s0 = S.read_table(out / "split_0.tsv")
    assert sorted(s0.loc[s0["role"] == "test", "pair_id"]) == ["1657_4V5H_AE", "6452_3JBO_Ae"]
    assert set(s0["pair_id"]) == set(pairs)  # two-letter and mixed-case chains unchanged
    for k in (1, 2):
        assert (out / f"split_{k}.tsv").read_bytes() == (out / "candidates" / f"split_{k}.tsv").read_bytes()
    st = S.read_table(out / "paper_cases.tsv").set_index("case_id")
    assert (st["status"] == "used").sum() == 2 and (st["status"] == "unavailable").sum() == 60
    assert st.loc["1657_4V5H_AM", "reason"] == "chain filtered out: quality bin 4"
    assert st.loc["0090_6GYK_M", "reason"] == "entry not in the entry table"
    audit = S.read_table(out / "audit.tsv")
    assert set(audit["split"]) == {"0", "1", "2"} and set(audit["leak"]) == {"False"}
    assert "Leakage audit" in (out / "audit.md").read_text()
    assert S.read_fasta(out / "sequences.fasta").keys() == set(pairs)

    # each split rule depends on the keys it reads: a new validation size redraws the splits
    # and re-audits them, but does not rerun MMseqs2's clustering
    cfg_val = tmp_path / "cfg_val.yaml"
    changed = yaml.safe_load(cfg.read_text())
    changed["split"]["cv_val_size"] = 3
    cfg_val.write_text(yaml.safe_dump(changed))
    dry = run_snakemake(
        wf,
        *allowed,
        "--",
        "splits",
        configfiles=["config/demo.yaml", cfg_val],
        cores=2,
        dry_run=True,
        timeout=300,
    )
    planned = planned_jobs(dry)
    assert "split_make" in planned and "split_audit" in planned
    assert "split_cluster" not in planned
