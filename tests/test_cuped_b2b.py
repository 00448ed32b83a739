"""CUPED in B2B mode: the covariate-adjusted randomisation test keeps its exact size,
the adjusted CR2 equals statsmodels' WLS HC2, and adjustment buys power."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import statsmodels.api as sm

import abkit
from abkit.dev.simulate import simulate
from abkit.result import AccountDetail
from abkit.stats.cluster import AccountArm, cr2_adjusted, cr2_test
from abkit.stats.randomization import randomization_test
from tests.conftest import mc_reps


def _accounts(rng, n, effect=0.0):
    """Heavy-tailed account sizes; the account's pre-period usage per seat predicts its
    usage per seat in the experiment."""
    size = np.round(rng.lognormal(3.0, 1.0, n)) + 1
    habit = rng.gamma(2.0, 1.0, n)
    pre = rng.poisson(size * habit).astype(float)
    x = rng.poisson(size * habit * (1 + effect) * rng.lognormal(0, 0.2, n)).astype(float)
    return x, size, pre


def _arms(x, y, z, treated):
    def arm(mask):
        return AccountArm(x[mask], y[mask], z=z[mask][:, None], covariates=("pre",))

    return arm(~treated), arm(treated)


@pytest.mark.parametrize("weighting", ["user", "account"])
def test_adjusted_randomisation_test_has_exact_size_at_six_accounts_per_arm(weighting):
    """Every one of the C(12, 6) = 924 possible assignments taken in turn as the observed
    one: the share with p <= alpha is at most alpha (the definition of an exact test)."""
    x, y, z = _accounts(np.random.default_rng(1), 12)
    p_values = []
    for chosen in itertools.combinations(range(12), 6):
        treated = np.zeros(12, bool)
        treated[list(chosen)] = True
        control, treatment = _arms(x, y, z, treated)
        p_values.append(randomization_test(control, treatment, weighting, invert=False).p_value)
    p = np.array(p_values)
    for alpha in (0.05, 0.1, 0.2):
        assert np.mean(p <= alpha + 1e-12) <= alpha
    assert np.mean(p <= 0.1 + 1e-12) > 0.08  # not a test that never rejects


@pytest.mark.calibration
def test_adjusted_randomisation_test_size_at_ten_accounts_per_arm():
    """At 10 accounts per arm (184,756 assignments) over random observed assignments of
    one population: the share rejected at 0.1 stays within the binomial band."""
    reps = max(mc_reps() // 20, 60)
    rng = np.random.default_rng(2)
    x, y, z = _accounts(rng, 20)
    rejected = 0
    for _ in range(reps):
        treated = np.zeros(20, bool)
        treated[rng.choice(20, 10, replace=False)] = True
        control, treatment = _arms(x, y, z, treated)
        rejected += randomization_test(control, treatment, "user", invert=False).p_value <= 0.1
    rate = rejected / reps
    print(f"\nadjusted randomisation test, 10 accounts per arm: size at 0.1 = {rate:.3f} ({reps})")
    assert rate <= 0.1 + 3 * math.sqrt(0.09 / reps)


def test_adjusted_cr2_equals_statsmodels_wls_hc2():
    rng = np.random.default_rng(3)
    x, y, z = _accounts(rng, 30)
    treated = rng.permutation(np.arange(30) < 15)
    control, treatment = _arms(x, y, z, treated)
    for weighting in ("user", "account"):
        res = cr2_adjusted(control, treatment, weighting)
        r = x / y
        v = z / y
        w = y if weighting == "user" else np.ones_like(y)
        order = np.r_[np.flatnonzero(~treated), np.flatnonzero(treated)]
        design = np.column_stack([np.ones(30), treated[order], v[order] - np.average(v, weights=w)])
        fit = sm.WLS(r[order], design, weights=w[order]).fit(cov_type="HC2")
        assert res.effect == pytest.approx(fit.params[1], rel=1e-9)
        assert res.se == pytest.approx(fit.bse[1], rel=1e-9)
        assert math.isfinite(res.df) and 2 < res.df < 30


def test_without_covariates_the_general_cr2_path_is_the_two_group_one():
    rng = np.random.default_rng(4)
    x, y, _ = _accounts(rng, 24)
    noise = rng.normal(size=24)
    treated = rng.permutation(np.arange(24) < 12)
    plain = cr2_test(
        AccountArm(x[~treated], y[~treated]), AccountArm(x[treated], y[treated]), "user"
    )
    z = (noise * 1e-9 * y)[:, None]  # a covariate that explains nothing
    control = AccountArm(x[~treated], y[~treated], z=z[~treated], covariates=("noise",))
    treatment = AccountArm(x[treated], y[treated], z=z[treated], covariates=("noise",))
    general = cr2_adjusted(control, treatment, "user")
    assert general.effect == pytest.approx(plain.effect, rel=1e-6)
    assert general.se == pytest.approx(plain.se, rel=1e-2)


@pytest.mark.calibration
def test_adjustment_buys_power_with_ten_accounts_per_arm():
    reps = max(mc_reps() // 10, 100)
    rng = np.random.default_rng(5)
    hits = {"adjusted": 0, "plain": 0}
    widths = {"adjusted": [], "plain": []}
    for _ in range(reps):
        xc, yc, zc = _accounts(rng, 10)
        xt, yt, zt = _accounts(rng, 10, effect=0.25)
        adjusted = randomization_test(
            AccountArm(xc, yc, z=zc[:, None], covariates=("pre",)),
            AccountArm(xt, yt, z=zt[:, None], covariates=("pre",)),
            "user",
            max_exact=0,
            draws=2_000,
            seed=1,
        )
        plain = randomization_test(
            AccountArm(xc, yc), AccountArm(xt, yt), "user", max_exact=0, draws=2_000, seed=1
        )
        for name, res in (("adjusted", adjusted), ("plain", plain)):
            hits[name] += res.p_value < 0.05
            widths[name].append(res.ci[1] - res.ci[0])
    print(
        f"\nB2B, 10 accounts per arm, +25 %: power adjusted {hits['adjusted'] / reps:.3f}, "
        f"unadjusted {hits['plain'] / reps:.3f}; median CI width "
        f"{np.median(widths['adjusted']):.3f} vs {np.median(widths['plain']):.3f}"
    )
    assert hits["adjusted"] > hits["plain"]
    assert np.median(widths["adjusted"]) < 0.8 * np.median(widths["plain"])


def test_b2b_pipeline_adjusts_by_the_pre_period_and_says_so():
    export = simulate(
        mode="b2b", users=4_000, accounts=20, days=8, enrol_days=2, seed=6, pre_days=7
    )
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 2_000},
        "cuped": {"pre_days": 7},
        "metrics": [
            {"name": "outputs", "type": "mean", "column": "ai_output"},
            {
                "name": "share_rate",
                "type": "ratio",
                "numerator": "share",
                "denominator": "ai_output",
            },
        ],
    }
    res = abkit.analyze(export.assignments, config, events=export.events)
    plain = abkit.analyze(export.assignments, {**config, "cuped": {}}, events=export.events)
    for r, p in zip(res.results, plain.results, strict=True):
        assert r.cuped is not None, r.metric
        assert "CUPED-adjusted by" in r.method and r.method.startswith("account-level")
        assert r.cuped.unadjusted_effect == pytest.approx(p.effect, rel=1e-9)
        assert isinstance(r.b2b, AccountDetail) and r.b2b.cr2 and r.b2b.bootstrap
        assert r.b2b.cr2.method.endswith("regression-adjusted")
        assert r.b2b.bootstrap.adjusted is False
        assert r.decision.p_value == r.p_value
    outputs = res.results[0]
    assert outputs.cuped is not None and outputs.cuped.variance_reduction > 0.2
    assert "variance" in res.to_markdown() and "CUPED" in res.to_text()
