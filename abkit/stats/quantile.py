"""Quantiles of event values (p95 latency, median tokens) when each unit has many events.

The events of one user are correlated (a slow device, long prompts), so the events
are not independent draws and the textbook order-statistic interval is too narrow.
The randomisation unit is the independent observation: with Q̂ the sample q-quantile
of the N event values of an arm and F̂ = Σᵢ cᵢ / Σᵢ nᵢ the share of events at or
below Q̂ (cᵢ of unit i's nᵢ events), F̂ is a ratio of per-unit sums, whose variance
the delta method gives with units as clusters,

    σ²_F = K / (K − 1) · Σᵢ (cᵢ − F̂·nᵢ)² / N²        (K units with events),

and by the Bahadur representation Var(Q̂) ≈ σ²_F / f(Q)².  Instead of estimating the
density f, the interval is read off the order statistics at q ± z·σ_F,

    [L, U] = [X₍⌊N(q − zσ_F)⌋₎, X₍⌈N(q + zσ_F)⌉₎],   se(Q̂) = (U − L) / (2z),

(Deng, Knoblich & Lu, "Applying the Delta Method in Metric Analytics: A Practical
Guide with Novel Ideas", KDD 2018, section 4; GrowthBook's
``QuantileClusteredStatistic`` uses the same variance).  With σ²_F = q(1 − q)/N, the
binomial variance of independent events, the same construction is the classic
distribution-free interval, which is what a test that ignores users gives: it is
shown beside the clustered one to measure how much clustering matters (the design
effect σ²_F / (q(1 − q)/N)).  Two arms are independent, so the difference of
quantiles has se √(se²_C + se²_T) and a normal reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from abkit.stats.arm import ArmSummary, Summable
from abkit.stats.distributions import norm_ppf
from abkit.stats.fixed_horizon import (
    Comparison,
    ratio_variance,
    two_sided,
    undefined_comparison,
)

CLUSTERED = "quantile z-test, user-clustered variance (Deng, Knoblich & Lu 2018)"
INDEPENDENT = "quantile z-test, events as independent (ignores users)"

# the interval's order statistics are read at q ± z·σ_F with the z of a 95 % interval;
# the standard error it implies hardly depends on this choice (GrowthBook uses the same)
_Z = float(norm_ppf(0.975))


@dataclass(frozen=True)
class QuantileEstimate:
    """One arm's q-quantile of event values with its standard error.

    ``events`` values from ``units`` units (those with at least one value);
    ``lower``/``upper`` are the order statistics at q ∓ z·σ_F that the standard
    error ``se`` = (upper − lower)/(2z) comes from; ``design_effect`` is σ²_F over
    the binomial q(1 − q)/N of independent events.  ``problem`` says why no standard
    error exists (too few events), with ``se`` then NaN.

    Parameters
    ----------
    q : float
        The quantile level.
    estimate : float
        Q̂ = X₍⌈N·q⌉₎, NaN without events.
    events : int
        N, the event values.
    units : int
        K, the units with at least one value.
    se : float
        (upper − lower)/(2z), NaN when ``problem`` is set.
    lower, upper : float
        X₍⌊N(q − zσ_F)⌋₎ and X₍⌈N(q + zσ_F)⌉₎.
    design_effect : float
        σ²_F / (q(1 − q)/N); 1 for independent events.
    clustered : bool, default True
        Whether σ²_F clusters the events by unit (else the binomial variance).
    problem : str or None
        Why there is no standard error; None when there is one.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(300), 20)  # 300 users, 20 requests each
    >>> slow = rng.lognormal(0, 0.5, 300)  # some users' devices are slower
    >>> latency = rng.lognormal(0, 0.5, users.size) * slow[users]
    >>> e = quantile_estimate(latency, users, 0.95)
    >>> e.events, e.units, round(e.estimate, 4), round(e.se, 4), round(e.design_effect, 2)
    (6000, 300, 3.2659, 0.1482, 4.67)
    """

    q: float
    estimate: float
    events: int
    units: int
    se: float
    lower: float
    upper: float
    design_effect: float
    clustered: bool = True
    problem: str | None = None


def order_statistic(sorted_values: np.ndarray, rank: int) -> float:
    """X₍rank₎ of sorted values (1-based rank, clipped to 1 … N).

    Parameters
    ----------
    sorted_values : numpy.ndarray
        N values, ascending (N ≥ 1).
    rank : int
        The 1-based rank; below 1 reads X₍₁₎, above N reads X₍N₎.

    Returns
    -------
    float
        X₍min(max(rank, 1), N)₎.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import order_statistic
    >>> xs = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> order_statistic(xs, 2), order_statistic(xs, 0), order_statistic(xs, 9)
    (2.0, 1.0, 5.0)
    """
    n = sorted_values.size
    return float(sorted_values[min(max(rank, 1), n) - 1])


def sample_quantile(sorted_values: np.ndarray, q: float) -> float:
    """The inverse of the empirical CDF: X₍⌈N·q⌉₎, the smallest value with at least a
    share q of the values at or below it (Hyndman & Fan 1996, definition 1; numpy's
    ``method="inverted_cdf"``).

    Parameters
    ----------
    sorted_values : numpy.ndarray
        N values, ascending (N ≥ 1).
    q : float
        The quantile level, 0 < q < 1.

    Returns
    -------
    float
        X₍⌈N·q⌉₎ (⌈·⌉ with a 1e-9 tolerance, so that N·q = 3.0000000001 reads X₍₃₎).

    References
    ----------
    .. [1] R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages",
       The American Statistician 50, 361–365, 1996.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import sample_quantile
    >>> x = np.array([12.0, 3.0, 7.0, 5.0, 9.0, 1.0])
    >>> sample_quantile(np.sort(x), 0.9), float(np.quantile(x, 0.9, method="inverted_cdf"))
    (12.0, 12.0)
    """
    return order_statistic(sorted_values, math.ceil(sorted_values.size * q - 1e-9))


def quantile_estimate(
    values: np.ndarray, units: np.ndarray, q: float, clustered: bool = True
) -> QuantileEstimate:
    """The q-quantile of ``values`` and its standard error, clustered by ``units``.

    Parameters
    ----------
    values : numpy.ndarray
        Event values (finite floats), any order.
    units : numpy.ndarray
        The unit (cluster) of each value, as integer codes.
    q : float
        The quantile level, 0 < q < 1.
    clustered : bool, default True
        False treats the events as independent (the naive test).

    Returns
    -------
    QuantileEstimate
        Q̂ = X₍⌈N·q⌉₎ with the order statistics at N·(q ∓ z·σ_F) and
        se = (U − L)/(2z), where σ²_F = K/(K − 1)·Σᵢ(cᵢ − F̂·nᵢ)²/N² (clustered) or
        q(1 − q)/N (independent events).

    Raises
    ------
    ValueError
        When q is not strictly between 0 and 1.

    Notes
    -----
    See the module docstring for the formulas.  When q ± z·σ leaves (0, 1), for σ_F
    or the binomial σ whichever is larger, the arm has too few events (or too few
    units) for the interval and ``se`` is NaN; for the binomial σ this is GrowthBook's
    rule N > z²·q/(1 − q) and N > z²·(1 − q)/q (about 380 events for q = 0.99).

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, section 4.
    .. [2] R. R. Bahadur, "A note on quantiles in large samples", Annals of
       Mathematical Statistics 37, 577–580, 1966.

    Examples
    --------
    The p95 of 6,000 requests from 300 users: clustering by user makes the standard
    error about twice the one that treats requests as independent.

    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(300), 20)  # 300 users, 20 requests each
    >>> slow = rng.lognormal(0, 0.5, 300)  # some users' devices are slower
    >>> latency = rng.lognormal(0, 0.5, users.size) * slow[users]
    >>> e = quantile_estimate(latency, users, 0.95)
    >>> naive = quantile_estimate(latency, users, 0.95, clustered=False)
    >>> round(e.estimate, 4), round(e.se, 4), round(naive.se, 4)
    (3.2659, 0.1482, 0.0696)
    >>> e.estimate == float(np.quantile(latency, 0.95, method="inverted_cdf"))
    True
    >>> quantile_estimate(np.arange(10.0), np.arange(10), 0.99).problem
    "too few events for the 0.99 quantile's interval (10 events from 10 units: ..."
    """
    return quantile_estimates(values, units, (q,), clustered)[q]


def quantile_estimates(
    values: np.ndarray, units: np.ndarray, levels: Sequence[float], clustered: bool = True
) -> dict[float, QuantileEstimate]:
    """:func:`quantile_estimate` at several levels, sorting the values and coding the
    units once.

    Parameters
    ----------
    values : numpy.ndarray
        Event values (finite floats), any order.
    units : numpy.ndarray
        The unit of each value (any ids; they are coded here).
    levels : sequence of float
        Quantile levels, each strictly between 0 and 1.
    clustered : bool, default True
        False treats the events as independent.

    Returns
    -------
    dict of float to QuantileEstimate
        One estimate per level.

    Raises
    ------
    ValueError
        When a level is not strictly between 0 and 1.

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(300), 20)  # 300 users, 20 requests each
    >>> slow = rng.lognormal(0, 0.5, 300)  # some users' devices are slower
    >>> latency = rng.lognormal(0, 0.5, users.size) * slow[users]
    >>> from abkit.stats.quantile import quantile_estimates
    >>> estimates = quantile_estimates(latency, users, (0.5, 0.95))
    >>> {q: round(e.estimate, 4) for q, e in estimates.items()}
    {0.5: 0.9777, 0.95: 3.2659}
    """
    for q in levels:
        _check_level(q)
    x = np.asarray(values, dtype=float)
    n = x.size
    if n == 0:
        return {q: _no_events(q, clustered) for q in levels}
    codes = np.unique(np.asarray(units), return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1
    xs = np.sort(x, kind="stable")
    per_unit = np.bincount(codes, minlength=k).astype(float)

    def at_rank(rank: int) -> float:
        return order_statistic(xs, rank)

    out = {}
    for q in levels:
        estimate = sample_quantile(xs, q)
        below = None
        if clustered:
            c = np.bincount(codes[x <= estimate], minlength=k).astype(float)
            below = ArmSummary.from_values(c, per_unit)
        out[q] = _from_ranks(q, n, k, estimate, below, at_rank)
    return out


@dataclass(frozen=True)
class LogBins:
    """Log-spaced bins of relative width γ = 1 + ``relative_error``: value v falls in
    bin key(v) = sign(v)·(⌊ln|v| / ln γ⌋ + OFFSET), and |v| < 1e-12 in bin 0, so that
    keys increase with v.  A bin is represented by its geometric midpoint, within a
    factor √γ of every value in it: a quantile read from the bins is within
    √γ − 1 ≈ relative_error/2 of the exact one (the relative-error guarantee of
    log-bucketed sketches, Masson, Rim & Lee, "DDSketch", VLDB 2019).

    Parameters
    ----------
    relative_error : float, default 0.001
        γ − 1, the relative width of a bin.

    References
    ----------
    .. [1] C. Masson, J. E. Rim and H. K. Lee, "DDSketch: A Fast and Fully-Mergeable
       Quantile Sketch with Relative-Error Guarantees", PVLDB 12(12), 2195–2205
       (VLDB 2019).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import LogBins
    >>> bins = LogBins(0.01)
    >>> keys = bins.keys(np.array([0.0, 1.0, 1.005, 2.0, -2.0]))
    >>> keys.tolist()
    [0, 2778, 2778, 2847, -2847]
    >>> bins.values(keys).round(4).tolist(), round(bins.error, 6)
    ([0.0, 1.005, 1.005, 1.9968, -1.9968], 0.004988)
    """

    relative_error: float = 0.001

    TINY: ClassVar[float] = 1e-12

    @property
    def log_gamma(self) -> float:
        """ln γ = ln(1 + relative_error)."""
        return math.log1p(self.relative_error)

    @property
    def offset(self) -> int:
        """Makes the key of every |v| ≥ TINY at least 1."""
        return math.ceil(-math.log(self.TINY) / self.log_gamma) + 1

    def keys(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value (the engines compute the same expression)."""
        v = np.asarray(values, dtype=float)
        size = np.abs(v)
        with np.errstate(divide="ignore"):
            index = np.floor(np.log(np.maximum(size, self.TINY)) / self.log_gamma) + self.offset
        return np.where(size < self.TINY, 0, np.sign(v) * index).astype(np.int64)

    def values(self, keys: np.ndarray) -> np.ndarray:
        """Each bin's representative value: its geometric midpoint (0 for bin 0)."""
        k = np.asarray(keys, dtype=float)
        size = np.exp((np.abs(k) - self.offset + 0.5) * self.log_gamma)
        return np.where(k == 0, 0.0, np.sign(k) * size)

    @property
    def error(self) -> float:
        """The largest relative error of a bin's value: √γ − 1."""
        return math.sqrt(1 + self.relative_error) - 1


