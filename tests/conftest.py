"""Shared fixtures and helpers for the abkit test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(*parts: str) -> Path:
    """Path of a real dataset in ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset not available: {path} (../shared/data is absent)")
    return path


def mc_reps(default: int = 2_000) -> int:
    """Monte Carlo size: ABKIT_MC_REPS (full runs use 20,000), reduced by default for CI."""
    return int(os.environ.get("ABKIT_MC_REPS", default))
