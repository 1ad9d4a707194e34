"""profiles/slurm on a real single-node SLURM (tools/slurm.sh: Debian's slurm-wlm + munge).

Each test starts its own throw-away cluster and stops every daemon it started, by PID,
whatever happens. Needs root and either the SLURM binaries or apt-get to install them;
skipped otherwise. The cluster has no accounting (slurmdbd), hence the status flags below
(see profiles/slurm/config.v8+.yaml and ../shared/notes/toolchain.md section 5).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import copy_workflow, plan_problem, run_snakemake

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm"
SLURM_SH = ROOT / "tools" / "slurm.sh"
# what a cluster without slurmdbd needs on top of the profile
NO_ACCOUNTING = [
    "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
    "--slurm-no-account",
]  # fmt: skip

pytestmark = pytest.mark.slurm


def _slurm_possible() -> str | None:
    """Why a SLURM cluster cannot be started here (None when it can)."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to start slurmctld/slurmd/munged"
    have = all(shutil.which(t) for t in ("slurmctld", "slurmd", "sbatch", "munged"))
    if not have and not shutil.which("apt-get"):
        return "SLURM is not installed and apt-get is not available to install it"
    etc = Path("/etc/slurm/slurm.conf")
    if etc.exists() and "tools/slurm.sh" not in etc.read_text().splitlines()[0]:
        return "/etc/slurm/slurm.conf belongs to a real cluster on this machine; not replacing it"
    return None


