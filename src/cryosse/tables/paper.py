"""For a run on the paper's own test cases: Table 2 beside the paper's figures, a fidelity
table of centre-box CA counts, and the paper's cases that could not be used."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse.classes import SCORED
from cryosse.ids import pair_id
from cryosse.io import read_tsv
from cryosse.render import num, pct
from cryosse.statistics import loss_order, weighted_mean
from cryosse.tables.core import _counts, _w


def read_paper_cases(path: str | os.PathLike) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: the paper's Table 2 cases are missing")
    df = read_tsv(p, comment="#")
    need = {"emdb_id", "pdb_id", "chain", "ca_helix", "ca_sheet", "ca_other"}
    if not need <= set(df.columns):
        raise ValueError(f"{p}: columns {', '.join(sorted(need - set(df.columns)))} missing")
    df["key"] = [
        pair_id(e, pdb, c) for e, pdb, c in zip(df["emdb_id"], df["pdb_id"], df["chain"], strict=True)
    ]
    return df


def table2_paper(
    main: pd.DataFrame, paper: pd.DataFrame, residue_loss: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our Table 2 with the paper's per-case figures beside ours, for the cases we evaluated."""
    losses = loss_order(main["loss"])
    res_loss = residue_loss if residue_loss in losses else losses[-1]
    pk = paper.set_index("key")
    first = main.drop_duplicates("pair_id").set_index("pair_id")
    by = {loss: main[main["loss"] == loss].set_index("pair_id") for loss in losses}
    cases = [pid for pid in sorted(first.index) if pid in pk.index]
    rows, shown = [], []

    def series(loss: str, c: str, level: str = "voxel") -> tuple[list[float], list[float]]:
        col = f"f1_{c}" if level == "voxel" else f"res_f1_{c}"
        ours = [by[loss].at[pid, col] if pid in by[loss].index else math.nan for pid in cases]
        pcol = f"{loss}_{c}" if level == "voxel" else f"{loss}_residue_{c}"
        theirs = [float(pk.at[pid, pcol]) / 100 if pcol in pk.columns else math.nan for pid in cases]
        return ours, theirs

    cols: list[tuple[str, str, str]] = [(loss, c, "voxel") for loss in losses for c in SCORED]
    cols += [(res_loss, c, "residue") for c in SCORED]
    data = {k: series(*k) for k in cols}
    for i, pid in enumerate(cases):
        m, p = first.loc[pid], pk.loc[pid]
        r: dict[str, Any] = {
            "pair_id": pid,
            "resolution": m.get("resolution", math.nan),
            "paper_resolution": p.get("resolution", math.nan),
        }
        for c in ("helix", "sheet", "other"):
            r[f"n_ca_{c}"] = m.get(f"n_ca_{c}", math.nan)
            r[f"paper_ca_{c}"] = p[f"ca_{c}"]
        t = {
            "Case (our res. / paper's)": f"{pid} ({num(r['resolution'], '{:.1f}')}/{num(r['paper_resolution'], '{:.1f}')})",
            "Count ours": _counts(pd.Series(r)),
            "Count paper": _counts(pd.Series(r), "paper_ca_"),
        }
        for (loss, c, lev), (ours, theirs) in data.items():
            tag = f"{loss}_residue_{c}" if lev == "residue" else f"{loss}_{c}"
            r[tag], r[f"paper_{tag}"] = ours[i], theirs[i]
            t[f"{tag.replace('_residue', ' residue')} ours/paper"] = f"{pct(ours[i])}/{pct(theirs[i])}"
        rows.append(r)
        shown.append(t)
    # Weighted averages over the same cases: ours by our true units, the paper's by its CA counts.
    avg: dict[str, Any] = {"pair_id": "Weighted Average"}
    for c in ("helix", "sheet", "other"):
        avg[f"n_ca_{c}"] = float(
            pd.to_numeric(pd.Series([r[f"n_ca_{c}"] for r in rows]), errors="coerce").sum()
        )
        avg[f"paper_ca_{c}"] = float(sum(float(r[f"paper_ca_{c}"]) for r in rows))
    t = {
        "Case (our res. / paper's)": "Weighted Average",
        "Count ours": _counts(pd.Series(avg)),
        "Count paper": _counts(pd.Series(avg), "paper_ca_"),
    }
    for (loss, c, lev), (_ours, theirs) in data.items():
        tag = f"{loss}_residue_{c}" if lev == "residue" else f"{loss}_{c}"
        d = by[loss].reindex(cases)
        avg[tag] = weighted_mean(*_w(d, lev, c)) if cases else math.nan
        avg[f"paper_{tag}"] = weighted_mean(theirs, [float(pk.at[pid, f"ca_{c}"]) for pid in cases])
        t[f"{tag.replace('_residue', ' residue')} ours/paper"] = f"{pct(avg[tag])}/{pct(avg[f'paper_{tag}'])}"
    rows.append(avg)
    shown.append(t)
    return pd.DataFrame(rows), pd.DataFrame(shown)


def fidelity(test_cases: pd.DataFrame, paper: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our centre-box CA counts H/S/O against the paper's for each paper case we built,
    with the median relative difference per class as the summary row."""
    pk = paper.set_index("key")
    rows, shown = [], []
    for _, m in test_cases.drop_duplicates("pair_id").sort_values("pair_id").iterrows():
        key = m["pair_id"]
        if key not in pk.index:
            continue
        p = pk.loc[key]
        r: dict[str, Any] = {"pair_id": m["pair_id"]}
        t: dict[str, Any] = {"Case": m["pair_id"]}
        for c in ("helix", "sheet", "other"):
            ours, theirs = float(m[f"n_ca_{c}"]), float(p[f"ca_{c}"])
            r[f"ours_{c}"], r[f"paper_{c}"] = ours, theirs
            r[f"reldiff_{c}"] = (ours - theirs) / theirs if theirs > 0 else math.nan
            t[f"{c} ours/paper"] = f"{ours:.0f}/{theirs:.0f}"
            t[f"{c} rel. diff (%)"] = num(100 * r[f"reldiff_{c}"], "{:+.1f}")
        rows.append(r)
        shown.append(t)
    df = pd.DataFrame(rows)
    summ: dict[str, Any] = {"pair_id": "Median relative difference"}
    ts: dict[str, Any] = {"Case": "Median relative difference"}
    for c in ("helix", "sheet", "other"):
        vals = df[f"reldiff_{c}"].to_numpy(float) if len(df) else np.array([])
        vals = vals[np.isfinite(vals)]
        summ[f"reldiff_{c}"] = float(np.median(vals)) if len(vals) else math.nan
        ts[f"{c} ours/paper"] = ""
        ts[f"{c} rel. diff (%)"] = num(100 * summ[f"reldiff_{c}"], "{:+.1f}")
    df = pd.concat([df, pd.DataFrame([summ])], ignore_index=True)
    return df, pd.DataFrame(shown + [ts])


def paper_unavailable(paper_cases_tsv: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper cases the run could not use, with the split stage's reason."""
    df = read_tsv(paper_cases_tsv, text=True, comment="#")
    status = next((c for c in df.columns if c.lower() in ("status", "used", "state")), None)
    if status is not None:
        df = df[~df[status].str.lower().isin(["used", "ok", "test", "true", "yes"])]
    keep = [
        c
        for c in ("case_id", "emdb_id", "pdb_id", "chain", "resolution", status, "reason")
        if c in df.columns
    ]
    df = df[keep or list(df.columns)].reset_index(drop=True)
    return df, df
