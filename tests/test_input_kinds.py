"""The same experiment through every input kind and file format gives the same numbers."""

from __future__ import annotations

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate, write_export

METRICS = {
    "metrics": [
        {"name": "d1", "type": "retention", "day": 1},
        {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "outputs", "type": "mean", "column": "ai_output"},
        {"name": "any_share", "type": "proportion", "column": "share"},
    ]
}


@pytest.fixture(scope="module")
def export():
    return simulate(users=3_000, days=12, enrol_days=5, share_lift=0.3, seed=5)


@pytest.fixture(scope="module")
def reference(export):
    return abkit.analyze(export.assignments, METRICS, events=export.events).to_dict()


def _numbers(d):
    """(metric, flat tuple of every number) per result."""
    return [
        (
            r["metric"],
            (
                r["control"]["n"],
                r["control"]["value"],
                r["treatment"]["n"],
                r["treatment"]["value"],
                r["effect"],
                *r["ci"],
                r["p_value"],
            ),
        )
        for r in d["results"]
    ]


def _same(got, ref, rel):
    assert [g[0] for g in got] == [r[0] for r in ref]
    for (_, ours), (_, theirs) in zip(got, ref, strict=True):
        assert ours == pytest.approx(theirs, rel=rel)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "ndjson"])
def test_file_formats_agree(tmp_path, export, reference, fmt):
    a, e = write_export(export, tmp_path, fmt)
    got = abkit.analyze(a, METRICS, events=e).to_dict()
    assert got["rows"] == reference["rows"]
    _same(_numbers(got), _numbers(reference), rel=1e-9)


def test_folder_and_glob_of_parts(tmp_path, export, reference):
    parts = tmp_path / "events"
    parts.mkdir()
    ev = export.events
    half = ev.height // 2
    ev[:half].write_parquet(parts / "part-0.parquet")
    ev[half:].write_parquet(parts / "part-1.parquet")
    export.assignments.write_parquet(tmp_path / "assignments.parquet")
    for source in (parts, str(parts / "part-*.parquet")):
        got = abkit.analyze(tmp_path / "assignments.parquet", METRICS, events=source).to_dict()
        assert _numbers(got) == _numbers(reference)


def test_single_events_table_with_variant_and_exposure(export, reference):
    exposure = export.assignments.select(
        "user_id",
        pl.col("assigned_at").alias("timestamp"),
        pl.lit("exposure").alias("event"),
        pl.lit(None, pl.Int64).alias("session_id"),
        pl.lit(None, pl.Float64).alias("value"),
        "variant",
    )
    events = export.events.join(export.assignments.select("user_id", "variant"), on="user_id")
    single = pl.concat([exposure, events.select(exposure.columns)]).sort("timestamp")
    config = {**METRICS, "input": {"exposure_event": "exposure"}}
    got = abkit.analyze(single, config).to_dict()
    assert got["experiment"]["input"] == "events (single table)"
    assert _numbers(got) == _numbers(reference)


def _unit_table(export):
    counts = export.events.group_by("user_id").agg(
        (pl.col("event") == "ai_output").sum().alias("outputs"),
        (pl.col("event") == "share").sum().alias("shares"),
    )
    return (
        export.assignments.join(counts, on="user_id", how="left")
        .with_columns(pl.col("outputs", "shares").fill_null(0))
        .with_columns((pl.col("shares") > 0).alias("any_share"))
    )


UNIT_METRICS = {
    "metrics": [
        {"name": "share_rate", "type": "ratio", "numerator": "shares", "denominator": "outputs"},
        {"name": "outputs", "type": "mean", "column": "outputs"},
        {"name": "any_share", "type": "proportion", "column": "any_share"},
    ]
}


def test_unit_table_matches_event_input(export, reference):
    got = abkit.analyze(_unit_table(export), UNIT_METRICS).to_dict()
    assert got["experiment"]["input"] == "units"
    ref = [n for n in _numbers(reference) if n[0] != "d1"]
    _same(_numbers(got), ref, rel=1e-12)


