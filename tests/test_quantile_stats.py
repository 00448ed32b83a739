"""Quantiles of event values clustered by user (abkit.stats.quantile): the estimate
against numpy, the clustered variance against statsmodels' cluster-robust variance
and a user-level bootstrap, closed forms, and Monte Carlo size and coverage with
heavy-tailed user-clustered latencies beside the naive i.i.d. test's inflation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats as st

from abkit.stats.arm import ArmSummary
from abkit.stats.bootstrap import resample_counts
from abkit.stats.quantile import (
    CLUSTERED,
    INDEPENDENT,
    LogBins,
    binned_quantile_estimate,
    binned_quantile_key,
    quantile_estimate,
    quantile_test,
    sample_quantile,
)
from tests.conftest import mc_reps

ALPHA = 0.05
# latencies: a per-user log-normal scale (device, prompt length) times a per-event
# log-normal spread; the events of all users together are log-normal(log 1000, √0.61)
USER_SD, EVENT_SD = 0.6, 0.5


def _latencies(rng, users, multiplier=1.0, mean_events=8):
    scale = rng.lognormal(0.0, USER_SD, users)
    per_user = rng.poisson(mean_events, users) + 1
    unit = np.repeat(np.arange(users), per_user)
    return rng.lognormal(np.log(1000.0 * multiplier * scale[unit]), EVENT_SD), unit


def _true_quantile(q, multiplier=1.0):
    """Event counts are independent of the user's scale, so the pooled events are
    log-normal with σ² = USER_SD² + EVENT_SD²."""
    return 1000.0 * multiplier * math.exp(math.hypot(USER_SD, EVENT_SD) * st.norm.ppf(q))


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(hs.integers(0, 40), min_size=1, max_size=300),
    hs.floats(0.01, 0.99),
)
def test_estimate_is_numpys_inverted_cdf_quantile_with_ties(values, q):
    x = np.array(values, dtype=float)
    assert sample_quantile(np.sort(x), q) == np.quantile(x, q, method="inverted_cdf")


def test_clustered_variance_of_the_share_below_equals_statsmodels_cluster_robust():
    """σ²_F is the cluster-robust variance of the mean of the event indicators
    1{x ≤ Q̂} (OLS on a constant, groups = users), with the G/(G − 1) factor only."""
    rng = np.random.default_rng(3)
    x, unit = _latencies(rng, 400)
    est = quantile_estimate(x, unit, 0.9)
    below = (x <= est.estimate).astype(float)
    fit = sm.OLS(below, np.ones_like(below)).fit(
        cov_type="cluster", cov_kwds={"groups": unit, "use_correction": False}
    )
    g = np.unique(unit).size
    var_f = float(fit.cov_params()[0, 0]) * g / (g - 1)
    binomial = 0.9 * 0.1 / x.size
    assert est.design_effect == pytest.approx(var_f / binomial, rel=1e-9)
    assert est.design_effect > 1.5  # clustering matters for these latencies


def test_one_event_per_unit_gives_the_binomial_variance_closed_form():
    """With one event per unit and F̂ = q exactly, σ²_F = q(1 − q)/(N − 1): a design
    effect of N/(N − 1)."""
    rng = np.random.default_rng(4)
    n = 10_000
    est = quantile_estimate(rng.normal(size=n), np.arange(n), 0.95)
    assert est.design_effect == pytest.approx(n / (n - 1), rel=1e-12)


def test_independent_interval_matches_scipys_order_statistic_interval():
    """Without clustering the construction is the distribution-free interval for a
    quantile; scipy's exact binomial version picks the same order statistics to
    within two ranks at N = 20,000."""
    rng = np.random.default_rng(5)
    x = rng.lognormal(7.0, 0.8, 20_000)
    xs = np.sort(x)
    est = quantile_estimate(x, np.arange(x.size), 0.95, clustered=False)
    ci = st.quantile_test(x, q=np.quantile(x, 0.95), p=0.95).confidence_interval(0.95)
    for ours, theirs in ((est.lower, ci.low), (est.upper, ci.high)):
        rank = np.searchsorted(xs, ours)
        assert abs(rank - np.searchsorted(xs, theirs)) <= 2


def test_standard_error_matches_the_asymptotic_closed_form():
    """For i.i.d. N(0, 1) events, se(Q̂_q) → √(q(1 − q)/N) / φ(Φ⁻¹(q)) (averaged over
    ten samples: one estimate rests on a spacing of a few hundred ranks)."""
    rng = np.random.default_rng(6)
    n = 50_000
    for q in (0.5, 0.95, 0.99):
        se = np.mean([quantile_estimate(rng.normal(size=n), np.arange(n), q).se for _ in range(10)])
        expected = math.sqrt(q * (1 - q) / n) / st.norm.pdf(st.norm.ppf(q))
        assert se == pytest.approx(expected, rel=0.05)


def test_standard_error_agrees_with_a_user_level_bootstrap():
    """Resampling users with replacement (all their events go along) gives the same
    standard error as the clustered formula, to sampling error of the bootstrap."""
    rng = np.random.default_rng(7)
    x, unit = _latencies(rng, 1_500)
    est = quantile_estimate(x, unit, 0.95)
    order = np.argsort(x)
    weights = resample_counts(np.random.default_rng(8), 1_500, 1_000)[:, unit[order]]
    cumulative = np.cumsum(weights, axis=1)
    index = (cumulative < 0.95 * cumulative[:, -1:] - 1e-9).sum(axis=1)
    boot_se = float(np.std(x[order][index], ddof=1))
    assert est.se == pytest.approx(boot_se, rel=0.1)
    naive = quantile_estimate(x, unit, 0.95, clustered=False)
    assert naive.se < 0.75 * boot_se  # the i.i.d. interval is far too narrow


def test_difference_test_assembles_the_two_arms():
    rng = np.random.default_rng(9)
    a = quantile_estimate(*_latencies(rng, 800), 0.95)
    b = quantile_estimate(*_latencies(rng, 800, 1.2), 0.95)
    comp = quantile_test(a, b, ALPHA)
    assert comp.method == CLUSTERED
    assert comp.effect == b.estimate - a.estimate
    assert comp.se == pytest.approx(math.hypot(a.se, b.se), rel=1e-12)
    assert comp.p_value == pytest.approx(2 * st.norm.sf(abs(comp.effect / comp.se)), rel=1e-9)
    assert comp.relative_effect == pytest.approx(b.estimate / a.estimate - 1, rel=1e-12)
    naive = quantile_test(
        quantile_estimate(*_latencies(rng, 50), 0.5, clustered=False),
        quantile_estimate(*_latencies(rng, 50), 0.5, clustered=False),
    )
    assert naive.method == INDEPENDENT


def test_too_few_events_for_an_extreme_quantile_is_refused_with_a_reason():
    rng = np.random.default_rng(10)
    few = quantile_estimate(*_latencies(rng, 5, mean_events=2), 0.99)
    assert math.isnan(few.se) and "too few events" in (few.problem or "")
    enough = quantile_estimate(*_latencies(rng, 500), 0.99)
    comp = quantile_test(enough, few, ALPHA)
    assert math.isnan(comp.p_value)
    assert any("treatment: too few events" in w for w in comp.undefined)
    one_user = quantile_estimate(np.arange(50.0), np.zeros(50), 0.5)
    assert "fewer than 2 units" in (one_user.problem or "")
    empty = quantile_estimate(np.array([]), np.array([], dtype=int), 0.5)
    assert empty.problem == "no events" and math.isnan(empty.estimate)


def test_tied_values_give_a_zero_width_warning_not_a_crash():
    comp = quantile_test(
        quantile_estimate(np.ones(500), np.arange(500) // 5, 0.5),
        quantile_estimate(np.ones(500), np.arange(500) // 5, 0.5),
    )
    assert math.isnan(comp.p_value)
    assert any("share the quantile's value" in w for w in comp.warnings)


@settings(max_examples=80, deadline=None)
@given(hs.lists(hs.floats(-1e9, 1e9, allow_nan=False), min_size=2, max_size=200))
def test_log_bins_keep_the_order_of_values_and_hold_them_within_the_error(values):
    bins = LogBins(0.01)
    x = np.sort(np.array(values))
    keys = bins.keys(x)
    assert np.all(np.diff(keys) >= 0)
    mids = bins.values(keys)
    big = np.abs(x) >= LogBins.TINY
    assert np.all(np.abs(mids[big] / x[big] - 1) <= bins.error + 1e-12)


@pytest.mark.parametrize("relative_error", [0.01, 0.001, 0.0001])
@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_binned_estimate_is_within_the_stated_error_of_the_exact_one(relative_error, q):
    """The histogram route's quantile is within √γ − 1 of the exact order statistic
    (values of both signs and zeros included); its standard error within the error
    the bins put on the interval's two ends."""
    rng = np.random.default_rng(12)
    x, unit = _latencies(rng, 3_000)
    x[:40], x[40:50] = -x[:40], 0.0
    exact = quantile_estimate(x, unit, q)
    bins = LogBins(relative_error)
    keys = bins.keys(x)
    bin_keys, counts = np.unique(keys, return_counts=True)
    threshold = binned_quantile_key(bin_keys, counts, q)
    k = unit.max() + 1
    below = ArmSummary.from_values(
        np.bincount(unit[keys <= threshold], minlength=k).astype(float),
        np.bincount(unit, minlength=k).astype(float),
    )
    binned = binned_quantile_estimate(bin_keys, counts, q, bins, below)
    assert abs(binned.estimate / exact.estimate - 1) <= bins.error
    ends = bins.error * (abs(exact.lower) + abs(exact.upper)) / (exact.upper - exact.lower)
    assert binned.se == pytest.approx(exact.se, rel=ends + 0.01)
    assert (binned.events, binned.units) == (exact.events, exact.units)


