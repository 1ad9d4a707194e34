"""Conda envs: every rule names one, each parses and is exactly pinned, and each covers what
its rule's script imports (read with ast, through the cryosse modules it pulls in).

Conda channels cannot be reached here, so no env is solved or created: these checks are
static. The envs' Python packages carry the versions of requirements.txt, which is what the
test suite runs with; that agreement is checked too.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Loads the workflow with the demo config, as `snakemake -n` would, and lists its rules.
_LIST_RULES = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
root = Path(sys.argv[1])
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[root / "config" / "demo.yaml"]),
        snakefile=root / "Snakefile",
        workdir=root,
    )._workflow
    rules = []
    for r in wf.rules:
        rules.append({
            "name": r.name,
            "conda": r.conda_env if isinstance(r.conda_env, str) else None,
            "script": r.script,
            "basedir": str(r.basedir),
            "norun": bool(r.norun),
            "shell": r.shellcmd,
            "resources": sorted(k for k in r.resources if not k.startswith("_")),
        })
    print("RULES-JSON " + json.dumps(rules))
"""

# import name or executable -> conda package names that provide it
CONDA_NAMES = {
    "torch": {"pytorch", "pytorch-gpu", "pytorch-cpu"},
    "yaml": {"pyyaml"},
    "matplotlib": {"matplotlib-base"},
    "mkdssp": {"dssp"},
    "mmseqs": {"mmseqs2"},
}
TOOLS = {"mkdssp", "mmseqs"}
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)\s*==?\s*([0-9][A-Za-z0-9_.+\-]*)$")


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    res = subprocess.run(
        [sys.executable, "-c", _LIST_RULES, str(ROOT)], capture_output=True, text=True, timeout=300
    )
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RULES-JSON ")), None)
    assert line is not None, f"could not load the workflow:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return json.loads(line[len("RULES-JSON ") :])


def env_files() -> list[Path]:
    return sorted((ROOT / "envs").glob("*.yaml"))


