"""Resume and reproduce: kill -9 the workflow mid-stage, rerun, compare bytes.

* Two clean runs of the demo's dataset and split stages give byte-identical outputs.
* A run killed (SIGKILL to the whole process group) in the middle of the dataset stage
  leaves no half-written output; the rerun completes and its outputs equal a clean run's.
* A training job killed mid-way resumes from its state (state.pt) on rerun: the log says
  so and the finished history has every epoch exactly once.

Everything runs in a temp copy of the workflow, on a reduced demo (the first 8 demo
entries, one cross-validation split) so that the module takes a few minutes on 2 cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import copy_workflow, plan_problem, run_snakemake, snakemake_cmd

ROOT = Path(__file__).resolve().parents[1]
N_ENTRIES = 8
OVERLAY = """# tests/test_resume.py: a reduced demo
entries: config/test_entries.tsv
split:
  n_cv: 1
  min_train_pairs: 2  # 8 entries: split 1 trains on 3 pairs
train:
  losses: [CE]
  lrs: [1.0e-3]  # the grid's only setting: lr0.001 (TRAIN_DIR)
  splits: [0]
  max_epochs: 6
  patience: 6
"""
TRAIN_DIR = "results/demo/train/0/CE/lr0.001"

pytestmark = pytest.mark.slow


def make_copy(dst: Path) -> Path:
    return copy_workflow(dst, N_ENTRIES, OVERLAY, "test_resume.yaml")


CONFIGS = ("config/demo.yaml", "config/test_resume.yaml")


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1"}  # fmt: skip


def run(repo: Path, *args: str, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Snakemake on 2 cores on the reduced demo in ``repo`` (the caller checks the exit status unless ``check``)."""
    return run_snakemake(repo, *args, configfiles=CONFIGS, cores=2, env=env(), check=check, **kw)


