"""abkit.stats against independent implementations (scipy, statsmodels) on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import ttest_ind as sm_ttest_ind

from abkit.stats import (
    ArmSummary,
    adjust_pvalues,
    delta_ratio_test,
    noninferiority_test,
    ratio_variance,
    srm_test,
    two_proportion_ztest,
    welch_test,
)

REL = 1e-9


@pytest.fixture
def skewed():
    rng = np.random.default_rng(7)
    return rng.lognormal(1.0, 1.0, 400), rng.lognormal(1.1, 1.2, 350)


def test_welch_matches_scipy(skewed):
    c, t = skewed
    res = welch_test(ArmSummary.from_values(c), ArmSummary.from_values(t), alpha=0.05)
    ref = st.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.statistic == pytest.approx(ref.statistic, rel=REL)
    assert res.p_value == pytest.approx(ref.pvalue, rel=REL)
    assert res.df == pytest.approx(ref.df, rel=REL)
    assert res.ci[0] == pytest.approx(ci.low, rel=REL)
    assert res.ci[1] == pytest.approx(ci.high, rel=REL)
    assert res.effect == pytest.approx(t.mean() - c.mean(), rel=REL)


def test_two_proportion_matches_statsmodels():
    nc, nt, xc, xt = 4_000, 4_100, 480, 545
    c = ArmSummary.from_values(np.r_[np.ones(xc), np.zeros(nc - xc)])
    t = ArmSummary.from_values(np.r_[np.ones(xt), np.zeros(nt - xt)])
    res = two_proportion_ztest(c, t, alpha=0.05)
    z, p = proportions_ztest([xt, xc], [nt, nc])
    lo, hi = confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
    assert res.statistic == pytest.approx(z, rel=REL)
    assert res.p_value == pytest.approx(p, rel=REL)
    assert res.ci[0] == pytest.approx(lo, rel=REL)
    assert res.ci[1] == pytest.approx(hi, rel=REL)


def test_two_proportion_equals_pearson_chi2_without_correction():
    table = np.array([[545, 4_100 - 545], [480, 4_000 - 480]])
    chi2, p, _, _ = st.chi2_contingency(table, correction=False)
    c = ArmSummary(n=4_000, mean=480 / 4_000, var=math.nan)
    t = ArmSummary(n=4_100, mean=545 / 4_100, var=math.nan)
    res = two_proportion_ztest(c, t)
    assert res.statistic**2 == pytest.approx(chi2, rel=REL)
    assert res.p_value == pytest.approx(p, rel=REL)


def _ratio_data(seed: int, n: int, rate: float):
    rng = np.random.default_rng(seed)
    y = rng.poisson(6.0, n) + 1
    x = rng.binomial(y, rate)
    return x.astype(float), y.astype(float)


def test_ratio_variance_matches_weighted_regression_hc1():
    # The delta-method variance of Σx/Σy (ddof = 1 moments) equals the HC1 sandwich
    # variance of a WLS regression of x/y on a constant with weights y.
    x, y = _ratio_data(3, 600, 0.12)
    arm = ArmSummary.from_values(x, y)
    fit = sm.WLS(x / y, np.ones_like(x), weights=y).fit(cov_type="HC1")
    assert arm.value == pytest.approx(fit.params[0], rel=REL)
    assert ratio_variance(arm) == pytest.approx(fit.cov_params()[0, 0], rel=REL)


def test_ratio_variance_equals_linearisation():
    x, y = _ratio_data(4, 500, 0.3)
    arm = ArmSummary.from_values(x, y)
    r = x.sum() / y.sum()
    linear = (x - r * y) / y.mean()
    assert ratio_variance(arm) == pytest.approx(linear.var(ddof=1) / x.size, rel=REL)


def test_delta_ratio_test_matches_hand_computation():
    xc, yc = _ratio_data(5, 800, 0.10)
    xt, yt = _ratio_data(6, 820, 0.12)
    c, t = ArmSummary.from_values(xc, yc), ArmSummary.from_values(xt, yt)
    res = delta_ratio_test(c, t)
    fc = sm.WLS(xc / yc, np.ones_like(xc), weights=yc).fit(cov_type="HC1")
    ft = sm.WLS(xt / yt, np.ones_like(xt), weights=yt).fit(cov_type="HC1")
    se = math.sqrt(fc.cov_params()[0, 0] + ft.cov_params()[0, 0])
    effect = ft.params[0] - fc.params[0]
    assert res.effect == pytest.approx(effect, rel=REL)
    assert res.se == pytest.approx(se, rel=REL)
    assert res.p_value == pytest.approx(2 * st.norm.sf(abs(effect / se)), rel=REL)
    assert res.ci[1] == pytest.approx(effect + st.norm.ppf(0.975) * se, rel=REL)


def test_relative_effect_matches_numerical_jacobian(skewed):
    """The lift interval is exp(log(T/C) ± z·se) − 1, se from the numerical Jacobian
    of log(T/C)."""
    c, t = skewed
    res = welch_test(ArmSummary.from_values(c), ArmSummary.from_values(t))
    mc, mt = c.mean(), t.mean()
    vc, vt = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    h = 1e-6
    d_dc = (math.log(mt / (mc + h)) - math.log(mt / (mc - h))) / (2 * h)
    d_dt = (math.log((mt + h) / mc) - math.log((mt - h) / mc)) / (2 * h)
    se = math.sqrt(d_dc**2 * vc + d_dt**2 * vt)
    assert res.relative_effect == pytest.approx(mt / mc - 1, rel=REL)
    assert res.log_ratio_se == pytest.approx(se, rel=1e-6)
    z = 1.959963984540054
    assert res.relative_ci[0] == pytest.approx(math.exp(math.log(mt / mc) - z * se) - 1, rel=1e-6)
    assert res.relative_ci[1] == pytest.approx(math.exp(math.log(mt / mc) + z * se) - 1, rel=1e-6)


def test_proportion_lift_interval_matches_statsmodels_log_ratio_interval():
    """Independent implementation: statsmodels' Katz log interval for a risk ratio."""
    control, treatment = (
        ArmSummary.from_values(np.r_[np.ones(12), np.zeros(88)]),
        (ArmSummary.from_values(np.r_[np.ones(31), np.zeros(69)])),
    )
    res = two_proportion_ztest(control, treatment)
    low, high = confint_proportions_2indep(31, 100, 12, 100, method="log", compare="ratio")
    assert res.relative_ci[0] == pytest.approx(low - 1, rel=1e-9)
    assert res.relative_ci[1] == pytest.approx(high - 1, rel=1e-9)
    assert res.relative_ci[0] > -1


