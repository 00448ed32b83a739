"""CUPED through abkit.analyze and the CLI: unit-level tables and event exports with
covariates from the assignments, missing covariates, errors, and one truth in every
output."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit.engine.events import EVENT_BEFORE_ASSIGNMENT, PRE_PERIOD_EVENT
from abkit.errors import AbkitInputError
from abkit_cli.main import cli


def _units(n: int = 6_000, seed: int = 3, missing: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    pre = rng.gamma(2.0, 5.0, n)
    active = (rng.random(n) < 0.5).astype(float)
    treated = rng.random(n) < 0.5
    spend = 0.6 * pre + 4 * active + rng.gamma(1.0, 4.0, n) + 0.5 * treated
    retained = (rng.random(n) < 0.2 + 0.5 * active + 0.02 * treated).astype(int)
    pre_col = np.where(rng.random(n) < missing, np.nan, pre)
    return pl.DataFrame(
        {
            "user_id": np.arange(n),
            "variant": np.where(treated, "treatment", "control"),
            "spend": spend,
            "retained": retained,
            "pre_spend": pre_col,
            "was_active": active,
        }
    ).with_columns(pl.col("pre_spend").fill_nan(None))


CONFIG = {
    "cuped": {"covariates": ["pre_spend", "was_active"]},
    "metrics": [
        {"name": "spend", "type": "mean", "column": "spend"},
        {"name": "retained", "type": "proportion", "column": "retained"},
        {"name": "spend_plain", "type": "mean", "column": "spend", "covariates": []},
    ],
}


def _ols(frame: pl.DataFrame, outcome: str, covariates: list[np.ndarray]):
    y = frame[outcome].to_numpy().astype(float)
    treated = (frame["variant"] == "treatment").to_numpy().astype(float)
    x = np.column_stack(covariates)
    design = np.column_stack([np.ones(y.size), treated, x - x.mean(axis=0)])
    return sm.OLS(y, design).fit(cov_type="HC2")


def test_unit_table_effects_equal_ols_and_outputs_agree():
    frame = _units()
    res = abkit.analyze(frame, CONFIG)
    by = {r.metric: r for r in res.results}
    covs = [frame["pre_spend"].to_numpy(), frame["was_active"].to_numpy()]
    for name, column in (("spend", "spend"), ("retained", "retained")):
        fit = _ols(frame, column, covs)
        r = by[name]
        assert r.effect == pytest.approx(fit.params[1], rel=1e-9)
        assert r.cuped is not None
        assert r.cuped.theta == pytest.approx(tuple(fit.params[2:]), rel=1e-9)
        assert r.method.startswith("CUPED-adjusted")
        assert r.cuped.variance_reduction > 0.2
    plain = by["spend_plain"]
    assert plain.cuped is None and plain.method.startswith("Welch")
    assert by["spend"].cuped is not None
    assert by["spend"].cuped.unadjusted_effect == pytest.approx(plain.effect, rel=1e-12)
    assert by["spend"].ci[1] - by["spend"].ci[0] < plain.ci[1] - plain.ci[0]

    # one truth: the same variance reduction and adjusted effect in every output
    reduction = f"{-by['spend'].cuped.variance_reduction * 100:+.1f} %"
    for text in (res.to_text(), res.to_markdown(), res.to_html()):
        assert f"variance {reduction} by pre_spend, was_active" in text
    back = abkit.AnalysisResult.from_dict(json.loads(res.to_json()))
    assert back.results[0].cuped == by["spend"].cuped
    table = res.table.filter(pl.col("metric") == "spend")
    assert table["cuped_variance_reduction"][0] == by["spend"].cuped.variance_reduction
    assert table["effect"][0] == by["spend"].effect


def test_missing_covariate_gets_zero_and_an_indicator():
    frame = _units(missing=0.3)
    res = abkit.analyze(frame, CONFIG)
    r = next(r for r in res.results if r.metric == "spend")
    pre = frame["pre_spend"]
    covs = [pre.fill_null(0).to_numpy(), pre.is_null().cast(float).to_numpy()]
    fit = _ols(frame, "spend", [*covs[:1], covs[1], frame["was_active"].to_numpy()])
    assert r.cuped is not None
    assert r.cuped.covariates == ("pre_spend", "pre_spend missing", "was_active")
    assert r.effect == pytest.approx(fit.params[1], rel=1e-9)
    notes = res.metric_notes["spend"]
    assert any("missing for 1,8" in n and "indicator" in n for n in notes)


def test_covariate_errors_name_the_column():
    frame = _units()
    with pytest.raises(AbkitInputError, match="covariate 'pre_spnd' is not a column"):
        abkit.analyze(frame, {**CONFIG, "cuped": {"covariates": ["pre_spnd"]}})
    own = {"metrics": [{"name": "s", "type": "mean", "column": "spend", "covariates": ["spend"]}]}
    with pytest.raises(AbkitInputError, match="adjusted by its own outcome"):
        abkit.analyze(frame, own)
    text = frame.with_columns(pl.lit("high").alias("pre_spend"))
    with pytest.raises(AbkitInputError, match="covariate 'pre_spend' needs numbers"):
        abkit.analyze(text, CONFIG)


def test_a_covariate_that_is_not_finite_is_refused_naming_the_unit():
    """NaN, inf or the text 'nan' in a covariate would leave every covariance undefined:
    refused, naming the column, the unit and the value as written (a missing value is
    null, which the missing-value indicator handles)."""
    frame = _units(n=200)
    for value, written in ((float("nan"), "nan"), (float("-inf"), "-inf")):
        bad = frame.with_columns(
            pl.when(pl.col("user_id") == 17)
            .then(value)
            .otherwise(pl.col("pre_spend"))
            .alias("pre_spend")
        )
        with pytest.raises(AbkitInputError, match=f"'pre_spend': unit 17 has {written}, which"):
            abkit.analyze(bad, CONFIG)
    text = frame.with_columns(
        pl.when(pl.col("user_id") == 5)
        .then(pl.lit(" NaN"))
        .otherwise(pl.lit("2.5"))
        .alias("pre_spend")
    )
    with pytest.raises(AbkitInputError, match="'pre_spend': unit 5 has ' NaN', which is not"):
        abkit.analyze(text, CONFIG)
    export = simulate(users=300, days=5, enrol_days=2, seed=1)
    first = export.assignments["user_id"][0]
    assignments = export.assignments.with_columns(
        pl.when(pl.col("user_id") == first).then(float("nan")).otherwise(1.0).alias("tenure")
    )
    config = {
        "metrics": [{"name": "d1", "type": "retention", "day": 1}],
        "cuped": {"covariates": ["tenure"]},
    }
    with pytest.raises(AbkitInputError, match=f"'tenure': unit {first!r} has nan"):
        abkit.analyze(assignments, config, events=export.events)


def test_cli_reports_the_adjustment_and_refuses_a_missing_covariate(tmp_path):
    frame = _units()
    frame.write_parquet(tmp_path / "u.parquet")
    (tmp_path / "c.toml").write_text(
        '[cuped]\ncovariates = ["pre_spend"]\n\n'
        '[[metrics]]\nname = "spend"\ntype = "mean"\ncolumn = "spend"\n'
    )
    run = CliRunner().invoke(
        cli, ["analyze", str(tmp_path / "u.parquet"), "-c", str(tmp_path / "c.toml")]
    )
    assert run.exit_code == 0, run.output
    assert "CUPED regression adjustment" in run.output and "CUPED t" in run.output
    (tmp_path / "bad.toml").write_text('[cuped]\ncovariates = ["nope"]\n')
    run = CliRunner().invoke(
        cli, ["analyze", str(tmp_path / "u.parquet"), "-c", str(tmp_path / "bad.toml")]
    )
    assert run.exit_code == 2
    assert "covariate 'nope'" in run.output and "Traceback" not in run.output


def test_event_export_with_a_covariate_from_the_assignments():
    """Ratio, retention and mean metrics of an event export adjusted by a unit attribute
    of the assignments table; the unadjusted effect is the plain run's."""
    export = simulate(users=4_000, days=8, enrol_days=3, seed=5)
    rng = np.random.default_rng(0)
    assignments = export.assignments.with_columns(
        pl.Series("tenure", rng.gamma(2.0, 1.0, export.assignments.height))
    )
    metrics = [
        {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "d1", "type": "retention", "day": 1},
        {"name": "outputs", "type": "mean", "column": "ai_output"},
    ]
    plain = abkit.analyze(assignments, {"metrics": metrics}, events=export.events)
    adjusted = abkit.analyze(
        assignments, {"metrics": metrics, "cuped": {"covariates": ["tenure"]}}, events=export.events
    )
    for p, a in zip(plain.results, adjusted.results, strict=True):
        assert a.cuped is not None, a.metric
        assert a.cuped.unadjusted_effect == pytest.approx(p.effect, rel=1e-9, abs=1e-15)
        assert (a.control_n, a.treatment_n) == (p.control_n, p.treatment_n)
        # a covariate unrelated to the outcome removes about nothing
        assert abs(a.cuped.variance_reduction) < 0.01
        assert math.isfinite(a.p_value)


