"""Per-segment arm summaries: the units split by a column fixed at assignment."""

from __future__ import annotations

import polars as pl

from abkit.config import MetricSpec
from abkit.errors import AbkitInputError
from abkit.io.readers import Table
from abkit.stats.arm import ArmSummary
from abkit.units.moments import arm_summaries

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


def segment_arms(
    units: pl.DataFrame,
    column: str,
    metrics: tuple[MetricSpec, ...],
    variants: tuple[str, ...],
    max_values: int,
    label: str,
) -> dict[str, dict[str, dict[str, ArmSummary]]]:
    """Segment value → metric → variant → arm summary, values in sorted order (the
    units with a null value form a segment of their own, last)."""
    values = units.get_column(column).unique()
    if values.len() > max_values:
        raise AbkitInputError(
            f"segment '{column}' has {values.len():,} distinct values, more than "
            f"{max_values}: an id or a continuous number, not a segment.",
            source=label,
            column=column,
            hint="Bin it first (e.g. a tenure band), or raise [segments] max_values.",
        )
    out = {}
    for value in values.drop_nulls().sort().to_list():
        subset = units.filter(pl.col(column) == value)
        out[str(value)] = arm_summaries(subset, metrics, variants)
    if values.null_count():
        out[MISSING] = arm_summaries(units.filter(pl.col(column).is_null()), metrics, variants)
    return out
