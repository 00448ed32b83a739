"""Quantiles of event values when whole accounts were randomised (B2B mode).

Each arm's estimate is the pooled sample q-quantile of its accounts' event values,
the inverse empirical CDF X₍⌈N·q⌉₎ of :mod:`abkit.stats.quantile`.  With a few dozen
accounts the cluster delta method of that module is too optimistic (as CR0 is for
means), so the accounts themselves are the units of inference:

* **randomisation test.**  Under the sharp null that the treatment changes no event
  value, every re-assignment a of the accounts to the arms (arm sizes kept, within
  strata) was equally likely, so the share of re-assignments whose difference of
  quantiles Q_{T_a} − Q_{C_a} is at least as large in size as the observed Q_T − Q_C
  is an exact p-value (Fisher 1935; Imbens & Rubin, *Causal Inference*, 2015, ch. 5);
  with more re-assignments than can be listed, random ones give
  (1 + #extreme)/(1 + draws) (Phipson & Smyth 2010).
* **interval by test inversion under a constant shift.**  The hypothesis "every
  treated event value is δ larger than without the treatment" makes y₀ = y − δ·Tᵢ the
  values without it (Tᵢ = 1 for the events of treated accounts); re-assignment a then
  has statistic Q_{T_a}(y₀) − Q_{C_a}(y₀), against the observed Q_T(y) − Q_C(y) − δ,
  and the interval is every δ the two-sided test does not reject at α (Lehmann's
  shift model, *Nonparametrics*, 1975, ch. 2; Rosenbaum, *Observational Studies*,
  2002, §2.4; Imbens & Rubin 2015, §5.7).  The lift's interval inverts the scale
  model y₀ = y·e^(−θ·Tᵢ) with the statistic log Q_T − log Q_C (positive values only),
  whose observed value is log(Q_T/Q_C) − θ.  Quantiles commute with both maps, so
  each hypothesis is tested exactly.
* **cross-check.**  The account bootstrap stratified by arm, with the percentile
  interval (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13).

Every re-assignment's and resample's quantile comes from one call of
:func:`weighted_quantiles` on the sorted pooled values, with no loop over
re-assignments, resamples or events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from abkit.stats.arm import Summable
from abkit.stats.bootstrap import finite_quantiles, resample_counts
from abkit.stats.randomization import (
    LOG_LIMIT,
    RandomizationNonInferiority,
    assignment_matrix,
    invert_test,
    shift_p_value,
    shifted_noninferiority,
)

ADDITIVE, MULTIPLICATIVE = "additive", "multiplicative"
# the interval's ends are searched to this share of the null distribution's spread
TOLERANCE = 1e-3
# about this many floats per block of rows in the weighted-quantile products
_CELLS = 4_000_000


def weighted_quantiles(
    values: np.ndarray, groups: np.ndarray, weights: np.ndarray, q: float
) -> np.ndarray:
    """The q-quantile of every row of a weighting of grouped values.

    Parameters
    ----------
    values : numpy.ndarray
        (N,) event values sorted ascending.
    groups : numpy.ndarray
        (N,) the group (account) of each value, integer codes 0 … G − 1.
    weights : numpy.ndarray
        (R, G) non-negative integer counts: row r takes every value of group g
        ``weights[r, g]`` times (0/1 for an arm of a re-assignment, multinomial
        counts for a bootstrap resample).
    q : float
        The quantile level, 0 < q < 1.

    Returns
    -------
    numpy.ndarray
        (R,): X₍⌈q·Wᵣ⌉₎ of row r's Wᵣ weighted values, the inverse empirical CDF
        (numpy's ``method="inverted_cdf"`` on the values repeated by their weights);
        NaN for a row without values.

    Notes
    -----
    The sorted values are cut into blocks of about √N.  One matrix product gives each
    row's cumulative weight at every block end (rows × groups times groups × blocks),
    which locates the block holding rank ⌈q·Wᵣ⌉; inside it a second product with the
    block's cumulative one-hot groups finds the rank, for all rows in that block at
    once.  The products are single precision when every sum they form is an integer
    below 2²⁴ (exact in float32, and about five times faster), double otherwise.  Ties
    need no care: the cumulative weight at the end of a run of equal values does not
    depend on the order within it.

    Examples
    --------
    Each row equals NumPy's inverted-CDF quantile of the values repeated by their
    group's weight:

    >>> import numpy as np
    >>> from abkit.stats.account_quantile import weighted_quantiles
    >>> values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    >>> groups = np.array([0, 1, 0, 2, 1, 2])
    >>> weights = np.array([[1, 0, 0], [1, 1, 0], [2, 0, 1], [0, 0, 0]])
    >>> weighted_quantiles(values, groups, weights, 0.5).tolist()
    [1.0, 2.0, 3.0, nan]
    >>> float(np.quantile(np.repeat(values, weights[2][groups]), 0.5, method="inverted_cdf"))
    3.0
    """
    x = np.asarray(values, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    exact32 = weights.size and float(np.max(weights)) * x.size < 2**24
    w = np.asarray(weights, dtype=np.float32 if exact32 else float)
    n, rows, k = x.size, w.shape[0], w.shape[1]
    out = np.full(rows, math.nan)
    if n == 0 or rows == 0:
        return out
    size = max(1, math.isqrt(n))
    blocks = -(-n // size)
    per_block = np.bincount(g * blocks + np.arange(n) // size, minlength=k * blocks)
    cumulative = np.cumsum(per_block.reshape(k, blocks), axis=1).astype(w.dtype)
    one_hot = np.eye(k, dtype=w.dtype)
    step = max(1, _CELLS // max(blocks, size))
    for start in range(0, rows, step):
        chunk = w[start : start + step]
        reached = chunk @ cumulative
        total = reached[:, -1]
        rank = np.maximum(np.ceil(total * q - 1e-9), 1.0)
        block = np.count_nonzero(reached < rank[:, None], axis=1)
        block[total <= 0] = -1  # rows without values stay NaN
        previous = np.take_along_axis(reached, np.maximum(block - 1, 0)[:, None], 1)[:, 0]
        needed = rank - np.where(block > 0, previous, 0)
        # rows grouped by the block holding their rank (a loop over blocks, not rows)
        order = np.argsort(block, kind="stable")
        ordered = block[order]
        firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        for first, last in zip(firsts, np.r_[firsts[1:], ordered.size], strict=True):
            b = int(ordered[first])
            if b < 0:
                continue
            which = order[first:last]
            lo, hi = b * size, min((b + 1) * size, n)
            inside = chunk[which] @ np.cumsum(one_hot[:, g[lo:hi]], axis=1)
            position = np.count_nonzero(inside < needed[which, None], axis=1)
            out[start + which] = x[lo + position]
    return out


@dataclass(frozen=True)
class AccountValues(Summable):
    """One arm's event values and the account of each (codes 0 … accounts − 1; an
    account without values still counts in the arm), with the accounts' strata when
    the randomisation was blocked.

    Parameters
    ----------
    values : numpy.ndarray
        Event values, any order.
    account : numpy.ndarray
        The account code of each value.
    accounts : int
        The arm's accounts, with or without values.
    strata : numpy.ndarray or None
        One stratum per account, for a blocked randomisation.

    Raises
    ------
    ValueError
        When ``values`` and ``account`` differ in length.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.account_quantile import AccountValues
    >>> arm = AccountValues(np.array([120.0, 80.0, 95.0]), np.array([0, 0, 1]), accounts=3)
    >>> arm.events, arm.accounts
    (3, 3)
    """

    values: np.ndarray
    account: np.ndarray
    accounts: int
    strata: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.values.shape != self.account.shape:
            raise ValueError("values and account must have the same length")

    @property
    def events(self) -> int:
        """The number of event values."""
        return int(self.values.size)

    @classmethod
    def zero(cls) -> AccountValues:
        """No accounts: the identity of ``+`` and a start for ``sum``."""
        return cls(np.empty(0), np.empty(0, dtype=np.int64), 0)

    def __add__(self, other: object) -> AccountValues:
        """The arm of the accounts of both parts, which must be disjoint.

        Parameters
        ----------
        other : AccountValues
            The values of other accounts of the same arm: with strata when this part
            has them.

        Returns
        -------
        AccountValues
            The values concatenated, the other part's account codes shifted by this
            part's ``accounts`` (codes stay 0 … accounts − 1), strata concatenated.
            The quantile tests depend on which values share an account, not on the
            codes' order.

        Raises
        ------
        ValueError
            When one part has strata and the other does not.

        Examples
        --------
        >>> import numpy as np
        >>> a = AccountValues(np.array([1.0, 2.0]), np.array([0, 1]), accounts=2)
        >>> b = AccountValues(np.array([5.0]), np.array([0]), accounts=2)
        >>> both = a + b
        >>> both.account.tolist(), both.accounts
        ([0, 1, 2], 4)
        """
        if not isinstance(other, AccountValues):
            return NotImplemented
        if other.accounts == 0:
            return self
        if self.accounts == 0:
            return other
        if (self.strata is None) != (other.strata is None):
            raise ValueError(
                "cannot add account values with strata and without: both parts must come "
                "from the same (blocked or unblocked) randomisation"
            )
        strata = None
        if self.strata is not None and other.strata is not None:
            strata = np.concatenate([self.strata, other.strata])
        return AccountValues(
            np.concatenate([self.values, other.values]),
            np.concatenate([self.account, other.account + self.accounts]),
            self.accounts + other.accounts,
            strata,
        )


def comparable(control: AccountValues, treatment: AccountValues) -> bool:
    """Whether two arms can be compared: at least 2 accounts each and some values.

    Parameters
    ----------
    control, treatment : AccountValues
        The two arms.

    Returns
    -------
    bool
        True when each arm has at least 2 accounts and at least one value.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.account_quantile import AccountValues, comparable
    >>> one = AccountValues(np.array([1.0, 2.0]), np.array([0, 0]), accounts=1)
    >>> two = AccountValues(np.array([1.0, 2.0]), np.array([0, 1]), accounts=2)
    >>> comparable(two, two), comparable(one, two)
    (True, False)
    """
    return min(control.accounts, treatment.accounts) >= 2 and bool(
        control.events and treatment.events
    )


@dataclass(frozen=True)
class SortedEvents:
    """Event values sorted ascending with the account code of each.

    Parameters
    ----------
    values : numpy.ndarray
        Event values, ascending.
    account : numpy.ndarray
        The account code of each value.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.account_quantile import SortedEvents
    >>> events = SortedEvents.of(np.array([3.0, 1.0, 2.0]), np.array([0, 1, 2]))
    >>> events.values.tolist(), events.account.tolist()
    ([1.0, 2.0, 3.0], [1, 2, 0])
    """

    values: np.ndarray
    account: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, account: np.ndarray) -> SortedEvents:
        """The events sorted by value (a stable sort, so ties keep their order).

        Parameters
        ----------
        values, account : numpy.ndarray
            Event values in any order and the account code of each.

        Returns
        -------
        SortedEvents
        """
        order = np.argsort(values, kind="stable")
        return cls(values[order], account[order])


def merge(first: SortedEvents, second: SortedEvents) -> SortedEvents:
    """Two sorted event sets as one, in O(N) after a binary search (no re-sort).

    Parameters
    ----------
    first, second : SortedEvents
        Two sets of sorted events.

    Returns
    -------
    SortedEvents
        All events, ascending; a value of ``second`` equal to one of ``first`` comes
        after it.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.account_quantile import SortedEvents, merge
    >>> a = SortedEvents(np.array([1.0, 3.0, 5.0]), np.array([0, 0, 1]))
    >>> b = SortedEvents(np.array([2.0, 3.0]), np.array([2, 3]))
    >>> both = merge(a, b)
    >>> both.values.tolist(), both.account.tolist()
    ([1.0, 2.0, 3.0, 3.0, 5.0], [0, 2, 0, 3, 1])
    """
    n = first.values.size + second.values.size
    at = np.searchsorted(first.values, second.values, side="right") + np.arange(second.values.size)
    rest = np.ones(n, dtype=bool)
    rest[at] = False
    values, account = np.empty(n), np.empty(n, dtype=np.int64)
    values[at], account[at] = second.values, second.account
    values[rest], account[rest] = first.values, first.account
    return SortedEvents(values, account)


@dataclass
class QuantileShifts:
    """The randomisation statistic of a quantile difference under hypothesised shifts
    (:class:`~abkit.stats.randomization.ShiftStatistics`).

    ``control`` and ``treatment`` hold the arms' sorted events (account codes 0 … G − 1
    over both arms), ``treated`` marks the treated accounts and ``assign`` the
    re-assignments (rows × G, True = treatment).  A hypothesis moves every treated
    value alike, so each arm keeps its order and the two are merged, not re-sorted;
    the weights of both arms' rows are built once and every statistic is cached.

    Parameters
    ----------
    control, treatment : SortedEvents
        The arms' sorted events, account codes 0 … G − 1 over both arms.
    treated : numpy.ndarray
        One bool per account, True for the treated.
    assign : numpy.ndarray
        Re-assignments, bool (rows, G).
    q : float
        The quantile level.
    exact : bool
        Whether ``assign`` lists every re-assignment.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.account_quantile import AccountValues
    >>> rng = np.random.default_rng(2)
    >>> def arm(accounts, scale):
    ...     account = np.repeat(np.arange(accounts), rng.integers(20, 60, accounts))
    ...     level = rng.lognormal(0, 0.3, accounts)[account]  # each account's own level
    ...     values = rng.lognormal(0, 0.4, account.size) * level * scale
    ...     return AccountValues(values, account, accounts)
    >>> control, treatment = arm(6, 1.0), arm(6, 1.6)
    >>> from abkit.stats.account_quantile import quantile_shifts
    >>> shifts = quantile_shifts(control, treatment, 0.9, max_exact=10_000, draws=0, seed=0)
    >>> shifts.assign.shape, shifts.exact, bool(shifts.positive)
    ((924, 12), True, True)
    >>> values, observed = shifts.statistics(0.0, "additive")
    >>> values.shape, round(observed, 4), round(shifts.statistics(0.1, "additive")[1], 4)
    ((924,), 0.3655, 0.2655)
    """

    control: SortedEvents
    treatment: SortedEvents
    treated: np.ndarray
    assign: np.ndarray
    q: float
    exact: bool
    _rows: np.ndarray = field(init=False, repr=False)
    _cache: dict[tuple[float, str], tuple[np.ndarray, float]] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        arms = np.vstack([self.assign, self.treated[None, :]]).astype(float)
        self._rows = np.vstack([arms, 1.0 - arms])

    @property
    def positive(self) -> bool:
        """Whether every value is positive (needed for a multiplicative effect)."""
        firsts = [e.values[0] for e in (self.control, self.treatment) if e.values.size]
        return bool(firsts) and min(firsts) > 0

    def pooled(self, shift: float = 0.0, kind: str = ADDITIVE) -> SortedEvents:
        """Both arms' events with the treated values moved back by the hypothesised
        effect (y − δ, or y·e^(−θ)).

        Parameters
        ----------
        shift : float, default 0.0
            δ, or θ = log(1 + lift) for ``kind`` "multiplicative".
        kind : str, default "additive"
            "additive" or "multiplicative".

        Returns
        -------
        SortedEvents
            The pooled events, sorted.
        """
        t = self.treatment
        moved = t.values - shift if kind == ADDITIVE else t.values * math.exp(-shift)
        return merge(self.control, SortedEvents(moved, t.account))

    def quantiles(self, shift: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Treatment and control quantiles of the values without the hypothesised
        effect, for every re-assignment and (last) the observed one.

        Parameters
        ----------
        shift : float
            The hypothesised effect.
        kind : str
            "additive" or "multiplicative".

        Returns
        -------
        treatment, control : numpy.ndarray
            Each (re-assignments + 1,), the observed assignment last.
        """
        events = self.pooled(shift, kind)
        both = weighted_quantiles(events.values, events.account, self._rows, self.q)
        half = both.size // 2
        return both[:half], both[half:]

    def statistics(self, shift: float, kind: str) -> tuple[np.ndarray, float]:
        """The statistic under a hypothesised effect (cached per hypothesis).

        Parameters
        ----------
        shift : float
            δ ("additive"), or θ = log(1 + lift) ("multiplicative").
        kind : str
            "additive": Q_T − Q_C; "multiplicative": log Q_T − log Q_C.

        Returns
        -------
        values : numpy.ndarray
            The statistic of every re-assignment.
        observed : float
            The observed statistic, Q_T(y) − Q_C(y) − δ (or log(Q_T/Q_C) − θ).
        """
        key = (shift, kind)
        if key not in self._cache:
            treatment, control = self.quantiles(shift, kind)
            if kind == ADDITIVE:
                stat = treatment - control
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    stat = np.log(treatment) - np.log(control)
            self._cache[key] = (stat[:-1], float(stat[-1]))
        return self._cache[key]


