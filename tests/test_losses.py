"""The five losses against independent references (torch, MONAI) and their contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cryosse.loss_names import GAMMA_LOSSES, LOSS_COLOURS, LOSS_NAMES, WEIGHTED_LOSSES
from cryosse.losses import (
    LOSSES,
    CEDiceLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalDiceLoss,
    FocalLoss,
    make_loss,
    takes_gamma,
    takes_weights,
)

monai_losses = pytest.importorskip("monai.losses")

torch.set_num_threads(1)
SHAPE = (2, 3, 6, 5, 7)


def _data(seed: int = 0, shape=SHAPE, scale: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * scale
    b, c, d, h, w = shape
    target = torch.randint(0, c, (b, d, h, w), generator=g)
    return logits, target


def _box_mask(shape=SHAPE, sl=(slice(1, 5), slice(1, 4), slice(2, 6))):
    b, _, d, h, w = shape
    mask = torch.zeros((b, d, h, w), dtype=torch.bool)
    mask[(slice(None), *sl)] = True
    return mask, sl


def _all(shape=SHAPE):
    b, _, d, h, w = shape
    return torch.ones((b, d, h, w), dtype=torch.bool)


def _monai_focal(logits, target, gamma):
    ref = monai_losses.FocalLoss(
        include_background=True, to_onehot_y=True, gamma=gamma, alpha=None, use_softmax=True, reduction="mean"
    )
    # MONAI averages over classes too (B*C*voxels elements); ours sums over classes.
    return ref(logits, target[:, None]) * logits.shape[1]


def _monai_dice(logits, target):
    ref = monai_losses.DiceLoss(
        include_background=False,
        to_onehot_y=True,
        softmax=True,
        smooth_nr=1.0,
        smooth_dr=1.0,
        squared_pred=False,
        batch=False,
        reduction="mean",
    )
    # MONAI: mean over maps and (helix, sheet) of 1 - dice_k; ours: mean over maps of 2 - sum_k dice_k.
    return ref(logits, target[:, None]) * 2


def test_registry_names():
    # one order everywhere: the registry's is the torch-free list the tables sort by
    assert tuple(LOSSES) == LOSS_NAMES == ("CE", "FL", "DL", "CE_DL", "FL_DL")
    # what torch-free code (tables, figures) knows of each loss follows the registry
    assert GAMMA_LOSSES == tuple(n for n in LOSSES if takes_gamma(n))
    assert WEIGHTED_LOSSES == tuple(n for n in LOSSES if takes_weights(n))
    assert set(LOSS_COLOURS) == set(LOSSES)


def test_the_config_schema_lists_the_registrys_losses():
    """Every loss enum of the config schema is the registry's names (a new loss is added there too)."""
    import yaml

    found = []

    def walk(node):
        if isinstance(node, dict):
            if "CE" in (node.get("enum") or []):
                found.append(list(node["enum"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    root = Path(__file__).resolve().parents[1]
    walk(yaml.safe_load((root / "src" / "cryosse" / "data" / "config.schema.yaml").read_text()))
    assert len(found) == 4 and all(e == list(LOSS_NAMES) for e in found), found
    assert isinstance(make_loss("FL_DL", gamma=1, w_a=0.5, w_b=2), FocalDiceLoss)
    with pytest.raises(ValueError, match="takes"):
        make_loss("CE", gamma=2)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("XE")


def test_ce_matches_torch():
    logits, target = _data()
    assert torch.allclose(
        CrossEntropyLoss()(logits, target, _all()), F.cross_entropy(logits, target), atol=1e-6
    )
    mask, sl = _box_mask()
    ref = F.cross_entropy(logits[(slice(None), slice(None), *sl)], target[(slice(None), *sl)])
    assert torch.allclose(CrossEntropyLoss()(logits, target, mask), ref, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0, 8.0])
def test_focal_matches_monai(gamma):
    logits, target = _data(1)
    ours = FocalLoss(gamma)(logits, target, _all())
    assert torch.allclose(ours, _monai_focal(logits, target, gamma), rtol=1e-5, atol=1e-6)
    mask, sl = _box_mask()
    ref = _monai_focal(logits[(slice(None), slice(None), *sl)], target[(slice(None), *sl)], gamma)
    assert torch.allclose(FocalLoss(gamma)(logits, target, mask), ref, rtol=1e-5, atol=1e-6)


def test_focal_gamma0_is_ce_and_decreases_with_gamma():
    logits, target = _data(2)
    m = _all()
    assert torch.allclose(FocalLoss(0)(logits, target, m), CrossEntropyLoss()(logits, target, m), atol=1e-6)
    values = [FocalLoss(g)(logits, target, m).item() for g in (0, 1, 2, 5, 8)]
    assert values == sorted(values, reverse=True)


def test_dice_matches_monai():
    logits, target = _data(3)
    assert torch.allclose(DiceLoss()(logits, target, _all()), _monai_dice(logits, target), atol=1e-6)
    mask, sl = _box_mask()
    ref = _monai_dice(logits[(slice(None), slice(None), *sl)], target[(slice(None), *sl)])
    assert torch.allclose(DiceLoss()(logits, target, mask), ref, atol=1e-6)


def test_dice_perfect_near_zero_and_bounded():
    _, target = _data(4)
    perfect = F.one_hot(target, 3).permute(0, 4, 1, 2, 3).float() * 40.0
    assert DiceLoss()(perfect, target, _all()).item() < 1e-3
    # absent class, absent from the prediction too: still ~0 (smoothing makes it 1)
    t2 = target.clone()
    t2[t2 == 2] = 0
    p2 = F.one_hot(t2, 3).permute(0, 4, 1, 2, 3).float() * 40.0
    assert DiceLoss()(p2, t2, _all()).item() < 1e-3
    wrong = F.one_hot((target + 1) % 3, 3).permute(0, 4, 1, 2, 3).float() * 40.0
    assert DiceLoss()(wrong, target, _all()).item() > 1.9
    for seed in range(20):
        logits, tgt = _data(seed, scale=10.0 * (seed % 3))
        v = DiceLoss()(logits, tgt, _box_mask()[0]).item()
        assert 0.0 <= v <= 2.0


def test_combined_are_weighted_sums():
    logits, target = _data(5)
    mask = _box_mask()[0]
    ce, dl = CrossEntropyLoss()(logits, target, mask), DiceLoss()(logits, target, mask)
    fl = FocalLoss(2)(logits, target, mask)
    assert torch.allclose(CEDiceLoss()(logits, target, mask), ce + dl)
    assert torch.allclose(FocalDiceLoss(2)(logits, target, mask), fl + dl)
    assert torch.allclose(FocalDiceLoss(2, 0.25, 3.0)(logits, target, mask), 0.25 * fl + 3.0 * dl)
    assert torch.allclose(CEDiceLoss(2.0, 0.5)(logits, target, mask), 2.0 * ce + 0.5 * dl)


ALL_LOSSES = [
    CrossEntropyLoss(),
    FocalLoss(2.0),
    FocalLoss(0.5),
    DiceLoss(),
    CEDiceLoss(),
    FocalDiceLoss(1.0),
    FocalDiceLoss(8.0, 0.5, 2.0),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda m: type(m).__name__ + repr(m.extra_repr()))
def test_masked_voxels_change_nothing(loss):
    logits, target = _data(6)
    mask = _box_mask()[0]
    a = logits.clone().requires_grad_(True)
    la = loss(a, target, mask)
    la.backward()
    # change logits and labels outside the mask wildly, including inf and NaN
    b0 = logits.clone()
    out = ~mask[:, None].expand_as(b0)
    b0[out] = torch.randn(int(out.sum())) * 100
    b0[0, 0, 0, 0, 0] = float("inf")
    b0[1, 2, 0, 0, 0] = float("nan")
    t2 = target.clone()
    t2[~mask] = (t2[~mask] + 1) % 3
    b = b0.requires_grad_(True)
    lb = loss(b, t2, mask)
    lb.backward()
    assert torch.allclose(la, lb, atol=1e-6)
    assert torch.isfinite(b.grad).all()
    assert torch.all(b.grad[out] == 0)
    assert torch.allclose(a.grad, b.grad, atol=1e-7)


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda m: type(m).__name__ + repr(m.extra_repr()))
def test_finite_gradients_when_a_class_is_absent(loss):
    logits, target = _data(7, scale=30.0)  # saturated softmax: p_t of exactly 1 or 0 occurs
    target[target == 2] = 0  # no sheet at all
    for t in (target, torch.zeros_like(target)):
        x = logits.clone().requires_grad_(True)
        v = loss(x, t, _box_mask()[0])
        v.backward()
        assert torch.isfinite(v)
        assert torch.isfinite(x.grad).all()


def test_bad_shapes_are_reported():
    logits, target = _data()
    with pytest.raises(ValueError, match="target shape"):
        CrossEntropyLoss()(logits, target[:, :-1], _all())
    with pytest.raises(ValueError, match="mask must be bool"):
        DiceLoss()(logits, target, _all().float())
