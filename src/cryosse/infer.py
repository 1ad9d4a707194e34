"""Running the network on a density box: padding, device choice, probabilities.

``predict_probabilities`` is the plain fp32 reference used by validation during
training and by evaluation, so that every path normalises, pads and crops alike.
``cryosse predict`` uses the fast path below it: batch norm folded into the
convolutions, bf16 or fp16 on CUDA and, on a CPU, whichever of fp32 and bf16 runs faster there
(or, when asked for, int8 calibrated on the map itself), channels-last 3D layout, padding only
to the pooling factor, and a sliding window of overlapping tiles with cosine-weighted blending
so that any map runs in bounded memory.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cryosse.density import normalise_density  # noqa: F401  (re-exported)
from cryosse.machine import cpu_has_vnni, cpu_name, remembered
from cryosse.model import PAD_MULTIPLE


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda was asked for but no CUDA device is available")
    return torch.device(device)


def pad_to_multiple(
    x: torch.Tensor, multiple: int = PAD_MULTIPLE, value: float = 0.0
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Pad the last three dims of (B, C, D, H, W) with ``value`` up to a multiple; return the original size."""
    d, h, w = x.shape[-3:]
    pd, ph, pw = (-d) % multiple, (-h) % multiple, (-w) % multiple
    if pd or ph or pw:
        x = F.pad(x, (0, pw, 0, ph, 0, pd), value=value)
    return x, (d, h, w)


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, density: np.ndarray, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Class probabilities (C, z, y, x) float32 for a normalised density box [z, y, x]."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    model = model.to(dev).eval()
    x = torch.from_numpy(np.ascontiguousarray(density, np.float32))[None, None].to(dev)
    x, (d, h, w) = pad_to_multiple(
        x, value=float(density.min()) if density.size else 0.0
    )  # the solvent value
    logits = model(x)[..., :d, :h, :w]
    return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()


# ---------------------------------------------------------------------------
# Fast inference for ``cryosse predict``: folded batch norm, reduced precision,
# channels-last memory, minimal padding and sliding-window tiles with blending.
# ``predict_probabilities`` above stays the plain fp32 reference.

