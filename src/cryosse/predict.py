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
* ``summary.json``: voxel counts and volumes, input preparation, timing, model, precision;
* ``chimerax.py``: opens the map with helix (yellow) and sheet (cyan) surfaces in
  ChimeraX (any session; the folder may be moved);
* with a 4-class checkpoint (``classes: 4``), ``nucleic.mrc`` and
  ``nucleic_prob.mrc`` (and trimmed) for nucleic acids too (orange in ChimeraX),
  the masks then being the argmax over all four classes.

Nothing is written unless the whole prediction succeeds: outputs are staged in
a hidden folder inside the output folder and moved into place at the end.

Model: ``--checkpoint``; else the ``CRYOSSE_MODEL`` environment variable; else the model
shipped inside the package (``cryosse/data/default_model.pt``; docs/model_card.md), so
predict works right after ``pip install``.
"""

from __future__ import annotations

import contextlib
import logging
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
from cryosse.chimerax import chimerax_script
from cryosse.classes import check_classes, class_names
from cryosse.density import contour_check, display_level, input_preparation, prepare_input
from cryosse.geometry import (
    DensityMap,
    MapGeometry,
    prediction_grid,
    read_map,
    resample,
    trim_counts,
    trimmed_geometry,
    write_map,
)
from cryosse.infer import (
    PRECISIONS,
    labels_from_probabilities,
    normalise_density,
    pick_device,
    plan_tiles,
    prepare_model,
    sliding_window_probabilities,
)
from cryosse.io import file_mode, hold_folder, remove_stale_staging, staging_dir, write_json
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
            + (
                " blur it to 6-8 A first (e.g. ChimeraX 'volume gaussian')"
                if resolution < lo
                else " helices and sheets are rarely resolved there"
            )  # fmt: skip
        )
    return out


CLASS_NAMES_ALL = class_names(4)  # helix, sheet and (class 3 of a 4-class network) nucleic acid
#: every file a prediction can write: an earlier prediction's files that the new one does not
#: write again are removed, so one folder never mixes two predictions
OUTPUT_NAMES = frozenset(
    f"{c}{kind}{trim}.mrc" for c in CLASS_NAMES_ALL for kind in ("", "_prob") for trim in ("", "_trimmed")
) | {"chimerax.py", "chimerax.cxc", "summary.json"}  # .cxc: written by earlier versions
STAGING_PREFIX = "cryosse-predict"


#: voxel sizes (A) of real cryo-EM maps; outside, the header is damaged or the file is no map
VOXEL_SIZE_RANGE = (0.2, 20.0)


def check_voxel_size(dmap: DensityMap) -> None:
    """Refuse a voxel size no cryo-EM map has (coarse ones are warned about by :func:`input_warnings`)."""
    vs = np.asarray(dmap.geometry.voxel_size, float)
    lo, hi = VOXEL_SIZE_RANGE
    if not np.all(np.isfinite(vs)) or vs.min() < lo or vs.max() > hi:
        raise ValueError(
            f"{dmap.path}: voxel size {tuple(round(float(v), 4) for v in vs)} A is outside {lo:g}-{hi:g} A,"
            " not that of a cryo-EM map (a damaged header, or a cell given in the wrong unit)"
        )


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """``--checkpoint``, else ``$CRYOSSE_MODEL``, else the model shipped with the package.

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
            f"cryosse, or pass --checkpoint CKPT (a cryosse checkpoint, such as a workflow run's models/{{split}}/{{loss}}.pt)"
        )
    return shipped


class NonFiniteOutput(ValueError):
    """The network gave NaN or infinite outputs (damaged or diverged weights)."""


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


