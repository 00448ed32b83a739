"""Sequential statistics against published values, closed forms and independent
numerical computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy import stats as st

from abkit.stats.always_valid import (
    asymptotic_cs,
    mixture_half_width,
    mixture_log_lr,
    msprt,
    optimal_rho2,
)
from abkit.stats.group_sequential import (
    efficacy_bounds,
    pocock_constant,
    repeated_p_values,
    spent,
)

EQUAL5 = np.arange(1, 6) / 5


def test_obrien_fleming_spending_boundaries_match_published_values():
    # Lan-DeMets O'Brien-Fleming-type, K = 5 equally spaced, two-sided alpha 0.05
    # (Jennison & Turnbull 2000 Table 7.6; gsDesign sfLDOF): 4.877 3.357 2.680 2.290 2.031
    bounds = efficacy_bounds(EQUAL5, 0.05, "obrien_fleming")
    np.testing.assert_allclose(bounds, [4.877, 3.357, 2.680, 2.290, 2.031], atol=6e-4)
    assert bounds[0] > 4.8  # not the 4.38 of the one-sided-as-two-sided trap


def test_pocock_constant_boundary_matches_published_value():
    # Pocock (1977): K = 5, two-sided 0.05 -> 2.413; K = 2 -> 2.178; K = 3 -> 2.289
    assert pocock_constant(5, 0.05) == pytest.approx(2.413, abs=5e-4)
    assert pocock_constant(2, 0.05) == pytest.approx(2.178, abs=5e-4)
    assert pocock_constant(3, 0.05) == pytest.approx(2.289, abs=5e-4)


def test_pocock_type_spending_is_nearly_flat_and_spends_exactly():
    bounds = efficacy_bounds(EQUAL5, 0.05, "pocock")
    np.testing.assert_allclose(bounds, [2.438, 2.427, 2.410, 2.397, 2.386], atol=1e-3)
    assert spent(1.0, 0.05, "pocock") == pytest.approx(0.05)
    assert spent(1.0, 0.05, "obrien_fleming") == pytest.approx(0.05)


def test_single_look_boundary_is_the_fixed_horizon_critical_value():
    assert efficacy_bounds(np.array([1.0]), 0.05, "obrien_fleming")[0] == pytest.approx(
        st.norm.ppf(0.975), abs=1e-6
    )


def test_group_sequential_crossing_probability_by_multivariate_normal():
    """Independent check: with the computed boundaries, P(any |Z_k| >= c_k) under H0,
    integrated by scipy's multivariate normal CDF, equals alpha."""
    t = np.array([0.3, 0.6, 1.0])
    c = efficacy_bounds(t, 0.05, "obrien_fleming")
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    inside = st.multivariate_normal(mean=np.zeros(3), cov=cov).cdf(c, lower_limit=-c)
    assert 1 - inside == pytest.approx(0.05, abs=2e-4)


def test_repeated_p_value_is_where_the_boundary_meets_the_statistic():
    z = np.array([1.0, 2.0, 2.5, 3.5, 2.0])
    p = repeated_p_values(z, EQUAL5, "obrien_fleming")
    assert p[0] == 1.0  # |z| = 1 is inside the first boundary at any alpha' < 0.999
    for k in range(1, 5):
        c = efficacy_bounds(EQUAL5[: k + 1], p[k], "obrien_fleming")
        assert c[k] == pytest.approx(z[k], abs=1e-4)
    # the look's p-value and its repeated CI agree: |z_k| >= c_k(alpha) iff p_k <= alpha
    c05 = efficacy_bounds(EQUAL5, 0.05, "obrien_fleming")
    np.testing.assert_array_equal(np.abs(z) >= c05, p <= 0.05)


def test_mixture_likelihood_ratio_matches_numerical_integration():
    est, var, tau2 = 0.31, 0.04, 0.09

    def integrand(theta):
        ratio = st.norm.pdf(est, theta, math.sqrt(var)) / st.norm.pdf(est, 0, math.sqrt(var))
        return ratio * st.norm.pdf(theta, 0, math.sqrt(tau2))

    numeric, _ = integrate.quad(integrand, -10, 10)
    assert math.exp(mixture_log_lr(est, var, tau2)) == pytest.approx(numeric, rel=1e-9)


def test_half_width_is_where_the_likelihood_ratio_reaches_one_over_alpha():
    var, tau2, alpha = 0.02, 0.05, 0.05
    h = float(mixture_half_width(var, tau2, alpha))
    root = optimize.brentq(lambda d: mixture_log_lr(d, var, tau2) - math.log(1 / alpha), 0, 5)
    assert h == pytest.approx(root, rel=1e-10)


def test_msprt_p_value_is_one_over_the_looks_likelihood_ratio():
    est = np.array([0.0, 0.2, 0.5, 0.1])
    var = np.array([0.1, 0.05, 0.03, 0.02])
    path = msprt(est, var, alpha=0.05, tau=0.3)
    direct = np.minimum(1, np.exp(-mixture_log_lr(est, var, 0.09)))
    np.testing.assert_allclose(path.p_value, direct, rtol=1e-12)
    half = mixture_half_width(var, 0.09, 0.05)
    np.testing.assert_allclose(path.ci_high - est, half, rtol=1e-12)