def test_noninferiority_matches_statsmodels_one_sided_welch(skewed):
    c, t = skewed
    comp = welch_test(ArmSummary.from_values(c), ArmSummary.from_values(t))
    margin = 0.8
    ours = noninferiority_test(
        comp.effect, comp.se, margin, higher_is_better=True, alpha=0.05, df=comp.df
    )
    stat, p, _ = sm_ttest_ind(t, c, alternative="larger", usevar="unequal", value=-margin)
    assert ours.statistic == pytest.approx(stat, rel=REL)
    assert ours.p_value == pytest.approx(p, rel=REL)
    # lower is better: H0 Δ ≥ δ, the mirror image
    ours_low = noninferiority_test(
        comp.effect, comp.se, margin, higher_is_better=False, alpha=0.05, df=comp.df
    )
    stat2, p2, _ = sm_ttest_ind(t, c, alternative="smaller", usevar="unequal", value=margin)
    assert ours_low.p_value == pytest.approx(p2, rel=REL)
    assert ours_low.statistic == pytest.approx(-stat2, rel=REL)


@pytest.mark.parametrize(
    ("estimate", "higher_is_better", "verdict"),
    [
        (0.0, True, "pass"),  # CI [-0.33, 0.33] clear of -1
        (-3.0, True, "fail"),  # whole CI below -1
        (-1.0, True, "inconclusive"),
        (0.0, False, "pass"),
        (3.0, False, "fail"),
        (1.0, False, "inconclusive"),
    ],
)
def test_noninferiority_verdicts(estimate, higher_is_better, verdict):
    res = noninferiority_test(estimate, 0.2, 1.0, higher_is_better, alpha=0.05)
    assert res.verdict == verdict


@pytest.mark.parametrize("method,sm_method", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjustment_matches_statsmodels(method, sm_method):
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, 0.04])
    expected = multipletests(p, method=sm_method)[1]
    np.testing.assert_allclose(adjust_pvalues(p, method), expected, rtol=REL)


def test_adjustment_keeps_nan_out_of_the_family():
    out = adjust_pvalues([0.01, math.nan, 0.04], "holm")
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], multipletests([0.01, 0.04], method="holm")[1])


def test_srm_reproduces_cookie_cats_published_value():
    # Cookie Cats: 44,700 vs 45,489 against 50/50 gives X² = 6.90, p = 0.0086 (README).
    res = srm_test({"gate_30": 44_700, "gate_40": 45_489}, {"gate_30": 0.5, "gate_40": 0.5})
    assert res.statistic == pytest.approx(6.90, abs=0.005)
    assert res.p_value == pytest.approx(0.0086, abs=0.00005)
    assert not res.mismatch  # flagged only at p < 0.001


def test_srm_three_arms_uneven_split_matches_chisquare():
    obs = {"a": 5_100, "b": 2_450, "c": 2_600}
    res = srm_test(obs, {"a": 2, "b": 1, "c": 1})
    ref = st.chisquare([5_100, 2_450, 2_600], np.array([0.5, 0.25, 0.25]) * 10_150)
    assert res.p_value == pytest.approx(ref.pvalue, rel=REL)
    assert res.expected_share == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.25})


def test_arm_summary_from_sums_matches_from_values():
    x, y = _ratio_data(8, 300, 0.2)
    a = ArmSummary.from_values(x, y)
    b = ArmSummary.from_sums(x.size, x.sum(), (x**2).sum(), y.sum(), (y**2).sum(), (x * y).sum())
    for field in ("mean", "var", "den_mean", "den_var", "cov"):
        assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-9)
