"""The acquire rules through Snakemake: dry runs on both configs, a demo run in a temp copy."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def project_copy(root: Path, dest: Path) -> Path:
    return copy_workflow(dest)


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(SNAKEMAKE + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def wf(root, tmp_path_factory) -> Path:
    return project_copy(root, tmp_path_factory.mktemp("wf"))


def job_count(out: str, rule: str) -> int:
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == rule:
            return int(parts[1])
    return 0


def test_dry_run_paper_config(wf):
    proc = run(["-n", "acquire", "--cores", "1"], wf)
    from cryosse.acquire.records import read_entry_table

    n = len(read_entry_table(wf / "config" / "entries.tsv"))
    assert job_count(proc.stdout, "acquire_entry") == n and job_count(proc.stdout, "acquire_tables") == 1


def test_dry_run_demo_config(wf):
    proc = run(["-n", "acquire", "--cores", "1", "--configfile", "config/demo.yaml"], wf)
    n = sum(1 for line in open(wf / "config" / "demo_entries.tsv") if line.startswith("EMD-"))
    assert job_count(proc.stdout, "acquire_entry") == n


@pytest.mark.slow
def test_demo_acquisition_runs(wf):
    run(["acquire", "--cores", "2", "--configfile", "config/demo.yaml"], wf)
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
    again = run(["acquire", "--cores", "1", "--configfile", "config/demo.yaml"], wf)
    assert "Nothing to be done" in again.stdout + again.stderr
