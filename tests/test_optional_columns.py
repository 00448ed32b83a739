"""A column a metric declares optional (the human label of judged quality): a NaN there
is a missing value, read as null, where a NaN in a column a metric needs on every event
excludes that event.  Polars and DuckDB give the same numbers (to 1e-12), and labels
handed over as numpy arrays (NaN for a missing float) give the numbers of the same
export with nulls.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.engine.event_columns import value_out_of_range
from tests.engines import assert_same_numbers, required, to_duckdb

JUDGED = {
    "name": "quality",
    "type": "judged_quality",
    "column": "judge_score.value",
    "human": "judge_score.human_score",
}
# the mean human label per labelled output: reads the same column, declares nothing
LABEL_MEAN = {"name": "label_mean", "type": "event_mean", "column": "judge_score.human_score"}
CONFIG = {"metrics": [JUDGED, LABEL_MEAN]}


@pytest.fixture(scope="module")
def export() -> Any:
    return simulate(users=1200, judge_rate=0.5, human_share=0.2, judge_bias=0.1, seed=8)


@pytest.fixture(scope="module")
def duckdb_connection() -> Any:
    connection = required("duckdb").connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def _with_nan(events: pl.DataFrame) -> pl.DataFrame:
    """The labels' nulls written as NaN, as pandas writes a missing float."""
    return events.with_columns(pl.col("human_score").fill_null(float("nan")))


def _excluded(result: Any) -> dict[str, int]:
    return {e.reason: e.rows for e in result.exclusions if e.table == "events"}


def test_nan_labels_are_missing_labels_on_polars(export):
    events = _with_nan(export.events)
    assert events["human_score"].is_nan().sum() > 0.5 * events.height
    with_nulls = abkit.analyze(export.assignments, CONFIG, events=export.events)
    with_nans = abkit.analyze(export.assignments, CONFIG, events=events)
    assert _excluded(with_nans) == {} == _excluded(with_nulls)
    assert with_nans.rows["events"].used == events.height
    assert_same_numbers(with_nulls.to_dict(), with_nans.to_dict(), rel=0.0)
    quality = with_nans.results[0]
    assert quality.judged is not None and quality.judged.control.unlabelled > 0


def test_nan_labels_on_duckdb_give_the_polars_numbers(export, duckdb_connection):
    reference = abkit.analyze(export.assignments, CONFIG, events=export.events)
    on_duckdb = abkit.analyze(
        to_duckdb(export.assignments, duckdb_connection),
        CONFIG,
        events=to_duckdb(_with_nan(export.events), duckdb_connection),
    )
    assert _excluded(on_duckdb) == {}
    assert_same_numbers(reference.to_dict(), on_duckdb.to_dict())


def test_labels_from_numpy_arrays_give_the_numbers_of_the_same_export_with_nulls(export, tmp_path):
    """Columns handed over as numpy arrays (np.nan for a missing label, as numpy and
    pandas code holds them: ``df["human_score"].to_numpy()``) keep their NaN, in the
    frame and in a Parquet file written from it."""
    labels = export.events["human_score"].to_numpy()  # a float array: NaN where null
    events = export.events.with_columns(pl.Series("human_score", labels))
    path = tmp_path / "events.parquet"
    events.write_parquet(path)
    assert pl.read_parquet(path)["human_score"].is_nan().sum() > 0.5 * events.height
    reference = abkit.analyze(export.assignments, CONFIG, events=export.events)
    from_file = abkit.analyze(export.assignments, CONFIG, events=path, title="A/B result")
    assert _excluded(from_file) == {}
    assert_same_numbers(reference.to_dict(), from_file.to_dict())


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_required_columns_still_exclude_and_an_infinite_label_too(export, engine, request):
    """A NaN judge score (the required column) and an infinite label are not summable:
    their events are excluded and counted; the NaN labels around them are not."""
    judged = export.events.filter(pl.col("event") == "judge_score")
    bad = pl.concat(
        [
            judged.head(3).with_columns(value=pl.lit(float("nan"))),
            judged.slice(3, 2).with_columns(human_score=pl.lit(float("inf"))),
        ]
    )
    events = _with_nan(pl.concat([export.events, bad]))
    assignments = export.assignments
    if engine == "duckdb":
        connection = request.getfixturevalue("duckdb_connection")
        assignments, events = (to_duckdb(f, connection) for f in (assignments, events))
    result = abkit.analyze(assignments, CONFIG, events=events)
    assert _excluded(result) == {
        value_out_of_range("value"): 3,
        value_out_of_range("human_score", optional=True): 2,
    }
    reference = abkit.analyze(export.assignments, CONFIG, events=export.events)
    assert_same_numbers(reference.to_dict()["results"], result.to_dict()["results"])


def test_a_nan_in_a_column_no_metric_declares_optional_is_excluded(export):
    """Without judged_quality, a NaN label read by event_mean alone is a bad value."""
    events = _with_nan(export.events)
    nans = int(events["human_score"].is_nan().sum())
    result = abkit.analyze(export.assignments, {"metrics": [LABEL_MEAN]}, events=events)
    assert _excluded(result) == {value_out_of_range("human_score"): nans}
