"""The surrogate forecast of D30 in abkit analyze: the units pass's first-week signals
against an independent Polars builder (on Polars and DuckDB), the forecast equal to the
statistics layer's on those signals, a training table of a past export, every output
showing it as a forecast and never as the decision, and clear errors."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit.inputs.surrogate_units import SIGNALS, forecast_from_units, week_one_units
from abkit_cli.main import cli
from tests.conftest import write_cli_files
from tests.engines import assert_same_numbers, required, to_duckdb

D30 = {"name": "d30", "type": "retention", "day": 30}
CONFIG = {"metrics": [{"name": "d7", "type": "retention", "day": 7}, D30]}


@pytest.fixture(scope="module")
def export():
    """35 days, 14 of enrolment: D30 has matured for the first few days' cohorts only;
    the treatment moves D30 through the first week (surrogacy holds)."""
    return simulate(
        users=5_000, days=35, enrol_days=14, seed=4, d30_from_week_one=True, share_lift=0.3
    )


def test_the_units_pass_signals_are_the_independent_builders(export):
    """The signals abkit computes in its units pass (exclusions, de-duplication and days
    after assignment as for every metric) equal those of a separate Polars builder
    written from the definitions, unit by unit, and so does D30."""
    table = abkit.surrogate_training_table(export.assignments, export.events, CONFIG)
    built = week_one_units(export.assignments, export.events)
    assert table.height == built.height
    for column in (*SIGNALS, "d30"):
        ours = table.get_column(column).to_list()
        theirs = built.get_column(column).cast(pl.Float64).to_list()
        assert ours == pytest.approx(theirs, nan_ok=True), column
    # every unit's first week has ended by day 35; D30 only for the early cohorts
    assert table["d1"].null_count() == 0
    assert 0 < table["d30"].null_count() < table.height
    # a unit whose first week has not ended has no signals
    early = week_one_units(
        export.assignments, export.events, export_end=export.events["timestamp"].min()
    )
    assert early["d1"].null_count() == early.height


def test_the_forecast_is_the_statistics_layers_on_those_signals(export):
    res = abkit.analyze(export.assignments, CONFIG, events=export.events)
    d7, d30 = res.results
    assert d7.surrogate is None  # D7's window is the first week itself
    f = d30.surrogate
    assert f is not None
    units = week_one_units(export.assignments, export.events)
    reference = forecast_from_units(units, "control", "treatment", interval="delta")
    assert f.estimate == pytest.approx(reference.estimate, rel=1e-12)
    assert f.ci == pytest.approx(reference.ci, rel=1e-9)
    assert f.training == "control" and "delta method" in f.method
    assert f.validation is not None
    assert f.validation.realised_effect == pytest.approx(d30.effect, rel=1e-9)
    # the forecast never decides: the metric's decision is its own test's
    assert d30.decision.basis != "surrogate" and d30.decision.method == d30.method


def test_a_training_table_of_a_past_export_trains_the_model(export, tmp_path):
    past = simulate(users=4_000, days=45, enrol_days=10, seed=40, d30_from_week_one=True)
    table = abkit.surrogate_training_table(past.assignments, past.events, CONFIG)
    path = tmp_path / "past.parquet"
    table.write_parquet(path)
    config = {**CONFIG, "surrogate": {"training": str(path)}}
    f = abkit.analyze(export.assignments, config, events=export.events).results[1].surrogate
    assert f is not None and f.training == "separate"
    assert f.fit.training_units == table.drop_nulls().height
    # a table without the outcome column is refused, naming it
    table.drop("d30").write_parquet(path)
    with pytest.raises(abkit.AbkitInputError, match="no column 'd30'"):
        abkit.analyze(export.assignments, config, events=export.events)


def test_too_few_matured_units_say_why_there_is_no_forecast():
    young = simulate(users=600, days=32, enrol_days=14, seed=5)
    res = abkit.analyze(young.assignments, CONFIG, events=young.events)
    d30 = res.results[1]
    assert d30.surrogate is None
    assert any("surrogate forecast" in w and "not computable" in w for w in d30.warnings)


def test_named_metrics_must_be_long_run_retention(export):
    config = {**CONFIG, "surrogate": {"metrics": ["d7"]}}
    with pytest.raises(abkit.AbkitInputError, match="not a retention metric whose window"):
        abkit.analyze(export.assignments, config, events=export.events)
    off = abkit.analyze(
        export.assignments, {**CONFIG, "surrogate": {"metrics": []}}, events=export.events
    )
    assert all(r.surrogate is None for r in off.results)


def test_the_forecast_is_the_same_on_duckdb_when_asked(export):
    """On another engine the forecast brings every unit's first-week signals back, so it
    is made when [surrogate] metrics names its metrics (and said otherwise); then it
    equals Polars'."""
    duckdb = required("duckdb")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    on_duckdb = {
        "data": to_duckdb(export.assignments, con),
        "events": to_duckdb(export.events, con),
    }
    quiet = abkit.analyze(on_duckdb["data"], CONFIG, events=on_duckdb["events"])
    assert quiet.results[1].surrogate is None
    assert any("surrogate forecast of 'd30' not made" in n for n in quiet.notes)
    asked = {**CONFIG, "surrogate": {"metrics": ["d30"]}}
    polars = abkit.analyze(export.assignments, asked, events=export.events)
    other = abkit.analyze(on_duckdb["data"], asked, events=on_duckdb["events"])
    assert other.results[1].surrogate is not None
    assert_same_numbers(polars.to_dict(), other.to_dict())
    assert "the surrogate forecast" in other.to_text()  # the rows that came back, said