@pytest.mark.calibration
@pytest.mark.parametrize(("users", "q"), [(1_000, 0.95), (300, 0.5)])
def test_size_and_coverage_with_user_clustered_latencies(users, q):
    """A/A size and CI coverage (absolute and relative) in the binomial band, with the
    naive test that treats events as independent shown rejecting far too often."""
    reps = mc_reps(1_000)
    rng = np.random.default_rng(11)
    true_effect = _true_quantile(q, 1.1) - _true_quantile(q)
    rejected = naive_rejected = covered = lift_covered = 0
    for _ in range(reps):
        a, b = _latencies(rng, users), _latencies(rng, users)
        aa = quantile_test(quantile_estimate(*a, q), quantile_estimate(*b, q), ALPHA)
        naive = quantile_test(
            quantile_estimate(*a, q, clustered=False), quantile_estimate(*b, q, clustered=False)
        )
        rejected += aa.p_value < ALPHA
        naive_rejected += naive.p_value < ALPHA
        c, t = _latencies(rng, users), _latencies(rng, users, 1.1)
        ab = quantile_test(quantile_estimate(*c, q), quantile_estimate(*t, q), ALPHA)
        covered += ab.ci[0] <= true_effect <= ab.ci[1]
        lift_covered += ab.relative_ci[0] <= 0.1 <= ab.relative_ci[1]
    size, naive_size = rejected / reps, naive_rejected / reps
    print(
        f"\nquantile q={q}, {users} users/arm: reps {reps}, A/A size {size:.4f} (naive "
        f"i.i.d. {naive_size:.4f}), coverage {covered / reps:.4f}, lift coverage "
        f"{lift_covered / reps:.4f}"
    )
    lo, hi = st.binom.ppf([0.005, 0.995], reps, ALPHA) / reps
    assert lo <= size <= hi
    assert naive_size > 3 * ALPHA
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 1 - ALPHA) / reps
    assert lo <= covered / reps <= hi
    assert lo <= lift_covered / reps <= hi
