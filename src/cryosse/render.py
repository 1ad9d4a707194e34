"""Tables written four ways: TSV (numbers), Markdown, LaTeX and HTML (for the Snakemake
report), with figures in percent to one decimal as in the paper."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

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


def tex_escape(s: Any) -> str:
    return (
        "".join(_TEX_ESC.get(ch, ch) for ch in str(s)).replace("\u00b1", r"$\pm$").replace("\u00c5", r"\AA{}")
    )


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    align = "l" + "r" * (len(df.columns) - 1)
    out = ["\\begin{table}[htbp]", "\\centering"]
    if caption:
        out.append(f"\\caption{{{tex_escape(caption)}}}")
    if label:
        out.append(f"\\label{{{label}}}")
    out += [
        f"\\begin{{tabular}}{{{align}}}",
        "\\hline",
        " & ".join(tex_escape(c) for c in df.columns) + " \\\\",
        "\\hline",
    ]
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
