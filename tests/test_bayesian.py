"""The Bayesian reading in closed form: the conjugate-normal update, the normal and
lognormal partial expectations by numerical integration, the Beta-Binomial against
scipy.stats.beta integrals and Evan Miller's closed form, several arms, the rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as st

from abkit.stats.bayesian import (
    FLAT_PRIOR,
    BayesRule,
    BetaDifferenceLaw,
    BetaPrior,
    LogNormalLiftLaw,
    NormalLaw,
    NormalPrior,
    PosteriorSummary,
    bayes_verdict,
    bayesian_comparison,
    best_arm_beta,
    best_arm_normal,
    beta_binomial_comparison,
    chance_beta_beats,
    normal_posterior,
    relative_model,
)


def _quad(f, lo, hi):
    value, _ = integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400)
    return value


# --- conjugate normal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("est", "se", "m0", "s0"), [(0.1, 0.05, 0.0, 0.3), (-0.4, 0.2, 0.05, 0.1), (3.0, 1.0, 2.0, 0.5)]
)
def test_conjugate_normal_update(est, se, m0, s0):
    p = normal_posterior(est, se, NormalPrior(m0, s0))
    precision = 1 / se**2 + 1 / s0**2
    assert p.sd == pytest.approx(precision**-0.5, rel=1e-14)
    assert p.mean == pytest.approx((est / se**2 + m0 / s0**2) / precision, rel=1e-13)
    assert p.shrinkage == pytest.approx(se**2 / (se**2 + s0**2), rel=1e-14)
    # the posterior density is proportional to likelihood × prior
    grid = np.linspace(p.mean - 3 * p.sd, p.mean + 3 * p.sd, 7)
    ratio = st.norm.pdf(est, grid, se) * st.norm.pdf(grid, m0, s0) / st.norm.pdf(grid, p.mean, p.sd)
    assert np.allclose(ratio, ratio[0], rtol=1e-10)


def test_flat_prior_is_the_likelihood_and_bad_se_is_nan():
    p = normal_posterior(0.2, 0.1, FLAT_PRIOR)
    assert (p.mean, p.sd, p.shrinkage) == (0.2, 0.1, 0.0)
    assert math.isnan(normal_posterior(0.2, 0.0, NormalPrior()).mean)
    assert math.isnan(normal_posterior(0.2, math.nan, NormalPrior()).sd)


@pytest.mark.parametrize(("m", "s"), [(0.02, 0.01), (-0.3, 0.5), (0.0, 2.0)])
def test_normal_partial_expectations_by_integration(m, s):
    law = NormalLaw(m, s)
    pos = _quad(lambda x: x * st.norm.pdf(x, m, s), 0, m + 40 * s)
    neg = _quad(lambda x: -x * st.norm.pdf(x, m, s), m - 40 * s, 0)
    assert law.positive_part() == pytest.approx(pos, abs=1e-12)
    assert law.negative_part() == pytest.approx(neg, abs=1e-12)
    assert law.positive_part() - law.negative_part() == pytest.approx(m, abs=1e-14)


@pytest.mark.parametrize(("m", "s"), [(0.05, 0.03), (-0.2, 0.4), (0.0, 1.0)])
def test_lognormal_lift_by_integration(m, s):
    law = LogNormalLiftLaw(m, s)
    ln = st.lognorm(s, scale=math.exp(m))  # e^θ
    assert law.mean() == pytest.approx(ln.mean() - 1, rel=1e-12)
    assert law.ppf(0.975) == pytest.approx(ln.ppf(0.975) - 1, rel=1e-12)
    assert law.cdf(0.1) == pytest.approx(ln.cdf(1.1), rel=1e-12)
    hi = ln.isf(1e-15)
    pos = _quad(lambda y: (y - 1) * ln.pdf(y), 1, hi)
    neg = _quad(lambda y: (1 - y) * ln.pdf(y), 0, 1)
    assert law.positive_part() == pytest.approx(pos, abs=1e-11)
    assert law.negative_part() == pytest.approx(neg, abs=1e-11)


def test_direction_swaps_chance_and_losses():
    up = bayesian_comparison(10.0, 10.4, 0.04, 0.05)
    down = bayesian_comparison(10.0, 10.4, 0.04, 0.05, higher_is_better=False)
    for a, b in ((up.relative, down.relative), (up.absolute, down.absolute)):
        assert a.chance_to_win == pytest.approx(1 - b.chance_to_win, abs=1e-15)
        assert (a.risk_ship, a.risk_keep) == (b.risk_keep, b.risk_ship)
        assert a.mean == b.mean and a.interval == b.interval


def test_log_model_against_its_definition():
    c, t, vc, vt = 0.20, 0.23, 0.004**2, 0.005**2
    prior = NormalPrior(0.01, 0.05)
    r = bayesian_comparison(c, t, vc, vt, prior=prior, scale="log", alpha=0.1)
    est, se = math.log(t / c), math.sqrt(vt / t**2 + vc / c**2)
    assert relative_model(c, t, vc, vt, "log") == pytest.approx((est, se), rel=1e-14)
    p = normal_posterior(est, se, prior)
    assert r.posterior == p
    assert r.relative.chance_to_win == pytest.approx(st.norm.sf(0, p.mean, p.sd), rel=1e-13)
    lo, hi = st.norm.ppf([0.05, 0.95], p.mean, p.sd)
    assert r.relative.interval == pytest.approx((math.expm1(lo), math.expm1(hi)), rel=1e-12)
    # the absolute posterior: the relative prior in metric units (× |C|)
    a = normal_posterior(t - c, math.sqrt(vc + vt), NormalPrior(0.01 * c, 0.05 * c))
    assert r.absolute.mean == pytest.approx(a.mean, rel=1e-13)


def test_harm_probability_closed_form():
    c, t, vc, vt = 1.0, 0.985, 0.01**2, 0.01**2
    r = bayesian_comparison(c, t, vc, vt, scale="lift", margin=0.02, prior=FLAT_PRIOR)
    est, se = relative_model(c, t, vc, vt, "lift")
    expected = st.norm.cdf(-0.02, est, se)
    assert r.harm is not None
    assert r.harm.probability == pytest.approx(expected, rel=1e-12)
    assert r.harm.verdict == "inconclusive"
    # lower is better: harm is a rise beyond the margin, on metric units here
    r = bayesian_comparison(
        c, 1.05, vc, vt, higher_is_better=False, margin=0.02, margin_scale="absolute"
    )
    assert r.harm is not None and r.harm.verdict == "fail"
    assert r.harm.probability > 0.95


# --- Beta-Binomial -------------------------------------------------------------------


def _miller(a_c, b_c, a_t, b_t):
    """Evan Miller's closed form of P(p_T > p_C), integer a_T."""
    return sum(
        math.exp(
            special.betaln(a_c + i, b_c + b_t)
            - math.log(b_t + i)
            - special.betaln(1 + i, b_t)
            - special.betaln(a_c, b_c)
        )
        for i in range(int(a_t))
    )


