"""`abkit archive add / list / show` and `abkit analyze --bayesian --archive` through
click's runner and as a command run from outside the repository; user errors are one
paragraph and exit code 2, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from abkit_cli.main import cli


@pytest.fixture
def units(tmp_path):
    rng = np.random.default_rng(3)
    variant = np.array(["control", "treatment"] * 1500)
    rate = np.where(variant == "treatment", 0.27, 0.22)
    path = tmp_path / "units.csv"
    pl.DataFrame(
        {
            "user_id": range(3000),
            "variant": variant,
            "converted": (rng.random(3000) < rate).astype(int),
            "revenue": rng.gamma(2.0, 5.0, 3000),
        }
    ).write_csv(path)
    return path


def test_analyze_bayesian_then_archive_commands(tmp_path, units):
    runner = CliRunner()
    arch = str(tmp_path / "arch")
    out = runner.invoke(cli, ["analyze", str(units), "--bayesian", "--archive", arch, "-q"])
    assert out.exit_code == 0, out.output
    assert "Bayesian reading (its own decision, beside the one above)" in out.output
    assert "only 0 past experiments (fewer than 10): the default prior" in out.output
    results = tmp_path / "r.json"
    out = runner.invoke(cli, ["analyze", str(units), "-f", "json", "-o", str(results), "-q"])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["archive", "add", str(results), "--archive", arch])
    assert out.exit_code == 0 and ": 2 result(s) in" in out.output
    out = runner.invoke(cli, ["archive", "list", "--archive", arch])
    assert out.exit_code == 0 and "1 experiment(s)" in out.output
    plot = tmp_path / "past.png"
    out = runner.invoke(
        cli, ["archive", "show", "converted", "--archive", arch, "--plot", str(plot)]
    )
    assert out.exit_code == 0, out.output
    assert "lift raw [95 % interval]" in out.output and "shrunk" in out.output
    assert plot.stat().st_size > 1000
    out = runner.invoke(cli, ["archive", "list"], env={"ABKIT_ARCHIVE": arch})
    assert out.exit_code == 0 and "1 experiment(s)" in out.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["archive", "list", "--archive", "{tmp}/nowhere"], "there is no archive folder here"),
        (["archive", "add", "{tmp}/missing.json", "--archive", "{tmp}/a"], "no such file"),
        (["archive", "add", "{tmp}/bad.json", "--archive", "{tmp}/a"], "not an abkit results"),
        (["archive", "show", "revenue", "--archive", "{tmp}/corrupt"], "not a readable Parquet"),
    ],
)
def test_user_errors_are_one_paragraph_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.json").write_text("{}")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "part-x.parquet").write_bytes(b"PAR1 not really")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 2
    assert message in out.output and "Traceback" not in out.output
    assert out.output.count("\n") == 1  # one paragraph


def test_config_section_errors_exit_2(tmp_path, units):
    config = tmp_path / "c.toml"
    config.write_text("[bayesian]\nchanse = 0.9\n")
    out = CliRunner().invoke(cli, ["analyze", str(units), "-c", str(config), "-q"])
    assert out.exit_code == 2
    assert "unknown key 'bayesian.chanse'. Did you mean 'chance'?" in out.output


def test_run_as_a_command_outside_the_repository(tmp_path, units):
    exe = shutil.which("abkit") or str(Path(sys.executable).with_name("abkit"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = subprocess.run(
        [exe, "analyze", str(units), "--bayesian", "--archive", "arch", "-q"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "chance to win" in run.stdout and "added 2 result(s) to the archive" in run.stderr
    run = subprocess.run(
        [exe, "archive", "show", "converted"],
        cwd=work,
        capture_output=True,
        text=True,
        env={"ABKIT_ARCHIVE": "arch", "PATH": str(Path(exe).parent)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "converted: 1 past result(s) in 1 experiment(s)" in run.stdout
