"""How often the Bayesian decision rule ships an effect of a given size, by simulation.

For a planned sample of n units per arm, a control value C₀ (the baseline) and a true
relative effect ℓ (T₀ = C₀(1 + ℓ)), each simulated experiment yields the two arms'
estimates and sampling variances, hence the estimate of log(T/C) and its standard error
s = √(Var(T)/T² + Var(C)/C²) (:func:`abkit.stats.bayesian.relative_model`).  The
experiment's arms are drawn from their sampling laws, all replicates at once:

* a mean with per-unit standard deviation σ: T̄ ~ N(T₀, σ²/n), C̄ ~ N(C₀, σ²/n), and each
  arm's sample variance σ²χ²ₙ₋₁/(n − 1) (normal units);
* a proportion: x ~ Binomial(n, p) per arm, variance p̂(1 − p̂).

The decision is abkit's own: :func:`abkit.stats.bayesian.bayesian_comparison` on the log
scale with the prior, then :func:`abkit.stats.bayesian.bayes_verdict`; "ship" is the
verdict "better".  Both parts of the rule are monotone in the estimate for a fixed
standard error (the posterior mean is (1 − B)δ̂ + Bμ₀ with B fixed by s; the chance to win
Φ(gμ₁/τ₁) rises with it and the expected loss of shipping falls), so for each s the rule
ships exactly when gδ̂ ≥ g·t(s) for the larger of two boundaries, the estimate where the
chance to win reaches ``chance`` and the one where the expected loss falls to
``tolerance``.  Each boundary is found by root-finding on abkit's rule at the Chebyshev
nodes of the replicates' range of s and interpolated (a smooth function: the error is
far below the Monte Carlo error; ``boundary_error`` reports it at points between the
nodes), which decides every replicate without a loop over them.

The realised loss of a decision is measured against the truth, as a share of control:
shipping loses max(0, −gℓ), keeping control forgoes max(0, gℓ); ``expected_loss`` is its
mean over the simulated experiments.

References
----------
.. [1] GrowthBook, gbstats ``EffectBayesianABTest`` (the model and the decision quantities).
.. [2] C. Stucchio, "Bayesian A/B Testing at VWO", 2015 (expected loss as the decision
   quantity).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from abkit.stats.bayesian import (
    BayesRule,
    NormalPrior,
    PosteriorSummary,
    bayes_verdict,
    bayesian_comparison,
)

DEFAULT_SIMULATIONS = 20_000
_NODES = 17  # Chebyshev nodes of each boundary over the replicates' range of s
_RULE = BayesRule()
_REACH = 30.0  # |log(T/C)| beyond which a boundary counts as never (or always) reached


@dataclass(frozen=True)
class RuleSimulation:
    """The Bayesian rule over simulated experiments of one size.

    Parameters
    ----------
    per_arm : int
        Units per arm of each simulated experiment.
    ship : float
        P(ship) at the true effect: the share of experiments the rule calls "better".
    ship_mc_se : float
        Its Monte Carlo standard error, √(p(1 − p)/simulations).
    false_ship : float
        P(ship) when the true effect is 0 (the rule's false-ship rate).
    false_ship_mc_se : float
        Its Monte Carlo standard error.
    expected_loss : float
        The mean realised loss of the decisions at the true effect, a share of control:
        max(0, −gℓ) when shipped, max(0, gℓ) (the gain forgone) when not.
    undefined : float
        The share of experiments whose log(T/C) is undefined (an arm estimate ≤ 0): not
        shipped, as abkit's rule says "not computable" there.
    boundary_error : float
        The largest difference, at points between the interpolation nodes, between the
        interpolated decision boundary and abkit's rule solved there (log scale).
    """

    per_arm: int
    ship: float
    ship_mc_se: float
    false_ship: float
    false_ship_mc_se: float
    expected_loss: float
    undefined: float
    boundary_error: float


def rule_summary(
    estimate: float, se: float, prior: NormalPrior, higher_is_better: bool = True
) -> PosteriorSummary:
    """The relative posterior summary abkit's rule reads, for an estimate of log(T/C)
    and its standard error (as :func:`abkit.analysis.bayesian.reading` builds it: the
    arms C = 1 and T = e^δ̂ with the whole variance on the treatment's side).

    Examples
    --------
    >>> from abkit.stats.bayesian import FLAT_PRIOR
    >>> from abkit.stats.bayesian_power import rule_summary
    >>> round(rule_summary(0.0329, 0.02, FLAT_PRIOR).chance_to_win, 4)
    0.95
    """
    ratio = math.exp(estimate)
    return bayesian_comparison(
        1.0, ratio, 0.0, (se * ratio) ** 2, prior, "log", higher_is_better
    ).relative


def _root(f: Callable[[float], float], rising: bool) -> float:
    """The estimate where ``f`` (monotone in it, ``rising`` or falling) crosses 0; ±inf
    when it does not within ±_REACH (never reached: +inf for a rising f)."""
    lo, hi = -_REACH, _REACH
    f_lo, f_hi = f(lo), f(hi)
    sign = 1.0 if rising else -1.0
    if sign * f_lo >= 0:
        return -math.inf if rising else math.inf
    if sign * f_hi < 0:
        return math.inf if rising else -math.inf
    from scipy import optimize  # loaded when first needed (0.15 s)

    return float(optimize.brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps))


def decision_boundaries(
    se: float, prior: NormalPrior, rule: BayesRule, higher_is_better: bool = True
) -> tuple[float, float]:
    """The estimates of log(T/C) at which abkit's rule meets its chance and its tolerance.

    With g = +1 (higher is better) the rule ships when δ̂ ≥ both; with g = −1 when δ̂ ≤
    both.

    Parameters
    ----------
    se : float
        The standard error of the estimate.
    prior : NormalPrior
        The prior of log(T/C).
    rule : BayesRule
        The chance and tolerance.
    higher_is_better : bool, default True
        The metric's good direction.

    Returns
    -------
    tuple of float
        (the chance boundary, the tolerance boundary).

    Examples
    --------
    >>> from abkit.stats.bayesian import FLAT_PRIOR, BayesRule
    >>> from abkit.stats.bayesian_power import decision_boundaries
    >>> chance, tolerance = decision_boundaries(0.02, FLAT_PRIOR, BayesRule())
    >>> round(chance / 0.02, 6), tolerance < chance  # 1.644854 standard errors
    (1.644854, True)
    """
    rising = higher_is_better

    def chance(est: float) -> float:
        return rule_summary(est, se, prior, higher_is_better).chance_to_win - rule.chance

    def tolerance(est: float) -> float:
        return rule.tolerance - rule_summary(est, se, prior, higher_is_better).risk_ship

    return _root(chance, rising), _root(tolerance, rising)


def _linear(x: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def at(s: np.ndarray) -> np.ndarray:
        return np.asarray(np.interp(s, x, y), dtype=float)

    return at


def _interpolant(
    lo: float, hi: float, prior: NormalPrior, rule: BayesRule, higher: bool
) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """The boundary max_g(chance, tolerance) as a function of s over [lo, hi], and its
    largest interpolation error at the midpoints between nodes."""
    if not hi > lo:
        b = max(decision_boundaries(lo, prior, rule, higher), key=lambda v: v if higher else -v)
        return (lambda s: np.full(np.shape(s), b)), 0.0
    k = np.arange(_NODES)
    nodes = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / _NODES)
    pairs = np.array([decision_boundaries(float(s), prior, rule, higher) for s in nodes])
    parts: list[Callable[[np.ndarray], np.ndarray]] = []
    for col in range(2):
        values = pairs[:, col]
        if np.all(np.isfinite(values)):
            parts.append(np.polynomial.Chebyshev.fit(nodes, values, _NODES - 1, domain=[lo, hi]))
        else:  # never (or always) met over part of the range: linear, far beyond any estimate
            order = np.argsort(nodes)
            far = np.clip(values[order], -2 * _REACH, 2 * _REACH)
            parts.append(_linear(nodes[order], far))

    def boundary(s: np.ndarray) -> np.ndarray:
        first, second = (np.asarray(part(s), dtype=float) for part in parts)
        both = np.maximum(first, second) if higher else np.minimum(first, second)
        return np.asarray(both, dtype=float)

    between = (nodes[:-1] + nodes[1:]) / 2
    exact = np.array(
        [
            max(
                decision_boundaries(float(s), prior, rule, higher),
                key=lambda v: v if higher else -v,
            )
            for s in between[:: max(1, len(between) // 4)]
        ]
    )
    approx = boundary(between[:: max(1, len(between) // 4)])
    finite = np.isfinite(exact)
    error = float(np.max(np.abs(approx[finite] - exact[finite]), initial=0.0))
    return boundary, error


def _arms(
    rng: np.random.Generator,
    baseline: float,
    treated: float,
    sd: float | None,
    n: int,
    simulations: int,
) -> tuple[np.ndarray, ...]:
    """Control and treatment estimates with their sampling variances, at the effect and
    at no effect (the same control and the same treatment noise: common random numbers)."""
    if sd is None:  # a proportion
        xc = rng.binomial(n, baseline, simulations) / n
        xt = rng.binomial(n, treated, simulations) / n
        x0 = rng.binomial(n, baseline, simulations) / n
        var = [p * (1 - p) / n for p in (xc, xt, x0)]
        return xc, var[0], xt, var[1], x0, var[2]
    z = rng.standard_normal((2, simulations))
    chi = rng.chisquare(n - 1, (2, simulations)) / (n - 1)
    scale = sd / math.sqrt(n)
    c = baseline + scale * z[0]
    var_c, var_t = sd * sd * chi[0] / n, sd * sd * chi[1] / n
    return c, var_c, treated + scale * z[1], var_t, baseline + scale * z[1], var_t


def log_ratio(
    c: np.ndarray, var_c: np.ndarray, t: np.ndarray, var_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log(T/C) and s = √(Var(T)/T² + Var(C)/C²) elementwise, NaN where T/C ≤ 0: the
    arrays of :func:`abkit.stats.bayesian.relative_model` on the log scale.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian_power import log_ratio
    >>> est, se = log_ratio(np.array([10.0]), np.array([0.25]), np.array([11.0]), np.array([0.25]))
    >>> round(float(est[0]), 5), round(float(se[0]), 5)
    (0.09531, 0.06757)
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (c != 0) & (t / c > 0)
        est = np.where(ok, np.log(np.where(ok, t / c, 1.0)), np.nan)
        se = np.where(ok, np.sqrt(var_t / t**2 + var_c / c**2), np.nan)
    return est, se


def simulate_rule(
    baseline: float,
    lift: float,
    per_arm: int,
    *,
    sd: float | None = None,
    prior: NormalPrior,
    rule: BayesRule = _RULE,
    higher_is_better: bool = True,
    simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 0,
) -> RuleSimulation:
    """How often abkit's Bayesian rule ships, at a true relative effect and at none.

    Parameters
    ----------
    baseline : float
        The control's true value C₀ (a rate in (0, 1) for a proportion).
    lift : float
        The true relative effect ℓ: the treatment's value is C₀(1 + ℓ).
    per_arm : int
        Units per arm (≥ 2).
    sd : float or None
        The per-unit standard deviation of a mean; None for a proportion (Binomial arms).
    prior : NormalPrior
        The prior of log(T/C) the rule uses.
    rule : BayesRule, default BayesRule()
        Its chance and tolerance.
    higher_is_better : bool, default True
        The metric's good direction.
    simulations : int, default 20_000
        Simulated experiments (each at the effect and at no effect).
    seed : int, default 0
        The seed; with ``per_arm`` it fixes every draw.

    Returns
    -------
    RuleSimulation

    Examples
    --------
    >>> from abkit.stats.bayesian import DEFAULT_PRIOR
    >>> from abkit.stats.bayesian_power import simulate_rule
    >>> r = simulate_rule(0.2, 0.05, 20_000, prior=DEFAULT_PRIOR, simulations=4000)
    >>> round(r.ship, 3), round(r.false_ship, 3)
    (0.797, 0.051)
    """
    if per_arm < 2:
        raise ValueError("per_arm must be at least 2")
    treated = baseline * (1.0 + lift)
    rng = np.random.default_rng([seed, per_arm])
    c, var_c, t, var_t, t0, var_t0 = _arms(rng, baseline, treated, sd, per_arm, simulations)
    est, se = log_ratio(c, var_c, t, var_t)
    est0, se0 = log_ratio(c, var_c, t0, var_t0)
    g = 1.0 if higher_is_better else -1.0
    decided, error = decide(
        np.concatenate([est, est0]), np.concatenate([se, se0]), prior, rule, higher_is_better
    )
    shipped, false = decided[:simulations], decided[simulations:]
    p, p0 = float(shipped.mean()), float(false.mean())
    loss = np.where(shipped, max(0.0, -g * lift), max(0.0, g * lift))
    return RuleSimulation(
        per_arm=per_arm,
        ship=p,
        ship_mc_se=math.sqrt(p * (1 - p) / simulations),
        false_ship=p0,
        false_ship_mc_se=math.sqrt(p0 * (1 - p0) / simulations),
        expected_loss=float(loss.mean()),
        undefined=float(np.mean(~np.isfinite(est))),
        boundary_error=error,
    )


def decide(
    estimate: np.ndarray,
    se: np.ndarray,
    prior: NormalPrior,
    rule: BayesRule = _RULE,
    higher_is_better: bool = True,
) -> tuple[np.ndarray, float]:
    """abkit's rule on many estimates of log(T/C) at once: True where it ships.

    Parameters
    ----------
    estimate, se : numpy.ndarray
        The estimates and their standard errors (NaN: not computable, not shipped).
    prior : NormalPrior
        The prior of log(T/C).
    rule : BayesRule, default BayesRule()
        The chance and tolerance.
    higher_is_better : bool, default True
        The metric's good direction.

    Returns
    -------
    tuple
        The boolean array, and the largest interpolation error of the boundary found
        between its nodes (log scale).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian import FLAT_PRIOR
    >>> from abkit.stats.bayesian_power import decide
    >>> shipped, _ = decide(np.array([0.04, 0.03, np.nan]), np.array([0.02, 0.02, 0.02]),
    ...                     FLAT_PRIOR)
    >>> shipped.tolist()
    [True, False, False]
    """
    estimate = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    ok = np.isfinite(estimate) & np.isfinite(se) & (se > 0)
    usable = se[ok]
    lo, hi = (float(usable.min()), float(usable.max())) if usable.size else (1.0, 1.0)
    boundary, error = _interpolant(lo, hi, prior, rule, higher_is_better)
    g = 1.0 if higher_is_better else -1.0
    b = boundary(np.where(ok, se, lo))
    return np.asarray(ok & (g * estimate >= g * b), dtype=bool), error


def ships(
    estimate: float, se: float, prior: NormalPrior, rule: BayesRule, higher_is_better: bool = True
) -> bool:
    """abkit's rule on one estimate of log(T/C): True when the verdict is "better".

    Examples
    --------
    >>> from abkit.stats.bayesian import FLAT_PRIOR, BayesRule
    >>> from abkit.stats.bayesian_power import ships
    >>> ships(0.04, 0.02, FLAT_PRIOR, BayesRule()), ships(0.03, 0.02, FLAT_PRIOR, BayesRule())
    (True, False)
    """
    return bayes_verdict(rule_summary(estimate, se, prior, higher_is_better), rule) == "better"


__all__ = [
    "DEFAULT_SIMULATIONS",
    "RuleSimulation",
    "decide",
    "decision_boundaries",
    "log_ratio",
    "rule_summary",
    "ships",
    "simulate_rule",
]
