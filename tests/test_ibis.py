"""Events in an Ibis table over DuckDB, opened the way users open them: the same numbers
as Polars to 1e-12 through ``abkit.analyze`` and ``abkit analyze --engine ibis``, a
session outside UTC refused with the fix, and the rows that come back from the engine
not growing with the number of units.  (Ibis over PostgreSQL: tests/test_postgres.py;
the engine matrix of tests/test_engines.py runs Ibis over DuckDB too.)"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.engine.backend import crossing
from abkit.errors import AbkitInputError
from tests.conftest import EXAMPLE
from tests.engines import assert_same_numbers, required, to_ibis
from tests.test_engines import METRICS, PRICES

UTC = dt.UTC


@pytest.fixture(scope="module")
def ibis_duckdb() -> Any:
    """A default in-memory Ibis DuckDB connection, as ``ibis.duckdb.connect()`` gives."""
    ibis = required("ibis")
    return ibis.duckdb.connect()


def test_the_bundled_example_read_with_ibis_over_duckdb_gives_the_polars_numbers(ibis_duckdb):
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    reference = abkit.analyze(assignments, config, events=EXAMPLE / "events.parquet")
    events = ibis_duckdb.read_parquet(str(EXAMPLE / "events.parquet"))
    other = abkit.analyze(assignments, config, events=events)
    assert_same_numbers(reference.to_dict(), other.to_dict())
    # assignments as an Ibis table too (they are read into Polars)
    both = abkit.analyze(
        ibis_duckdb.read_parquet(str(EXAMPLE / "assignments.parquet")), config, events=events
    )
    assert_same_numbers(reference.to_dict(), both.to_dict())


def test_the_cli_reads_csv_parquet_and_ndjson_with_ibis_and_gives_the_polars_numbers(tmp_path):
    from click.testing import CliRunner

    from abkit_cli.main import cli

    required("ibis")
    sim = simulate(users=600, days=10, enrol_days=4, seed=13)
    sim.assignments.write_csv(tmp_path / "a.csv")
    sim.events.write_csv(tmp_path / "e.csv")
    sim.events.write_parquet(tmp_path / "e.parquet")
    sim.events.write_ndjson(tmp_path / "e.ndjson")  # value is null throughout: JSON-typed
    (tmp_path / "c.toml").write_text('[quantiles]\nmethod = "histogram"\n')

    def run(engine: str, events: str) -> dict[str, Any]:
        args = [str(tmp_path / "a.csv"), str(tmp_path / events), "-f", "json"]
        args += ["-c", str(tmp_path / "c.toml"), "--engine", engine]
        out = CliRunner().invoke(cli, ["analyze", *args])
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    reference = run("polars", "e.csv")
    for events in ("e.csv", "e.parquet", "e.ndjson"):
        assert_same_numbers(reference, run("ibis", events), where=events)


def test_an_ibis_duckdb_session_outside_utc_is_refused_with_the_fix(ibis_duckdb):
    sim = simulate(users=200, days=5, enrol_days=2, seed=12)
    paris = required("ibis").duckdb.connect()
    events = to_ibis(sim.events, paris, "paris_events")
    paris.raw_sql("SET TimeZone = 'Europe/Paris'")
    with pytest.raises(AbkitInputError, match=r"'Europe/Paris'.*SET TimeZone = 'UTC'") as caught:
        abkit.analyze(sim.assignments, events=events)
    assert "ibis (duckdb)" in str(caught.value)


def test_a_text_timestamp_in_an_ibis_table_is_refused_with_the_cast_to_use(ibis_duckdb):
    sim = simulate(users=200, days=5, enrol_days=2, seed=12)
    events = sim.events.with_columns(pl.col("timestamp").dt.to_string())
    with pytest.raises(AbkitInputError, match=r"CAST\(timestamp AS TIMESTAMP\)"):
        abkit.analyze(sim.assignments, events=to_ibis(events, ibis_duckdb, "text_times"))


def test_naive_timestamps_and_dates_in_an_ibis_table_are_read_as_utc(ibis_duckdb):
    """A ``timestamp`` without a zone is taken as UTC (the session's zone); a ``date``
    as its midnight UTC: the same numbers as Polars given the same columns."""
    sim = simulate(users=800, days=10, enrol_days=4, seed=15)
    naive = sim.events.with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    config = {"metrics": METRICS[:3]}
    reference = abkit.analyze(sim.assignments, config, events=naive).to_dict()
    other = abkit.analyze(sim.assignments, config, events=to_ibis(naive, ibis_duckdb, "naive"))
    assert_same_numbers(reference, other.to_dict())
    dated = sim.events.with_columns(pl.col("timestamp").dt.date())
    reference = abkit.analyze(sim.assignments, config, events=dated).to_dict()
    other = abkit.analyze(sim.assignments, config, events=to_ibis(dated, ibis_duckdb, "dated"))
    assert_same_numbers(reference, other.to_dict())


def test_days_and_epoch_from_clock_fields_on_ibis_match_python(ibis_duckdb):
    from tests.test_engines import clock_fields_match_python

    clock_fields_match_python(lambda frame: to_ibis(frame, ibis_duckdb, "clock"))


def test_a_missing_ibis_names_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ibis", None)  # import ibis now raises ImportError
    (tmp_path / "e.parquet").write_bytes(b"")
    with pytest.raises(AbkitInputError, match=r'pip install "abkit\[ibis\]"'):
        abkit.read_on("ibis", tmp_path / "e.parquet")


# metrics whose results come back as per-arm sums; quantiles and session depth come back
# as per-arm histograms, whose rows grow with the spread of the values (bounded by the
# number of bins), not with the number of units
SUMMED = [m for m in METRICS if m["type"] not in ("quantile", "session_depth")]
CROSSING_SIZES = (2_000, 8_000)
# a per-unit route would bring back one row per unit: 6,000 more at the larger size
UNITS_PER_EXTRA_ROW = 100


def rows_crossing(put: Any, sizes: tuple[int, ...] = CROSSING_SIZES) -> list[int]:
    """Rows brought back from the engine while analysing simulated exports of ``sizes``
    users (same settings and seed), their events put on the engine by ``put(frame,
    name)``; each run's numbers are checked against Polars on the way."""
    rows = []
    config = {"metrics": SUMMED, "cost": PRICES}
    for users in sizes:
        sim = simulate(users=users, days=28, seed=7, judge_rate=0.2, thumbs_rate=0.05)
        reference = abkit.analyze(sim.assignments, config, events=sim.events).to_dict()
        events = put(sim.events, f"events_{users}")
        with crossing() as seen:
            other = abkit.analyze(sim.assignments, config, events=events).to_dict()
        assert_same_numbers(reference, other, where=f"{users} users")
        rows.append(seen.rows)
    return rows


def assert_independent_of_units(rows: list[int], sizes: tuple[int, ...] = CROSSING_SIZES) -> None:
    """The rows that came back grow by less than one per ``UNITS_PER_EXTRA_ROW`` added
    units (per-day counts gain a row when a day first has a unit; one row per unit
    would add one per unit)."""
    small, large = rows
    assert large - small < (sizes[1] - sizes[0]) / UNITS_PER_EXTRA_ROW, (
        f"rows crossing at {sizes[0]:,} and {sizes[1]:,} users: {small:,} and {large:,}"
    )


def test_rows_crossing_from_ibis_over_duckdb_do_not_grow_with_the_units(ibis_duckdb):
    rows = rows_crossing(lambda frame, name: to_ibis(frame, ibis_duckdb, name))
    assert_independent_of_units(rows)
