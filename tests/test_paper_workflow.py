"""A `split.test: paper` run end to end, offline, on a local mirror of simulated maps (issue 9).

The test builds a folder with the archives' layout (structures/EMD-N/{map,header}/,
mmCIF/{xy}/{xxxx}.cif.gz) holding two of the paper's Table 2 cases, EMD-1657 / 4V5H chain AE
and EMD-6452 / 3JBO chain Ae, made from small bundled structures whose chain is renamed to the
paper's two-character / mixed-case ids, plus five non-paper entries (synthetic ids) for
training and validation. Snakemake then runs acquire -> dataset -> splits -> train ->
evaluate -> tables with `source: local` and `split.test: paper` in a temporary copy of the
workflow. Must hold: exactly the two cases are the main split's test set, the other 60 paper
cases are reported unavailable with a reason, the side-by-side Table 2 and the fidelity table
have the two rows, and the chain ids `AE` / `Ae` survive every step unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import archive_simulated, copy_workflow, run_snakemake, write_mmcif

# Paper cases: (EMDB id, PDB id of the mirror, paper chain id, bundled structure, its chain).
PAPER = [
    ("EMD-1657", "4V5H", "AE", "2CVI", "A"),
    ("EMD-6452", "3JBO", "Ae", "3A4R", "A"),
]
PAPER_PAIRS = ["1657_4V5H_AE", "6452_3JBO_Ae"]
# Non-paper entries (synthetic ids, bundled structures as they are): training and validation.
OTHERS = {
    "EMD-91101": "1I8N",
    "EMD-91102": "2XDG",
    "EMD-91103": "2VA0",
    "EMD-91104": "2SDF",
    "EMD-91105": "1MR1",
}


def _build_mirror(root: Path, base: Path) -> Path:
    """The archives' layout for the seven entries; returns the mirror folder."""
    structures, work, mirror = base / "structures_src", base / "sim", base / "mirror"
    structures.mkdir(parents=True)
    bundled = root / "data" / "demo_structures"
    for _, pdb, chain, src, old in PAPER:
        write_mmcif(bundled / f"{src}.cif.gz", pdb, structures / f"{pdb}.cif.gz", rename=(old, chain))
    for pdb in OTHERS.values():
        shutil.copy(bundled / f"{pdb}.cif.gz", structures / f"{pdb}.cif.gz")
    for emdb_id, pdb in [(e, pdb) for e, pdb, *_ in PAPER] + list(OTHERS.items()):
        archive_simulated(mirror, work, emdb_id, pdb, structures)
    return mirror


def _tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)


