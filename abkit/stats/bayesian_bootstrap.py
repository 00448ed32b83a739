"""The Bayesian bootstrap over accounts: the posterior of an account-level comparison.

With few accounts (B2B) the normal posterior of :mod:`abkit.stats.bayesian` is as
fragile as the normal test.  Rubin's Bayesian bootstrap (1981) instead puts a flat
Dirichlet(1, …, 1) posterior on the weights of the accounts seen in each arm (the
posterior of a discrete distribution supported on them under the non-informative
Dirichlet prior): a draw g ~ Dirichlet(1ₙ) per arm gives

* user-weighted (ratio of sums): R = Σ g_i X_i / Σ g_i Y_i;
* account-weighted (mean of account values): M = Σ g_i r_i, r_i = X_i / Y_i;

and the draws of T − C and T/C − 1 are the posterior of the effect and the lift.  As
:func:`abkit.stats.bootstrap.account_bootstrap` does for resample counts, the weights
for all draws are one (draws × accounts) matrix per arm and the arm estimates are
matrix–vector products, with no Python loop over draws.  The summaries (mean,
equal-tailed interval, chance to win, expected losses) are averages over the draws;
for the account-weighted mean E[M] = r̄ and Var[M] = Σ(r_i − r̄)²/(n(n + 1)) (Rubin
1981, §3), which the tests check.

References
----------
.. [1] D. B. Rubin, "The Bayesian Bootstrap", Annals of Statistics 9, 130–134, 1981.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from abkit.stats.bayesian import DEFAULT_CHANCE, HarmCheck, PosteriorSummary
from abkit.stats.cluster import USER_WEIGHTED, AccountArm

DEFAULT_DRAWS = 10_000


def dirichlet_weights(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """(draws × n) weights, each row a Dirichlet(1, …, 1) draw (rows sum to 1).

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of randomness.
    n : int
        The number of accounts.
    draws : int
        The number of posterior draws (rows).

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian_bootstrap import dirichlet_weights
    >>> w = dirichlet_weights(np.random.default_rng(0), 4, 3)
    >>> w.shape, np.allclose(w.sum(axis=1), 1.0)
    ((3, 4), True)
    """
    return rng.dirichlet(np.ones(n), size=draws)


def arm_draws(arm: AccountArm, weights: np.ndarray, weighting: str) -> np.ndarray:
    """The arm's estimate under each row of Dirichlet weights.

    Parameters
    ----------
    arm : AccountArm
        Per-account numerator and denominator sums.
    weights : numpy.ndarray
        (draws × accounts) Dirichlet weights.
    weighting : {"user", "account"}
        Ratio of sums Σg X/Σg Y, or weighted mean Σg r of account values (accounts with
        an empty denominator are left out and the weights renormalised).

    Returns
    -------
    numpy.ndarray
        One estimate per draw (NaN where the weighted denominator is 0).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian_bootstrap import arm_draws
    >>> from abkit.stats.cluster import AccountArm
    >>> arm = AccountArm(np.array([2.0, 6.0]), np.array([4.0, 4.0]))
    >>> arm_draws(arm, np.array([[0.5, 0.5], [1.0, 0.0]]), "user").tolist()
    [1.0, 0.5]
    """
    x, y = arm.x.astype(float), arm.y.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if weighting == USER_WEIGHTED:
            return np.asarray((weights @ x) / (weights @ y), dtype=float)
        ok = y > 0
        r = np.where(ok, x / np.where(ok, y, 1.0), 0.0)
        return np.asarray((weights @ r) / (weights @ ok.astype(float)), dtype=float)


@dataclass(frozen=True)
class BayesianBootstrap:
    """The Bayesian-bootstrap posterior of an account-level comparison.

    Parameters
    ----------
    draws : int
        Posterior draws.
    seed : int
        Their seed.
    effects : numpy.ndarray
        T − C in each draw.
    lifts : numpy.ndarray
        T/C − 1 in each draw.
    absolute : PosteriorSummary
        The reading of T − C.
    relative : PosteriorSummary
        The reading of the lift.
    harm : HarmCheck or None
        P(harm > margin), when a guardrail margin was given.
    """

    draws: int
    seed: int
    effects: np.ndarray
    lifts: np.ndarray
    absolute: PosteriorSummary
    relative: PosteriorSummary
    harm: HarmCheck | None = None


def summarize_draws(
    values: np.ndarray, higher_is_better: bool = True, alpha: float = 0.05
) -> PosteriorSummary:
    """Mean, equal-tailed interval, chance to win and expected losses of posterior draws.

    Parameters
    ----------
    values : numpy.ndarray
        Draws of the effect; non-finite ones are left out.
    higher_is_better : bool, default True
        The good direction.
    alpha : float, default 0.05
        1 − the credible level.

    Returns
    -------
    PosteriorSummary
        Chance to win: share of draws on the good side (ties count half); risk of
        shipping: mean of max(0, harm); risk of keeping: mean of max(0, gain).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian_bootstrap import summarize_draws
    >>> s = summarize_draws(np.array([-0.1, 0.1, 0.2, 0.3]))
    >>> s.chance_to_win, round(s.risk_ship, 3), round(s.risk_keep, 3)
    (0.75, 0.025, 0.15)
    """
    v = values[np.isfinite(values)]
    if v.size == 0:
        nan = math.nan
        return PosteriorSummary(nan, (nan, nan), nan, nan, nan)
    g = v if higher_is_better else -v
    lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
    chance = float(np.mean(g > 0) + 0.5 * np.mean(g == 0))
    return PosteriorSummary(
        float(v.mean()),
        (float(lo), float(hi)),
        chance,
        float(np.maximum(-g, 0).mean()),
        float(np.maximum(g, 0).mean()),
    )


def bayesian_bootstrap(
    control: AccountArm,
    treatment: AccountArm,
    weighting: str,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    margin: float | None = None,
    margin_scale: Literal["absolute", "relative"] = "relative",
    chance: float = DEFAULT_CHANCE,
) -> BayesianBootstrap:
    """Rubin's Bayesian bootstrap of the difference and lift between two arms of accounts.

    Each draw puts Dirichlet(1, …, 1) weights on each arm's accounts (independently
    between arms) and recomputes the arm estimates (:func:`arm_draws`); the effect's
    posterior is the draws of T − C, the lift's those of T/C − 1.

    Parameters
    ----------
    control, treatment : AccountArm
        Per-account numerator and denominator sums.
    weighting : {"user", "account"}
        Ratio of sums, or mean of account values.
    draws : int, default 10_000
        Posterior draws.
    seed : int, default 0
        Seed of the random generator.
    higher_is_better : bool, default True
        The good direction.
    alpha : float, default 0.05
        1 − the credible level.
    margin : float or None
        A guardrail's harmful margin (> 0).
    margin_scale : {"absolute", "relative"}, default "relative"
        The margin's scale.
    chance : float, default 0.95
        The probability a guardrail verdict needs.

    Returns
    -------
    BayesianBootstrap

    References
    ----------
    .. [1] D. B. Rubin, "The Bayesian Bootstrap", Annals of Statistics 9, 1981.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian_bootstrap import bayesian_bootstrap
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> r = bayesian_bootstrap(control, treatment, "user", draws=4000, seed=1)
    >>> round(r.absolute.mean, 3), round(r.relative.chance_to_win, 3)
    (0.242, 0.999)
    """
    rng = np.random.default_rng(seed)
    c = arm_draws(control, dirichlet_weights(rng, control.accounts, draws), weighting)
    t = arm_draws(treatment, dirichlet_weights(rng, treatment.accounts, draws), weighting)
    effects = t - c
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = t / c - 1.0
    absolute = summarize_draws(effects, higher_is_better, alpha)
    relative = summarize_draws(lifts, higher_is_better, alpha)
    harm = None
    if margin is not None:
        v = lifts if margin_scale == "relative" else effects
        v = v[np.isfinite(v)]
        p = float(np.mean(v < -margin if higher_is_better else v > margin)) if v.size else math.nan
        verdict: Literal["pass", "fail", "inconclusive"] = (
            "pass" if p <= 1 - chance else "fail" if p >= chance else "inconclusive"
        )
        harm = HarmCheck(margin, margin_scale, p, verdict)
    return BayesianBootstrap(draws, seed, effects, lifts, absolute, relative, harm)


__all__ = [
    "BayesianBootstrap",
    "arm_draws",
    "bayesian_bootstrap",
    "dirichlet_weights",
    "summarize_draws",
]
