"""Names of the per-unit metric columns that the units stage produces.

A metric ``m`` is carried in the unit frame as ``m:<name>`` (its per-unit value,
or the numerator of a ratio) and ``m:<name>:den`` (the denominator of a ratio).
``pre:<column>`` is a column's value over the unit's events before its assignment
(the CUPED pre-period covariates).  A null value means the unit is not eligible for
that metric (for example an immature retention window).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from abkit.config import MetricSpec


def value_column(metric: MetricSpec) -> str:
    return f"m:{metric.name}"


def denominator_column(metric: MetricSpec) -> str:
    return f"m:{metric.name}:den"


def pre_period_column(column: str) -> str:
    return f"pre:{column}"


def component_columns(metric: MetricSpec) -> list[str]:
    """The per-unit columns a metric is made of: its value, and a ratio's denominator."""
    return [value_column(metric), *([denominator_column(metric)] * metric.kind.is_ratio)]
