"""Figures from stored results (matplotlib, Agg; every figure as PNG and PDF).

Focal-loss curves (the paper's Figure 4), weighted F1 per loss and class with
bootstrap intervals, per-case F1 of each loss against CE, F1 against
resolution, training curves of the chosen settings, and map / truth /
prediction slices for a few test cases. Nothing here trains or predicts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cryosse.classes import CLASS_COUNTS, COLOURS, SCORED  # noqa: E402
from cryosse.io import atomic_path, read_tsv  # noqa: E402
from cryosse.loss_names import series_colours  # noqa: E402
from cryosse.pairfile import TRAINING, read_pair_arrays  # noqa: E402
from cryosse.statistics import bootstrap_ci, loss_order, read_eval_results, weighted_mean  # noqa: E402

FIGURES = ("focal_loss", "f1_by_loss", "per_case_vs_ce", "f1_vs_resolution", "training_curves", "slices")


def save(fig: plt.Figure, stem: str | os.PathLike) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf atomically; close the figure."""
    stem = Path(stem)
    out = []
    for ext in (".png", ".pdf"):
        path = stem.with_suffix(ext)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext[1:], dpi=150, bbox_inches="tight", metadata=_meta(ext))
        out.append(path)
    plt.close(fig)
    return out


def _meta(ext: str) -> dict:
    # Stable bytes for equal input: no creation date in the files.
    return {"CreationDate": None} if ext == ".pdf" else {"Software": None}


def focal_loss_figure(gammas: Sequence[float]) -> plt.Figure:
    """FL = -(1 - p_t)^gamma log p_t against p_t for gamma 0 (= CE) and the gammas used."""
    p = np.linspace(0.005, 1.0, 400)
    fig, ax = plt.subplots(figsize=(4.5, 3.5), layout="constrained")
    for g in sorted({0.0, *(float(x) for x in gammas)}):
        ax.plot(p, -((1 - p) ** g) * np.log(p), label=f"γ = {g:g}" + (" (CE)" if g == 0 else ""))
    ax.set_xlabel("probability of the true class $p_t$")
    ax.set_ylabel("loss")
    ax.set_ylim(0, 5)
    ax.set_xlim(0, 1)
    ax.legend(frameon=False)
    ax.set_title("Focal loss for the γ values used")
    return fig


def f1_bar_figure(main: pd.DataFrame, n_boot: int, level: float, seed: int) -> plt.Figure:
    """Weighted F1 per loss and class with bootstrap intervals; every bar labelled with its value
    (a 0 stays visible) and each class with the number of test cases that have it."""
    losses = loss_order(main["loss"])
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8), layout="constrained", sharey=True)
    for ax, lev in zip(axes, ("voxel", "residue"), strict=True):
        x = np.arange(len(losses))
        for j, cls in enumerate(SCORED):
            vals, err, n_cases = [], [[], []], 0
            for loss in losses:
                d = main[main["loss"] == loss]
                f = d[f"f1_{cls}" if lev == "voxel" else f"res_f1_{cls}"].to_numpy(float)
                w = d[f"vox_true_{cls}" if lev == "voxel" else f"res_true_{cls}"].to_numpy(float)
                n_cases = max(n_cases, int((np.isfinite(f) & (w > 0)).sum()))
                m = weighted_mean(f, w)
                lo, hi = bootstrap_ci(f, w, n_boot, level, seed)
                vals.append(100 * m if math.isfinite(m) else 0.0)
                err[0].append(100 * (m - lo) if math.isfinite(lo) else 0)
                err[1].append(100 * (hi - m) if math.isfinite(hi) else 0)
            xs = x + (j - 0.5) * 0.38
            ax.bar(
                xs,
                vals,
                0.38,
                yerr=err,
                capsize=3,
                label=f"{cls} ({n_cases} cases)",
                color=COLOURS[cls],
                edgecolor="0.3",
                linewidth=0.5,
            )
            for xi, v in zip(xs, vals, strict=True):
                ax.text(xi, 1.5, f"{v:.0f}", ha="center", va="bottom", fontsize=7, color="0.15")
        ax.set_xticks(x, _tick_labels(main, losses))
        ax.set_title(f"{lev} level")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"weighted F1 (%), {round(level * 100)}% CI")
    axes[0].legend(frameon=False, fontsize=8, loc="upper left")
    return fig