#: the U-Net pools twice by 2, so inputs (and tile starts) need a multiple of 4
POOL_FACTOR = 4

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: edge of the cube of the map that int8 calibrates its activation ranges on (the densest one):
#: measured nearly as accurate as 48^3 or four cubes, at a third of their cost
INT8_CALIBRATION_EDGE = 32


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def faster_on_cpu(
    module: nn.Module, channels_last: bool = True, size: int = 48, repeats: int = 2
) -> tuple[torch.dtype, dict[str, float]]:
    """fp32 or bf16, whichever runs ``module`` faster on this CPU, timed on a ``size``^3 box.

    CPU flags do not tell: a machine can report AVX512-BF16 and still run bf16 convolutions
    4-5x slower than fp32 (measured on this project's development machines), so ``auto``
    times both (a fraction of a second) and records the figures.
    """
    import time

    x = torch.randn(1, 1, size, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    seconds: dict[str, float] = {}
    with torch.no_grad():
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                module(x)  # warm-up: oneDNN picks its kernels on the first call
                t0 = time.perf_counter()
                for _ in range(repeats):
                    module(x)
            seconds[name] = (time.perf_counter() - t0) / repeats
    return (torch.bfloat16 if seconds["bf16"] < seconds["fp32"] else torch.float32), seconds


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for ``precision`` (auto | fp32 | bf16 | fp16) on ``device``.

    ``auto`` takes bf16 on CUDA devices with bf16 and fp16 on older ones; on a CPU it
    is decided by timing (:func:`faster_on_cpu`, in :func:`prepare_model`), and this
    function answers fp32 for it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 is for CUDA devices; use bf16 or fp32 on the CPU")
        return torch.float16
    if precision == "int8":
        if device.type != "cpu":
            raise ValueError("int8 is for CPUs; use bf16 or fp16 on a CUDA device")
        return torch.qint8
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def calibration_cube(density: np.ndarray, edge: int = INT8_CALIBRATION_EDGE) -> np.ndarray:
    """The densest ``edge``^3 cube of a box (the whole box along shorter axes), padded to the
    pooling factor: the cube with the largest summed density among those starting on a grid
    of ``edge // 2``. The densest region, not the centre: the centre of a map can be solvent
    (GroEL's cavity), and int8 calibrated on solvent alone labels the whole map wrongly."""
    from numpy.lib.stride_tricks import sliding_window_view

    step = max(1, edge // 2)
    sums = np.asarray(density)
    for axis, n in enumerate(density.shape):
        sums = np.add.reduceat(sums, np.arange(0, n, step), axis=axis, dtype=np.float64)
    windows = sliding_window_view(sums, [min(2, n) for n in sums.shape]).sum(axis=(-3, -2, -1))
    best = np.unravel_index(int(np.argmax(windows)), windows.shape)
    sl = tuple(
        slice(s, s + edge)
        for s in (min(i * step, max(0, n - edge)) for i, n in zip(best, density.shape, strict=True))
    )
    cube = torch.from_numpy(np.ascontiguousarray(density[sl], np.float32))[None, None]
    return pad_to_multiple(cube, POOL_FACTOR, float(density.min()))[0].numpy()[0, 0]


def quantize_int8(module: nn.Module, calibration: np.ndarray) -> nn.Module:
    """``module`` (a :class:`DeepSSETracerUNet`, batch norm folded) with int8 weights and
    activations, for the CPU.

    Static post-training quantization in PyTorch's eager mode, with the x86 back end:
    per-channel weights (per-tensor for the transposed convolutions, as PyTorch's own
    mapping has them), activation ranges from histograms. The ranges are
    calibrated on ``calibration``, a normalised box of the map to be predicted
    (:func:`calibration_cube`), so they fit that map. Convolutions run on int8 kernels (VNNI
    where the CPU has it); the input and the logits stay float32.
    """
    import warnings

    from torch.ao.quantization import (
        HistogramObserver,
        QConfig,
        convert,
        default_per_channel_weight_observer,
        default_weight_observer,
        prepare,
    )

    from cryosse.model import QuantizableUNet

    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm") if e in engines), None)
    if engine is None:
        raise RuntimeError(
            f"int8 needs PyTorch's x86 or fbgemm quantized back end; this PyTorch has {engines}"
        )
    torch.backends.quantized.engine = engine
    q = QuantizableUNet(module).eval()
    # 8-bit activations where VNNI's int32 accumulation allows it, 7-bit otherwise (PyTorch's
    # default, against overflow in AVX2's int16 pairs); measured: 8 bits halve the voxels that
    # differ from fp32 (bench/bench_predict.py)
    activation = HistogramObserver.with_args(reduce_range=not cpu_has_vnni())
    q.qconfig = QConfig(activation=activation, weight=default_per_channel_weight_observer)
    q.up1_t.qconfig = q.up2_t.qconfig = QConfig(activation=activation, weight=default_weight_observer)
    with warnings.catch_warnings():  # eager-mode quantization is deprecated in favour of torchao, and works
        warnings.simplefilter("ignore")
        prepare(q, inplace=True)
        with torch.no_grad():
            q(torch.from_numpy(np.ascontiguousarray(calibration, np.float32))[None, None])
        convert(q, inplace=True)
    return q


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every Conv3d -> BatchNorm3d pair folded into one conv.

    Inference only (batch norm uses its running statistics); the original is untouched.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()

    def visit(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, nn.Sequential):
                mods, out, i = list(child), [], 0
                while i < len(mods):
                    if (
                        isinstance(mods[i], nn.Conv3d)
                        and i + 1 < len(mods)
                        and isinstance(mods[i + 1], nn.BatchNorm3d)
                    ):
                        out.append(fuse_conv_bn_eval(mods[i], mods[i + 1]))
                        i += 2
                    else:
                        out.append(mods[i])
                        i += 1
                setattr(module, name, nn.Sequential(*out))
            else:
                visit(child)

    visit(model)
    return model


@dataclass
class FastModel:
    """A model prepared for inference on one device at one precision."""

    module: nn.Module
    device: torch.device
    dtype: torch.dtype  # torch.qint8: int8 weights and activations (``module`` quantized)
    channels_last: bool
    timed: dict[str, Any] = field(default_factory=dict)  # auto on a CPU: s per 48^3 box, when, cached or not

    @property
    def precision(self) -> str:
        """fp32, bf16, fp16 or int8: the name ``--precision`` takes."""
        return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.qint8: "int8"}[
            self.dtype
        ]

    @torch.no_grad()
    def probabilities(self, x: np.ndarray) -> torch.Tensor:
        """Softmax probabilities (C, d, h, w) float32 on the device for one box already padded."""
        t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[None, None].to(self.device)
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last_3d)
        if self.dtype in (torch.float32, torch.qint8):
            logits = self.module(t)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                logits = self.module(t)
        return torch.softmax(logits.float(), dim=1)[0]


