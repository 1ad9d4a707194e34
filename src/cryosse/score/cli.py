"""``cryosse score``: the command line of :mod:`cryosse.score` (and the pair it can build from a
map, a model and a chain, with the dataset stage's code; the workflow's scoring rule does not
need that, so it lives here)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from cryosse import paths
from cryosse.argtypes import POSITIVE, number, old_spelling
from cryosse.evaluate import TIE_RULES, load_pair_arrays
from cryosse.io import json_ready, write_json
from cryosse.score.external import SCORED_CLASS_COUNT, score_prediction
from cryosse.score.prediction import read_prediction
from cryosse.score.reference import Reference, load_pair_reference, pair_reference, truth_reference

log = logging.getLogger(__name__)


def build_reference_pair(
    map_path: str | os.PathLike,
    model_path: str | os.PathLike,
    chain: str,
    config: str | os.PathLike | None = None,
    engine: str | None = None,
) -> tuple[dict, str]:
    """Build the pair of ``chain`` as the dataset stage does (its padding, grid, labels, ``inside``
    mask) in a temporary folder; returns its arrays and pair id. Kept whatever its quality bin,
    size or share of the box within the map: a chain to score, not a training pair."""
    import dataclasses

    from cryosse import config as config_file
    from cryosse.dataset.cli import map_entry_id
    from cryosse.dataset.crop import contour_level
    from cryosse.dataset.entry import load_inputs
    from cryosse.dataset.pairs import DatasetParams, PairRejected, build_pair

    full = config_file.load([config] if config else [])
    params = DatasetParams.from_config({**full["dataset"], "classes": SCORED_CLASS_COUNT})
    params = dataclasses.replace(
        params,
        keep_bins=(1, 2, 3, 4),
        require_helix=False,
        min_box_inside=0.0,
        min_residues=1,
        dssp_engine=engine or params.dssp_engine,
    )
    dmap, model, classes = load_inputs(map_path, model_path, params.dssp_engine)
    contour, source = contour_level(dmap, None, params.contour_sd)
    ids = {
        "emdb_id": map_entry_id(map_path),
        "pdb_id": Path(model_path).name.split(".")[0].upper(),
        "resolution": None,
    }
    with tempfile.TemporaryDirectory(prefix="cryosse-score-") as tmp:
        try:
            row = build_pair(
                dmap, model, classes, chain, Path(tmp) / "pair", params, contour, source, ids, write_mrc=False
            )
        except PairRejected as exc:
            raise ValueError(f"{model_path}: chain {chain}: no labels can be made: {exc}") from exc
        arrays = load_pair_arrays(Path(tmp) / "pair")
    return arrays, str(row["pair_id"])


def _percent(f1: float) -> str:
    """An F1 as the tables print it: percent, one decimal (the JSON keeps the fraction)."""
    return "NA" if not math.isfinite(f1) else f"{100 * f1:.1f}"


def format_result(res: dict[str, Any]) -> str:
    """A readable summary: what was scored against what, then one line per class."""
    s = res["scores"]
    files = ", ".join(f"{Path(f['path']).name} ({f['kind']})" for f in res["prediction"]["files"])
    lines = [
        f"case {res['pair_id']}: {res['region']}, {res['scored_voxels']} voxels scored"
        + (
            ""
            if res["region_within_map"] >= 1
            else f" ({100 * res['region_within_map']:.1f}% of the {res['region']} lies within the map; the rest is not scored)"
        ),
        f"truth: {res['truth'].get('what') or res['truth']['kind'] + ' ' + res['truth'].get('path', '')}",
        f"prediction: {files}; covers {100 * res['coverage']:.1f}% of the scored voxels (beyond it: background)",
    ]
    if res["prediction"]["overlap_voxels"]:
        lines.append(
            f"helix and sheet overlap in {res['prediction']['overlap_voxels']} voxels: "
            f"{res['prediction']['overlap_rule']}"
        )
    for note in res["truth"].get("notes", []):
        lines.append(f"note: {note}")
    residues = "res_f1_helix" in s
    head = f"{'class':<7}{'voxel F1 (%)':>13}{'TP':>8}{'FP':>8}{'FN':>8}"
    if residues:
        head += f"{'residue F1 (%)':>16}{'residues':>10}"
    lines.append(head)
    for c in ("helix", "sheet"):
        line = f"{c:<7}{_percent(s[f'f1_{c}']):>13}" + "".join(
            f"{s[f'vox_{k}_{c}']:>8d}" for k in ("tp", "fp", "fn")
        )
        if residues:
            line += f"{_percent(s[f'res_f1_{c}']):>16}{s[f'res_true_{c}']:>10d}"
        lines.append(line)
    return "\n".join(lines)


def score_files(
    helix: str | os.PathLike | None = None,
    sheet: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    pair: str | os.PathLike | None = None,
    map_path: str | os.PathLike | None = None,
    model: str | os.PathLike | None = None,
    chain: str | None = None,
    truth: str | os.PathLike | None = None,
    listed_only: bool = False,
    whole_box: bool = False,
    threshold: float = 0.5,
    helix_value: int = 1,
    sheet_value: int = 2,
    radius: float = 3.0,
    ties: str = "background",
    config: str | os.PathLike | None = None,
    engine: str | None = None,
) -> dict[str, Any]:
    """Score prediction files against a pair's labels or a label map; returns :func:`score_prediction`'s record."""
    if ties not in TIE_RULES:
        raise ValueError(f"residue tie rule {ties!r}; expected one of {', '.join(TIE_RULES)}")
    if (model is None) != (chain is None):
        raise ValueError("--model and --chain go together (with --map): they make our labels for that chain")
    if model is not None and (map_path is None or pair is not None):
        raise ValueError("--model and --chain need --map (and no --pair): the pair is built from the three")
    base: Reference | None = None
    if pair is not None:
        base = load_pair_reference(pair, whole_box)
    elif model is not None:
        arrays, pid = build_reference_pair(map_path, model, str(chain), config, engine)  # type: ignore[arg-type]
        base = pair_reference(arrays, pid, whole_box, f"{map_path} + {model} chain {chain}")
    if truth is not None:
        is_text = Path(truth).suffix.lower() in (".txt", ".csv", ".tsv")
        if map_path is not None and not is_text and model is None:
            raise ValueError(
                "--map gives the grid of a voxel-label text file (or builds a pair with --model and "
                f"--chain); {truth} is a label map with its own grid"
            )
        if base is None and not whole_box:
            log.info("no pair given: the truth's whole grid is scored (there is no centre box)")
        ref = truth_reference(truth, base, map_path, listed_only)
    else:
        if listed_only:
            raise ValueError("--listed-only applies to a voxel-label text file given with --truth")
        if base is None:
            raise ValueError(
                "nothing to score against: give --pair, or --map with --model and --chain, "
                "or a label map with --truth"
            )
        if map_path is not None and model is None:
            raise ValueError(
                "--map without --model and --chain serves only a voxel-label text file (--truth)"
            )
        ref = base
    pred = read_prediction(ref, helix, sheet, labels, threshold, helix_value, sheet_value)
    return score_prediction(pred, ref, radius, ties)


# --------------------------------------------------------------------------- CLI


def _cmd_score(args: Any) -> int:
    if args.labels is None and (args.helix is None) != (args.sheet is None):
        given, missing = ("--helix", "--sheet") if args.sheet is None else ("--sheet", "--helix")
        raise ValueError(
            f"{given} without {missing}: give both maps (or one --labels map); a class without its map"
            " would be scored as all missed"
        )
    res = score_files(
        helix=args.helix,
        sheet=args.sheet,
        labels=args.labels,
        pair=args.pair,
        map_path=args.map,
        model=args.model,
        chain=args.chain,
        truth=args.truth,
        listed_only=args.listed_only,
        whole_box=args.whole_box,
        threshold=args.threshold,
        helix_value=args.helix_value,
        sheet_value=args.sheet_value,
        radius=args.radius,
        ties=args.ties,
        config=args.config,
        engine=args.engine,
    )
    if args.json:
        write_json(args.json, json_ready(res, infinities=True))
    print(format_result(res))
    return 0


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score another tool's helix/sheet prediction against our labels or a label map",
        description="Score one prediction (helix and sheet maps, masks or probabilities, or one label map; any "
        "grid, voxel size and origin) against our labels of a chain (a pair folder, or a pair built from "
        "--map, --model and --chain) or against a label map (--truth), exactly as the evaluation stage "
        "scores our networks: voxel F1 per class in the centre box (or the whole box), the box's voxels "
        "beyond its map left out, and residue F1 by the vote of the voxels near each CA. Voxels beyond a "
        "cropped prediction count as background; the share covered is reported.",
    )
    pred = p.add_argument_group("prediction (helix and sheet maps, or one label map)")
    pred.add_argument("--helix", help="helix map: a 0/1 mask or a probability map (MRC/CCP4, optionally .gz)")
    pred.add_argument("--sheet", help="sheet map: a 0/1 mask or a probability map")
    pred.add_argument(
        "--labels", help="one label map holding helix and sheet values (instead of --helix/--sheet)"
    )
    pred.add_argument(
        "--helix-value", type=int, default=1, help="the value meaning helix in --labels (default 1)"
    )
    pred.add_argument(
        "--sheet-value", type=int, default=2, help="the value meaning sheet in --labels (default 2)"
    )
    pred.add_argument(
        "--threshold",
        type=number(),
        default=0.5,
        help="probability maps: a voxel is on at or above this (default 0.5; masks: non-zero is on). "
        "Where helix and sheet are both on, the higher probability wins; with a mask involved, "
        "helix wins",
    )
    _add_reference_options(p)
    _add_scoring_options(p)
    p.set_defaults(func=_cmd_score)
    paths.declare(
        p, inputs=["helix", "sheet", "labels", "pair", "map", "model", "truth", "config"], outputs=["json"]
    )


if __name__ == "__main__":  # pragma: no cover
    from cryosse.cli import main

    sys.exit(main(["score", *sys.argv[1:]]))


def _add_reference_options(p: argparse.ArgumentParser) -> None:
    ref = p.add_argument_group("reference (our labels of a chain, or a label map)")
    ref.add_argument("--pair", help="a pair folder written by the dataset stage (or build-pair)")
    ref.add_argument(
        "--map",
        help="density map: with --model and --chain, our labels are made for that chain; "
        "alone, the grid a voxel-label text file (--truth) indexes",
    )
    ref.add_argument("--model", help="fitted atomic model (PDB or mmCIF) for --map")
    ref.add_argument("--chain", help="author chain id (case-sensitive) whose labels are the truth")
    ref.add_argument(
        "--truth",
        help="a label map instead of our labels: MRC with 0 background, 1 helix, 2 sheet, "
        "or the DeepSSETracer authors' voxel-label text file (i,j,k,density,label on the grid of --map). "
        "Residue F1 is then not scored (a label map has no residue classes)",
    )
    ref.add_argument(
        "--listed-only",
        action="store_true",
        help="with a voxel-label text file: score only the voxels it lists (those with density); "
        "by default the others count as background, as the DeepSSETracer authors count them",
    )
    ref.add_argument(
        "--whole-box",
        action="store_true",
        help="score the whole box instead of its centre box (the authors' published figures are "
        "whole-box); without a pair, the truth's whole grid is always scored",
    )
    ref.add_argument(
        "--config",
        default=None,
        help="config YAML whose dataset section builds the pair from --map/--model/--chain "
        "(padding, grid, label radius; default: the built-in defaults)",
    )
    ref.add_argument(
        "--engine",
        choices=["pydssp", "mkdssp"],
        default=None,
        help="DSSP engine for --model (default: the config's)",
    )


def _add_scoring_options(p: argparse.ArgumentParser) -> None:
    sc = p.add_argument_group("scoring and output")
    sc.add_argument(
        "--radius", type=POSITIVE, default=3.0, help="A around each CA for the residue vote (default 3)"
    )
    sc.add_argument(
        "--ties",
        choices=TIE_RULES,
        default="background",
        help="residue vote ties: background, or the tied class nearest the CA",
    )
    sc.add_argument(
        "-o",
        "--out",
        dest="json",
        default=None,
        help="also write every figure (scores, coverage, truth used, files read) to this JSON file",
    )
    old_spelling(sc, "--json", "--out", "json")
