"""Evaluation (SPEC 10): voxel and residue F1 per case, and the evaluation of a split.

Pure functions over arrays first (counts, F1, residue voting; the averages, intervals and
tests are in :mod:`cryosse.statistics`), then the edge: predicting every test case of
a split with a stored checkpoint (``evaluate_split``) and the ``cryosse
evaluate`` / ``cryosse aggregate`` subcommands.

Classes: 0 background, 1 helix, 2 sheet, and with a 4-class network 3 nucleic
acid (``*_nucleic`` columns; its residue-level units are the nucleotides, voted
on at their P or C4' atom as residues are at their CA). A case with no true unit
(voxel or residue) of a class has no F1 for that class (NaN, written ``NA``) and
weighs 0 in every average.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryosse import paths
from cryosse.argtypes import AT_LEAST_ONE, COUNT, POSITIVE, number
from cryosse.classes import CLASS_COUNTS, NAMES, NUCLEIC, PAPER_CLASSES, dataset_classes
from cryosse.geometry import MapGeometry, voxels_within
from cryosse.io import read_tsv, write_tsv
from cryosse.metrics import confusion, f1_from_counts  # noqa: F401  (re-exported)
from cryosse.pairfile import CentreBox, read_pair_arrays
from cryosse.statistics import MAX_BOOTSTRAP, aggregate, read_per_case, weighted_mean

log = logging.getLogger(__name__)

TIE_RULES = ("background", "nearest")


# --------------------------------------------------------------------------- metrics


def centre_slices(centre: Sequence[int]) -> tuple[slice, slice, slice]:
    box = CentreBox(*(int(v) for v in centre))
    if not (0 <= box.z0 < box.z1 and 0 <= box.y0 < box.y1 and 0 <= box.x0 < box.x1):
        raise ValueError(f"centre box {tuple(centre)} is empty or negative")
    return box.slices


def _classes(n_classes: int) -> dict[str, int]:
    """Scored classes of an ``n_classes`` network: helix, sheet (and nucleic for 4)."""
    return {NAMES[k]: k for k in range(1, n_classes)}


def _class_scores(
    pred: np.ndarray, truth: np.ndarray, n_classes: int, counts: str, f1: str
) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, cls in _classes(n_classes).items():
        tp, fp, fn = confusion(pred, truth, cls)
        out[f"{counts}_tp_{name}"] = tp
        out[f"{counts}_fp_{name}"] = fp
        out[f"{counts}_fn_{name}"] = fn
        out[f"{counts}_true_{name}"] = tp + fn
        out[f"{f1}_{name}"] = f1_from_counts(tp, fp, fn)
    return out


def voxel_scores(
    pred_centre: np.ndarray, truth_centre: np.ndarray, n_classes: int = PAPER_CLASSES
) -> dict[str, float]:
    """Voxel F1 per class on centre-box arrays: ``vox_{tp,fp,fn,true}_{cls}``, ``f1_{cls}``."""
    return _class_scores(pred_centre, truth_centre, n_classes, "vox", "f1")


def residue_votes(
    pred: np.ndarray,
    ca_xyz: np.ndarray,
    origin_xyz: Sequence[float],
    voxel_size: float,
    radius: float = 3.0,
    ties: str = "background",
    region: Sequence[int] | None = None,
    n_classes: int = 3,
) -> np.ndarray:
    """Predicted class per CA: the majority label of the voxels within ``radius`` A.

    ``pred`` is the label array ``[z, y, x]`` of the whole box whose first voxel
    centre is ``origin_xyz``; ``region`` (z0, z1, y0, y1, x0, x1) restricts the
    voting voxels to a sub-box (the centre box: the padding is trimmed from the
    prediction, as in the authors' output). A CA with no voxel in reach is
    background. ``ties``: ``background`` (SPEC 10, CHOSEN) gives a tie between
    the top classes to background; ``nearest`` gives it to the tied class of the
    voxel nearest the CA.
    """
    if ties not in TIE_RULES:
        raise ValueError(f"residue tie rule {ties!r}; expected one of {', '.join(TIE_RULES)}")
    pred = np.asarray(pred)
    ca = np.atleast_2d(np.asarray(ca_xyz, float)).reshape(-1, 3)
    out = np.zeros(len(ca), np.uint8)
    if len(ca) == 0:
        return out
    vs = float(voxel_size)
    geometry = MapGeometry(tuple(pred.shape), (vs, vs, vs), tuple(float(v) for v in origin_xyz))  # type: ignore[arg-type]
    point, vox, d2 = voxels_within(geometry, ca, radius, None if region is None else tuple(region))
    labels = pred[vox[:, 0], vox[:, 1], vox[:, 2]].astype(int)
    bounds = np.searchsorted(point, np.arange(len(ca) + 1))  # each CA's voxels are one run
    for i in range(len(ca)):
        lab, dist = labels[bounds[i] : bounds[i + 1]], d2[bounds[i] : bounds[i + 1]]
        if not len(lab):
            continue
        counts = np.bincount(lab, minlength=n_classes)
        top = np.flatnonzero(counts == counts.max())
        if len(top) == 1:
            out[i] = top[0]
        elif ties == "nearest":
            order = np.argsort(dist, kind="stable")
            out[i] = next(int(lab[j]) for j in order if lab[j] in top)
        # else: tie -> background (0)
    return out


def residue_scores(
    pred_res: np.ndarray, true_res: np.ndarray, n_classes: int = PAPER_CLASSES
) -> dict[str, float]:
    """Residue F1 per class: ``res_{tp,fp,fn,true}_{cls}``, ``res_f1_{cls}``."""
    return _class_scores(np.asarray(pred_res), np.asarray(true_res), n_classes, "res", "res_f1")


def score_case(
    pred: np.ndarray,
    arrays: dict[str, np.ndarray],
    radius: float = 3.0,
    ties: str = "background",
    n_classes: int = PAPER_CLASSES,
) -> dict[str, float]:
    """Voxel and residue scores of one case from its full-box predicted labels and its
    ``arrays.npz`` content (labels, centre, ca_xyz, ca_class, ca_in_centre, origin, voxel size;
    na_xyz and na_in_centre for 4 classes: the nucleotides are residue-level units of class 3)."""
    labels = np.asarray(arrays["labels"])
    if pred.shape != labels.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the labels' {labels.shape}")
    centre = [int(v) for v in np.asarray(arrays["centre"]).ravel()]
    sl = centre_slices(centre)
    if "inside" in arrays:  # voxels of the box beyond the map are unknown: not scored
        keep = np.asarray(arrays["inside"], bool)[sl]
        row = voxel_scores(pred[sl][keep], labels[sl][keep], n_classes)
    else:
        row = voxel_scores(pred[sl], labels[sl], n_classes)
    in_centre = np.asarray(arrays["ca_in_centre"], bool)
    ca = np.asarray(arrays["ca_xyz"], float).reshape(-1, 3)[in_centre]
    true_res = np.asarray(arrays["ca_class"]).ravel()[in_centre]
    if n_classes > PAPER_CLASSES:
        if "na_xyz" not in arrays:
            raise ValueError("the pair has no nucleotide atoms (na_xyz): it was built with 3 classes")
        na = np.asarray(arrays["na_xyz"], float).reshape(-1, 3)[np.asarray(arrays["na_in_centre"], bool)]
        ca = np.concatenate([ca, na])
        true_res = np.concatenate([true_res, np.full(len(na), NUCLEIC, true_res.dtype)])
    votes = residue_votes(
        pred,
        ca,
        np.asarray(arrays["origin_xyz"], float),
        float(np.asarray(arrays["voxel_size"])),
        radius=radius,
        ties=ties,
        region=centre,
        n_classes=n_classes,
    )
    row.update(residue_scores(votes, true_res, n_classes))
    for cls in (1, 2, 0, NUCLEIC)[:n_classes]:
        row[f"n_res_{NAMES[cls]}"] = int(np.count_nonzero(true_res == cls))
    return row


# --------------------------------------------------------------------------- prediction


def _loss_params(meta: dict[str, Any]) -> dict[str, Any]:
    """Loss name, gamma, setting and best validation figure from checkpoint metadata."""
    loss = meta.get("loss")
    params: dict[str, Any] = {}
    if isinstance(loss, dict):
        params.update(loss.get("params", {}) if isinstance(loss.get("params"), dict) else {})
        params.update({k: v for k, v in loss.items() if k != "params"})
        name = loss.get("name")
    else:
        name = loss
    gamma = params.get("gamma", meta.get("gamma"))
    best = meta.get("best_val", math.nan)
    if isinstance(best, dict):
        best = best.get("val_mean", math.nan)
    return {
        "loss_name": name,
        "gamma": gamma if gamma is not None else math.nan,
        "setting": meta.get("setting", ""),
        "best_val": best,
    }


def load_pair_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of a pair file (``path``: the file or its pair folder), checked
    (:func:`cryosse.pairfile.read_pair_arrays`), as a dict for :func:`score_case`."""
    return read_pair_arrays(path, classes=max(CLASS_COUNTS)).arrays


def predict_labels(model: Any, density: np.ndarray, device: Any = "cpu") -> np.ndarray:
    """Argmax labels (uint8 [z, y, x]) of the network on a normalised density box."""
    from cryosse.density import prepare_input
    from cryosse.infer import predict_probabilities

    prob = predict_probabilities(model, prepare_input(density, model.model_args), device)
    return np.argmax(prob, axis=0).astype(np.uint8)


def write_prediction(path: str | os.PathLike, pred: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    """Store the centre box of the predicted labels as MRC in the pair's frame (overlays the input)."""
    from cryosse.geometry import write_map

    centre = [int(v) for v in np.asarray(arrays["centre"]).ravel()]
    sl = centre_slices(centre)
    vs = float(np.asarray(arrays["voxel_size"]))
    origin = np.asarray(arrays["origin_xyz"], float) + vs * np.array([centre[4], centre[2], centre[0]])
    data = pred[sl]
    geom = MapGeometry(tuple(int(s) for s in data.shape), (vs, vs, vs), tuple(float(v) for v in origin))  # type: ignore[arg-type]
    write_map(path, data, geom, dtype=np.int8)


PER_CASE_FIRST = [
    "pair_id",
    "split",
    "loss",
    "setting",
    "gamma",
    "best_val",
    "status",
    "reason",
    "emdb_id",
    "pdb_id",
    "chain",
    "resolution",
    "bin",
    "n_ca_helix",
    "n_ca_sheet",
    "n_ca_other",
    "n_na",
]


def read_case_tables(
    split_tsv: str | os.PathLike, dataset_tsv: str | os.PathLike
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The split table and the dataset table (indexed by pair id), their required columns checked."""
    sp = read_tsv(split_tsv)
    for col in ("pair_id", "role"):
        if col not in sp.columns:
            raise ValueError(f"{split_tsv}: column {col!r} missing (have {', '.join(sp.columns)})")
    ds = read_tsv(dataset_tsv)
    if "pair_id" not in ds.columns or "path" not in ds.columns:
        raise ValueError(f"{dataset_tsv}: columns pair_id and path are required")
    return sp, ds.set_index("pair_id", drop=False)


def role_cases(sp: pd.DataFrame, role: str, split_tsv: str | os.PathLike) -> list[str]:
    """The sorted pair ids of one role of a split table; none is an error."""
    cases = sorted(sp.loc[sp["role"] == role, "pair_id"])
    if not cases:
        raise ValueError(f"{split_tsv}: no {role} cases")
    return cases


def add_pair_meta(row: dict[str, Any], ds: pd.DataFrame, pid: str) -> pd.Series | None:
    """Copy a pair's dataset columns (ids, resolution, bin, counts) into its per-case row; its record or None."""
    meta = ds.loc[pid] if pid in ds.index else None
    if meta is not None:
        for c in PER_CASE_FIRST[8:]:
            if c in ds.columns:
                row[c] = meta[c]
    return meta


def write_per_case(df: pd.DataFrame, out_tsv: str | os.PathLike) -> pd.DataFrame:
    """Write a per-case table with PER_CASE_FIRST's columns first; the table as written."""
    cols = [c for c in PER_CASE_FIRST if c in df.columns] + [c for c in df.columns if c not in PER_CASE_FIRST]
    df = df[cols]
    write_tsv(out_tsv, df, na_rep="NA")
    return df


def _row_loss(checkpoint: str | os.PathLike, trained: str | None, asked: str | None) -> str:
    """The loss the rows name: ``asked``, which must be the one the checkpoint names, if any."""
    if asked is not None and trained not in (None, asked):
        raise ValueError(f"{checkpoint}: a model trained with loss {trained}, evaluated as {asked}")
    if not (asked or trained):
        raise ValueError(f"{checkpoint}: the checkpoint names no loss; say which (loss=...)")
    return str(asked or trained)


def evaluate_split(
    checkpoint: str | os.PathLike,
    split_tsv: str | os.PathLike,
    dataset_tsv: str | os.PathLike,
    out_tsv: str | os.PathLike,
    pred_dir: str | os.PathLike,
    split: str | int = "0",
    role: str = "test",
    radius: float = 3.0,
    ties: str = "background",
    device: str = "auto",
    threads: int = 1,
    loss: str | None = None,
) -> pd.DataFrame:
    """Predict every ``role`` case of a split with one checkpoint; write per-case scores.

    The rows are labelled with ``loss`` (by default the loss the checkpoint names; a
    checkpoint that names another loss is an error). One unreadable pair is recorded (status
    ``failed`` and its reason) and the others go on; the run fails only when no case could be
    scored.
    """
    import torch

    from cryosse.infer import pick_device
    from cryosse.model import checkpoint_classes, load_checkpoint, require_classes

    torch.set_num_threads(max(1, int(threads)))
    dev = pick_device(device)
    model, meta = load_checkpoint(checkpoint, map_location=dev)
    n_classes = checkpoint_classes(meta)
    info = _loss_params(meta)
    loss = _row_loss(checkpoint, info["loss_name"], loss)
    sp, ds = read_case_tables(split_tsv, dataset_tsv)
    require_classes(meta, dataset_classes(ds.columns), checkpoint, f"the dataset {dataset_tsv}")
    cases = role_cases(sp, role, split_tsv)
    if "split" in meta and str(meta["split"]) != str(split):
        raise ValueError(
            f"{checkpoint}: trained on split {meta['split']}, but split {split} is being evaluated"
        )
    leaked = sorted(set(cases) & set(meta.get("train_pairs", []) or []))
    if leaked:
        raise ValueError(
            f"{checkpoint}: {len(leaked)} {role} case(s) of {split_tsv} were training pairs of this "
            f"model ({', '.join(leaked[:5])}); the split table and the model do not belong together"
        )
    pred_dir = Path(pred_dir)
    pred_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for pid in cases:
        row: dict[str, Any] = {
            "pair_id": pid,
            "split": str(split),
            "loss": loss,
            "setting": info["setting"],
            "gamma": info["gamma"],
            "best_val": info["best_val"],
        }
        meta_row = add_pair_meta(row, ds, pid)
        try:
            if meta_row is None:
                raise ValueError(f"{pid}: not in {dataset_tsv}")
            arrays = load_pair_arrays(Path(str(meta_row["path"])))
            pred = predict_labels(model, arrays["density"], dev)
            row.update(score_case(pred, arrays, radius=radius, ties=ties, n_classes=n_classes))
            write_prediction(pred_dir / f"{pid}.mrc", pred, arrays)
            row["status"], row["reason"] = "ok", ""
        except (ValueError, FileNotFoundError, OSError, RuntimeError) as exc:
            log.error("%s: evaluation failed: %s", pid, exc)
            row["status"], row["reason"] = "failed", str(exc)
        rows.append(row)
    df = pd.DataFrame(rows)
    if not (df["status"] == "ok").any():
        raise RuntimeError(
            f"{checkpoint}: no {role} case of {split_tsv} could be evaluated: "
            + "; ".join(df["reason"].astype(str))
        )
    return write_per_case(df, out_tsv)


# --------------------------------------------------------------------------- CLI


def _cmd_aggregate(args: Any) -> int:
    df = read_per_case(args.per_case)
    weights = None
    if args.weight_helix or args.weight_sheet:
        if not (args.weight_helix and args.weight_sheet):
            raise ValueError("give both --weight-helix and --weight-sheet")
        weights = {"helix": args.weight_helix, "sheet": args.weight_sheet}
    try:
        res = aggregate(df, weights=weights, n_boot=args.bootstrap, level=args.ci, seed=args.seed)
    except ValueError as exc:
        raise ValueError(f"{args.per_case}: {exc}") from exc
    percent = args.percent
    if percent is None:  # F1 in percent when any average exceeds 1
        vals = res[["helix", "sheet"]].to_numpy(float)
        percent = bool(np.isfinite(vals).any() and np.nanmax(vals) > 1.0)
    print(
        f"# {args.per_case}: {len(df)} cases; each F1 weighted by the true units in the column named under 'weights'"
    )
    cols = (
        ["name", "helix", "sheet", "mean"]
        + [c for c in res.columns if c.endswith(("_lo", "_hi"))]
        + ["weights"]
    )
    if args.format == "tsv":
        res[cols].to_csv(
            sys.stdout, sep="\t", index=False, float_format="%.1f" if percent else "%.4f", na_rep="NA"
        )
    else:
        fmt = "{:.1f}" if percent else "{:.3f}"
        print("\t".join(cols))
        for _, r in res.iterrows():
            vals = [("NA" if not np.isfinite(r[c]) else fmt.format(r[c])) for c in cols[1:-1]]
            print("\t".join([r["name"], *vals, r["weights"]]))
    return 0


def _cmd_evaluate(args: Any) -> int:
    df = evaluate_split(
        args.checkpoint,
        args.split_tsv,
        args.dataset,
        args.out,
        args.pred_dir,
        split=args.split,
        role=args.role,
        radius=args.radius,
        ties=args.ties,
        device=args.device,
        threads=args.threads,
        loss=args.loss,
    )
    ok = df[df["status"] == "ok"]
    print(
        f"{len(ok)} of {len(df)} cases scored; weighted voxel F1 "
        f"helix {weighted_mean(ok['f1_helix'], ok['vox_true_helix']):.3f} "
        f"sheet {weighted_mean(ok['f1_sheet'], ok['vox_true_sheet']):.3f}"
    )
    return 0


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "aggregate",
        help="weighted Table-1 row(s) from a per-case F1 table",
        description="Weight per-case F1 by the true units of each class (cases with NA weigh 0) and print "
        "one row per loss: helix, sheet, mean. Columns: a case id, true-unit counts per class "
        "(e.g. ca_helix, ca_sheet) and F1 columns {loss}_helix / {loss}_sheet.",
    )
    p.add_argument("per_case", help="TSV with one row per case ('#' lines are comments, NA = undefined)")
    p.add_argument("--weight-helix", help="column of true helix units (detected when omitted)")
    p.add_argument("--weight-sheet", help="column of true sheet units (detected when omitted)")
    boot = number(0, MAX_BOOTSTRAP, integer=True)
    p.add_argument("--bootstrap", type=boot, default=0, help="bootstrap resamples for an interval (0 = none)")
    p.add_argument(
        "--ci",
        type=number(0, 1, lo_open=True, hi_open=True),
        default=0.95,
        help="confidence level of the interval, in (0, 1) (default 0.95)",
    )
    p.add_argument("--seed", type=COUNT, default=0, help="seed of the bootstrap resampling (>= 0)")
    p.add_argument(
        "--percent",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="print with one decimal (F1 in percent); detected from the values when omitted",
    )
    p.add_argument(
        "--format", choices=["text", "tsv"], default="text", help="tab-separated text, or a TSV table"
    )
    p.set_defaults(func=_cmd_aggregate)
    paths.declare(p, inputs=["per_case"])

    e = subparsers.add_parser(
        "evaluate", help="predict and score the test cases of one split with one checkpoint"
    )
    e.add_argument("checkpoint", help="a cryosse checkpoint (a workflow's models/{split}/{loss}.pt)")
    e.add_argument("split_tsv", help="results/splits/split_{k}.tsv")
    e.add_argument("--dataset", required=True, help="results/dataset/dataset.tsv")
    e.add_argument("-o", "--out", required=True, help="per-case TSV to write")
    e.add_argument("--pred-dir", required=True, help="folder for predicted label maps (MRC)")
    e.add_argument("--split", default="0", help="split id recorded in the per-case table")
    e.add_argument("--loss", help="loss name recorded in the per-case table (default: the checkpoint's)")
    e.add_argument(
        "--role", default="test", choices=["train", "val", "test"], help="which cases of the split to score"
    )
    e.add_argument("--radius", type=POSITIVE, default=3.0, help="A around each CA for the residue vote")
    e.add_argument(
        "--ties",
        choices=TIE_RULES,
        default="background",
        help="residue vote ties: background, or the tied class nearest the CA",
    )
    e.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    e.add_argument("--threads", type=AT_LEAST_ONE, default=1, help="CPU threads for PyTorch")
    e.set_defaults(func=_cmd_evaluate)
    paths.declare(e, inputs=["checkpoint", "split_tsv", "dataset"], outputs=["out"], out_dirs=["pred_dir"])
