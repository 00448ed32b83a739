"""Mean: the average per-unit value (a numeric column, an event count or a value sum),
compared by Welch's t-test."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.base import OneColumn, sums_arm
from abkit.stats import ArmSummary, Comparison, welch_test

if TYPE_CHECKING:
    pass

# Kohavi, Deng, Longbotham & Xu, "Seven Rules of Thumb for Web Site Experimenters",
# KDD 2014, rule 7: the sample mean is close enough to normal when n > 355·skewness².
SKEW_RULE = 355.0


class Mean(OneColumn):
    name: ClassVar[str] = "mean"

    def fixed_test(self, control: ArmSummary, treatment: ArmSummary, alpha: float) -> Comparison:
        return welch_test(control, treatment, alpha)

    def summary_arm(self, row: Mapping[str, object], label: str) -> ArmSummary:
        return sums_arm(row, label)

    def assumption_warnings(self, arms: Mapping[str, ArmSummary]) -> list[str]:
        out = []
        for variant, arm in arms.items():
            skew = arm.skewness
            if skew is not None and math.isfinite(skew) and arm.n < SKEW_RULE * skew**2:
                out.append(
                    f"heavy skew in '{variant}' (skewness {skew:.1f}): the normal "
                    f"approximation needs about {SKEW_RULE * skew**2:,.0f} units per arm "
                    f"(355·skewness², Kohavi et al. 2014) and the arm has {arm.n:,}; "
                    "consider capping the tail (cap = { quantile = 0.999 }) or a "
                    "transformed metric"
                )
        return out
