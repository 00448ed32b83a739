"""abkit.stats.distributions returns what scipy.stats returns, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from abkit.stats import distributions as d

rng = np.random.default_rng(24)
# the ends of the support, invalid values, signed zeros, and values in between
EDGES = [-np.inf, -40.0, -8.5, -1.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 8.5, 40.0, np.inf, np.nan]
X = np.concatenate([EDGES, rng.normal(0, 3, 200), rng.standard_cauchy(50)])
Q = np.concatenate(
    [
        [-0.1, 0.0, -0.0, 1e-300, 1e-12, 0.025, 0.5, 0.975, 1 - 1e-12, 1.0, 1.1, np.nan],
        rng.random(200),
    ]
)
DF = [-1.0, 0.0, 0.4, 1.0, 2.0, 2.5, 7.0, 30.0, 1e3, 1e9, np.inf, np.nan]


def same(ours: object, theirs: object) -> None:
    a, b = np.asarray(ours), np.asarray(theirs)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)  # NaN where SciPy has NaN
    numbers = ~np.isnan(b)  # and zeros of the same sign
    np.testing.assert_array_equal(np.signbit(a[numbers]), np.signbit(b[numbers]))


def test_normal_tail_cdf_and_quantile():
    same(d.norm_sf(X), stats.norm.sf(X))
    same(d.norm_cdf(X), stats.norm.cdf(X))
    same(d.norm_ppf(Q), stats.norm.ppf(Q))


@pytest.mark.parametrize("df", DF)
def test_student_t_tail_and_quantile(df):
    same(d.t_sf(X, df), stats.t.sf(X, df))
    same(d.t_ppf(Q, df), stats.t.ppf(Q, df))
    same(d.t_sf(X, df), stats.t(df).sf(X))


@pytest.mark.parametrize("df", DF)
def test_chi2_tail(df):
    x = np.concatenate([X, np.abs(X) * 10])
    same(d.chi2_sf(x, df), stats.chi2.sf(x, df))


def test_scalars_come_back_as_numpy_scalars():
    for ours, theirs in [
        (d.norm_sf(1.5), stats.norm.sf(1.5)),
        (d.norm_ppf(0.975), stats.norm.ppf(0.975)),
        (d.t_sf(2.0, 7.5), stats.t(7.5).sf(2.0)),
        (d.t_ppf(0.975, 7.5), stats.t(7.5).ppf(0.975)),
        (d.chi2_sf(3.0, 2), stats.chi2.sf(3.0, 2)),
    ]:
        assert type(ours) is type(theirs) and ours == theirs


@pytest.mark.parametrize("df", [np.inf, 3.0, 41.7, np.nan])
def test_reference_is_the_frozen_distribution(df):
    ref = stats.norm if np.isinf(df) else stats.t(df)
    same(d.Reference(df).sf(X), ref.sf(X))
    same(d.Reference(df).ppf(Q), ref.ppf(Q))


@pytest.mark.parametrize("arms", [2, 3, 5])
def test_chisquare_is_scipys(arms):
    for _ in range(200):
        counts = rng.integers(0, 100_000, arms).astype(float)
        shares = rng.random(arms)
        expected = counts.sum() * (shares / shares.sum())
        theirs = stats.chisquare(counts, expected)
        assert d.chisquare(counts, expected) == (float(theirs.statistic), float(theirs.pvalue))
