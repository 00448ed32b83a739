"""Quantile: the q-quantile of event values (p95 latency, median output tokens), the
difference between arms tested with a variance clustered by unit
(:mod:`abkit.stats.quantile`; Deng, Knoblich & Lu 2018).

Configured as ``{ type = "quantile", column = "ai_output.value", q = 0.95 }``: the
values of the named event's value column, every event one observation, each unit a
cluster of its events.  Per unit the units stage keeps the number of values (so a
unit without any still counts as assigned); the events' values themselves are
collected per arm for the quantile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import narwhals as nw

from abkit.errors import ConfigError
from abkit.metrics.base import MetricType
from abkit.units.columns import value_column
from abkit.units.references import EVENT, VALUE, VALUE_SUFFIX, count_where

if TYPE_CHECKING:
    from abkit.config import MetricSpec


class Quantile(MetricType):
    name: ClassVar[str] = "quantile"
    required_keys: ClassVar[tuple[str, ...]] = ("column", "q")
    per_event: ClassVar[bool] = True

    def check(self, where: str, metric: MetricSpec) -> None:
        super().check(where, metric)
        assert metric.column is not None
        if not metric.column.endswith(VALUE_SUFFIX) or metric.column == VALUE_SUFFIX:
            raise ConfigError(
                f"{where} is a quantile of event values: give column = '<event>.value' "
                f"(e.g. 'ai_output.value'), got '{metric.column}'."
            )

    def value_event(self, metric: MetricSpec) -> str:
        """The event whose values the quantile is taken over."""
        assert metric.column is not None
        return metric.column.removesuffix(VALUE_SUFFIX)

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.column is not None
        return (metric.column,)

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Per unit: how many values it contributes (its cluster size)."""
        has_value = (nw.col(EVENT) == self.value_event(metric)) & ~nw.col(VALUE).is_null()
        return [count_where(has_value).alias(value_column(metric))]
