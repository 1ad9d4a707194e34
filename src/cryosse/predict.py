"""``cryosse predict``: helix and sheet regions of any user's map, on the map's own frame.

The map (any MRC/CCP4 file, gzip too, any axis order, ORIGIN or NSTART, any
voxel size) is resampled onto a 1 A grid that covers it, normalised as the
training boxes were (SPEC 4), run through the network by the fast path of
:mod:`cryosse.infer` (tiles with blending for large maps) and the class
probabilities are resampled back onto the input's grid, so every output
overlays the input in ChimeraX. Written into the output folder:

* ``helix.mrc``, ``sheet.mrc``: binary masks (int8, 1 = the class wins the argmax
  of background / helix / sheet probabilities);
* ``helix_prob.mrc``, ``sheet_prob.mrc``: class probabilities (float32; the
  background probability is one minus their sum);
* ``*_trimmed.mrc``: the same four with ``trim`` A (17 A, the authors' padding)
  removed from each face, the region the network sees with full context;
* ``summary.json``: voxel counts and volumes, timing, model, device, precision;
* ``chimerax.py``: opens the map with helix (yellow) and sheet (cyan) surfaces in
  ChimeraX (any session; the folder may be moved);
* with a 4-class checkpoint (``classes: 4``), ``nucleic.mrc`` and
  ``nucleic_prob.mrc`` (and trimmed) for nucleic acids too (orange in ChimeraX),
  the masks then being the argmax over all four classes.

Nothing is written unless the whole prediction succeeds: outputs are staged in
a hidden folder inside the output folder and moved into place at the end.

Model: ``--model``; else the ``CRYOSSE_MODEL`` environment variable; else the model
shipped inside the package (``cryosse/data/default_model.pt``, pretrained on simulated
maps of real structures by ``config/pretrain.yaml``; docs/model_card.md), so predict
works right after ``pip install``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryosse import __version__
from cryosse.argtypes import AT_LEAST_ONE, COUNT, NON_NEGATIVE, number
from cryosse.classes import check_classes
from cryosse.geometry import DensityMap, MapGeometry, read_map, resample, write_map
from cryosse.infer import (
    PRECISIONS,
    calibration_cube,
    normalise_density,
    pick_device,
    plan_tiles,
    prepare_model,
    sliding_window_probabilities,
)
from cryosse.io import file_mode, remove_stale_staging, staging_dir, write_json
from cryosse.model import load_checkpoint, require_classes, shipped_model_path

log = logging.getLogger(__name__)

MODEL_ENV = "CRYOSSE_MODEL"
#: TOOL: the authors trim 17 voxels (17 A at 1 A) from each face for their "cropped" output
DEFAULT_TRIM_A = 17.0
#: PAPER: the network was trained on 1 A grids
DEFAULT_SPACING_A = 1.0
#: tile edge (voxels of the 1 A grid) and overlap: a 128^3 bf16 tile of the width-1
#: network needs about 1.7 GB; maps with at most 128^3 voxels run in one pass
DEFAULT_TILE = 128
DEFAULT_OVERLAP = 32
#: refuse 1 A grids beyond this many voxels (about 12 bytes each are held in memory)
MAX_GRID_VOXELS = 1024**3
#: what the models were made for: the paper's 5-10 A maps; the shipped model's simulated maps
#: were sampled at 0.8-2.5 A voxels (config/pretrain.yaml). Outside these, predict warns.
TRAINED_RESOLUTION_A = (5.0, 10.0)
TRAINED_MAX_VOXEL_A = 2.5


def input_warnings(voxel_size: tuple[float, float, float], resolution: float | None) -> list[str]:
    """What makes a map unlike those the model was trained on (empty when nothing does)."""
    out = []
    vs = max(voxel_size)
    lo, hi = TRAINED_RESOLUTION_A
    if vs > TRAINED_MAX_VOXEL_A:
        out.append(
            f"voxels of {vs:.2f} A hold no detail finer than {2 * vs:.1f} A (Nyquist); the model was trained on"
            f" {lo:g}-{hi:g} A maps sampled at <= {TRAINED_MAX_VOXEL_A:g} A: expect little of the segmentation"
        )
    if resolution is not None and not lo - 1.0 <= resolution <= hi + 2.0:
        out.append(
            f"a {resolution:g} A map is outside the {lo:g}-{hi:g} A the model was trained for:"
            + (" blur it to 6-8 A first (e.g. ChimeraX 'volume gaussian')" if resolution < lo
               else " helices and sheets are rarely resolved there")  # fmt: skip
        )
    return out


CLASS_NAMES_ALL = ("helix", "sheet", "nucleic")  # class 3 of a 4-class network: nucleic acid
#: every file a prediction can write: an earlier prediction's files that the new one does not
#: write again are removed, so one folder never mixes two predictions
OUTPUT_NAMES = frozenset(
    f"{c}{kind}{trim}.mrc" for c in CLASS_NAMES_ALL for kind in ("", "_prob") for trim in ("", "_trimmed")
) | {"chimerax.py", "chimerax.cxc", "summary.json"}  # .cxc: written by earlier versions
STAGING_PREFIX = "cryosse-predict"


#: voxel sizes (A) of real cryo-EM maps; outside, the header is damaged or the file is no map
VOXEL_SIZE_RANGE = (0.2, 20.0)
#: the shipped model saw maps of 0.8-2.5 A voxels (resampled to 1 A) at 5-10 A resolution
TRAINED_VOXEL_MAX = 2.5


def check_voxel_size(dmap: DensityMap) -> None:
    """Refuse a voxel size no cryo-EM map has; warn about one far from what the model was trained on."""
    vs = np.asarray(dmap.geometry.voxel_size, float)
    lo, hi = VOXEL_SIZE_RANGE
    if not np.all(np.isfinite(vs)) or vs.min() < lo or vs.max() > hi:
        raise ValueError(
            f"{dmap.path}: voxel size {tuple(round(float(v), 4) for v in vs)} A is outside {lo:g}-{hi:g} A,"
            " not that of a cryo-EM map (a damaged header, or a cell given in the wrong unit)"
        )
    if vs.max() > TRAINED_VOXEL_MAX:
        log.warning(
            "%s: %.2f A voxels are coarser than any map the model was trained on (<= %.1f A); a map this coarse"
            " rarely resolves helices and sheets, so treat the segmentation with suspicion",
            dmap.path, vs.max(), TRAINED_VOXEL_MAX,
        )


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """``--model``, else ``$CRYOSSE_MODEL``, else the model shipped with the package.

    The shipped model must be there: a missing one is an error naming the file (the
    install is damaged), never a silent fallback.
    """
    if model is not None:
        return Path(model)
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    shipped = shipped_model_path()
    if not shipped.is_file():
        raise FileNotFoundError(
            f"{shipped}: the model shipped with cryosse is missing (a damaged install); reinstall "
            f"cryosse, or pass --model CKPT (e.g. results/models/0/FL_DL.pt from the workflow)"
        )
    return shipped


def prediction_grid(geom: MapGeometry, spacing: float = DEFAULT_SPACING_A) -> MapGeometry:
    """The ``spacing`` grid that starts at the input's first voxel centre and covers its last.

    When the input already has that spacing, this is the input's own grid.
    """
    if spacing <= 0:
        raise ValueError(f"spacing must be positive, got {spacing}")
    if np.allclose(geom.voxel_size, spacing, rtol=1e-5, atol=0):
        return MapGeometry(geom.shape, (spacing, spacing, spacing), geom.origin)
    extent = geom.upper - geom.lower
    n_xyz = np.ceil(extent / spacing - 1e-6).astype(int) + 1
    return MapGeometry(
        (int(n_xyz[2]), int(n_xyz[1]), int(n_xyz[0])),
        (spacing, spacing, spacing),
        tuple(float(v) for v in geom.origin),  # type: ignore[arg-type]
    )


def trim_counts(geom: MapGeometry, trim: float) -> tuple[int, int, int]:
    """Voxels to remove from each face along x, y, z so that at least ``trim`` A go."""
    return tuple(int(math.ceil(trim / v - 1e-6)) if trim > 0 else 0 for v in geom.voxel_size)  # type: ignore[return-value]


def trimmed_geometry(geom: MapGeometry, n_xyz: tuple[int, int, int]) -> MapGeometry | None:
    """The geometry left after removing ``n_xyz`` voxels per face; None when nothing is left."""
    nx, ny, nz = n_xyz
    shape = (geom.shape[0] - 2 * nz, geom.shape[1] - 2 * ny, geom.shape[2] - 2 * nx)
    if min(shape) < 1:
        return None
    origin = tuple(o + n * v for o, n, v in zip(geom.origin, n_xyz, geom.voxel_size, strict=True))
    return MapGeometry(shape, geom.voxel_size, origin)  # type: ignore[arg-type]


def labels_from_probabilities(*probs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Binary masks of the classes whose probabilities are given (helix, sheet[, nucleic]):
    the argmax of (background = 1 - their sum, helix, sheet[, nucleic]), ties to the lower class."""
    background = 1.0 - probs[0]
    for p in probs[1:]:
        background = background - p
    masks = []
    for k, p in enumerate(probs):
        win = p > background
        for j, q in enumerate(probs):
            if j != k:
                win &= (p > q) if j < k else (p >= q)
        masks.append(win)
    return tuple(masks)