def _cases(main: pd.DataFrame, name: str) -> int:
    """How many cases a loss or tool has: each series' own count (a tool may cover fewer)."""
    return main.loc[main["loss"] == name, "pair_id"].nunique()


def _series_label(main: pd.DataFrame, name: str) -> str:
    """A legend entry: the loss or tool and its case count."""
    return f"{name} ({_cases(main, name)} cases)"


def _tick_labels(main: pd.DataFrame, names: list[str]) -> list[str]:
    """The series' names, each with its case count where the counts differ."""
    n = {x: _cases(main, x) for x in names}
    return names if len(set(n.values())) <= 1 else [f"{x}\n({n[x]} cases)" for x in names]


def per_case_figure(main: pd.DataFrame) -> plt.Figure:
    losses = [x for x in loss_order(main["loss"]) if x != "CE"]
    colours = series_colours(loss_order(main["loss"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), layout="constrained")
    ce = main[main["loss"] == "CE"].set_index("pair_id")
    for ax, cls in zip(axes, SCORED, strict=True):
        for loss in losses:
            d = main[main["loss"] == loss].set_index("pair_id")
            common = d.index.intersection(ce.index)
            ax.scatter(
                100 * ce.loc[common, f"f1_{cls}"].astype(float),
                100 * d.loc[common, f"f1_{cls}"].astype(float),
                s=14,
                label=f"{loss} ({len(common)} cases)",
                color=colours[loss],
                alpha=0.8,
            )
        ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_aspect("equal")
        ax.set_xlabel(f"CE {cls} F1 (%)")
        ax.set_ylabel(f"other loss {cls} F1 (%)")
        ax.set_title(f"{cls}: per test case")
    if losses and "CE" in set(main["loss"]):
        axes[1].legend(frameon=False, fontsize=8)
    else:
        axes[0].text(50, 50, "no CE results to compare against", ha="center")
    return fig


def resolution_figure(main: pd.DataFrame) -> plt.Figure:
    """Voxel F1 against resolution; each loss's points shifted sideways by a fixed step (a
    dodged strip plot), so that cases at one resolution do not hide each other."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), layout="constrained", sharey=True)
    losses = loss_order(main["loss"])
    colours = series_colours(losses)
    res = main["resolution"].astype(float)
    span = float(res.max() - res.min()) if len(res) else 0.0
    step = 0.012 * (span if span > 0 else 1.0)  # 1.2% of the axis per series
    for ax, cls in zip(axes, SCORED, strict=True):
        for i, loss in enumerate(losses):
            d = main[main["loss"] == loss]
            ax.scatter(
                d["resolution"].astype(float) + (i - (len(losses) - 1) / 2) * step,
                100 * d[f"f1_{cls}"].astype(float),
                s=14,
                label=_series_label(main, loss),
                color=colours[loss],
                alpha=0.8,
            )
        ax.set_xlabel("map resolution (Å); the series side by side")
        ax.set_title(cls)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("voxel F1 (%)")
    axes[0].set_ylim(0, 100)
    axes[1].legend(frameon=False, fontsize=8)
    return fig


def _chosen_rows(selection_tsv: str | os.PathLike | None) -> pd.DataFrame | None:
    """The chosen rows of a split's selection table; None where there is no table."""
    if not selection_tsv or not Path(selection_tsv).exists():
        return None
    sel = read_tsv(selection_tsv, dtype={"checkpoint": str})
    if "chosen" in sel.columns:
        sel = sel[sel["chosen"].astype(str).str.lower().isin(["true", "1", "yes"])]
    return sel


def chosen_histories(selection_tsv: str | os.PathLike | None) -> dict[str, Path]:
    """loss -> the ``history.tsv`` beside its chosen checkpoint, from a split's selection table."""
    sel = _chosen_rows(selection_tsv)
    if sel is None:
        return {}
    if "checkpoint" not in sel.columns:
        raise ValueError(f"{selection_tsv}: no checkpoint column (not a cryosse selection table)")
    out = {}
    for _, r in sel.iterrows():
        p = Path(r["checkpoint"]).parent / "history.tsv"
        if p.exists():
            out[str(r["loss"])] = p
    return out


def chosen_settings(selection_tsv: str | os.PathLike | None) -> dict[str, str]:
    """loss -> its chosen setting name (e.g. ``lr0.001_g2``), for the legend."""
    sel = _chosen_rows(selection_tsv)
    return {} if sel is None else dict(zip(sel["loss"], sel["setting"], strict=True))


def readable_setting(setting: str) -> str:
    """``lr0.0001_g2_w1-2`` as ``lr 0.0001, γ 2, weights 1:2`` for a legend."""
    words = {"lr": "lr ", "g": "γ ", "w": "weights "}
    parts = []
    for part in setting.split("_"):
        key = "lr" if part.startswith("lr") else part[:1]
        value = part[len(key) :]
        parts.append(words[key] + value.replace("-", ":") if key in words and value else part)
    return ", ".join(parts)


def training_figure(histories: dict[str, Path], settings: dict[str, str] | None = None) -> plt.Figure:
    """Training loss per epoch relative to its first epoch's (the losses have different
    scales) and the validation figure, (helix F1 + sheet F1) / 2 in %, per epoch, for each
    loss's chosen setting."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6), layout="constrained")
    if not histories:
        for ax in axes:
            ax.text(0.5, 0.5, "no training history found", ha="center", transform=ax.transAxes)
        return fig
    colours = series_colours(histories)
    for loss in loss_order(histories):
        h = read_tsv(histories[loss])
        x = h["epoch"] if "epoch" in h.columns else np.arange(1, len(h) + 1)
        label = loss + (f" ({readable_setting(settings[loss])})" if settings and loss in settings else "")
        if "train_loss" in h.columns and float(h["train_loss"].iloc[0]) > 0:
            axes[0].plot(
                x,
                h["train_loss"] / float(h["train_loss"].iloc[0]),
                marker="o",
                ms=3,
                color=colours[loss],
                label=label,
            )
        if "val_mean" in h.columns:
            axes[1].plot(x, 100 * h["val_mean"], marker="o", ms=3, color=colours[loss], label=label)
    axes[0].set_ylabel("training loss per epoch\n(relative to the first epoch's)")
    axes[1].set_ylabel("validation (helix F1 + sheet F1) / 2 (%)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[1].legend(frameon=False, fontsize=7)
    return fig


#: the slices' panels beyond a box that is not square: not a class colour, not the background
OUTSIDE = "#d0d0d0"


def slices_figure(
    main: pd.DataFrame,
    eval_dir: str | os.PathLike,
    n_cases: int,
    dataset_paths: dict[str, str],
    split: str = "0",
) -> plt.Figure:
    """One z slice of the centre box per case (the one with most helix + sheet voxels): the
    density, then the truth and each loss's prediction drawn over the same density, all panels
    of a row on the same square grid (grey beyond the box), with a colour key, the slice's
    index and a 10 A scale bar."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from cryosse.geometry import read_map

    cmap = ListedColormap([COLOURS["helix"], COLOURS["sheet"]])
    losses = loss_order(main["loss"])
    first = main.drop_duplicates("pair_id")
    order = first.sort_values(["vox_true_sheet", "pair_id"], ascending=[False, True])["pair_id"].tolist()
    cases = [c for c in order if c in dataset_paths][:n_cases]
    ncol = 2 + len(losses)
    fig, axes = plt.subplots(
        max(1, len(cases)),
        ncol,
        figsize=(1.75 * ncol, 1.95 * max(1, len(cases)) + 0.5),
        layout="constrained",
        squeeze=False,
    )
    if not cases:
        axes[0, 0].text(0.5, 0.5, "no case to show", ha="center", transform=axes[0, 0].transAxes)
    for i, pid in enumerate(cases):
        pair = read_pair_arrays(dataset_paths[pid], pid, classes=max(CLASS_COUNTS), need=TRAINING)
        dens, lab = pair.density[pair.centre.slices], pair.labels[pair.centre.slices]
        k = int(np.argmax((lab > 0).sum(axis=(1, 2))))  # the slice with most helix + sheet voxels
        panels = [("map", None), ("truth", lab[k])]
        for loss in losses:
            p = Path(eval_dir) / split / loss / "pred" / f"{pid}.mrc"
            data = np.asarray(read_map(p).data) if p.exists() else np.zeros_like(lab)
            panels.append((loss, data[k] if data.shape == lab.shape else np.zeros_like(lab[k])))
        side = max(lab.shape[1:])  # the same extent in every panel of the row
        for j, (name, labels) in enumerate(panels):
            ax = axes[i, j]
            ax.set_facecolor(OUTSIDE)
            ax.imshow(dens[k], cmap="gray", origin="lower", interpolation="nearest")
            if labels is not None:
                shown = np.ma.masked_where((labels < 1) | (labels > 2), labels)  # helix and sheet only
                ax.imshow(
                    shown, cmap=cmap, vmin=1, vmax=2, origin="lower", interpolation="nearest", alpha=0.75
                )
            ax.set_xlim(-0.5, side - 0.5)
            ax.set_ylim(-0.5, side - 0.5)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{pid}\nz = {k + 1} of {lab.shape[0]}", fontsize=7)
                ax.plot([2, 12], [2, 2], color="white", lw=2)  # 10 voxels = 10 A
                ax.text(7, 3.5, "10 Å", color="white", fontsize=6, ha="center", va="bottom")
    fig.legend(
        handles=[
            Patch(color=COLOURS["helix"], label="helix"),
            Patch(color=COLOURS["sheet"], label="sheet"),
            Patch(facecolor=OUTSIDE, edgecolor="0.5", label="beyond the box"),
        ],
        loc="outside lower center",
        ncols=3,
        frameon=False,
        fontsize=8,
    )
    return fig


def build_figures(
    per_case: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    gammas: Sequence[float],
    eval_dir: str | os.PathLike,
    dataset_tsv: str | os.PathLike,
    selection_tsv: str | os.PathLike | None = None,
    main_split: str = "0",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 42,
    n_slices: int = 3,
    external: Iterable[str | os.PathLike] = (),
) -> list[Path]:
    """Write every figure (PNG + PDF) from stored results; returns the files written.

    ``external``: external tools' per-case tables; each tool appears beside our losses in
    the F1, per-case and resolution figures (over the cases our losses were scored on), not
    in the slices (its predictions are not stored here)."""
    out = Path(out_dir)
    allres = read_eval_results(per_case)
    main = allres[allres["split"].astype(str) == str(main_split)]
    if main.empty:
        raise ValueError(f"no evaluated case for the main split {main_split}")
    external = list(external)
    with_tools = main
    if external:
        ext = read_eval_results(external)
        ext = ext[(ext["split"].astype(str) == str(main_split)) & ext["pair_id"].isin(set(main["pair_id"]))]
        with_tools = pd.concat([main, ext], ignore_index=True)
    ds = read_tsv(dataset_tsv, dtype={"path": str})
    paths = dict(zip(ds["pair_id"], ds["path"], strict=True))
    written: list[Path] = []
    written += save(focal_loss_figure(gammas), out / "focal_loss")
    written += save(f1_bar_figure(with_tools, n_boot, level, seed), out / "f1_by_loss")
    written += save(per_case_figure(with_tools), out / "per_case_vs_ce")
    written += save(resolution_figure(with_tools), out / "f1_vs_resolution")
    written += save(
        training_figure(chosen_histories(selection_tsv), chosen_settings(selection_tsv)),
        out / "training_curves",
    )
    written += save(slices_figure(main, eval_dir, n_slices, paths, str(main_split)), out / "slices")
    return written
