"""Step 3: the leakage audit (sequence identity and box overlap) and its report."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from cryosse.io import atomic_path, atomic_write, write_tsv
from cryosse.paper_cases import describe_test_set, test_set
from cryosse.space import box_overlaps, read_boxes
from cryosse.splits.common import (
    AUDIT_COLUMNS,
    HIT_COLUMNS,
    SearchParams,
    load_dataset,
    read_fasta,
    read_split,
)
from cryosse.splits.mmseqs import find_mmseqs, mmseqs_search, mmseqs_version, similar

log = logging.getLogger(__name__)


def audit_split(
    k: int, split: pd.DataFrame, hits: pd.DataFrame, params: SearchParams, enforced: bool
) -> pd.DataFrame:
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
            best[rec["query"]] = (
                float(rec["identity"]),
                rec["target"],
                float(rec["qcov"]),
                float(rec["tcov"]),
            )
    rows = []
    for rec in held.to_dict("records"):
        ident, near, qc, tc = best.get(rec["pair_id"], (0.0, "", 0.0, 0.0))
        rows.append(
            {
                "split": k,
                "role": rec["role"],
                "pair_id": rec["pair_id"],
                "cluster": rec["cluster"],
                "max_identity": round(ident, 3),
                "nearest_train": near,
                "qcov": round(qc, 3),
                "tcov": round(tc, 3),
                "box_overlap": 0.0,
                "overlapping_train": "",
                "leak": bool(near) and ident >= params.identity,
                "enforced": enforced,
            }
        )
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
    paper_cases_tsv: str | os.PathLike | None = None,
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
            raise ValueError(
                f"{candidates[k]}: pair(s) without a sequence in {fasta}: {', '.join(unknown[:5])}"
            )
    # One search: every pair held out in any split against every sequence; each split then
    # keeps the hits on its own training chains (max-seqs covers all targets, so no hit is lost).
    held = sorted({p for df in splits.values() for p in df.loc[df["role"] != "train", "pair_id"]})
    hits = similar(mmseqs_search({p: records[p] for p in held}, records, params, binary), params)
    if hits.empty:
        hits = pd.DataFrame(columns=HIT_COLUMNS)
    frames = [audit_split(k, df, hits, params, k in enforce) for k, df in splits.items()]
    if dataset_tsv is not None:  # space: a held-out centre box inside a training box of its map
        _add_box_overlaps(frames, splits, dataset_tsv, set(records), max_box_overlap)
    audit = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=AUDIT_COLUMNS)
    cv = [k for k in splits if k > 0]
    problems = structural_problems(splits, cv)
    for k in splits:
        if k not in enforce:
            problems[k] = []  # reported through the figures, not enforced
    write_tsv(audit_tsv, audit.assign(leak=audit["leak"].map(str), enforced=audit["enforced"].map(str)))
    md = _audit_markdown(
        audit,
        splits,
        params,
        enforce,
        problems,
        mmseqs_version(binary),
        main_test,
        describe_test_set(
            test_set(main_test, paper_cases_tsv), len(set(records) - set(splits[0]["pair_id"]))
        ),
        max_box_overlap if dataset_tsv is not None else None,
    )
    with atomic_write(audit_md) as fh:
        fh.write(md)
    failures = _failures(audit, splits, enforce, problems, params, max_box_overlap)
    for k in splits:
        a = audit[audit["split"] == k]
        log.info(
            "split %d: %d val/test pairs, max identity to training %.3f, %d >= %.2f%s",
            k,
            len(a),
            a["max_identity"].max() if len(a) else 0.0,
            int(a["leak"].sum()),
            params.identity,
            " (enforced)" if k in enforce else " (reported only)",
        )
    if failures:
        raise RuntimeError("leakage audit failed (see " + str(audit_md) + "): " + " | ".join(failures))
    if publish is not None:
        for src, dst in zip(candidates, publish, strict=True):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    return audit


def _add_box_overlaps(
    frames: list[pd.DataFrame],
    splits: Mapping[int, pd.DataFrame],
    dataset_tsv,
    pair_ids: set,
    max_box_overlap: float,
) -> None:
    """Each held-out pair's largest share of its centre box inside a training pair's box of its
    map, added to its split's audit frame (more than ``max_box_overlap`` is a leak)."""
    ds = load_dataset(dataset_tsv)
    boxes = read_boxes(ds[ds["pair_id"].isin(pair_ids)], Path(dataset_tsv).parent)
    for k, frame in zip(splits, frames, strict=True):
        space = box_overlaps(splits[k], boxes).set_index("pair_id")
        frame["box_overlap"] = frame["pair_id"].map(space["box_overlap"]).fillna(0.0)
        frame["overlapping_train"] = frame["pair_id"].map(space["overlapping_train"]).fillna("")
        frame["leak"] = frame["leak"] | (frame["box_overlap"] > max_box_overlap)