@contextlib.contextmanager
def slurm_cluster(tmp: Path, gpu: bool = True) -> Iterator[Path]:
    why = _slurm_possible()
    if why:
        pytest.skip(why)
    state = tmp / "slurm"
    cmd = ["bash", str(SLURM_SH), "start", str(state)] + ([] if gpu else ["--no-gpu"])
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if res.returncode == 3:
            pytest.skip(f"SLURM could not be installed: {res.stderr.strip()[-500:]}")
        assert res.returncode == 0, f"tools/slurm.sh start failed:\n{res.stderr[-3000:]}"
        yield state
    finally:
        stop = subprocess.run(["bash", str(SLURM_SH), "stop", str(state)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert stop.returncode == 0, f"tools/slurm.sh stop failed:\n{stop.stderr}"
        for pid_file in ("slurmctld.pid", "slurmd.pid"):
            p = state / pid_file
            if p.exists() and p.read_text().strip():
                pid = int(p.read_text().strip())
                assert (
                    not Path(f"/proc/{pid}").exists() or "slurm" not in Path(f"/proc/{pid}/comm").read_text()
                ), f"{pid_file}: daemon {pid} still running after stop"


def snakemake(
    workdir: Path, *args: str, configfiles: tuple[str, ...] = (), cores: int | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Snakemake through profiles/slurm (no ``--cores`` unless given); the caller checks the exit status."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SLURM_CONF", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return run_snakemake(
        workdir, "--workflow-profile", str(PROFILE), *NO_ACCOUNTING, "--jobs", "2", "--retries", "0", *args,
        configfiles=configfiles, cores=cores, env=env, timeout=timeout, check=False,
    )  # fmt: skip


TINY = """
include: "@ROOT@/workflow/rules/cluster.smk"

rule all:
    input: "b.txt"

rule a:
    output: "a.txt"
    log: "logs/a.log"
    threads: 1
    shell: "echo job=$SLURM_JOB_ID > {output}; scontrol show job $SLURM_JOB_ID > {log}"

# named like the workflow's training rule: the profile's set-resources gives it gpu=1
rule train_setting:
    input: "a.txt"
    output: "b.txt"
    log: "logs/b.log"
    threads: 2
    shell: "cat {input} > {output}; echo job=$SLURM_JOB_ID cpus=$SLURM_CPUS_PER_TASK >> {output}; scontrol show job $SLURM_JOB_ID >> {output}"

rule hog:
    output: "hog.txt"
    log: "logs/hog.log"
    resources: mem_mb=100
    shell: "python3 -c 'import time; a = bytearray(600 * 2**20); time.sleep(10)' 2> {log}; touch {output}"
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text(TINY.replace("@ROOT@", str(ROOT)))
    return wf


@pytest.mark.slow
def test_profile_runs_cpu_and_gpu_jobs(tmp_path: Path, tiny: Path) -> None:
    with slurm_cluster(tmp_path):
        res = snakemake(tiny)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-5000:]
    a = (tiny / "a.txt").read_text()
    b = (tiny / "b.txt").read_text()
    assert re.search(r"job=\d+", a), "rule a did not run inside a SLURM job"
    assert "cpus=2" in b, "threads: 2 must become --cpus-per-task=2"
    assert "gres:gpu:1" in b or "gres/gpu=1" in b, "set-resources train_setting gpu=1 must reach SLURM"
    assert "mem=4000M" in (tiny / "logs" / "a.log").read_text(), (
        "default-resources mem_mb=4000 must reach SLURM"
    )
    assert re.search(r"has been submitted with SLURM jobid \d+", out)


def test_unknown_partition_names_rule_and_logs(tmp_path: Path, tiny: Path) -> None:
    with slurm_cluster(tmp_path):
        res = snakemake(tiny, "--set-resources", "a:slurm_partition=nosuch", timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Error in rule a:" in out, out[-3000:]
    assert "invalid partition specified: nosuch" in out, out[-3000:]
    assert "logs/a.log" in out and "slurm_logs/rule_a/" in out, "the user must see where the logs go"


def test_gpu_job_on_cluster_without_gpus(tmp_path: Path, tiny: Path) -> None:
    with slurm_cluster(tmp_path, gpu=False):
        (tiny / "a.txt").write_text("done\n")
        res = snakemake(tiny, "b.txt", timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Error in rule train_setting:" in out, out[-3000:]
    assert "Invalid generic resource (gres) specification" in out, out[-3000:]
    assert "--gpus=1" in out or "--gpus 1" in out


@pytest.mark.slow
def test_job_killed_for_memory_names_rule_jobid_and_log(tmp_path: Path, tiny: Path) -> None:
    with slurm_cluster(tmp_path):
        res = snakemake(tiny, "hog.txt", timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Error in rule hog:" in out, out[-3000:]
    m = re.search(r"SLURM-job '(\d+)' failed", out)
    assert m, out[-3000:]
    log = tiny / ".snakemake" / "slurm_logs" / "rule_hog" / f"{m.group(1)}.log"
    assert str(log) in out, "the SLURM log path must be printed"
    assert "Exceeded job memory limit" in log.read_text()
    # workflow/rules/cluster.smk's onerror says why, with rule, job id and log
    assert f"rule hog, SLURM job {m.group(1)}: killed by SLURM for using more memory" in out, out[-3000:]
    assert "--set-resources hog:mem_mb=" in out
    assert not (tiny / "hog.txt").exists()


# --------------------------------------------------------------------------- the demo workflow

N_ENTRIES = 8  # the first 8 demo entries and one cross-validation split: a few minutes on 2 cores
OVERLAY = """# tests/test_slurm.py: a reduced demo
entries: config/test_entries.tsv
split:
  n_cv: 1
  min_train_pairs: 2  # 8 entries: split 1 trains on 3 pairs
"""


CONFIGS = ("config/demo.yaml", "config/test_slurm.yaml")


def demo_copy(tmp: Path) -> Path:
    """The workflow in a temp folder (never the repo's results/), with a reduced entry table."""
    return copy_workflow(tmp / "repo", N_ENTRIES, OVERLAY, "test_slurm.yaml")


@pytest.mark.slow
def test_demo_dataset_and_splits_through_slurm(tmp_path: Path) -> None:
    repo = demo_copy(tmp_path)
    why = plan_problem(repo, "dataset", "splits", need=("dataset_tables", "split_audit"), configfiles=CONFIGS)
    assert why is None, why
    with slurm_cluster(tmp_path):
        # one SLURM job per stage's entries (a group), as one would bundle short jobs on a
        # cluster; --cores/--resources cap what a group job asks for (else the sum of its jobs)
        res = snakemake(
            repo, "--slurm-keep-successful-logs", "--groups", "acquire_entry=acq", "dataset_entry=ds",
            "--group-components", f"acq={N_ENTRIES}", f"ds={N_ENTRIES}", "--resources", "mem_mb=16000",
            "--", "dataset", "splits", configfiles=CONFIGS, cores=2, timeout=1500,
        )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    results = repo / "results" / "demo"
    for rel in ("dataset/dataset.tsv", "dataset/rejected.tsv", "splits/split_0.tsv", "splits/audit.tsv"):
        assert (results / rel).is_file(), rel
    logs = repo / ".snakemake" / "slurm_logs"
    ran = {p.name for p in logs.iterdir()} if logs.is_dir() else set()
    assert any("split" in r for r in ran), ran
    # the cheap collecting rule is a localrule: it runs beside Snakemake, never as a SLURM job
    assert not any("dataset_tables" in r for r in ran), ran
    assert "rule dataset_tables:" in out or "localrule dataset_tables:" in out
    assert len(re.findall(r"submitted with SLURM jobid", out)) >= 5
    assert any(r.startswith("group_ds") for r in ran) and any(
        r.startswith("rule_split_audit") for r in ran
    ), ran


def test_failure_hints_read_slurm_logs(tmp_path: Path) -> None:
    """No SLURM needed: the onerror hints from job logs in the plugin's layout."""
    from cryosse.slurm_hints import failure_hints

    logs = tmp_path / "slurm_logs"
    (logs / "rule_dataset_entry" / "EMD-1").mkdir(parents=True)
    (logs / "rule_dataset_entry" / "EMD-1" / "17.log").write_text(
        "slurmstepd-vm: error: StepId=17.batch exceeded memory limit (300 > 100), being killed\n"
    )
    (logs / "rule_train_setting").mkdir()
    (logs / "rule_train_setting" / "18.log").write_text(
        "slurmstepd: error: *** JOB 18 CANCELLED AT x DUE TO TIME LIMIT ***\n"
    )
    (logs / "rule_split_make").mkdir()
    (logs / "rule_split_make" / "19.log").write_text("Traceback ... ValueError: not enough clusters\n")
    hints = failure_hints(logs)
    assert len(hints) == 2
    assert hints[0].startswith("rule dataset_entry, SLURM job 17: killed by SLURM for using more memory")
    assert "--set-resources dataset_entry:mem_mb=" in hints[0] and "17.log" in hints[0]
    assert hints[1].startswith("rule train_setting, SLURM job 18: killed by SLURM at its time limit")
    assert failure_hints(logs, since=2**40) == [] and failure_hints(tmp_path / "none") == []
