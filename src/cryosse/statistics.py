"""Statistics of per-case scores: weighted means, bootstrap intervals, paired tests, and the
aggregation of per-case tables (``cryosse aggregate``) that the tables and figures build on.

A case with no true unit of a class has no F1 for it (NaN, written ``NA``) and weighs 0 in
every average. Pure functions over arrays and tables: nothing here runs a network.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse.classes import SCORED
from cryosse.io import read_tsv
from cryosse.loss_names import LOSS_NAMES

# --------------------------------------------------------------------------- averages


def weighted_mean(f1: Iterable[float], weights: Iterable[float]) -> float:
    """Sum(w * F1) / sum(w) over cases with a defined F1 and weight > 0; NaN if none."""
    f = np.asarray(list(f1) if not isinstance(f1, np.ndarray) else f1, float)
    w = np.asarray(list(weights) if not isinstance(weights, np.ndarray) else weights, float)
    ok = np.isfinite(f) & np.isfinite(w) & (w > 0)
    if not ok.any():
        return math.nan
    return float((f[ok] * w[ok]).sum() / w[ok].sum())


#: most bootstrap resamples: their means take 8 bytes each (80 MB), and resampling runs in chunks
#: of BOOTSTRAP_CHUNK case draws, so memory stays near 300 MB whatever the table's size
MAX_BOOTSTRAP = 10_000_000
BOOTSTRAP_CHUNK = 1 << 22


def check_bootstrap(n_boot: int) -> None:
    """Refuse a resample count the memory budget above cannot hold."""
    if n_boot > MAX_BOOTSTRAP:
        raise ValueError(
            f"{n_boot:,} bootstrap resamples is more than the {MAX_BOOTSTRAP:,} allowed (their means alone"
            f" would take {8 * n_boot / 1e9:.1f} GB); 10,000 give a 95% interval to about 0.1 point"
        )


def bootstrap_ci(
    f1: np.ndarray,
    weights: np.ndarray,
    n_boot: int,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the weighted mean, resampling cases."""
    f = np.asarray(f1, float)
    w = np.where(np.isfinite(f), np.asarray(weights, float), 0.0)
    f = np.nan_to_num(f)
    n = len(f)
    if n_boot <= 0 or n == 0 or not (w > 0).any():
        return math.nan, math.nan
    check_bootstrap(n_boot)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    per_chunk = max(1, BOOTSTRAP_CHUNK // n)  # resamples drawn at once: memory stays bounded
    for start in range(0, n_boot, per_chunk):
        idx = rng.integers(0, n, size=(min(per_chunk, n_boot - start), n))
        ws = w[idx]
        tot = ws.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[start : start + len(idx)] = (f[idx] * ws).sum(1) / tot
    means = means[np.isfinite(means)]
    if len(means) == 0:
        return math.nan, math.nan
    a = (1.0 - level) / 2.0
    return float(np.quantile(means, a)), float(np.quantile(means, 1.0 - a))


def paired_test(f1_a: np.ndarray, f1_b: np.ndarray) -> dict[str, float]:
    """Wilcoxon signed-rank test of b against a over the cases where both are defined.

    Returns n, the mean and median difference b - a, and the two-sided p value
    (NaN with fewer than 2 cases or no non-zero difference).
    """
    from scipy.stats import wilcoxon

    a = np.asarray(f1_a, float)
    b = np.asarray(f1_b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = b[ok] - a[ok]
    res = {"n": int(ok.sum()), "mean_diff": math.nan, "median_diff": math.nan, "p": math.nan}
    if len(d):
        res["mean_diff"] = float(d.mean())
        res["median_diff"] = float(np.median(d))
    if len(d) >= 2 and np.any(d != 0):
        res["p"] = float(wilcoxon(d, zero_method="wilcox").pvalue)
    return res


def resolution_band(res: float, edges: Sequence[float]) -> str:
    """Label of the band [lo, hi) of ``edges`` containing ``res`` (the last band is closed)."""
    e = list(edges)
    if not (res == res):
        return "NA"
    for lo, hi in zip(e[:-1], e[1:], strict=False):
        if lo <= res < hi or (hi == e[-1] and res == hi):
            return f"{lo:g}-{hi:g} A"
    return f"<{e[0]:g} A" if res < e[0] else f">{e[-1]:g} A"


# --------------------------------------------------------------------------- aggregate


_COUNT_NAMES = {"ca", "n_ca", "n", "count", "vox_true", "res_true", "n_res"}


def _weights_for(df: pd.DataFrame, name: str, default: dict[str, str]) -> dict[str, str]:
    """A per-case table written by ``evaluate``: voxel F1 by true voxels, residue F1 by true residues."""
    for prefix, fam in (("res_", "res_true_"), ("", "vox_true_")):
        if name.startswith(prefix) and all(f"{fam}{c}" in df.columns for c in SCORED):
            return {c: f"{fam}{c}" for c in SCORED}
    return default


def _detect_weight_columns(df: pd.DataFrame) -> dict[str, str]:
    for prefix in ("ca_", "n_ca_", "n_res_", "res_true_", "vox_true_", "n_", "count_"):
        cols = {c: f"{prefix}{c}" for c in SCORED}
        if all(v in df.columns for v in cols.values()):
            return cols
    raise ValueError(
        "no weight columns found: expected true-unit counts per class such as "
        "ca_helix/ca_sheet, n_ca_helix/n_ca_sheet or vox_true_helix/vox_true_sheet"
    )


def read_per_case(path: str | os.PathLike) -> pd.DataFrame:
    """A per-case table (TSV, '#' comment lines, NA for undefined F1)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such per-case table")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a per-case table")
    lines = [
        ln for ln in path.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("#")
    ]
    if not lines:
        raise ValueError(f"{path}: the per-case table is empty (no header, no rows)")
    if lines:
        header = lines[0].split("\t")
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:
            raise ValueError(f"{path}: column(s) {', '.join(dup)} appear more than once in the header")
        width = len(header)
        for i, ln in enumerate(lines[1:], start=2):
            if len(ln.split("\t")) != width:
                raise ValueError(
                    f"{path}: row {i} has {len(ln.split(chr(9)))} tab-separated fields, the header {width}"
                )
    df = read_tsv(path, comment="#")
    if df.empty:
        raise ValueError(f"{path}: the per-case table has no rows")
    for col in df.columns:  # F1s and counts per class must be numbers
        if re.fullmatch(r".+_(helix|sheet)", str(col)) and not pd.api.types.is_numeric_dtype(df[col]):
            values = pd.to_numeric(df[col], errors="coerce")
            i = int(np.flatnonzero(values.isna() & df[col].notna())[0])
            raise ValueError(f"{path}: row {i + 2}, column {col}: {df[col].iloc[i]!r} is not a number")
    ids = _case_ids(df)
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise ValueError(f"{path}: case(s) {', '.join(dup[:5])} listed more than once; each case counts once")
    return df


def _case_ids(df: pd.DataFrame) -> pd.Series:
    """A case's name: its text columns joined (e.g. emdb_id, pdb_id, chain), else the first column."""
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])] or [df.columns[0]]
    names = ["_".join("" if pd.isna(v) else str(v) for v in row) for row in df[text].itertuples(index=False)]
    return pd.Series(names, index=df.index, dtype=object)


