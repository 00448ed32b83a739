"""Adoption: the share of users who used the AI feature (B2B: by account, and of seats).

Per unit: 1 when the unit has the feature's event (``event``, default the output event),
with how many such events and on how many days, for the adopter breakdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import narwhals as nw

from abkit.metrics.base import value_column
from abkit.metrics.rate import Rate
from abkit.metrics.references import DAY, EVENT, any_where, count_where, distinct_where

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class Adoption(Rate):
    name: ClassVar[str] = "adoption"
    adoption_breakdown: ClassVar[bool] = True

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        return (metric.event or output_event,)

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        val = value_column(metric)
        used = nw.col(EVENT) == (metric.event or output_event)
        return [
            any_where(used).alias(val),
            count_where(used).alias(f"{val}:events"),
            distinct_where(DAY, used).alias(f"{val}:days"),
        ]
