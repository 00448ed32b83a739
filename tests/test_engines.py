"""The units stage on every engine: the same export analysed from Polars, DuckDB,
SQLFrame and Ibis over DuckDB gives the same result to 1e-12 (Spark:
tests/test_spark.py; Ibis over PostgreSQL: tests/test_postgres.py).

The exports are built to reach every branch of the stage: excluded rows of each
reason, exact duplicates, a unit in two variants, value sums, session depth, retention
windows, a derived assignment table, daily looks and B2B accounts.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.engine.event_columns import value_out_of_range
from abkit.errors import AbkitInputError
from abkit.stats.quantile import LogBins
from tests.conftest import EXAMPLE, analyze_example
from tests.engines import (
    B2B_CONFIG,
    assert_default_session_works,
    assert_same_numbers,
    required,
    run_as_a_user,
    sqlframe_session,
    to_duckdb,
    to_ibis,
    to_sqlframe,
)

UTC = dt.UTC

METRICS = [
    {"name": "d1", "type": "retention", "day": 1},
    {"name": "d2_7", "type": "retention", "window": [2, 7], "events": ["ai_output"]},
    {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
    {"name": "depth", "type": "session_depth"},
    {"name": "sessions", "type": "mean", "column": "sessions"},
    {"name": "days", "type": "mean", "column": "active_days"},
    {
        "name": "latency",
        "type": "ratio",
        "numerator": "ai_output.latency_ms",
        "denominator": "ai_output",
    },
    {"name": "errors", "type": "proportion", "column": "error"},
    {"name": "p95", "type": "quantile", "column": "ai_output.latency_ms", "q": 0.95},
    {"name": "judge", "type": "event_mean", "column": "judge_score.value"},
    {"name": "cost", "type": "event_mean", "column": "ai_output.cost"},
    {"name": "per_user", "type": "ratio", "numerator": "ai_output.cost", "denominator": "active"},
    {
        "name": "thumbs",
        "type": "ratio",
        "numerator": "thumbs_up",
        "denominator": "thumbs_up + thumbs_down",
    },
]
PRICES = {"input_per_1k": 0.003, "output_per_1k": 0.015}  # cost priced on the engine


@pytest.fixture(scope="module")
def duckdb_connection() -> Any:
    duckdb = required("duckdb")
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


@pytest.fixture(scope="module")
def on_duckdb(duckdb_connection: Any) -> Callable[[pl.DataFrame], Any]:
    """A function putting a Polars frame on DuckDB."""
    return lambda frame: to_duckdb(frame, duckdb_connection)


@pytest.fixture(scope="module", params=["duckdb", "sqlframe", "ibis"])
def engine(request: pytest.FixtureRequest, duckdb_connection: Any) -> Callable[[pl.DataFrame], Any]:
    """A function putting a Polars frame on the engine under test (SQLFrame spends
    seconds generating SQL per analysis, so it runs the broadest cases only; Ibis runs
    over a default ``ibis.duckdb.connect()``)."""
    names = iter(f"t{i}" for i in range(10**6))
    if request.param == "duckdb":
        return lambda frame: to_duckdb(frame, duckdb_connection)
    if request.param == "ibis":
        backend = required("ibis").duckdb.connect()
        return lambda frame: to_ibis(frame, backend, next(names))
    required("sqlframe")
    session = sqlframe_session(duckdb_connection)
    return lambda frame: to_sqlframe(frame, session, duckdb_connection, next(names))


def _hostile(users: int = 1500, seed: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A simulated export plus one row of every kind the stage must exclude."""
    sim = simulate(users=users, days=21, enrol_days=7, seed=seed, judge_rate=0.2, thumbs_rate=0.05)
    assignments, events = sim.assignments, sim.events
    first = events.row(0, named=True)
    t0 = assignments["assigned_at"].min()
    odd = pl.DataFrame(
        [
            first,  # an exact duplicate
            first,  # and another
            {**first, "user_id": None},
            {**first, "event": None},
            {**first, "timestamp": None},
            {**first, "user_id": 10**9},  # not assigned
            {**first, "timestamp": t0 - dt.timedelta(days=30)},  # before assignment
            {**first, "user_id": 10**9 + 1},  # in two variants (below)
        ],
        schema=events.schema,
    )
    twice = pl.DataFrame(
        {
            "user_id": [10**9 + 1, 10**9 + 1],
            "variant": ["control", "treatment"],
            "assigned_at": [t0, t0],
        },
        schema=assignments.schema,
    )
    return pl.concat([assignments, twice]), pl.concat([events, odd])


