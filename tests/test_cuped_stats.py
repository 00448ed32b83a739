"""CUPED statistics against statsmodels OLS, closed forms and explicit per-unit arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as st

from abkit.stats.cuped import Moments, cuped_test


def _arms(rng, n_c=3_000, n_t=2_200, k=1, lift=0.3):
    """Skewed outcomes driven by k pre-period covariates; treatment adds ``lift``."""
    out = []
    for n, shift in ((n_c, 0.0), (n_t, lift)):
        x = rng.gamma(2.0, 2.0, (n, k))
        y = x @ np.linspace(0.8, 0.2, k) + rng.lognormal(0.0, 0.8, n) + shift
        out.append((y, x))
    return out


def _ols(arms):
    """y ~ 1 + treatment + centred covariates, fitted by statsmodels."""
    (yc, xc), (yt, xt) = arms
    y = np.concatenate([yc, yt])
    x = np.vstack([xc, xt])
    treated = np.r_[np.zeros(yc.size), np.ones(yt.size)]
    design = np.column_stack([np.ones(y.size), treated, x - x.mean(axis=0)])
    return y, x, treated, sm.OLS(y, design)


@pytest.mark.parametrize("k", [1, 3])
def test_mean_effect_equals_ols_treatment_coefficient(k):
    arms = _arms(np.random.default_rng(k), k=k)
    y, x, treated, model = _ols(arms)
    fit = model.fit(cov_type="HC2")
    moments = [Moments.from_values(np.column_stack([a[0], a[1]])) for a in arms]
    covs = [(i,) for i in range(1, k + 1)]
    comp, adj = cuped_test(*moments, (0,), covs, [f"x{i}" for i in covs], 0.05, True)
    assert comp.effect == pytest.approx(fit.params[1], rel=1e-9)
    assert adj is not None
    assert np.allclose(adj.theta, fit.params[2:], rtol=1e-9)
    # the SE treats θ as known: it equals the HC2 SE of the outcome adjusted by the
    # fitted θ, regressed on treatment alone (HC2 on one dummy = the Welch SE) ...
    adjusted = y - (x - x.mean(axis=0)) @ fit.params[2:]
    two_step = sm.OLS(adjusted, sm.add_constant(treated)).fit(cov_type="HC2")
    assert comp.se == pytest.approx(two_step.bse[1], rel=1e-9)
    # ... and the full sandwich, which adds θ's own uncertainty, only to order 1/n
    assert comp.se == pytest.approx(fit.bse[1], rel=2e-3)
    # the Welch reference of the adjusted values
    welch = st.ttest_ind(adjusted[treated == 1], adjusted[treated == 0], equal_var=False)
    assert comp.p_value == pytest.approx(welch.pvalue, rel=1e-9)


def test_variance_reduction_is_the_squared_within_arm_correlation():
    """Equal arms: 1 − Var(Δ_cv)/Var(Δ) = ρ², ρ the pooled within-arm correlation
    (Deng et al. 2013, eq. 5)."""
    rng = np.random.default_rng(5)
    arms = _arms(rng, n_c=2_000, n_t=2_000)
    moments = [Moments.from_values(np.column_stack([y, x])) for y, x in arms]
    _, adj = cuped_test(*moments, (0,), [(1,)], ["x"], 0.05)
    sxy = sum(np.cov(y, x[:, 0])[0, 1] for y, x in arms)
    sxx = sum(np.var(x[:, 0], ddof=1) for _, x in arms)
    syy = sum(np.var(y, ddof=1) for y, _ in arms)
    assert adj is not None
    assert adj.variance_reduction == pytest.approx(sxy**2 / (sxx * syy), rel=1e-12)


def _ratio_arm(rng, n, share):
    pre_den = rng.poisson(rng.gamma(2.0, 3.0, n)) + 1
    propensity = rng.beta(0.5, 4, n)  # share propensity differs widely by user
    pre_num = rng.binomial(pre_den, propensity)
    den = rng.poisson(pre_den * 0.8) + 1
    num = rng.binomial(den, np.minimum(propensity * share, 1))
    return np.column_stack([num, den, pre_num, pre_den]).astype(float)


def _linearised(z, term):
    """Per-unit delta-method values of a mean or ratio term at the arm's means."""
    m = z.mean(axis=0)
    if len(term) == 1:
        return z[:, term[0]]
    i, j = term
    return z[:, i] / m[j] - m[i] * z[:, j] / m[j] ** 2