def parse_env(path: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(conda pins, pip pins, channels) of one env file; raises on anything not exactly pinned."""
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: not a mapping"
    conda, pip = {}, {}
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path}: unexpected {dep}"
            for item in dep["pip"]:
                m = re.match(r"^([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9_.+\-]*)$", item.strip())
                assert m, f"{path}: pip requirement {item!r} is not pinned exactly (name==version)"
                pip[m.group(1).lower()] = m.group(2)
            continue
        m = PIN.match(str(dep).strip())
        assert m, f"{path}: dependency {dep!r} is not pinned exactly (name=version)"
        conda[m.group(1).lower()] = m.group(2)
    return conda, pip, list(doc.get("channels") or [])


def module_file(name: str) -> Path | None:
    """The source file of a cryosse module (``cryosse.dataset.pairs`` -> src/...)."""
    base = SRC.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def direct_needs(path: Path) -> tuple[set[str], set[str]]:
    """(top-level third-party imports + tools, cryosse modules) used by one file."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = None
    if path.is_relative_to(SRC):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        pkg = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        if parts[-1] == "__init__":
            pkg = parts[:-1]
    third, internal = set(), set()

    def add(name: str) -> None:
        top = name.split(".")[0]
        if top == "cryosse":
            internal.add(name)
        elif top and top not in sys.stdlib_module_names:
            third.add(top)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level and pkg is not None:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                internal.add(mod)
                for a in node.names:
                    internal.add(f"{mod}.{a.name}")
            elif node.module:
                add(node.module)
                if node.module.split(".")[0] == "cryosse":
                    for a in node.names:
                        internal.add(f"{node.module}.{a.name}")
        elif isinstance(node, ast.Call):
            fn = node.func
            fname = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if fname in {"find_spec", "import_module"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(arg.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in TOOLS:
            third.add(node.value)
    return third, internal


def needs_of_script(script: Path) -> dict[str, list[str]]:
    """Third-party names a rule script needs, each with the file that imports it."""
    seen: set[Path] = set()
    out: dict[str, list[str]] = {}
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        third, internal = direct_needs(path)
        for t in third:
            out.setdefault(t, []).append(str(path.relative_to(ROOT)))
        for mod in internal:
            f = module_file(mod)
            if f is not None:
                todo.append(f)
            # importing cryosse.a.b runs cryosse/__init__ and cryosse/a/__init__ too
            parts = mod.split(".")
            for i in range(1, len(parts)):
                init = SRC.joinpath(*parts[:i], "__init__.py")
                if init.is_file():
                    todo.append(init)
    return out


def provided_by(env: Path) -> set[str]:
    """Import names and tools an env provides (through conda or pip packages)."""
    conda, pip, _ = parse_env(env)
    names = set(conda) | set(pip)
    dists = md.packages_distributions()  # import name -> distributions, in this venv
    provided = set()
    for imp, dist_names in dists.items():
        wanted = {d.lower() for d in dist_names} | CONDA_NAMES.get(imp, set())
        if names & wanted:
            provided.add(imp)
    for tool in TOOLS:
        if names & CONDA_NAMES[tool]:
            provided.add(tool)
    return provided


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


#: conda package -> the PyPI name of the same package, where they differ
PIP_NAME = {
    "pytorch": "torch",
    "pytorch-gpu": "torch",
    "pytorch-cpu": "torch",
    "matplotlib-base": "matplotlib",
}
#: in an env for what they are, not for an import: the interpreter, pip, and the CUDA constraint
INFRASTRUCTURE = {"python", "pip", "cuda-version"}


def pulled_in(pip_pins: dict[str, str]) -> set[str]:
    """PyPI names that the env's pip packages require (their non-optional dependencies)."""
    out = set()
    for name in pip_pins:
        for req in md.requires(name) or []:
            if "extra ==" in req:
                continue
            out.add(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower())
    return out


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("env", env_files(), ids=lambda p: p.name)
def test_env_parses_and_is_pinned(env: Path) -> None:
    conda, pip, channels = parse_env(env)
    assert "conda-forge" in channels and "nodefaults" in channels, f"{env.name}: channels {channels}"
    assert "defaults" not in channels, f"{env.name}: the defaults channel is not allowed"
    assert set(channels) <= {"conda-forge", "bioconda", "nodefaults"}, f"{env.name}: channels {channels}"
    assert conda.get("python", "").startswith("3.11"), f"{env.name}: python must be pinned to 3.11.x"
    assert "cryosse" not in conda and "cryosse" not in pip, f"{env.name}: cryosse comes from the checkout"


@pytest.mark.parametrize("env", env_files(), ids=lambda p: p.name)
def test_env_versions_match_requirements(env: Path) -> None:
    """The envs pin what the test suite ran with (requirements.txt)."""
    conda, pip, _ = parse_env(env)
    req = requirement_pins()
    alias = PIP_NAME
    for name, version in {**conda, **pip}.items():
        pip_name = alias.get(name, name)
        if pip_name in req:
            assert version == req[pip_name].split("+")[0], (
                f"{env.name}: {name}={version} but requirements.txt has {pip_name}=={req[pip_name]}"
            )


def test_every_rule_names_an_existing_env(rules: list[dict]) -> None:
    runnable = [r for r in rules if not r["norun"]]
    assert runnable, "no runnable rules found"
    missing = [r["name"] for r in runnable if not r["conda"]]
    assert not missing, f"rules without conda: {missing}"
    for r in runnable:
        path = (Path(r["basedir"]) / r["conda"]).resolve()
        assert path.is_file(), f"rule {r['name']}: conda env {r['conda']} not found ({path})"
        assert path.parent == ROOT / "envs", f"rule {r['name']}: env {path} is not under envs/"


def test_rule_envs_cover_their_imports(rules: list[dict]) -> None:
    problems = []
    checked = 0
    for r in rules:
        if r["norun"] or not r["script"] or not r["conda"]:
            continue
        script = (Path(r["basedir"]) / r["script"]).resolve()
        env = (Path(r["basedir"]) / r["conda"]).resolve()
        assert script.is_file(), f"rule {r['name']}: script {script} not found"
        provided = provided_by(env)
        for name, where in sorted(needs_of_script(script).items()):
            if name not in provided:
                problems.append(f"rule {r['name']} ({env.name}): {name} (used in {sorted(set(where))[0]})")
        checked += 1
    assert checked, "no rule with a script was found"
    assert not problems, "envs miss packages their rules import:\n" + "\n".join(problems)


def test_gpu_rules_get_a_cuda_torch(rules: list[dict]) -> None:
    """Rules that ask for a GPU (or that run torch) use an env with a CUDA build of torch."""
    for r in rules:
        if r["norun"] or not r["conda"]:
            continue
        env = (Path(r["basedir"]) / r["conda"]).resolve()
        conda, _, _ = parse_env(env)
        if "gpu" in r["resources"]:
            assert "pytorch-gpu" in conda, f"rule {r['name']} asks for a GPU; {env.name} has no pytorch-gpu"
            assert "cuda-version" in conda, f"{env.name}: pin cuda-version with pytorch-gpu"


def test_import_scan_sees_what_it_should(tmp_path: Path) -> None:
    """The scanner itself: plain, from-, relative and lazy imports, tools; stdlib ignored."""
    f = tmp_path / "m.py"
    f.write_text(
        "import os, json\nimport numpy as np\nfrom scipy import ndimage\n"
        "def f():\n    import importlib.util\n    importlib.util.find_spec('pydssp')\n"
        "    return ['mkdssp', '--version']\n"
    )
    third, internal = direct_needs(f)
    assert third == {"numpy", "scipy", "pydssp", "mkdssp"}
    assert not internal
    # a real rule script reaches the package's third-party imports through cryosse modules
    needs = needs_of_script(ROOT / "src" / "cryosse" / "model.py")
    assert "torch" in needs


def test_missing_package_is_reported(tmp_path: Path) -> None:
    env = tmp_path / "x.yaml"
    env.write_text("channels: [conda-forge, nodefaults]\ndependencies:\n  - python=3.11.7\n  - numpy=2.4.6\n")
    assert "numpy" in provided_by(env)
    assert "torch" not in provided_by(env)
    env.write_text("channels: [conda-forge, nodefaults]\ndependencies:\n  - python=3.11.7\n  - numpy\n")
    with pytest.raises(AssertionError, match="not pinned"):
        parse_env(env)


def test_env_holds_nothing_unused(rules: list[dict]) -> None:
    """Every package of an env is imported or run by one of its rules, or needed by a pip package there."""
    needs: dict[str, set[str]] = {}
    for r in rules:
        if r["norun"] or not r["conda"]:
            continue
        env = (Path(r["basedir"]) / r["conda"]).resolve().name
        got = needs.setdefault(env, set())
        if r["script"]:
            got |= set(needs_of_script((Path(r["basedir"]) / r["script"]).resolve()))
        got |= {t for t in TOOLS if t in (r["shell"] or "")}
    dists = md.packages_distributions()
    for env in env_files():
        conda, pip, _ = parse_env(env)
        pulled = pulled_in(pip)
        unused = []
        for pkg in conda:
            imports = {imp for imp, dl in dists.items() if pkg in {d.lower() for d in dl}}
            imports |= {imp for imp, names in CONDA_NAMES.items() if pkg in names}
            if (
                pkg in INFRASTRUCTURE
                or imports & needs.get(env.name, set())
                or PIP_NAME.get(pkg, pkg) in pulled
            ):
                continue
            unused.append(pkg)
        assert not unused, (
            f"{env.name}: {unused} not imported or run by its rules {sorted(needs.get(env.name, []))}"
        )
