"""Proportion: the share of units with the outcome (a 0/1 column, or did the event at all)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.rate import Rate

if TYPE_CHECKING:
    from abkit.config import MetricSpec


class Proportion(Rate):
    name: ClassVar[str] = "proportion"
    required_keys: ClassVar[tuple[str, ...]] = ("column",)

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.column is not None
        return (metric.column,)

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return self.references(metric, "")
