"""Assignment validation: a table whose every row is valid is told apart without per-row
reasons, and gives the same units as the full route, which runs when a row is excluded."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from abkit.config import parse_config
from abkit.engine.events import derive_assignments
from abkit.io.assignments import TWO_VARIANTS, clean_assignments
from abkit.io.exclusions import Ledger
from abkit.io.readers import BLANK_LINE, Table

START = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)


def _table(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(rows)],
            "variant": ["control", "treatment"] * (rows // 2),
            "assigned_at": [START + dt.timedelta(hours=i) for i in range(rows)],
            "spend": [float(i) for i in range(rows)],
        }
    )


def _clean(
    frame: pl.DataFrame, repeated_rows: str = "keep_earliest"
) -> tuple[pl.DataFrame, Ledger, pl.DataFrame]:
    spec = parse_config({"experiment": {"unit": "user_id", "variant": "variant"}})
    ledger = Ledger()
    found = clean_assignments(
        Table.of(frame.lazy(), "assignments.csv"),
        spec,
        ledger,
        table_name="assignments",
        assigned_at="assigned_at",
        keep=tuple(c for c in ("spend",) if c in frame.columns),
        repeated_rows=repeated_rows,
    )
    return found.units, ledger, found.excluded_units


def test_every_row_valid_gives_the_columns_as_read_and_nothing_else() -> None:
    units, ledger, excluded = _clean(_table(6))
    assert units.columns == ["_unit", "_variant", "_assigned_at", "spend"]
    assert units["_unit"].to_list() == [f"u{i}" for i in range(6)]
    assert units["spend"].to_list() == [float(i) for i in range(6)]
    assert ledger.counts()["assignments"].used == 6
    assert ledger.exclusions == [] and excluded.is_empty()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user_id": None, "variant": None, "assigned_at": None, "spend": None}, BLANK_LINE),
        ({"user_id": None}, "null unit id"),
        ({"variant": None}, "null variant"),
        ({"assigned_at": None}, "missing assignment timestamp"),
        (
            {"user_id": "u0", "variant": "control"},
            "repeated assignment row for the same unit (earliest kept)",
        ),
    ],
)
def test_one_excluded_row_leaves_the_other_units_as_the_valid_table_gives_them(
    change: dict[str, object], reason: str
) -> None:
    valid = _table(6)
    spoilt = valid.with_row_index("i").with_columns(
        **{
            column: pl.when(pl.col("i") == 3).then(pl.lit(value)).otherwise(pl.col(column))
            for column, value in change.items()
        }
    )
    units, ledger, _ = _clean(spoilt.drop("i"))
    expected, _, _ = _clean(valid.filter(pl.int_range(pl.len()) != 3))
    assert units.equals(expected)
    assert {e.reason: e.rows for e in ledger.exclusions} == {reason: 1}
    counts = ledger.counts()["assignments"]
    assert (counts.read, counts.used) == (6, 5)


def test_row_units_count_the_blank_line_in_their_numbers() -> None:
    frame = pl.DataFrame(
        {"variant": ["control", "treatment", None, "control"], "spend": [1.0, 2.0, None, 4.0]}
    )
    spec = parse_config({"experiment": {"unit": "@row", "variant": "variant"}})
    ledger = Ledger()
    found = clean_assignments(
        Table.of(frame.lazy(), "units.csv"), spec, ledger, table_name="units", keep=("spend",)
    )
    assert found.units["_unit"].to_list() == [0, 1, 3]
    assert found.units["spend"].to_list() == [1.0, 2.0, 4.0]
    assert {e.reason: e.rows for e in ledger.exclusions} == {BLANK_LINE: 1}


@pytest.mark.parametrize(
    ("variant", "repeated_rows", "reason"),
    [
        ("treatment", "keep_earliest", TWO_VARIANTS),
        ("control", "exclude", "unit appears in more than one row (all its rows excluded)"),
    ],
)
def test_a_unit_excluded_as_a_whole_is_named_and_its_rows_counted(
    variant: str, repeated_rows: str, reason: str
) -> None:
    frame = pl.concat(
        [_table(4), pl.DataFrame({"user_id": ["u0"], "variant": [variant]})], how="diagonal"
    ).with_columns(pl.col("assigned_at").fill_null(START))
    units, ledger, excluded = _clean(frame, repeated_rows)
    assert units["_unit"].to_list() == ["u1", "u2", "u3"]
    assert excluded["_unit"].to_list() == ["u0"]
    assert {e.reason: e.rows for e in ledger.exclusions} == {reason: 2}


@pytest.mark.parametrize("repeat", [False, True])
def test_assignments_derived_from_the_events_are_computed_once(repeat: bool) -> None:
    """Assignments derived from the events are a query over them: telling the excluded
    rows apart, which reads the table again, must not run that query a second time."""
    runs = []

    def counted(times: pl.Series) -> pl.Series:
        runs.append(times.len())
        return times

    events = _table(6).rename({"assigned_at": "timestamp"}).with_columns(event=pl.lit("open"))
    if repeat:  # u0 again, in the other arm: both its rows are excluded
        events = events.with_columns(user_id=pl.col("user_id").replace("u1", "u0"))
    query = events.lazy().with_columns(pl.col("timestamp").map_batches(counted))
    spec = parse_config({"experiment": {"unit": "user_id", "variant": "variant"}})
    derived = derive_assignments(Table.of(query, "events.csv"), spec, account_required=False)
    found = clean_assignments(
        derived, spec, Ledger(), table_name="assignments", assigned_at="assigned_at"
    )
    assert found.units.height == (4 if repeat else 6)
    # the whole table once (besides any look at its first rows, for the time format)
    assert runs.count(events.height) == 1, runs
