"""Randomisation inference at the account level.

Under the sharp null that the treatment changes no account's value, every
re-assignment of accounts to arms (with the arm sizes, and within strata when given)
was equally likely, so the share of re-assignments whose statistic is at least as
extreme as the observed one is an exact p-value (Fisher 1935; Imbens & Rubin, *Causal
Inference*, 2015, ch. 5).  All re-assignments are enumerated when there are at most
``max_exact`` of them; otherwise ``draws`` random ones are used and the p-value is
(1 + #extreme)/(1 + draws) (Phipson & Smyth 2010), still valid.

The statistic is the difference of arm estimates (user- or account-weighted).  The
confidence interval inverts the test under a constant additive effect δ per unit of
the denominator: treated accounts' numerators become X_g − δ·Y_g, which shifts both
estimators by exactly δ; the interval is every δ not rejected at α.  The interval for
the relative effect (lift) λ inverts it under a constant multiplicative effect:
treated numerators become X_g/(1 + λ), which scales both estimators by 1/(1 + λ).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from abkit.stats.cluster import USER_WEIGHTED, AccountArm

_LOG_LIMIT = math.log(1e6)  # lifts beyond ×1e6 or below ÷1e6 are reported as unbounded


@dataclass(frozen=True)
class RandomizationResult:
    effect: float
    p_value: float
    ci: tuple[float, float]
    assignments: int
    exact: bool
    relative_ci: tuple[float, float] = (math.nan, math.nan)


def assignment_matrix(
    treated: np.ndarray, strata: np.ndarray, max_exact: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """Rows: re-assignments (True = treatment) that keep each stratum's treated count."""
    n = treated.size
    sizes = [
        (np.flatnonzero(strata == s), int(treated[strata == s].sum())) for s in np.unique(strata)
    ]
    total = math.prod(math.comb(g.size, k) for g, k in sizes)
    if total <= max_exact:
        blocks = []
        for g, k in sizes:
            count = math.comb(g.size, k)
            combos = np.fromiter(
                itertools.chain.from_iterable(itertools.combinations(range(g.size), k)),
                dtype=int,
                count=count * k,
            ).reshape(count, k)
            rows = np.zeros((count, g.size), dtype=bool)
            np.put_along_axis(rows, combos, True, axis=1)
            blocks.append(rows)
        grid = np.stack(
            np.meshgrid(*[np.arange(b.shape[0]) for b in blocks], indexing="ij"), axis=-1
        ).reshape(-1, len(blocks))
        out = np.zeros((grid.shape[0], n), dtype=bool)
        for j, ((g, _), rows) in enumerate(zip(sizes, blocks, strict=True)):
            out[:, g] = rows[grid[:, j]]
        return out, True
    out = np.zeros((draws, n), dtype=bool)
    for g, k in sizes:
        chosen = np.argsort(rng.random((draws, g.size)), axis=1)[:, :k]
        block = np.zeros((draws, g.size), dtype=bool)
        np.put_along_axis(block, chosen, True, axis=1)
        out[:, g] = block
    return out, False


def _differences(assign: np.ndarray, x: np.ndarray, y: np.ndarray, weighting: str) -> np.ndarray:
    """Treatment − control estimate for every re-assignment (rows of ``assign``)."""
    a = assign.astype(float)
    b = 1.0 - a
    if weighting == USER_WEIGHTED:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (a @ x) / (a @ y) - (b @ x) / (b @ y)
    ok = y > 0
    r = np.where(ok, x / np.where(ok, y, 1.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a @ r) / (a @ ok) - (b @ r) / (b @ ok)


def randomization_test(
    control: AccountArm,
    treatment: AccountArm,
    weighting: str,
    alpha: float = 0.05,
    strata: np.ndarray | None = None,
    max_exact: int = 200_000,
    draws: int = 10_000,
    seed: int = 0,
    invert: bool = True,
) -> RandomizationResult:
    """Two-sided randomisation p-value and test-inversion interval for the effect."""
    x = np.concatenate([control.x, treatment.x]).astype(float)
    y = np.concatenate([control.y, treatment.y]).astype(float)
    treated = np.concatenate([np.zeros(control.accounts, bool), np.ones(treatment.accounts, bool)])
    strata = np.zeros(x.size, dtype=int) if strata is None else np.asarray(strata)
    assign, exact = assignment_matrix(
        treated, strata, max_exact, draws, np.random.default_rng(seed)
    )
    c_value, t_value = control.estimate(weighting), treatment.estimate(weighting)
    effect = t_value - c_value

    def p_for(shifted: np.ndarray) -> float:
        obs = _differences(treated[None, :], shifted, y, weighting)[0]
        stats = _differences(assign, shifted, y, weighting)
        extreme = np.sum(np.abs(stats) >= abs(obs) - 1e-12 * max(1.0, abs(obs)))
        return float(extreme / stats.size) if exact else float((1 + extreme) / (1 + stats.size))

    def p_additive(delta: float) -> float:  # treated X_g − δ·Y_g: both estimators shift by δ
        return p_for(np.where(treated, x - delta * y, x))

    def p_multiplicative(theta: float) -> float:  # treated X_g / e^θ: both scale by e^−θ
        return p_for(np.where(treated, x * math.exp(-theta), x))

    p_value = p_for(x)
    ci = relative_ci = (math.nan, math.nan)
    if invert:
        spread = float(np.nanstd(_differences(assign, x, y, weighting)))
        ci = _invert(p_additive, effect, alpha, spread)
        if c_value > 0 and t_value > 0:
            log_ci = _invert(
                p_multiplicative,
                math.log(t_value / c_value),
                alpha,
                spread / c_value,
                limit=_LOG_LIMIT,
            )
            relative_ci = (math.expm1(log_ci[0]), math.expm1(log_ci[1]))
    return RandomizationResult(effect, p_value, ci, int(assign.shape[0]), exact, relative_ci)


def _invert(
    p_at, effect: float, alpha: float, spread: float, limit: float | None = None
) -> tuple[float, float]:
    """Outermost value on each side of the estimate that the test does not reject.

    With ``limit``, a side still not rejected that far from the estimate is unbounded
    (±inf): under a multiplicative model the permuted statistics scale with the
    hypothesised effect, so the p-value can level off above alpha (as with Fieller's
    interval for a ratio).
    """
    if not (np.isfinite(effect) and spread > 0):
        return (math.nan, math.nan)
    bounds = []
    for sign in (-1.0, 1.0):
        inside, step = effect, spread
        outside = effect + sign * step
        grow = 0
        unbounded = False
        while p_at(outside) > alpha and grow < 60:
            inside, outside, grow = outside, outside + sign * step * 2**grow, grow + 1
            if limit is not None and abs(outside - effect) > limit:
                unbounded = True
                break
        if unbounded:
            bounds.append(sign * math.inf)
            continue
        for _ in range(50):
            mid = 0.5 * (inside + outside)
            inside, outside = (mid, outside) if p_at(mid) > alpha else (inside, mid)
        bounds.append(inside)
    return bounds[0], bounds[1]
