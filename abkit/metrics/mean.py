"""Mean: the average per-unit value (a numeric column, an event count or a value sum),
compared by Welch's t-test."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from abkit.metrics.base import OneColumn, sums_arm
from abkit.stats import ArmSummary, Comparison, welch_test

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
        """One warning naming every arm too small for its skewness (n < 355·skew²)."""
        short = [
            (variant, arm.n, skew)
            for variant, arm in arms.items()
            if (skew := arm.skewness) is not None
            and math.isfinite(skew)
            and arm.n < SKEW_RULE * skew**2
        ]
        if not short:
            return []
        arms_text = "; ".join(
            f"'{variant}' skewness {skew:.1f}, needs about {SKEW_RULE * skew**2:,.0f} units, "
            f"has {n:,}"
            for variant, n, skew in short
        )
        return [
            f"heavy skew ({arms_text}): the normal approximation needs n > 355·skewness² "
            "units per arm (Kohavi et al. 2014); consider capping the tail "
            "(cap = { quantile = 0.999 }) or a transformed metric"
        ]
