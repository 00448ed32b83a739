"""The numeric event columns that metrics read (``<event>.<column>``): where each comes
from, checked before any query runs.

A column is the events table's column of that name (``value``: the ``[input] value``
column) or, with ``[cost]`` prices, the cost priced from the token columns; it reaches
the annotated events as one slot (:func:`abkit.metrics.references.slot`).  A value that
cannot be summed (NaN, infinite, beyond ±1e20) excludes its event, except a NaN in an
optional column (a human label most outputs lack), which is a missing value: null.
"""

from __future__ import annotations

import functools
import operator

import narwhals as nw

from abkit.config import ExperimentSpec, MetricSpec
from abkit.errors import AbkitInputError
from abkit.io.readers import Table
from abkit.metrics.references import columns_read


def value_out_of_range(column: str, optional: bool = False) -> str:
    """The exclusion reason of an event whose ``column`` cannot be summed (in an
    optional column a NaN is a missing value, not a reason)."""
    if optional:
        return f"event {column} infinite or beyond ±1e20 (not summable)"
    return f"event {column} NaN, infinite or beyond ±1e20 (not summable)"


def optional_columns(metrics: tuple[MetricSpec, ...]) -> set[str]:
    """The event columns where a NaN is a missing value: those some metric declares
    optional (:meth:`abkit.metrics.base.MetricType.optional_columns`).  A column is
    one column of the export, so a NaN in it is missing for every metric that reads
    it (a null value adds nothing to any sum or count of values)."""
    return {c for m in metrics for c in m.kind.optional_columns(m)}


def nan_as_null(value: nw.Expr) -> nw.Expr:
    """``value`` with NaN read as null (on every engine: null stays null)."""
    return nw.when(~value.is_nan()).then(value)


def column_sources(
    events: Table, spec: ExperimentSpec, columns: list[str], metrics: tuple[MetricSpec, ...]
) -> dict[str, nw.Expr]:
    """Per event column the metrics read, the expression that gives it: the column of
    that name (``value``: the ``[input] value`` column), or the cost priced from the
    token columns by ``[cost]``; in a column some metric declares optional
    (:func:`optional_columns`) a NaN is read as null.  A missing or non-numeric column
    is refused, naming the metric that reads it."""
    schema = events.data.collect_schema()
    optional = optional_columns(metrics)
    out = {}
    for column in columns:
        readers = [
            m.name
            for m in metrics
            if any(column in columns_read(r) for r in m.kind.references(m, spec.event_names.output))
        ]
        what = f"numeric event column read by metric '{readers[0]}'"
        priced = spec.cost.priced and column == spec.cost.column
        prices = spec.cost.token_prices(spec.input) if priced else {}
        sources = tuple(prices) if priced else (spec.input.column_for(column),)
        for source in sources:
            events.require(source, what=what)
            if not schema[source].is_numeric():
                raise AbkitInputError(
                    f"the event column '{source}' must be numeric, found type "
                    f"{schema[source]} (it is read by metric '{readers[0]}').",
                    source=events.label,
                    column=source,
                )
        if priced and column in schema:
            raise AbkitInputError(
                f"the events table has a column '{column}' and [cost] prices tokens into a "
                f"column of the same name; set [cost] column to another name, or drop the "
                "prices to read the table's own costs.",
                source=events.label,
                column=column,
            )
        value = _priced(prices) if priced else nw.col(sources[0]).cast(nw.Float64)
        out[column] = nan_as_null(value) if column in optional else value
    return out


def _priced(prices: dict[str, float]) -> nw.Expr:
    """An event's cost: Σ tokens / 1000 · price over the priced token columns."""
    terms = [nw.col(column).cast(nw.Float64) * (price / 1000) for column, price in prices.items()]
    return functools.reduce(operator.add, terms)