def test_asymptotic_cs_margin_matches_the_papers_standard_form():
    # Waudby-Smith et al. (2024): sigma * sqrt(2(t rho² + 1)/(t² rho²) log(sqrt(t rho² + 1)/alpha))
    n = np.array([100.0, 1_000.0, 10_000.0])
    sigma2 = 4.0
    var = sigma2 / n
    path = asymptotic_cs(np.zeros(3), var, n, alpha=0.05, target_n=1_000)
    rho2 = optimal_rho2(1_000, 0.05)
    margin = np.sqrt(sigma2) * np.sqrt(
        2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / 0.05)
    )
    np.testing.assert_allclose(path.ci_high, margin, rtol=1e-12)


def test_optimal_rho_minimises_the_width_at_the_target():
    def width(log_rho2, t=5_000, alpha=0.05):
        r = math.exp(log_rho2)
        return (t * r + 1) / (t**2 * r) * math.log(math.sqrt(t * r + 1) / alpha)

    best = optimize.minimize_scalar(
        width, bounds=(-20, 5), method="bounded", options={"xatol": 1e-10}
    )
    assert optimal_rho2(5_000, 0.05) == pytest.approx(math.exp(best.x), rel=1e-4)


def test_always_valid_intervals_are_wider_than_fixed_ones():
    var = np.array([0.01])
    half = mixture_half_width(var, 0.01, 0.05)[0]
    assert half > st.norm.ppf(0.975) * 0.1


def test_undefined_looks_are_skipped():
    path = msprt(np.array([np.nan, 0.1, 0.2]), np.array([np.nan, 0.01, 0.01]), 0.05, 0.1)
    assert np.isnan(path.ci_low[0]) and np.isnan(path.p_value[0])
    assert np.isfinite(path.ci_low[1:]).all()


def _z_paths(reps, t, theta, seed):
    rng = np.random.default_rng(seed)
    inc = rng.normal(
        theta * np.diff(t, prepend=0), np.sqrt(np.diff(t, prepend=0)), size=(reps, t.size)
    )
    return np.cumsum(inc, axis=1) / np.sqrt(t)


def test_futility_bounds_spend_beta_under_the_design_effect():
    """Monte Carlo, independent of the recursion: under drift theta the probability of a
    futility stop by look k (before any efficacy stop) equals beta(t_k)."""
    from abkit.stats.group_sequential import futility_bounds

    t = np.array([0.25, 0.5, 0.75, 1.0])
    c = efficacy_bounds(t, 0.05)
    theta = st.norm.ppf(0.975) + st.norm.ppf(0.9)
    b = futility_bounds(t, c, theta, 0.1)
    z = _z_paths(400_000, t, theta, seed=1)
    alive = np.ones(z.shape[0], dtype=bool)
    stopped_futile = np.zeros(z.shape[0], dtype=bool)
    for k in range(t.size - 1):
        futile = alive & (z[:, k] <= b[k])
        stopped_futile |= futile
        alive &= (z[:, k] > b[k]) & (np.abs(z[:, k]) < c[k])
        target = spent(t[k], 0.2, "obrien_fleming") / 2  # one-sided OBF beta spending
        assert stopped_futile.mean() == pytest.approx(target, abs=0.002)
    assert b[-1] == c[-1] and np.all(np.diff(b) > 0)


def test_binding_use_of_the_non_binding_futility_bound_keeps_type_i_error():
    from abkit.stats.group_sequential import futility_bounds

    t = np.array([0.25, 0.5, 0.75, 1.0])
    c = efficacy_bounds(t, 0.05)
    b = futility_bounds(t, c, st.norm.ppf(0.975) + st.norm.ppf(0.8), 0.2)
    z = _z_paths(400_000, t, 0.0, seed=2)
    alive = np.ones(z.shape[0], dtype=bool)
    rejected = np.zeros(z.shape[0], dtype=bool)
    for k in range(t.size):
        rejected |= alive & (np.abs(z[:, k]) >= c[k])
        alive &= (np.abs(z[:, k]) < c[k]) & (z[:, k] > b[k])
    assert rejected.mean() <= 0.05 + 0.002


def test_planned_tau_is_the_effect_statsmodels_sizes_for_80_percent_power():
    """Independent implementation: statsmodels' normal power function for two equal
    arms of target/2 units gives power 0.8 at the standardised effect tau / sigma
    (V = 4 sigma^2 / n for equal arms).  tau ignores the far tail of the two-sided
    test, so it is the one-sided alpha/2 power."""
    from statsmodels.stats.power import NormalIndPower

    from abkit.stats.always_valid import planned_tau

    sigma, n, target = 2.5, 4_000, 20_000
    variance = 4 * sigma**2 / n
    d = planned_tau(variance, n, target, 0.05) / sigma
    power = NormalIndPower().power(
        effect_size=d, nobs1=target / 2, alpha=0.025, ratio=1.0, alternative="larger"
    )
    assert power == pytest.approx(0.8, rel=1e-9)


def test_p_value_at_a_margin_agrees_with_the_interval():
    est = np.array([0.02, 0.05, 0.01, -0.03])
    var = np.array([4e-4, 1e-4, 5e-5, 2e-5])
    path = msprt(est, var, alpha=0.05, tau=0.02)
    for theta0 in (-0.02, 0.0, 0.03):
        outside = (path.ci_low > theta0) | (path.ci_high < theta0)
        np.testing.assert_array_equal(outside, path.p_value_at(theta0) < 0.05)
