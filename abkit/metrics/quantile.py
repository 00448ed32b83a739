"""Quantile: the q-quantile of event values (p95 latency, median output tokens), the
difference between arms tested with a variance clustered by unit
(:mod:`abkit.stats.quantile`; Deng, Knoblich & Lu 2018).

Configured as ``{ type = "quantile", column = "ai_output.latency_ms", q = 0.95 }``: the
values of one column of the named event, every event one observation, each unit a
cluster of its events.  Per unit the units stage keeps the number of values (so a
unit without any still counts as assigned); the events' values themselves are
collected per arm for the quantile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import narwhals as nw

from abkit.metrics.base import MetricType, Statistic, check_event_column, value_column
from abkit.metrics.references import WITH_VALUE, unit_aggregate

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class Quantile(MetricType):
    name: ClassVar[str] = "quantile"
    required_keys: ClassVar[tuple[str, ...]] = ("column", "q")
    statistic: ClassVar[Statistic] = Statistic.EVENT_VALUES

    def check(self, where: str, metric: MetricSpec) -> None:
        super().check(where, metric)
        check_event_column(where, metric, "a quantile of event values")

    def value_reference(self, metric: MetricSpec) -> str:
        """The event column whose values the quantile is taken over."""
        assert metric.column is not None
        return metric.column

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.column is not None
        return (metric.column,)

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Per unit: how many values it contributes (its cluster size)."""
        counted = unit_aggregate(WITH_VALUE + self.value_reference(metric))
        return [counted.alias(value_column(metric))]
