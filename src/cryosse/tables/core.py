"""Table 1, the statistics table, Table 2, Table S1 and the breakdown, from per-case results."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cryosse.classes import NA_COLUMN, NAMES, SCORED
from cryosse.classes import NUCLEIC as NUCLEIC_CLASS
from cryosse.loss_names import GAMMA_LOSSES
from cryosse.render import num, pct
from cryosse.statistics import (
    bootstrap_ci,
    loss_order,
    paired_test,
    resolution_band,
    weighted_mean,
)

# The paper's own figures (Mu et al. 2024): Table 1 (best gamma, voxel F1 % helix,
# sheet, mean) and the cross-validation sheet means of Supplementary Table S1.
PAPER_TABLE1: dict[str, tuple[float, float, float, float]] = {
    "CE": (math.nan, 61.7, 39.9, 50.8),
    "FL": (2, 62.9, 45.4, 54.2),
    "DL": (math.nan, 61.8, 43.4, 52.6),
    "CE_DL": (math.nan, 61.7, 46.0, 53.9),
    "FL_DL": (1, 62.0, 48.7, 55.4),
}
PAPER_S1_SHEET: dict[str, float] = {"CE": 40.1, "FL": 42.3, "DL": 43.3, "CE_DL": 46.2, "FL_DL": 47.0}
PAPER_TABLE2_LOSSES = ("CE", "FL", "DL", "FL_DL")
NUCLEIC = NAMES[NUCLEIC_CLASS]  # the optional fourth class (per-case columns f1_nucleic, res_f1_nucleic)


def _scored(df: pd.DataFrame) -> tuple[str, ...]:
    """The classes with F1 columns in the per-case results: helix, sheet (and nucleic for 4 classes)."""
    return tuple(SCORED) + ((NUCLEIC,) if f"f1_{NUCLEIC}" in df.columns else ())


# --------------------------------------------------------------------------- tables


def _w(df: pd.DataFrame, level: str, cls: str) -> tuple[np.ndarray, np.ndarray]:
    if level == "voxel":
        return df[f"f1_{cls}"].to_numpy(float), df[f"vox_true_{cls}"].to_numpy(float)
    return df[f"res_f1_{cls}"].to_numpy(float), df[f"res_true_{cls}"].to_numpy(float)


def _gamma(df: pd.DataFrame) -> float:
    if "gamma" not in df.columns:
        return math.nan
    g = pd.to_numeric(df["gamma"], errors="coerce").dropna()
    return float(g.iloc[0]) if len(g) else math.nan


def table1(
    main: pd.DataFrame, paper_columns: bool = False, tools: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per loss (paper order): best gamma, weighted voxel F1 helix / sheet / mean and the number
    of cases; then one row per external tool (``tools``: names in the ``loss`` column), shown as
    ``NAME (external)``. A tool that covers fewer cases than the losses is followed by each loss
    recomputed on the tool's cases (``LOSS, on NAME's cases``), so that it is compared on the
    same cases."""
    rows, shown = [], []
    ours = main[~main["loss"].isin(tools)]
    all_cases = set(ours["pair_id"])
    for loss in loss_order(main["loss"]):
        d = main[main["loss"] == loss]
        _table1_row(rows, shown, d, loss, _shown_name(loss, tools), paper_columns, _scored(main))
        if loss in tools and set(d["pair_id"]) < all_cases:
            for own in loss_order(ours["loss"]):
                same = ours[(ours["loss"] == own) & ours["pair_id"].isin(set(d["pair_id"]))]
                _table1_row(rows, shown, same, own, f"{own}, on {loss}'s cases", False, _scored(main))
                rows[-1]["cases_of"] = loss
                if paper_columns:
                    shown[-1].update({"paper γ": "", "paper helix": "", "paper sheet": "", "paper avg": ""})
    return pd.DataFrame(rows), pd.DataFrame(shown)