@dataclass(frozen=True)
class AccountQuantileResult:
    """The arms' quantiles, their difference with the randomisation p-value and the
    inverted intervals (effect and lift), the bootstrap cross-check (``effects`` and
    ``lifts`` per resample, percentile intervals) and each account's own quantile.

    Parameters
    ----------
    q : float
        The quantile level.
    control, treatment : float
        Each arm's pooled q-quantile.
    p_value : float
        The two-sided randomisation p-value of no effect.
    ci : tuple of float
        The differences not rejected under a constant shift (NaN when not inverted).
    relative_ci : tuple of float
        The lifts not rejected under a constant scale (NaN unless every value is
        positive).
    assignments : int
        The re-assignments used.
    exact : bool
        Whether they are all of them.
    null_sd : float
        The statistic's standard deviation over the re-assignments (no effect).
    effects, lifts : numpy.ndarray
        The difference and the lift in each bootstrap resample.
    percentile, lift_percentile : tuple of float
        Their percentile intervals.
    per_account : dict
        Arm → (each account's own quantile, its number of values).

    Examples
    --------
    See :func:`account_quantile_test`.
    """

    q: float
    control: float
    treatment: float
    p_value: float
    ci: tuple[float, float]
    relative_ci: tuple[float, float]
    assignments: int
    exact: bool
    null_sd: float
    effects: np.ndarray
    lifts: np.ndarray
    percentile: tuple[float, float]
    lift_percentile: tuple[float, float]
    per_account: dict[str, tuple[np.ndarray, np.ndarray]]  # arm → (quantiles, events)

    @property
    def effect(self) -> float:
        """Q_T − Q_C."""
        return self.treatment - self.control

    @property
    def relative_effect(self) -> float:
        """Q_T/Q_C − 1 (NaN when Q_C is 0)."""
        return self.treatment / self.control - 1 if self.control else math.nan