def test_a_type_that_cannot_be_adjusted_says_so():
    export = simulate(mode="b2b", users=2_000, accounts=12, days=6, enrol_days=2, seed=4)
    assignments = export.assignments.with_columns(pl.lit(1.0).alias("tenure"))
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 500},
        "cuped": {"covariates": ["tenure"]},
        "metrics": [{"name": "ttv", "type": "time_to_value", "event": "share"}],
    }
    res = abkit.analyze(assignments, config, events=export.events)
    assert res.results[0].cuped is None
    # CUPED asked for and not applied changes how the result reads: a warning on it
    assert any("not used for a metric of type" in w for w in res.results[0].warnings)


PRE_METRICS = [
    {"name": "outputs", "type": "mean", "column": "ai_output"},
    {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
    {"name": "d1", "type": "retention", "day": 1},
]


def _with_history(users: int = 6_000, seed: int = 8):
    return simulate(users=users, days=10, enrol_days=4, seed=seed, pre_days=7, share_lift=0.1)


def test_pre_period_covariate_equals_an_independent_polars_count_and_ols():
    """[cuped] pre_days: the mean metric adjusted by its count over the 7 days before
    assignment equals OLS on counts taken here with plain Polars from the raw events."""
    export = _with_history()
    res = abkit.analyze(
        export.assignments,
        {"metrics": PRE_METRICS, "cuped": {"pre_days": 7}},
        events=export.events,
    )
    joined = export.events.join(export.assignments, on="user_id")
    gap = pl.col("assigned_at") - pl.col("timestamp")
    outputs = pl.col("event") == "ai_output"
    per_unit = joined.group_by("user_id").agg(
        (outputs & (gap <= pl.duration(days=0))).sum().alias("post"),
        (outputs & (gap > pl.duration(days=0)) & (gap < pl.duration(days=7))).sum().alias("pre"),
    )
    frame = export.assignments.join(per_unit, on="user_id", how="left").fill_null(0)
    fit = _ols(frame.rename({"post": "y"}), "y", [frame["pre"].to_numpy().astype(float)])
    r = next(r for r in res.results if r.metric == "outputs")
    assert r.cuped is not None and r.cuped.covariates == ("outputs in the 7 d before",)
    assert r.effect == pytest.approx(fit.params[1], rel=1e-9)
    assert r.cuped.theta[0] == pytest.approx(fit.params[2], rel=1e-9)
    by = {r.metric: r for r in res.results}
    assert by["share_rate"].cuped is not None
    assert by["share_rate"].cuped.variance_reduction > 0.15  # the share habit carries over
    assert by["d1"].cuped is not None
    assert by["d1"].cuped.covariates == ("d1: active days in the 7 d before",)


def test_pre_period_events_are_counted_and_older_ones_stay_excluded():
    export = _with_history(users=2_000)
    res = abkit.analyze(
        export.assignments,
        {"metrics": PRE_METRICS, "cuped": {"pre_days": 3}},
        events=export.events,
    )
    gap = pl.col("assigned_at") - pl.col("timestamp")
    counts = (
        export.events.join(export.assignments, on="user_id")
        .select(
            ((gap > pl.duration(days=0)) & (gap < pl.duration(days=3))).sum().alias("pre"),
            (gap >= pl.duration(days=3)).sum().alias("older"),
        )
        .row(0, named=True)
    )
    in_pre, older = counts["pre"], counts["older"]
    reasons = {e.reason: e.rows for e in res.exclusions if e.table == "events"}
    assert reasons[PRE_PERIOD_EVENT] == in_pre
    assert reasons[EVENT_BEFORE_ASSIGNMENT] == older
    assert res.rows["events"].read == export.events.height
    # events kept for the covariates do not count in the 'rows excluded' warning
    share = f"{older / export.events.height:.1%} of the rows of events were excluded"
    assert any(w.startswith(share) for w in res.warnings), res.warnings


def test_pre_period_on_duckdb_and_in_parts_equals_the_one_part_polars_result(monkeypatch):
    from abkit.engine import backend as engine
    from tests.engines import assert_same_numbers, required, to_duckdb

    export = _with_history(users=2_500, seed=9)
    config = {"metrics": PRE_METRICS, "cuped": {"pre_days": 5}}
    whole = abkit.analyze(export.assignments, config, events=export.events).to_dict()
    connection = required("duckdb").connect()
    connection.execute("SET TimeZone = 'UTC'")
    duck = abkit.analyze(
        export.assignments, config, events=to_duckdb(export.events, connection)
    ).to_dict()
    assert_same_numbers(whole, duck)
    monkeypatch.setattr(engine, "EVENTS_PER_PART", export.events.height // 4)
    parts = abkit.analyze(export.assignments, config, events=export.events).to_dict()
    assert_same_numbers(whole, parts)


def test_pre_days_on_a_unit_table_is_refused():
    with pytest.raises(AbkitInputError, match="pre_days computes each metric"):
        abkit.analyze(_units(), {**CONFIG, "cuped": {"pre_days": 14}})
