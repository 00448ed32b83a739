"""The Wilson interval that the retention plot draws, tested three ways."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from abkit.stats.binomial import wilson_interval
from tests.conftest import mc_reps


def test_equals_statsmodels_on_a_grid():
    n = np.repeat([1, 7, 40, 1_000], 5)
    k = np.round(n * np.tile([0.0, 0.1, 0.5, 0.9, 1.0], 4))
    for alpha in (0.05, 0.1):
        low, high = wilson_interval(k, n, alpha)
        ref_low, ref_high = proportion_confint(k, n, alpha=alpha, method="wilson")
        np.testing.assert_allclose(low, ref_low, atol=1e-12)
        np.testing.assert_allclose(high, ref_high, atol=1e-12)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe, "Two-sided confidence intervals for the single proportion", Statistics
    # in Medicine 17, 1998, Table I, method 3 (score interval without correction)
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_published_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert (round(float(got[0]), 4), round(float(got[1]), 4)) == (low, high)


@pytest.mark.calibration
def test_coverage_near_nominal_where_wald_fails():
    """n = 40, p = 0.05: Wald's coverage is far below 95 %; Wilson's stays near it."""
    rng = np.random.default_rng(11)
    reps, n, p = mc_reps(20_000), 40, 0.05
    k = rng.binomial(n, p, reps)
    low, high = wilson_interval(k, np.full(reps, n))
    coverage = np.mean((low <= p) & (p <= high))
    phat = k / n
    wald = 1.96 * np.sqrt(phat * (1 - phat) / n)
    wald_coverage = np.mean((phat - wald <= p) & (p <= phat + wald))
    assert coverage > 0.92 and wald_coverage < 0.9