def prepare_model(
    model: nn.Module,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    channels_last: bool = True,
    fold_bn: bool = True,
    density: np.ndarray | None = None,
) -> FastModel:
    """Fold batch norm, move to ``device``, choose the precision and memory layout.

    ``int8`` needs ``density``, the normalised map to be predicted: its densest cube
    (:func:`calibration_cube`) calibrates the activation ranges. Other precisions ignore it.
    """
    dev = device if isinstance(device, torch.device) else pick_device(device)
    dtype = resolve_precision(precision, dev)
    module = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    if dtype == torch.qint8:
        if density is None:
            raise ValueError("int8 needs the map to be predicted, for its calibration")
        return FastModel(quantize_int8(module, calibration_cube(density)), dev, dtype, channels_last=False)
    module = module.to(dev)
    if channels_last:
        module = module.to(memory_format=torch.channels_last_3d)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    timed: dict[str, Any] = {}
    if precision == "auto" and dev.type == "cpu":  # timed once per machine, threads, torch and network
        key = {
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "model_args": getattr(model, "model_args", {}),
            "channels_last": channels_last,
        }
        timed = remembered(key, lambda: {"seconds": faster_on_cpu(module, channels_last)[1]})
        dtype = torch.bfloat16 if timed["seconds"]["bf16"] < timed["seconds"]["fp32"] else torch.float32
    return FastModel(module, dev, dtype, channels_last, timed)


def tile_starts(n: int, tile: int, overlap: int, align: int = POOL_FACTOR) -> list[int]:
    """Start indices of tiles of length ``tile`` covering ``0..n`` with at least ``overlap``.

    Starts are multiples of ``align`` (so every tile pools on the same grid as a
    single pass) and the last tile ends at ``n``; ``n`` and ``tile`` must be
    multiples of ``align``. One tile when ``tile >= n``.
    """
    if n % align or tile % align:
        raise ValueError(f"length {n} and tile {tile} must be multiples of {align}")
    if tile >= n:
        return [0]
    stride = (tile - overlap) // align * align
    if stride <= 0:
        raise ValueError(f"tile {tile} leaves no stride with an overlap of {overlap}")
    starts = list(range(0, n - tile, stride))
    starts.append(n - tile)
    return starts


def blend_ramp(length: int, ramp: int, at_start: bool, at_end: bool, floor: float = 1e-3) -> np.ndarray:
    """1D blending weights of a tile: 1 inside, a cosine ramp over ``ramp`` voxels at an edge
    shared with another tile (none at a face of the map), never below ``floor``."""
    w = np.ones(length, np.float64)
    if ramp > 0:
        r = min(ramp, length)
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
        if not at_start:
            w[:r] = np.minimum(w[:r], rise)
        if not at_end:
            w[length - r :] = np.minimum(w[length - r :], rise[::-1])
    return np.maximum(w, floor)


@dataclass
class TilePlan:
    """Where the tiles of a sliding window go and how they are weighted."""

    shape: tuple[int, int, int]  # the density, [z, y, x]
    padded: tuple[int, int, int]  # rounded up to a multiple of ``align``
    starts: tuple[list[int], list[int], list[int]]
    sizes: tuple[int, int, int]
    weights: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]  # per axis, per tile
    totals: tuple[np.ndarray, np.ndarray, np.ndarray]  # per axis: summed weights (separable)

    @property
    def n_tiles(self) -> int:
        return len(self.starts[0]) * len(self.starts[1]) * len(self.starts[2])