def test_ratio_theta_and_se_from_explicit_linearisation():
    """Ratio metric adjusted by its pre-period ratio: θ is the statsmodels OLS slope of
    the linearised metric on the linearised covariate with one intercept per arm, and
    the SE is the Welch SE of the linearised values adjusted by θ."""
    rng = np.random.default_rng(7)
    zc, zt = _ratio_arm(rng, 3_000, 1.0), _ratio_arm(rng, 2_500, 1.1)
    comp, adj = cuped_test(
        Moments.from_values(zc), Moments.from_values(zt), (0, 1), [(2, 3)], ["pre"], 0.05
    )
    lg = np.concatenate([_linearised(zc, (0, 1)), _linearised(zt, (0, 1))])
    lh = np.concatenate([_linearised(zc, (2, 3)), _linearised(zt, (2, 3))])
    arm = np.r_[np.zeros(len(zc)), np.ones(len(zt))]
    fit = sm.OLS(lg, np.column_stack([1 - arm, arm, lh])).fit()
    assert adj is not None
    assert adj.theta[0] == pytest.approx(fit.params[2], rel=1e-9)
    resid = lg - adj.theta[0] * lh
    se = math.sqrt(sum(np.var(resid[arm == a], ddof=1) / (arm == a).sum() for a in (0, 1)))
    assert comp.se == pytest.approx(se, rel=1e-9)
    ratio = lambda z, i, j: z[:, i].sum() / z[:, j].sum()  # noqa: E731
    expected = (ratio(zt, 0, 1) - ratio(zc, 0, 1)) - adj.theta[0] * (
        ratio(zt, 2, 3) - ratio(zc, 2, 3)
    )
    assert comp.effect == pytest.approx(expected, rel=1e-12)
    assert adj.variance_reduction > 0.1  # the propensity carries over from the pre-period


def test_ratio_with_unit_denominators_is_the_mean_case():
    rng = np.random.default_rng(8)
    arms = _arms(rng, k=2)
    plain = [Moments.from_values(np.column_stack([y, x])) for y, x in arms]
    ones = [Moments.from_values(np.column_stack([y, np.ones(y.size), x])) for y, x in arms]
    a, _ = cuped_test(*plain, (0,), [(1,), (2,)], ["a", "b"], 0.05)
    b, _ = cuped_test(*ones, (0, 1), [(2,), (3,)], ["a", "b"], 0.05)
    assert (a.effect, a.se, a.p_value) == pytest.approx((b.effect, b.se, b.p_value), rel=1e-12)
    assert a.relative_ci == pytest.approx(b.relative_ci, rel=1e-12)


def test_relative_effect_is_adjusted_treatment_over_control():
    rng = np.random.default_rng(9)
    arms = _arms(rng)
    moments = [Moments.from_values(np.column_stack([y, x])) for y, x in arms]
    comp, _ = cuped_test(*moments, (0,), [(1,)], ["x"], 0.05)
    control = arms[0][0].mean()
    assert comp.relative_effect == pytest.approx(comp.effect / control, rel=1e-12)
    low, high = comp.relative_ci
    assert low < comp.relative_effect < high
    # the log-scale half-width is z·se
    z = st.norm.ppf(0.975)
    assert math.log1p(high) - math.log1p(low) == pytest.approx(2 * z * comp.log_ratio_se)


def test_covariate_without_variation_removes_nothing_and_collinear_set_is_flagged():
    rng = np.random.default_rng(10)
    arms = [(y, np.column_stack([np.full(y.size, 3.0)])) for y, _ in _arms(rng)]
    moments = [Moments.from_values(np.column_stack([y, x])) for y, x in arms]
    comp, adj = cuped_test(*moments, (0,), [(1,)], ["flat"], 0.05, True)
    plain = st.ttest_ind(arms[1][0], arms[0][0], equal_var=False)
    assert adj is not None and adj.variance_reduction == pytest.approx(0.0, abs=1e-12)
    assert comp.p_value == pytest.approx(plain.pvalue, rel=1e-9)
    twice = [(y, np.column_stack([x, 2 * x])) for y, x in _arms(rng)]
    moments = [Moments.from_values(np.column_stack([y, x])) for y, x in twice]
    comp, _ = cuped_test(*moments, (0,), [(1,), (2,)], ["x", "2x"], 0.05)
    assert any("collinear" in w for w in comp.warnings)


def test_degenerate_arms_are_undefined_not_a_crash():
    one = Moments.from_values(np.array([[1.0, 2.0]]))
    many = Moments.from_values(np.random.default_rng(0).normal(size=(50, 2)))
    comp, adj = cuped_test(one, many, (0,), [(1,)], ["x"], 0.05)
    assert adj is None and math.isnan(comp.p_value)
    zero_den = Moments.from_values(np.column_stack([np.ones(5), np.zeros(5), np.arange(5.0)]))
    comp, adj = cuped_test(zero_den, zero_den, (0, 1), [(2,)], ["x"], 0.05)
    assert adj is None and math.isnan(comp.p_value)
    assert any("denominator" in w for w in comp.undefined)
