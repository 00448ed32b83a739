"""Bayesian calibration by simulation: true effects drawn from the prior.

When the true effects are drawn from the prior the analysis uses, a (1 − α) credible
interval covers the true effect in a share 1 − α of experiments, the chance to win is the
frequency of true wins among experiments given that chance, and the reported expected
loss is the loss realised on average (Cook, Gelman & Rubin, "Validation of software for
Bayesian models using posterior quantiles", JCGS 2006).  Coverage passes in the binomial
99 % band; means pass within 4 standard errors.  ABKIT_MC_REPS sets the size (CI runs
2,000; the guide's figures come from ABKIT_MC_REPS=20000).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from abkit.stats.bayesian import (
    BetaPrior,
    NormalPrior,
    bayesian_comparison,
    beta_binomial_comparison,
)
from tests.conftest import mc_reps

pytestmark = pytest.mark.calibration
ALPHA = 0.1


def _band(reps: int, rate: float) -> tuple[float, float]:
    return st.binom.ppf(0.005, reps, rate) / reps, st.binom.ppf(0.995, reps, rate) / reps


def _assert_calibrated(label, covered, ctw, won, risk, loss):
    """Credible coverage within the binomial band of its level; the mean chance to win
    and expected loss equal the realised share of wins and mean loss within 4 Monte
    Carlo standard errors."""
    reps = covered.size
    lo, hi = _band(reps, 1 - ALPHA)
    gap_win, se_win = _close(ctw, won)
    gap_loss, se_loss = _close(risk, loss)
    print(
        f"\n{label}: reps {reps}, {1 - ALPHA:.0%} credible coverage {covered.mean():.4f}, "
        f"chance to win {ctw.mean():.4f} vs wins {won.mean():.4f}, expected loss "
        f"{risk.mean():.6f} vs realised {loss.mean():.6f}"
    )
    assert lo <= covered.mean() <= hi
    assert abs(gap_win) <= 4 * se_win
    assert abs(gap_loss) <= 4 * se_loss


def _close(reported: np.ndarray, realised: np.ndarray) -> tuple[float, float]:
    """Mean gap reported − realised, and its standard error."""
    gap = reported - realised
    return float(gap.mean()), float(gap.std(ddof=1) / math.sqrt(gap.size))


def test_normal_log_model_is_calibrated_on_binary_users():
    """Lifts log(p_T/p_C) ~ N(0.01, 0.05²); 4,000 users per arm with p_C = 0.10 ± noise;
    the reading on the log scale with that prior."""
    reps = mc_reps()
    rng = np.random.default_rng(27)
    prior = NormalPrior(0.01, 0.05)
    n = 4_000
    covered = np.zeros(reps, bool)
    ctw = np.zeros(reps)
    won = np.zeros(reps)
    risk = np.zeros(reps)
    loss = np.zeros(reps)
    for i in range(reps):
        p_c = rng.uniform(0.08, 0.12)
        theta = rng.normal(prior.mean, prior.sd)
        p_t = p_c * math.exp(theta)
        c, t = rng.binomial(n, p_c) / n, rng.binomial(n, p_t) / n
        r = bayesian_comparison(c, t, c * (1 - c) / n, t * (1 - t) / n, prior=prior, alpha=ALPHA)
        lift = math.expm1(theta)
        covered[i] = r.relative.interval[0] <= lift <= r.relative.interval[1]
        ctw[i], won[i] = r.relative.chance_to_win, lift > 0
        risk[i], loss[i] = r.relative.risk_ship, max(0.0, -lift)
    _assert_calibrated("normal/log", covered, ctw, won, risk, loss)


def test_beta_binomial_is_calibrated_with_few_units():
    """Rates p_C, p_T ~ Beta(2, 18) independently, 30 units per arm: the exact reading with
    that prior (a normal approximation would be off with so few units)."""
    reps = max(200, mc_reps() // 4)
    rng = np.random.default_rng(28)
    prior = BetaPrior(2.0, 18.0)
    n = 30
    covered = np.zeros(reps, bool)
    ctw = np.zeros(reps)
    won = np.zeros(reps)
    risk = np.zeros(reps)
    loss = np.zeros(reps)
    for i in range(reps):
        p_c, p_t = rng.beta(2.0, 18.0, 2)
        r = beta_binomial_comparison(
            int(rng.binomial(n, p_c)), n, int(rng.binomial(n, p_t)), n, prior=prior, alpha=ALPHA
        )
        d = p_t - p_c
        covered[i] = r.absolute.interval[0] <= d <= r.absolute.interval[1]
        ctw[i], won[i] = r.absolute.chance_to_win, d > 0
        risk[i], loss[i] = r.absolute.risk_ship, max(0.0, -d)
    _assert_calibrated("Beta-Binomial", covered, ctw, won, risk, loss)
