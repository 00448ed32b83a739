"""The t prior's posterior by quadrature (abkit.stats.bayesian.t_prior_posterior)
against scipy's adaptive integration of the same density, its limit the conjugate
normal as ν grows, and the reading that uses it when the archive's prior is a t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy import stats as st

from abkit.stats.bayesian import NormalPrior, normal_posterior, summarize, t_prior_posterior


def _reference(estimate, se, mu, scale, df):
    """Posterior moments and quantiles by scipy.integrate.quad of the unnormalised
    density φ((θ̂ − θ)/se)·t_ν((θ − μ)/s)."""

    def density(theta):
        return st.norm.pdf(estimate, theta, se) * st.t.pdf(theta, df, mu, scale)

    lo, hi = estimate - 12 * se, estimate + 12 * se
    total = integrate.quad(density, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
    mean = integrate.quad(lambda t: t * density(t), lo, hi, epsrel=1e-12, limit=200)[0] / total

    def cdf(x):
        return integrate.quad(density, lo, x, epsabs=0, epsrel=1e-12, limit=200)[0] / total

    q975 = optimize.brentq(lambda x: cdf(x) - 0.975, lo, hi, xtol=1e-12)
    return mean, cdf(0.0), q975


@pytest.mark.parametrize(
    ("estimate", "se", "mu", "scale", "df"),
    [(0.01, 0.01, 0.0, 0.01, 3.0), (0.10, 0.01, 0.0, 0.01, 3.0), (-0.03, 0.02, 0.005, 0.02, 5.0)],
)
def test_quadrature_matches_scipy_integration(estimate, se, mu, scale, df):
    law, theta_mean = t_prior_posterior(estimate, se, mu, scale, df)
    mean, below_zero, q975 = _reference(estimate, se, mu, scale, df)
    assert theta_mean == pytest.approx(mean, abs=1e-7)
    assert law.mean() == pytest.approx(mean, abs=1e-7)
    assert law.cdf(0.0) == pytest.approx(below_zero, abs=1e-6)
    assert law.ppf(0.975) == pytest.approx(q975, abs=1e-6)


def test_a_t_prior_with_many_degrees_of_freedom_is_the_normal_one():
    law, _ = t_prior_posterior(0.02, 0.01, 0.0, 0.015, 1e7)
    post = normal_posterior(0.02, 0.01, NormalPrior(0.0, 0.015))
    from abkit.stats.bayesian import NormalLaw

    normal = summarize(NormalLaw(post.mean, post.sd))
    grid = summarize(law)
    assert grid.mean == pytest.approx(normal.mean, abs=1e-7)
    assert grid.interval == pytest.approx(normal.interval, abs=1e-6)
    assert grid.chance_to_win == pytest.approx(normal.chance_to_win, abs=1e-6)
    assert grid.risk_ship == pytest.approx(normal.risk_ship, abs=1e-8)


def test_the_lift_transform_is_the_exponential_of_the_log_ratio():
    law, theta_mean = t_prior_posterior(math.log(1.05), 0.02, 0.0, 0.03, 4.0, transform="lift")
    plain, _ = t_prior_posterior(math.log(1.05), 0.02, 0.0, 0.03, 4.0)
    assert law.ppf(0.5) == pytest.approx(math.expm1(plain.ppf(0.5)), rel=1e-6)
    assert law.cdf(0.0) == pytest.approx(plain.cdf(0.0), abs=1e-8)
    assert law.mean() > math.expm1(theta_mean)  # Jensen: E[e^θ] > e^E[θ]
    assert np.all(np.diff(law.values) > 0)


def test_a_t_prior_learnt_from_the_archive_is_read_by_quadrature(tmp_path):
    """An archive of fat-tailed lifts (t with 3 degrees of freedom) and
    ``family = "t"``: the reading's posterior is the t prior's, by quadrature, not the
    normal of the t's variance."""
    import polars as pl

    import abkit
    from abkit.analysis.bayesian import log_ratio_and_se
    from abkit.archive import Archive, rows_from_result

    rng = np.random.default_rng(11)
    n = 4000
    variant = np.array(["control", "treatment"] * (n // 2))
    units = pl.DataFrame(
        {
            "user_id": range(n),
            "variant": variant,
            "revenue": rng.gamma(2.0, 5.0, n) * np.where(variant == "treatment", 1.02, 1.0),
        }
    )
    result = abkit.analyze(units, title="pricing-copy")
    archive = Archive(tmp_path / "archive")
    for i in range(60):
        lift = 0.01 + 0.01 * rng.standard_t(3)
        archive.append(
            rows_from_result(result).with_columns(
                experiment=pl.lit(f"past-{i}"),
                log_ratio=pl.lit(float(lift) + float(rng.normal(0, 0.005))),
                log_ratio_se=pl.lit(0.005),
            )
        )
    config = {"bayesian": {"archive": str(tmp_path / "archive"), "family": "t"}}
    reading = abkit.analyze(units, config, title="pricing-copy").results[0].bayesian
    fitted = archive.prior("revenue", family="t", exclude="pricing-copy")
    assert fitted.family == "t" and not fitted.fallback
    assert reading.model.startswith("t prior")
    r = abkit.analyze(units, title="pricing-copy").results[0]
    log_est, log_se = log_ratio_and_se(r, 0.05)
    law, _ = t_prior_posterior(log_est, log_se, fitted.mean, fitted.sd, fitted.df, "lift")
    expected = summarize(law)
    assert reading.relative.mean == pytest.approx(expected.mean, rel=1e-9)
    assert reading.relative.interval == pytest.approx(expected.interval, rel=1e-9)
    assert reading.relative.chance_to_win == pytest.approx(expected.chance_to_win, abs=1e-12)