def test_every_output_shows_it_as_a_forecast(export, tmp_path):
    toml = """
[[metrics]]
name = "d30"
type = "retention"
day = 30
"""
    args = write_cli_files(tmp_path, export, toml)
    out = tmp_path / "out"
    run = CliRunner().invoke(cli, ["analyze", *args, "--out", str(out), "-q"])
    assert run.exit_code == 0, run.output
    assert "Surrogate forecast of long-run retention" in run.output
    assert "FORECAST, not the decision" in run.output
    for name in ("report.md", "report.html"):
        text = (out / name).read_text()
        assert "FORECAST, not the decision" in text and "surrogacy" in text, name
    data = json.loads((out / "results.json").read_text())
    forecast = data["results"][0]["surrogate"]
    assert {"estimate", "ci", "assumptions", "validation", "fit"} <= set(forecast)
    again = abkit.AnalysisResult.from_dict(data)
    assert (
        again.results[0].surrogate
        == abkit.analyze(export.assignments, {"metrics": [D30]}, events=export.events)
        .results[0]
        .surrogate
    )


def test_the_cli_writes_a_training_table_and_trains_on_it(export, tmp_path):
    """abkit surrogate-training writes the past experiment's table; abkit analyze
    --surrogate-training trains the forecast on it (from outside the repository's
    folder, as users run it); a wrong file is a one-paragraph error, exit 2."""
    past = simulate(users=3_000, days=45, enrol_days=10, seed=41, d30_from_week_one=True)
    past.assignments.write_parquet(tmp_path / "pa.parquet")
    past.events.write_parquet(tmp_path / "pe.parquet")
    toml = '[[metrics]]\nname = "d30"\ntype = "retention"\nday = 30\n'
    args = write_cli_files(tmp_path, export, toml)
    table = tmp_path / "training.parquet"
    runner = CliRunner()
    past_files = [str(tmp_path / "pa.parquet"), str(tmp_path / "pe.parquet")]
    made = runner.invoke(
        cli,
        ["surrogate-training", *past_files, "-c", str(tmp_path / "c.toml"), "-o", str(table)],
    )
    assert made.exit_code == 0, made.output
    assert "3,000 units" in made.output
    run = runner.invoke(cli, ["analyze", *args, "-f", "json", "--surrogate-training", str(table)])
    assert run.exit_code == 0, run.output
    forecast = json.loads(run.output)["results"][0]["surrogate"]
    assert forecast["training"] == "separate"
    assert forecast["fit"]["training_units"] == pl.read_parquet(table).drop_nulls().height
    bad = runner.invoke(
        cli, ["analyze", *args, "--surrogate-training", str(tmp_path / "a.parquet")]
    )
    assert bad.exit_code == 2
    assert "has no column 'd1'" in bad.output and "Traceback" not in bad.output


def test_the_forecast_decides_only_when_the_config_says_so(export):
    """[surrogate] decide makes a metric's decision the forecast's (basis "surrogate
    forecast", its p-value from τ̂/se); the realised test stays in the result's own
    estimate, interval and p-value; a guardrail or a metric not forecast is refused."""
    config = {**CONFIG, "surrogate": {"decide": ["d30"]}}
    d30 = abkit.analyze(export.assignments, config, events=export.events).results[1]
    f = d30.surrogate
    assert f is not None and d30.decision.basis == "surrogate forecast"
    assert d30.decision.ci == f.ci
    from scipy import stats as st

    assert d30.decision.p_value == pytest.approx(2 * st.norm.sf(abs(f.estimate) / f.se))
    if d30.decision.p_value < 0.05:
        expected = "better" if f.estimate > 0 else "worse"
    else:
        expected = "no significant difference"
    assert d30.decision.outcome == expected == "better"  # share +30 % lifts D30 through week 1
    assert "surrogate" in d30.decision.method and d30.p_value != d30.decision.p_value
    for bad, message in (
        ({"decide": ["d7"]}, "which is not forecast"),
        ({"metrics": ["d30"], "decide": ["d7"]}, "which is not forecast"),
    ):
        with pytest.raises(abkit.AbkitInputError, match=message):
            abkit.analyze(export.assignments, {**CONFIG, "surrogate": bad}, events=export.events)
    guard = {"metrics": [{**D30, "guardrail": True, "relative_margin": 0.1}]}
    with pytest.raises(abkit.AbkitInputError, match="a guardrail"):
        abkit.analyze(
            export.assignments, {**guard, "surrogate": {"decide": ["d30"]}}, events=export.events
        )


def test_a_forecast_its_validation_refutes_decides_nothing():
    """A treatment acting on D30 directly: the validation flags the forecast, so a
    decision made on it is not computable, with the reason."""
    direct = simulate(
        users=6_000, days=35, enrol_days=10, seed=7, d30_from_week_one=True, d30_direct_lift=1.0
    )
    config = {"metrics": [D30], "surrogate": {"decide": ["d30"]}}
    d30 = abkit.analyze(direct.assignments, config, events=direct.events).results[0]
    assert d30.surrogate is not None and d30.surrogate.validation is not None
    assert d30.surrogate.validation.disagree
    assert d30.decision.outcome == "not computable"
    assert "validation" in (d30.decision.reason or "")
