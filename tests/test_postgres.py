"""Events in a PostgreSQL table, read through Ibis: a real server of the test session
(tests/engines.py, ``postgres_server``), exports loaded with their timestamps as
``timestamptz``, ``ibis.postgres.connect(...)`` as users open it, and every number of
the result equal to the Polars run's to 1e-12.  Without PostgreSQL installed the tests
skip; under CI=true they fail (.ci/run installs Debian's postgresql package)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError
from tests.conftest import EXAMPLE
from tests.engines import B2B_CONFIG, PostgresServer, assert_same_numbers, to_postgres
from tests.test_engines import METRICS, PRICES, _hostile, _looks, clock_fields_match_python
from tests.test_ibis import assert_independent_of_units, rows_crossing


@pytest.fixture(scope="module")
def pg(postgres: PostgresServer) -> Iterator[Any]:
    """An Ibis connection to the session's server (Ibis sets its time zone to UTC)."""
    backend = postgres.connect()
    yield backend
    backend.disconnect()


def _names() -> Iterator[str]:
    yield from (f"t{i}" for i in range(10**6))


NAMES = _names()


def on_postgres(backend: Any) -> Any:
    return lambda frame: to_postgres(frame, backend, next(NAMES))


def test_the_bundled_example_in_postgres_gives_the_polars_numbers(pg):
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    reference = abkit.analyze(assignments, config, events=events).to_dict()
    table = to_postgres(events, pg, "example_events")
    assert table.schema()["timestamp"].timezone == "UTC"  # timestamptz
    other = abkit.analyze(assignments, config, events=table).to_dict()
    assert_same_numbers(reference, other)
    # the assignments in PostgreSQL too (they are read into Polars)
    both = abkit.analyze(to_postgres(assignments, pg, "example_assignments"), config, events=table)
    assert_same_numbers(reference, both.to_dict())


def test_every_exclusion_reason_and_metric_type_is_the_same_in_postgres(pg):
    assignments, events = _hostile()
    config = {"metrics": METRICS, "quantiles": {"method": "histogram"}, "cost": PRICES}
    reference = abkit.analyze(assignments, config, events=events).to_dict()
    other = abkit.analyze(assignments, config, events=on_postgres(pg)(events)).to_dict()
    assert_same_numbers(reference, other)


def test_daily_looks_are_the_same_in_postgres(pg):
    _looks(on_postgres(pg), "msprt")


def test_b2b_accounts_are_the_same_in_postgres(pg):
    sim = simulate(users=1500, days=21, enrol_days=7, seed=10, mode="b2b")
    config = B2B_CONFIG
    reference = abkit.analyze(sim.assignments, config, events=sim.events).to_dict()
    events = on_postgres(pg)(sim.events)
    assert_same_numbers(reference, abkit.analyze(sim.assignments, config, events=events).to_dict())


def test_timestamp_without_zone_and_date_columns_in_postgres_are_read_as_utc(pg):
    sim = simulate(users=800, days=10, enrol_days=4, seed=15)
    config = {"metrics": METRICS[:3]}
    for column in (
        pl.col("timestamp").dt.replace_time_zone(None),  # timestamp
        pl.col("timestamp").dt.date(),  # date
    ):
        events = sim.events.with_columns(column)
        reference = abkit.analyze(sim.assignments, config, events=events).to_dict()
        table = on_postgres(pg)(events)
        other = abkit.analyze(sim.assignments, config, events=table).to_dict()
        assert_same_numbers(reference, other)


def test_a_postgres_session_outside_utc_is_refused_with_the_fix(postgres):
    backend = postgres.connect()
    try:
        sim = simulate(users=200, days=5, enrol_days=2, seed=12)
        events = to_postgres(sim.events, backend, "paris_events")
        backend.raw_sql("SET TIME ZONE 'Europe/Paris'").close()
        with pytest.raises(AbkitInputError, match=r"'Europe/Paris'.*SET TIME ZONE 'UTC'") as caught:
            abkit.analyze(sim.assignments, events=events)
        assert "ibis (postgres)" in str(caught.value)
    finally:
        backend.disconnect()


def test_days_and_epoch_from_clock_fields_in_postgres_match_python(pg):
    clock_fields_match_python(on_postgres(pg))


def test_rows_crossing_from_postgres_do_not_grow_with_the_units(pg):
    rows = rows_crossing(lambda frame, name: to_postgres(frame, pg, name))
    assert_independent_of_units(rows)
