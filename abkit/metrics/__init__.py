"""Metric types: one class per type, one module each, found by name in :data:`REGISTRY`.

To add a type, write its module (a :class:`MetricType` subclass) and add it below.
"""

from __future__ import annotations

from abkit.metrics.active_days import ActiveDays
from abkit.metrics.adoption import Adoption
from abkit.metrics.base import REGISTRY, MetricSpec, MetricType, metric_type
from abkit.metrics.event_mean import EventMean
from abkit.metrics.judged_quality import JudgedQuality
from abkit.metrics.mean import Mean
from abkit.metrics.nrr import NetRevenueRetention
from abkit.metrics.proportion import Proportion
from abkit.metrics.quantile import Quantile
from abkit.metrics.ratio import Ratio
from abkit.metrics.retention import Retention
from abkit.metrics.session_depth import SessionDepth
from abkit.metrics.time_to_value import TimeToValue

REGISTRY.update(
    (t.name, t)
    for t in (
        Retention(),
        Ratio(),
        Proportion(),
        Mean(),
        SessionDepth(),
        TimeToValue(),
        NetRevenueRetention(),
        Adoption(),
        Quantile(),
        ActiveDays(),
        EventMean(),
        JudgedQuality(),
    )
)


__all__ = ["REGISTRY", "MetricSpec", "MetricType", "metric_type"]