def quantile_shifts(
    control: AccountValues,
    treatment: AccountValues,
    q: float,
    max_exact: int,
    draws: int,
    seed: int,
) -> QuantileShifts:
    """The randomisation statistic of the quantile difference over all re-assignments
    (up to ``max_exact``) or ``draws`` random ones; treatment's account codes follow
    control's.

    Parameters
    ----------
    control, treatment : AccountValues
        The arms' event values by account (with strata in both for a blocked
        randomisation).
    q : float
        The quantile level.
    max_exact : int
        The most re-assignments enumerated.
    draws : int
        Random re-assignments otherwise.
    seed : int
        Seed of the random draws.

    Returns
    -------
    QuantileShifts
        Treatment's account codes shifted by ``control.accounts``.

    Examples
    --------
    See :class:`QuantileShifts`.
    """
    treated = np.concatenate([np.zeros(control.accounts, bool), np.ones(treatment.accounts, bool)])
    if control.strata is None or treatment.strata is None:
        strata = np.zeros(treated.size, dtype=np.int64)
    else:
        labels = np.concatenate([control.strata, treatment.strata])
        strata = np.unique(labels, return_inverse=True)[1].ravel()
    assign, exact = assignment_matrix(
        treated, strata, max_exact, draws, np.random.default_rng(seed)
    )
    return QuantileShifts(
        SortedEvents.of(control.values.astype(float), control.account.astype(np.int64)),
        SortedEvents.of(
            treatment.values.astype(float), treatment.account.astype(np.int64) + control.accounts
        ),
        treated,
        assign,
        q,
        exact,
    )


