"""Running the network on a density box: padding, device choice, probabilities.

One function, used by validation during training, by evaluation and by
``cryosse predict``, so that every path normalises, pads and crops alike.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cryosse.model import PAD_MULTIPLE


def normalise_density(box: np.ndarray) -> np.ndarray:
    """SPEC 4 (TOOL): divide by the box maximum, set negatives to 0, z-score over the box."""
    box = np.asarray(box, np.float32)
    if not np.all(np.isfinite(box)):
        raise ValueError("density has NaN or infinite values")
    mx = float(box.max())
    if mx <= 0:
        raise ValueError("density has no positive value (all zero or negative); nothing to segment")
    out = np.maximum(box / mx, 0.0)
    sd = float(out.std())
    if sd == 0:
        raise ValueError("density is constant after normalisation; nothing to segment")
    return ((out - out.mean()) / sd).astype(np.float32)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Zero-pad the last three dims of (B, C, D, H, W) up to a multiple; return the original size."""
    d, h, w = x.shape[-3:]
    pd, ph, pw = (-d) % multiple, (-h) % multiple, (-w) % multiple
    if pd or ph or pw:
        x = F.pad(x, (0, pw, 0, ph, 0, pd))
    return x, (d, h, w)


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, density: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Class probabilities (C, z, y, x) float32 for a normalised density box [z, y, x]."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    model = model.to(dev).eval()
    x = torch.from_numpy(np.ascontiguousarray(density, np.float32))[None, None].to(dev)
    x, (d, h, w) = pad_to_multiple(x)
    logits = model(x)[..., :d, :h, :w]
    return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()
