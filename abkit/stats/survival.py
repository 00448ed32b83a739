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
        """The number of subjects."""
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
    """A Kaplan–Meier curve, or one per row of a weight matrix (:func:`kaplan_meier`).

    Parameters
    ----------
    times : numpy.ndarray
        The distinct event times t_j, increasing.
    survival : numpy.ndarray
        Ŝ(t_j) just after each time; shape (times,), or (rows, times) for weights.
    at_risk : numpy.ndarray
        n_j, the (weighted) subjects at risk at each time, the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.survival import kaplan_meier
    >>> time = np.array([2.0, 3.0, 3.0, 5.0, 7.0, 8.0, 10.0, 12.0])  # days to value
    >>> event = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=bool)  # False: censored
    >>> km = kaplan_meier(time, event)
    >>> km.times.tolist(), km.at_risk.tolist()
    ([2.0, 3.0, 5.0, 8.0, 10.0], [8.0, 7.0, 5.0, 3.0, 2.0])
    """

    times: np.ndarray  # distinct event times, increasing
    survival: np.ndarray  # Ŝ just after each time; shape (..., times)
    at_risk: np.ndarray


def kaplan_meier(
    time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None
) -> KaplanMeier:
    """KM curve; ``weights`` (resamples × subjects) gives one curve per row.

    Ŝ(t) = Π_{t_j ≤ t} (1 − d_j/n_j) over the distinct event times t_j, with d_j the
    events at t_j and n_j the subjects with time ≥ t_j, each subject counted with
    its weight (a bootstrap count, or 0/1 for an arm of a re-assignment).

    Parameters
    ----------
    time : numpy.ndarray
        Each subject's time to event or to censoring.
    event : numpy.ndarray
        True where the event was observed.
    weights : numpy.ndarray or None
        (rows, subjects) weights; None for the ordinary estimator.

    Returns
    -------
    KaplanMeier
        One curve, or one per row of ``weights``; a curve with no times when no
        event was observed.

    References
    ----------
    .. [1] E. L. Kaplan and P. Meier, "Nonparametric estimation from incomplete
       observations", Journal of the American Statistical Association 53, 457–481,
       1958.

    Examples
    --------
    The same curve as statsmodels' ``SurvfuncRight``:

    >>> import numpy as np
    >>> from abkit.stats.survival import kaplan_meier
    >>> time = np.array([2.0, 3.0, 3.0, 5.0, 7.0, 8.0, 10.0, 12.0])  # days to value
    >>> event = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=bool)  # False: censored
    >>> km = kaplan_meier(time, event)
    >>> np.round(km.survival, 4).tolist()
    [0.875, 0.75, 0.6, 0.4, 0.2]
    >>> from statsmodels.duration.survfunc import SurvfuncRight
    >>> np.round(SurvfuncRight(time, event.astype(int)).surv_prob, 4).tolist()
    [0.875, 0.75, 0.6, 0.4, 0.2]

    A weight matrix gives one curve per row (here: all subjects, the first four):

    >>> rows = np.array([np.ones(8), np.r_[np.ones(4), np.zeros(4)]])
    >>> np.round(kaplan_meier(time, event, rows).survival, 4).tolist()
    [[0.875, 0.75, 0.6, 0.4, 0.2], [0.75, 0.5, 0.0, 0.0, 0.0]]
    """
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
    """∫₀^τ Ŝ(t) dt for a step function (area of rectangles up to τ).

    Parameters
    ----------
    km : KaplanMeier
        One curve, or one per row.
    tau : float
        τ, the horizon.

    Returns
    -------
    float or numpy.ndarray
        RMST(τ), the mean time to event restricted to τ; one per row for a
        weighted curve.

    References
    ----------
    .. [1] P. Royston and M. K. B. Parmar, "Restricted mean survival time: an
       alternative to the hazard ratio for the design and analysis of randomized
       trials with a time-to-event outcome", BMC Medical Research Methodology 13,
       152, 2013.

    Examples
    --------
    2·1 + 1·0.875 + 2·0.75 + 3·0.6 + 2·0.4 = 6.975:

    >>> import numpy as np
    >>> from abkit.stats.survival import kaplan_meier
    >>> time = np.array([2.0, 3.0, 3.0, 5.0, 7.0, 8.0, 10.0, 12.0])  # days to value
    >>> event = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=bool)  # False: censored
    >>> km = kaplan_meier(time, event)
    >>> from abkit.stats.survival import rmst
    >>> round(rmst(km, 10.0), 4)
    6.975
    """
    edges = np.concatenate([[0.0], km.times[km.times < tau], [tau]])
    surv = np.atleast_2d(km.survival)[..., : edges.size - 2]
    levels = np.concatenate([np.ones((*surv.shape[:-1], 1)), surv], axis=-1)
    area = (levels * np.diff(edges)).sum(axis=-1)
    return float(area[0]) if np.ndim(km.survival) == 1 else area


def median_time(km: KaplanMeier) -> float:
    """Smallest time with Ŝ(t) ≤ 0.5; NaN when the curve never gets there.

    Parameters
    ----------
    km : KaplanMeier
        One curve.

    Returns
    -------
    float
        The median time to event.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.survival import kaplan_meier
    >>> time = np.array([2.0, 3.0, 3.0, 5.0, 7.0, 8.0, 10.0, 12.0])  # days to value
    >>> event = np.array([1, 1, 0, 1, 0, 1, 1, 0], dtype=bool)  # False: censored
    >>> km = kaplan_meier(time, event)
    >>> from abkit.stats.survival import median_time
    >>> median_time(km)
    8.0
    """
    below = np.flatnonzero(np.asarray(km.survival) <= 0.5)
    return float(km.times[below[0]]) if below.size else math.nan