def _check_values(df: pd.DataFrame, f1_cols: list[str], weight_cols: list[str]) -> None:
    """F1 within one scale (0-1 or 0-100) and weights finite and >= 0, or an error naming the case."""
    ids = _case_ids(df)
    f1 = df[f1_cols].to_numpy(float)
    top = 100.0 if np.nanmax(f1, initial=0.0) > 1.0 else 1.0
    if top == 100.0:  # percent: a row whose every F1 is a fraction (0-1) was written in the other unit
        row_max = np.nanmax(np.where(np.isfinite(f1), f1, -1.0), axis=1)
        frac = np.flatnonzero((row_max > 0) & (row_max <= 1.0))
        if len(frac):
            shown = ", ".join(str(ids.iloc[i]) for i in frac[:3]) + (" ..." if len(frac) > 3 else "")
            raise ValueError(
                f"case(s) {shown}: every F1 is between 0 and 1 while other rows are in percent (above 1);"
                " the table mixes fractions and percent: write every row in one unit"
            )
    for col in f1_cols:
        v = df[col].to_numpy(float)
        bad = np.isfinite(v) & ((v < 0) | (v > top)) | np.isinf(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"case {ids.iloc[i]}: {col} = {v[i]:g} is not an F1 (0-{top:g})")
    for col in weight_cols:
        v = df[col].to_numpy(float)
        bad = ~np.isfinite(v) & ~np.isnan(v) | (v < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"case {ids.iloc[i]}: weight {col} = {v[i]:g} must be a count >= 0")


