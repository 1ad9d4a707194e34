"""The paper's 62 test cases as a run's test set, in a few words: how many were found, and which
entries of a table hold one. Read by the split audit, the dataset card and the workflow's
start-up check; light, so the card does not load the split stage."""

from __future__ import annotations

import os
from typing import Any

from cryosse.io import read_tsv


def test_set(kind: str, paper_cases_tsv: str | os.PathLike | None) -> dict[str, Any]:
    """How the main split's test set was made (``split.test``); with the paper's cases, how
    many of them were found and used (from ``paper_cases.tsv``)."""
    out: dict[str, Any] = {"kind": kind}
    if kind == "paper" and paper_cases_tsv is not None:
        cases = read_tsv(paper_cases_tsv, comment="#")
        out.update(paper_cases=len(cases), found=int((cases["status"] == "used").sum()))
    return out


def describe_test_set(t: dict[str, Any], left_out: int | None = None) -> str:
    """:func:`test_set`'s answer in words (``left_out``: the pairs related to a test case)."""
    if t.get("kind") != "paper":
        return "random, stratified by quality bin, like the paper's main split"
    found = f": {t['found']} of the {t['paper_cases']} found and used" if "found" in t else ""
    related = "every" if left_out is None else f"{left_out}"
    return (
        f"the paper's own test cases{found} (`paper_cases.tsv` gives the reason for each other); "
        f"{related} pair(s) in the sequence cluster of a test case left out of training and validation; "
        "validation drawn by quality bin from the rest"
    )


def paper_entries_in(entry_ids: list[str], paper_cases_tsv: str | os.PathLike) -> list[str]:
    """The entries of ``entry_ids`` that hold one of the paper's test cases, in table order."""
    cases = set(read_tsv(paper_cases_tsv, comment="#")["emdb_id"].str.upper())
    return [e for e in entry_ids if e.upper() in cases]
