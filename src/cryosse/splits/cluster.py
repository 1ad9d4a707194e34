"""Step 1: sequence clusters, the connected components of the MMseqs2 hits (single linkage)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

import pandas as pd

from cryosse.io import write_tsv
from cryosse.splits.common import CLUSTER_COLUMNS, SearchParams, load_dataset, write_fasta
from cryosse.splits.mmseqs import find_mmseqs, mmseqs_search, mmseqs_version, similar

log = logging.getLogger(__name__)


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
    rep = {label: min(m, key=lambda x: (-len(records[x]), x)) for label, m in members.items()}
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
    log.info(
        "MMseqs2 %s (%s): %d sequences, identity >= %.2f, coverage %.2f (cov-mode %d)",
        mmseqs_version(binary),
        binary,
        len(records),
        params.identity,
        params.coverage,
        params.cov_mode,
    )
    clusters = cluster_sequences(records, params, binary)
    write_fasta(fasta_out, records)
    write_tsv(clusters_out, clusters)
    sizes = clusters.drop_duplicates("cluster")["cluster_size"]
    log.info("%d clusters; largest %d; %d singletons", len(sizes), int(sizes.max()), int((sizes == 1).sum()))
    return clusters