@pytest.mark.slow
def test_paper_run_of_a_local_mirror(tmp_path, root):
    mirror = _build_mirror(root, tmp_path / "build")
    entries = ["emdb_id\tpdb_id\tchain"]
    entries += [f"{e}\t{pdb}\t{chain}" for e, pdb, chain, *_ in PAPER]
    entries += [f"{e}\t{pdb}\t" for e, pdb in OTHERS.items()]
    overlay = {
        "source": "local",
        "entries": "config/paper_entries.tsv",
        "results": "results/paper",
        "resources": "resources/paper",
        "logs": "logs/paper",
        "acquire": {"mirror": str(mirror), "retries": 0},
        "split": {"test": "paper", "n_cv": 0, "fractions": [70, 15, 15], "min_train_pairs": 2},
        "train": {
            "losses": ["CE", "FL_DL"],
            "width": 0.125,
            "init_from": "",  # from scratch, as at paper scale (the demo fine-tunes the shipped width-0.25 model)
            "lrs": [1.0e-3],
            "gammas": [2],
            "splits": [0],
            "max_epochs": 1,
            "patience": 1,
            "patch": 24,
            "max_steps_per_epoch": 3,
            "threads": 1,
            "gpus_per_job": 0,
            "mem_mb": 1000,
            "runtime": 10,
        },
        "evaluate": {"bootstrap": 20, "device": "cpu", "slice_cases": 1},
    }
    wf = copy_workflow(tmp_path / "wf", overlay=yaml.safe_dump(overlay), overlay_name="paper_test.yaml")
    (wf / "config" / "paper_entries.tsv").write_text("\n".join(entries) + "\n")
    run_snakemake(
        wf,
        "--workflow-profile",
        "none",
        "tables",
        "figures",
        configfiles=["config/demo.yaml", "config/paper_test.yaml"],
        cores=2,
    )
    res = wf / "results" / "paper"

    # Acquire and dataset: every entry built; the paper chains kept with their exact ids.
    assert (_tsv(res / "acquire" / "rejected.tsv")).empty
    ds = _tsv(res / "dataset" / "dataset.tsv")
    for (emdb, pdb, chain, *_), pid in zip(PAPER, PAPER_PAIRS, strict=True):
        row = ds[ds["pair_id"] == pid]
        assert len(row) == 1, (pid, list(ds["pair_id"]))
        assert (row["emdb_id"].item(), row["pdb_id"].item(), row["chain"].item()) == (emdb, pdb, chain)
        pair_dir = res / "dataset" / "pairs" / pid
        assert {"map.mrc", "labels.mrc", "arrays.npz", "record.json"} <= {p.name for p in pair_dir.iterdir()}
        rec = json.loads((pair_dir / "record.json").read_text())
        assert (rec["pair_id"], rec["chain"]) == (pid, chain)
    assert (res / "dataset" / "entries" / "EMD-1657.tsv").is_file()
    # No folder under another spelling of the chain (a lower/upper-cased id would be a new name).
    pair_names = {p.name for p in (res / "dataset" / "pairs").iterdir()}
    assert not pair_names & {"1657_4V5H_ae", "1657_4V5H_Ae", "6452_3JBO_AE", "6452_3JBO_ae"}

    # Split 0: exactly the two paper cases in test; train and validation from the rest.
    split = _tsv(res / "splits" / "split_0.tsv")
    assert sorted(split.loc[split["role"] == "test", "pair_id"]) == PAPER_PAIRS
    assert (split["role"] == "train").sum() >= 1 and (split["role"] == "val").sum() >= 1
    assert not (res / "splits" / "split_1.tsv").exists()

    # paper_cases.tsv: all 62 cases, 2 used (role test), 60 unavailable with a reason.
    cases = _tsv(res / "splits" / "paper_cases.tsv")
    assert len(cases) == 62
    used = cases[cases["status"] == "used"]
    assert sorted(used["case_id"]) == PAPER_PAIRS and sorted(used["pair_id"]) == PAPER_PAIRS
    assert set(used["role"]) == {"test"}
    unavailable = cases[cases["status"] == "unavailable"]
    assert len(unavailable) == 60
    assert (unavailable["reason"].str.strip() != "").all()
    # The other chains of the two entries: not selected in the entry table, said so.
    same_entry = unavailable[unavailable["emdb_id"].isin(["EMD-1657", "EMD-6452"])]
    assert len(same_entry) >= 1
    assert same_entry["reason"].str.contains("not selected in the entry table").all()
    assert (
        unavailable.loc[~unavailable["emdb_id"].isin(["EMD-1657", "EMD-6452"]), "reason"]
        .eq("entry not in the entry table")
        .all()
    )

    # Evaluation: per-case rows and predicted maps carry the exact ids.
    for loss in ("CE", "FL_DL"):
        per_case = _tsv(res / "eval" / "0" / loss / "per_case.tsv")
        assert sorted(per_case["pair_id"]) == PAPER_PAIRS
        preds = sorted(
            p.name for p in (res / "eval" / "0" / loss / "pred").iterdir() if not p.name.startswith(".")
        )
        assert preds == [f"{pid}.mrc" for pid in PAPER_PAIRS]

    # Tables: the side-by-side Table 2, the fidelity table and the unavailable list.
    tables = res / "tables"
    for stem in ("table2_paper", "fidelity", "paper_unavailable", "table2"):
        for ext in ("tsv", "md", "tex", "html"):
            assert (tables / f"{stem}.{ext}").is_file(), f"{stem}.{ext}"
    t2p = _tsv(tables / "table2_paper.tsv")
    assert list(t2p["pair_id"]) == PAPER_PAIRS + ["Weighted Average"]
    paper = _tsv(root / "config" / "paper_test_cases.tsv").set_index(["emdb_id", "pdb_id", "chain"])
    for (emdb, pdb, chain, *_), pid in zip(PAPER, PAPER_PAIRS, strict=True):
        row = t2p[t2p["pair_id"] == pid].iloc[0]
        p = paper.loc[(emdb, pdb, chain)]
        for c in ("helix", "sheet", "other"):
            assert float(row[f"paper_ca_{c}"]) == float(p[f"ca_{c}"])
        assert float(row["paper_FL_DL_helix"]) == pytest.approx(float(p["FL_DL_helix"]) / 100)
    fid = _tsv(tables / "fidelity.tsv")
    assert list(fid["pair_id"]) == PAPER_PAIRS + ["Median relative difference"]
    for pid in PAPER_PAIRS:
        row = fid[fid["pair_id"] == pid].iloc[0]
        ours = ds.loc[ds["pair_id"] == pid].iloc[0]
        for c in ("helix", "sheet", "other"):
            assert float(row[f"ours_{c}"]) == float(ours[f"n_ca_{c}"])
    for stem in ("table2_paper", "fidelity"):
        md = (tables / f"{stem}.md").read_text()
        html = (tables / f"{stem}.html").read_text()
        for pid in PAPER_PAIRS:
            assert pid in md and pid in html, (stem, pid)
    unav = _tsv(tables / "paper_unavailable.tsv")
    assert len(unav) == 60 and (unav["reason"].str.strip() != "").all()
    assert not set(PAPER_PAIRS) & set(unav.get("case_id", pd.Series(dtype=str)))

    # Figures of the paper run (slices of a test case among them).
    for fig in ("f1_by_loss", "slices", "per_case_vs_ce"):
        assert (res / "figures" / f"{fig}.png").stat().st_size > 0
