"""Time-to-event summaries for time-to-value: Kaplan–Meier, RMST, median, log-rank.

Kaplan & Meier (1958): Ŝ(t) = Π_{t_j ≤ t} (1 − d_j/n_j) over distinct event times t_j,
with d_j events and n_j subjects at risk.  Restricted mean time to event up to τ:
RMST(τ) = ∫₀^τ Ŝ(t) dt (Royston & Parmar 2013).  Every function takes an optional
weight matrix W (resamples × subjects) so the account bootstrap of the RMST runs as
matrix products; with W = 1 it is the ordinary estimator.  The log-rank test is
statsmodels' ``survdiff`` (cross-check).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abkit.stats.arm import Summable


@dataclass(frozen=True)
class EventTimes(Summable):
    """One arm's times to event: per subject (account), the time observed and
    whether it ended in the event (True) or was censored (False), as the units
    stage's ``account_times`` gives them.

    Parameters
    ----------
    time : numpy.ndarray
        Days from the subject's start to its event, or to the end of follow-up.
    event : numpy.ndarray
        True where the event was observed, False where the time is censored.

    Notes
    -----
    Times of disjoint sets of subjects add with ``+`` (and ``sum``); see
    :meth:`__add__`.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.survival import EventTimes, median_time
    >>> a = EventTimes(np.array([1.0, 3.0]), np.array([True, False]))
    >>> b = EventTimes(np.array([2.0, 2.5]), np.array([True, True]))
    >>> median_time((a + b).curve())
    2.0
    """

    time: np.ndarray
    event: np.ndarray

    def __post_init__(self) -> None:
        if np.shape(self.time) != np.shape(self.event):
            raise ValueError("times and event flags differ in length")

    @classmethod
    def zero(cls) -> EventTimes:
        """No subjects: the identity of ``+`` and a start for ``sum``.

        Examples
        --------
        >>> from abkit.stats.survival import EventTimes
        >>> sum([], EventTimes.zero()).subjects
        0
        """
        return cls(np.empty(0), np.empty(0, dtype=bool))

    @property
    def subjects(self) -> int:
        return int(np.size(self.time))

    def curve(self) -> KaplanMeier:
        """The Kaplan–Meier curve of these times (:func:`kaplan_meier`)."""
        return kaplan_meier(self.time, self.event)

    def __add__(self, other: object) -> EventTimes:
        """The times of the subjects of both parts, which must be disjoint.

        Parameters
        ----------
        other : EventTimes
            The times of other subjects of the same arm.

        Returns
        -------
        EventTimes
            time and event concatenated, this part's subjects first.  The
            Kaplan–Meier curve, the RMST and the log-rank test depend on the
            multiset of (time, event) pairs, not on their order.

        Notes
        -----
        An empty part is the identity.  There are no subject ids: a subject in
        both parts would count twice, so split by subject (account) before adding.
        Looks at later dates are not parts to add: they re-measure the same
        subjects with longer follow-up.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.survival import EventTimes
        >>> a = EventTimes(np.array([1.0]), np.array([True]))
        >>> (a + EventTimes(np.array([4.0]), np.array([False]))).event.tolist()
        [True, False]
        """
        if not isinstance(other, EventTimes):
            return NotImplemented
        if other.subjects == 0:
            return self
        if self.subjects == 0:
            return other
        return EventTimes(
            np.concatenate([self.time, other.time]),
            np.concatenate([self.event, other.event]),
        )


@dataclass(frozen=True)
class KaplanMeier:
    times: np.ndarray  # distinct event times, increasing
    survival: np.ndarray  # Ŝ just after each time; shape (..., times)
    at_risk: np.ndarray


def kaplan_meier(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None
) -> KaplanMeier:
    """KM curve; ``weights`` (resamples × subjects) gives one curve per row."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=bool)
    w = np.ones((1, time.size)) if weights is None else np.atleast_2d(weights).astype(float)
    grid = np.unique(time[event])
    if grid.size == 0:
        return KaplanMeier(grid, np.ones((w.shape[0], 0)), np.zeros((w.shape[0], 0)))
    at_risk = w @ (time[:, None] >= grid[None, :])
    deaths = w @ ((time[:, None] == grid[None, :]) & event[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(at_risk > 0, 1.0 - deaths / at_risk, 1.0)
    surv = np.cumprod(factor, axis=-1)
    if weights is None:
        surv, at_risk = surv[0], at_risk[0]
    return KaplanMeier(grid, surv, at_risk)


def rmst(km: KaplanMeier, tau: float) -> np.ndarray | float:
    """∫₀^τ Ŝ(t) dt for a step function (area of rectangles up to τ)."""
    edges = np.concatenate([[0.0], km.times[km.times < tau], [tau]])
    surv = np.atleast_2d(km.survival)[..., : edges.size - 2]
    levels = np.concatenate([np.ones((*surv.shape[:-1], 1)), surv], axis=-1)
    area = (levels * np.diff(edges)).sum(axis=-1)
    return float(area[0]) if np.ndim(km.survival) == 1 else area


def median_time(km: KaplanMeier) -> float:
    """Smallest time with Ŝ(t) ≤ 0.5; NaN when the curve never gets there."""
    below = np.flatnonzero(np.asarray(km.survival) <= 0.5)
    return float(km.times[below[0]]) if below.size else math.nan


def logrank(
    time_c: np.ndarray, event_c: np.ndarray, time_t: np.ndarray, event_t: np.ndarray
) -> tuple[float, float]:
    """Log-rank χ² statistic and p-value (statsmodels ``survdiff``)."""
    from statsmodels.duration.survfunc import survdiff

    time = np.concatenate([time_c, time_t])
    status = np.concatenate([event_c, event_t]).astype(int)
    group = np.concatenate([np.zeros(time_c.size), np.ones(time_t.size)])
    stat, p = survdiff(time, status, group)
    return float(stat), float(p)


@dataclass(frozen=True)
class RmstComparison:
    tau: float
    rmst_control: float
    rmst_treatment: float
    effect: float  # treatment − control, days
    p_value: float  # randomisation test of the RMST difference over subjects (accounts)
    assignments: int
    exact: bool
    ci: tuple[float, float]  # bootstrap percentile interval
    median_control: float
    median_treatment: float
    logrank_p: float
    curves: dict[str, dict[str, list[float]]]


def rmst_difference_test(
    time_c: np.ndarray,
    event_c: np.ndarray,
    time_t: np.ndarray,
    event_t: np.ndarray,
    tau: float | None = None,
    resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> RmstComparison:
    """RMST difference with a randomisation p-value and a stratified bootstrap interval.

    τ defaults to the shorter of the two arms' longest follow-up, so both curves are
    observed up to τ.  Re-assignments and resamples enter as weight matrices.
    """
    from abkit.stats.bootstrap import resample_counts
    from abkit.stats.randomization import assignment_matrix

    tc, tt = np.asarray(time_c, float), np.asarray(time_t, float)
    ec, et = np.asarray(event_c, bool), np.asarray(event_t, bool)
    tau = float(tau if tau is not None else min(tc.max(), tt.max()))
    km_c, km_t = kaplan_meier(tc, ec), kaplan_meier(tt, et)
    r_c, r_t = float(rmst(km_c, tau)), float(rmst(km_t, tau))
    effect = r_t - r_c
    rng = np.random.default_rng(seed)
    boot = rmst(kaplan_meier(tt, et, resample_counts(rng, tt.size, resamples)), tau) - rmst(
        kaplan_meier(tc, ec, resample_counts(rng, tc.size, resamples)), tau
    )
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    time = np.concatenate([tc, tt])
    event = np.concatenate([ec, et])
    treated = np.concatenate([np.zeros(tc.size, bool), np.ones(tt.size, bool)])
    assign, exact = assignment_matrix(
        treated, np.zeros(time.size, int), 200_000, resamples, np.random.default_rng(seed + 1)
    )
    a = assign.astype(float)
    perm = np.asarray(
        rmst(kaplan_meier(time, event, a), tau) - rmst(kaplan_meier(time, event, 1 - a), tau)
    )
    extreme = np.sum(np.abs(perm) >= abs(effect) - 1e-12 * max(1.0, abs(effect)))
    p = extreme / perm.size if exact else (1 + extreme) / (1 + perm.size)
    _, logrank_p = logrank(tc, ec, tt, et)
    curves = {
        name: {"times": km.times.tolist(), "survival": np.asarray(km.survival).tolist()}
        for name, km in (("control", km_c), ("treatment", km_t))
    }
    return RmstComparison(
        tau,
        r_c,
        r_t,
        effect,
        float(p),
        int(assign.shape[0]),
        exact,
        (float(lo), float(hi)),
        median_time(km_c),
        median_time(km_t),
        logrank_p,
        curves,
    )