def network_input(
    dmap: DensityMap, spacing: float = DEFAULT_SPACING_A, model_args: dict | None = None
) -> tuple[MapGeometry, np.ndarray, bool]:
    """The map on the network's ``spacing`` grid, normalised and prepared as the model's training
    boxes were (``prepare_input``): (the grid, the density [z, y, x], whether it is the map's own grid)."""
    geom = dmap.geometry
    check_voxel_size(dmap)
    grid = prediction_grid(geom, spacing)
    n_grid = int(np.prod(grid.shape_zyx))
    if n_grid > MAX_GRID_VOXELS:
        raise ValueError(
            f"{dmap.path}: the map spans {grid.shape_xyz} voxels (x, y, z) at {spacing} A ({n_grid:,} voxels);"
            " crop the region of interest first (e.g. `volume copy subregion` in ChimeraX)"
        )
    same_grid = (
        grid.shape_zyx == geom.shape_zyx
        and np.allclose(grid.origin_xyz, geom.origin_xyz)
        and np.allclose(grid.voxel_size, geom.voxel_size)
    )
    box = np.asarray(dmap.data, np.float32) if same_grid else resample(dmap, grid)
    try:
        return grid, prepare_input(normalise_density(box), model_args or {}), same_grid
    except ValueError as exc:
        raise ValueError(f"{dmap.path}: {exc}") from exc


def _tiled_probabilities(fast: Any, density: np.ndarray, plan: Any, tile: int, overlap: int,
                         classes: tuple[int, ...]) -> np.ndarray:  # fmt: skip
    """The network over the tiles, with a progress bar (done/total, elapsed and the ETA) for several."""
    from tqdm import tqdm

    bar = tqdm(total=plan.n_tiles, desc="tiles", unit="tile", disable=plan.n_tiles < 2, file=sys.stderr,
               mininterval=2.0)  # fmt: skip
    try:
        probs = sliding_window_probabilities(fast, density, tile, overlap, classes=classes,
                                             progress=lambda done, total: bar.update(done - bar.n))  # fmt: skip
    finally:
        bar.close()
    if fast.device.type == "cuda":
        torch.cuda.synchronize()
    return probs


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
    t0 = time.perf_counter()
    grid, density, same_grid = network_input(dmap, spacing, model.model_args)  # type: ignore[arg-type]
    timing["resample_normalise"] = time.perf_counter() - t0  # and the model's input preparation

    t0 = time.perf_counter()
    fast = prepare_model(model, device, precision, density=density)
    timing["prepare_model"] = time.perf_counter() - t0  # folding; with auto, timing; with int8, calibration
    plan = plan_tiles(density.shape, tile, overlap)
    log.info("%s: %s voxels at %g A, %d tile(s), %s on %s", dmap.path, "x".join(map(str, density.shape)), spacing,
             plan.n_tiles, fast.dtype, fast.device)  # fmt: skip
    t0 = time.perf_counter()
    n_classes = int(model.model_args["n_classes"])  # type: ignore[index]
    classes = tuple(range(1, n_classes))  # background is one minus their sum
    probs = _tiled_probabilities(fast, density, plan, tile, overlap, classes)
    timing["network"] = time.perf_counter() - t0
    if not np.isfinite(probs).all():
        raise NonFiniteOutput("the network's outputs are not finite (NaN or infinity)")
    del density

    t0 = time.perf_counter()
    if same_grid:
        back = [probs[i] for i in range(len(classes))]
    else:
        back = [resample(DensityMap(probs[i], grid, path=f"{CLASS_NAMES_ALL[i]} probabilities"), geom)
                for i in range(len(classes))]  # fmt: skip
    del probs
    if contour is not None:  # below the user's contour level: background, whatever the network says
        low = np.asarray(dmap.data) < np.float64(contour)  # float64: no overflow at +-1e39
        for b in back:
            b[low] = 0.0
    masks = labels_from_probabilities(*back)
    timing["resample_back"] = time.perf_counter() - t0
    details = {
        "device": str(fast.device),
        "precision": fast.precision,
        "precision_timed": fast.timed,  # auto on a CPU: s per 48^3 box (the faster won), when, cached
        "threads": torch.get_num_threads(),
        "tiling": {
            "tile": tile,
            "overlap": overlap,
            "n_tiles": plan.n_tiles,
            "tile_shape_xyz": list(plan.sizes)[::-1],
        },
    }
    pred = Prediction(geom, grid, back[0], back[1], masks[0], masks[1], plan.n_tiles, timing)
    if n_classes == 4:
        pred.nucleic_prob, pred.nucleic = back[2], masks[2]
    return pred, details


