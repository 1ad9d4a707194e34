"""The DeepSSETracer 3D U-Net (SPEC 7) and stand-alone checkpoints.

Width 1 is the authors' network exactly: five composite layers, 3x3x3
convolutions with padding 1, batch norm, ReLU, dropout 0.5, two 2x poolings
and two transposed convolutions, 1x1x1 output to three classes (four with the
optional nucleic-acid class, ``n_classes=4``). ``width`` scales every channel
count for CPU demos.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cryosse import __version__
from cryosse.io import atomic_path

CHECKPOINT_FORMAT = "cryosse-checkpoint/1"
ARCH = "DeepSSETracerUNet"
#: boxes are padded (with the solvent value) to a multiple of the pooling factor, 4, in
#: training, validation, evaluation and predict alike (the authors' tool pads to 8: the
#: padding is masked out of loss and metrics, so only its size differs)
PAD_MULTIPLE = 4
#: the model shipped inside the package (config/pretrain.yaml made it; docs/model_card.md)
SHIPPED_MODEL = "default_model.pt"


def shipped_model_path() -> Path:
    """Where the package's own model lies (it may be missing from a damaged install)."""
    from importlib.resources import files

    return Path(str(files("cryosse") / "data" / SHIPPED_MODEL))


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the cause."""


def _block(cin: int, cmid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cmid, 3, padding=1),
        nn.BatchNorm3d(cmid),
        nn.ReLU(inplace=True),
        nn.Conv3d(cmid, cout, 3, padding=1),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class GaussianLowPass(nn.Module):
    """A fixed Gaussian low-pass of sigma ``sigma`` voxels (1 A voxels: A), edges replicated.

    The input preparation of a model that has one (``input_lowpass``): being part of the
    network, it is applied alike in training, validation, evaluation and ``cryosse predict``.
    """

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)
        self.radius = max(1, int(math.ceil(3.0 * self.sigma)))
        t = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (t / self.sigma) ** 2)
        self.register_buffer("kernel", k / k.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, k = self.radius, self.kernel.to(x.dtype)
        x = F.pad(x, (r, r, r, r, r, r), mode="replicate")
        for shape in ((-1, 1, 1), (1, -1, 1), (1, 1, -1)):
            x = F.conv3d(x, k.view(1, 1, *shape))
        return x


class DeepSSETracerUNet(nn.Module):
    """Input (B, 1, D, H, W) with D, H, W multiples of 4; output logits (B, C, D, H, W).

    ``input_lowpass`` > 0 puts a fixed Gaussian low-pass (:class:`GaussianLowPass`) before
    the first layer (0, the authors' network and older checkpoints: none). ``input_spectrum``
    is the reference amplitude profile every input is brought to before the network sees it
    (:func:`cryosse.density.prepare_input`); None: inputs are used as they are.
    """

    def __init__(
        self,
        width: float = 1.0,
        in_channels: int = 1,
        n_classes: int = 3,
        dropout: float = 0.5,
        input_lowpass: float = 0.0,
        input_spectrum: list[float] | None = None,
    ):
        super().__init__()
        self.model_args = {
            "width": float(width),
            "in_channels": int(in_channels),
            "n_classes": int(n_classes),
            "dropout": float(dropout),
        }
        if input_lowpass < 0 or not math.isfinite(input_lowpass):
            raise ValueError(f"input_lowpass {input_lowpass} must be a sigma >= 0 (A)")
        self.lowpass = GaussianLowPass(input_lowpass) if input_lowpass > 0 else nn.Identity()
        if input_lowpass > 0:
            self.model_args["input_lowpass"] = float(input_lowpass)
        if input_spectrum is not None:  # the input preparation's reference (cryosse.spectrum), not a weight
            from cryosse.spectrum import check_reference

            self.model_args["input_spectrum"] = [float(v) for v in check_reference(input_spectrum)]

        def c(n: int) -> int:
            return max(1, int(round(n * width)))

        self.down1 = _block(in_channels, c(32), c(64))
        self.down2 = _block(c(64), c(64), c(128))
        self.bottom = _block(c(128), c(128), c(256))
        self.drop = nn.Dropout(dropout)
        self.pool = nn.MaxPool3d(2)
        self.up1_t = nn.ConvTranspose3d(c(256), c(256), 2, stride=2)
        self.up1 = _block(c(256) + c(128), c(128), c(128))
        self.up2_t = nn.ConvTranspose3d(c(128), c(128), 2, stride=2)
        self.up2 = _block(c(128) + c(64), c(64), c(64))
        self.out = nn.Conv3d(c(64), n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(self.lowpass(x))
        d2 = self.down2(self.pool(self.drop(d1)))
        b = self.bottom(self.pool(self.drop(d2)))
        u1 = self.drop(self.up1(torch.cat([self.up1_t(b), d2], dim=1)))
        u2 = self.drop(self.up2(torch.cat([self.up2_t(u1), d1], dim=1)))
        return self.out(u2)


class QuantizableUNet(nn.Module):
    """The forward pass of an eval-mode :class:`DeepSSETracerUNet` whose batch norm was folded
    (``cryosse.infer.fold_batchnorm``), with the stubs eager-mode int8 quantization needs:
    float input quantized at the start, logits dequantized at the end, the two skip
    concatenations as quantizable ops and each convolution fused with its ReLU. Before
    quantization it computes what the network does (dropout is the identity in eval mode).
    """

    def __init__(self, folded: DeepSSETracerUNet):
        super().__init__()
        from torch.ao.nn.quantized import FloatFunctional
        from torch.ao.quantization import DeQuantStub, QuantStub, fuse_modules

        names = ("lowpass", "down1", "down2", "bottom", "pool", "up1_t", "up1", "up2_t", "up2", "out")
        for name in names:
            setattr(self, name, copy.deepcopy(getattr(folded, name)))
        for name in ("down1", "down2", "bottom", "up1", "up2"):
            block = getattr(self, name)
            if [type(m) for m in block] != [nn.Conv3d, nn.ReLU] * 2:
                raise ValueError(
                    f"{name}: expected Conv3d, ReLU, Conv3d, ReLU (batch norm folded), got {block}"
                )
            fuse_modules(block, [["0", "1"], ["2", "3"]], inplace=True)
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.cat1, self.cat2 = FloatFunctional(), FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(self.quant(self.lowpass(x)))  # the fixed low-pass stays in float
        d2 = self.down2(self.pool(d1))
        b = self.bottom(self.pool(d2))
        u1 = self.up1(self.cat1.cat([self.up1_t(b), d2], dim=1))
        u2 = self.up2(self.cat2.cat([self.up2_t(u1), d1], dim=1))
        return self.dequant(self.out(u2))


def build_model(model_args: dict[str, Any]) -> DeepSSETracerUNet:
    return DeepSSETracerUNet(**model_args)


#: weight initialisations: PyTorch's default (Kaiming-uniform), or the authors' network's
#: N(0, 0.1) for every Conv3d weight (biases and the transposed convolutions keep PyTorch's)
INITS = ("default", "normal")


def init_weights(model: nn.Module, scheme: str = "default") -> nn.Module:
    """Initialise ``model`` in place by ``scheme`` (one of :data:`INITS`); return it."""
    if scheme not in INITS:
        raise ValueError(f"init {scheme!r} is not one of {', '.join(INITS)}")
    if scheme == "normal":
        for m in model.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.normal_(m.weight, 0.0, 0.1)
    return model


def _weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta: Any) -> None:
    """Write a stand-alone checkpoint atomically.

    ``meta`` should carry what a user needs to trust it alone: ``loss`` (name and
    parameters), ``split``, ``best_val`` and ``epoch``; weights, model arguments,
    architecture, package version and a digest of the weights are added here.
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "arch": ARCH,
        "model_args": dict(model.model_args),  # type: ignore[attr-defined]
        "state_dict": state,
        "weights_sha256": _weights_digest(state),
        "cryosse_version": __version__,
        **meta,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def checkpoint_classes(meta: dict) -> int:
    """The number of output classes of a loaded checkpoint (3 for checkpoints that do not say)."""
    return int((meta.get("model_args") or {}).get("n_classes", 3))


def require_classes(meta: dict, n_classes: int, path: str | os.PathLike, what: str) -> None:
    """Refuse a checkpoint whose class count is not the run's ``n_classes`` (3 or 4)."""
    have = checkpoint_classes(meta)
    if have != int(n_classes):
        raise CheckpointError(
            f"{path}: a {have}-class checkpoint ({_class_words(have)}), but {what} has {n_classes} classes "
            f"({_class_words(int(n_classes))}); use a checkpoint trained with `classes: {n_classes}`, "
            f"or set `classes: {have}`"
        )


def _class_words(n: int) -> str:
    return "background, helix, sheet" + (", nucleic acid" if n == 4 else "")


def _looks_like_map(path: Path) -> bool:
    """Whether the file has an MRC/CCP4 header (the word MAP at byte 208)."""
    with open(path, "rb") as fh:
        fh.seek(208)
        return fh.read(4) == b"MAP "


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[DeepSSETracerUNet, dict]:
    """Load a checkpoint with ``weights_only=True``; return (model in eval mode, metadata).

    Raises :class:`CheckpointError` for a file that is not a cryosse checkpoint,
    another architecture, weights that do not fit, or weights whose digest does
    not match (a tampered or damaged file).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise CheckpointError(f"{path}: the file is empty, not a checkpoint")
    if head[:2] != b"PK" and head[:1] != b"\x80":  # neither a zip archive (torch.save) nor a pickle
        raise CheckpointError(
            f"{path}: not a checkpoint (a PyTorch checkpoint is a zip archive; this file starts with"
            f" {head!r}{', as a map does' if _looks_like_map(path) else ''})"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        if "weights_only" in str(exc) or "Weights only" in str(
            exc
        ):  # never repeat torch's advice to unpickle
            raise CheckpointError(
                f"{path}: holds Python objects besides tensors (a pickle, not a cryosse checkpoint); "
                "refused, since loading it could run code"
            ) from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not a cryosse checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else type(ckpt).__name__!r})"
        )
    if ckpt.get("arch") != ARCH:
        raise CheckpointError(f"{path}: architecture {ckpt.get('arch')!r}, expected {ARCH!r}")
    args = ckpt.get("model_args") if isinstance(ckpt.get("model_args"), dict) else {}
    for key, value in args.items():
        if key in ("in_channels", "n_classes", "width", "dropout", "input_lowpass"):
            try:
                float(value)
            except (TypeError, ValueError):
                raise CheckpointError(
                    f"{path}: its stored network settings give {key} = {value!r}, not a number; the file is damaged"
                ) from None
    if int(args.get("in_channels", 1)) != 1:
        raise CheckpointError(
            f"{path}: a network of {args['in_channels']} input channels; cryosse maps have one"
        )
    if int(args.get("n_classes", 3)) not in (3, 4):
        raise CheckpointError(
            f"{path}: a network of {args['n_classes']} output classes; cryosse networks have 3 "
            "(background, helix, sheet) or 4 (and nucleic acid)"
        )
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or _weights_digest(state) != ckpt.get("weights_sha256"):
        raise CheckpointError(
            f"{path}: the weights do not match their recorded sha256; the file was altered or damaged"
        )
    try:
        model = build_model(ckpt["model_args"])
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit {ARCH} with {ckpt.get('model_args')}: {exc}"
        ) from exc
    model.eval()
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, meta