def _spread(stats: QuantileShifts, kind: str) -> float:
    values = stats.statistics(0.0, kind)[0]
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size > 1 else math.nan


def account_quantile_test(
    control: AccountValues,
    treatment: AccountValues,
    q: float,
    alpha: float = 0.05,
    max_exact: int = 10_000,
    draws: int = 10_000,
    resamples: int = 10_000,
    seed: int = 0,
    invert: bool = True,
) -> AccountQuantileResult:
    """Randomisation test, inverted intervals and account bootstrap for the difference
    of two arms' q-quantiles (see the module docstring).

    The re-assignments are listed when there are at most ``max_exact`` of them, else
    ``draws`` random ones are used; ``resamples`` bootstrap resamples.  The lift's
    interval needs every value positive, else it is NaN; ``invert=False`` skips both
    intervals (NaN), for a p-value alone.

    Parameters
    ----------
    control, treatment : AccountValues
        The arms' event values by account.
    q : float
        The quantile level, 0 < q < 1.
    alpha : float, default 0.05
        1 − the confidence level of the intervals.
    max_exact : int, default 10_000
        The most re-assignments enumerated.
    draws : int, default 10_000
        Random re-assignments otherwise.
    resamples : int, default 10_000
        Bootstrap resamples.
    seed : int, default 0
        Seed of the re-assignments and resamples.
    invert : bool, default True
        False skips the inverted intervals.

    Returns
    -------
    AccountQuantileResult
        The quantiles, the p-value, the inverted and the bootstrap intervals.

    References
    ----------
    .. [1] R. A. Fisher, *The Design of Experiments*, Oliver & Boyd, 1935.
    .. [2] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, ch. 5 and §5.7.
    .. [3] B. Phipson and G. K. Smyth, "Permutation P-values should never be zero:
       calculating exact P-values when permutations are randomly drawn",
       Statistical Applications in Genetics and Molecular Biology 9, 2010.
    .. [4] E. L. Lehmann, *Nonparametrics: Statistical Methods Based on Ranks*,
       Holden-Day, 1975, ch. 2.
    .. [5] P. R. Rosenbaum, *Observational Studies*, 2nd ed., Springer, 2002, §2.4.
    .. [6] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
       Hall, 1993, ch. 13.

    Examples
    --------
    The treated values are 60 % larger, but with 6 accounts per arm the accounts'
    own levels hide it:

    >>> import numpy as np
    >>> from abkit.stats.account_quantile import AccountValues
    >>> rng = np.random.default_rng(2)
    >>> def arm(accounts, scale):
    ...     account = np.repeat(np.arange(accounts), rng.integers(20, 60, accounts))
    ...     level = rng.lognormal(0, 0.3, accounts)[account]  # each account's own level
    ...     values = rng.lognormal(0, 0.4, account.size) * level * scale
    ...     return AccountValues(values, account, accounts)
    >>> control, treatment = arm(6, 1.0), arm(6, 1.6)
    >>> from abkit.stats.account_quantile import account_quantile_test
    >>> r = account_quantile_test(control, treatment, 0.9, resamples=2000)
    >>> round(r.control, 4), round(r.treatment, 4), round(r.p_value, 4), r.assignments
    (1.9771, 2.3426, 0.2835, 924)
    >>> [round(v, 4) for v in r.ci], [round(v, 4) for v in r.relative_ci]
    ([-0.3253, 1.1114], [-0.1408, 0.8491])
    >>> r.control == float(np.quantile(control.values, 0.9, method="inverted_cdf"))
    True
    """
    stats = quantile_shifts(control, treatment, q, max_exact, draws, seed)
    treated_q, control_q = (float(a[-1]) for a in stats.quantiles(0.0, ADDITIVE))
    effect = treated_q - control_q
    spread = _spread(stats, ADDITIVE)
    ci = relative_ci = (math.nan, math.nan)
    if invert:
        ci, relative_ci = _intervals(stats, effect, spread, alpha)
    effects, lifts, per_account = _bootstrap(stats, resamples, seed)
    return AccountQuantileResult(
        q=q,
        control=control_q,
        treatment=treated_q,
        p_value=shift_p_value(stats, 0.0, ADDITIVE),
        ci=ci,
        relative_ci=relative_ci,
        assignments=int(stats.assign.shape[0]),
        exact=stats.exact,
        null_sd=spread,
        effects=effects,
        lifts=lifts,
        percentile=finite_quantiles(effects, (alpha / 2, 1 - alpha / 2)),
        lift_percentile=finite_quantiles(lifts, (alpha / 2, 1 - alpha / 2)),
        per_account=per_account,
    )


