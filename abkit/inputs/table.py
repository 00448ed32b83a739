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
        if metric.kind.is_rate:
            vals = units.select(converted[0].alias("v")).filter(
                pl.col("v").is_not_null() & ~pl.col("v").is_in([0.0, 1.0])
            )
            if vals.height:
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
    for metric in (m for m in metrics if m.kind.statistic is not Statistic.ACCOUNT_REVENUE):
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
    for metric in metrics:
        for col in metric_columns(metric):
            nulls = units.get_column(col).null_count()
            if nulls:
                notes.append(
                    f"{nulls} unit(s) have no value in column '{col}' and are left out of "
                    f"metric '{metric.name}'."
                )
    return units, notes
