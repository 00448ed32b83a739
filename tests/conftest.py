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


def write_cli_files(tmp_path: Path, export, toml: str | None = None) -> list[str]:
    """Write a simulated export (and optionally a config) for CLI tests; returns the
    argument list ``[assignments, events]`` plus ``["-c", config]`` when given."""
    export.assignments.write_parquet(tmp_path / "a.parquet")
    export.events.write_parquet(tmp_path / "e.parquet")
    args = [str(tmp_path / "a.parquet"), str(tmp_path / "e.parquet")]
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml)
        args += ["-c", str(tmp_path / "c.toml")]
    return args


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ai_summary_export"


def analyze_example(sequential: str | None = None):
    """The bundled example export analysed with its own config."""
    import abkit

    return abkit.analyze(
        EXAMPLE / "assignments.parquet",
        EXAMPLE / "experiment.toml",
        events=EXAMPLE / "events.parquet",
        sequential=sequential,
    )


# a ratio metric and a guardrail on the simulated exports' events
SHARE = {"name": "share", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
ERRORS = {
    "name": "errors",
    "type": "ratio",
    "numerator": "error",
    "denominator": "ai_output",
    "direction": "decrease",
    "guardrail": True,
    "margin": 0.05,
}


def analyze_small_b2b(*metrics: dict):
    """A small simulated B2B export (16 accounts) analysed in B2B mode with ``metrics``."""
    import abkit
    from abkit.dev.simulate import simulate

    e = simulate(mode="b2b", users=3_000, accounts=16, days=6, enrol_days=2, seed=4)
    config = {
        "experiment": {"name": "b2b", "account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 1_000},
        "metrics": list(metrics),
    }
    return abkit.analyze(e.assignments, config, events=e.events)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of this test session (tests/engines.py, postgres_server):
    started on first use, stopped at the end; skipped when PostgreSQL is not installed,
    a failure under CI=true."""
    from tests.engines import postgres_server

    with postgres_server() as server:
        yield server
