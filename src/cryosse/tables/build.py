"""Every table of a run at once (``build_tables``, the rule ``tables``), with the external tools' rows."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from cryosse.io import read_tsv
from cryosse.render import write_table
from cryosse.statistics import loss_order, read_eval_results
from cryosse.tables.core import (
    best_loss,
    breakdown,
    stats_table,
    table1,
    table2,
    tableS1,
)
from cryosse.tables.paper import fidelity, paper_unavailable, read_paper_cases, table2_paper

CAPTIONS = {
    "table1": (
        "Table 1. Weighted-average voxel F1 of the test set per loss function",
        "Best γ from validation; F1 weighted by each case's true voxels of the class (NA cases weigh 0).",
    ),
    "table2": (
        "Table 2. F1 per test case",
        "Counts: CA atoms in the centre box (helix/sheet/other); voxel F1 (%) per loss; residue F1 by majority "
        "vote of the voxels within the residue radius of each CA. NA: no true voxel or residue of the class.",
    ),
    "tableS1": (
        "Table S1. Weighted voxel F1 per split",
        "Split 0 is the main split, 1.. the cross-validation splits; mean ± sd over the splits.",
    ),
    "stats": (
        "Confidence intervals and paired tests",
        "Percentile bootstrap over test cases; Wilcoxon signed-rank test of each loss against CE over the "
        "cases where both are defined (unweighted).",
    ),
    "breakdown": (
        "F1 by resolution band and quality bin",
        "Weighted voxel F1 of the main split's test cases.",
    ),
    "table2_paper": (
        "Table 2 beside the paper's",
        "Our figures / the paper's, for the paper's test cases we built; "
        "the bottom row weights each side by its own counts over the same cases.",
    ),
    "fidelity": (
        "Fidelity of the centre-box CA counts",
        "Our counts H/S/O against the paper's per case; relative difference (ours - paper) / paper.",
    ),
    "paper_unavailable": ("Paper test cases not used", "With the reason given by the split stage."),
}


def read_external(
    paths: Iterable[str | os.PathLike], losses: Iterable[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """External tools' per-case tables (``results/external/{split}/{tool}/per_case.tsv``): the scored
    rows (as :func:`read_eval_results` reads ours) and every row, for the cases left out."""
    paths = list(paths)
    if not paths:
        return pd.DataFrame(columns=["loss", "pair_id", "split"]), pd.DataFrame(
            columns=["loss", "pair_id", "status"]
        )
    ok = read_eval_results(paths)
    every = pd.concat([read_tsv(p, text=True) for p in paths], ignore_index=True)
    clash = sorted(set(every["loss"]) & set(losses))
    if clash:
        raise ValueError(
            f"external tool(s) {', '.join(clash)} named like our losses; give the tools other names"
        )
    return ok, every


def external_note(every: pd.DataFrame, cases: Sequence[str], best: tuple[str, str] | None = None) -> str:
    """The tables' footnote on the external tools: what they are, the cases each one lacks, and
    the loss the paired test compares them with."""
    tools = loss_order(every["loss"])
    if not tools:
        return ""
    note = (
        f" External tool(s) {', '.join(tools)}: other tools' predictions of the same test cases, scored as ours"
        " (cryosse score: centre box, same residue vote); a case without a scorable prediction is left out"
        " of that tool's figures only."
    )
    for tool in tools:
        d = every[(every["loss"] == tool) & every["pair_id"].isin(list(cases))]
        bad = d[d["status"] != "ok"]
        if len(bad):
            why = "; ".join(f"{r.pair_id}: {r.status} ({r.reason})" for r in bad.itertuples())
            note += f" {tool}: {len(bad)} of {len(d)} cases left out ({why})."
    if best:
        note += f" Paired tests of each tool against {best[0]}, our loss with the {best[1]}."
    return note


def build_tables(
    per_case: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    main_split: str = "0",
    paper_cases: str | os.PathLike | None = None,
    paper_split_cases: str | os.PathLike | None = None,
    paper_columns: bool = False,
    residue_loss: str = "FL_DL",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 42,
    bands: Sequence[float] = (5.0, 6.0, 7.0, 8.0, 10.0),
    main_split_by: str = "entry",
    external: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """Write every table from the stored per-case results; returns the files written.

    ``main_split_by`` (entry or pair) is how the main split was drawn; Table 1 says it.

    ``paper_cases`` (config/paper_test_cases.tsv) turns on the side-by-side Table 2
    and the fidelity table; ``paper_split_cases`` (results/splits/paper_cases.tsv)
    adds the list of paper cases the run could not use.

    ``external``: external tools' per-case tables (``score_external``); each tool gets a
    row in Table 1, columns in Table 2, rows in the intervals and tests (with a paired test
    against our best loss) and in the breakdown, over the main split's test cases that our
    losses were scored on. Table S1 and the paper comparisons stay ours only.
    """
    out = Path(out_dir)
    allres = read_eval_results(per_case)
    if allres.empty:
        raise ValueError("no evaluated case in the per-case tables (every case failed?)")
    main = allres[allres["split"].astype(str) == str(main_split)]
    if main.empty:
        raise ValueError(f"no evaluated case for the main split {main_split}")
    ext_ok, ext_every = read_external(external, set(allres["loss"]))
    tools = tuple(loss_order(ext_every["loss"]))
    cases = sorted(main["pair_id"].unique())
    ext_main = ext_ok[(ext_ok["split"].astype(str) == str(main_split)) & ext_ok["pair_id"].isin(cases)]
    with_tools = pd.concat([main, ext_main], ignore_index=True) if tools else main
    best = best_loss(main) if tools else None
    ext_note = external_note(ext_every, cases, best)
    written: list[Path] = []
    built = {
        "table1": table1(with_tools, paper_columns, tools),
        "table2": table2(with_tools, residue_loss),
        "tableS1": tableS1(allres, paper_columns),
        "stats": stats_table(with_tools, n_boot, level, seed, tools),
        "breakdown": breakdown(with_tools, bands),
    }
    if paper_cases:
        paper = read_paper_cases(paper_cases)
        built["table2_paper"] = table2_paper(main, paper, residue_loss)
        built["fidelity"] = fidelity(main, paper)
        if paper_split_cases and Path(paper_split_cases).exists():
            built["paper_unavailable"] = paper_unavailable(paper_split_cases)
    n_splits = allres["split"].astype(str).nunique()
    for stem, (numbers, shown) in built.items():
        title, note = CAPTIONS[stem]
        if stem in ("table1", "table2"):
            note += (
                " Main split drawn by EMDB entry: no map has pairs in both training and test."
                if main_split_by == "entry"
                else " Main split drawn pair by pair, as the paper's: chains of one map can sit on both sides."
            )
        if stem in ("table1", "table2", "stats", "breakdown"):
            note += ext_note
        if stem == "tableS1" and n_splits == 1:
            note += (
                " Only the main split was trained in this run, so there is no spread over splits:"
                " train the cross-validation splits too (train.splits: [0, 1, 2, 3, 4]; the demo:"
                " config/demo_cv.yaml) for Table S1 proper."
            )
        written += write_table(numbers, shown, out / stem, title, note)
    return written
