"""What this machine is, and choices measured on it that are worth remembering between runs.

``cryosse predict --precision auto`` on a CPU times fp32 against bf16 (CPU flags do not tell
which is faster: :func:`cryosse.infer.faster_on_cpu`). The answer depends on the CPU, the
thread count, the PyTorch build and the network, so it is remembered under exactly those in
``precision.json`` of the user's cache folder (``$CRYOSSE_CACHE``, else
``$XDG_CACHE_HOME/cryosse``, else ``~/.cache/cryosse``), and the next run on the same machine
skips the timing. A cache that cannot be read or written is ignored (the choice is timed).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_ENV = "CRYOSSE_CACHE"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cryosse"


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform says."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_has_vnni() -> bool:
    """True when the CPU reports AVX512-VNNI or AVX-VNNI (Linux: /proc/cpuinfo; elsewhere False)."""
    return bool({"avx512_vnni", "avx_vnni"} & set((_cpuinfo("flags") or "").split()))


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX; Linux: /proc/cpuinfo)."""
    return bool({"avx512_bf16", "amx_bf16"} & set((_cpuinfo("flags") or "").split()))


def remembered(
    key: dict[str, Any], compute: Callable[[], dict[str, Any]], name: str = "precision.json"
) -> dict:
    """``compute()``'s answer for ``key``, from the cache when it holds one (``"cached": True``
    and the date it was measured), else computed now and stored (``"cached": False``)."""
    path = cache_dir() / name
    tag = json.dumps(key, sort_keys=True)
    try:
        table = json.loads(path.read_text())
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if isinstance(table.get(tag), dict):
        return {**table[tag], "cached": True}
    value = {**compute(), "measured": time.strftime("%Y-%m-%d")}
    try:
        from cryosse.io import write_json

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {**table, tag: value})
    except OSError as exc:  # a read-only home: the choice still stands for this run
        log.debug("%s: not cached (%s)", path, exc)
    return {**value, "cached": False}