def logrank(
    time_c: np.ndarray, event_c: np.ndarray, time_t: np.ndarray, event_t: np.ndarray
) -> tuple[float, float]:
    """Log-rank χ² statistic and p-value (statsmodels ``survdiff``).

    Σ_j (d_T,j − E_j) over the event times, E_j = d_j·n_T,j/n_j, squared over its
    hypergeometric variance: χ² with 1 degree of freedom under equal hazards.

    Parameters
    ----------
    time_c, event_c : numpy.ndarray
        Control subjects' times and event flags.
    time_t, event_t : numpy.ndarray
        Treatment subjects' times and event flags.

    Returns
    -------
    statistic : float
        χ².
    p_value : float
        P(χ²₁ ≥ statistic).

    References
    ----------
    .. [1] N. Mantel, "Evaluation of survival data and two new rank order statistics
       arising in its consideration", Cancer Chemotherapy Reports 50, 163–170, 1966.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> time_c = np.minimum(rng.exponential(10, 30), 21.0)  # 21 days of follow-up
    >>> time_t = np.minimum(rng.exponential(6, 30), 21.0)
    >>> event_c, event_t = time_c < 21.0, time_t < 21.0
    >>> from abkit.stats.survival import logrank
    >>> statistic, p_value = logrank(time_c, event_c, time_t, event_t)
    >>> round(statistic, 4), round(p_value, 4)
    (3.9004, 0.0483)
    """
    from statsmodels.duration.survfunc import survdiff

    time = np.concatenate([time_c, time_t])
    status = np.concatenate([event_c, event_t]).astype(int)
    group = np.concatenate([np.zeros(time_c.size), np.ones(time_t.size)])
    stat, p = survdiff(time, status, group)
    return float(stat), float(p)


@dataclass(frozen=True)
class RmstComparison:
    """The comparison of two arms' time to event (:func:`rmst_difference_test`).

    Parameters
    ----------
    tau : float
        The horizon τ.
    rmst_control, rmst_treatment : float
        RMST(τ) per arm.
    effect : float
        Treatment − control, in days.
    p_value : float
        The randomisation p-value of the difference over subjects (accounts).
    assignments : int
        The re-assignments used.
    exact : bool
        Whether they are all of them.
    ci : tuple of float
        The bootstrap percentile interval of the difference.
    median_control, median_treatment : float
        The Kaplan–Meier medians (NaN when a curve stays above 0.5).
    logrank_p : float
        The log-rank p-value, a cross-check.
    curves : dict
        Arm → {"times": [...], "survival": [...]}.

    Examples
    --------
    See :func:`rmst_difference_test`.
    """

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

    The effect is RMST_T(τ) − RMST_C(τ).  The p-value is the share of
    re-assignments of the subjects to the arms (all of them up to 200,000, else
    ``resamples`` random ones, (1 + #extreme)/(1 + draws)) whose difference is at
    least as large in size; the interval is the percentile interval of the
    differences over ``resamples`` bootstrap resamples drawn within each arm.

    Parameters
    ----------
    time_c, event_c : numpy.ndarray
        Control subjects' times and event flags.
    time_t, event_t : numpy.ndarray
        Treatment subjects' times and event flags.
    tau : float or None
        The horizon; None for the shorter longest follow-up of the arms.
    resamples : int, default 10_000
        Bootstrap resamples, and random re-assignments when they cannot all be
        listed.
    alpha : float, default 0.05
        1 − the confidence level of the interval.
    seed : int, default 0
        Seed of the resamples (re-assignments use seed + 1).

    Returns
    -------
    RmstComparison
        The RMSTs, their difference with its p-value and interval, the medians,
        the log-rank p-value and both curves.

    References
    ----------
    .. [1] E. L. Kaplan and P. Meier, "Nonparametric estimation from incomplete
       observations", Journal of the American Statistical Association 53, 457–481,
       1958.
    .. [2] P. Royston and M. K. B. Parmar, "Restricted mean survival time: an
       alternative to the hazard ratio for the design and analysis of randomized
       trials with a time-to-event outcome", BMC Medical Research Methodology 13,
       152, 2013.
    .. [3] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, ch. 5.
    .. [4] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
       Hall, 1993, ch. 13.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> time_c = np.minimum(rng.exponential(10, 30), 21.0)  # 21 days of follow-up
    >>> time_t = np.minimum(rng.exponential(6, 30), 21.0)
    >>> event_c, event_t = time_c < 21.0, time_t < 21.0
    >>> from abkit.stats.survival import rmst_difference_test
    >>> r = rmst_difference_test(time_c, event_c, time_t, event_t, resamples=2000)
    >>> round(r.tau, 3), round(r.rmst_control, 3), round(r.rmst_treatment, 3)
    (15.538, 7.158, 5.277)
    >>> round(r.effect, 3), round(r.p_value, 4), r.exact, [round(v, 3) for v in r.ci]
    (-1.88, 0.1254, False, [-4.272, 0.594])
    >>> round(r.median_control, 3), round(r.median_treatment, 3), round(r.logrank_p, 4)
    (6.422, 4.684, 0.0483)
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