@dataclass(frozen=True)
class EventValues(Summable):
    """One arm's event values with the unit of each: what the exact route of a
    quantile metric reduces an arm to.

    Parameters
    ----------
    values : numpy.ndarray
        Event values (finite floats), any order.
    units : numpy.ndarray
        The unit of each value, as ids that name a unit the same way in every part
        (user ids, or integer codes shared by all parts).

    Notes
    -----
    Parts add with ``+`` (and ``sum``) by concatenation; see :meth:`__add__`.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import EventValues
    >>> day1 = EventValues(np.array([120.0, 80.0, 95.0]), np.array([1, 1, 2]))
    >>> day2 = EventValues(np.array([300.0, 60.0]), np.array([2, 3]))
    >>> both = day1 + day2
    >>> both.events, both.units.tolist()
    (5, [1, 1, 2, 2, 3])
    >>> both.estimates((0.5,))[0.5].estimate
    95.0
    """

    values: np.ndarray
    units: np.ndarray

    def __post_init__(self) -> None:
        if np.shape(self.values) != np.shape(self.units):
            raise ValueError("event values and their units differ in length")

    @classmethod
    def zero(cls) -> EventValues:
        """No events: the identity of ``+`` and a start for ``sum`` (integer ids).

        Examples
        --------
        >>> from abkit.stats.quantile import EventValues
        >>> sum([], EventValues.zero()).events
        0
        """
        return cls(np.empty(0), np.empty(0, dtype=np.int64))

    @property
    def events(self) -> int:
        """N, the number of event values."""
        return int(np.size(self.values))

    def estimates(
        self, levels: Sequence[float], clustered: bool = True
    ) -> dict[float, QuantileEstimate]:
        """:func:`quantile_estimates` of these values, clustered by their units.

        Parameters
        ----------
        levels : sequence of float
            Quantile levels, each strictly between 0 and 1.
        clustered : bool, default True
            False treats the events as independent.

        Returns
        -------
        dict of float to QuantileEstimate
            One estimate per level.
        """
        return quantile_estimates(self.values, self.units, levels, clustered)

    def __add__(self, other: object) -> EventValues:
        """The events of both parts, one after the other.

        Parameters
        ----------
        other : EventValues
            Further events of the same arm and metric: other units, or other events
            of the same units (another day, another file of the export).

        Returns
        -------
        EventValues
            The concatenated values and units.  The quantile and its clustered
            standard error depend only on the multiset of (value, unit) pairs, so
            they are those of the union, whatever the order of the parts.

        Notes
        -----
        An empty part is the identity.  Unlike the moments, an order statistic has
        no fixed-size sufficient statistic: the values themselves are kept (for a
        fixed-size summary use :class:`Histogram`).  The events of one unit may
        lie in several parts: they cluster together as long as the unit has the
        same id in every part, so ids must not be per-part row codes.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.quantile import EventValues
        >>> a = EventValues(np.array([1.0, 2.0]), np.array([7, 8]))
        >>> (a + EventValues(np.array([3.0]), np.array([7]))).values.tolist()
        [1.0, 2.0, 3.0]
        """
        if not isinstance(other, EventValues):
            return NotImplemented
        if other.events == 0:
            return self
        if self.events == 0:
            return other
        return EventValues(
            np.concatenate([self.values, other.values]),
            np.concatenate([self.units, other.units]),
        )


