"""The five losses of Mu et al. 2024 (SPEC 8, paper equations 1-6) and their registry.

Every loss is an ``nn.Module`` with one contract::

    loss(logits, target, mask) -> scalar tensor
    logits (B, C, D, H, W) float, target (B, D, H, W) int64 in 0..C-1,
    mask (B, D, H, W) bool: the centre-box voxels (padding and context excluded).

Voxels outside the mask change neither the loss nor its gradient (whatever their
logits or labels). CE and FL are averaged over the masked voxels of the batch;
the Dice term is computed per map over the non-background classes (helix and sheet;
with the optional fourth class, nucleic acid too), smoothed by
1.0 in numerator and denominator (a class absent from both the map and the
prediction scores 1), and averaged over the batch. Combined losses weight their
two terms, ``w_a * CE|FL + w_b * DL`` (1, 1 in the paper).

``LOSSES`` (name -> class) is what the workflow's wildcards and the training CLI
use; :func:`make_loss` builds one from a name and its parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _check(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if logits.dim() != 5:
        raise ValueError(f"logits must be (B, C, D, H, W), got shape {tuple(logits.shape)}")
    b, _, d, h, w = logits.shape
    if tuple(target.shape) != (b, d, h, w):
        raise ValueError(f"target shape {tuple(target.shape)} does not fit logits {tuple(logits.shape)}")
    if tuple(mask.shape) != (b, d, h, w):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not fit logits {tuple(logits.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool, got {mask.dtype}")


def _clean(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits in float32 with masked-out voxels set to 0 (so they cannot inject inf/NaN), target 0 there."""
    logits = torch.where(
        mask[:, None], logits.float(), torch.zeros((), dtype=torch.float32, device=logits.device)
    )
    target = torch.where(mask, target.long(), torch.zeros((), dtype=torch.long, device=target.device))
    return logits, target


def _masked_mean(per_voxel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    per_voxel = torch.where(mask, per_voxel, torch.zeros_like(per_voxel))
    return per_voxel.sum() / mask.sum().clamp(min=1)


class CrossEntropyLoss(nn.Module):
    """CE (eq. 1): mean over masked voxels of -log p_t."""

    name = "CE"
    params: tuple[str, ...] = ()

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check(logits, target, mask)
        logits, target = _clean(logits, target, mask)
        return _masked_mean(F.cross_entropy(logits, target, reduction="none"), mask)


class FocalLoss(nn.Module):
    """FL (eq. 2): mean over masked voxels of -(1 - p_t)^gamma log p_t (no alpha; gamma 0 = CE)."""

    name = "FL"
    params: tuple[str, ...] = ("gamma",)

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check(logits, target, mask)
        logits, target = _clean(logits, target, mask)
        logpt = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        per_voxel = -logpt
        if self.gamma != 0:
            # 1 - p_t = -expm1(log p_t), accurate near p_t = 1; clamped so that the
            # gradient of x**gamma stays finite at x = 0 for gamma < 1.
            one_minus = (-torch.expm1(logpt)).clamp(min=torch.finfo(torch.float32).tiny)
            per_voxel = one_minus.pow(self.gamma) * per_voxel
        return _masked_mean(per_voxel, mask)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma:g}"


class DiceLoss(nn.Module):
    """DL (eqs. 3-4): K - D with D = sum over the K scored classes of (2 sum y p + s) / (sum y + sum p + s), per map.

    ``classes`` None (the default) scores every non-background class of the logits:
    helix and sheet (K = 2, the paper's 2 - D) for 3 channels, nucleic acid too for 4.
    """

    name = "DL"
    params: tuple[str, ...] = ()

    def __init__(self, smooth: float = 1.0, classes: Sequence[int] | None = None):
        super().__init__()
        self.smooth = float(smooth)
        self.classes = None if classes is None else tuple(int(k) for k in classes)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check(logits, target, mask)
        logits, target = _clean(logits, target, mask)
        prob = torch.softmax(logits, dim=1)
        m = mask.float()
        d = torch.zeros(logits.shape[0], dtype=torch.float32, device=logits.device)
        classes = self.classes if self.classes is not None else tuple(range(1, logits.shape[1]))
        for k in classes:
            p = prob[:, k] * m
            y = (target == k).float() * m
            inter = (p * y).flatten(1).sum(1)
            denom = p.flatten(1).sum(1) + y.flatten(1).sum(1)
            d = d + (2.0 * inter + self.smooth) / (denom + self.smooth)
        return (len(classes) - d).mean()

    def extra_repr(self) -> str:
        return f"smooth={self.smooth:g}"


class _Combined(nn.Module):
    params: tuple[str, ...] = ("w_a", "w_b")

    def __init__(self, first: nn.Module, w_a: float = 1.0, w_b: float = 1.0):
        super().__init__()
        if w_a < 0 or w_b < 0:
            raise ValueError(f"term weights must be >= 0, got ({w_a}, {w_b})")
        self.first = first
        self.dice = DiceLoss()
        self.w_a, self.w_b = float(w_a), float(w_b)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.w_a * self.first(logits, target, mask) + self.w_b * self.dice(logits, target, mask)

    def extra_repr(self) -> str:
        return f"w_a={self.w_a:g}, w_b={self.w_b:g}"


class CEDiceLoss(_Combined):
    """CE_DL (eq. 5): w_a * CE + w_b * DL."""

    name = "CE_DL"
    params = ("w_a", "w_b")

    def __init__(self, w_a: float = 1.0, w_b: float = 1.0):
        super().__init__(CrossEntropyLoss(), w_a, w_b)


class FocalDiceLoss(_Combined):
    """FL_DL (eq. 6): w_a * FL(gamma) + w_b * DL."""

    name = "FL_DL"
    params = ("gamma", "w_a", "w_b")

    def __init__(self, gamma: float = 2.0, w_a: float = 1.0, w_b: float = 1.0):
        super().__init__(FocalLoss(gamma), w_a, w_b)


#: the registry: loss name -> class, in the order of :data:`~cryosse.loss_names.LOSS_NAMES`
#: (feeds the Snakemake wildcards and the CLI)
LOSSES: dict[str, type[nn.Module]] = {
    cls.name: cls for cls in (CrossEntropyLoss, FocalLoss, DiceLoss, CEDiceLoss, FocalDiceLoss)
}


def make_loss(name: str, **params: Any) -> nn.Module:
    """Build a registered loss; parameters it does not take are an error."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
    cls = LOSSES[name]
    extra = set(params) - set(cls.params)
    if extra:
        raise ValueError(f"loss {name} takes {list(cls.params) or 'no parameters'}, got {sorted(extra)}")
    return cls(**params)


def takes_gamma(name: str) -> bool:
    return "gamma" in LOSSES[name].params


def takes_weights(name: str) -> bool:
    return "w_a" in LOSSES[name].params