def _table1_row(
    rows: list,
    shown: list,
    d: pd.DataFrame,
    loss: str,
    name: str,
    paper_columns: bool,
    classes: tuple[str, ...],
) -> None:
    h = weighted_mean(*_w(d, "voxel", "helix"))
    s = weighted_mean(*_w(d, "voxel", "sheet"))
    g = _gamma(d) if loss in GAMMA_LOSSES else math.nan
    r = {"loss": loss, "gamma": g, "f1_helix": h, "f1_sheet": s}
    t = {"Loss function": name, "γ": num(g), "F1 helix (%)": pct(h), "F1 sheet (%)": pct(s)}
    if NUCLEIC in classes:  # 4 classes: a column after sheet; the mean stays the paper's
        r[f"f1_{NUCLEIC}"] = weighted_mean(*_w(d, "voxel", NUCLEIC))
        t["F1 nucleic acid (%)"] = pct(r[f"f1_{NUCLEIC}"])
    r.update(f1_mean=(h + s) / 2, n_cases=len(d))
    t["F1 avg (%)"] = pct((h + s) / 2)
    t["cases"] = len(d)
    if paper_columns and loss in PAPER_TABLE1:
        pg, ph, ps, pm = PAPER_TABLE1[loss]
        r.update(paper_gamma=pg, paper_f1_helix=ph / 100, paper_f1_sheet=ps / 100, paper_f1_mean=pm / 100)
        t.update(
            {
                "paper γ": num(pg),
                "paper helix": f"{ph:.1f}",
                "paper sheet": f"{ps:.1f}",
                "paper avg": f"{pm:.1f}",
            }
        )
    elif paper_columns:
        t.update({"paper γ": "NA", "paper helix": "NA", "paper sheet": "NA", "paper avg": "NA"})
    rows.append(r)
    shown.append(t)


