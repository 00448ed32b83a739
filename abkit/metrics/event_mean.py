"""Event mean: the mean of an event column over the events that carry a value (judge
score per judged output, latency or tokens per output, cost per output), clustered by
unit.

Configured as ``{ type = "event_mean", column = "judge_score.value" }``.  Per unit the
numerator xᵢ is the sum of the column over the unit's events of that name and the
denominator yᵢ the number of those events with a value, so the metric is
Σxᵢ / Σyᵢ: events without a value (outputs nobody judged, a missing latency) are in
neither sum, and a unit's events are one cluster.  The arms are compared as a ratio of
means by the delta method (Deng, Knoblich & Lu 2018), which is the cluster-robust
variance of the per-event mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.base import MetricType, check_event_column
from abkit.metrics.ratio import Ratio
from abkit.metrics.references import WITH_VALUE

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class EventMean(Ratio):
    name: ClassVar[str] = "event_mean"
    required_keys: ClassVar[tuple[str, ...]] = ("column",)

    def check(self, where: str, metric: MetricSpec) -> None:
        super().check(where, metric)
        check_event_column(where, metric, "a mean of event values")

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.column is not None
        return (metric.column, WITH_VALUE + metric.column)

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return MetricType.unit_table_columns(self, metric)
