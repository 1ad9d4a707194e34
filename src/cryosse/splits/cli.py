"""``cryosse cluster``, ``cryosse make-splits`` and ``cryosse audit``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cryosse import paths
from cryosse.argtypes import AT_LEAST_ONE, COUNT, FRACTION, POSITIVE, number
from cryosse.splits.assign import make_splits
from cryosse.splits.audit import audit_splits
from cryosse.splits.cluster import cluster_dataset
from cryosse.splits.common import SearchParams, SplitParams


def _search_args(p: argparse.ArgumentParser) -> None:
    d = SearchParams()
    p.add_argument(
        "--identity",
        type=number(0, 1, lo_open=True),
        default=d.identity,
        help="identity threshold (default %(default)s)",
    )
    p.add_argument("--coverage", type=FRACTION, default=d.coverage, help="MMseqs2 -c (default %(default)s)")
    p.add_argument(
        "--cov-mode",
        type=number(0, 5, integer=True),
        default=d.cov_mode,
        help="MMseqs2 --cov-mode (default %(default)s)",
    )
    p.add_argument(
        "--sensitivity", type=number(1, 7.5), default=d.sensitivity, help="MMseqs2 -s (default %(default)s)"
    )
    p.add_argument(
        "--kmer", type=number(0, 7, integer=True), default=d.kmer, help="MMseqs2 -k (default %(default)s)"
    )
    p.add_argument("--evalue", type=POSITIVE, default=d.evalue, help="MMseqs2 -e (default %(default)s)")
    p.add_argument("--threads", type=AT_LEAST_ONE, default=1, help="MMseqs2 threads (default 1)")


def _search_params(a: argparse.Namespace) -> SearchParams:
    return SearchParams(
        identity=a.identity,
        coverage=a.coverage,
        cov_mode=a.cov_mode,
        sensitivity=a.sensitivity,
        kmer=a.kmer,
        evalue=a.evalue,
        threads=a.threads,
    )


def _cmd_cluster(a: argparse.Namespace) -> int:
    cluster_dataset(a.dataset, a.fasta, a.out, _search_params(a))
    return 0


def _cmd_make_splits(a: argparse.Namespace) -> int:
    params = SplitParams(
        seed=a.seed,
        test=a.test,
        fractions=tuple(a.fractions),
        n_cv=a.n_cv,
        cv_max_cluster_size=a.cv_max_cluster_size,
        cv_test_size=a.cv_test_size,
        cv_val_size=a.cv_val_size,
        min_train_pairs=a.min_train_pairs,
        main_split_by=a.main_split_by,
    )
    out = Path(a.out_dir)
    paths = [out / f"split_{k}.tsv" for k in range(params.n_cv + 1)]
    paper_out = out / "paper_cases.tsv" if (a.test == "paper" or a.paper_cases) else None
    make_splits(
        a.dataset,
        a.clusters,
        paths,
        params,
        paper_out,
        a.paper_cases or (Path("config/paper_test_cases.tsv") if a.test == "paper" else None),
        a.entries,
        a.dataset_rejected,
        a.acquire_rejected,
    )
    return 0


def _cmd_audit(a: argparse.Namespace) -> int:
    enforce = (
        [int(x) for x in a.enforce.split(",") if x.strip()]
        if a.enforce
        else [k for k in range(1, len(a.splits))]
    )
    audit = audit_splits(
        a.fasta,
        a.splits,
        a.out_tsv,
        a.out_md,
        _search_params(a),
        enforce,
        dataset_tsv=a.dataset,
        max_box_overlap=a.max_box_overlap,
    )
    print(f"audit passed: {len(audit)} validation/test pairs checked; report {a.out_md}")
    return 0


def add_cli(subparsers) -> None:
    _add_cluster(subparsers)
    _add_make_splits(subparsers)
    _add_audit(subparsers)


def _add_cluster(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cluster",
        help="cluster central-chain sequences with MMseqs2 at 35%% identity",
        description="dataset.tsv -> sequences.fasta + clusters.tsv (single linkage "
        "over MMseqs2 hits at the identity/coverage thresholds)",
    )
    p.add_argument("--dataset", required=True, help="dataset.tsv")
    p.add_argument("--fasta", required=True, help="output FASTA of the central-chain sequences")
    p.add_argument("-o", "--out", required=True, help="output clusters.tsv")
    _search_args(p)
    p.set_defaults(func=_cmd_cluster)
    paths.declare(p, inputs=["dataset"], outputs=["fasta", "out"])


def _add_make_splits(subparsers: Any) -> None:
    d = SplitParams()
    p = subparsers.add_parser(
        "make-splits",
        help="the main split and the cross-validation splits",
        description="Writes OUT_DIR/split_0.tsv .. split_N.tsv (and paper_cases.tsv)",
    )
    p.add_argument("--dataset", required=True, help="results/dataset/dataset.tsv")
    p.add_argument("--clusters", required=True, help="clusters.tsv written by `cryosse cluster`")
    p.add_argument(
        "-o",
        "--out-dir",
        required=True,
        help="folder for split_0.tsv ... split_N.tsv (candidates: the audit publishes them)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the random draws (default %(default)s)")
    p.add_argument(
        "--test",
        choices=["random", "paper"],
        default=d.test,
        help="main split's test set: random (stratified by quality bin) or the paper's 62 cases",
    )
    p.add_argument(
        "--fractions",
        type=POSITIVE,
        nargs=3,
        default=list(d.fractions),
        metavar=("TRAIN", "VAL", "TEST"),
        help="shares of the main split (default: the paper's 1246 47 62)",
    )
    p.add_argument("--n-cv", type=COUNT, default=d.n_cv, help="cross-validation splits (default %(default)s)")
    p.add_argument(
        "--cv-max-cluster-size",
        type=AT_LEAST_ONE,
        default=d.cv_max_cluster_size,
        help="CV test and validation cases come from clusters of at most this many members",
    )
    p.add_argument("--cv-test-size", type=AT_LEAST_ONE, default=d.cv_test_size, help="cases per CV test set")
    p.add_argument(
        "--cv-val-size", type=AT_LEAST_ONE, default=d.cv_val_size, help="cases per CV validation set"
    )
    p.add_argument(
        "--min-train-pairs",
        type=AT_LEAST_ONE,
        default=d.min_train_pairs,
        help="stop when a split would train on fewer pairs",
    )
    p.add_argument(
        "--main-split-by",
        choices=["entry", "pair"],
        default=d.main_split_by,
        help="entry: the main split keeps each map's pairs on one side; pair: the paper's pair-level draw",
    )
    p.add_argument("--paper-cases", help="the paper's case table (config/paper_test_cases.tsv)")
    p.add_argument("--entries", help="the entry table, to explain missing paper cases")
    p.add_argument("--dataset-rejected", help="results/dataset/rejected.tsv")
    p.add_argument("--acquire-rejected", help="results/acquire/rejected.tsv")
    p.set_defaults(func=_cmd_make_splits)
    paths.declare(
        p,
        inputs=["dataset", "clusters", "paper_cases", "entries", "dataset_rejected", "acquire_rejected"],
        out_dirs=["out_dir"],
    )


def _add_audit(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit",
        help="leakage audit of split files (sequence identity and box overlap)",
        description="Searches every val/test sequence against the training ones and, with "
        "--dataset, measures how much of each val/test centre box lies inside a training box "
        "of the same map; exits 1 when an enforced split leaks",
    )
    p.add_argument("--fasta", required=True, help="sequences.fasta")
    p.add_argument("--splits", nargs="+", required=True, help="split_0.tsv split_1.tsv ... in order")
    p.add_argument("--out-tsv", required=True, help="the audit table to write (audit.tsv)")
    p.add_argument("--out-md", required=True, help="the audit report to write (audit.md)")
    p.add_argument("--enforce", default="", help="comma-separated split numbers (default: all but 0)")
    p.add_argument("--dataset", default=None, help="dataset.tsv: also check the boxes of pairs of one map")
    p.add_argument(
        "--max-box-overlap",
        type=FRACTION,
        default=0.0,
        help="largest share of a val/test centre box allowed inside a training box of its map",
    )
    _search_args(p)
    p.set_defaults(func=_cmd_audit)
    paths.declare(p, inputs=["fasta", "splits", "dataset"], outputs=["out_tsv", "out_md"])