def _counts(
    helix: np.ndarray, sheet: np.ndarray, geom: MapGeometry, nucleic: np.ndarray | None = None
) -> dict[str, Any]:
    vol = float(np.prod(geom.voxel_size))
    nh, ns = int(helix.sum()), int(sheet.sum())
    out = {
        "geometry": geom.to_xyz_dict(),
        "voxels": int(np.prod(geom.shape_zyx)),
        "helix_voxels": nh,
        "sheet_voxels": ns,
        "helix_volume_A3": nh * vol,
        "sheet_volume_A3": ns * vol,
    }
    if nucleic is not None:
        out.update(nucleic_voxels=int(nucleic.sum()), nucleic_volume_A3=int(nucleic.sum()) * vol)
    return out


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
    """Segment one map and write every output into ``out_dir`` (held against a second run
    meanwhile); return the summary.

    ``classes`` (3 or 4), when given, must be the checkpoint's. ``contour``: voxels below it are
    background in every output, and the ChimeraX script shows the map at it. ``resolution`` (A)
    and the voxel size are checked against what the model was trained for; what is off is logged
    and listed in the summary's ``warnings``. Errors (``ValueError``: ``MapError``,
    ``CheckpointError``; ``FileNotFoundError``, ``RuntimeError``) name the input and the cause,
    and leave nothing in ``out_dir``.
    """
    t_start = time.perf_counter()
    map_path, out_dir = Path(map_path), Path(out_dir)
    _check_request(map_path, out_dir, precision, trim)
    with hold_folder(out_dir, "cryosse predict"):
        return _predict_locked(map_path, out_dir, model, device, precision, tile, overlap, trim, spacing,
                               threads, classes, contour, resolution, t_start)  # fmt: skip


def _predict_locked(map_path: Path, out_dir: Path, model: str | os.PathLike | None, device: str, precision: str,
                    tile: int, overlap: int, trim: float, spacing: float, threads: int | None, classes: int | None,
                    contour: float | None, resolution: float | None, t_start: float) -> dict[str, Any]:  # fmt: skip
    """:func:`predict_map`'s work, while it holds the output folder."""
    if threads:
        torch.set_num_threads(int(threads))
    dev = pick_device(device)
    ckpt, net, meta, dmap, timing = _load(model, classes, map_path)
    warnings = input_warnings(dmap.geometry.voxel_size, resolution)
    if contour is not None:
        refusal, warning = contour_check(contour, dmap.data)
        if refusal:
            raise ValueError(f"{map_path}: {refusal}")
        warnings += [warning] if warning else []
    for w in warnings:
        log.warning("%s: %s", map_path, w)
    try:
        pred, details = segment(dmap, net, dev, precision, tile, overlap, spacing, contour)
    except NonFiniteOutput as exc:
        raise RuntimeError(f"{ckpt}: {exc} on {map_path}; the checkpoint's weights are damaged") from exc
    timing.update(pred.timing)
    geom = pred.geometry
    n_trim = trim_counts(geom, trim)
    tgeom = trimmed_geometry(geom, n_trim)
    inner = tuple(slice(n, size - n) for n, size in zip(n_trim[::-1], geom.shape_zyx, strict=True))
    summary: dict[str, Any] = {
        "cryosse_version": __version__,
        "axis_order": "x, y, z: every shape, voxel size, position and count of voxels per axis in this file",
        "input": {
            "path": str(map_path.resolve()),
            "size_bytes": map_path.stat().st_size,
            "geometry": geom.to_xyz_dict(),
            **{k: dmap.header.get(k) for k in ("origin_source", "axis_order_crs", "gzip")},
        },
        "resolution_A": resolution,
        "input_preparation": input_preparation(net.model_args),
        "warnings": warnings,
        "grid": {**pred.grid.to_xyz_dict(), "resampled": pred.grid != geom},
        "model": {
            "path": str(Path(ckpt).resolve()),
            "default": model is None,
            **{k: meta.get(k) for k in MODEL_META},
        },
        **details,
        "contour": contour,
        "trim_A": trim,
        "trim_voxels_xyz": list(n_trim),
        "full": _counts(pred.helix, pred.sheet, geom, pred.nucleic),
        "trimmed": None,
    }
    arrays = _output_arrays(pred)
    if tgeom is None:
        summary["trimmed_note"] = f"the map is too small to trim {trim} A from each face; no trimmed outputs"
    else:
        nuc = pred.nucleic
        summary["trimmed"] = _counts(
            pred.helix[inner], pred.sheet[inner], tgeom, None if nuc is None else nuc[inner]
        )
        arrays += [(n.replace(".mrc", "_trimmed.mrc"), a[inner], dt) for n, a, dt in arrays]
    script = chimerax_script(map_path, out_dir, *display_level(dmap, contour), pred.nucleic is not None)
    _publish(out_dir, arrays, geom, tgeom, script, summary, timing, t_start)
    return summary


