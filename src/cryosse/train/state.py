"""The resume state of a training run: RNG states, the fingerprint of its inputs, tensors on the CPU."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

STATE_FORMAT = "cryosse-train-state/1"


def _rng_state(np_rng: np.random.Generator) -> dict[str, Any]:
    st = {
        "torch": torch.get_rng_state(),
        "numpy": _to_plain(np_rng.bit_generator.state),
        "python": _to_plain(random.getstate()),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _to_plain(obj: Any) -> Any:
    """RNG states as lists/ints/strings only (loadable with weights_only=True)."""
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_to_plain(v) for v in obj]
    return obj


def _restore_rng(st: dict[str, Any], np_rng: np.random.Generator) -> None:
    torch.set_rng_state(st["torch"])
    np_rng.bit_generator.state = st["numpy"]
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _fingerprint(**kw: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}


def _state_classes(st: Any) -> int | None:
    """Output classes of the network in a resume state (None when it cannot tell)."""
    try:
        return int(st["model"]["out.weight"].shape[0])
    except (TypeError, KeyError, AttributeError, IndexError):
        return None


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj
