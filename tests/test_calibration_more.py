"""Monte Carlo calibration of the non-inferiority test, the SRM check, Holm's family-wise
error and the time-to-value (RMST) test.  Sizes from ABKIT_MC_REPS (reduced in CI)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from abkit.stats import ArmSummary, adjust_pvalues, noninferiority_test, srm_test, welch_test
from abkit.stats.survival import rmst_difference_test
from tests.conftest import mc_reps

pytestmark = pytest.mark.calibration
ALPHA = 0.05


def _upper(reps, rate):
    return st.binom.ppf(0.995, reps, rate) / reps


def _band(reps, rate):
    return st.binom.ppf(0.005, reps, rate) / reps, _upper(reps, rate)


def test_noninferiority_size_at_the_margin():
    """True effect exactly at the harmful margin (the edge of H0): 'pass' at rate alpha."""
    reps = mc_reps()
    rng = np.random.default_rng(41)
    margin = 0.1
    passed = 0
    for _ in range(reps):
        c = ArmSummary.from_values(rng.lognormal(0, 0.5, 300))
        t = ArmSummary.from_values(rng.lognormal(0, 0.5, 300) - margin)  # harm = margin
        comp = welch_test(c, t, ALPHA)
        ni = noninferiority_test(comp.effect, comp.se, margin, True, ALPHA, df=comp.df)
        passed += ni.verdict == "pass"
    lo, hi = _band(reps, ALPHA)
    print(f"\nnon-inferiority at the margin: pass rate {passed / reps:.4f}")
    assert lo <= passed / reps <= hi


def test_srm_false_alarm_rate_under_correct_randomisation():
    reps = mc_reps()
    rng = np.random.default_rng(42)
    counts = rng.multinomial(10_000, [0.5, 0.25, 0.25], size=reps)
    alarms = sum(
        srm_test({"a": a, "b": b, "c": c}, {"a": 2, "b": 1, "c": 1}, threshold=0.01).mismatch
        for a, b, c in counts
    )
    lo, hi = _band(reps, 0.01)
    print(f"\nSRM false alarms at threshold 0.01: {alarms / reps:.4f}")
    assert lo <= alarms / reps <= hi


def test_holm_controls_the_family_wise_error_over_three_treatments():
    reps = mc_reps()
    rng = np.random.default_rng(43)
    any_rejection = 0
    for _ in range(reps):
        control = ArmSummary.from_values(rng.normal(0, 1, 200))
        p = [
            welch_test(control, ArmSummary.from_values(rng.normal(0, 1, 200))).p_value
            for _ in range(3)
        ]
        any_rejection += bool((adjust_pvalues(p, "holm") < ALPHA).any())
    print(f"\nHolm family-wise error, 3 treatments: {any_rejection / reps:.4f}")
    assert any_rejection / reps <= _upper(reps, ALPHA)


def _times(rng, n, scale):
    t = rng.exponential(scale, n)
    censor = rng.uniform(5, 25, n)
    return np.minimum(t, censor), t <= censor


def test_rmst_randomisation_size_and_bootstrap_coverage():
    """A/A time-to-value with censoring, 8 accounts per arm (exact enumeration of all
    12,870 re-assignments): the permutation test holds
    its size; the bootstrap interval's coverage of 0 is reported and must be >= 0.85
    (percentile intervals are known to run short with few accounts; docs/b2b.md)."""
    reps = mc_reps(300)
    rng = np.random.default_rng(44)
    rejected = covered = 0
    for i in range(reps):
        res = rmst_difference_test(
            *_times(rng, 8, 8.0), *_times(rng, 8, 8.0), tau=5.0, resamples=400, seed=i
        )
        rejected += res.p_value < ALPHA
        covered += res.ci[0] <= 0 <= res.ci[1]
    print(
        f"\nRMST A/A, 8 accounts/arm: size {rejected / reps:.4f}, bootstrap CI coverage "
        f"{covered / reps:.4f}"
    )
    assert rejected / reps <= _upper(reps, ALPHA)
    assert covered / reps >= 0.85


@pytest.mark.parametrize(
    "scenario",
    [
        "proportion 5 % -> 7.5 % (+50 %), 200 per arm",
        "proportion 2 % -> 4 % (+100 %), 500 per arm",
        "proportion 30 % -> 33 % (+10 %), 2,000 per arm",
    ],
)
def test_log_scale_lift_interval_covers_at_small_n_and_large_effects(scenario):
    from abkit.dev.calibration import lift_coverage

    reps = mc_reps(1_500)
    res = lift_coverage(scenario, reps, seed=7)
    lower = st.binom.ppf(0.005, reps, 0.95) / reps
    print(f"\n{scenario}, {reps} runs: {res}")
    assert res["log_scale"] >= lower
    assert res["log_scale"] >= res["symmetric"] - 0.01