@dataclass
class Prediction:
    """Probabilities and masks on the input's frame, with what made them."""

    geometry: MapGeometry  # the input's
    grid: MapGeometry  # the 1 A grid the network saw
    helix_prob: np.ndarray
    sheet_prob: np.ndarray
    helix: np.ndarray  # bool
    sheet: np.ndarray  # bool
    n_tiles: int
    timing: dict[str, float]
    nucleic_prob: np.ndarray | None = None  # 4-class checkpoints only
    nucleic: np.ndarray | None = None


def segment(
    dmap: DensityMap,
    model: torch.nn.Module,
    device: str | torch.device = "auto",
    precision: str = "auto",
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    spacing: float = DEFAULT_SPACING_A,
    contour: float | None = None,
) -> tuple[Prediction, dict[str, Any]]:
    """Run the network over a map; return the prediction on the map's frame and run details.

    ``contour``: voxels of the input map below this level are background in every output.
    """
    timing: dict[str, float] = {}
    geom = dmap.geometry
    check_voxel_size(dmap)
    grid = prediction_grid(geom, spacing)
    n_grid = int(np.prod(grid.shape))
    if n_grid > MAX_GRID_VOXELS:
        raise ValueError(
            f"{dmap.path}: the map spans {grid.shape} voxels at {spacing} A ({n_grid:,} voxels);"
            " crop the region of interest first (e.g. `volume copy subregion` in ChimeraX)"
        )
    same_grid = (
        grid.shape == geom.shape
        and np.allclose(grid.origin, geom.origin)
        and np.allclose(grid.voxel_size, geom.voxel_size)
    )
    t0 = time.perf_counter()
    box = np.asarray(dmap.data, np.float32) if same_grid else resample(dmap, grid)
    try:
        density = normalise_density(box)
    except ValueError as exc:
        raise ValueError(f"{dmap.path}: {exc}") from exc
    del box
    timing["resample_normalise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fast = prepare_model(model, device, precision, calibration=calibration_cube(density) if precision == "int8" else None)
    timing["prepare_model"] = time.perf_counter() - t0  # folding; with auto, timing; with int8, calibration
    plan = plan_tiles(density.shape, tile, overlap)
    log.info(
        "%s: %s voxels at %g A, %d tile(s), %s on %s",
        dmap.path,
        "x".join(map(str, density.shape)),
        spacing,
        plan.n_tiles,
        fast.dtype,
        fast.device,
    )
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=plan.n_tiles, desc="tiles", unit="tile", disable=plan.n_tiles < 2, file=sys.stderr,
               mininterval=2.0)  # fmt: skip

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)  # done/total, elapsed and the ETA

    n_classes = int(model.model_args["n_classes"])  # type: ignore[index]
    classes = tuple(range(1, n_classes))  # background is one minus their sum
    try:
        probs = sliding_window_probabilities(fast, density, tile, overlap, classes=classes, progress=progress)
    finally:
        bar.close()
    if fast.device.type == "cuda":
        torch.cuda.synchronize()
    timing["network"] = time.perf_counter() - t0
    del density

    t0 = time.perf_counter()
    if same_grid:
        back = [probs[i] for i in range(len(classes))]
    else:
        back = [resample(DensityMap(probs[i], grid, path=f"{CLASS_NAMES_ALL[i]} probabilities"), geom)
                for i in range(len(classes))]  # fmt: skip
        del probs
    if contour is not None:  # below the user's contour level: background, whatever the network says
        low = np.asarray(dmap.data) < contour
        for b in back:
            b[low] = 0.0
    masks = labels_from_probabilities(*back)
    timing["resample_back"] = time.perf_counter() - t0
    details = {
        "device": str(fast.device),
        "precision": fast.precision,
        "precision_timed_s": fast.timed,  # with --precision auto on a CPU: s per 48^3 box, the faster won
        "threads": torch.get_num_threads(),
        "tiling": {
            "tile": tile,
            "overlap": overlap,
            "n_tiles": plan.n_tiles,
            "tile_shape_zyx": list(plan.sizes),
        },
    }
    pred = Prediction(geom, grid, back[0], back[1], masks[0], masks[1], plan.n_tiles, timing)
    if n_classes == 4:
        pred.nucleic_prob, pred.nucleic = back[2], masks[2]
    return pred, details


