"""Paired shadow comparison (abkit.stats.paired): per-input differences clustered by
user, against statsmodels, closed forms and by Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
import statsmodels.api as sm

from abkit.stats.paired import paired_test
from tests.conftest import mc_reps


def _replay(rng: np.random.Generator, users: int, shift: float = 0.0, user_sd: float = 0.3):
    """Inputs answered by both versions: a user's level, the input's difficulty (shared
    by both versions: what pairing removes), a per-user difference between versions
    (what clustering must account for) and output noise; ``shift`` is the true mean
    difference candidate − live."""
    per_user = 1 + rng.poisson(6, users)
    user = np.repeat(np.arange(users), per_user)
    level = rng.normal(0, 1, users)[user]
    difficulty = rng.normal(0, 1.5, user.size)
    live = level + difficulty + rng.normal(0, 0.5, user.size)
    gap = rng.normal(0, user_sd, users)[user]
    candidate = level + difficulty + gap + shift + rng.normal(0, 0.5, user.size)
    return user, live + 5, candidate + 5  # positive means, for the lift


def _per_user(user: np.ndarray, live: np.ndarray, candidate: np.ndarray):
    users = user.max() + 1
    return (
        np.bincount(user, live, users),
        np.bincount(user, candidate, users),
        np.bincount(user, minlength=users),
    )


def test_the_standard_error_is_statsmodels_cluster_robust_one():
    """OLS of the per-input differences on an intercept with users as clusters: its
    default small-sample factor G/(G − 1)·(N − 1)/(N − K) is G/(G − 1) with K = 1, the
    factor of the per-user delta method."""
    user, live, candidate = _replay(np.random.default_rng(1), 400, shift=0.1)
    got, pairing = paired_test(*_per_user(user, live, candidate))
    d = candidate - live
    fit = sm.OLS(d, np.ones(d.size)).fit(cov_type="cluster", cov_kwds={"groups": user})
    assert got.effect == pytest.approx(d.mean(), rel=1e-12)
    assert got.se == pytest.approx(fit.bse[0], rel=1e-9) and pairing.se == got.se
    assert got.p_value == pytest.approx(2 * st.norm.sf(abs(fit.tvalues[0])), rel=1e-9)
    assert pairing.pairs == d.size and pairing.users == 400


def test_with_one_input_per_user_it_is_the_paired_t_interval_in_the_limit():
    """One input per user: the clustered variance is the sample variance of the
    differences over n (the paired t-test's, with a normal reference)."""
    rng = np.random.default_rng(2)
    live = rng.normal(5, 1, 500)
    candidate = live + rng.normal(0.05, 0.3, 500)
    got, _ = paired_test(live, candidate, np.ones(500))
    ref = st.ttest_rel(candidate, live)
    d = candidate - live
    assert got.se == pytest.approx(d.std(ddof=1) / math.sqrt(500), rel=1e-12)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)


def test_pairing_removes_the_variance_the_versions_share():
    """Independent arms of the same outputs carry the inputs' difficulty (sd 1.5) and the
    users' levels (sd 1) in full; the paired difference carries neither."""
    user, live, candidate = _replay(np.random.default_rng(3), 1_000)
    got, pairing = paired_test(*_per_user(user, live, candidate))
    assert pairing.variance_removed > 0.8
    assert pairing.unpaired_se > 2 * got.se


def test_degenerate_inputs_give_nan_with_a_reason():
    one, _ = paired_test(np.array([3.0]), np.array([4.0]), np.array([2.0]))
    assert math.isnan(one.p_value)
    assert "at least 2 are needed" in one.undefined[0]
    same, _ = paired_test(np.array([3.0, 5.0]), np.array([4.0, 6.0]), np.array([1.0, 1.0]))
    assert same.effect == 1.0 and math.isnan(same.p_value)
    assert "do not vary" in same.undefined[0]
    zero, _ = paired_test(np.array([0.0, 0.0]), np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    assert math.isnan(zero.relative_effect)
    assert any("no relative effect" in w for w in zero.warnings)


@pytest.mark.calibration
def test_aa_size_coverage_and_the_naive_tests():
    """Replays of 300 users (about 7 inputs each, a per-user gap between versions of sd
    0.3): the clustered paired test's size and the coverage of its effect and lift
    intervals, beside a paired t-test that treats inputs as independent."""
    reps, rng = mc_reps(1_000), np.random.default_rng(4)
    rejected = covered = lift_covered = naive = 0
    shift = 0.1
    for _ in range(reps):
        user, live, candidate = _replay(rng, 300)
        got, _ = paired_test(*_per_user(user, live, candidate))
        rejected += got.p_value < 0.05
        naive += st.ttest_rel(candidate, live).pvalue < 0.05
        moved = candidate + shift
        ab, _ = paired_test(*_per_user(user, live, moved))
        covered += ab.ci[0] <= shift <= ab.ci[1]
        true_lift = (5 + shift) / 5 - 1  # the population means are 5 and 5 + shift
        lift_covered += ab.relative_ci[0] <= true_lift <= ab.relative_ci[1]
    print(
        f"\npaired: reps {reps}, A/A size {rejected / reps:.4f}, coverage {covered / reps:.4f},"
        f" lift coverage {lift_covered / reps:.4f}, naive i.i.d. size {naive / reps:.4f}"
    )
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.05) / reps
    assert lo <= rejected / reps <= hi
    assert naive / reps > hi
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.95) / reps
    assert lo <= covered / reps <= hi
    assert lo <= lift_covered / reps <= hi