def _intervals(
    stats: QuantileShifts, effect: float, spread: float, alpha: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The effect's and the lift's intervals by inverting the randomisation test under
    a constant shift and a constant scale (the lift's NaN unless all values are
    positive)."""
    ci = invert_test(
        lambda d: shift_p_value(stats, d, ADDITIVE),
        effect,
        alpha,
        spread,
        tolerance=TOLERANCE * spread,
    )
    relative_ci = (math.nan, math.nan)
    if stats.positive:
        log_spread = _spread(stats, MULTIPLICATIVE)
        low, high = invert_test(
            lambda t: shift_p_value(stats, t, MULTIPLICATIVE),
            stats.statistics(0.0, MULTIPLICATIVE)[1],
            alpha,
            log_spread,
            limit=LOG_LIMIT,
            tolerance=TOLERANCE * log_spread,
        )
        relative_ci = (math.expm1(low), math.expm1(high))
    return ci, relative_ci


def _bootstrap(
    stats: QuantileShifts, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per resample of accounts (stratified by arm): the difference and the lift of the
    quantiles; and each account's own quantile with its number of values."""
    events = stats.pooled()
    values, account = events.values, events.account
    rng = np.random.default_rng([seed, 1])
    accounts = stats.treated.size
    arms = {}
    for name, members in (("control", ~stats.treated), ("treatment", stats.treated)):
        index = np.flatnonzero(members)
        weights = np.zeros((resamples, accounts))
        weights[:, index] = resample_counts(rng, index.size, resamples)
        arms[name] = weighted_quantiles(values, account, weights, stats.q)
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = arms["treatment"] / arms["control"] - 1
    own = weighted_quantiles(values, account, np.eye(accounts), stats.q)
    counts = np.bincount(account, minlength=accounts)
    per_account = {
        "control": (own[~stats.treated], counts[~stats.treated]),
        "treatment": (own[stats.treated], counts[stats.treated]),
    }
    return arms["treatment"] - arms["control"], lifts, per_account


def account_quantile_noninferiority(
    control: AccountValues,
    treatment: AccountValues,
    q: float,
    margin: float,
    relative: bool,
    higher_is_better: bool,
    alpha: float = 0.05,
    max_exact: int = 10_000,
    draws: int = 10_000,
    seed: int = 0,
) -> RandomizationNonInferiority:
    """A guardrail on a quantile ("p95 latency must not rise by more than 50 ms"): the
    one-sided randomisation test with the treated values shifted to the harmful
    margin (additive, or multiplicative for a relative margin; positive values only),
    and its one-sided bound by inversion.

    Parameters
    ----------
    control, treatment : AccountValues
        The arms' event values by account.
    q : float
        The quantile level.
    margin : float
        δ > 0 in the values' unit, or a share when ``relative``.
    relative : bool
        Whether the margin is on the lift.
    higher_is_better : bool
        The direction in which the metric improves.
    alpha : float, default 0.05
        The one-sided level of the bound.
    max_exact : int, default 10_000
        The most re-assignments enumerated.
    draws : int, default 10_000
        Random re-assignments otherwise.
    seed : int, default 0
        Seed of the random draws.

    Returns
    -------
    RandomizationNonInferiority
        NaN p-values and bound for a relative margin when some value is not
        positive.

    References
    ----------
    .. [1] P. R. Rosenbaum, *Observational Studies*, 2nd ed., Springer, 2002, §2.4.4.
    .. [2] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, §5.7.

    Examples
    --------
    Must the p90 not rise by more than 0.5?  Not shown with these accounts:

    >>> import numpy as np
    >>> from abkit.stats.account_quantile import AccountValues
    >>> rng = np.random.default_rng(2)
    >>> def arm(accounts, scale):
    ...     account = np.repeat(np.arange(accounts), rng.integers(20, 60, accounts))
    ...     level = rng.lognormal(0, 0.3, accounts)[account]  # each account's own level
    ...     values = rng.lognormal(0, 0.4, account.size) * level * scale
    ...     return AccountValues(values, account, accounts)
    >>> control, treatment = arm(6, 1.0), arm(6, 1.6)
    >>> from abkit.stats.account_quantile import account_quantile_noninferiority
    >>> r = account_quantile_noninferiority(
    ...     control, treatment, 0.9, margin=0.5, relative=False, higher_is_better=False
    ... )
    >>> round(r.p_value, 4), round(r.bound, 4)
    (0.3225, 0.9364)
    """
    stats = quantile_shifts(control, treatment, q, max_exact, draws, seed)
    kind = MULTIPLICATIVE if relative else ADDITIVE
    if relative and not stats.positive:
        nan = math.nan
        return RandomizationNonInferiority(nan, nan, nan, int(stats.assign.shape[0]), stats.exact)
    estimate = stats.statistics(0.0, kind)[1]
    spread = _spread(stats, kind)
    return shifted_noninferiority(
        stats,
        estimate,
        spread,
        margin,
        relative,
        higher_is_better,
        alpha,
        int(stats.assign.shape[0]),
        tolerance=TOLERANCE * spread,
    )
