"""``abkit power`` without data: the metric's window in the duration (--window, or the
config's metric), a proportion's effect given in percent refused with the fraction to
give, and a help text for every option of the planning and simulating commands."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from abkit.power import power_analysis
from abkit_cli.main import cli

PROPORTION = ["--proportion", "--baseline", "0.2", "--effect", "0.02", "--arrivals", "1000"]


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def _plan(*args):
    out = run("power", *PROPORTION, "-f", "json", *args)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_window_adds_the_metrics_days_to_the_duration():
    without, with_window = _plan(), _plan("--window", "8")
    assert without["window_days"] == 0
    assert with_window["window_days"] == 8
    assert with_window["days_needed"] == without["days_needed"] + 8
    text = run("power", *PROPORTION, "--window", "8").output
    assert "+ 8 days for the metric's window = " in text


def test_without_data_the_configs_metric_gives_the_window(tmp_path):
    (tmp_path / "c.toml").write_text(
        '[[metrics]]\nname = "d7"\ntype = "retention"\nday = 7\n'
        '[[metrics]]\nname = "d30"\ntype = "retention"\nday = 30\n'
    )
    assert _plan("-c", tmp_path / "c.toml")["window_days"] == 8
    assert _plan("-c", tmp_path / "c.toml", "--metric", "d30")["window_days"] == 31
    assert _plan("-c", tmp_path / "c.toml", "--window", "0")["window_days"] == 0
    out = run("power", *PROPORTION, "-c", tmp_path / "c.toml", "--metric", "d8")
    assert out.exit_code == 2 and "d7, d30" in out.output


@pytest.mark.parametrize("effect", ["2", "-5", "1"])
def test_a_proportion_effect_given_in_percent_is_refused_with_the_fraction(effect):
    out = run("power", "--proportion", "--baseline", "0.2", "--effect", effect)
    assert out.exit_code == 2
    fraction = f"{float(effect) / 100:g}"
    assert f"--effect {fraction}" in out.output and "--relative" in out.output
    assert "percentage points" in out.output


def test_a_relative_proportion_effect_above_one_is_not_refused():
    res = power_analysis(proportion=True, baseline=0.2, effect=1.0, relative=True)
    assert res.effect == pytest.approx(0.2)


@pytest.mark.parametrize("command", ["power", "simulate", "simulate-replay", "analyze"])
def test_every_option_has_a_help_text(command):
    for param in cli.commands[command].params:
        if param.param_type_name == "option":
            assert param.help, f"{command} {param.opts} has no help text"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--effect", "0", "--sd", "1"], "--effect must be a non-zero number"),
        (["--effect", "nan", "--sd", "1"], "--effect must be a non-zero number"),
        (["--effect", "0.1", "--sd", "-1"], "--sd must be a positive number"),
        (["--effect", "0.1", "--sd", "inf"], "--sd must be a positive number"),
        (["--effect", "0.1", "--sd", "1", "--alpha", "2"], "--alpha must lie between 0 and 1"),
        (["--effect", "0.1", "--sd", "1", "--power", "1.5"], "--power must lie between"),
        (["--effect", "0.1", "--sd", "1", "--relative", "--baseline", "0"], "non-zero baseline"),
    ],
)
def test_impossible_planning_inputs_are_user_errors(args, needle):
    out = run("power", *args)
    assert out.exit_code == 2 and needle in out.output and "internal error" not in out.output


def test_power_maps_the_exports_own_column_names_like_analyze(tmp_path):
    from abkit.dev.simulate import simulate

    export = simulate(users=600, days=12, enrol_days=4, seed=2)
    export.assignments.rename({"user_id": "user", "variant": "group"}).write_csv(tmp_path / "a.csv")
    export.events.rename({"user_id": "user", "event": "event_type"}).write_csv(tmp_path / "e.csv")
    export.assignments.write_parquet(tmp_path / "a.parquet")
    export.events.write_parquet(tmp_path / "e.parquet")
    args = ["--effect", "0.02", "--metric", "d1_retention", "-f", "json"]
    reference = run("power", tmp_path / "a.parquet", tmp_path / "e.parquet", *args)
    mapped = run(
        "power", tmp_path / "a.csv", tmp_path / "e.csv", *args,
        "--unit", "user", "--variant", "group", "--event", "event_type",
    )  # fmt: skip
    assert mapped.exit_code == 0, mapped.output
    assert (
        json.loads(mapped.stdout)["needed_per_arm"]
        == json.loads(reference.stdout)["needed_per_arm"]
    )
    unmapped = run("power", tmp_path / "a.csv", tmp_path / "e.csv", *args)
    assert unmapped.exit_code == 2 and "--unit user" in unmapped.output