def _both(
    engine: Callable[[pl.DataFrame], Any],
    assignments: pl.DataFrame | None,
    events: pl.DataFrame,
    config: dict[str, Any],
    **kw: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The result from Polars and from the engine (events, and assignments, on it)."""
    if assignments is None:  # a single events table
        reference = abkit.analyze(events, config, **kw)
        other = abkit.analyze(engine(events), config, **kw)
    else:
        reference = abkit.analyze(assignments, config, events=events, **kw)
        other = abkit.analyze(engine(assignments), config, events=engine(events), **kw)
    return reference.to_dict(), other.to_dict()


def test_the_bundled_example_is_the_same_on_the_engine(engine):
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    reference = abkit.analyze(assignments, config, events=events).to_dict()
    other = abkit.analyze(engine(assignments), config, events=engine(events)).to_dict()
    assert_same_numbers(reference, other)


def test_every_exclusion_reason_and_metric_type_is_the_same_on_the_engine(engine):
    assignments, events = _hostile()
    config = {"metrics": METRICS, "quantiles": {"method": "histogram"}, "cost": PRICES}
    reference, other = _both(engine, assignments, events, config)
    assert_same_numbers(reference, other)
    reasons = {e["reason"] for e in reference["exclusions"]}
    assert any("duplicate" in r for r in reasons)
    assert any("before assignment" in r for r in reasons)
    assert any("excluded from the assignments" in r for r in reasons)


def test_a_single_events_table_is_the_same_on_the_engine(on_duckdb):
    engine = on_duckdb
    sim = simulate(users=1200, days=14, enrol_days=5, seed=8)
    single = sim.events.join(sim.assignments.select("user_id", "variant"), on="user_id")
    config = {"metrics": METRICS[:4]}
    reference, other = _both(engine, None, single, config)
    assert_same_numbers(reference, other)


def test_daily_looks_are_the_same_on_the_engine(engine):
    _looks(engine, "msprt")


def test_group_sequential_looks_are_the_same_on_duckdb(on_duckdb):
    _looks(on_duckdb, "gst")


def _looks(engine: Callable[[pl.DataFrame], Any], method: str) -> None:
    sim = simulate(users=1500, days=14, enrol_days=5, seed=9, judge_rate=0.2, thumbs_rate=0.05)
    # every summable reference kind, and a quantile (its per-look histograms)
    metrics = METRICS[:3] + METRICS[6:7] + METRICS[8:]
    config = {
        "metrics": metrics,
        "sequential": {"method": method},
        "quantiles": {"method": "histogram"},
        "cost": PRICES,
    }
    reference, other = _both(engine, sim.assignments, sim.events, config)
    assert_same_numbers(reference, other)


def test_b2b_accounts_are_the_same_on_the_engine(on_duckdb):
    engine = on_duckdb
    sim = simulate(users=1500, days=21, enrol_days=7, seed=10, mode="b2b")
    config = B2B_CONFIG
    reference, other = _both(engine, sim.assignments, sim.events, config)
    assert_same_numbers(reference, other)


def test_text_unit_ids_against_integer_assignments_are_the_same_on_the_engine(on_duckdb):
    engine = on_duckdb
    sim = simulate(users=800, days=10, enrol_days=4, seed=11)
    events = sim.events.with_columns(pl.col("user_id").cast(pl.String))
    reference, other = _both(engine, sim.assignments, events, {"metrics": METRICS[:3]})
    assert_same_numbers(reference, other)


def test_a_text_timestamp_on_an_engine_is_refused_with_the_cast_to_use(duckdb_connection):
    sim = simulate(users=200, days=5, enrol_days=2, seed=12)
    events = sim.events.with_columns(pl.col("timestamp").dt.to_string())
    with pytest.raises(AbkitInputError, match=r"CAST\(timestamp AS TIMESTAMP\)"):
        abkit.analyze(sim.assignments, events=to_duckdb(events, duckdb_connection))


def test_a_duckdb_session_outside_utc_is_refused():
    duckdb = required("duckdb")
    berlin = duckdb.connect()
    berlin.execute("SET TimeZone = 'Europe/Berlin'")
    sim = simulate(users=200, days=5, enrol_days=2, seed=12)
    events = to_duckdb(sim.events, berlin)
    with pytest.raises(AbkitInputError, match="SET TimeZone = 'UTC'"):
        abkit.analyze(sim.assignments, events=events)


def test_the_cli_reads_a_csv_export_with_duckdb_and_gives_the_polars_numbers(tmp_path):
    from click.testing import CliRunner

    from abkit_cli.main import cli

    required("duckdb")
    sim = simulate(users=600, days=10, enrol_days=4, seed=13)
    sim.assignments.write_csv(tmp_path / "a.csv")
    sim.events.write_csv(tmp_path / "e.csv")
    # the default p95 latency by one route on both engines (auto: exact on Polars only)
    (tmp_path / "c.toml").write_text('[quantiles]\nmethod = "histogram"\n')
    runs = {}
    for engine in ("polars", "duckdb"):
        args = [str(tmp_path / "a.csv"), str(tmp_path / "e.csv"), "-f", "json"]
        args += ["-c", str(tmp_path / "c.toml")]
        out = CliRunner().invoke(cli, ["analyze", *args, "--engine", engine])
        assert out.exit_code == 0, out.output
        runs[engine] = json.loads(out.stdout)
    assert_same_numbers(runs["polars"], runs["duckdb"])


def test_a_missing_engine_names_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb now raises ImportError
    (tmp_path / "e.parquet").write_bytes(b"")
    with pytest.raises(AbkitInputError, match=r'pip install "abkit\[duckdb\]"'):
        abkit.read_on("duckdb", tmp_path / "e.parquet")


def test_days_and_epoch_from_clock_fields_match_python_across_centuries(on_duckdb):
    clock_fields_match_python(on_duckdb)


def clock_fields_match_python(put: Callable[[pl.DataFrame], Any]) -> None:
    """The clock-field arithmetic used off Polars (leap years by the Gregorian rule,
    1900 and 2100 not leap, 2000 leap) against Python's exact datetime arithmetic, on
    the engine ``put`` puts a Polars frame on."""
    import narwhals as nw
    import numpy as np

    from abkit.engine.backend import days_between, epoch_microseconds

    rng = np.random.default_rng(4)
    lo, hi = dt.datetime(1890, 1, 1, tzinfo=UTC), dt.datetime(2210, 1, 1, tzinfo=UTC)
    span_us = int((hi - lo).total_seconds() * 1e6)
    offsets = rng.integers(0, span_us, size=(500, 2))
    start = [lo + dt.timedelta(microseconds=int(a)) for a in offsets[:, 0]]
    end = [
        s + dt.timedelta(microseconds=int(b) // 40)
        for s, b in zip(start, offsets[:, 1], strict=True)
    ]
    utc = pl.Datetime("us", "UTC")
    frame = pl.DataFrame({"s": start, "e": end}, schema={"s": utc, "e": utc})
    on_engine = nw.from_native(put(frame))
    got = (
        on_engine.select(
            days_between("s", "e", on_engine).alias("days"),
            epoch_microseconds("s", on_engine).alias("epoch"),
        )
        .collect("polars")
        .to_native()
    )
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    assert got["days"].to_list() == [
        (e - s) // dt.timedelta(days=1) for s, e in zip(start, end, strict=True)
    ]
    assert got["epoch"].to_list() == [(s - epoch) // dt.timedelta(microseconds=1) for s in start]


def test_values_that_cannot_be_summed_exactly_are_excluded_and_counted(on_duckdb):
    sim = simulate(users=300, days=6, enrol_days=2, seed=14)
    bad = sim.events.filter(pl.col("event") == "ai_output").head(3)
    bad = bad.with_columns(pl.Series("latency_ms", [float("nan"), float("inf"), 3e20]))
    events = pl.concat([sim.events, bad])
    config = {"metrics": [METRICS[6]]}
    reference, other = _both(on_duckdb, sim.assignments, events, config)
    assert_same_numbers(reference, other)
    rows = {e["reason"]: e["rows"] for e in reference["exclusions"]}
    assert rows[value_out_of_range("latency_ms")] == 3


def test_a_sqlframe_connection_outside_utc_is_refused(duckdb_connection):
    """SQLFrame's session is a process-wide singleton bound to its first connection
    (this module's), so that connection's zone is changed for the test."""
    required("sqlframe")
    sim = simulate(users=200, days=5, enrol_days=2, seed=12)
    session = sqlframe_session(duckdb_connection)
    events = to_sqlframe(sim.events, session, duckdb_connection, "berlin_events")
    duckdb_connection.execute("SET TimeZone = 'Europe/Berlin'")
    try:
        with pytest.raises(AbkitInputError, match="SET TimeZone = 'UTC'"):
            abkit.analyze(sim.assignments, events=events)
    finally:
        duckdb_connection.execute("SET TimeZone = 'UTC'")


def test_quantiles_take_the_histogram_route_on_engines_and_either_route_agrees(on_duckdb):
    """``auto`` bins the values on an engine and collects them on Polars; each route
    gives the same numbers on both, and the binned quantile is within the bins' stated
    relative error of the exact one."""
    sim = simulate(users=1500, days=8, enrol_days=3, seed=9, latency_user_sd=0.5)
    metric = {"name": "p95", "type": "quantile", "column": "ai_output.latency_ms", "q": 0.95}

    def run(events: Any, method: str) -> abkit.AnalysisResult:
        config = {"metrics": [metric], "quantiles": {"method": method}}
        return abkit.analyze(sim.assignments, config, events=events)

    exact, binned = run(sim.events, "exact"), run(sim.events, "histogram")
    assert_same_numbers(exact.to_dict(), run(on_duckdb(sim.events), "exact").to_dict())
    assert_same_numbers(binned.to_dict(), run(on_duckdb(sim.events), "auto").to_dict())
    assert_same_numbers(exact.to_dict(), run(sim.events, "auto").to_dict())
    error = LogBins(0.001).error
    for a, b in zip(exact.results, binned.results, strict=True):
        assert b.control_value == pytest.approx(a.control_value, rel=error)
        assert b.treatment_value == pytest.approx(a.treatment_value, rel=error)
        assert b.ci[1] - b.ci[0] == pytest.approx(a.ci[1] - a.ci[0], rel=0.02)


@pytest.mark.parametrize("zone", [None, "Etc/UTC"], ids=["default-connection", "etc-utc"])
def test_a_duckdb_connection_as_users_open_it(zone):
    """A plain duckdb.connect() on Linux says its time zone is 'Etc/UTC'; reading events
    through it failed inside Narwhals ('Only the connection time zone Etc/UTC is
    supported, got: UTC') where abkit's own check had accepted it."""
    duckdb = required("duckdb")
    connection = duckdb.connect()
    if zone is not None:
        connection.execute(f"SET TimeZone = '{zone}'")
    said = connection.sql("select current_setting('TimeZone')").fetchall()[0][0]
    if said not in ("UTC", "Etc/UTC", "GMT"):
        pytest.skip(f"this machine's default time zone is {said!r}, not a UTC spelling")
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    reference = abkit.analyze(assignments, config, events=EXAMPLE / "events.parquet").to_dict()
    events = connection.read_parquet(str(EXAMPLE / "events.parquet"))
    other = abkit.analyze(assignments, config, events=events).to_dict()
    assert_same_numbers(reference, other)


def test_a_default_sqlframe_session_as_users_open_it():
    """``DuckDBSession()`` with nothing set, in a fresh interpreter (the session is a
    process-wide singleton): its DuckDB connection is in the machine's zone."""
    required("sqlframe")
    reference = analyze_example().to_dict()
    seen = run_as_a_user(
        "from sqlframe.duckdb import DuckDBSession\nsession = DuckDBSession()",
        'session.conf.get("spark.sql.session.timeZone")',
        "session.read.parquet",
        'session.conf.set("spark.sql.session.timeZone", "Europe/Paris")',
        EXAMPLE,
    )
    assert_default_session_works(seen, reference, "SET TimeZone = 'UTC'")


def test_a_default_duckdb_connection_in_a_fresh_interpreter():
    """``duckdb.connect()`` and ``con.read_parquet`` as in DuckDB's own guide, in a
    fresh interpreter: the connection is in the machine's zone."""
    required("duckdb")
    reference = analyze_example().to_dict()
    seen = run_as_a_user(
        "import duckdb\ncon = duckdb.connect()",
        "con.sql(\"select current_setting('TimeZone')\").fetchall()[0][0]",
        "con.read_parquet",
        "con.execute(\"SET TimeZone = 'Europe/Paris'\")",
        EXAMPLE,
    )
    assert_default_session_works(seen, reference, "SET TimeZone = 'UTC'")
