"""Daily looks and the novelty check on DuckDB: computed on the engine, only per-arm and
per-look aggregates come back, and the numbers equal the Polars path's (its NumPy
algorithm over the rows) and a hand-written Polars computation on the raw export."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pytest

import abkit
import abkit.inputs.prepare as prepare_module
from abkit.dev.simulate import simulate
from abkit.engine.backend import crossing
from abkit.engine.events import EventUnits
from abkit.stats.arm import ArmSummary
from abkit.stats.quantile import Histogram
from tests.engines import assert_same_numbers, required

METRICS: list[dict[str, Any]] = [
    {"name": "outputs", "type": "mean", "column": "ai_output"},
    {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
    {"name": "any_share", "type": "proportion", "column": "share"},
    {"name": "d1", "type": "retention", "day": 1},
    {"name": "d7", "type": "retention", "day": 7},
    {"name": "depth", "type": "session_depth"},
    {"name": "sessions", "type": "mean", "column": "sessions"},
    {"name": "days", "type": "mean", "column": "active_days"},
    {
        "name": "latency",
        "type": "ratio",
        "numerator": "ai_output.latency_ms",
        "denominator": "ai_output",
    },
    {"name": "p90", "type": "quantile", "column": "ai_output.latency_ms", "q": 0.9},
]
SEQUENTIAL = {
    "msprt": {"method": "msprt"},
    "gst": {"method": "gst", "looks": [4, 8, 12, 14], "duration_days": 14},
}
FIELDS = ("mean", "var", "den_mean", "den_var", "cov")


def _config(method: str, relative_error: float = 0.01) -> dict[str, Any]:
    return {
        "metrics": METRICS,
        "sequential": SEQUENTIAL[method],
        "quantiles": {"method": "histogram", "relative_error": relative_error},
    }


def _duckdb(frame: pl.DataFrame) -> Any:
    connection = required("duckdb").connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection.from_arrow(frame.to_arrow())


class _Run:
    """One analysis, with what the units pass built (its looks) kept."""

    def __init__(self, result: abkit.AnalysisResult, built: EventUnits, rows: int) -> None:
        self.result, self.built, self.rows = result, built, rows


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A function running an analysis and returning the units pass's output with it."""
    original = prepare_module.event_units
    seen: list[EventUnits] = []

    def keeping(*args: Any, **kwargs: Any) -> EventUnits:
        out = original(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(prepare_module, "event_units", keeping)

    def run(assignments: pl.DataFrame, events: Any, config: dict[str, Any]) -> _Run:
        seen.clear()
        with crossing() as crossed:
            result = abkit.analyze(assignments, config, events=events)
        assert len(seen) == 1
        return _Run(result, seen[0], crossed.rows)

    yield run


@pytest.fixture(scope="module")
def export() -> Any:
    return simulate(users=1500, days=14, enrol_days=5, seed=9, judge_rate=0.2)


def _same_arm(a: ArmSummary, b: ArmSummary, where: str) -> None:
    assert a.n == b.n, where
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        if x is None or (isinstance(x, float) and math.isnan(x)):
            assert y is None or math.isnan(y), (where, field, x, y)
        else:
            assert y == pytest.approx(x, rel=1e-12, abs=1e-12), (where, field, x, y)


@pytest.mark.parametrize("method", ["msprt", "gst"])
def test_every_look_on_duckdb_equals_polars(export: Any, capture: Any, method: str) -> None:
    """(a) Every look's arm summaries (mean, ratio, proportion, retention D1/D7, session
    depth, sessions, active days, a value ratio) and every quantile look's histograms
    and estimates equal the Polars path's to 1e-12; nothing crossed per unit or event."""
    config = _config(method)
    polars = capture(export.assignments, export.events, config)
    duck = capture(export.assignments, _duckdb(export.events), config)
    assert_same_numbers(polars.result.to_dict(), duck.result.to_dict())
    assert set(polars.built.looks) == {m["name"] for m in METRICS if m["type"] != "quantile"}
    assert polars.built.looks.keys() == duck.built.looks.keys()
    for name, series in polars.built.looks.items():
        other = duck.built.looks[name]
        assert series.labels == other.labels and len(series.arms) == 14
        for k, (arms, others) in enumerate(zip(series.arms, other.arms, strict=True)):
            for v in arms:
                _same_arm(arms[v], others[v], f"{name} look {k} arm {v}")
    looks, other_looks = polars.built.quantile_looks["p90"], duck.built.quantile_looks["p90"]
    assert looks.most_per_unit == other_looks.most_per_unit > 1
    for k in range(len(looks.parts)):
        for v, part in looks.parts[k].items():
            theirs = other_looks.parts[k][v]
            assert isinstance(part, Histogram) and isinstance(theirs, Histogram)
            assert part.keys.tolist() == theirs.keys.tolist(), (k, v)
            assert part.counts.tolist() == theirs.counts.tolist(), (k, v)
            a, b = looks.estimates[k][v], other_looks.estimates[k][v]
            assert_same_numbers(vars(a), vars(b), f"p90 look {k} arm {v}")
    assert duck.built.crossed == []
    assert not any("came back" in n for n in duck.result.to_dict()["notes"])


def test_rows_crossing_do_not_grow_with_the_units(capture: Any) -> None:
    """(b) The rows that the daily looks bring back from DuckDB (a run with looks less
    the same run without): the same at 1,000 and 4,000 users for the summable metrics;
    for the quantile, at most a histogram per arm and look on the fixed horizon's bins."""
    looks_rows: dict[int, list[int]] = {}
    for users in (1000, 4000):
        sim = simulate(users=users, days=14, enrol_days=5, seed=3)
        found = []
        for metrics in (METRICS[:-1], METRICS):
            config = _config("msprt") | {"metrics": metrics}
            run = capture(sim.assignments, _duckdb(sim.events), config)
            assert run.built.crossed == []
            fixed = {k: v for k, v in config.items() if k != "sequential"}
            without = capture(sim.assignments, _duckdb(sim.events), fixed)
            found.append(run.rows - without.rows)
        bins = run.built.binned["p90"].histogram.height  # (arm, bin) pairs with events
        assert found[1] - found[0] <= 14 * bins + 100, (found, bins)
        looks_rows[users] = found
    assert looks_rows[1000][0] == looks_rows[4000][0] < 100, looks_rows


def _valid_events(export: Any) -> pl.DataFrame:
    """The raw export's events after assignment, of assigned units, without exact
    repeats, with the day since assignment."""
    events = export.events.unique().join(export.assignments, on="user_id", how="inner")
    day = (pl.col("timestamp") - pl.col("assigned_at")).dt.total_microseconds() // 86_400_000_000
    return events.filter(pl.col("timestamp") >= pl.col("assigned_at")).with_columns(
        day.alias("day")
    )


def _arm(x: np.ndarray, y: np.ndarray | None = None) -> dict[str, float]:
    out = {"n": x.size, "mean": float(np.mean(x)), "var": float(np.var(x, ddof=1))}
    if y is not None:
        out |= {
            "den_mean": float(np.mean(y)),
            "den_var": float(np.var(y, ddof=1)),
            "cov": float(np.cov(x, y, ddof=1)[0, 1]),
        }
    return out


def test_looks_equal_the_fixed_horizon_and_a_truncated_export(export: Any, capture: Any) -> None:
    """(c) On DuckDB the last look equals the fixed-horizon arm summaries, and look 6
    (taken at T = origin + 7 days) equals NumPy's moments of the per-unit values a
    hand-written Polars query computes from the raw export truncated at T."""
    duck = capture(export.assignments, _duckdb(export.events), _config("msprt"))
    fixed = abkit.analyze(
        export.assignments, {"metrics": METRICS}, events=_duckdb(export.events)
    ).to_dict()
    by_metric = {r["metric"]: r for r in fixed["results"]}
    for name, series in duck.built.looks.items():
        if name == "depth":  # a ratio of sessions' events, not a unit mean
            continue
        for v in ("control", "treatment"):
            arm, want = series.arms[-1][v], by_metric[name][v]
            value = arm.mean / arm.den_mean if arm.is_ratio else arm.mean
            assert arm.n == want["n"], (name, v)
            assert value == pytest.approx(want["value"], rel=1e-12), (name, v)

    first = export.assignments["assigned_at"].min()
    origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
    k = 6
    cut = origin + dt.timedelta(days=k + 1)
    assert duck.built.looks["outputs"].labels[k] == cut.isoformat()
    units = export.assignments.filter(pl.col("assigned_at") < cut)
    seen = _valid_events(export).filter(pl.col("timestamp") < cut)
    per_unit = seen.group_by("user_id").agg(
        (pl.col("event") == "ai_output").sum().alias("outputs"),
        (pl.col("event") == "share").sum().alias("shares"),
        pl.when(pl.col("event") == "ai_output").then(pl.col("latency_ms")).sum().alias("lat"),
        pl.col("session_id").drop_nulls().n_unique().alias("sessions"),
        pl.col("day").n_unique().alias("days"),
    )
    table = units.join(per_unit, on="user_id", how="left").fill_null(0)
    # D1 at the look: the units whose day 1 had ended by T, active on it
    d1 = (
        export.assignments.filter(pl.col("assigned_at") + dt.timedelta(days=2) <= cut)
        .join(
            _valid_events(export).filter(pl.col("day") == 1).select("user_id").unique(),
            on="user_id",
            how="left",
            coalesce=False,
        )
        .select("variant", pl.col("user_id_right").is_not_null().cast(pl.Float64).alias("d1"))
    )
    for v in ("control", "treatment"):
        arm = table.filter(pl.col("variant") == v)

        def col(name: str, frame: pl.DataFrame = arm) -> np.ndarray:
            return frame[name].cast(pl.Float64).to_numpy()

        want = {
            "outputs": _arm(col("outputs")),
            "share_rate": _arm(col("shares"), col("outputs")),
            "any_share": _arm((col("shares") > 0).astype(float)),
            "sessions": _arm(col("sessions")),
            "days": _arm(col("days")),
            "latency": _arm(col("lat"), col("outputs")),
            "d1": _arm(col("d1", d1.filter(pl.col("variant") == v))),
        }
        for name, expected in want.items():
            got = duck.built.looks[name].arms[k][v]
            for field, value in expected.items():
                assert getattr(got, field) == pytest.approx(value, rel=1e-9), (name, v, field)


NOVELTY = {
    "metrics": [
        {"name": "outputs", "type": "mean", "column": "ai_output"},
        {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "latency", "type": "mean", "column": "ai_output.latency_ms"},
    ],
    "novelty": {"period_days": 3},
}


def test_novelty_on_duckdb_equals_polars_and_brings_no_unit_rows(capture: Any) -> None:
    """(d) The novelty check on DuckDB: the same numbers as Polars, nothing said to have
    come back, and the same rows crossing at 1,000 and 3,000 users."""
    rows = {}
    for users in (1000, 3000):
        sim = simulate(users=users, days=15, enrol_days=5, seed=21)
        polars = capture(sim.assignments, sim.events, NOVELTY)
        duck = capture(sim.assignments, _duckdb(sim.events), NOVELTY)
        result = duck.result.to_dict()
        assert_same_numbers(polars.result.to_dict(), result)
        assert any("novelty" in str(n) for n in result["notes"])
        assert not any("came back" in str(n) for n in result["notes"])
        rows[users] = duck.rows
    assert rows[3000] <= 1.1 * rows[1000] and rows[3000] < 1000, rows


def test_cuped_looks_on_the_engine_and_exact_quantile_looks_say_what_came_back(
    capture: Any,
) -> None:
    """CUPED at each look (a covariate with missing values, the pre-period values) on
    DuckDB equals Polars and brings no row back; the exact route of quantile looks, the
    one step that still reads rows, equals Polars and records only its events."""
    sim = simulate(users=800, days=9, enrol_days=4, seed=5, pre_days=7)
    # a covariate of the assignments, missing for every fifth unit
    age = pl.when(pl.col("user_id") % 5 != 0).then((pl.col("user_id") * 7919) % 60 + 18)
    assignments = sim.assignments.with_columns(age.cast(pl.Float64).alias("age"))
    cuped = {
        "metrics": [m | {"covariates": ["age"]} for m in METRICS[:5]],
        "cuped": {"pre_days": 7},
        "sequential": {"method": "msprt"},
    }
    polars = capture(assignments, sim.events, cuped)
    duck = capture(assignments, _duckdb(sim.events), cuped)
    assert_same_numbers(polars.result.to_dict(), duck.result.to_dict())
    adjusted = [n for n, s in polars.built.looks.items() if s.covariates]
    assert {"outputs", "share_rate", "d1"} <= set(adjusted), adjusted
    for name in adjusted:
        ours, theirs = polars.built.looks[name], duck.built.looks[name]
        assert ours.covariates == theirs.covariates and "age missing" in ours.covariates
        for k, (look, other) in enumerate(zip(ours.moments, theirs.moments, strict=True)):
            for v, m in look.items():
                o = other[v]
                assert m.n == o.n, (name, k, v)
                where = f"{name} look {k} arm {v}"
                assert_same_numbers(m.mean.tolist(), o.mean.tolist(), where)
                assert_same_numbers(m.cov.tolist(), o.cov.tolist(), where)
    assert duck.built.crossed == []
    exact = {"metrics": METRICS[-1:], "sequential": {"method": "msprt"}}
    exact["quantiles"] = {"method": "exact"}
    polars = capture(sim.assignments, sim.events, exact)
    duck = capture(sim.assignments, _duckdb(sim.events), exact)
    assert_same_numbers(polars.result.to_dict(), duck.result.to_dict())
    outputs = _valid_events(sim).filter(pl.col("event") == "ai_output").height
    assert dict(duck.built.crossed)["daily looks of exact quantiles (events)"] == outputs


@pytest.mark.spark
def test_looks_and_novelty_are_the_same_on_spark() -> None:
    """Daily looks (every metric kind above) and the novelty check on a local Spark
    session equal Polars' to 1e-12, and nothing is said to have come back."""
    required("pyspark.sql")
    from abkit.io.engines import local_spark
    from tests.engines import to_spark

    spark = local_spark(cores="1", shuffle_partitions=1)
    try:
        sim = simulate(users=600, days=14, enrol_days=5, seed=9, judge_rate=0.2)
        for config in (_config("msprt"), NOVELTY):
            reference = abkit.analyze(sim.assignments, config, events=sim.events).to_dict()
            other = abkit.analyze(
                sim.assignments, config, events=to_spark(sim.events, spark)
            ).to_dict()
            assert_same_numbers(reference, other)
            assert not any("came back" in str(n) for n in other["notes"])
    finally:
        spark.stop()


@pytest.mark.parametrize("engine", ["sqlframe", "ibis"])
def test_novelty_is_the_same_on_sqlframe_and_ibis(engine: str) -> None:
    """The novelty check on SQLFrame and Ibis (over DuckDB) equals Polars' (a period
    column named by its number was read as that number by SQLFrame)."""
    sim = simulate(users=800, days=15, enrol_days=5, seed=21)
    duckdb = required("duckdb")
    if engine == "sqlframe":
        from tests.engines import sqlframe_session, to_sqlframe

        required("sqlframe")
        connection = duckdb.connect()
        connection.execute("SET TimeZone = 'UTC'")
        events = to_sqlframe(sim.events, sqlframe_session(connection), connection, "novelty")
    else:
        from tests.engines import to_ibis

        ibis = required("ibis")
        backend = ibis.duckdb.connect()
        backend.raw_sql("SET TimeZone = 'UTC'")
        events = to_ibis(sim.events, backend, "novelty")
    reference = abkit.analyze(sim.assignments, NOVELTY, events=sim.events).to_dict()
    other = abkit.analyze(sim.assignments, NOVELTY, events=events).to_dict()
    assert_same_numbers(reference, other)
    assert other["results"][0]["novelty"] is not None
    assert not any("came back" in str(n) for n in other["notes"])
