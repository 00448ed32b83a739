"""Quantile metrics end to end: the arms' quantiles and standard errors against an
independent computation on the raw export, guardrails, notes, refusals, the CLI and
the DuckDB engine."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError, ConfigError
from abkit.stats.quantile import CLUSTERED, quantile_estimate
from tests.conftest import write_cli_files

P95 = {
    "name": "p95_latency",
    "type": "quantile",
    "column": "ai_output.latency_ms",
    "q": 0.95,
    "direction": "decrease",
}
P50_GUARD = {
    "name": "p50_latency",
    "type": "quantile",
    "column": "ai_output.latency_ms",
    "q": 0.5,
    "direction": "decrease",
    "guardrail": True,
    "margin": 150.0,
}


@pytest.fixture(scope="module")
def export():
    return simulate(
        users=3_000, days=8, enrol_days=3, seed=5, latency_user_sd=0.6, latency_lift=0.3
    )


def _by_hand(export, q):
    """Each arm's values and user of each value, straight from the raw export."""
    rows = export.events.filter(pl.col("event") == "ai_output").join(
        export.assignments, on="user_id"
    )
    return {
        v: quantile_estimate(
            rows.filter(pl.col("variant") == v)["latency_ms"].to_numpy(),
            rows.filter(pl.col("variant") == v)["user_id"].to_numpy(),
            q,
        )
        for v in ("control", "treatment")
    }


def test_quantiles_and_standard_errors_equal_an_independent_computation(export):
    res = abkit.analyze(export.assignments, {"metrics": [P95]}, events=export.events)
    (r,) = res.results
    rows = export.events.filter(pl.col("event") == "ai_output").join(
        export.assignments, on="user_id"
    )
    for variant, value in (("control", r.control_value), ("treatment", r.treatment_value)):
        x = rows.filter(pl.col("variant") == variant)["latency_ms"].to_numpy()
        assert value == np.quantile(x, 0.95, method="inverted_cdf")
    arms = _by_hand(export, 0.95)
    se = math.hypot(arms["control"].se, arms["treatment"].se)
    assert r.method == CLUSTERED
    assert r.ci[1] - r.ci[0] == pytest.approx(2 * 1.959963984540054 * se, rel=1e-9)
    assert r.control_n + r.treatment_n == 3_000  # assigned units, not only active ones
    assert r.decision.outcome == "worse"  # latency up 30 %, lower is better
    note = res.metric_notes["p95_latency"][0]
    assert f"{arms['control'].events:,} events from {arms['control'].units:,} units" in note
    assert "understate the variance" in note


def test_guardrail_is_a_non_inferiority_test_on_the_quantile_difference(export):
    res = abkit.analyze(export.assignments, {"metrics": [P50_GUARD]}, events=export.events)
    (r,) = res.results
    arms = _by_hand(export, 0.5)
    se = math.hypot(arms["control"].se, arms["treatment"].se)
    z = (150.0 - r.effect) / se
    from scipy import stats as st

    assert r.guardrail is not None
    assert r.guardrail.p_value == pytest.approx(st.norm.sf(z), rel=1e-9)
    assert r.decision.outcome == f"guardrail {r.guardrail.verdict}"


def test_events_without_a_value_are_counted_in_a_note(export):
    events = export.events.with_columns(
        pl.when((pl.col("event") == "ai_output") & (pl.int_range(pl.len()) % 50 == 0))
        .then(None)
        .otherwise(pl.col("latency_ms"))
        .alias("latency_ms")
    )
    missing = events.filter(
        (pl.col("event") == "ai_output") & pl.col("latency_ms").is_null()
    ).height
    res = abkit.analyze(export.assignments, {"metrics": [P95]}, events=events)
    assert f"{missing:,} 'ai_output' event(s) have no latency_ms" in " ".join(
        res.metric_notes["p95_latency"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"q": None}, "needs the key 'q'"),
        ({"q": 1.0}, "quantile level between 0 and 1"),
        ({"column": "ai_output"}, "column = '<event>.<column>'"),
        ({"cap": {"quantile": 0.99}}, "cannot be capped"),
    ],
)
def test_badly_configured_quantiles_are_refused(change, message):
    metric = {k: v for k, v in {**P95, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=re.escape(message)):
        abkit.load_config({"metrics": [metric]})


def test_b2b_histograms_and_unit_tables_are_refused_with_a_reason(export):
    with pytest.raises(AbkitInputError, match="needs each value with its account"):
        abkit.analyze(
            export.assignments,
            {
                "experiment": {"account": "user_id"},
                "quantiles": {"method": "histogram"},
                "metrics": [P95],
            },
            events=export.events,
            mode="b2b",
        )
    units = pl.DataFrame({"user_id": [1, 2], "variant": ["control", "treatment"], "x": [1.0, 2.0]})
    metric = {**P95, "column": "x.value"}
    with pytest.raises(AbkitInputError, match="needs event-level input"):
        abkit.analyze(units, {"metrics": [metric]})


def test_too_few_events_give_nan_and_the_reason():
    small = simulate(users=40, days=2, enrol_days=1, seed=2)
    metric = {**P95, "q": 0.99}
    res = abkit.analyze(small.assignments, {"metrics": [metric]}, events=small.events)
    (r,) = res.results
    assert math.isnan(r.p_value) and r.decision.outcome == "not computable"
    assert "too few events" in (r.decision.reason or "")  # the reason, said once


def test_cli_analyze_and_power_read_a_quantile_metric(export, tmp_path):
    from abkit_cli.main import cli

    toml = (
        '[[metrics]]\nname = "p95_latency"\ntype = "quantile"\ncolumn = "ai_output.latency_ms"\n'
        'q = 0.95\ndirection = "decrease"\n'
    )
    args = write_cli_files(tmp_path, export, toml)
    out = CliRunner().invoke(cli, ["analyze", *args, "--format", "json"])
    assert out.exit_code == 0, out.output
    (r,) = json.loads(out.output)["results"]
    assert r["metric_type"] == "quantile" and r["method"] == CLUSTERED
    power = CliRunner().invoke(
        cli, ["power", *args, "--metric", "p95_latency", "--effect", "0.05", "--relative"]
    )
    assert power.exit_code == 0, power.output


def test_the_engine_bin_expression_is_the_numpy_one():
    import narwhals as nw

    from abkit.engine.quantiles import bin_key
    from abkit.metrics.references import VALUE
    from abkit.stats.quantile import LogBins

    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(5, 3, 2_000), -rng.lognormal(0, 2, 200), [0.0, 1e-13]])
    bins = LogBins(0.001)
    frame = nw.from_native(pl.DataFrame({VALUE: values}).lazy())
    keys = frame.select(bin_key(bins).alias("k")).collect().to_native()["k"].to_numpy()
    assert np.array_equal(keys, bins.keys(values))


