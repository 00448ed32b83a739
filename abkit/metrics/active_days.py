"""Active days: the days with any event (or one of ``events``) in a window of days
after assignment, per unit — the per-user form of DAU (mean active days over the
window's length is the average daily-active share of the cohort).

Per unit: the number of days d ∈ [a, b] after assignment with an event, day d being
[assigned_at + d·24 h, assigned_at + (d+1)·24 h); null (not eligible) until
assigned_at + (b + 1)·24 h ≤ export end, like retention, so that every unit counted
had the whole window.  Compared by Welch's t-test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import narwhals as nw

from abkit.metrics.base import MetricType, value_column
from abkit.metrics.mean import Mean
from abkit.metrics.references import DAY
from abkit.metrics.retention import active_days, check_day_window

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class ActiveDays(Mean):
    name: ClassVar[str] = "active_days"
    required_keys: ClassVar[tuple[str, ...]] = ()

    def check(self, where: str, metric: MetricSpec) -> None:
        check_day_window(where, metric, "an active-days metric")

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        first, last = metric.retention_window
        within = nw.col(DAY).is_between(first, last)
        return [active_days(metric, within).alias(value_column(metric))]

    def window_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Active days in any window (the pre-period, a novelty period), unrestricted."""
        return [active_days(metric).alias(value_column(metric))]

    def pre_period_labels(self, metric: MetricSpec, days: int) -> list[str]:
        return [f"{metric.name}: active days in the {days} d before"]

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        return ()  # days are counted from any event: no session or value column needed

    def referenced_events(self, metric: MetricSpec, output_event: str) -> set[str]:
        return set(metric.events or ())

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return MetricType.unit_table_columns(self, metric)

    def maturity_day(self, metric: MetricSpec) -> int | None:
        return metric.retention_window[1]