def _counts(helix: np.ndarray, sheet: np.ndarray, geom: MapGeometry, nucleic: np.ndarray | None = None) -> dict[str, Any]:
    vol = float(np.prod(geom.voxel_size))
    nh, ns = int(helix.sum()), int(sheet.sum())
    out = {
        "geometry": geom.to_dict(),
        "voxels": int(np.prod(geom.shape)),
        "helix_voxels": nh,
        "sheet_voxels": ns,
        "helix_volume_A3": nh * vol,
        "sheet_volume_A3": ns * vol,
    }
    if nucleic is not None:
        out.update(nucleic_voxels=int(nucleic.sum()), nucleic_volume_A3=int(nucleic.sum()) * vol)
    return out


CHIMERAX_TEMPLATE = """\
# cryosse predict: helix (yellow) and sheet (cyan) regions over the input map, in ChimeraX.
# Open it in any session, busy or new: `open /path/to/chimerax.py` in ChimeraX's command
# line, or `chimerax chimerax.py`. It finds the outputs beside itself (the folder may be
# moved) and the input map where it was, relative to this folder or by its absolute path.
import os

from chimerax.core.commands import run

HERE = os.path.dirname(os.path.abspath(__file__))
MAP_RELATIVE = {map_rel!r}
MAP_ABSOLUTE = {map_abs!r}
MAP_LEVEL = {level!r}  # {level_note}
MASKS = {masks!r}


def _open(path, style):
    models = run(session, "open " + _quote(path) + " format mrc")  # noqa: F821 (ChimeraX's session)
    spec = " ".join(m.atomspec for m in models)
    run(session, "volume " + spec + " " + style)  # noqa: F821
    return models


def _quote(path):
    return '"' + path.replace('"', '\\\\"') + '"'


for candidate in (os.path.join(HERE, MAP_RELATIVE) if MAP_RELATIVE else None, MAP_ABSOLUTE):
    if candidate and os.path.exists(candidate):
        _open(candidate, "style mesh level %g" % MAP_LEVEL)
        break
else:
    session.logger.warning("cryosse: input map not found at %s; showing the masks only" % MAP_ABSOLUTE)  # noqa: F821
for name, color in MASKS:
    _open(os.path.join(HERE, name), "level 0.5 color " + color + " style surface")
run(session, "view")  # noqa: F821
"""


