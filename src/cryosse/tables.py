"""The paper's tables rebuilt from stored per-case results (SPEC 10, issue 6 and 9).

Table 1 (per loss: best gamma, weighted voxel F1 helix / sheet / mean), Table 2
(per test case: id, resolution, CA counts H/S/O, voxel F1 per loss, residue F1),
Table S1 (every split and mean +- sd per loss), plus what the paper lacks:
bootstrap intervals and paired tests against CE, F1 by resolution band and quality
bin, and, for a run on the paper's own test cases, Table 2 side by side with the
paper's figures and a fidelity table of centre-box CA counts.

A run with the nucleic-acid class (``classes: 4``) adds a nucleic-acid F1 column to
Tables 1 and 2 (the mean stays the paper's (helix + sheet) / 2); 3-class tables are
unchanged.

Every table is written as TSV (numbers), Markdown, LaTeX and HTML (for the
Snakemake report). Figures are in percent with one decimal, as in the paper.
Nothing here trains or predicts: it reads ``results/eval/{split}/{loss}/per_case.tsv``.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse.classes import NA_COLUMN
from cryosse.io import atomic_write, write_tsv
from cryosse.statistics import (
    bootstrap_ci,
    loss_order,
    paired_test,
    read_eval_results,
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
CLASSES = ("helix", "sheet")
NUCLEIC = "nucleic"  # the optional fourth class (per-case columns f1_nucleic, res_f1_nucleic)


def _scored(df: pd.DataFrame) -> tuple[str, ...]:
    """The classes with F1 columns in the per-case results: helix, sheet (and nucleic for 4 classes)."""
    return CLASSES + ((NUCLEIC,) if f"f1_{NUCLEIC}" in df.columns else ())


# --------------------------------------------------------------------------- formatting


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as percent text; NA for undefined."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "NA"
    return "NA" if not math.isfinite(v) else f"{100.0 * v:.{digits}f}"


def num(x: Any, fmt: str = "{:g}") -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x) if x is not None else "NA"
    return "NA" if not math.isfinite(v) else fmt.format(v)


def to_markdown(df: pd.DataFrame, title: str = "", note: str = "") -> str:
    cols = [str(c) for c in df.columns]
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|")
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row.tolist()) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


_TEX_ESC = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def tex_escape(s: Any) -> str:
    return "".join(_TEX_ESC.get(ch, ch) for ch in str(s)).replace("\u00b1", r"$\pm$").replace("\u00c5", r"\AA{}")


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    align = "l" + "r" * (len(df.columns) - 1)
    out = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{tex_escape(caption)}}}")
    if label:
        out.append(f"\\label{{{label}}}")
    out += [f"\\begin{{tabular}}{{{align}}}", "\\hline", " & ".join(tex_escape(c) for c in df.columns) + " \\\\",
            "\\hline"]
    for _, row in df.iterrows():
        out.append(" & ".join(tex_escape(v) for v in row.tolist()) + " \\\\")
    out += ["\\hline", "\\end{tabular}", "\\end{table}"]
    return "\n".join(out) + "\n"


def to_html(df: pd.DataFrame, title: str = "", note: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.tolist()) + "</tr>"
        for _, row in df.iterrows()
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        "table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}"
        f"</style><title>{html.escape(title)}</title></head><body><h3>{html.escape(title)}</h3>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>{html.escape(note)}</p></body></html>\n"
    )


def write_table(numbers: pd.DataFrame, shown: pd.DataFrame, stem: str | os.PathLike,
                title: str, note: str = "") -> list[Path]:
    """``stem``.tsv (numbers, NA for undefined), .md, .tex and .html (the shown text)."""
    stem = Path(stem)
    write_tsv(stem.with_suffix(".tsv"), numbers, na_rep="NA", float_format="%.6g")
    with atomic_write(stem.with_suffix(".md")) as fh:
        fh.write(to_markdown(shown, title, note))
    with atomic_write(stem.with_suffix(".tex")) as fh:
        fh.write(to_latex(shown, f"{title}. {note}".strip(" ."), f"tab:{stem.name}"))
    with atomic_write(stem.with_suffix(".html")) as fh:
        fh.write(to_html(shown, title, note))
    return [stem.with_suffix(s) for s in (".tsv", ".md", ".tex", ".html")]


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


def table1(main: pd.DataFrame, paper_columns: bool = False, tools: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per loss (paper order): best gamma, weighted voxel F1 helix / sheet / mean; then one row
    per external tool (``tools``: names in the ``loss`` column), shown as ``NAME (external)``."""
    rows, shown = [], []
    for loss in loss_order(main["loss"]):
        d = main[main["loss"] == loss]
        h = weighted_mean(*_w(d, "voxel", "helix"))
        s = weighted_mean(*_w(d, "voxel", "sheet"))
        g = _gamma(d) if loss in ("FL", "FL_DL") else math.nan
        r = {"loss": loss, "gamma": g, "f1_helix": h, "f1_sheet": s}
        t = {"Loss function": _shown_name(loss, tools), "γ": num(g), "F1 helix (%)": pct(h),
             "F1 sheet (%)": pct(s)}
        if NUCLEIC in _scored(main):  # 4 classes: a column after sheet; the mean stays the paper's
            r[f"f1_{NUCLEIC}"] = weighted_mean(*_w(d, "voxel", NUCLEIC))
            t["F1 nucleic acid (%)"] = pct(r[f"f1_{NUCLEIC}"])
        r.update(f1_mean=(h + s) / 2, n_cases=len(d))
        t["F1 avg (%)"] = pct((h + s) / 2)
        if paper_columns and loss in PAPER_TABLE1:
            pg, ph, ps, pm = PAPER_TABLE1[loss]
            r.update(paper_gamma=pg, paper_f1_helix=ph / 100, paper_f1_sheet=ps / 100, paper_f1_mean=pm / 100)
            t.update({"paper γ": num(pg), "paper helix": f"{ph:.1f}", "paper sheet": f"{ps:.1f}",
                      "paper avg": f"{pm:.1f}"})
        elif paper_columns:
            t.update({"paper γ": "NA", "paper helix": "NA", "paper sheet": "NA", "paper avg": "NA"})
        rows.append(r)
        shown.append(t)
    return pd.DataFrame(rows), pd.DataFrame(shown)


