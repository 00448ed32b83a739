"""Assignment validation: a table whose every row is valid is told apart without per-row
reasons, and gives the same units as the full route, which runs when a row is excluded."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from abkit.config import parse_config
from abkit.io.assignments import clean_assignments
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


def _clean(frame: pl.DataFrame) -> tuple[pl.DataFrame, Ledger, pl.DataFrame]:
    spec = parse_config({"experiment": {"unit": "user_id", "variant": "variant"}})
    ledger = Ledger()
    found = clean_assignments(
        Table.of(frame.lazy(), "assignments.csv"),
        spec,
        ledger,
        table_name="assignments",
        assigned_at="assigned_at",
        keep=("spend",),
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
