"""Tables written four ways: TSV (numbers), and Markdown, LaTeX and HTML (for the Snakemake
report) rendered by pandas, with figures in percent to one decimal as in the paper."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import jinja2  # noqa: F401  (pandas' Styler.to_latex; imported here so that a missing one fails here)
import pandas as pd
import tabulate  # noqa: F401  (pandas' to_markdown)

from cryosse.io import atomic_write, write_tsv


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


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """The shown table as text, column names included (the renderers infer nothing)."""
    out = df.astype(str)
    out.columns = [str(c) for c in df.columns]
    return out


def to_markdown(df: pd.DataFrame, title: str = "", note: str = "") -> str:
    """A GitHub-flavoured Markdown table (pandas via tabulate): text left, figures right."""
    cells = _cells(df).map(lambda v: v.replace("|", "\\|"))
    align = ("left",) + ("right",) * (len(df.columns) - 1)
    table = cells.to_markdown(index=False, tablefmt="pipe", colalign=align, disable_numparse=True)
    parts = [f"**{title}**", table] if title else [table]
    return "\n\n".join(parts + ([note] if note else [])) + "\n"


_TEX_ESC = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


_TEX_SYMBOLS = {"γ": r"$\gamma$", "±": r"$\pm$", "Å": r"\AA{}"}


def tex_escape(s: Any) -> str:
    """LaTeX text for a caption (pandas escapes the cells, not the caption)."""
    return "".join(_TEX_ESC.get(ch, ch) for ch in str(s))


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A LaTeX table float (pandas' Styler), ruled with \\hline: no package beyond LaTeX's own."""
    styler = _cells(df).style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    styler.set_table_styles(
        [{"selector": rule, "props": ":hline;"} for rule in ("toprule", "midrule", "bottomrule")]
    )
    tex = styler.to_latex(
        caption=tex_escape(caption) if caption else None,
        label=label or None,
        column_format="l" + "r" * (len(df.columns) - 1),
        position="htbp",
        position_float="centering",
        hrules=False,  # the rules come from the table styles above
    )
    # symbols that pdfLaTeX's default set-up cannot typeset from UTF-8 text (γ) or only with
    # recent kernels (±, Å)
    for symbol, command in _TEX_SYMBOLS.items():
        tex = tex.replace(symbol, command)
    return tex


def to_html(df: pd.DataFrame, title: str = "", note: str = "") -> str:
    """A stand-alone HTML page (for the Snakemake report) around pandas' table."""
    table = _cells(df).to_html(index=False, escape=True, border=0)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        "table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}"
        f"</style><title>{html.escape(title)}</title></head><body><h3>{html.escape(title)}</h3>\n"
        f"{table}\n<p>{html.escape(note)}</p></body></html>\n"
    )


def write_table(
    numbers: pd.DataFrame, shown: pd.DataFrame, stem: str | os.PathLike, title: str, note: str = ""
) -> list[Path]:
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
