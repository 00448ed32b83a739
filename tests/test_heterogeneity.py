"""Cochran's Q against statsmodels' meta-analysis, and its size by Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.meta_analysis import combine_effects

from abkit.stats import ArmSummary, welch_test
from abkit.stats.heterogeneity import cochran_q
from tests.conftest import mc_reps


def test_q_equals_statsmodels_combine_effects():
    effects = np.array([0.12, -0.03, 0.31, 0.08, 0.2])
    variances = np.array([0.004, 0.01, 0.02, 0.006, 0.015])
    ours = cochran_q(effects, variances)
    ref = combine_effects(effects, variances)
    assert ours.q == pytest.approx(ref.q, rel=1e-12)
    assert ours.df == 4
    assert ours.p_value == pytest.approx(st.chi2.sf(ref.q, 4), rel=1e-12)
    assert ours.common_effect == pytest.approx(ref.mean_effect_fe, rel=1e-12)
    assert ours.i2 == pytest.approx(max(0.0, ref.i2), rel=1e-9)


def test_two_segments_is_the_squared_z_of_their_difference():
    res = cochran_q(np.array([0.5, 0.1]), np.array([0.04, 0.05]))
    z = (0.5 - 0.1) / math.sqrt(0.09)
    assert res.q == pytest.approx(z * z, rel=1e-12)
    assert res.p_value == pytest.approx(2 * st.norm.sf(z), rel=1e-9)


def test_degenerate_segments_are_left_out():
    res = cochran_q(np.array([0.1, np.nan, 0.2]), np.array([0.01, 0.01, 0.0]))
    assert math.isnan(res.p_value) and res.df == 0


@pytest.mark.calibration
@pytest.mark.parametrize("segments", [2, 5])
def test_no_false_heterogeneity_alarms_with_a_common_effect(segments):
    """Skewed outcomes, segments of different sizes and spreads, the same +0.1 effect in
    each: Q rejects a common effect at the nominal rate."""
    reps = mc_reps()
    rng = np.random.default_rng(segments)
    sizes = rng.integers(150, 600, segments)
    scales = rng.uniform(0.5, 2.0, segments)
    rejected = 0
    for _ in range(reps):
        effects, variances = [], []
        for n, scale in zip(sizes, scales, strict=True):
            c = ArmSummary.from_values(rng.lognormal(0, 0.7, n) * scale)
            t = ArmSummary.from_values(rng.lognormal(0, 0.7, n) * scale + 0.1)
            comp = welch_test(c, t)
            effects.append(comp.effect)
            variances.append(comp.se**2)
        rejected += cochran_q(np.array(effects), np.array(variances)).p_value < 0.05
    rate = rejected / reps
    print(f"\nCochran's Q, {segments} segments, common effect: rejection rate {rate:.4f}")
    assert st.binom.ppf(0.005, reps, 0.05) / reps <= rate <= st.binom.ppf(0.995, reps, 0.05) / reps
