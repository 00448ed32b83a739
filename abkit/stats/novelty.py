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

from abkit.stats.cuped import Moments, term_gradient, term_value
from abkit.stats.distributions import norm_ppf, norm_sf

METHOD = "trend of the log lift over periods since assignment (delta method, full covariance)"


@dataclass(frozen=True)
class NoveltyResult:
    """Lift per period since assignment and the test of its trend.

    ``slope``: change of log(treatment/control) per period; ``change``: lift in the last
    period relative to the first, (1 + L_last)/(1 + L_first) − 1; ``verdict``: "fades"
    or "grows" (a significant trend toward or away from no effect), "stable" (none
    detected) or "not computable".

    Parameters
    ----------
    method : str
        The test's name.
    period_days : int
        P, the length of a period in days.
    units : tuple of int
        Units in (control, treatment).
    lift : tuple of float
        L_w = g_T,w / g_C,w − 1 per period w.
    lift_ci : tuple of (float, float)
        Each period's (1 − α) interval for L_w, exp(ℓ_w ± z·se(ℓ_w)) − 1.
    slope : float
        b, the least-squares slope of ℓ_w = log(1 + L_w) on w.
    slope_se : float
        √(c' Cov(ℓ) c), its standard error.
    p_value : float
        Two-sided p-value of b/se(b) against N(0, 1).
    change : float
        (1 + L_last)/(1 + L_first) − 1.
    verdict : str
        "fades", "grows", "stable" or "not computable".

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments
    >>> from abkit.stats.novelty import novelty_test
    >>> rng = np.random.default_rng(3)
    >>> usage = np.array([1.0, 0.8, 0.7])  # usage decays with weeks since assignment
    >>> control = Moments.from_values(
    ...     rng.gamma(2.0, 2.0, (400, 1)) * usage + rng.normal(0, 1, (400, 3))
    ... )
    >>> treatment = Moments.from_values(
    ...     rng.gamma(2.0, 2.0, (400, 1)) * usage * [1.3, 1.2, 1.05]
    ...     + rng.normal(0, 1, (400, 3))
    ... )
    >>> r = novelty_test(control, treatment, periods=3, ratio=False, period_days=7, alpha=0.05)
    >>> r.verdict, [round(v, 3) for v in r.lift]
    ('fades', [0.234, 0.123, -0.025])
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
    """The lift per period and its trend (see the module docstring).

    ℓ_w = log(g_T,w / g_C,w) with Cov(ℓ) = D_T Cov(ĝ_T) D_T + D_C Cov(ĝ_C) D_C,
    D = diag(1/g); the trend b = c'ℓ with c_w = (w − w̄)/Σ(w − w̄)² and
    Var(b) = c' Cov(ℓ) c, so the correlation between periods (the same units in
    each) is accounted for; z = b/se(b) against N(0, 1).  A significant slope
    toward no effect is a novelty effect ("fades"), away from it a primacy
    (learning) effect ("grows").

    Parameters
    ----------
    control, treatment : Moments
        Per arm, the moments of the per-unit vectors z = (x_0 … x_{W−1}) or, for a
        ratio, (x_0 … x_{W−1}, y_0 … y_{W−1}).
    periods : int
        W, the number of periods.
    ratio : bool
        Whether the metric is a ratio x̄_w / ȳ_w (else the mean x̄_w).
    period_days : int
        P, recorded in the result.
    alpha : float
        Level of the test and 1 − the confidence level of the per-period intervals.

    Returns
    -------
    NoveltyResult
        "not computable" (NaN intervals, slope and p-value) with fewer than 2
        periods, fewer than 2 units in an arm, or a period value that is not
        positive.

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018.
    .. [2] R. Kohavi, D. Tang and Y. Xu, *Trustworthy Online Controlled Experiments:
       A Practical Guide to A/B Testing*, Cambridge University Press, 2020.

    Examples
    --------
    A lift of about 30 % in the first week that is gone by the third:

    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments
    >>> from abkit.stats.novelty import novelty_test
    >>> rng = np.random.default_rng(3)
    >>> usage = np.array([1.0, 0.8, 0.7])  # usage decays with weeks since assignment
    >>> control = Moments.from_values(
    ...     rng.gamma(2.0, 2.0, (400, 1)) * usage + rng.normal(0, 1, (400, 3))
    ... )
    >>> treatment = Moments.from_values(
    ...     rng.gamma(2.0, 2.0, (400, 1)) * usage * [1.3, 1.2, 1.05]
    ...     + rng.normal(0, 1, (400, 3))
    ... )
    >>> r = novelty_test(control, treatment, periods=3, ratio=False, period_days=7, alpha=0.05)
    >>> r.verdict, round(r.slope, 4), round(r.slope_se, 4), r.p_value < 0.001
    ('fades', -0.1174, 0.0141, True)
    >>> round(r.change, 4)
    -0.2093

    The slope is the least-squares line through the log lifts:

    >>> round(float(np.polyfit([0, 1, 2], np.log1p(r.lift), 1)[0]), 4)
    -0.1174
    """
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
    z = float(norm_ppf(1 - alpha / 2))
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    lift_ci = tuple(
        (float(np.expm1(m - z * s)), float(np.expm1(m + z * s)))
        for m, s in zip(log_lift, se, strict=True)
    )
    w = np.arange(periods, dtype=float)
    c = (w - w.mean()) / ((w - w.mean()) ** 2).sum()
    slope = float(c @ log_lift)
    slope_se = float(math.sqrt(max(c @ cov @ c, 0.0)))
    p_value = float(2 * norm_sf(abs(slope / slope_se))) if slope_se > 0 else nan
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
