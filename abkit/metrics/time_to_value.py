"""Time to value (B2B): days from an account's first assignment to its first value event,
censored at the export end; compared by account-level survival (see abkit.designs.account_tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import narwhals as nw

from abkit.metrics.base import MetricType, Statistic, ValueExpr, value_column
from abkit.metrics.references import EVENT, TS
from abkit.options import Direction

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class TimeToValue(MetricType):
    name: ClassVar[str] = "time_to_value"
    required_keys: ClassVar[tuple[str, ...]] = ("event",)
    default_direction: ClassVar[Direction] = "decrease"
    statistic: ClassVar[Statistic] = Statistic.EVENT_TIMES
    zero_when_inactive: ClassVar[bool] = False  # never reached: null, censored later

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        reached = nw.when(nw.col(EVENT) == metric.event).then(nw.col(TS))
        return [reached.min().alias(value_column(metric))]

    def referenced_events(self, metric: MetricSpec, output_event: str) -> set[str]:
        return {metric.event} if metric.event else set()

    def arm_value(self, column: ValueExpr) -> ValueExpr:
        """Per unit: whether it reached value (the arm's share is reported beside the
        survival comparison)."""
        return ~column.is_null()
