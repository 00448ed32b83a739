"""Which fixed-horizon test each metric type uses."""

from __future__ import annotations

from abkit.config import RATE_TYPES, MetricSpec
from abkit.stats import (
    ArmSummary,
    Comparison,
    delta_ratio_test,
    two_proportion_ztest,
    welch_test,
)


def run_test(
    metric: MetricSpec, control: ArmSummary, treatment: ArmSummary, alpha: float
) -> Comparison:
    """Proportions and retention: two-proportion z; means: Welch t; ratios: delta method."""
    if metric.type in RATE_TYPES:
        return two_proportion_ztest(control, treatment, alpha)
    if metric.type == "mean":
        return welch_test(control, treatment, alpha)
    return delta_ratio_test(control, treatment, alpha)
