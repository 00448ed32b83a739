"""Novelty and primacy: does the effect change with time since assignment?

Each unit contributes its metric in each of the first W periods after its own
assignment (period w covers days [w·P, (w+1)·P)), all of them complete by the export
end, so every period holds the same units.  Per arm the per-unit vector
z = (x_0 … x_{W−1}[, y_0 … y_{W−1}]) reduces to :class:`~abkit.stats.cuped.Moments`;
the metric in period w is g_w = x̄_w (or x̄_w / ȳ_w for a ratio) and, by the delta method,
Cov(ĝ) = G S G' / n with G the gradients of the g_w (Deng, Knoblich & Lu, KDD 2018).

The lift is compared on the log scale, where a constant relative effect is flat even
when usage itself decays with time since assignment: ℓ_w = log(g_T,w / g_C,w),
Cov(ℓ) = D_T Cov(ĝ_T) D_T + D_C Cov(ĝ_C) D_C with D = diag(1/g).  The trend is the
least-squares slope of ℓ on w, b = c'ℓ with c_w = (w − w̄) / Σ(w − w̄)², and
Var(b) = c' Cov(ℓ) c uses the full covariance between periods — the same units appear
in every period, so their estimates are correlated and a regression that treats them
as independent would be miscalibrated.  b/se(b) is referred to the standard normal.
A lift that shrinks toward 0 is a novelty effect, one that grows a primacy (learning)
effect (Kohavi, Tang & Xu, *Trustworthy Online Controlled Experiments*, 2020, on
novelty and primacy effects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from abkit.stats.cuped import Moments, term_gradient, term_value

METHOD = "trend of the log lift over periods since assignment (delta method, full covariance)"


@dataclass(frozen=True)
class NoveltyResult:
    """Lift per period since assignment and the test of its trend.

    ``slope``: change of log(treatment/control) per period; ``change``: lift in the last
    period relative to the first, (1 + L_last)/(1 + L_first) − 1; ``verdict``: "fades"
    or "grows" (a significant trend toward or away from no effect), "stable" (none
    detected) or "not computable".
    """

    method: str
    period_days: int
    units: tuple[int, int]  # control, treatment
    lift: tuple[float, ...]
    lift_ci: tuple[tuple[float, float], ...]
    slope: float
    slope_se: float
    p_value: float
    change: float
    verdict: str


def _period_estimates(arm: Moments, periods: int, ratio: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-period values g_w and the covariance of their estimates (delta method)."""
    terms = [(w, periods + w) if ratio else (w,) for w in range(periods)]
    values = np.array([term_value(t, arm.mean) for t in terms])
    grads = np.array([term_gradient(t, arm.mean) for t in terms])
    return values, grads @ arm.cov @ grads.T / arm.n


def novelty_test(
    control: Moments, treatment: Moments, periods: int, ratio: bool, period_days: int, alpha: float
) -> NoveltyResult:
    """The lift per period and its trend (see the module docstring)."""
    nan = math.nan
    units = (control.n, treatment.n)
    (gc, vc), (gt, vt) = (_period_estimates(a, periods, ratio) for a in (control, treatment))
    if periods < 2 or min(units) < 2 or not (np.all(gc > 0) and np.all(gt > 0)):
        nan_ci = tuple((nan, nan) for _ in range(periods))
        lift = tuple(float(v) for v in gt / gc - 1) if np.all(gc != 0) else (nan,) * periods
        return NoveltyResult(
            METHOD, period_days, units, lift, nan_ci, nan, nan, nan, nan, "not computable"
        )
    log_lift = np.log(gt / gc)
    cov = vt / np.outer(gt, gt) + vc / np.outer(gc, gc)
    z = float(st.norm.ppf(1 - alpha / 2))
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    lift_ci = tuple(
        (float(np.expm1(m - z * s)), float(np.expm1(m + z * s)))
        for m, s in zip(log_lift, se, strict=True)
    )
    w = np.arange(periods, dtype=float)
    c = (w - w.mean()) / ((w - w.mean()) ** 2).sum()
    slope = float(c @ log_lift)
    slope_se = float(math.sqrt(max(c @ cov @ c, 0.0)))
    p_value = float(2 * st.norm.sf(abs(slope / slope_se))) if slope_se > 0 else nan
    verdict = "stable"
    if p_value < alpha:
        toward_zero = np.sign(slope) != np.sign(log_lift.mean())
        verdict = "fades" if toward_zero else "grows"
    return NoveltyResult(
        method=METHOD,
        period_days=period_days,
        units=units,
        lift=tuple(float(v) for v in np.expm1(log_lift)),
        lift_ci=lift_ci,
        slope=slope,
        slope_se=slope_se,
        p_value=p_value,
        change=float(np.expm1(log_lift[-1] - log_lift[0])),
        verdict=verdict,
    )
