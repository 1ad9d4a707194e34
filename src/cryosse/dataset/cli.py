"""``cryosse build-pair``: one map/label pair from a map, a model and a chain."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from cryosse import paths
from cryosse.argtypes import FRACTION, POSITIVE, number, out_dir_option


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "build-pair",
        help="build one map/label pair (quality, box crop, DSSP labels) for a chain",
        description="Steps 2-5 of the dataset stage for one chain: quality scores and bin, "
        "the normalised 1 A box crop, DSSP voxel labels, and the pair folder "
        "(map.mrc, labels.mrc, arrays.npz, record.json). Both MRC files overlay the model in ChimeraX.",
    )
    p.add_argument("--map", required=True, help="density map (MRC/CCP4, optionally .gz)")
    p.add_argument("--model", required=True, help="fitted atomic model (PDB or mmCIF, optionally .gz)")
    p.add_argument("--chain", required=True, help="author chain id of the central chain (case-sensitive)")
    out_dir_option(
        p, "pair folder to write; an existing one is replaced only if it is a pair folder written by cryosse"
    )
    p.add_argument(
        "--contour",
        type=POSITIVE,
        default=None,
        help="author contour level; default: mean + contour_sd sd of the full map (estimated)",
    )
    p.add_argument(
        "--resolution",
        type=number(0, 30, lo_open=True),
        default=None,
        help="map resolution in A, recorded in the pair (0-30; the method is for 5-10 A)",
    )
    p.add_argument(
        "--emdb-id",
        default=None,
        help="EMDB id to record (default: from the map's file name, emd_3488.map -> EMD-3488, else its stem);"
        " with the PDB id and chain it names the pair",
    )
    p.add_argument("--pdb-id", default="", help="PDB id to record (default: the model file's stem)")
    p.add_argument(
        "--config",
        default=None,
        help="a workflow config file (checked as the workflow checks it); its dataset: section and "
        "classes set the parameters (default: the built-in defaults, those of config/config.yaml)",
    )
    p.add_argument(
        "--engine", choices=["pydssp", "mkdssp"], default=None, help="DSSP engine (overrides the config)"
    )
    p.add_argument(
        "--classes",
        type=int,
        choices=[3, 4],
        default=None,
        help="3 (the paper) or 4 (nucleic acids are class 3); default: the config's classes, else 3",
    )
    p.add_argument(
        "--keep-any-bin",
        action="store_true",
        help="write the pair even when its quality bin is not kept (the bin is still recorded)",
    )
    p.add_argument(
        "--min-box-inside",
        type=FRACTION,
        default=None,
        help="least share of the padded box that must lie inside the map (default: the config's, 0.5);"
        " 0 keeps a tight crop around the chain, its voxels beyond the map left out of the scores",
    )
    p.set_defaults(func=_build_pair)
    paths.declare(p, inputs=["map", "model", "config"], out_dirs=["out"])


def map_entry_id(path: str | Path) -> str:
    """The EMDB id in a map's file name (``emd_3488.map.gz``, ``EMD-3488.mrc``), else the name without extensions."""
    name = Path(path).name
    m = re.match(r"(?i)emd[_-]?(\d{4,})", name)
    return f"EMD-{m.group(1)}" if m else Path(name.removesuffix(".gz")).stem


def _build_pair(args: argparse.Namespace) -> int:
    import dataclasses

    from cryosse.dataset.crop import contour_level
    from cryosse.dataset.entry import load_inputs
    from cryosse.dataset.pairs import DatasetParams, PairRejected, build_pair, check_pair_output

    check_pair_output(args.out, (args.map, args.model))  # before any work: never replace what is not ours
    from cryosse import config as config_file

    full = config_file.load([args.config] if args.config else [])  # the workflow's schema and rules
    params = DatasetParams.from_config({**full["dataset"], "classes": args.classes or full["classes"]})
    if args.engine:
        params = dataclasses.replace(params, dssp_engine=args.engine)
    if args.keep_any_bin:
        params = dataclasses.replace(params, keep_bins=(1, 2, 3, 4))
    if args.min_box_inside is not None:
        params = dataclasses.replace(params, min_box_inside=args.min_box_inside)
    dmap, model, classes = load_inputs(args.map, args.model, params.dssp_engine)
    contour, source = contour_level(dmap, args.contour, params.contour_sd)
    pdb_id = args.pdb_id or Path(args.model).name.split(".")[0].upper()
    ids = {"emdb_id": args.emdb_id or map_entry_id(args.map), "pdb_id": pdb_id, "resolution": args.resolution}
    try:
        row = build_pair(dmap, model, classes, args.chain, args.out, params, contour, source, ids)
    except PairRejected as exc:
        scores = {k: round(v, 3) if isinstance(v, float) else v for k, v in exc.scores.items()}
        raise ValueError(
            f"chain {args.chain}: not a usable pair: {exc} {json.dumps(scores) if scores else ''}".strip()
        ) from exc
    keys = (
        "pair_id",
        "bin",
        "cyl_score",
        "pr_diff",
        "n_ca_helix",
        "n_ca_sheet",
        "n_ca_other",
        "n_na",
        "nx",
        "ny",
        "nz",
    )
    print(
        json.dumps(
            {k: row[k] for k in keys if k in row}
            | {"contour": contour, "contour_source": source, "path": row["path"]}
        )
    )
    return 0