def test_profile_across_levels_equals_the_by_hand_tests_and_is_drawn(export, tmp_path):
    from abkit.engine.quantiles import PROFILE
    from abkit.stats.quantile import quantile_test

    res = abkit.analyze(export.assignments, {"metrics": [{**P95, "q": 0.8}]}, events=export.events)
    (r,) = res.results
    assert [p.q for p in r.quantiles] == sorted({*PROFILE, 0.8})
    for point in r.quantiles:
        arms = _by_hand(export, point.q)
        expected = quantile_test(arms["control"], arms["treatment"])
        assert (point.effect, *point.ci, point.p_value) == pytest.approx(
            (expected.effect, *expected.ci, expected.p_value), rel=1e-12
        )
    own = next(p for p in r.quantiles if p.q == 0.8)
    assert (own.effect, own.ci) == (r.effect, r.ci)
    assert "Quantile profile" in res.to_text() and "q 0.99:" in res.to_markdown()
    res.save(tmp_path)
    assert list((tmp_path / "plots").glob("quantiles_p95_latency_*.png"))


def test_quantiles_by_segment_equal_the_test_on_each_segments_events(export):
    """A segment column fixed at assignment: each segment's quantile test equals the
    clustered test on that segment's events from the raw export, Holm across segments
    and Cochran's Q against statsmodels' meta-analysis of the same effects."""
    from statsmodels.stats.meta_analysis import combine_effects

    from abkit.stats.multiplicity import adjust_pvalues
    from abkit.stats.quantile import quantile_test

    platform = np.where(export.assignments["user_id"].to_numpy() % 3 == 0, "ios", "web")
    assignments = export.assignments.with_columns(pl.Series("platform", platform))
    res = abkit.analyze(
        assignments, {"metrics": [P95], "segments": {"columns": ["platform"]}}, events=export.events
    )
    (r,) = res.results
    (b,) = r.segments
    rows = export.events.filter(pl.col("event") == "ai_output").join(assignments, on="user_id")
    tests = []
    for e in b.effects:
        part = rows.filter(pl.col("platform") == e.value)
        arms = [
            quantile_estimate(
                part.filter(pl.col("variant") == v)["latency_ms"].to_numpy(),
                part.filter(pl.col("variant") == v)["user_id"].to_numpy(),
                0.95,
            )
            for v in ("control", "treatment")
        ]
        comp = quantile_test(*arms)
        tests.append(comp)
        assert (e.effect, e.p_value) == pytest.approx((comp.effect, comp.p_value))
        assert (e.control_n, e.treatment_n) == (arms[0].units, arms[1].units)
    holm = adjust_pvalues([c.p_value for c in tests], "holm")
    assert [e.p_value_adjusted for e in b.effects] == pytest.approx(list(holm))
    meta = combine_effects(
        np.array([c.effect for c in tests]), np.array([c.se**2 for c in tests]), use_t=False
    )
    assert b.heterogeneity.q == pytest.approx(meta.q)
    assert not any("not broken down by segment" in n for n in res.metric_notes["p95_latency"])
    assert "p95_latency / treatment by platform" in res.to_text(width=200)


def test_the_histogram_route_says_why_quantiles_are_not_split_by_segment(export):
    platform = np.where(export.assignments["user_id"].to_numpy() % 2 == 0, "ios", "web")
    assignments = export.assignments.with_columns(pl.Series("platform", platform))
    res = abkit.analyze(
        assignments,
        {
            "metrics": [P95],
            "segments": {"columns": ["platform"]},
            "quantiles": {"method": "histogram"},
        },
        events=export.events,
    )
    assert res.results[0].segments == ()
    assert any("histogram route" in n for n in res.metric_notes["p95_latency"])
