"""Shared fixtures: paths to the project and to the real test data beside it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("CRYOSSE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def real() -> Path:
    """../shared/data/real (read in place, never copied); tests skip where it is absent."""
    if not REAL.is_dir():
        pytest.skip(f"real test data not found at {REAL}")
    return REAL


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
