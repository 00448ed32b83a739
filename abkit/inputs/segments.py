"""Per-segment arm summaries: the units split by a column fixed at assignment."""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.backend import collect_all, distinct
from abkit.errors import AbkitInputError
from abkit.inputs.quantiles import arm_quantiles
from abkit.io.readers import Table
from abkit.stats.quantile import QuantileEstimate

MISSING = "(missing)"  # the segment of units whose column is null


def require_segments(
    table: Table,
    columns: tuple[str, ...],
    role: str,
    ids: dict[str, str],
    events: Table | None = None,
) -> None:
    """Refuse a segment column that is an id (``ids``: column → role) or that ``table``
    (the ``role`` it plays) lacks; when the events carry it, say why that cannot be a
    segment."""
    for column in columns:
        if column in ids:
            raise AbkitInputError(
                f"segment '{column}' is the {ids[column]} column, not a unit attribute.",
                source=table.label,
                column=column,
            )
        if column in table.columns:
            continue
        in_events = events is not None and column in events.columns
        raise AbkitInputError(
            f"segment '{column}' is not a column of the {role}"
            + (
                " but of the events: a segment must be fixed at assignment, and one defined "
                "by what users did afterwards is not randomised (its arms differ by the "
                "treatment itself)."
                if in_events
                else f" (columns: {', '.join(table.columns)})."
            ),
            source=table.label,
            column=column,
            hint="Segment by unit attributes known when the unit was assigned: country, "
            "platform, plan, signup cohort.",
        )


def segment_values(
    units: pl.DataFrame | nw.LazyFrame[Any], column: str, max_values: int, label: str
) -> list[Any]:
    """The column's values, sorted, None (the missing segment) last; too many refused.
    ``units`` may stay on its engine: the distinct values are counted there, and only
    they come back."""
    lazy = nw.from_native(units.lazy()) if isinstance(units, pl.DataFrame) else units
    (count,) = collect_all([lazy.select(nw.col(column).n_unique().alias("n"))])
    distinct_values = int(count.item())
    if distinct_values > max_values:
        raise AbkitInputError(
            f"segment '{column}' has {distinct_values:,} distinct values, more than "
            f"{max_values}: an id or a continuous number, not a segment.",
            source=label,
            column=column,
            hint="Bin it first (e.g. a tenure band), or raise [segments] max_values.",
        )
    (found,) = collect_all([distinct(lazy.select(column))])
    values = found.get_column(column)
    return [*values.drop_nulls().sort().to_list(), *([None] * bool(values.null_count()))]


def _of(column: str, value: str | None) -> pl.Expr:
    return pl.col(column).is_null() if value is None else pl.col(column) == value


def segment_name(value: object) -> str:
    """The name a segment value is shown by (:data:`MISSING` for None)."""
    return MISSING if value is None else str(value)


def segment_quantiles(
    metric: MetricSpec,
    values: pl.DataFrame,
    units: pl.DataFrame,
    column: str,
    variants: tuple[str, ...],
    max_values: int,
    label: str,
) -> dict[str, dict[str, QuantileEstimate]]:
    """A quantile metric by segment: value → variant → the arm's q-quantile over the
    events of the segment's units, clustered by unit (``values``: UNIT, VALUE)."""
    assert metric.q is not None
    return {
        segment_name(value): arm_quantiles(
            metric, values, units.filter(_of(column, value)), variants, (metric.q,)
        )[0][metric.q]
        for value in segment_values(units, column, max_values, label)
    }
