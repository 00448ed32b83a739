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
from scipy import stats as st

from abkit.stats.arm import ArmSummary
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
_Z = float(st.norm.ppf(0.975))


@dataclass(frozen=True)
class QuantileEstimate:
    """One arm's q-quantile of event values with its standard error.

    ``events`` values from ``units`` units (those with at least one value);
    ``lower``/``upper`` are the order statistics at q ∓ z·σ_F that the standard
    error ``se`` = (upper − lower)/(2z) comes from; ``design_effect`` is σ²_F over
    the binomial q(1 − q)/N of independent events.  ``problem`` says why no standard
    error exists (too few events), with ``se`` then NaN.
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
    """X₍rank₎ of sorted values (1-based rank, clipped to 1 … N)."""
    n = sorted_values.size
    return float(sorted_values[min(max(rank, 1), n) - 1])


def sample_quantile(sorted_values: np.ndarray, q: float) -> float:
    """The inverse of the empirical CDF: X₍⌈N·q⌉₎, the smallest value with at least a
    share q of the values at or below it (Hyndman & Fan 1996, definition 1; numpy's
    ``method="inverted_cdf"``)."""
    return order_statistic(sorted_values, math.ceil(sorted_values.size * q - 1e-9))


def quantile_estimate(
    values: np.ndarray, units: np.ndarray, q: float, clustered: bool = True
) -> QuantileEstimate:
    """The q-quantile of ``values`` and its standard error, clustered by ``units``.

    Parameters
    ----------
    values : event values (finite floats), any order.
    units : the unit (cluster) of each value, as integer codes.
    q : the quantile level, 0 < q < 1.
    clustered : False treats the events as independent (the naive test).

    Notes
    -----
    See the module docstring for the formulas.  When q ± z·σ leaves (0, 1), for σ_F
    or the binomial σ whichever is larger, the arm has too few events (or too few
    units) for the interval and ``se`` is NaN; for the binomial σ this is GrowthBook's
    rule N > z²·q/(1 − q) and N > z²·(1 − q)/q (about 380 events for q = 0.99).
    """
    return quantile_estimates(values, units, (q,), clustered)[q]


def quantile_estimates(
    values: np.ndarray, units: np.ndarray, levels: Sequence[float], clustered: bool = True
) -> dict[float, QuantileEstimate]:
    """:func:`quantile_estimate` at several levels, sorting the values and coding the
    units once."""
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
    log-bucketed sketches, Masson, Rim & Lee, "DDSketch", VLDB 2019)."""

    relative_error: float = 0.001

    TINY: ClassVar[float] = 1e-12

    @property
    def log_gamma(self) -> float:
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


def binned_quantile_key(keys: np.ndarray, counts: np.ndarray, q: float) -> int:
    """The bin (``keys`` ascending, with their ``counts``) holding X₍⌈N·q⌉₎."""
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
