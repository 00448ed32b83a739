"""Health bands: product-practice bars beside the retention estimates.

A bar such as "D7 retention under 20 % is below the usual bar for AI consumer
products" says how an arm compares with common practice; it is not a test and never
enters a decision.  Each retention metric with ``day = N`` gets the bar of
``[health] bars`` for dN, if any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abkit.config import HealthSpec, MetricSpec
from abkit.metrics.retention import Retention


@dataclass(frozen=True)
class HealthBand:
    """An arm's retention against a bar: ``below`` is True for each arm under it."""

    day: int
    bar: float
    control_value: float
    treatment_value: float

    @property
    def control_below(self) -> bool:
        return self.control_value < self.bar

    @property
    def treatment_below(self) -> bool:
        return self.treatment_value < self.bar


def health_band(
    metric: MetricSpec, settings: HealthSpec, control_value: float, treatment_value: float
) -> HealthBand | None:
    """The band of a day-N retention metric, or None (no bar for its day, another type,
    or a window or event-restricted retention that the bars do not describe)."""
    if not isinstance(metric.kind, Retention) or metric.day is None or metric.events:
        return None
    bar = settings.retention_bars.get(metric.day)
    if bar is None or not (math.isfinite(control_value) or math.isfinite(treatment_value)):
        return None  # no bar for the day, or no arm with a value to hold against it
    return HealthBand(metric.day, bar, control_value, treatment_value)
