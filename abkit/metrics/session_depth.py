"""Session depth: AI interactions per session, a ratio of the output events that carry a
session id to the unit's distinct sessions; its per-session histogram shows the shape
(a bimodal "power-user problem")."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.base import MetricType
from abkit.metrics.ratio import Ratio
from abkit.metrics.references import IN_SESSION, SESSIONS

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class SessionDepth(Ratio):
    name: ClassVar[str] = "session_depth"
    required_keys: ClassVar[tuple[str, ...]] = ()

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        return (IN_SESSION + self.session_histogram_event(metric, output_event), SESSIONS)

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        # built from events only (sessions), unlike a ratio of two table columns
        return MetricType.unit_table_columns(self, metric)

    def session_histogram_event(self, metric: MetricSpec, output_event: str) -> str:
        return metric.event or output_event
