"""Base of the 0/1-per-unit types (retention, proportion, adoption): the share of units
with the outcome, compared by the two-proportion z-test."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from abkit.errors import AbkitInputError
from abkit.metrics.base import MetricType, bernoulli_variance, number
from abkit.stats import ArmSummary, Comparison, two_proportion_ztest

# below this many successes (or failures) in an arm the z-test's normal approximation is
# doubtful (the usual np ≥ 10 rule)
MIN_EXPECTED_EVENTS = 10


class Rate(MetricType):
    is_rate: ClassVar[bool] = True

    def fixed_test(self, control: ArmSummary, treatment: ArmSummary, alpha: float) -> Comparison:
        return two_proportion_ztest(control, treatment, alpha)

    def summary_arm(self, row: Mapping[str, object], label: str) -> ArmSummary:
        """Var = p(1 − p)·n/(n − 1) from the pooled share p: a 0/1 outcome's variance."""
        n = number(row["n"])
        if row.get("mean") is not None:
            mean = number(row["mean"])
        elif row.get("sum") is not None:
            mean = number(row["sum"]) / n if n else math.nan
        else:
            raise AbkitInputError("a row has neither 'mean' nor 'sum'.", source=label)
        return ArmSummary(n=int(n), mean=mean, var=bernoulli_variance(mean, n))

    def assumption_warnings(self, arms: Mapping[str, ArmSummary]) -> list[str]:
        out = []
        for variant, arm in arms.items():
            if arm.n:
                events = min(arm.mean * arm.n, (1 - arm.mean) * arm.n)
                if events < MIN_EXPECTED_EVENTS:
                    out.append(
                        f"'{variant}' has only {events:.0f} successes or failures; the "
                        "z-test's normal approximation is doubtful"
                    )
        return out
