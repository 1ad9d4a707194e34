"""``cryosse predict``: the command line of :mod:`cryosse.predict`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cryosse import paths
from cryosse.argtypes import AT_LEAST_ONE, COUNT, NON_NEGATIVE, number, old_spelling, out_dir_option
from cryosse.infer import PRECISIONS
from cryosse.predict import (
    DEFAULT_OVERLAP,
    DEFAULT_SPACING_A,
    DEFAULT_TILE,
    DEFAULT_TRIM_A,
    MODEL_ENV,
    predict_map,
)


def _run(args: argparse.Namespace) -> int:
    s = predict_map(
        args.map,
        args.out,
        model=args.model,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        overlap=args.overlap,
        trim=args.trim,
        spacing=args.spacing,
        threads=args.threads,
        classes=args.classes,
        contour=args.contour,
        resolution=args.resolution,
    )
    full = s["full"]
    print(
        f"{args.map}: helix {full['helix_voxels']} voxels ({full['helix_volume_A3']:.0f} A^3),"
        f" sheet {full['sheet_voxels']} voxels ({full['sheet_volume_A3']:.0f} A^3)"
        + (
            f", nucleic acid {full['nucleic_voxels']} voxels ({full['nucleic_volume_A3']:.0f} A^3)"
            if "nucleic_voxels" in full
            else ""
        )
        + ";"
        f" {s['precision']} on {s['device']}, {s['timing_s']['total']:.1f} s."
        f" Outputs in {args.out}; view in ChimeraX: open {Path(args.out) / 'chimerax.py'}"
    )
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="segment helices and sheets in a cryo-EM map",
        description=(
            "Predict helix and sheet regions of a cryo-EM map (MRC/CCP4, gzip too, any voxel size,"
            " origin or axis order). Outputs overlay the input in ChimeraX: binary masks helix.mrc,"
            " sheet.mrc, probabilities helix_prob.mrc, sheet_prob.mrc, the same with --trim A removed"
            " from each face (*_trimmed.mrc), summary.json and chimerax.py (opens them in ChimeraX)."
        ),
    )
    p.add_argument("map", help="input map (.mrc, .map, .ccp4, optionally .gz)")
    p.add_argument(
        "--checkpoint",
        dest="model",
        default=None,
        help=f"network checkpoint (.pt), such as a workflow run's models/{{split}}/{{loss}}.pt. Default: ${MODEL_ENV},"
        " else the model shipped with cryosse (docs/model_card.md)",
    )
    out_dir_option(p, "output folder (created; existing files of the same names are replaced)")
    old_spelling(p, "--model", "--checkpoint", "model")
    p.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda when available"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16 on CUDA (fp16 on older GPUs); on a CPU, fp32 or bf16, whichever runs faster"
        " here (timed on a small box: CPU flags do not tell). int8 (CPU only): int8 weights and"
        " activations calibrated on the map's densest 32^3 cube, 2-3x faster than fp32; labels differ from"
        " fp32 on a few voxels in a thousand",
    )
    _add_grid_options(p)
    p.add_argument(
        "--classes",
        type=int,
        choices=(3, 4),
        default=None,
        help="refuse a checkpoint with another class count (4: with nucleic acids, writes nucleic.mrc);"
        " default: the checkpoint's",
    )
    p.set_defaults(func=_run)
    paths.declare(p, inputs=["map", "model"], out_dirs=["out"])


def _add_grid_options(p: argparse.ArgumentParser) -> None:
    """Tiles, trimming, the grid, threads and what is known of the map (contour, resolution)."""
    p.add_argument(
        "--tile",
        type=COUNT,
        default=DEFAULT_TILE,
        help=f"tile edge in 1 A voxels for maps with more than tile^3 voxels (0 = always one pass; default {DEFAULT_TILE})",
    )
    p.add_argument(
        "--overlap",
        type=COUNT,
        default=DEFAULT_OVERLAP,
        help=f"overlap of neighbouring tiles in voxels (default {DEFAULT_OVERLAP})",
    )
    p.add_argument(
        "--trim",
        type=NON_NEGATIVE,
        default=DEFAULT_TRIM_A,
        help=f"A removed from each face for the *_trimmed outputs (default {DEFAULT_TRIM_A:g}, the authors' padding)",
    )
    p.add_argument(
        "--spacing",
        type=number(0.25, 4.0),
        default=DEFAULT_SPACING_A,
        help=f"grid the network runs on, A (default {DEFAULT_SPACING_A:g}, as trained)",
    )
    p.add_argument(
        "--threads",
        type=AT_LEAST_ONE,
        default=None,
        help="CPU threads for PyTorch (default: PyTorch's choice)",
    )
    p.add_argument(
        "--contour",
        type=number(),
        default=None,
        help="the map's contour level (e.g. EMDB's recommended one): voxels below it are background in"
        " every output, and the ChimeraX script shows the map at it (default: none; the script then"
        " shows mean + 3 sd)",
    )
    p.add_argument(
        "--resolution",
        type=number(0, lo_open=True),
        default=None,
        help="the map's resolution in A (e.g. EMDB's): a warning when it is far from the 5-10 A the model was"
        " trained for (the voxel size is always checked)",
    )