@dataclass(frozen=True)
class Histogram(Summable):
    """One arm's histogram of event values on log-spaced bins: what the histogram
    route of a quantile metric reduces an arm's values to.

    Parameters
    ----------
    bins : LogBins
        The bins the keys refer to.
    keys : numpy.ndarray
        Distinct bin keys (:meth:`LogBins.keys`), ascending.
    counts : numpy.ndarray
        The number of events in each bin.

    Notes
    -----
    Histograms on the same bins add with ``+`` (and ``sum``); see :meth:`__add__`.
    The clustered standard error also needs per-unit counts below the quantile's
    bin (the ``below`` :class:`~abkit.stats.arm.ArmSummary` of
    :func:`binned_quantile_estimate`); those add as an ``ArmSummary`` when the parts
    hold disjoint units.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import Histogram, LogBins
    >>> bins = LogBins(0.01)
    >>> h = Histogram.of(np.array([1.0, 1.0, 2.0]), bins) + Histogram.of(np.array([2.0]), bins)
    >>> h.counts.tolist(), h.events
    ([2, 2], 4)
    """

    bins: LogBins
    keys: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        if np.shape(self.keys) != np.shape(self.counts):
            raise ValueError("histogram keys and counts differ in length")

    @classmethod
    def of(cls, values: np.ndarray, bins: LogBins) -> Histogram:
        """The histogram of ``values`` on ``bins``.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.quantile import Histogram, LogBins
        >>> Histogram.of(np.array([0.0, 5.0, 5.0]), LogBins()).counts.tolist()
        [1, 2]
        """
        keys, counts = np.unique(bins.keys(values), return_counts=True)
        return cls(bins, keys, counts.astype(np.int64))

    @classmethod
    def zero(cls, bins: LogBins) -> Histogram:
        """The empty histogram on ``bins``: the identity of ``+``.

        Examples
        --------
        >>> from abkit.stats.quantile import Histogram, LogBins
        >>> sum([], Histogram.zero(LogBins())).events
        0
        """
        return cls(bins, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    @property
    def events(self) -> int:
        """N, the total count."""
        return int(np.sum(self.counts))

    def estimate(self, q: float, below: ArmSummary | None) -> QuantileEstimate:
        """:func:`binned_quantile_estimate` of this histogram.

        Parameters
        ----------
        q : float
            The quantile level, 0 < q < 1.
        below : ArmSummary or None
            Per-unit moments of (cᵢ, nᵢ) for the clustered standard error; None
            treats the events as independent.

        Returns
        -------
        QuantileEstimate
            Within ``bins.error`` of the exact quantile.
        """
        return binned_quantile_estimate(self.keys, self.counts, q, self.bins, below)

    def __add__(self, other: object) -> Histogram:
        """The histogram of the events of both parts.

        Parameters
        ----------
        other : Histogram
            A histogram on the same bins (equal ``relative_error``).

        Returns
        -------
        Histogram
            Keys the union of both parts' keys, ascending; counts the sum of both
            parts' counts in each bin.  Exact (integer counts), so associative and
            commutative.

        Raises
        ------
        ValueError
            When the bins differ: a bin of one is not a bin of the other, so the
            counts cannot be added (re-bin the values on one ``LogBins``).

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.quantile import Histogram, LogBins
        >>> values = np.array([1.0, 2.0])
        >>> Histogram.of(values, LogBins(0.01)) + Histogram.of(values, LogBins(0.001))
        Traceback (most recent call last):
        ...
        ValueError: cannot add histograms on different bins ...
        """
        if not isinstance(other, Histogram):
            return NotImplemented
        if self.bins != other.bins:
            raise ValueError(
                "cannot add histograms on different bins (relative error "
                f"{self.bins.relative_error:g} and {other.bins.relative_error:g}): "
                "the values must be binned on the same LogBins"
            )
        keys = np.union1d(self.keys, other.keys).astype(np.int64)
        counts = np.zeros(keys.size, dtype=np.int64)
        np.add.at(counts, np.searchsorted(keys, self.keys), self.counts)
        np.add.at(counts, np.searchsorted(keys, other.keys), other.counts)
        return Histogram(self.bins, keys, counts)


def binned_quantile_key(keys: np.ndarray, counts: np.ndarray, q: float) -> int:
    """The bin (``keys`` ascending, with their ``counts``) holding X₍⌈N·q⌉₎.

    Parameters
    ----------
    keys : numpy.ndarray
        Distinct bin keys, ascending.
    counts : numpy.ndarray
        Events per bin (N = Σ counts ≥ 1).
    q : float
        The quantile level, 0 < q < 1.

    Returns
    -------
    int
        The key of the first bin whose cumulative count reaches ⌈N·q⌉.

    Raises
    ------
    ValueError
        When q is not strictly between 0 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import binned_quantile_key
    >>> binned_quantile_key(np.array([10, 11, 12]), np.array([5, 3, 2]), 0.6)
    11
    """
    _check_level(q)
    cumulative = np.cumsum(counts)
    rank = math.ceil(cumulative[-1] * q - 1e-9)
    return int(keys[np.searchsorted(cumulative, max(rank, 1))])


def binned_quantile_estimate(
    keys: np.ndarray,
    counts: np.ndarray,
    q: float,
    bins: LogBins,
    below: ArmSummary | None,
) -> QuantileEstimate:
    """:func:`quantile_estimate` from a histogram: every order statistic is the value
    of the bin it falls in.

    ``keys`` ascending and their ``counts`` are one arm's histogram; ``below`` holds
    the per-unit moments of cᵢ (events in bins up to the quantile's,
    :func:`binned_quantile_key`) and nᵢ (the unit's events), as an
    :class:`~abkit.stats.arm.ArmSummary` of a ratio; None treats events as
    independent.  The quantile is within ``bins.error`` of the exact one.

    Parameters
    ----------
    keys : numpy.ndarray
        Distinct bin keys of one arm, ascending.
    counts : numpy.ndarray
        Events per bin.
    q : float
        The quantile level, 0 < q < 1.
    bins : LogBins
        The bins the keys refer to.
    below : ArmSummary or None
        Per-unit moments of cᵢ (numerator) and nᵢ (denominator); None for the
        binomial variance of independent events.

    Returns
    -------
    QuantileEstimate
        The bin value of X₍⌈N·q⌉₎ with the interval and standard error of
        :func:`quantile_estimate`, every order statistic read as its bin's value.

    Raises
    ------
    ValueError
        When q is not strictly between 0 and 1.

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, section 4.
    .. [2] C. Masson, J. E. Rim and H. K. Lee, "DDSketch: A Fast and Fully-Mergeable
       Quantile Sketch with Relative-Error Guarantees", PVLDB 12(12), 2195–2205
       (VLDB 2019).

    Examples
    --------
    The clustered p95 from a histogram with 1 % bins, against the exact values:

    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(300), 20)  # 300 users, 20 requests each
    >>> slow = rng.lognormal(0, 0.5, 300)  # some users' devices are slower
    >>> latency = rng.lognormal(0, 0.5, users.size) * slow[users]
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.quantile import LogBins, binned_quantile_estimate, binned_quantile_key
    >>> bins = LogBins(0.01)
    >>> keys, counts = np.unique(bins.keys(latency), return_counts=True)
    >>> key = binned_quantile_key(keys, counts, 0.95)
    >>> c = np.bincount(users[bins.keys(latency) <= key], minlength=300).astype(float)
    >>> below = ArmSummary.from_values(c, np.bincount(users).astype(float))
    >>> binned = binned_quantile_estimate(keys, counts, 0.95, bins, below)
    >>> exact = quantile_estimate(latency, users, 0.95)
    >>> round(binned.estimate, 4), round(exact.estimate, 4)
    (3.2515, 3.2659)
    >>> abs(binned.estimate / exact.estimate - 1) <= bins.error
    True
    >>> round(binned.se, 4), round(exact.se, 4)
    (0.1503, 0.1482)
    """
    _check_level(q)
    n = int(np.sum(counts))
    if n == 0:
        return _no_events(q, below is not None)
    key = binned_quantile_key(keys, counts, q)
    cumulative = np.cumsum(counts)
    values = bins.values(keys)

    def at_rank(rank: int) -> float:
        return float(values[np.searchsorted(cumulative, min(max(rank, 1), n))])

    k = below.n if below is not None else n
    estimate = float(bins.values(np.array([key]))[0])
    return _from_ranks(q, n, k, estimate, below, at_rank)


def _check_level(q: float) -> None:
    if not 0 < q < 1:
        raise ValueError(f"quantile level must lie strictly between 0 and 1, got {q}")


def _no_events(q: float, clustered: bool) -> QuantileEstimate:
    nan = math.nan
    return QuantileEstimate(q, nan, 0, 0, nan, nan, nan, nan, clustered, "no events")


def _from_ranks(
    q: float,
    n: int,
    k: int,
    estimate: float,
    below: ArmSummary | None,
    at_rank: Callable[[int], float],
) -> QuantileEstimate:
    """The estimate's interval and standard error from σ²_F (clustered when the
    per-unit moments ``below`` are given, binomial otherwise) and the order
    statistics ``at_rank`` (1-based) at N·(q ∓ z·σ_F); N events from k units."""
    binomial = q * (1 - q) / n
    clustered = below is not None
    var_f = binomial if below is None else ratio_variance(below) if k > 1 else math.nan
    problem = _too_few(q, n, k, max(var_f, binomial), clustered)
    if problem is not None:
        nan = math.nan
        effect = var_f / binomial
        return QuantileEstimate(q, estimate, n, k, nan, nan, nan, effect, clustered, problem)
    sigma = math.sqrt(var_f)
    lower = at_rank(math.floor(n * (q - _Z * sigma)))
    upper = at_rank(math.ceil(n * (q + _Z * sigma)))
    return QuantileEstimate(
        q=q,
        estimate=estimate,
        events=n,
        units=k,
        se=(upper - lower) / (2 * _Z),
        lower=lower,
        upper=upper,
        design_effect=var_f / binomial,
        clustered=clustered,
    )


def _too_few(q: float, n: int, k: int, var: float, clustered: bool) -> str | None:
    """Why no interval exists, or None.  The check uses σ_F or the binomial σ,
    whichever is larger: near the extremes the clustered estimate collapses (when
    every unit has all its events below Q̂, cᵢ = nᵢ and σ_F = 0)."""
    if clustered and k < 2:
        return "fewer than 2 units have values"
    spread = _Z * math.sqrt(var)
    if q - spread > 0 and q + spread < 1:
        return None
    return (
        f"too few events for the {q:g} quantile's interval ({n:,} events from {k:,} units: "
        f"q ± z·σ reaches {q - spread:.4f} … {q + spread:.4f}, outside 0 … 1); collect "
        "more data or use a less extreme quantile"
    )


def quantile_test(
    control: QuantileEstimate, treatment: QuantileEstimate, alpha: float = 0.05
) -> Comparison:
    """Difference (and relative difference) of two arms' quantiles, normal reference.

    Δ = Q̂_T − Q̂_C with se √(se²_C + se²_T); the relative difference T/C − 1 has the
    log-scale delta-method interval of :func:`~abkit.stats.fixed_horizon.relative_effect`.

    Parameters
    ----------
    control, treatment : QuantileEstimate
        The arms' estimates at the same level (both clustered or both not).
    alpha : float, default 0.05
        1 − the confidence level of the intervals.

    Returns
    -------
    Comparison
        Normal reference; undefined when an arm's estimate has a ``problem``.

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> rng = np.random.default_rng(0)
    >>> users = np.repeat(np.arange(300), 20)  # 300 users, 20 requests each
    >>> slow = rng.lognormal(0, 0.5, 300)  # some users' devices are slower
    >>> latency = rng.lognormal(0, 0.5, users.size) * slow[users]
    >>> from abkit.stats.quantile import quantile_test
    >>> treated = rng.lognormal(0.1, 0.5, users.size) * rng.lognormal(0, 0.5, 300)[users]
    >>> control = quantile_estimate(latency, users, 0.95)
    >>> treatment = quantile_estimate(treated, users, 0.95)
    >>> r = quantile_test(control, treatment)
    >>> round(r.effect, 4), round(r.se, 4), round(r.p_value, 4), round(r.relative_effect, 4)
    (0.2047, 0.2167, 0.3449, 0.0627)
    >>> round(float(np.hypot(control.se, treatment.se)), 4)
    0.2167
    """
    method = CLUSTERED if control.clustered else INDEPENDENT
    problems = [
        f"{name}: {arm.problem}"
        for name, arm in (("control", control), ("treatment", treatment))
        if arm.problem
    ]
    if problems:
        return undefined_comparison(method, control.estimate, treatment.estimate, problems)
    warnings = []
    if control.se == 0 or treatment.se == 0:
        warnings.append(
            "many events share the quantile's value (a discrete or rounded measure), so the "
            "order-statistic interval has zero width in an arm"
        )
    return two_sided(
        method,
        control.estimate,
        treatment.estimate,
        control.se**2,
        treatment.se**2,
        alpha,
        warnings=warnings,
    )
