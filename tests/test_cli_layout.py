"""The terminal report fits the terminal, and quick runs need no TOML file."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

from abkit_cli.main import cli
from tests.conftest import EXAMPLE, analyze_example

EXPORT = EXAMPLE


@pytest.fixture(scope="module")
def result():
    return analyze_example("cs")


@pytest.mark.parametrize("width", [60, 80, 100, 120])
def test_text_fits_the_width_without_splitting_tokens(result, width):
    text = result.to_text(width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert all(line == line.rstrip() for line in lines)
    # the compact layout keeps every decision and number whole
    for r in result.results:
        assert f"{r.metric} / {r.variant}: {r.decision.outcome.upper()}" in text


def test_wide_layout_when_there_is_room(result):
    wide = result.to_text(400).splitlines()
    header = next(line for line in wide if line.startswith("metric "))
    assert "decided by" in header and "decision" in header
    assert all(line == line.rstrip() for line in wide)


def test_quick_run_flags_replace_the_config(tmp_path):
    a = pl.read_parquet(EXPORT / "assignments.parquet").rename({"user_id": "uid", "variant": "arm"})
    e = pl.read_parquet(EXPORT / "events.parquet").rename({"user_id": "uid"})
    a.write_parquet(tmp_path / "a.parquet")
    e.write_parquet(tmp_path / "e.parquet")
    args = ["analyze", str(tmp_path / "a.parquet"), str(tmp_path / "e.parquet")]
    flags = ["--unit", "uid", "--variant", "arm", "--control", "control", "-f", "json"]
    out = CliRunner().invoke(cli, [*args, *flags])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["experiment"]["unit"] == "uid" and d["experiment"]["control"] == "control"
    assert {r["variant"] for r in d["results"]} == {"summary_v2"}
    out = CliRunner().invoke(cli, [*args, "--unit", "uid", "--variant", "arm", "--control", "ctl"])
    assert out.exit_code == 2 and "ctl" in out.output