BETAS = [(3, 9, 6, 6), (1, 6, 2, 5), (41, 3, 50, 2), (301, 3701, 371, 3631), (3, 10, 2001, 8001)]


@pytest.mark.parametrize(("a_c", "b_c", "a_t", "b_t"), BETAS)
def test_beta_chance_to_win_closed_form(a_c, b_c, a_t, b_t):
    assert chance_beta_beats(a_c, b_c, a_t, b_t) == pytest.approx(
        _miller(a_c, b_c, a_t, b_t), abs=1e-9
    )


@pytest.mark.parametrize(("a_c", "b_c", "a_t", "b_t"), BETAS[:3])
def test_beta_laws_against_scipy_integrals(a_c, b_c, a_t, b_t):
    """Each quantity against scipy.stats.beta integrated by QUADPACK, through identities
    other than the ones the implementation uses: E[(X − Y)⁺] = ∫ F_Y(t)(1 − F_X(t)) dt,
    E[(x − Y)⁺] = ∫₀ˣ F_Y(t) dt inside the relative losses, E[1/X] by its own integral."""
    fc, ft = st.beta(a_c, b_c), st.beta(a_t, b_t)
    diff = BetaDifferenceLaw(a_c, b_c, a_t, b_t, relative=False)
    rel = BetaDifferenceLaw(a_c, b_c, a_t, b_t, relative=True)
    assert diff.negative_part() == pytest.approx(
        _quad(lambda t: ft.cdf(t) * fc.sf(t), 0, 1), abs=1e-10
    )
    assert diff.positive_part() == pytest.approx(
        _quad(lambda t: fc.cdf(t) * ft.sf(t), 0, 1), abs=1e-10
    )

    def below(x):  # E[(x − Y)⁺]
        return _quad(ft.cdf, 0, x)

    def above(x):  # E[(Y − x)⁺]
        return _quad(ft.sf, x, 1)

    lo, hi = fc.ppf(1e-13), fc.isf(1e-13)
    rel_neg = _quad(lambda x: fc.pdf(x) * below(x) / x, lo, hi)
    assert rel.negative_part() == pytest.approx(rel_neg, rel=1e-8, abs=1e-10)
    if a_c > 1:
        rel_pos = _quad(lambda x: fc.pdf(x) * above(x) / x, lo, hi)
        assert rel.positive_part() == pytest.approx(rel_pos, rel=1e-8, abs=1e-10)
    else:  # f_C(0) > 0: E[(Y/X − 1)⁺] diverges as ∫ dx/x near 0
        assert math.isinf(rel.positive_part())
    assert diff.mean() == pytest.approx(ft.mean() - fc.mean(), abs=1e-15)
    if a_c > 1:
        inverse_mean = _quad(lambda x: fc.pdf(x) / x, 0, 1)
        assert rel.mean() == pytest.approx(ft.mean() * inverse_mean - 1, rel=1e-9)
    for d in (-0.1, 0.0, 0.05):
        f = _quad(lambda x, d=d: fc.pdf(x) * ft.cdf(min(1.0, max(0.0, x + d))), 0, 1)
        assert diff.cdf(d) == pytest.approx(f, abs=1e-9)
        g = _quad(lambda x, d=d: fc.pdf(x) * ft.cdf(min(1.0, (1 + d) * x)), 0, 1)
        assert rel.cdf(d) == pytest.approx(g, abs=1e-9)
    for q in (0.025, 0.5, 0.975):
        assert diff.cdf(diff.ppf(q)) == pytest.approx(q, abs=1e-10)
        assert rel.cdf(rel.ppf(q)) == pytest.approx(q, abs=1e-10)


