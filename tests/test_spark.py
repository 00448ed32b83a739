"""The units stage on a local Spark session: the same export gives the same result as
on Polars, to 1e-12.  Under CI=true a missing PySpark or Java fails the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError
from abkit.io.engines import local_spark
from tests.conftest import EXAMPLE, analyze_example
from tests.engines import (
    assert_default_session_works,
    assert_same_numbers,
    required,
    run_as_a_user,
    to_spark,
)
from tests.test_engines import METRICS, PRICES, _hostile

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A small local session: one core, one shuffle partition, no UI, UTC."""
    required("pyspark.sql")
    session = local_spark(cores="1", shuffle_partitions=1)
    yield session
    session.stop()


def test_the_bundled_example_is_the_same_on_spark(spark):
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    reference = abkit.analyze(assignments, config, events=events).to_dict()
    other = abkit.analyze(assignments, config, events=to_spark(events, spark)).to_dict()
    assert_same_numbers(reference, other)


def test_every_exclusion_reason_and_metric_type_is_the_same_on_spark(spark):
    assignments, events = _hostile(users=800)
    config = {"metrics": METRICS, "quantiles": {"method": "histogram"}, "cost": PRICES}
    reference = abkit.analyze(assignments, config, events=events).to_dict()
    other = abkit.analyze(assignments, config, events=to_spark(events, spark)).to_dict()
    assert_same_numbers(reference, other)


def test_cuped_daily_looks_and_novelty_are_the_same_on_spark(spark):
    """CUPED with a covariate missing for a fifth of the users, text numbers and the
    pre-period, monitored at daily looks (CUPED at each look) with the novelty check:
    every moment is computed on Spark and equals Polars' to 1e-12 (a sum of booleans,
    which Spark refuses, once broke CUPED there)."""
    from tests.test_pushdown_cuped import _example_with_covariates

    assignments, events, config = _example_with_covariates()
    config = {**config, "sequential": {"method": "msprt"}, "novelty": {"period_days": 7}}
    reference = abkit.analyze(assignments, config, events=events)
    other = abkit.analyze(assignments, config, events=to_spark(events, spark))
    assert any(r.cuped is not None for r in reference.results)
    assert any(r.sequential is not None for r in reference.results)
    assert not any("came back from the" in n for n in other.notes)
    assert_same_numbers(reference.to_dict(), other.to_dict())


def test_a_spark_session_outside_utc_is_refused(spark):
    sim = simulate(users=200, days=5, enrol_days=2, seed=12)
    events = to_spark(sim.events, spark)
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        with pytest.raises(AbkitInputError, match=r"spark\.sql\.session\.timeZone"):
            abkit.analyze(sim.assignments, events=events)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_a_spark_session_whose_zone_is_spelled_etc_utc(spark):
    """A default local SparkSession on Linux has the session time zone 'Etc/UTC' (the
    JVM's); it failed inside Narwhals where abkit's own check had accepted it."""
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    reference = abkit.analyze(assignments, config, events=events).to_dict()
    # Narwhals caches a session's time zone (a session's zone is set once in real use):
    # the shared test session changes it, so the cache is cleared around the change
    from narwhals._spark_like.utils import fetch_session_time_zone

    spark.conf.set("spark.sql.session.timeZone", "Etc/UTC")
    fetch_session_time_zone.cache_clear()
    try:
        other = abkit.analyze(assignments, config, events=to_spark(events, spark)).to_dict()
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        fetch_session_time_zone.cache_clear()
    assert_same_numbers(reference, other)


def test_a_default_spark_session_as_users_open_it():
    """``SparkSession.builder.getOrCreate()`` with nothing set, in a fresh interpreter
    (a session is process-wide): its zone is the JVM's, 'Etc/UTC' on a Linux machine in
    UTC, and abkit gives the Polars numbers; set to Europe/Paris, it is refused with
    the setting that fixes it."""
    required("pyspark.sql")
    reference = analyze_example().to_dict()
    seen = run_as_a_user(
        "from pyspark.sql import SparkSession\nsession = SparkSession.builder.getOrCreate()",
        'session.conf.get("spark.sql.session.timeZone")',
        "session.read.parquet",
        'session.conf.set("spark.sql.session.timeZone", "Europe/Paris")',
        EXAMPLE,
    )
    assert_default_session_works(seen, reference, "spark.sql.session.timeZone")