def _load(
    model: str | os.PathLike | None, classes: int | None, map_path: Path
) -> tuple[Path, Any, dict, DensityMap, dict]:
    """The checkpoint (its path, network and metadata), the map, and the time each took."""
    ckpt = resolve_model_path(model)
    t0 = time.perf_counter()
    net, meta = load_checkpoint(ckpt, map_location="cpu")
    if classes is not None:
        require_classes(meta, check_classes(classes, "classes"), ckpt, "the prediction asked for")
    timing = {"load_model": time.perf_counter() - t0}
    t0 = time.perf_counter()
    dmap = read_map(map_path)
    timing["read_map"] = time.perf_counter() - t0
    return ckpt, net, meta, dmap, timing


#: what the summary records of the checkpoint
MODEL_META = ("arch", "model_args", "weights_sha256", "loss", "split", "epoch", "best_val", "cryosse_version")


def _check_request(map_path: Path, out_dir: Path, precision: str, trim: float) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: the output path exists and is not a folder")
    if map_path.name in OUTPUT_NAMES and map_path.resolve().parent == out_dir.resolve():
        raise ValueError(
            f"{map_path}: the input map would be overwritten by an output of the same name; choose another output folder"
        )
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if trim < 0:
        raise ValueError(f"the trim must not be negative, got {trim} A")


def _output_arrays(pred: Prediction) -> list[tuple[str, np.ndarray, type]]:
    """(file name, array, MRC dtype) of the masks and probabilities on the input's frame."""
    arrays: list[tuple[str, np.ndarray, type]] = [
        ("helix.mrc", pred.helix, np.int8),
        ("sheet.mrc", pred.sheet, np.int8),
        ("helix_prob.mrc", pred.helix_prob, np.float32),
        ("sheet_prob.mrc", pred.sheet_prob, np.float32),
    ]
    if pred.nucleic is not None:
        arrays += [
            ("nucleic.mrc", pred.nucleic, np.int8),
            ("nucleic_prob.mrc", pred.nucleic_prob, np.float32),
        ]
    return arrays


def _publish(
    out_dir: Path,
    arrays: list[tuple[str, np.ndarray, type]],
    geom: MapGeometry,
    tgeom: MapGeometry | None,
    script: str,
    summary: dict[str, Any],
    timing: dict[str, float],
    t_start: float,
) -> None:
    """Write every output into a staging folder inside ``out_dir``, then move them into place:
    all of them or, on any failure, none (the earlier prediction's files are removed first)."""
    if (out_dir / "summary.json").exists():
        log.warning("%s: replacing the prediction already there", out_dir)
    remove_stale_staging(out_dir, STAGING_PREFIX)  # left by a run that was killed (SIGKILL)
    stage = staging_dir(out_dir, STAGING_PREFIX)
    names: list[str] = []
    moved: list[Path] = []
    try:
        t0 = time.perf_counter()
        for name, data, dtype in arrays:
            write_map(stage / name, data, tgeom if name.endswith("_trimmed.mrc") else geom, dtype=dtype)
            names.append(name)
        (stage / "chimerax.py").write_text(script)
        names.append("chimerax.py")
        summary["files"] = sorted(names + ["summary.json"])
        summary["timing_s"] = {
            **timing,
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
