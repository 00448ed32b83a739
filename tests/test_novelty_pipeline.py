"""The novelty check through abkit.analyze: per-period values equal plain Polars counts
from the raw events, a fading simulated lift is called fading in every output, and
DuckDB gives the same numbers."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.stats.cuped import Moments
from abkit.stats.novelty import novelty_test

METRICS = [
    {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
    {"name": "outputs", "type": "mean", "column": "ai_output"},
    {"name": "d1", "type": "retention", "day": 1},
]


@pytest.fixture(scope="module")
def fading():
    return simulate(users=12_000, days=28, enrol_days=7, seed=11, share_lift=0.6, lift_half_life=4)


def _config(**novelty):
    return {"metrics": METRICS, "novelty": {"period_days": 7, **novelty}}


def test_per_period_values_equal_plain_polars_counts(fading):
    res = abkit.analyze(fading.assignments, _config(periods=3), events=fading.events)
    end = fading.events["timestamp"].max()  # the export end (no [input] export_end)
    a = fading.assignments.filter((end - pl.col("assigned_at")) >= pl.duration(days=21))
    week = (
        (pl.col("timestamp") - pl.col("assigned_at")).dt.total_microseconds()
        // (7 * 86_400_000_000)
    ).alias("week")
    counts = (
        fading.events.join(a, on="user_id")
        .filter(pl.col("timestamp") >= pl.col("assigned_at"))
        .with_columns(week)
        .filter(pl.col("week") < 3)
        .group_by("user_id", "week")
        .agg(
            (pl.col("event") == "share").sum().alias("share"),
            (pl.col("event") == "ai_output").sum().alias("out"),
        )
    )
    arms = {}
    for variant in ("control", "treatment"):
        units = a.filter(pl.col("variant") == variant).select("user_id")
        cols = []
        for name in ("share", "out"):
            wide = counts.pivot(on="week", index="user_id", values=name)
            full = units.join(wide, on="user_id", how="left").fill_null(0)
            cols.append(full.select([str(w) for w in range(3)]).to_numpy().astype(float))
        arms[variant] = np.hstack(cols)
    expected = novelty_test(
        Moments.from_values(arms["control"]),
        Moments.from_values(arms["treatment"]),
        3,
        True,
        7,
        0.05,
    )
    got = next(r for r in res.results if r.metric == "share_rate").novelty
    assert got is not None
    assert got.lift == pytest.approx(expected.lift, rel=1e-9)
    assert (got.slope, got.slope_se) == pytest.approx((expected.slope, expected.slope_se), rel=1e-9)
    assert got.units == expected.units


def test_a_fading_lift_is_called_fading_in_every_output(fading):
    res = abkit.analyze(fading.assignments, _config(), events=fading.events)
    share = next(r for r in res.results if r.metric == "share_rate")
    assert share.novelty is not None and share.novelty.verdict == "fades"
    assert share.novelty.lift[0] > share.novelty.lift[-1] > -0.05
    line = f"the effect fades from {share.novelty.lift[0] * 100:+.1f} % in week 1"
    for text in (res.to_text(), res.to_markdown(), res.to_html()):
        assert line in text
    back = json.loads(res.to_json())
    saved = next(r for r in back["results"] if r["metric"] == "share_rate")["novelty"]
    assert saved["verdict"] == "fades" and saved["p_value"] == share.novelty.p_value
    assert abkit.AnalysisResult.from_dict(back).results[0].novelty == share.novelty
    assert res.table.filter(pl.col("metric") == "share_rate")["novelty_verdict"][0] == "fades"
    fig = res.plot("novelty", "share_rate")
    assert "fades" in fig.axes[0].get_title(loc="left")


def test_a_constant_lift_shows_no_trend():
    export = simulate(users=12_000, days=28, enrol_days=7, seed=12, share_lift=0.3)
    res = abkit.analyze(export.assignments, _config(), events=export.events)
    share = next(r for r in res.results if r.metric == "share_rate")
    assert share.novelty is not None and share.novelty.verdict == "stable"


def test_too_short_an_export_says_so_and_duckdb_agrees(fading):
    short = simulate(users=2_000, days=8, enrol_days=4, seed=3)
    res = abkit.analyze(short.assignments, _config(), events=short.events)
    assert all(r.novelty is None for r in res.results)
    assert any("no trend can be estimated" in n for n in res.notes)
    from tests.engines import assert_same_numbers, required, to_duckdb

    connection = required("duckdb").connect()
    connection.execute("SET TimeZone = 'UTC'")
    small = simulate(users=3_000, days=22, enrol_days=5, seed=13, share_lift=0.3)
    polars_result = abkit.analyze(small.assignments, _config(), events=small.events).to_dict()
    duck = abkit.analyze(
        small.assignments, _config(), events=to_duckdb(small.events, connection)
    ).to_dict()
    assert_same_numbers(polars_result, duck)
