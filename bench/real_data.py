"""Where the benchmarks find the real maps: ``$CRYOSSE_REAL_DATA``, else ``../shared/data/real``
beside the project (the developers' copy; a user's clone has none). A benchmark that needs them
and finds none says what it skipped instead of failing."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("CRYOSSE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def skipped(what: str) -> str:
    """The line a benchmark prints for a part it cannot run without the real maps."""
    return f"skipped: {what} (needs the real maps; none at {REAL}: set CRYOSSE_REAL_DATA)"
