"""Every command in the user docs' code blocks does what it says, on a copy of the project.

Each ``bash`` block of README.md, then docs/usage.md and config/README.md (:data:`DOCS`, in
that order: the later ones use what the README's commands wrote) is read line by line
(continuations joined, comments dropped) and each command is run in a fresh copy of the
tracked files:

* ``cryosse ...`` commands run for real (predict, build-pair, check-config, aggregate, score: all
  quick on the shipped sample), except ``query-emdb``, which needs the EMDB API: its arguments
  are parsed, and the shipped entry table is put where it would write;
* ``snakemake ...`` commands run as dry runs (``-n``), without ``--use-conda`` and
  ``--conda-create-envs-only`` (no conda here) and without ``--report`` (which needs a finished
  run; the report itself is tested in test_tables.py). A command on the demo's config must plan
  nothing outside the demo's folders (the old README's ``tables`` line planned a paper-scale run);
* ``bash tools/*.sh`` must exist and parse (``bash -n``: CI runs tools/test.sh itself, and the
  demo's stages are run by the workflow tests); ``source tools/env.sh`` and ``export`` set up
  what follows;
* ``pip install .`` and ``pip install ".[EXTRA]"`` are not run (they would download PyTorch;
  tests/test_install.py builds the wheel and runs predict and score without the extras): the
  extra must exist in pyproject.toml;
* ``chimerax``-style viewing is not a command here; anything else fails this test, so that a
  new command in the docs cannot go untested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the user docs whose commands are run, in this order
DOCS = ("README.md", "docs/usage.md", "config/README.md")


def readme_commands(text: str) -> list[list[str]]:
    """The commands of each ```bash block, as argument lists (continuations joined, comments off)."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    out = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        cmds = []
        for line in joined.splitlines():
            args = shlex.split(line, comments=True)
            if args:
                cmds.append(args)
        out.append(cmds)
    return out


def _copy_project(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    names = [n for n in files.decode().split("\0") if n]
    if not names:  # not a git checkout (e.g. an sdist): copy the tree
        shutil.copytree(
            ROOT, dest, ignore=shutil.ignore_patterns(".venv", "results", "resources", "logs", ".snakemake")
        )
        return dest
    for n in names:
        src = ROOT / n
        if src.is_file():
            (dest / n).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / n, follow_symlinks=False)
    return dest


def run_command(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run one README command as described in the module docstring; return what it printed."""
    tool = args[0]
    if tool == "export":
        for a in args[1:]:
            key, _, value = a.partition("=")
            env[key] = value
        return ""
    if tool == "source":
        assert (cwd / args[1]).is_file(), f"README sources {args[1]}, which does not exist"
        return ""
    if tool == "pip":
        import tomllib

        assert args[1] == "install" and len(args) == 3, f"unexpected pip command {shlex.join(args)!r}"
        target, _, extra = args[2].partition("[")
        extras = tomllib.loads((cwd / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert target == "." and (not extra or extra.rstrip("]") in extras), f"{args[2]}: no such install"
        return ""
    if tool == "bash":
        assert (cwd / args[1]).is_file(), f"README runs {args[1]}, which does not exist"
        subprocess.run(["bash", "-n", args[1]], cwd=cwd, check=True)
        return ""
    if tool == "cryosse":
        if args[1] == "query-emdb":
            from cryosse.cli import build_parser

            ns = build_parser().parse_args(args[1:])
            shutil.copy(cwd / "config" / "paper_test_entries.tsv", cwd / ns.output)
            return ""
        cmd = [sys.executable, "-m", "cryosse.cli", *args[1:]]
    elif tool == "snakemake":
        drop = {"--use-conda", "--conda-create-envs-only"}
        rest, skip = [], False
        for a in args[1:]:
            if skip:
                skip = False
                continue
            if a == "--report":
                skip = True
                continue
            if a not in drop:
                rest.append(a)
        cmd = [sys.executable, "-m", "snakemake", *rest, "-n"]
    else:
        raise AssertionError(f"README command {shlex.join(args)!r} is not covered by tests/test_readme.py")
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{shlex.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    out = r.stdout + r.stderr
    if tool == "snakemake" and "config/demo.yaml" in args:
        stray = sorted(set(re.findall(r"\b(?:results|resources|logs)/(?!demo\b)[\w./-]+", out)))
        assert not stray, f"{shlex.join(args)}: on the demo's config it plans {stray[:5]}"
    return out


def doc_commands(root: Path) -> list[list[str]]:
    """Every command of :data:`DOCS`, in order."""
    return [c for doc in DOCS for block in readme_commands((root / doc).read_text()) for c in block]


def test_readme_commands_are_parsed():
    flat = doc_commands(ROOT)
    readme = [c for b in readme_commands((ROOT / "README.md").read_text()) for c in b]
    assert ["bash", "tools/demo.sh"] in readme and ["bash", "tools/test.sh"] in readme
    assert ["pip", "install", "."] in readme
    assert ["snakemake", "--cores", "1", "--use-conda", "--conda-create-envs-only"] in flat
    assert not any("../shared" in a for c in flat for a in c), "the docs' commands must not need ../shared"


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    work = _copy_project(tmp_path / "project")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ran = []
    for args in doc_commands(work):
        run_command(args, work, env)
        ran.append(args[:2])
    assert ["cryosse", "predict"] in ran and ["snakemake", "--workflow-profile"] in ran
    assert (work / "pred_5u8s" / "chimerax.py").is_file() and (work / "pair_5u8s_A" / "record.json").is_file()


def test_citation_file_names_the_software_version_and_the_paper():
    import tomllib

    import yaml

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cff["cff-version"] == "1.2.0" and cff["version"] == version and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["doi"] == "10.1093/bioadv/vbae169" and paper["authors"][0]["family-names"] == "Mu"
    assert paper["doi"] in (ROOT / "README.md").read_text()