def aggregate(
    df: pd.DataFrame,
    weights: dict[str, str] | None = None,
    n_boot: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Weighted Table-1 rows from a wide per-case table.

    Every numeric column ``{name}_helix`` / ``{name}_sheet`` that is not a weight
    column is one F1 series (``CE_helix``, ``FL_DL_residue_sheet``...). ``weights``
    maps class -> column of true-unit counts (detected when omitted). Returns one
    row per series name: helix, sheet, mean of the two, cases counted, and the
    bootstrap interval when ``n_boot`` > 0. Values keep the input's unit.
    """
    wcols = weights or _detect_weight_columns(df)
    for c in wcols.values():
        if c not in df.columns:
            raise ValueError(f"weight column {c!r} is not in the table (columns: {', '.join(df.columns)})")
    skip = set(wcols.values())
    names: list[str] = []
    for c in df.columns:
        m = re.fullmatch(r"(.+)_(helix|sheet)", str(c))
        if not m or c in skip or not pd.api.types.is_numeric_dtype(df[c]):
            continue
        if m.group(1) in _COUNT_NAMES or re.search(r"(^|_)(tp|fp|fn|true|n|count|ca)$", m.group(1)):
            continue
        if m.group(1) not in names:
            names.append(m.group(1))
    if not names:
        raise ValueError("no F1 columns named {loss}_helix / {loss}_sheet in the table")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level {level} must lie in (0, 1)")
    if n_boot < 0:
        raise ValueError(f"bootstrap resamples {n_boot} must be >= 0")
    check_bootstrap(n_boot)
    f1_cols = [f"{n}_{c}" for n in names for c in SCORED if f"{n}_{c}" in df.columns]
    w_cols = sorted(
        {
            c
            for c in df.columns
            if c in set(wcols.values()) or re.search(r"(^|_)(true|n|count|ca)_(helix|sheet)$", str(c))
        }
    )
    _check_values(df, f1_cols, [c for c in w_cols if pd.api.types.is_numeric_dtype(df[c])])
    rows = []
    for name in names:
        row: dict[str, Any] = {"name": name}
        use = wcols if weights else _weights_for(df, name, wcols)
        row["weights"] = "/".join(use[c] for c in SCORED)
        for cls, wcol in use.items():
            col = f"{name}_{cls}"
            if col not in df.columns:
                row[cls] = math.nan
                continue
            f = df[col].to_numpy(float)
            w = df[wcol].to_numpy(float)
            row[cls] = weighted_mean(f, w)
            row[f"n_{cls}"] = int((np.isfinite(f) & (w > 0)).sum())
            if n_boot > 0:
                row[f"{cls}_lo"], row[f"{cls}_hi"] = bootstrap_ci(f, w, n_boot, level, seed)
        row["mean"] = (row["helix"] + row["sheet"]) / 2.0
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- per-case tables of several runs


def read_eval_results(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate per-case tables (one per split and loss); only rows with status ok."""
    frames = []
    for p in paths:
        df = read_tsv(p)
        if "loss" not in df.columns or df["loss"].isna().any() or (df["loss"] == "").any():
            raise ValueError(f"{p}: a per-case table whose rows do not all name their loss (column loss)")
        frames.append(df)
    if not frames:
        raise ValueError("no per-case tables given")
    out = pd.concat(frames, ignore_index=True)
    if "status" in out.columns:
        out = out[out["status"] == "ok"]
    return out.reset_index(drop=True)


def loss_order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [n for n in LOSS_NAMES if n in names]
    return known + sorted(n for n in names if n not in LOSS_NAMES)
