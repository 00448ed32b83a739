"""B2B statistics against independent computations and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import linalg
from scipy import stats as st

from abkit.stats.bootstrap import account_bootstrap
from abkit.stats.cluster import AccountArm, bell_mccaffrey_df, cr2_test, naive_cluster_z
from abkit.stats.randomization import randomization_test


def _users(seed=0, accounts=(3, 4)):
    """Small user-level data: (y, treated, account id)."""
    rng = np.random.default_rng(seed)
    rows = []
    acc = 0
    for arm, k in enumerate(accounts):
        for _ in range(k):
            n = int(rng.integers(2, 9))
            p = rng.uniform(0.2, 0.7)
            rows += [(float(rng.random() < p), arm, acc) for _ in range(n)]
            acc += 1
    y, d, g = (np.array(c) for c in zip(*rows, strict=True))
    return y, d, g.astype(int)


def _arms(y, d, g):
    out = []
    for arm in (0, 1):
        ids = np.unique(g[d == arm])
        out.append(
            AccountArm(
                np.array([y[g == i].sum() for i in ids]),
                np.array([(g == i).sum() for i in ids], dtype=float),
            )
        )
    return out


def test_cr2_equals_the_general_user_level_formula():
    """Independent: CR2 with explicit (I - H_gg)^(-1/2) on the user-level regression."""
    y, d, g = _users()
    x = np.column_stack([np.ones_like(y), d])
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ x.T @ y
    e = y - x @ beta
    meat = np.zeros((2, 2))
    for acc in np.unique(g):
        rows = g == acc
        hgg = x[rows] @ bread @ x[rows].T
        a = linalg.fractional_matrix_power(np.eye(rows.sum()) - hgg, -0.5).real
        u = x[rows].T @ a @ e[rows]
        meat += np.outer(u, u)
    v = bread @ meat @ bread
    control, treatment = _arms(y, d, g)
    res = cr2_test(control, treatment, "user")
    assert res.effect == pytest.approx(beta[1], rel=1e-12)
    assert res.se == pytest.approx(math.sqrt(v[1, 1]), rel=1e-9)


def test_bell_mccaffrey_df_equals_the_general_user_level_formula():
    """Independent: Imbens-Kolesar eq. 11 with the user-level design, working Omega = I."""
    y, d, g = _users(seed=3)
    x = np.column_stack([np.ones_like(y), d])
    n = y.size
    bread = np.linalg.inv(x.T @ x)
    h = x @ bread @ x.T
    m = np.eye(n) - h
    c = np.array([0.0, 1.0])
    cols = []
    for acc in np.unique(g):
        rows = g == acc
        a = linalg.fractional_matrix_power(np.eye(rows.sum()) - h[np.ix_(rows, rows)], -0.5).real
        cols.append(m[:, rows] @ a @ x[rows] @ bread @ c)
    gmat = np.column_stack(cols)
    eig = np.linalg.eigvalsh(gmat.T @ gmat)
    expected = eig.sum() ** 2 / (eig**2).sum()
    control, treatment = _arms(y, d, g)
    assert bell_mccaffrey_df(control.y, treatment.y) == pytest.approx(expected, rel=1e-9)


def test_cr2_with_equal_weights_is_welch_on_account_means():
    rng = np.random.default_rng(1)
    xc, xt = rng.normal(1, 1, 8), rng.normal(1.3, 2, 11)
    res = cr2_test(AccountArm(xc, np.ones(8)), AccountArm(xt, np.ones(11)), "account")
    assert res.se == pytest.approx(math.sqrt(xc.var(ddof=1) / 8 + xt.var(ddof=1) / 11), rel=1e-12)
    a, b = 1 / 11, 1 / 8
    assert res.df == pytest.approx((a + b) ** 2 / (a**2 / 10 + b**2 / 7), rel=1e-9)


def test_naive_cluster_z_equals_statsmodels_cluster_robust_cr0():
    y, d, g = _users(seed=5, accounts=(5, 6))
    fit = sm.OLS(y, sm.add_constant(d)).fit(
        cov_type="cluster", cov_kwds={"groups": g, "use_correction": False}
    )
    control, treatment = _arms(y, d, g)
    res = naive_cluster_z(control, treatment, "user")
    assert res.effect == pytest.approx(fit.params[1], rel=1e-12)
    assert res.se == pytest.approx(fit.bse[1], rel=1e-9)


def test_randomization_p_value_closed_form():
    # 3 vs 3 accounts, treatment values all above control: only the observed split and
    # its mirror are as extreme -> exact two-sided p = 2 / C(6, 3) = 0.1
    control = AccountArm(np.array([1.0, 2.0, 3.0]), np.ones(3))
    treatment = AccountArm(np.array([10.0, 11.0, 12.0]), np.ones(3))
    res = randomization_test(control, treatment, "account")
    assert res.exact and res.assignments == 20
    assert res.p_value == pytest.approx(0.1)


def test_randomization_p_value_matches_brute_force_enumeration():
    rng = np.random.default_rng(7)
    control = AccountArm(rng.poisson(20, 5).astype(float), rng.integers(40, 90, 5).astype(float))
    treatment = AccountArm(rng.poisson(28, 4).astype(float), rng.integers(40, 90, 4).astype(float))
    x = np.concatenate([control.x, treatment.x])
    y = np.concatenate([control.y, treatment.y])
    observed = treatment.x.sum() / treatment.y.sum() - control.x.sum() / control.y.sum()
    extreme = total = 0
    for chosen in itertools.combinations(range(9), 4):
        t = np.zeros(9, bool)
        t[list(chosen)] = True
        diff = x[t].sum() / y[t].sum() - x[~t].sum() / y[~t].sum()
        extreme += abs(diff) >= abs(observed) - 1e-12
        total += 1
    res = randomization_test(control, treatment, "user")
    assert res.p_value == pytest.approx(extreme / total, rel=1e-12)


def test_stratified_re_assignments_keep_each_stratum_treated_count():
    control = AccountArm(np.arange(4.0), np.ones(4))
    treatment = AccountArm(np.arange(4.0) + 5, np.ones(4))
    strata = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    res = randomization_test(control, treatment, "account", strata=strata)
    assert res.assignments == math.comb(4, 2) ** 2  # 2 treated of 4 in each stratum


def test_randomization_interval_endpoints_are_where_the_test_starts_rejecting():
    rng = np.random.default_rng(3)
    control = AccountArm(rng.normal(0, 1, 7), np.ones(7))
    treatment = AccountArm(rng.normal(0.8, 1, 7), np.ones(7))
    res = randomization_test(control, treatment, "account")
    lo, hi = res.ci
    assert lo < res.effect < hi
    shifted = lambda delta: AccountArm(treatment.x - delta, treatment.y)  # noqa: E731
    assert randomization_test(control, shifted(lo + 1e-6), "account", invert=False).p_value > 0.05
    assert randomization_test(control, shifted(lo - 0.05), "account", invert=False).p_value <= 0.05


def test_bootstrap_variance_matches_its_closed_form_limit():
    """For account-weighted means the bootstrap variance of an arm mean tends to
    sum((r - mean)^2) / n^2 per arm."""
    rng = np.random.default_rng(11)
    rc, rt = rng.normal(0.3, 0.1, 12), rng.normal(0.35, 0.12, 15)
    res = account_bootstrap(
        AccountArm(rc, np.ones(12)),
        AccountArm(rt, np.ones(15)),
        "account",
        resamples=200_000,
        seed=1,
    )
    expected = ((rc - rc.mean()) ** 2).sum() / 144 + ((rt - rt.mean()) ** 2).sum() / 225
    assert res.effects.var() == pytest.approx(expected, rel=0.01)
    assert res.effects.mean() == pytest.approx(
        rt.mean() - rc.mean(), abs=3 * math.sqrt(expected / 200_000)
    )


def test_bootstrap_is_deterministic_given_the_seed():
    arm = AccountArm(np.array([3.0, 5, 9, 2]), np.array([10.0, 12, 30, 8]))
    other = AccountArm(np.array([4.0, 6, 1, 7]), np.array([11.0, 15, 5, 20]))
    a = account_bootstrap(arm, other, "user", 500, seed=4)
    b = account_bootstrap(arm, other, "user", 500, seed=4)
    np.testing.assert_array_equal(a.effects, b.effects)
    assert not np.array_equal(a.effects, account_bootstrap(arm, other, "user", 500, seed=5).effects)


def test_bca_reduces_to_percentile_for_a_symmetric_unbiased_case():
    # with z0 = 0 and acceleration 0, BCa = percentile: use perfectly symmetric arms
    c = AccountArm(np.array([1.0, 2, 3, 4, 5]), np.ones(5))
    t = AccountArm(np.array([1.0, 2, 3, 4, 5]) + 10, np.ones(5))
    res = account_bootstrap(c, t, "account", 20_000, seed=2)
    assert res.bca == pytest.approx(res.percentile, abs=0.05)
    assert st.skew(res.effects) == pytest.approx(0, abs=0.05)


def test_relative_interval_endpoints_are_where_the_multiplicative_test_rejects():
    rng = np.random.default_rng(5)
    control = AccountArm(rng.poisson(30, 9).astype(float), rng.integers(80, 200, 9).astype(float))
    treatment = AccountArm(rng.poisson(42, 9).astype(float), rng.integers(80, 200, 9).astype(float))
    res = randomization_test(control, treatment, "user")
    lo, hi = res.relative_ci
    lift = treatment.estimate("user") / control.estimate("user") - 1
    assert lo < lift < hi

    def scaled(factor):
        return AccountArm(treatment.x / factor, treatment.y)

    def p(factor):
        return randomization_test(control, scaled(factor), "user", invert=False).p_value

    assert p(1 + hi - 1e-6) > 0.05 and p(1 + hi + 0.05) <= 0.05
    assert p(1 + lo + 1e-6) > 0.05 and p(1 + lo - 0.05) <= 0.05


def test_relative_interval_can_be_unbounded_with_very_few_accounts():
    control = AccountArm(np.array([3.0, 9.0]), np.array([10.0, 10.0]))
    treatment = AccountArm(np.array([4.0, 8.0]), np.array([10.0, 10.0]))
    res = randomization_test(control, treatment, "user")
    assert res.relative_ci[1] == math.inf or res.relative_ci[0] == -1.0
    assert all(abs(v) < 1e6 or math.isinf(v) for v in (*res.ci, *res.relative_ci))


def test_guardrail_randomisation_test_matches_brute_force_at_the_margin():
    """Independent path: shift the treated accounts to the margin by hand and count the
    one-sided extreme re-assignments by enumeration."""
    from abkit.stats.randomization import randomization_noninferiority

    rng = np.random.default_rng(9)
    control = AccountArm(rng.poisson(20, 5).astype(float), rng.integers(40, 90, 5).astype(float))
    treatment = AccountArm(rng.poisson(19, 5).astype(float), rng.integers(40, 90, 5).astype(float))
    margin = 0.04  # lower is better: H0 effect >= +0.04
    x = np.concatenate([control.x, treatment.x - margin * treatment.y])
    y = np.concatenate([control.y, treatment.y])
    t_obs = np.r_[np.zeros(5, bool), np.ones(5, bool)]

    def diff(t):
        return x[t].sum() / y[t].sum() - x[~t].sum() / y[~t].sum()

    observed, below = diff(t_obs), 0
    for chosen in itertools.combinations(range(10), 5):
        t = np.zeros(10, bool)
        t[list(chosen)] = True
        below += diff(t) <= observed + 1e-12
    res = randomization_noninferiority(control, treatment, "user", margin, False, False)
    assert res.exact and res.assignments == 252
    assert res.p_value == pytest.approx(below / 252, rel=1e-12)
    # relative margin: treated numerators divided by 1 + margin
    rel = randomization_noninferiority(control, treatment, "user", 0.2, True, False)
    x = np.concatenate([control.x, treatment.x / 1.2])
    observed = diff(t_obs)
    below = sum(
        diff(np.isin(np.arange(10), c)) <= observed + 1e-12
        for c in itertools.combinations(range(10), 5)
    )
    assert rel.p_value == pytest.approx(below / 252, rel=1e-12)


def test_unattainable_sides_are_unbounded_not_a_search_cap():
    # 2 vs 2 accounts: 6 re-assignments, smallest two-sided p = 2/6 > 0.05
    control = AccountArm(np.array([3.0, 9.0]), np.array([10.0, 10.0]))
    treatment = AccountArm(np.array([4.0, 8.0]), np.array([10.0, 10.0]))
    res = randomization_test(control, treatment, "user")
    assert res.ci == (-math.inf, math.inf)
    assert res.relative_ci == (-1.0, math.inf)


def test_resample_counts_follow_the_multinomial_law():
    """Counts of n draws with replacement among n items: each row sums to n; per item
    mean 1, variance 1 − 1/n and covariance −1/n between items (multinomial(n, 1/n)),
    within Monte Carlo error over 200,000 resamples."""
    from abkit.stats.bootstrap import resample_counts

    n, b = 7, 200_000
    counts = resample_counts(np.random.default_rng(3), n, b)
    assert counts.shape == (b, n) and np.all(counts.sum(axis=1) == n)
    cov = np.cov(counts, rowvar=False)
    se = 4 * np.sqrt(2 / b)  # a few standard errors of a variance near 1
    assert np.allclose(counts.mean(axis=0), 1.0, atol=4 * np.sqrt(1 / b))
    assert np.allclose(np.diag(cov), 1 - 1 / n, atol=se)
    assert np.allclose(cov[~np.eye(n, dtype=bool)], -1 / n, atol=se)
