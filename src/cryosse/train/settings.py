"""Setting names (``lr0.001_g2_w1-2``), the grid of settings, and what the workflow asks of them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from cryosse.losses import LOSSES, takes_gamma, takes_weights


def setting_name(
    loss: str, lr: float, gamma: float | None = None, weights: Sequence[float] = (1.0, 1.0)
) -> str:
    """``lr{lr:g}`` + ``_g{gamma:g}`` (FL, FL_DL) + ``_w{wa:g}-{wb:g}`` (CE_DL, FL_DL, weights != (1, 1))."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    name = f"lr{lr:g}"
    if takes_gamma(loss):
        if gamma is None:
            raise ValueError(f"loss {loss} needs a gamma")
        name += f"_g{gamma:g}"
    if takes_weights(loss):
        wa, wb = (float(w) for w in weights)
        if (wa, wb) != (1.0, 1.0):
            name += f"_w{wa:g}-{wb:g}"
    return name


_NUM = r"[0-9.eE+-]+"
SETTING_RE = re.compile(
    rf"lr(?P<lr>{_NUM}?)(?:_g(?P<gamma>{_NUM}?))?(?:_w(?P<wa>[0-9.eE+]+)-(?P<wb>[0-9.eE+]+))?"
)


def parse_setting(loss: str, setting: str) -> dict[str, Any]:
    """The inverse of :func:`setting_name`: ``{"lr": .., "loss_params": {..}}``; a name that does not round-trip is an error."""
    m = SETTING_RE.fullmatch(setting)
    if not m:
        raise ValueError(f"setting {setting!r} is not of the form lr<lr>[_g<gamma>][_w<wa>-<wb>]")
    try:
        lr = float(m["lr"])
        gamma = float(m["gamma"]) if m["gamma"] is not None else None
        weights = (float(m["wa"]), float(m["wb"])) if m["wa"] is not None else (1.0, 1.0)
    except ValueError as exc:
        raise ValueError(f"setting {setting!r}: {exc}") from exc
    if takes_gamma(loss) != (gamma is not None) or (not takes_weights(loss) and m["wa"] is not None):
        raise ValueError(
            f"setting {setting!r} does not fit loss {loss} (parameters {list(LOSSES[loss].params)})"
        )
    if setting_name(loss, lr, gamma, weights) != setting:
        raise ValueError(
            f"setting {setting!r} is not in canonical form ({setting_name(loss, lr, gamma, weights)!r})"
        )
    params: dict[str, float] = {}
    if takes_gamma(loss):
        params["gamma"] = gamma  # type: ignore[assignment]
    if takes_weights(loss):
        params["w_a"], params["w_b"] = weights
    return {"lr": lr, "loss_params": params}


def grid_settings(
    loss: str, lrs: Iterable[float], gammas: Iterable[float], term_weights: Iterable[Sequence[float]]
) -> list[str]:
    """Every setting of one loss in the grid, in a stable order, without duplicates."""
    names: list[str] = []
    for lr in lrs:
        for g in gammas if takes_gamma(loss) else [None]:
            for w in term_weights if takes_weights(loss) else [(1.0, 1.0)]:
                n = setting_name(loss, float(lr), g, w)
                if n not in names:
                    names.append(n)
    return names


#: the ``train:`` keys a training job depends on (its Snakemake params: changing any other
#: key, such as the grid, the splits or the resources, retrains nothing that exists)
JOB_KEYS = (
    "width",
    "max_epochs",
    "patience",
    "patch",
    "max_steps_per_epoch",
    "device",
    "dropout",
    "init",
    "batch",
    "foreground",
    "rotate",
    "balance",
    "intensity",
    "lr_schedule",
    "init_from",
    "input_lowpass",
    "realism",
    "amp",
    "match_spectrum",
)


def job_config(train: dict[str, Any]) -> dict[str, Any]:
    """The part of the ``train:`` section that one training job's results depend on."""
    return {k: train[k] for k in JOB_KEYS if k in train}
