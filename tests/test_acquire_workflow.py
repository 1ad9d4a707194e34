"""The acquire rules through Snakemake: dry runs on both configs, a demo run in a temp copy."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import copy_workflow, planned_jobs, run_snakemake


@pytest.fixture(scope="module")
def wf(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def test_dry_run_paper_config_plans_the_search_first(wf):
    # entries: search: the EMDB search is the first job; the entries' jobs follow what it finds
    jobs = planned_jobs(run_snakemake(wf, "acquire", dry_run=True, timeout=600))
    assert jobs.get("emdb_search") == 1 and "acquire_entry" not in jobs and jobs.get("acquire_tables") == 1


def test_dry_run_of_an_entry_table(wf):
    from cryosse.acquire.records import read_entry_table

    table = "config/paper_test_entries.tsv"
    proc = run_snakemake(wf, "acquire", "--config", f"entries={table}", dry_run=True, timeout=600)
    jobs = planned_jobs(proc)
    assert jobs.get("acquire_entry") == len(read_entry_table(wf / table)) == 45 and "emdb_search" not in jobs
    # the paper's test entries with a random test set: said before anything runs
    proc = run_snakemake(wf, "acquire", "--config", f"entries={table}", "split={test: random}", dry_run=True)
    assert "lists 45 entries of the paper's test cases" in proc.stderr


def test_dry_run_demo_config(wf):
    proc = run_snakemake(wf, "acquire", configfiles=["config/demo.yaml"], dry_run=True, timeout=600)
    n = sum(1 for line in open(wf / "config" / "demo_entries.tsv") if line.startswith("EMD-"))
    assert planned_jobs(proc).get("acquire_entry") == n


@pytest.mark.slow
def test_demo_acquisition_runs(wf):
    run_snakemake(wf, "acquire", configfiles=["config/demo.yaml"], cores=2, timeout=600)
    res = wf / "results" / "demo" / "acquire"
    with open(res / "entries.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    n = sum(1 for line in open(wf / "config" / "demo_entries.tsv") if line.startswith("EMD-"))
    assert len(rows) == n
    assert (res / "rejected.tsv").read_text().strip() == "stage\tid\treason"
    assert all(r["contour_source"] == "simulated" and 5.0 <= float(r["resolution"]) <= 10.0 for r in rows)
    assert all(float(r["voxel_size"]) == 1.2 for r in rows)
    with open(res / "manifest.tsv") as fh:
        assert sum(1 for _ in fh) == 3 * n + 1
    for r in rows:
        folder = wf / "resources" / "demo" / "archive" / r["emdb_id"]
        assert (folder / "record.json").exists() and (folder / f"{r['pdb_id']}.cif.gz").exists()
    again = run_snakemake(wf, "acquire", configfiles=["config/demo.yaml"], timeout=600)
    assert "Nothing to be done" in again.stdout + again.stderr
