"""What every step of the splits shares: column names, parameters, the tables and FASTA files."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cryosse.io import atomic_write, read_tsv

ROLES = ("train", "val", "test")
SPLIT_COLUMNS = ["pair_id", "role", "cluster"]
CLUSTER_COLUMNS = ["pair_id", "cluster", "cluster_size"]
HIT_COLUMNS = ["query", "target", "identity", "alnlen", "qlen", "tlen", "qcov", "tcov", "evalue"]
AUDIT_COLUMNS = [
    "split",
    "role",
    "pair_id",
    "cluster",
    "max_identity",
    "nearest_train",
    "qcov",
    "tcov",
    "box_overlap",
    "overlapping_train",
    "leak",
    "enforced",
]
PAPER_COLUMNS = [
    "case_id",
    "emdb_id",
    "pdb_id",
    "chain",
    "resolution",
    "status",
    "pair_id",
    "role",
    "reason",
]
_AA = set("ACDEFGHIKLMNPQRSTVWYXBZJUO")


#: the ``split:`` keys each step reads (its Snakemake params: editing another key reruns nothing of it)
SEARCH_KEYS = ("identity", "coverage", "cov_mode", "sensitivity", "kmer", "evalue")
SPLIT_KEYS = (
    "test",
    "fractions",
    "n_cv",
    "cv_max_cluster_size",
    "cv_test_size",
    "cv_val_size",
    "main_split_by",
    "min_train_pairs",
)
AUDIT_KEYS = (*SEARCH_KEYS, "test", "max_box_overlap")


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
        return cls(**{k: cfg[k] for k in SEARCH_KEYS if k in cfg}, threads=int(threads))


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
        if (
            self.n_cv < 0
            or self.cv_max_cluster_size < 1
            or self.cv_test_size < 1
            or self.cv_val_size < 1
            or self.min_train_pairs < 1
        ):
            raise ValueError(
                "split: n_cv >= 0, cv_max_cluster_size, cv_test_size, cv_val_size and min_train_pairs >= 1"
            )

    @classmethod
    def from_config(cls, cfg: Mapping, seed: int) -> SplitParams:
        kw = {k: cfg[k] for k in SPLIT_KEYS if k in cfg and k != "fractions"}
        if "fractions" in cfg:
            kw["fractions"] = tuple(float(x) for x in cfg["fractions"])
        return cls(seed=int(seed), **kw)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A TSV with every cell as text ('NA' stays 'NA': it is a valid chain id); '#' lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such table")
    with open(path) as fh:
        lines = [ln for ln in fh if not ln.startswith("#") and ln.strip()]
    if not lines:
        return pd.DataFrame()
    return read_tsv(io.StringIO("".join(lines)), text=True, na_filter=False)


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


def read_split(path: str | os.PathLike) -> pd.DataFrame:
    df = read_table(path)
    missing = [c for c in SPLIT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: split file lacks column(s) {', '.join(missing)}")
    bad = sorted(set(df["role"]) - set(ROLES))
    if bad:
        raise ValueError(f"{path}: unknown role(s) {', '.join(bad)}")
    return df
