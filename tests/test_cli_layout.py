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


JUDGE_EXAMPLE = EXPORT.parent / "llm_judge"


@pytest.mark.parametrize(
    ("example", "flags"),
    [
        (JUDGE_EXAMPLE, []),  # the PPI++, audit and judge-noise tables
        (EXPORT, ["--sequential", "msprt", "--bayesian"]),
    ],
)
def test_width_fits_a_piped_report_to_80_columns(example, flags):
    """Piped or written to a file the text report has no width limit; --width 80 fits
    every line, tables included, to 80 characters without splitting a cell from its
    column's name."""
    args = ["analyze", "-q", "-c", str(example / "experiment.toml")]
    args += [str(example / "assignments.parquet"), str(example / "events.parquet"), *flags]
    unlimited = CliRunner().invoke(cli, args)
    fitted = CliRunner().invoke(cli, [*args, "--width", "80"])
    assert unlimited.exit_code == 0 and fitted.exit_code == 0, fitted.output
    assert max(len(line) for line in unlimited.output.splitlines()) > 80
    lines = fitted.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "\u00a0" not in fitted.output
    if example == JUDGE_EXAMPLE:  # each estimate's row: its interval beside its name
        assert any(line.lstrip().startswith("CI [") for line in lines) or any(
            "CI [" in line for line in lines if line.lstrip().startswith("judge only:")
        )
        assert not any(line.rstrip().endswith(" CI") for line in lines)


def test_width_below_40_is_refused():
    out = CliRunner().invoke(cli, ["analyze", "x.csv", "--width", "20"])
    assert out.exit_code == 2 and "--width" in out.output
