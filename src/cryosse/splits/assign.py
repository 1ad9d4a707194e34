"""Step 2: split 0 and the cross-validation splits, as pure functions of the tables, and
``make_splits``, which reads the tables and writes the split files."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryosse.io import write_tsv
from cryosse.space import entry_groups
from cryosse.splits.common import CLUSTER_COLUMNS, SPLIT_COLUMNS, SplitParams, load_dataset, read_table
from cryosse.splits.paper import paper_case_status

log = logging.getLogger(__name__)


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
        t_alloc = _apportion(
            n_test, {b: len(m) for b, m in order.items()}, {b: len(m) for b, m in order.items()}
        )
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
        sizes = {
            b: sum(len(members[g]) for g in gs if role[members[g][0]] == "train") for b, gs in order.items()
        }
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
            "most %d members fill %d disjoint test sets only that far",
            t,
            test_size,
            n_small,
            max_cluster_size,
            n_cv,
        )
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
            log.warning(
                "cross-validation split %d: %d validation case(s), not split.cv_val_size %d (%d pairs)",
                k,
                got,
                val_size,
                n_pairs,
            )
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


def related_to(test: Iterable[str], cluster_of: Mapping[str, str]) -> list[str]:
    """The pairs, other than ``test``, in the sequence cluster of a test pair (clusters join
    chains at the identity rule, single linkage), sorted."""
    test = set(test)
    clusters = {cluster_of[p] for p in test if p in cluster_of}
    return sorted(p for p, c in cluster_of.items() if c in clusters and p not in test)


def _split_frame(role: Mapping[str, str], cluster_of: Mapping[str, str]) -> pd.DataFrame:
    ids = sorted(role)
    return pd.DataFrame(
        {"pair_id": ids, "role": [role[i] for i in ids], "cluster": [cluster_of[i] for i in ids]},
        columns=SPLIT_COLUMNS,
    )


def _read_clusters(
    clusters_tsv: str | os.PathLike, dataset: pd.DataFrame, dataset_tsv: str | os.PathLike
) -> pd.DataFrame:
    """clusters.tsv, checked against the dataset: pairs without a cluster (no sequence) are left
    out with a warning; a cluster table naming pairs the dataset lacks is out of date."""
    clusters = read_table(clusters_tsv)
    missing = [c for c in CLUSTER_COLUMNS if c not in clusters.columns]
    if missing:
        raise ValueError(f"{clusters_tsv}: lacks column(s) {', '.join(missing)}")
    clusters = clusters.sort_values("pair_id", kind="stable").reset_index(drop=True)
    known = set(clusters["pair_id"])
    left_out = sorted(set(dataset["pair_id"]) - known)
    if left_out:
        log.warning(
            "%d pair(s) of %s have no cluster (no sequence) and are left out: %s",
            len(left_out),
            dataset_tsv,
            ", ".join(left_out[:10]),
        )
    stale = sorted(known - set(dataset["pair_id"]))
    if stale:
        raise ValueError(
            f"{clusters_tsv}: pairs not in {dataset_tsv} ({', '.join(stale[:5])}); "
            "the clusters are out of date, rerun the cluster step"
        )
    return clusters


def _paper_status(
    paper_cases_tsv,
    dataset: pd.DataFrame,
    known: set,
    entries_tsv,
    dataset_rejected_tsv,
    acquire_rejected_tsv,
) -> pd.DataFrame:
    """Each paper case: used or unavailable with the reason (a used pair without a sequence is unavailable)."""
    if paper_cases_tsv is None:
        raise ValueError("split.test = paper needs the paper's case table (config/paper_test_cases.tsv)")
    cases = read_table(paper_cases_tsv)
    opt = {
        k: (read_table(v) if v is not None and Path(v).is_file() else None)
        for k, v in (
            ("entries", entries_tsv),
            ("drej", dataset_rejected_tsv),
            ("arej", acquire_rejected_tsv),
        )
    }
    status = paper_case_status(cases, dataset, opt["entries"], opt["drej"], opt["arej"])
    no_seq = (status["status"] == "used") & ~status["pair_id"].isin(known)
    status.loc[no_seq, "reason"] = "the pair has no central-chain sequence (left out of the splits)"
    status.loc[no_seq, ["status", "pair_id"]] = ["unavailable", ""]
    return status


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
    clusters = _read_clusters(clusters_tsv, dataset, dataset_tsv)
    known = set(clusters["pair_id"])
    pairs = dataset[dataset["pair_id"].isin(known)]
    cluster_of = dict(zip(clusters["pair_id"], clusters["cluster"], strict=True))

    status = None
    if paper_out is not None or params.test == "paper":
        status = _paper_status(
            paper_cases_tsv, dataset, known, entries_tsv, dataset_rejected_tsv, acquire_rejected_tsv
        )
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
    main_pairs = pairs
    if fixed is not None:  # the paper's test set: its relatives neither train nor validate
        related = related_to(fixed, cluster_of)
        main_pairs = pairs[~pairs["pair_id"].isin(related)]
        log.info(
            "split 0: %d pair(s) in the sequence cluster of a test case left out of training and validation",
            len(related),
        )
    roles = [main_split(main_pairs, params.fractions, params.seed, fixed, by_entry)]
    grouped = clusters.assign(cluster=[group_of[p] for p in clusters["pair_id"]])
    roles += cv_splits(
        grouped, params.n_cv, params.cv_max_cluster_size, params.cv_test_size, params.cv_val_size, params.seed
    )
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
        log.info(
            "split %d: %d train / %d val / %d test", k, n.get("train", 0), n.get("val", 0), n.get("test", 0)
        )
    if status is not None and paper_out is not None:
        status["role"] = [roles[0].get(pid, "") if pid else "" for pid in status["pair_id"]]
        write_tsv(paper_out, status)
        log.info(
            "paper cases: %d used, %d unavailable",
            (status["status"] == "used").sum(),
            (status["status"] != "used").sum(),
        )
    return frames
