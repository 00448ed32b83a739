"""Priors learnt from past experiments: the τ² estimators against statsmodels and the
REML likelihood, recovery of μ and τ from a simulated archive of 200 experiments, and
the mean squared error that shrinkage removes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize
from statsmodels.stats.meta_analysis import combine_effects

from abkit.stats.bayesian import NormalPrior
from abkit.stats.empirical_bayes import (
    fit_prior,
    shrink,
    tau2_dersimonian_laird,
    tau2_paule_mandel,
    tau2_reml,
)
from tests.conftest import mc_reps

MU, TAU = 0.01, 0.03


def _archive(rng, k=200, mu=MU, tau=TAU, fat=False):
    """k past experiments: true lifts θ ~ N(μ, τ²) (or μ + τ·t₃/√3), estimates y ~ N(θ, s²)."""
    se = rng.uniform(0.01, 0.05, k)
    theta = mu + tau * (rng.standard_t(3, k) / math.sqrt(3) if fat else rng.normal(size=k))
    return theta, theta + rng.normal(0, se), se


def test_moment_estimators_match_statsmodels():
    rng = np.random.default_rng(3)
    _, y, se = _archive(rng, k=40)
    v = se * se
    assert tau2_dersimonian_laird(y, v) == pytest.approx(
        combine_effects(y, v, method_re="chi2").tau2, rel=1e-12
    )
    # statsmodels iterates Paule-Mandel to its own tolerance
    assert tau2_paule_mandel(y, v) == pytest.approx(
        combine_effects(y, v, method_re="iterated").tau2, rel=1e-6
    )


def test_reml_maximises_the_restricted_likelihood():
    rng = np.random.default_rng(4)
    _, y, se = _archive(rng, k=40)
    v = se * se

    def neg_reml(tau2):
        w = 1 / (v + tau2)
        mu = w @ y / w.sum()
        return 0.5 * (np.log(v + tau2).sum() + math.log(w.sum()) + w @ (y - mu) ** 2)

    best = optimize.minimize_scalar(
        neg_reml, bounds=(0, 0.1), method="bounded", options={"xatol": 1e-14}
    )
    assert tau2_reml(y, v) == pytest.approx(best.x, rel=1e-6)


def test_no_spread_beyond_noise_gives_tau_zero():
    rng = np.random.default_rng(5)
    se = np.full(50, 0.02)
    y = 0.01 + rng.normal(0, se)
    y = 0.01 + (y - y.mean()) * 0.5  # less spread than the noise alone
    for method in ("reml", "paule-mandel", "dersimonian-laird"):
        f = fit_prior(y, se, method=method)
        assert f.sd == 0.0 and f.mean == pytest.approx(0.01)


def test_fallback_below_the_minimum_says_so():
    f = fit_prior([0.01] * 9, [0.01] * 9)
    assert f.fallback and f.experiments == 9
    assert (f.mean, f.sd) == (0.0, 0.3)
    assert "fewer than 10" in f.note and "default prior" in f.note
    f = fit_prior([0.01] * 3, [0.01] * 3, minimum=3, default=NormalPrior(0.0, 0.1))
    assert not f.fallback
    f = fit_prior([0.01, math.nan], [0.01, 0.01], minimum=1)
    assert f.fallback and f.experiments == 1  # NaN pairs are left out, and 2 are needed


def test_normal_shrinkage_formula():
    f = fit_prior(*_archive(np.random.default_rng(6))[1:])
    s = shrink([0.1, -0.05], [0.02, 0.04], f)
    b = np.array([0.02, 0.04]) ** 2 / (np.array([0.02, 0.04]) ** 2 + f.sd**2)
    assert s.shrinkage == pytest.approx(b, rel=1e-14)
    assert s.mean == pytest.approx((1 - b) * np.array([0.1, -0.05]) + b * f.mean, rel=1e-14)
    assert s.sd == pytest.approx(np.sqrt(1 - b) * np.array([0.02, 0.04]), rel=1e-14)


@pytest.mark.calibration
@pytest.mark.parametrize("method", ["reml", "paule-mandel", "dersimonian-laird"])
def test_archive_of_200_recovers_mu_tau_and_shrinkage_lowers_mse(method):
    """Over many simulated archives of 200 experiments the fitted μ and τ are unbiased to
    within simulation error, one archive's fit is within 4 of its standard errors, and
    the shrunk estimates' mean squared error is well below the raw ones'."""
    archives = max(50, mc_reps() // 10)
    rng = np.random.default_rng(7)
    mus, taus, raw, shrunk = [], [], [], []
    for _ in range(archives):
        theta, y, se = _archive(rng)
        f = fit_prior(y, se, method=method)
        mus.append(f.mean)
        taus.append(f.sd)
        raw.append(np.mean((y - theta) ** 2))
        shrunk.append(np.mean((shrink(y, se, f).mean - theta) ** 2))
    mus, taus = np.array(mus), np.array(taus)
    reduction = 1 - np.mean(shrunk) / np.mean(raw)
    print(
        f"\n{method}: {archives} archives of 200: mean μ̂ {mus.mean():.5f} (sd {mus.std():.5f}),"
        f" mean τ̂ {taus.mean():.5f} (sd {taus.std():.5f}); MSE raw {np.mean(raw):.3e},"
        f" shrunk {np.mean(shrunk):.3e}: {reduction:.1%} lower"
    )
    assert abs(mus.mean() - MU) <= 4 * mus.std() / math.sqrt(archives)
    # τ̂ is biased by O(1/k) (the floor at 0, the square root); 1 % of τ at k = 200
    assert abs(taus.mean() - TAU) <= 4 * taus.std() / math.sqrt(archives) + 0.01 * TAU
    assert abs(mus[0] - MU) <= 4 * mus.std() and abs(taus[0] - TAU) <= 4 * taus.std()
    assert reduction > 0.25
    assert np.mean(np.array(shrunk) < np.array(raw)) > 0.95  # archive by archive


@pytest.mark.calibration
def test_t_prior_fits_fat_tails_and_shrinks_at_least_as_well():
    """Lifts with t₃ tails: the t prior finds a small ν and its shrinkage has no larger
    mean squared error than the normal prior's (large true effects are shrunk less)."""
    archives = max(10, mc_reps() // 100)
    rng = np.random.default_rng(8)
    nus, mse_t, mse_n, mse_raw = [], [], [], []
    for _ in range(archives):
        theta, y, se = _archive(rng, fat=True, tau=0.05)
        ft, fn = fit_prior(y, se, family="t"), fit_prior(y, se)
        nus.append(ft.df)
        mse_t.append(np.mean((shrink(y, se, ft).mean - theta) ** 2))
        mse_n.append(np.mean((shrink(y, se, fn).mean - theta) ** 2))
        mse_raw.append(np.mean((y - theta) ** 2))
    print(
        f"\nt prior: {archives} archives, median ν̂ {np.median(nus):.2f}; MSE raw "
        f"{np.mean(mse_raw):.3e}, normal prior {np.mean(mse_n):.3e}, t prior {np.mean(mse_t):.3e}"
    )
    assert np.median(nus) < 10
    assert np.mean(mse_t) <= np.mean(mse_n) * 1.01
    assert np.mean(mse_n) < np.mean(mse_raw)