def _failures(
    audit: pd.DataFrame,
    splits: Mapping[int, pd.DataFrame],
    enforce: set[int],
    problems: Mapping[int, list[str]],
    params: SearchParams,
    max_box_overlap: float,
) -> list[str]:
    """What fails the enforced splits: identity leaks, box overlaps, structural problems."""
    failures: list[str] = []
    for k in sorted(enforce & set(splits)):
        leaks = audit[(audit["split"] == k) & audit["leak"]]
        seq = leaks[leaks["max_identity"] >= params.identity]
        if len(seq):
            ex = "; ".join(
                f"{r.pair_id} ({r.role}) {r.max_identity:.2f} to {r.nearest_train}"
                for r in seq.head(5).itertuples()
            )
            failures.append(
                f"split {k}: {len(seq)} pair(s) >= {params.identity:.2f} identity to a training chain: {ex}"
            )
        space = leaks[leaks["box_overlap"].astype(float) > max_box_overlap]
        if len(space):
            ex = "; ".join(
                f"{r.pair_id} ({r.role}) {100 * float(r.box_overlap):.0f}% inside {r.overlapping_train}"
                for r in space.head(5).itertuples()
            )
            failures.append(
                f"split {k}: {len(space)} pair(s) whose centre box lies inside the box of a training "
                f"pair of the same map: {ex}"
            )
        failures += [f"split {k}: {msg}" for msg in problems.get(k, [])]
    return failures


def _audit_markdown(audit, splits, params, enforce, problems, version, main_test, main, max_box=None) -> str:
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
        (
            "Space: for every validation and test pair, the largest share of its centre box inside the box "
            "of one training pair of the same map (a training box carries the density and labels of every "
            f"chain in it); more than {100 * max_box:.0f}% is a leak."
            if max_box is not None
            else "Space: not checked (no dataset table given)."
        ),
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
        lines.append(
            f"| {k} | {kind} | {n.get('train', 0)} | {n.get('val', 0)} | {n.get('test', 0)} | "
            f"{mx('val')} | {mx('test')} | {box} | {leaks} | {'yes' if k in enforce else 'no'} | {status} |"
        )
    lines += [
        "",
        (
            f"Split 0 ({main}): its test set is kept apart from training by construction; "
            if main_test == "paper"
            else f"Split 0 ({main}) does not require sequence independence, as in the paper: "
        )
        + "its figures are reported, and enforced only when `split.enforce_main` is true. "
        "An identity of 0 means no hit that meets the coverage rule.",
        "",
    ]
    for k in splits:
        a = audit[(audit["split"] == k) & audit["leak"]].sort_values("max_identity", ascending=False)
        if len(a) or problems.get(k):
            lines += [f"## Split {k}", ""]
            lines += [f"- {msg}" for msg in problems.get(k, [])]
            if len(a):
                lines += [
                    "| pair | role | identity | nearest training chain | qcov | tcov | box overlap | training box |",
                    "|---|---|---|---|---|---|---|---|",
                ]
                for r in a.head(50).itertuples():
                    lines.append(
                        f"| {r.pair_id} | {r.role} | {r.max_identity:.3f} | {r.nearest_train} | "
                        f"{r.qcov:.2f} | {r.tcov:.2f} | {100 * float(r.box_overlap):.0f}% | {r.overlapping_train} |"
                    )
                if len(a) > 50:
                    lines.append(f"\n... and {len(a) - 50} more (audit.tsv lists them all)")
            lines.append("")
    return "\n".join(lines) + "\n"