def test_beta_binomial_comparison_and_normal_agree_with_many_units():
    exact = beta_binomial_comparison(4100, 50_000, 4380, 50_000, prior=BetaPrior(1, 1))
    c, t = 4101 / 50_002, 4381 / 50_002
    normal = bayesian_comparison(
        c, t, c * (1 - c) / 50_002, t * (1 - t) / 50_002, prior=FLAT_PRIOR, scale="absolute"
    )
    assert exact.absolute.chance_to_win == pytest.approx(normal.absolute.chance_to_win, abs=2e-3)
    assert exact.absolute.interval == pytest.approx(normal.absolute.interval, abs=2e-4)
    assert exact.relative.chance_to_win == exact.absolute.chance_to_win


def test_beta_binomial_with_few_units_against_draws():
    """0 of 12 against 3 of 12: the normal approximation has no variance in control, the
    exact posteriors Beta(1, 13) and Beta(4, 10) do; a million draws agree with them."""
    exact = beta_binomial_comparison(0, 12, 3, 12)
    rng = np.random.default_rng(5)
    x, y = rng.beta(1, 13, 1_000_000), rng.beta(4, 10, 1_000_000)
    d = y - x
    assert exact.absolute.chance_to_win == pytest.approx((d > 0).mean(), abs=2e-3)
    assert exact.absolute.interval == pytest.approx(np.quantile(d, [0.025, 0.975]), abs=2e-3)
    assert exact.absolute.risk_ship == pytest.approx(np.maximum(-d, 0).mean(), rel=0.02)
    assert exact.relative.risk_ship == pytest.approx(np.maximum(1 - y / x, 0).mean(), rel=0.02)
    assert math.isinf(exact.relative.mean)  # E[1/p_C] diverges under Beta(1, 13)
    assert math.isinf(exact.relative.risk_keep)


