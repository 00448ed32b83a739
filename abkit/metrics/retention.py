"""Retention: active on day N (or in a window of days) after assignment.

Per unit: 1 when the unit has an event (of the listed ``events``, if given) on a day
d ∈ [a, b] after assignment, day d being [assigned_at + d·24 h, assigned_at + (d+1)·24 h);
null (not eligible) until assigned_at + (b + 1)·24 h ≤ export end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import narwhals as nw

from abkit.errors import ConfigError
from abkit.metrics.base import value_column
from abkit.metrics.rate import Rate
from abkit.metrics.references import DAY, EVENT, any_where, distinct_where

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class Retention(Rate):
    name: ClassVar[str] = "retention"

    def check(self, where: str, metric: MetricSpec) -> None:
        check_day_window(where, metric, "a retention metric")

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        first, last = metric.retention_window
        active = nw.col(DAY).is_between(first, last)
        if metric.events:
            active &= nw.col(EVENT).is_in(list(metric.events))
        return [any_where(active).alias(value_column(metric))]

    def window_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Days with activity in the window: a day window after assignment has no
        counterpart before assignment or within a period, the habit of returning does."""
        return [active_days(metric).alias(value_column(metric))]

    def pre_period_labels(self, metric: MetricSpec, days: int) -> list[str]:
        return [f"{metric.name}: active days in the {days} d before"]

    def maturity_day(self, metric: MetricSpec) -> int | None:
        return metric.retention_window[1]


def check_day_window(where: str, metric: MetricSpec, what: str) -> None:
    """Exactly one of ``day = N`` or ``window = [a, b]`` with 0 <= a <= b."""
    if (metric.day is None) == (metric.window is None):
        raise ConfigError(
            f"{where} is {what}: give exactly one of 'day = N' or 'window = [first_day, last_day]'."
        )
    if metric.window is not None and not 0 <= metric.window[0] <= metric.window[1]:
        raise ConfigError(
            f"key '{where}.window' must be two whole days [a, b] with 0 <= a <= b, "
            f"got {list(metric.window)!r}."
        )
    if metric.day is not None and metric.day < 0:
        raise ConfigError(f"key '{where}.day' must be 0 or more, got {metric.day}.")


def active_days(metric: MetricSpec, within: nw.Expr | None = None) -> nw.Expr:
    """Distinct days with an event (of the metric's ``events``, if listed), on rows
    where ``within`` holds."""
    active = nw.col(EVENT).is_in(list(metric.events)) if metric.events else None
    if within is not None:
        active = within if active is None else within & active
    return distinct_where(DAY, active)
