"""Sample size and power for two-arm comparisons.

The effect δ is compared with the standard deviation σ of one randomisation unit's
contribution (a user's value in B2C; in B2B an account's linearised contribution
(X_g − R·Y_g)/Ȳ to the ratio of sums, or its value r_g when accounts are weighted
equally).  With k units per arm the two-sample t-test has noncentrality
δ/(σ√(2/k)) on 2k − 2 degrees of freedom; ``units_needed`` is the smallest k whose
power reaches the target.  Computed with statsmodels' exact noncentral-t power
(``TTestIndPower``), which matters at the 5-60 accounts of B2B experiments.
"""

from __future__ import annotations

import math

import numpy as np
from statsmodels.stats.power import TTestIndPower


def power_at(units_per_arm: float, effect: float, sd: float, alpha: float = 0.05) -> float:
    """Two-sided power of the two-sample t-test with ``units_per_arm`` in each arm."""
    if units_per_arm < 2 or sd <= 0:
        return math.nan
    return float(
        TTestIndPower().power(
            effect_size=abs(effect) / sd,
            nobs1=units_per_arm,
            alpha=alpha,
            ratio=1.0,
            alternative="two-sided",
        )
    )


def units_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Smallest whole number of units per arm that reaches ``power``."""
    if effect == 0 or sd <= 0:
        raise ValueError("the effect must be non-zero and the standard deviation positive")
    k = TTestIndPower().solve_power(
        effect_size=abs(effect) / sd, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    k = max(2, math.ceil(float(np.squeeze(k)) - 1e-9))
    while power_at(k, effect, sd, alpha) < power:  # guard against solver tolerance
        k += 1
    return k


def detectable_effect(
    units_per_arm: int, sd: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest |δ| detected with ``power`` at ``units_per_arm`` per arm."""
    es = TTestIndPower().solve_power(
        nobs1=units_per_arm, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    return float(np.squeeze(es)) * sd