# --- several arms --------------------------------------------------------------------


def test_best_arm_with_one_treatment_is_chance_to_win_and_risk():
    c, vc, t, vt = 0.10, 0.002**2, 0.104, 0.002**2
    draws = 400_000
    b = best_arm_normal(c, vc, np.array([t]), np.array([vt]), draws=draws, seed=3)
    r = bayesian_comparison(c, t, vc, vt)
    ctw = r.relative.chance_to_win
    assert b.chance_to_be_best[1] == pytest.approx(ctw, abs=4 * math.sqrt(ctw * (1 - ctw) / draws))
    assert sum(b.chance_to_be_best) == pytest.approx(1.0)
    # shipping the treatment forgoes control's advantage when it has one: the risk
    assert b.expected_loss[1] == pytest.approx(r.relative.risk_ship, rel=0.05, abs=2e-5)
    assert b.expected_loss[0] == pytest.approx(r.relative.risk_keep, rel=0.01)


def test_best_arm_beta_with_two_arms_is_the_exact_chance():
    b = best_arm_beta(np.array([2, 5]), np.array([10, 10]), draws=400_000, seed=1)
    exact = chance_beta_beats(3, 9, 6, 6)
    assert b.chance_to_be_best[1] == pytest.approx(exact, abs=4 * math.sqrt(0.09 / 400_000))


def test_best_arm_shares_control_noise():
    """Two identical precise treatments against a noisy control: control is best only
    when its own draw exceeds both (their errors share control's), and the treatments
    split the rest evenly."""
    t = np.array([0.12, 0.12])
    v = np.array([1e-6, 1e-6])
    b = best_arm_normal(0.10, 4e-4, t, v, prior=FLAT_PRIOR, draws=200_000, seed=2)
    # control is best when both log ratios are negative: a bivariate normal orthant
    cov = np.full((2, 2), 4e-4 / 0.10**2) + np.diag(v / t**2)
    p0 = st.multivariate_normal(np.log(t / 0.10), cov).cdf(np.zeros(2))
    assert b.chance_to_be_best[0] == pytest.approx(p0, abs=0.01)
    assert b.chance_to_be_best[1] == pytest.approx((1 - p0) / 2, abs=0.01)
    assert b.chance_to_be_best[2] == pytest.approx((1 - p0) / 2, abs=0.01)
    b2 = best_arm_normal(0.10, 4e-4, t, v, prior=FLAT_PRIOR, draws=200_000, seed=2)
    assert b2 == b  # seeded


# --- the rule ------------------------------------------------------------------------


def test_rule_and_defaults():
    rule = BayesRule()
    assert (rule.chance, rule.tolerance) == (0.95, 0.0025)
    ship = PosteriorSummary(0.04, (0.01, 0.07), 0.99, 0.0002, 0.04)
    assert bayes_verdict(ship) == "better"
    assert bayes_verdict(ship, BayesRule(0.995, 0.0025)) == "inconclusive"
    assert bayes_verdict(ship, BayesRule(0.95, 0.0001)) == "inconclusive"
    harm = PosteriorSummary(-0.04, (-0.07, -0.01), 0.01, 0.04, 0.0002)
    assert bayes_verdict(harm) == "worse"
    nan = math.nan
    assert bayes_verdict(PosteriorSummary(nan, (nan, nan), nan, nan, nan)) == "not computable"
