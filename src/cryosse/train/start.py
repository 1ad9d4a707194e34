"""The weights and network settings a training run starts from (``init_from``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryosse.model import (
    CheckpointError,
    DeepSSETracerUNet,
    checkpoint_classes,
    load_checkpoint,
    shipped_model_path,
)

log = logging.getLogger(__name__)


def _start_path(init_from: str) -> Path:
    return shipped_model_path() if init_from == "package" else Path(init_from)


def _start_args(init_from: str) -> dict[str, Any]:
    """The network settings of the checkpoint training starts from ({} for a fresh network)."""
    if not init_from or not _start_path(init_from).is_file():
        return {}  # a missing file is reported by _start_weights
    return dict(load_checkpoint(_start_path(init_from))[0].model_args)


def _start_weights(model: DeepSSETracerUNet, init_from: str) -> dict[str, str]:
    """Load the weights training starts from (``init_from``: "" none, "package" the shipped model, or a checkpoint)."""
    if not init_from:
        return {}
    path = _start_path(init_from)
    if init_from == "package" and not path.is_file():
        raise FileNotFoundError(f"{path}: the model shipped with cryosse is missing; reinstall cryosse")
    src, meta = load_checkpoint(path)
    if src.model_args["width"] != model.model_args["width"]:
        raise CheckpointError(
            f"{path}: width {src.model_args['width']:g}, but this run trains width {model.model_args['width']:g};"
            " set train.width to match"
        )
    weights = src.state_dict()
    new_head = checkpoint_classes(meta) != model.model_args["n_classes"]
    if new_head:  # e.g. the 3-class shipped model fine-tuned to 4 classes: all but the output layer
        weights = {k: v for k, v in weights.items() if not k.startswith("out.")}
        log.info(
            "%s: %d classes, this run %d: the output layer starts fresh, the rest from the checkpoint",
            path,
            checkpoint_classes(meta),
            model.model_args["n_classes"],
        )
    model.load_state_dict(weights, strict=not new_head)
    return {
        "path": "package" if init_from == "package" else str(path),
        "weights_sha256": str(meta["weights_sha256"]),
        **({"new_output_layer": "yes"} if new_head else {}),
    }
