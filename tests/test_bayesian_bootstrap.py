"""The Bayesian bootstrap over accounts: the vectorised draws against a direct
computation with Dirichlet weights, Rubin's closed-form mean and variance, and the
interval's frequentist coverage with few accounts (as the B2B methods are calibrated)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from abkit.dev.calibration import simulate_accounts
from abkit.stats.bayesian_bootstrap import arm_draws, bayesian_bootstrap, dirichlet_weights
from abkit.stats.cluster import AccountArm
from tests.conftest import mc_reps

CONTROL = AccountArm(
    np.array([12.0, 30.0, 8.0, 21.0, 15.0, 0.0]), np.array([10.0, 25.0, 5.0, 20.0, 12.0, 0.0])
)
TREATMENT = AccountArm(
    np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0, 7.0]),
    np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0, 9.0]),
)


@pytest.mark.parametrize("weighting", ["user", "account"])
def test_draws_equal_a_direct_dirichlet_computation(weighting):
    draws, seed = 500, 11
    r = bayesian_bootstrap(CONTROL, TREATMENT, weighting, draws=draws, seed=seed)
    rng = np.random.default_rng(seed)

    def direct(arm, g):  # one draw, written out: weighted ratio or weighted mean of values
        if weighting == "user":
            return sum(gi * xi for gi, xi in zip(g, arm.x, strict=True)) / sum(
                gi * yi for gi, yi in zip(g, arm.y, strict=True)
            )
        kept = [(gi, xi / yi) for gi, xi, yi in zip(g, arm.x, arm.y, strict=True) if yi > 0]
        return sum(gi * ri for gi, ri in kept) / sum(gi for gi, _ in kept)

    gc = [rng.dirichlet(np.ones(CONTROL.accounts)) for _ in range(draws)]
    gt = [rng.dirichlet(np.ones(TREATMENT.accounts)) for _ in range(draws)]
    expected = np.array(
        [direct(TREATMENT, b) - direct(CONTROL, a) for a, b in zip(gc, gt, strict=True)]
    )
    assert r.effects == pytest.approx(expected, rel=1e-12, abs=1e-14)
    lifts = np.array(
        [direct(TREATMENT, b) / direct(CONTROL, a) - 1 for a, b in zip(gc, gt, strict=True)]
    )
    assert r.lifts == pytest.approx(lifts, rel=1e-12)
    assert r.absolute.mean == pytest.approx(expected.mean(), rel=1e-12)
    assert r.relative.chance_to_win == np.mean(lifts > 0)


def test_account_weighted_mean_has_rubins_moments():
    """E[Σ g r] = r̄ and Var[Σ g r] = Σ(r − r̄)²/(n(n + 1)) under Dirichlet(1, …, 1)."""
    arm = AccountArm(np.array([3.0, 8.0, 1.0, 9.0, 4.0]), np.ones(5))
    r = arm.x
    draws = 400_000
    m = arm_draws(arm, dirichlet_weights(np.random.default_rng(1), 5, draws), "account")
    var = ((r - r.mean()) ** 2).sum() / (5 * 6)
    assert m.mean() == pytest.approx(r.mean(), abs=4 * math.sqrt(var / draws))
    # the variance of a sample variance: 4 standard errors from the fourth moment
    se_var = math.sqrt((np.mean((m - m.mean()) ** 4) - var**2) / draws)
    assert m.var() == pytest.approx(var, abs=4 * se_var)


def test_seeded_and_guardrail():
    a = bayesian_bootstrap(CONTROL, TREATMENT, "user", draws=2000, seed=3, margin=0.05)
    b = bayesian_bootstrap(CONTROL, TREATMENT, "user", draws=2000, seed=3, margin=0.05)
    assert np.array_equal(a.effects, b.effects) and a.harm == b.harm
    assert a.harm is not None
    assert a.harm.probability == pytest.approx(np.mean(a.lifts < -0.05))


@pytest.mark.calibration
@pytest.mark.parametrize("per_arm", [10, 30])
def test_interval_coverage_with_few_accounts(per_arm):
    """Frequentist coverage of the 95 % interval of a +0.05 effect on the account-level
    rate (the B2B calibration's simulation): the flat Dirichlet posterior knows only the
    accounts seen, so with few accounts it covers less than 95 %, as the percentile
    bootstrap does (84 % at 10 accounts per arm, 88 % at 30, over 1,000 runs): with so
    few accounts its credible interval is not a confidence interval, and the frequentist
    decision rests on the randomisation test."""
    reps = mc_reps(300)
    rng = np.random.default_rng(40 + per_arm)
    covered = 0
    for i in range(reps):
        c, t = simulate_accounts(rng, per_arm, 0.05)
        r = bayesian_bootstrap(c, t, "user", draws=2000, seed=i)
        covered += r.absolute.interval[0] <= 0.05 <= r.absolute.interval[1]
    rate = covered / reps
    print(f"\n{per_arm} accounts/arm, {reps} runs: Bayesian bootstrap, 95 % coverage {rate:.3f}")
    floor = 0.80 if per_arm == 10 else 0.85  # measured: 0.84 and 0.88 at 1,000 runs
    assert rate >= st.binom.ppf(0.005, reps, floor) / reps