def test_summary_table_matches_unit_table(export):
    units = _unit_table(export)
    x, y, b = pl.col("shares"), pl.col("outputs"), pl.col("any_share").cast(pl.Float64)
    by = units.group_by("variant")
    ratio = by.agg(
        pl.len().alias("n"),
        x.sum().alias("num_sum"),
        y.sum().alias("den_sum"),
        (x * x).sum().alias("num_sum_sq"),
        (y * y).sum().alias("den_sum_sq"),
        (x * y).sum().alias("num_den_sum"),
    ).with_columns(metric=pl.lit("share_rate"))
    mean = by.agg(
        pl.len().alias("n"),
        y.mean().alias("mean"),
        y.var().alias("variance"),
    ).with_columns(metric=pl.lit("outputs"))
    prop = by.agg(pl.len().alias("n"), b.mean().alias("mean")).with_columns(
        metric=pl.lit("any_share")
    )
    summary = pl.concat([ratio, mean, prop], how="diagonal_relaxed")
    got = abkit.analyze(summary, UNIT_METRICS).to_dict()
    ref = abkit.analyze(units, UNIT_METRICS).to_dict()
    assert got["experiment"]["input"] == "summary"
    _same(_numbers(got), _numbers(ref), rel=1e-9)


def test_summary_daily_rows_pool_exactly(export):
    units = _unit_table(export).with_columns(day=pl.col("user_id") % 3)
    y = pl.col("outputs")
    daily = units.group_by("variant", "day").agg(
        pl.len().alias("n"), y.mean().alias("mean"), y.var().alias("variance")
    )
    config = {"metrics": [{"name": "metric", "type": "mean", "column": "outputs"}]}
    got = abkit.analyze(daily, config).to_dict()["results"][0]
    ref = abkit.analyze(units, config).to_dict()["results"][0]
    assert got["effect"] == pytest.approx(ref["effect"], rel=1e-9)
    assert got["p_value"] == pytest.approx(ref["p_value"], rel=1e-9)


def test_unit_table_defaults_detect_proportions_and_means():
    units = pl.DataFrame(
        {
            "user_id": range(6),
            "variant": ["control", "t"] * 3,
            "converted": [True, False, False, True, True, False],
            "revenue": [1.0, 2.0, 3.5, 0.0, 2.0, 1.0],
        }
    )
    d = abkit.analyze(units).to_dict()
    types = {r["metric"]: r["metric_type"] for r in d["results"]}
    assert types == {"converted": "proportion", "revenue": "mean"}


def test_cumulative_summary_uses_the_last_checkpoint():
    rows = pl.DataFrame(
        {
            "variant": ["control", "t"] * 3,
            "metric": ["m"] * 6,
            "day": [1, 1, 2, 2, 3, 3],
            "n": [100, 100, 200, 210, 300, 320],
            "mean": [0.1, 0.1, 0.11, 0.12, 0.10, 0.125],
        }
    )
    config = {
        "input": {"cumulative": True},
        "metrics": [{"name": "m", "type": "proportion", "column": "m"}],
    }
    res = abkit.analyze(rows, config)
    r = res.results[0]
    assert (r.control_n, r.treatment_n) == (300, 320)
    assert r.treatment_value == pytest.approx(0.125)
    assert {e.reason: e.rows for e in res.exclusions} == {
        "earlier cumulative checkpoint (last one used)": 4
    }
    # 4 of 6 rows set aside by design (cumulative = true) is not data loss: no warning
    assert not [w for w in res.warnings if "were excluded" in w]


def test_export_end_override_controls_retention_eligibility(export):
    config = {**METRICS, "input": {"export_end": "2026-01-08T00:00:00Z"}}
    d1 = abkit.analyze(export.assignments, config, events=export.events).results[0]
    # units are assigned over 2026-01-05..10; D1 needs assigned_at + 2 d <= 01-08
    eligible = export.assignments.filter(
        pl.col("assigned_at") <= pl.datetime(2026, 1, 6, time_zone="UTC")
    ).height
    assert d1.control_n + d1.treatment_n == eligible


def test_benjamini_hochberg_option(export):
    three = simulate(
        users=3_000, days=6, enrol_days=2, seed=2, variants=("control", "a", "b"), share_lift=0.2
    )
    share = {
        "metrics": [
            {"name": "s", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
        ]
    }
    holm = abkit.analyze(three.assignments, share, events=three.events)
    bh = abkit.analyze(
        three.assignments, {**share, "experiment": {"correction": "bh"}}, events=three.events
    )
    raw = sorted(r.p_value for r in holm.results)
    assert sorted(r.p_value_adjusted for r in holm.results) == pytest.approx(
        [min(1, 2 * raw[0]), max(min(1, 2 * raw[0]), raw[1])]
    )
    assert sorted(r.p_value_adjusted for r in bh.results) == pytest.approx(
        [min(2 * raw[0], raw[1]), raw[1]]
    )
