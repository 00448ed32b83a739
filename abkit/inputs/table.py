"""Unit-level exports: one row per unit with precomputed metric columns."""

from __future__ import annotations

import polars as pl

from abkit.config import MetricSpec
from abkit.errors import AbkitInputError
from abkit.io.assignments import Assignments
from abkit.io.readers import Table
from abkit.metrics.base import Statistic, denominator_column, value_column
from abkit.names import UNIT
from abkit.stats.arm import LARGEST_VALUE

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def metric_columns(metric: MetricSpec) -> tuple[str, ...]:
    """The input columns a metric reads from a unit-level table."""
    return metric.kind.unit_table_columns(metric)


def numeric(frame: pl.DataFrame | pl.LazyFrame, column: str, table: Table, who: str) -> pl.Expr:
    """``column`` as Float64: numbers and booleans as they are, text holding numbers or
    true/false words converted; anything else is refused, naming ``who`` reads it.
    Text columns are read once here, to check them."""
    dtype = frame.lazy().collect_schema()[column]
    if dtype == pl.Boolean or dtype.is_numeric():
        return pl.col(column).cast(pl.Float64)
    if dtype == pl.String:
        lowered = pl.col(column).str.strip_chars().str.to_lowercase()
        values = frame.lazy().select(lowered.drop_nulls().unique()).collect().to_series()
        if set(values.to_list()) <= set(_TRUE + _FALSE):
            return pl.when(lowered.is_in(_TRUE)).then(1.0).when(lowered.is_in(_FALSE)).then(0.0)
        casted = pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
        bad = (
            frame.lazy()
            .with_row_index("_r")
            .filter(casted.is_null() & pl.col(column).is_not_null())
            .head(1)
            .collect()
        )
        if bad.height:
            row = bad.row(0, named=True)
            raise AbkitInputError(
                f"{who} needs numbers, but the column holds text such as "
                f"{row[column]!r} (first at data row {row['_r'] + 1}).",
                source=table.label,
                column=column,
            )
        return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
    raise AbkitInputError(
        f"{who} needs a numeric column, found type {dtype}.",
        source=table.label,
        column=column,
    )


def _not_binary(units: pl.DataFrame, column: str, converted: pl.Expr) -> bool:
    """Whether a value of ``column`` (``converted``: as numbers) is neither 0 nor 1; an
    integer column is read as it is (its 0 and 1 are those of its floats), a boolean one
    holds nothing else."""
    dtype = units.schema[column]
    if dtype == pl.Boolean:
        return False
    values = pl.col(column) if dtype.is_integer() else converted
    binary = [0, 1] if dtype.is_integer() else [0.0, 1.0]
    return bool(units.select((~values.is_in(binary)).any()).item())  # nulls skipped


def table_units(
    assignments: Assignments, table: Table, metrics: tuple[MetricSpec, ...]
) -> tuple[pl.DataFrame, list[str]]:
    """Add the ``m:`` metric columns to the validated units; return notes on nulls."""
    units = assignments.units
    exprs: list[pl.Expr] = []
    notes: list[str] = []
    for metric in (m for m in metrics if m.kind.statistic is not Statistic.ACCOUNT_REVENUE):
        cols = metric_columns(metric)
        converted = [numeric(units, c, table, f"metric '{metric.name}'") for c in cols]
        if metric.kind.is_rate and _not_binary(units, cols[0], converted[0]):
            vals = units.select(converted[0].alias("v")).filter(
                pl.col("v").is_not_null() & ~pl.col("v").is_in([0.0, 1.0])
            )
            raise AbkitInputError(
                f"metric '{metric.name}' is a proportion, so the column must hold 0/1 or "
                f"true/false; found {vals.item(0, 'v')!r}.",
                source=table.label,
                column=cols[0],
                hint='Use type = "mean" for a numeric metric.',
            )
        exprs.append(converted[0].alias(value_column(metric)))
        if len(converted) == 2:
            exprs.append(converted[1].alias(denominator_column(metric)))
    units = units.with_columns(exprs)
    _check_finite(units, metrics, table)
    for metric in metrics:
        for col in metric_columns(metric):
            nulls = units.get_column(col).null_count()
            if nulls:
                notes.append(
                    f"{nulls} unit(s) have no value in column '{col}' and are left out of "
                    f"metric '{metric.name}'."
                )
    return units, notes


def _check_finite(units: pl.DataFrame, metrics: tuple[MetricSpec, ...], table: Table) -> None:
    """Refuse a metric value that is not finite or whose square overflows, naming the
    first such unit of the first such metric column; every column is checked in one
    pass, and the unit is looked for only when there is one."""
    tested = [m for m in metrics if m.kind.statistic is not Statistic.ACCOUNT_REVENUE]
    columns = [
        c for m in tested for c in (value_column(m), denominator_column(m)) if c in units.columns
    ]
    if not columns:
        return
    # min and max skip NaN (and nulls), so NaN is looked for on its own
    ranges = units.select(
        e
        for i, c in enumerate(columns)
        for e in (
            pl.col(c).min().alias(f"{i}min"),
            pl.col(c).max().alias(f"{i}max"),
            pl.col(c).is_nan().any().alias(f"{i}nan"),
        )
    ).row(0)
    lows, highs, nans = ranges[0::3], ranges[1::3], ranges[2::3]
    if not any(
        (low is not None and low < -LARGEST_VALUE)
        or (high is not None and high > LARGEST_VALUE)
        or nan
        for low, high, nan in zip(lows, highs, nans, strict=True)
    ):
        return
    for metric in tested:
        for col in (value_column(metric), denominator_column(metric)):
            if col not in units.columns:
                continue
            value = pl.col(col)
            bad = units.filter(
                value.is_not_null() & (~value.is_finite() | (value.abs() > LARGEST_VALUE))
            )
            if bad.height:
                source = metric_columns(metric)[0 if col == value_column(metric) else 1]
                raise AbkitInputError(
                    f"unit {bad.item(0, UNIT)!r} has {bad.item(0, col)!r}, which is not finite or "
                    f"beyond ±{LARGEST_VALUE:.0e} (its square overflows double precision).",
                    source=table.label,
                    column=source,
                    hint="Fix the value, or rescale the column (for example to thousands).",
                )