def chimerax_script(map_path: Path, out_dir: Path, level: float, level_note: str, nucleic: bool = False) -> str:
    """A Python script for ChimeraX that opens the map (mesh at ``level``) and the helix (yellow),
    sheet (cyan) and, for a 4-class model, nucleic-acid (orange) surfaces. Model numbers are
    read back from what it opens (it works in a busy session), and every path is found
    relative to the script's folder first (it works after the folder is moved)."""
    map_abs = str(map_path.resolve())
    try:
        map_rel = os.path.relpath(map_abs, out_dir.resolve())
    except ValueError:  # another drive (Windows)
        map_rel = ""
    masks = [("helix.mrc", "yellow"), ("sheet.mrc", "cyan")] + ([("nucleic.mrc", "orange")] if nucleic else [])
    return CHIMERAX_TEMPLATE.format(map_rel=map_rel, map_abs=map_abs, level=round(float(level), 6),
                                    level_note=level_note, masks=masks)  # fmt: skip


def predict_map(
    map_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    trim: float = DEFAULT_TRIM_A,
    spacing: float = DEFAULT_SPACING_A,
    threads: int | None = None,
    classes: int | None = None,
    contour: float | None = None,
    resolution: float | None = None,
) -> dict[str, Any]:
    """Segment one map and write every output into ``out_dir``; return the summary.

    ``classes`` (3 or 4), when given, must be the checkpoint's class count: a
    3-class checkpoint for a 4-class request, or the reverse, is refused.
    ``contour``: voxels of the map below this level are background in every output
    (and the ChimeraX script shows the map at this level). ``resolution`` (A), when given,
    is checked against what the model was trained for; the voxel size always is: what
    is off is logged and listed in the summary's ``warnings``.

    Raises ``ValueError`` (``MapError``, ``CheckpointError``), ``FileNotFoundError``
    or ``RuntimeError`` with a message naming the input and the cause; in that
    case nothing is left in ``out_dir``.
    """
    t_start = time.perf_counter()
    map_path, out_dir = Path(map_path), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: the output path exists and is not a folder")
    if map_path.name in OUTPUT_NAMES and map_path.resolve().parent == out_dir.resolve():
        raise ValueError(f"{map_path}: the input map would be overwritten by an output of the same name; choose another -o")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if trim < 0:
        raise ValueError(f"--trim must not be negative, got {trim}")
    if threads:
        torch.set_num_threads(int(threads))
    dev = pick_device(device)
    ckpt = resolve_model_path(model)
    t0 = time.perf_counter()
    net, meta = load_checkpoint(ckpt, map_location="cpu")
    if classes is not None:
        require_classes(meta, check_classes(classes, "--classes"), ckpt, "--classes")
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    dmap = read_map(map_path)
    t_read = time.perf_counter() - t0
    warnings = input_warnings(dmap.geometry.voxel_size, resolution)
    for w in warnings:
        log.warning("%s: %s", map_path, w)

    pred, details = segment(dmap, net, dev, precision, tile, overlap, spacing, contour)
    geom = pred.geometry
    n_trim = trim_counts(geom, trim)
    tgeom = trimmed_geometry(geom, n_trim)
    tz = slice(n_trim[2], geom.shape[0] - n_trim[2])
    ty = slice(n_trim[1], geom.shape[1] - n_trim[1])
    tx = slice(n_trim[0], geom.shape[2] - n_trim[0])

    arrays: list[tuple[str, np.ndarray, type]] = [
        ("helix.mrc", pred.helix, np.int8),
        ("sheet.mrc", pred.sheet, np.int8),
        ("helix_prob.mrc", pred.helix_prob, np.float32),
        ("sheet_prob.mrc", pred.sheet_prob, np.float32),
    ]
    if pred.nucleic is not None:
        arrays += [("nucleic.mrc", pred.nucleic, np.int8), ("nucleic_prob.mrc", pred.nucleic_prob, np.float32)]
    nuc = pred.nucleic
    summary: dict[str, Any] = {
        "cryosse_version": __version__,
        "input": {
            "path": str(map_path.resolve()),
            "size_bytes": map_path.stat().st_size,
            "geometry": geom.to_dict(),
            "origin_source": dmap.header.get("origin_source"),
            "axis_order_crs": dmap.header.get("axis_order_crs"),
            "gzip": dmap.header.get("gzip"),
        },
        "resolution_A": resolution,
        "warnings": warnings,
        "grid": {**pred.grid.to_dict(), "resampled": pred.grid != geom},
        "model": {
            "path": str(Path(ckpt).resolve()),
            "default": model is None,
            **{
                k: meta.get(k)
                for k in (
                    "arch",
                    "model_args",
                    "weights_sha256",
                    "loss",
                    "split",
                    "epoch",
                    "best_val",
                    "cryosse_version",
                )
            },
        },
        **details,
        "contour": contour,
        "trim_A": trim,
        "trim_voxels_xyz": list(n_trim),
        "full": _counts(pred.helix, pred.sheet, geom, nuc),
        "trimmed": _counts(pred.helix[tz, ty, tx], pred.sheet[tz, ty, tx], tgeom,
                           None if nuc is None else nuc[tz, ty, tx])  # fmt: skip
        if tgeom is not None
        else None,
    }
    if tgeom is None:
        summary["trimmed_note"] = f"the map is too small to trim {trim} A from each face; no trimmed outputs"
    else:
        arrays += [(n.replace(".mrc", "_trimmed.mrc"), a[tz, ty, tx], dt) for n, a, dt in arrays]

    created = not out_dir.exists()
    remove_stale_staging(out_dir, STAGING_PREFIX)  # left by a run that was killed (SIGKILL)
    stage = staging_dir(out_dir, STAGING_PREFIX)
    names: list[str] = []
    moved: list[Path] = []
    try:
        t0 = time.perf_counter()
        for name, data, dtype in arrays:
            write_map(stage / name, data, tgeom if name.endswith("_trimmed.mrc") else geom, dtype=dtype)
            names.append(name)
        if contour is not None:
            level, note = contour, "the --contour level"
        else:
            data = np.asarray(dmap.data, np.float32)
            level, note = float(data.mean() + 3.0 * data.std()), "mean + 3 sd of the map (no --contour given)"
        (stage / "chimerax.py").write_text(chimerax_script(map_path, out_dir, level, note, nuc is not None))
        names.append("chimerax.py")
        summary["files"] = sorted(names + ["summary.json"])
        summary["timing_s"] = {
            "load_model": t_model,
            "read_map": t_read,
            **pred.timing,
            "write_maps": time.perf_counter() - t0,
            "total": time.perf_counter() - t_start,
        }
        write_json(stage / "summary.json", summary)
        names.append("summary.json")
        mode = file_mode()
        # The earlier prediction's summary goes first, then its files that this one does
        # not replace: a folder never holds two predictions, and one without a
        # summary.json is recognisably incomplete.
        for name in ["summary.json", *sorted(OUTPUT_NAMES - set(names))]:
            with contextlib.suppress(FileNotFoundError):
                (out_dir / name).unlink()
        for name in names:
            os.chmod(stage / name, mode)  # temporary files are private; outputs follow the umask
            os.replace(stage / name, out_dir / name)
            moved.append(out_dir / name)
    except BaseException:
        for path in moved:  # a failure while moving (rare): take back what was moved
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
    return summary


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
        + (f", nucleic acid {full['nucleic_voxels']} voxels ({full['nucleic_volume_A3']:.0f} A^3)"
           if "nucleic_voxels" in full else "")  # fmt: skip
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
        "--model",
        default=None,
        help=f"checkpoint (.pt), e.g. results/models/0/FL_DL.pt of the workflow. Default: ${MODEL_ENV},"
        " else the model shipped with cryosse (docs/model_card.md)",
    )
    p.add_argument(
        "-o",
        "--out",
        required=True,
        help="output folder (created; existing files of the same names are replaced)",
    )
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
        "--threads", type=AT_LEAST_ONE, default=None, help="CPU threads for PyTorch (default: PyTorch's choice)"
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
    p.add_argument(
        "--classes",
        type=int,
        choices=(3, 4),
        default=None,
        help="refuse a checkpoint with another class count (4: with nucleic acids, writes nucleic.mrc);"
        " default: the checkpoint's",
    )
    p.set_defaults(func=_run)