def stats_table(
    main: pd.DataFrame, n_boot: int, level: float, seed: int, tools: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weighted F1 with bootstrap intervals and a paired Wilcoxon test against CE, per loss,
    class and level (voxel, residue). With external ``tools``, each tool is also tested against
    our best loss (:func:`best_loss`) over the cases both have (``vs_best_*`` columns)."""
    rows = []
    losses = loss_order(main["loss"])
    best = best_loss(main, tools)[0] if tools else None
    for lev in ("voxel", "residue"):
        for cls in SCORED:
            ref = None
            if "CE" in losses:
                ref = main[main["loss"] == "CE"].set_index("pair_id")
            top = main[main["loss"] == best].set_index("pair_id") if best else None
            for loss in losses:
                d = main[main["loss"] == loss].set_index("pair_id")
                f, w = _w(d, lev, cls)
                lo, hi = bootstrap_ci(f, w, n_boot, level, seed)
                r = {
                    "level": lev,
                    "class": cls,
                    "loss": loss,
                    "f1": weighted_mean(f, w),
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "n_cases": int((np.isfinite(f) & (w > 0)).sum()),
                }
                if ref is not None and loss != "CE":
                    common = d.index.intersection(ref.index)
                    fa = _w(ref.loc[common], lev, cls)[0]
                    fb = _w(d.loc[common], lev, cls)[0]
                    t = paired_test(fa, fb)
                    r.update(
                        vs_ce_n=t["n"],
                        vs_ce_mean_diff=t["mean_diff"],
                        vs_ce_median_diff=t["median_diff"],
                        vs_ce_p=t["p"],
                    )
                if top is not None and loss in tools:
                    common = d.index.intersection(top.index)
                    t = paired_test(_w(top.loc[common], lev, cls)[0], _w(d.loc[common], lev, cls)[0])
                    r.update(
                        vs_best_loss=best,
                        vs_best_n=t["n"],
                        vs_best_mean_diff=t["mean_diff"],
                        vs_best_median_diff=t["median_diff"],
                        vs_best_p=t["p"],
                    )
                rows.append(r)
    df = pd.DataFrame(rows)
    for c in ("vs_ce_n", "vs_ce_mean_diff", "vs_ce_median_diff", "vs_ce_p"):
        if c not in df.columns:
            df[c] = math.nan
    shown = pd.DataFrame(
        {
            "Level": df["level"],
            "Class": df["class"],
            "Loss": [_shown_name(x, tools) for x in df["loss"]],
            "F1 (%)": df["f1"].map(pct),
            f"{round(level * 100)}% CI": [
                f"{pct(a)}-{pct(b)}" for a, b in zip(df["ci_lo"], df["ci_hi"], strict=True)
            ],
            "cases": df["n_cases"],
            "Δ vs CE (mean, points)": df["vs_ce_mean_diff"].map(lambda v: num(100 * v, "{:+.1f}")),
            "Wilcoxon p": df["vs_ce_p"].map(lambda v: num(v, "{:.3g}")),
        }
    )
    if best:  # only with external tools: the tables of a run without them stay as they were
        shown[f"tool vs {best}: Δ (mean, points)"] = df["vs_best_mean_diff"].map(
            lambda v: num(100 * v, "{:+.1f}")
        )
        shown[f"tool vs {best}: Wilcoxon p"] = df["vs_best_p"].map(lambda v: num(v, "{:.3g}"))
    return df, shown


def _shown_name(loss: str, tools: Sequence[str]) -> str:
    return f"{loss} (external)" if loss in tools else loss


def best_loss(main: pd.DataFrame, tools: Sequence[str] = ()) -> tuple[str, str]:
    """Our loss an external tool is tested against, and how it was chosen: the highest
    validation figure of the chosen models (``best_val``, the figure model selection used)
    when every loss has one, else the highest Table-1 mean voxel F1 on the test cases."""
    ours = [x for x in loss_order(main["loss"]) if x not in tools]
    if not ours:
        raise ValueError("no result of our own losses to compare the external tools with")
    val = {}
    for loss in ours:
        v = (
            pd.to_numeric(main.loc[main["loss"] == loss, "best_val"], errors="coerce").dropna()
            if "best_val" in main.columns
            else pd.Series(dtype=float)
        )
        val[loss] = float(v.iloc[0]) if len(v) else math.nan
    if all(math.isfinite(v) for v in val.values()):
        return max(ours, key=lambda x: val[x]), "highest validation F1"
    mean = {}
    for loss in ours:
        d = main[main["loss"] == loss]
        mean[loss] = (weighted_mean(*_w(d, "voxel", "helix")) + weighted_mean(*_w(d, "voxel", "sheet"))) / 2
    return max(ours, key=lambda x: mean[x] if math.isfinite(mean[x]) else -1.0), "highest test mean F1"


def _case_label(r: pd.Series) -> str:
    return f"{r['pair_id']} ({num(r.get('resolution'), '{:.1f}')})"


def _counts(r: pd.Series, prefix: str = "n_ca_", nucleic: bool = False) -> str:
    """CA counts H/S/O (and nucleotides, ``n_na``, for 4 classes)."""
    parts = [num(r.get(f"{prefix}{c}"), "{:.0f}") for c in ("helix", "sheet", "other")]
    return "/".join(parts + ([num(r.get(NA_COLUMN), "{:.0f}")] if nucleic else []))


def table2(main: pd.DataFrame, residue_loss: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per test case: id (resolution), CA counts H/S/O, voxel F1 per loss, residue F1 of one loss."""
    losses = loss_order(main["loss"])
    res_loss = residue_loss if residue_loss in losses else losses[-1]
    cases = sorted(main["pair_id"].unique())
    first = main.drop_duplicates("pair_id").set_index("pair_id")
    by = {loss: main[main["loss"] == loss].set_index("pair_id") for loss in losses}
    classes = _scored(main)
    nucleic = NUCLEIC in classes
    count_cols = [f"n_ca_{c}" for c in ("helix", "sheet", "other")] + ([NA_COLUMN] if nucleic else [])
    count_head = "Count (H/S/O/NA)" if nucleic else "Count (H/S/O)"
    rows, shown = [], []
    for pid in cases:
        m = first.loc[pid]
        r: dict[str, Any] = {"pair_id": pid, "resolution": m.get("resolution", math.nan)}
        for col in count_cols:
            r[col] = m.get(col, math.nan)
        t = {
            "EMDB_PDB_Chain (resolution in Å)": _case_label(pd.Series({"pair_id": pid, **r})),
            count_head: _counts(pd.Series(r), nucleic=nucleic),
        }
        for loss in losses:
            d = by[loss]
            for c in classes:
                v = d.at[pid, f"f1_{c}"] if pid in d.index else math.nan
                r[f"{loss}_{c}"] = v
                t[f"{loss} {c}"] = pct(v)
        d = by[res_loss]
        for c in classes:
            v = d.at[pid, f"res_f1_{c}"] if pid in d.index else math.nan
            r[f"{res_loss}_residue_{c}"] = v
            t[f"residue {res_loss} {c}"] = pct(v)
        rows.append(r)
        shown.append(t)
    # Bottom row: weighted averages (voxel F1 by true voxels, residue F1 by true residues).
    avg: dict[str, Any] = {"pair_id": "Weighted Average", "resolution": math.nan}
    for col in count_cols:
        avg[col] = (
            float(pd.to_numeric(first[col], errors="coerce").sum()) if col in first.columns else math.nan
        )
    t = {
        "EMDB_PDB_Chain (resolution in Å)": "Weighted Average",
        count_head: _counts(pd.Series(avg), nucleic=nucleic),
    }
    for loss in losses:
        for c in classes:
            v = weighted_mean(*_w(by[loss], "voxel", c))
            avg[f"{loss}_{c}"] = v
            t[f"{loss} {c}"] = pct(v)
    for c in classes:
        v = weighted_mean(*_w(by[res_loss], "residue", c))
        avg[f"{res_loss}_residue_{c}"] = v
        t[f"residue {res_loss} {c}"] = pct(v)
    rows.append(avg)
    shown.append(t)
    return pd.DataFrame(rows), pd.DataFrame(shown)


def tableS1(allres: pd.DataFrame, paper_columns: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weighted voxel F1 per split and loss, with mean and sd over the splits."""
    splits = sorted(allres["split"].astype(str).unique(), key=lambda s: (len(s), s))
    rows, shown = [], []
    for loss in loss_order(allres["loss"]):
        r: dict[str, Any] = {"loss": loss}
        t: dict[str, Any] = {"Loss": loss}
        for c in SCORED:
            vals = []
            for k in splits:
                d = allres[(allres["loss"] == loss) & (allres["split"].astype(str) == k)]
                v = weighted_mean(*_w(d, "voxel", c)) if len(d) else math.nan
                r[f"split{k}_{c}"] = v
                vals.append(v)
            a = np.asarray(vals, float)
            a = a[np.isfinite(a)]
            r[f"mean_{c}"] = float(a.mean()) if len(a) else math.nan
            r[f"sd_{c}"] = float(a.std(ddof=1)) if len(a) > 1 else math.nan
        for k in splits:
            t[f"split {k} (H/S)"] = f"{pct(r[f'split{k}_helix'])}/{pct(r[f'split{k}_sheet'])}"
        for c in SCORED:  # one split has no spread: say so rather than "± NA"
            sd = f"± {pct(r[f'sd_{c}'])}" if len(splits) > 1 else "(one split)"
            t[f"{c} mean ± sd"] = f"{pct(r[f'mean_{c}'])} {sd}"
        if paper_columns:
            p = PAPER_S1_SHEET.get(loss, math.nan)
            r["paper_mean_sheet"] = p / 100
            t["paper sheet mean"] = num(p, "{:.1f}")
        rows.append(r)
        shown.append(t)
    return pd.DataFrame(rows), pd.DataFrame(shown)


def breakdown(main: pd.DataFrame, bands: Sequence[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weighted voxel F1 per loss by resolution band and by quality bin."""
    d = main.copy()
    d["band"] = [
        resolution_band(float(v), bands) for v in pd.to_numeric(d.get("resolution"), errors="coerce")
    ]
    d["qbin"] = d["bin"].map(lambda v: num(v, "{:.0f}")) if "bin" in d.columns else "NA"
    rows = []
    for by, col in (("resolution", "band"), ("quality bin", "qbin")):
        for g in sorted(d[col].unique(), key=str):
            for loss in loss_order(d["loss"]):
                s = d[(d[col] == g) & (d["loss"] == loss)]
                r = {"by": by, "group": g, "loss": loss, "n_cases": int(s["pair_id"].nunique())}
                for c in SCORED:
                    r[f"f1_{c}"] = weighted_mean(*_w(s, "voxel", c))
                rows.append(r)
    df = pd.DataFrame(rows)
    shown = pd.DataFrame(
        {
            "By": df["by"],
            "Group": df["group"],
            "Loss": df["loss"],
            "cases": df["n_cases"],
            "F1 helix (%)": df["f1_helix"].map(pct),
            "F1 sheet (%)": df["f1_sheet"].map(pct),
        }
    )
    return df, shown