def stats_table(main: pd.DataFrame, n_boot: int, level: float, seed: int,
                tools: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weighted F1 with bootstrap intervals and a paired Wilcoxon test against CE, per loss,
    class and level (voxel, residue). With external ``tools``, each tool is also tested against
    our best loss (:func:`best_loss`) over the cases both have (``vs_best_*`` columns)."""
    rows = []
    losses = loss_order(main["loss"])
    best = best_loss(main, tools)[0] if tools else None
    for lev in ("voxel", "residue"):
        for cls in CLASSES:
            ref = None
            if "CE" in losses:
                ref = main[main["loss"] == "CE"].set_index("pair_id")
            top = main[main["loss"] == best].set_index("pair_id") if best else None
            for loss in losses:
                d = main[main["loss"] == loss].set_index("pair_id")
                f, w = _w(d, lev, cls)
                lo, hi = bootstrap_ci(f, w, n_boot, level, seed)
                r = {"level": lev, "class": cls, "loss": loss, "f1": weighted_mean(f, w), "ci_lo": lo,
                     "ci_hi": hi, "n_cases": int((np.isfinite(f) & (w > 0)).sum())}
                if ref is not None and loss != "CE":
                    common = d.index.intersection(ref.index)
                    fa = _w(ref.loc[common], lev, cls)[0]
                    fb = _w(d.loc[common], lev, cls)[0]
                    t = paired_test(fa, fb)
                    r.update(vs_ce_n=t["n"], vs_ce_mean_diff=t["mean_diff"], vs_ce_median_diff=t["median_diff"],
                             vs_ce_p=t["p"])
                if top is not None and loss in tools:
                    common = d.index.intersection(top.index)
                    t = paired_test(_w(top.loc[common], lev, cls)[0], _w(d.loc[common], lev, cls)[0])
                    r.update(vs_best_loss=best, vs_best_n=t["n"], vs_best_mean_diff=t["mean_diff"],
                             vs_best_median_diff=t["median_diff"], vs_best_p=t["p"])
                rows.append(r)
    df = pd.DataFrame(rows)
    for c in ("vs_ce_n", "vs_ce_mean_diff", "vs_ce_median_diff", "vs_ce_p"):
        if c not in df.columns:
            df[c] = math.nan
    shown = pd.DataFrame({
        "Level": df["level"], "Class": df["class"], "Loss": [_shown_name(x, tools) for x in df["loss"]],
        "F1 (%)": df["f1"].map(pct),
        f"{round(level * 100)}% CI": [f"{pct(a)}-{pct(b)}" for a, b in zip(df["ci_lo"], df["ci_hi"], strict=True)],
        "cases": df["n_cases"],
        "Δ vs CE (mean, points)": df["vs_ce_mean_diff"].map(lambda v: num(100 * v, "{:+.1f}")),
        "Wilcoxon p": df["vs_ce_p"].map(lambda v: num(v, "{:.3g}")),
    })
    if best:  # only with external tools: the tables of a run without them stay as they were
        shown[f"tool vs {best}: Δ (mean, points)"] = df["vs_best_mean_diff"].map(lambda v: num(100 * v, "{:+.1f}"))
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
        v = pd.to_numeric(main.loc[main["loss"] == loss, "best_val"], errors="coerce").dropna() \
            if "best_val" in main.columns else pd.Series(dtype=float)
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
        t = {"EMDB_PDB_Chain (resolution in Å)": _case_label(pd.Series({"pair_id": pid, **r})),
             count_head: _counts(pd.Series(r), nucleic=nucleic)}
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
        avg[col] = float(pd.to_numeric(first[col], errors="coerce").sum()) if col in first.columns else math.nan
    t = {"EMDB_PDB_Chain (resolution in Å)": "Weighted Average", count_head: _counts(pd.Series(avg), nucleic=nucleic)}
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
        for c in CLASSES:
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
        for c in CLASSES:
            t[f"{c} mean ± sd"] = f"{pct(r[f'mean_{c}'])} ± {pct(r[f'sd_{c}'])}"
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
    d["band"] = [resolution_band(float(v), bands) for v in pd.to_numeric(d.get("resolution"), errors="coerce")]
    d["qbin"] = d["bin"].map(lambda v: num(v, "{:.0f}")) if "bin" in d.columns else "NA"
    rows = []
    for by, col in (("resolution", "band"), ("quality bin", "qbin")):
        for g in sorted(d[col].unique(), key=str):
            for loss in loss_order(d["loss"]):
                s = d[(d[col] == g) & (d["loss"] == loss)]
                r = {"by": by, "group": g, "loss": loss, "n_cases": int(s["pair_id"].nunique())}
                for c in CLASSES:
                    r[f"f1_{c}"] = weighted_mean(*_w(s, "voxel", c))
                rows.append(r)
    df = pd.DataFrame(rows)
    shown = pd.DataFrame({"By": df["by"], "Group": df["group"], "Loss": df["loss"], "cases": df["n_cases"],
                          "F1 helix (%)": df["f1_helix"].map(pct), "F1 sheet (%)": df["f1_sheet"].map(pct)})
    return df, shown


# --------------------------------------------------------------------------- paper test cases


def case_key(emdb: Any, pdb: Any, chain: Any) -> str:
    """``{EMDB number without leading zeros}_{PDB upper case}_{author chain as is}``."""
    m = re.search(r"(\d+)", str(emdb))
    if not m:
        raise ValueError(f"EMDB id {emdb!r} has no number")
    return f"{int(m.group(1))}_{str(pdb).strip().upper()}_{str(chain).strip()}"


def pair_key(pair_id: str) -> str:
    """Key of a pair id ``{emdb number}_{PDB}_{chain}`` (the chain may be 1-4 characters, any case)."""
    parts = str(pair_id).split("_", 2)
    if len(parts) != 3:
        raise ValueError(f"pair id {pair_id!r} is not EMDB_PDB_CHAIN")
    return case_key(*parts)


def read_paper_cases(path: str | os.PathLike) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: the paper's Table 2 cases are missing")
    df = pd.read_csv(p, sep="\t", comment="#", dtype={"emdb_id": str, "pdb_id": str, "chain": str},
                     na_values=["NA"], keep_default_na=False)
    need = {"emdb_id", "pdb_id", "chain", "ca_helix", "ca_sheet", "ca_other"}
    if not need <= set(df.columns):
        raise ValueError(f"{p}: columns {', '.join(sorted(need - set(df.columns)))} missing")
    df["key"] = [case_key(e, pdb, c) for e, pdb, c in zip(df["emdb_id"], df["pdb_id"], df["chain"], strict=True)]
    return df


def table2_paper(main: pd.DataFrame, paper: pd.DataFrame, residue_loss: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Our Table 2 with the paper's per-case figures beside ours, for the cases we evaluated."""
    losses = loss_order(main["loss"])
    res_loss = residue_loss if residue_loss in losses else losses[-1]
    pk = paper.set_index("key")
    first = main.drop_duplicates("pair_id").set_index("pair_id")
    by = {loss: main[main["loss"] == loss].set_index("pair_id") for loss in losses}
    cases = [pid for pid in sorted(first.index) if pair_key(pid) in pk.index]
    rows, shown = [], []

    def series(loss: str, c: str, level: str = "voxel") -> tuple[list[float], list[float]]:
        col = f"f1_{c}" if level == "voxel" else f"res_f1_{c}"
        ours = [by[loss].at[pid, col] if pid in by[loss].index else math.nan for pid in cases]
        pcol = f"{loss}_{c}" if level == "voxel" else f"{loss}_residue_{c}"
        theirs = [float(pk.at[pair_key(pid), pcol]) / 100 if pcol in pk.columns else math.nan for pid in cases]
        return ours, theirs

    cols: list[tuple[str, str, str]] = [(loss, c, "voxel") for loss in losses for c in CLASSES]
    cols += [(res_loss, c, "residue") for c in CLASSES]
    data = {k: series(*k) for k in cols}
    for i, pid in enumerate(cases):
        m, p = first.loc[pid], pk.loc[pair_key(pid)]
        r: dict[str, Any] = {"pair_id": pid, "resolution": m.get("resolution", math.nan),
                             "paper_resolution": p.get("resolution", math.nan)}
        for c in ("helix", "sheet", "other"):
            r[f"n_ca_{c}"] = m.get(f"n_ca_{c}", math.nan)
            r[f"paper_ca_{c}"] = p[f"ca_{c}"]
        t = {"Case (our res. / paper's)": f"{pid} ({num(r['resolution'], '{:.1f}')}/{num(r['paper_resolution'], '{:.1f}')})",
             "Count ours": _counts(pd.Series(r)), "Count paper": _counts(pd.Series(r), "paper_ca_")}
        for (loss, c, lev), (ours, theirs) in data.items():
            tag = f"{loss}_residue_{c}" if lev == "residue" else f"{loss}_{c}"
            r[tag], r[f"paper_{tag}"] = ours[i], theirs[i]
            t[f"{tag.replace('_residue', ' residue')} ours/paper"] = f"{pct(ours[i])}/{pct(theirs[i])}"
        rows.append(r)
        shown.append(t)
    # Weighted averages over the same cases: ours by our true units, the paper's by its CA counts.
    avg: dict[str, Any] = {"pair_id": "Weighted Average"}
    for c in ("helix", "sheet", "other"):
        avg[f"n_ca_{c}"] = float(pd.to_numeric(pd.Series([r[f"n_ca_{c}"] for r in rows]), errors="coerce").sum())
        avg[f"paper_ca_{c}"] = float(sum(float(r[f"paper_ca_{c}"]) for r in rows))
    t = {"Case (our res. / paper's)": "Weighted Average", "Count ours": _counts(pd.Series(avg)),
         "Count paper": _counts(pd.Series(avg), "paper_ca_")}
    for (loss, c, lev), (_ours, theirs) in data.items():
        tag = f"{loss}_residue_{c}" if lev == "residue" else f"{loss}_{c}"
        d = by[loss].reindex(cases)
        avg[tag] = weighted_mean(*_w(d, lev, c)) if cases else math.nan
        avg[f"paper_{tag}"] = weighted_mean(theirs, [float(pk.at[pair_key(pid), f"ca_{c}"]) for pid in cases])
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
        key = pair_key(m["pair_id"])
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
    df = pd.read_csv(paper_cases_tsv, sep="\t", comment="#", dtype=str, keep_default_na=False)
    status = next((c for c in df.columns if c.lower() in ("status", "used", "state")), None)
    if status is not None:
        df = df[~df[status].str.lower().isin(["used", "ok", "test", "true", "yes"])]
    keep = [c for c in ("case_id", "emdb_id", "pdb_id", "chain", "resolution", status, "reason") if c in df.columns]
    df = df[keep or list(df.columns)].reset_index(drop=True)
    return df, df


# --------------------------------------------------------------------------- all at once

CAPTIONS = {
    "table1": ("Table 1. Weighted-average voxel F1 of the test set per loss function",
               "Best γ from validation; F1 weighted by each case's true voxels of the class (NA cases weigh 0)."),
    "table2": ("Table 2. F1 per test case",
               "Counts: CA atoms in the centre box (helix/sheet/other); voxel F1 (%) per loss; residue F1 by majority "
               "vote of the voxels within the residue radius of each CA. NA: no true voxel or residue of the class."),
    "tableS1": ("Table S1. Weighted voxel F1 per split",
                "Split 0 is the main split, 1.. the cross-validation splits; mean ± sd over the splits."),
    "stats": ("Confidence intervals and paired tests",
              "Percentile bootstrap over test cases; Wilcoxon signed-rank test of each loss against CE over the "
              "cases where both are defined (unweighted)."),
    "breakdown": ("F1 by resolution band and quality bin", "Weighted voxel F1 of the main split's test cases."),
    "table2_paper": ("Table 2 beside the paper's", "Our figures / the paper's, for the paper's test cases we built; "
                     "the bottom row weights each side by its own counts over the same cases."),
    "fidelity": ("Fidelity of the centre-box CA counts",
                 "Our counts H/S/O against the paper's per case; relative difference (ours - paper) / paper."),
    "paper_unavailable": ("Paper test cases not used", "With the reason given by the split stage."),
}


def read_external(paths: Iterable[str | os.PathLike], losses: Iterable[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """External tools' per-case tables (``results/external/{split}/{tool}/per_case.tsv``): the scored
    rows (as :func:`read_eval_results` reads ours) and every row, for the cases left out."""
    paths = list(paths)
    if not paths:
        return pd.DataFrame(columns=["loss", "pair_id", "split"]), pd.DataFrame(columns=["loss", "pair_id", "status"])
    ok = read_eval_results(paths)
    every = pd.concat([pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in paths], ignore_index=True)
    clash = sorted(set(every["loss"]) & set(losses))
    if clash:
        raise ValueError(f"external tool(s) {', '.join(clash)} named like our losses; give the tools other names")
    return ok, every


def external_note(every: pd.DataFrame, cases: Sequence[str], best: tuple[str, str] | None = None) -> str:
    """The tables' footnote on the external tools: what they are, the cases each one lacks, and
    the loss the paired test compares them with."""
    tools = loss_order(every["loss"])
    if not tools:
        return ""
    note = (f" External tool(s) {', '.join(tools)}: other tools' predictions of the same test cases, scored as ours"
            " (cryosse score: centre box, same residue vote); a case without a scorable prediction is left out"
            " of that tool's figures only.")  # fmt: skip
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
            note += (" Main split drawn by EMDB entry: no map has pairs in both training and test."
                     if main_split_by == "entry" else
                     " Main split drawn pair by pair, as the paper's: chains of one map can sit on both sides.")  # fmt: skip
        if stem in ("table1", "table2", "stats", "breakdown"):
            note += ext_note
        if stem == "tableS1" and n_splits == 1:
            note += (" Only the main split was trained in this run, so there is no spread over splits (sd NA):"
                     " train the cross-validation splits too (train.splits: [0, 1, 2, 3, 4]; the demo:"
                     " config/demo_cv.yaml) for Table S1 proper.")  # fmt: skip
        written += write_table(numbers, shown, out / stem, title, note)
    return written