def run_and_kill(repo: Path, targets: list[str], when: Callable[[], bool], timeout: float = 600) -> bool:
    """Start snakemake; SIGKILL its whole process group once ``when()`` holds. False if it ended first."""
    log = open(repo / "killed_run.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(snakemake_cmd(*targets, configfiles=CONFIGS, cores=2), cwd=repo, stdout=log,
                            stderr=subprocess.STDOUT, env=env(), start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if when():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return True
            time.sleep(0.1)
        raise AssertionError(f"condition not reached in {timeout} s; see {repo / 'killed_run.log'}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def rerun(repo: Path, *targets: str) -> subprocess.CompletedProcess:
    """What a user does after a crash: run again (unlocking first if Snakemake asks for it)."""
    res = run(repo, *targets)
    if res.returncode != 0 and "--unlock" in res.stdout + res.stderr:
        run(repo, "--unlock", *targets, timeout=300, check=True)
        res = run(repo, *targets)
    return res


def write_map_is_reproducible(tmp: Path) -> bool:
    """Does cryosse.geometry.write_map give the same bytes for the same map a second later?

    (mrcfile stamps the creation time into the first MRC label unless it is overwritten.)
    """
    import numpy as np

    from cryosse.geometry import MapGeometry, write_map

    geom = MapGeometry((2, 3, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    write_map(tmp / "a.mrc", data, geom)
    time.sleep(1.1)
    write_map(tmp / "b.mrc", data, geom)
    return (tmp / "a.mrc").read_bytes() == (tmp / "b.mrc").read_bytes()


def assert_same(a: dict[str, str], b: dict[str, str], what: str, tmp: Path) -> None:
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if differ and not write_map_is_reproducible(tmp):
        pytest.xfail(
            f"{what}: {len(differ)} files differ ({differ[:3]}...) because cryosse.geometry.write_map "
            "stamps the creation time into the MRC label (mrcfile default); fix requested"
        )
    assert not differ, f"{what}: {len(differ)} file(s) differ: {differ[:10]}"


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every non-hidden file under ``folder`` (relative paths)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.is_file())


def check_complete(path: Path) -> None:
    """Fail if an output file is not a whole, readable file of its kind."""
    import numpy as np
    import pandas as pd

    if path.suffix == ".tsv":
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        assert len(df.columns) > 1, f"{path}: truncated table"
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".npz":
        with np.load(path) as z:
            for k in z.files:
                z[k]
    elif path.suffix == ".mrc":
        import mrcfile

        with mrcfile.open(path, permissive=False) as m:
            assert m.data is not None and m.data.size > 0
    elif path.suffix == ".pt":
        from cryosse.model import load_checkpoint

        if path.name == "checkpoint.pt":
            load_checkpoint(path)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    """Two clean runs of dataset + splits in one copy; the checksums of each."""
    repo = make_copy(tmp_path_factory.mktemp("clean") / "repo")
    why = plan_problem(
        repo,
        "dataset",
        "splits",
        need=("dataset_tables", "split_audit"),
        configfiles=CONFIGS,
        cores=2,
        env=env(),
    )
    assert why is None, why
    sums = []
    for i in range(2):
        t0 = time.monotonic()
        res = run(repo, "dataset", "splits")
        assert res.returncode == 0, f"clean run {i + 1} failed:\n{(res.stdout + res.stderr)[-5000:]}"
        print(f"clean run {i + 1}: {time.monotonic() - t0:.0f} s")
        sums.append({stage: checksums(repo / "results" / "demo" / stage) for stage in ("dataset", "splits")})
        if i == 0:
            shutil.rmtree(repo / "results")
            shutil.rmtree(repo / "resources")
            shutil.rmtree(repo / ".snakemake", ignore_errors=True)
    return {"repo": repo, "sums": sums}


def test_two_clean_runs_are_byte_identical(clean: dict, tmp_path: Path) -> None:
    first, second = clean["sums"]
    assert "dataset.tsv" in first["dataset"] and "split_0.tsv" in first["splits"]
    assert any(k.endswith("arrays.npz") for k in first["dataset"])
    for stage in ("splits", "dataset"):
        assert first[stage], f"the {stage} stage wrote nothing"
        assert_same(first[stage], second[stage], f"{stage}, two clean runs", tmp_path)


def test_kill_during_dataset_stage_then_rerun(clean: dict, tmp_path: Path) -> None:
    repo = make_copy(tmp_path / "repo")
    entries = repo / "results" / "demo" / "dataset" / "entries"
    final = repo / "results" / "demo" / "dataset" / "dataset.tsv"

    def mid_dataset() -> bool:
        return entries.is_dir() and len(list(entries.glob("*.tsv"))) >= 3 and not final.exists()

    assert run_and_kill(repo, ["dataset", "splits"], mid_dataset), "the run ended before it could be killed"
    assert not final.exists()
    results = repo / "results" / "demo"
    checked = 0
    for path in sorted(results.rglob("*")):
        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(results).parts):
            check_complete(path)
            checked += 1
    assert checked >= 3
    # every pair folder that exists is whole (pairs appear by rename)
    for pair in (results / "dataset" / "pairs").glob("*"):
        if pair.is_dir() and not pair.name.startswith("."):
            names = {p.name for p in pair.iterdir()}
            assert {"map.mrc", "labels.mrc", "record.json", "arrays.npz"} <= names, f"{pair}: {names}"
    res = rerun(repo, "dataset", "splits")
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    left = leftovers(results)
    if left:  # a SIGKILL can strand a temporary file (never a final name); report, do not fail
        print(f"temporary files stranded by the kill: {left[:5]}")
    first = clean["sums"][0]
    for stage in ("splits", "dataset"):
        assert_same(first[stage], checksums(results / stage), f"{stage}, killed-and-rerun vs clean", tmp_path)


def test_kill_during_training_resumes_from_checkpoint(clean: dict) -> None:
    repo = clean["repo"]  # dataset and splits are done there
    target = f"{TRAIN_DIR}/checkpoint.pt"
    why = plan_problem(repo, target, need=("train_setting",), configfiles=CONFIGS, cores=2, env=env())
    assert why is None, why
    state = repo / TRAIN_DIR / "state.pt"
    hist = repo / TRAIN_DIR / "history.tsv"

    def mid_training() -> bool:
        return state.is_file()

    assert run_and_kill(repo, [target], mid_training), "training ended before it could be killed"
    for path in (repo / TRAIN_DIR).glob("*"):
        if path.is_file() and not path.name.startswith("."):
            check_complete(path)
    res = rerun(repo, target)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    log = repo / "logs" / "demo" / "train" / "0" / "CE" / "lr0.001.log"
    text = log.read_text()
    assert "resuming" in text, f"the rerun did not resume from state.pt:\n{text[-2000:]}"
    import pandas as pd

    epochs = pd.read_csv(hist, sep="\t")["epoch"].tolist()
    assert epochs == list(range(1, len(epochs) + 1)), f"history epochs {epochs}"
    assert len(epochs) == 6
    check_complete(repo / TRAIN_DIR / "checkpoint.pt")


def test_a_moved_results_folder_reruns_nothing(clean: dict, tmp_path: Path) -> None:
    """No absolute path in any rule's params or inputs: a finished run moved (or cloned) to
    another folder, .snakemake metadata and all, has nothing left to do."""
    repo = clean["repo"]
    run(repo, "dataset", "splits", "dataset_card", check=True)
    moved = tmp_path / "elsewhere" / "repo"
    shutil.copytree(repo, moved, symlinks=True)
    r = run(moved, "dataset", "splits", "dataset_card", dry_run=True, check=True)
    assert "Nothing to be done" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
