"""``abkit simulate`` and ``simulate-replay`` say on stderr which true effects they
simulated and the exact command that analyses what they wrote; stdout stays empty."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner

from abkit_cli.main import cli


def _analyse_printed_command(stderr: str, cwd) -> dict:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("analyse it with: "))
    args = shlex.split(line.removeprefix("analyse it with: "))
    assert args[:2] == ["abkit", "analyze"]
    out = CliRunner().invoke(cli, [*args[1:], "-f", "json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


@pytest.mark.parametrize("mode", ["b2c", "b2b"])
def test_simulate_prints_its_true_effects_and_the_command_that_analyses_it(tmp_path, mode):
    folder = tmp_path / "my export"  # a space: the command must quote it
    args = ["--users", "400", "--accounts", "8", "--mode", mode, "--share-lift", "0.1"]
    args += ["--days", "10", "--enrol-days", "4", "--format", "csv"]
    out = CliRunner().invoke(cli, ["simulate", str(folder), *args])
    assert out.exit_code == 0, out.output
    assert out.stdout == ""
    assert "share probability per output +10.0%" in out.stderr
    assert "daily return probability" not in out.stderr  # a lift of 0 is not listed
    result = _analyse_printed_command(out.stderr, tmp_path)
    assert result["experiment"]["mode"] == mode


def test_an_aa_simulation_says_it_has_no_true_effect(tmp_path):
    out = CliRunner().invoke(cli, ["simulate", str(tmp_path / "aa"), "--users", "200"])
    assert out.exit_code == 0 and "none (every lift is 0" in out.stderr


def test_simulate_replay_prints_its_true_differences_and_the_command(tmp_path):
    args = ["--users", "60", "--latency-lift", "-0.08", "--versions", "old,new"]
    out = CliRunner().invoke(cli, ["simulate-replay", str(tmp_path / "r"), *args])
    assert out.exit_code == 0, out.output
    assert out.stdout == ""
    assert "of 'new' against 'old'" in out.stderr and "latency -8.0%" in out.stderr
    result = _analyse_printed_command(out.stderr, tmp_path)
    assert result["experiment"]["control"] == "old"


def test_simulate_with_the_week_one_model_prints_the_true_d30_effect(tmp_path):
    args = ["--users", "300", "--days", "10", "--enrol-days", "2", "--d30-direct-lift", "0.3"]
    out = CliRunner().invoke(cli, ["simulate", str(tmp_path / "d30"), *args])
    assert out.exit_code == 0, out.output
    assert "odds of activity from day 8 on, not through the first week +30.0%" in out.stderr
    line = next(ln for ln in out.stderr.splitlines() if ln.startswith("true D30 retention"))
    assert "through the first week +0.0000, direct +0.0" in line