def plan_tiles(
    shape: tuple[int, ...], tile: int = 0, overlap: int = 32, align: int = POOL_FACTOR
) -> TilePlan:
    """Plan a sliding window over ``shape`` [z, y, x]; ``tile`` 0 = one pass over the whole box.

    The box is padded with its solvent value up to a multiple of ``align`` (as a single pass
    would be). A padded box of at most ``tile**3`` voxels runs in one pass (the
    memory a tile may take); a larger one is cut into tiles of edge ``tile``
    (rounded down to a multiple of ``align``, at most the box's length on each
    axis). Every tile in the grid of tiles has a separable weight
    ``wz * wy * wx``, so the sum of weights at a voxel is the product of three
    1D sums.
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"a density box must be 3D and non-empty, got shape {tuple(shape)}")
    if tile < 0 or overlap < 0:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must not be negative")
    padded = tuple(int(-(-s // align) * align) for s in shape)
    if tile and int(np.prod(padded)) <= tile**3:
        tile = 0
    if tile:
        tile = tile // align * align
        if tile < 2 * align or tile <= overlap:
            raise ValueError(f"tile {tile} is too small for an overlap of {overlap} (tile must exceed it)")
    starts, sizes, weights, totals = [], [], [], []
    for n in padded:
        L = n if not tile or tile >= n else tile
        st = tile_starts(n, L, overlap, align)
        ws, tot = [], np.zeros(n, np.float64)
        for i, s in enumerate(st):
            w = blend_ramp(L, overlap, at_start=i == 0, at_end=i == len(st) - 1)
            ws.append(w)
            tot[s : s + L] += w
        starts.append(st)
        sizes.append(L)
        weights.append(ws)
        totals.append(tot)
    return TilePlan(
        tuple(int(s) for s in shape), padded, tuple(starts), tuple(sizes), tuple(weights), tuple(totals)
    )  # type: ignore[arg-type]


def sliding_window_probabilities(
    fast: FastModel,
    density: np.ndarray,
    tile: int = 0,
    overlap: int = 32,
    classes: tuple[int, ...] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Class probabilities (K, z, y, x) float32 of a normalised density box, tile by tile.

    Each tile is cut from the box (the solvent value beyond it, as the padding of
    a single pass), run through the network, and its probabilities are added with
    cosine-ramped weights that fade out towards edges shared with neighbouring
    tiles; the sum is divided by the summed weights. Memory: the box, one
    accumulator per kept class and one tile's activations. ``classes`` keeps only
    some classes (e.g. ``(1, 2)``: background is one minus their sum).
    """
    density = np.asarray(density, np.float32)
    solvent = float(density.min()) if density.size else 0.0  # what empty space is in a normalised box
    plan = plan_tiles(density.shape, tile, overlap)
    n_classes = None
    acc: np.ndarray | None = None
    D, H, W = plan.shape
    (sz, sy, sx), (Lz, Ly, Lx) = plan.starts, plan.sizes
    done, total = 0, plan.n_tiles
    for iz, z0 in enumerate(sz):
        for iy, y0 in enumerate(sy):
            for ix, x0 in enumerate(sx):
                z1, y1, x1 = min(z0 + Lz, D), min(y0 + Ly, H), min(x0 + Lx, W)
                if z1 <= z0 or y1 <= y0 or x1 <= x0:  # a tile entirely in the padding
                    done += 1
                    continue
                box = np.full((Lz, Ly, Lx), solvent, np.float32)
                box[: z1 - z0, : y1 - y0, : x1 - x0] = density[z0:z1, y0:y1, x0:x1]
                prob = fast.probabilities(box)
                if acc is None:
                    n_classes = prob.shape[0]
                    keep = list(range(n_classes)) if classes is None else list(classes)
                    if any(not 0 <= c < n_classes for c in keep):
                        raise ValueError(f"classes {keep} out of range for a {n_classes}-class network")
                    acc = np.zeros((len(keep), D, H, W), np.float32)
                    keep_t = torch.tensor(keep, device=prob.device)
                w = (
                    torch.from_numpy(plan.weights[0][iz][: z1 - z0].astype(np.float32))[:, None, None]
                    * torch.from_numpy(plan.weights[1][iy][: y1 - y0].astype(np.float32))[None, :, None]
                    * torch.from_numpy(plan.weights[2][ix][: x1 - x0].astype(np.float32))[None, None, :]
                ).to(prob.device)
                part = prob.index_select(0, keep_t)[:, : z1 - z0, : y1 - y0, : x1 - x0] * w
                acc[:, z0:z1, y0:y1, x0:x1] += part.cpu().numpy()
                done += 1
                if progress is not None:
                    progress(done, total)
    assert acc is not None
    # Separable normalisation: divide by the summed weights one axis at a time.
    acc /= plan.totals[0][:D].astype(np.float32)[None, :, None, None]
    acc /= plan.totals[1][:H].astype(np.float32)[None, None, :, None]
    acc /= plan.totals[2][:W].astype(np.float32)[None, None, None, :]
    return acc


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


def conv_flops(model: nn.Module, shape: tuple[int, int, int]) -> int:
    """Floating-point operations (2 per multiply-add) of the convolutions of one pass over
    an input box of ``shape`` [z, y, x], counted analytically from the layers' shapes."""
    flops = 0

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal flops
        k = int(np.prod(mod.kernel_size))
        if isinstance(mod, nn.ConvTranspose3d):
            voxels = int(np.prod(inp[0].shape[2:]))  # every input voxel scatters a k-kernel
        else:
            voxels = int(np.prod(out.shape[2:]))
        flops += 2 * voxels * k * (mod.in_channels // mod.groups) * mod.out_channels

    # The meta device runs the shapes only: no memory, no arithmetic.
    meta = copy.deepcopy(model).to("meta").eval()
    convs = (nn.Conv3d, nn.ConvTranspose3d)
    hooks = [m.register_forward_hook(hook) for m in meta.modules() if isinstance(m, convs)]
    try:
        with torch.no_grad():
            meta(torch.empty((1, 1, *shape), device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return flops
