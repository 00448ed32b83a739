"""Always-valid inference for quantiles (p50, p95, p99 latency guardrails watched daily).

Two constructions, for two kinds of data.

**Independent observations** (Howard & Ramdas, "Sequential estimation of quantiles
with applications to A/B-testing and best-arm identification", *Bernoulli* 28,
1704–1728, 2022).  For the true q-quantile Q of a continuous F, the indicators
1{Xᵢ ≤ Q} are Bernoulli(q), so S_n = Σᵢ (1{Xᵢ ≤ Q} − q) = k − nq (k of n values at or
below Q) is a sum of increments in {−q, 1 − q}.  Mixing the Bernoulli likelihood
ratio of success probability θ against q over θ ~ Beta(r/(1 − q), r/q) gives the
beta-binomial mixture martingale (Howard, Ramdas, McAuliffe & Sekhon, *Annals of
Statistics* 2021, the conjugate mixture for sub-Bernoulli increments)

    M_n(s) = B(r/q + n − k, r/(1 − q) + k) / B(r/q, r/(1 − q)) / (q^k (1 − q)^(n − k)),

    log M_n(s) = −k log q − (n − k) log(1 − q) + log B(r/q + n − k, r/(1 − q) + k)
                 − log B(r/q, r/(1 − q)),        k = nq + s,

with r = max(ρ − q(1 − q), 10⁻³ q(1 − q)) and ρ = v_opt/(2 log(1/α) + log(1 + 2 log(1/α))),
v_opt = q(1 − q)·``target_n``: the two-sided normal-mixture tuning that makes the
boundary tightest near ``target_n`` observations (the tuning of the authors' package
``confseq``).  log M_n is convex in s, so by Ville's inequality
P(∃n: s_lo(n) < S_n < s_hi(n) fails) ≤ α, where s_lo < 0 < s_hi solve
log M_n(s) = log(1/α).  Reading the event off the order statistics X₍₁₎ ≤ … ≤ X₍ₙ₎
gives the confidence sequence for Q, valid at every n simultaneously:

    [X₍⌊nq + s_lo⌋ + 1₎, X₍⌈nq + s_hi⌉₎],     −∞ / +∞ where the rank leaves 1 … n.

**Two arms** (their A/B-testing section; ``confseq.quantiles.quantile_ab_p_value``).
Under H0: Q_T = Q_C + θ0 the product of the two arms' martingales, evaluated at the
common value x = Q_C, is a test martingale.  x is unknown, so the evidence is the
least product over x:

    m(θ0) = min_x [G_C(x) + G_T(x + θ0)],    p(θ0) = min(1, exp(−m(θ0))),

where G(x) = min log M_n(s) over the s of x, s ∈ [#{X < x} − nq, #{X ≤ x} − nq] (an
interval at a sample value: the empirical CDF jumps there).  p(θ0) is an
anytime-valid p-value: P(∃n: p_n(θ0) ≤ α) ≤ α under H0.  The confidence sequence
is the set of θ0 it does not reject,

    {θ0: p(θ0) > α} = {y − x: G_C(x) + G_T(y) < log(1/α)},

an interval whose ends are read off the two arms' order statistics (both G are
quasi-convex, so each end is one pair of sample values).  The ratio Q_T/Q_C is the
difference of the log-values' quantiles (quantiles commute with the logarithm), so
its sequence is the exponential of that of the logs.  The guardrail "the quantile
must not rise by more than δ" (H0: θ ≥ δ) is passed at the first look where the
sequence's upper end is below δ; its p-value is p(δ) when the estimate is below δ
and 1 otherwise, so that it is below α exactly when the upper end is below δ.

**Events clustered by unit** (several latencies per user).  The events of a user
are not independent, so the construction above is invalid (its indicators are
correlated within users and the sequence is too narrow).  By the Bahadur
representation the arm's sample quantile is linear in per-user sums,

    Q̂ − Q ≈ Σᵢ ψᵢ / K,   ψᵢ = (F̂·nᵢ − cᵢ) / (f̂(Q̂)·n̄),

with cᵢ of user i's nᵢ events at or below Q̂, F̂ = Σcᵢ/Σnᵢ, n̄ = N/K the mean events
per user and f̂ the density at the quantile.  f̂ is the one the fixed-horizon
clustered test of :mod:`abkit.stats.quantile` implies, f̂ = σ_F/se (the order
statistics at q ∓ z·σ_F, Woodruff's estimate), re-estimated at each look;
K/(K − 1)·Σψᵢ²/K² is then exactly that test's se².  The asymptotic confidence
sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas ("Time-uniform central
limit theory and asymptotic confidence sequences", *Annals of Statistics* 52,
2024) applies to this per-user mean as to any other: :func:`clustered_quantile_cs`
hands the difference (or log ratio) of the arms' quantiles and its variance
se²_C + se²_T to :func:`abkit.stats.always_valid.asymptotic_cs`.  It is asymptotic
(it needs the CLT and a consistent f̂); the construction for independent
observations is exact at every n.

Inputs are raw values or a :class:`~abkit.stats.quantile.Histogram` (the
histogram route of DuckDB and Spark): per-look histograms add with ``+``, and the
order statistics of binned values are the bin values of the raw order statistics
(binning is monotone), so the sequence from a histogram is the raw one with each
end moved to its bin's value (within ``bins.error``; it is then a sequence for the
quantile of the binned values).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
from scipy.special import betaln, digamma

from abkit.stats.always_valid import AlwaysValidPath, asymptotic_cs
from abkit.stats.quantile import Histogram, QuantileEstimate

Sample: TypeAlias = "np.ndarray | Histogram"
Scale: TypeAlias = Literal["difference", "ratio"]

INDEPENDENT_CS = "quantile confidence sequence, beta-binomial mixture (Howard & Ramdas 2022)"
CLUSTERED_CS = (
    "quantile asymptotic confidence sequence on the user-level linearisation "
    "(Waudby-Smith et al. 2024)"
)


@dataclass(frozen=True)
class BetaBinomialMixture:
    """The beta-binomial mixture martingale for the q-quantile (module docstring).

    Parameters
    ----------
    q : float
        The quantile level, 0 < q < 1 (the success probability of 1{X ≤ Q}).
    r : float
        The mixture's prior strength: θ ~ Beta(r/(1 − q), r/q).

    References
    ----------
    .. [1] S. R. Howard and A. Ramdas, "Sequential estimation of quantiles with
       applications to A/B-testing and best-arm identification", Bernoulli 28,
       1704–1728, 2022.
    .. [2] S. R. Howard, A. Ramdas, J. McAuliffe and J. Sekhon, "Time-uniform,
       nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49,
       1055–1080, 2021.

    Examples
    --------
    The boundary for the p95 after 1,000 observations, tuned to 500: the sequence's
    ranks are 950 − 22.9 … 950 + 19.3.

    >>> from abkit.stats.sequential_quantile import BetaBinomialMixture
    >>> mixture = BetaBinomialMixture.tuned(0.95, target_n=500, alpha=0.05)
    >>> s_lo, s_hi = mixture.bounds(1000, alpha=0.05)
    >>> round(s_lo, 4), round(s_hi, 4)
    (-22.8933, 19.3179)
    >>> round(float(mixture.log_value(s_hi, 1000)), 6), round(math.log(1 / 0.05), 6)
    (2.995732, 2.995732)
    """

    q: float
    r: float

    def __post_init__(self) -> None:
        if not 0 < self.q < 1:
            raise ValueError(f"quantile level must lie strictly between 0 and 1, got {self.q}")
        if not (self.r > 0 and math.isfinite(self.r)):
            raise ValueError(f"the mixture's prior strength r must be positive, got {self.r}")

    @classmethod
    def tuned(cls, q: float, target_n: float, alpha: float) -> BetaBinomialMixture:
        """The mixture whose boundary is tightest near ``target_n`` observations.

        Parameters
        ----------
        q : float
            The quantile level.
        target_n : float
            The observations (per arm) at which the boundary should be tightest.
        alpha : float
            The level the tuning optimises for.

        Returns
        -------
        BetaBinomialMixture
            r = max(ρ − q(1 − q), 10⁻³ q(1 − q)), ρ = v/(2 log(1/α) + log(1 + 2 log(1/α))),
            v = q(1 − q)·target_n.

        Raises
        ------
        ValueError
            When ``target_n`` is not positive or α not in (0, 1).
        """
        if not target_n > 0:
            raise ValueError(f"target_n must be positive, got {target_n}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
        gh = q * (1 - q)
        log_inv = math.log(1 / alpha)
        rho = gh * target_n / (2 * log_inv + math.log(1 + 2 * log_inv))
        return cls(q, max(rho - gh, 1e-3 * gh))

    def log_value(self, s: np.ndarray | float, n: float) -> np.ndarray:
        """log M_n(s), s = k − nq for k of n observations at or below the quantile.

        Parameters
        ----------
        s : numpy.ndarray or float
            Centred counts, −nq ≤ s ≤ n(1 − q).
        n : float
            The observations.

        Returns
        -------
        numpy.ndarray
            log M_n(s) (module docstring).
        """
        q = self.q
        k = n * q + np.asarray(s, dtype=float)
        a, b = self.r / q, self.r / (1 - q)
        out: np.ndarray = (
            -k * math.log(q) - (n - k) * math.log1p(-q) + betaln(a + n - k, b + k) - betaln(a, b)
        )
        return out

    def minimiser(self, n: float) -> float:
        """The s minimising log M_n: the root of its derivative
        log((1 − q)/q) + ψ(r/(1 − q) + k) − ψ(r/q + n − k) (increasing in s).

        Parameters
        ----------
        n : float
            The observations.

        Returns
        -------
        float
            argmin_s log M_n(s), within −nq … n(1 − q).
        """
        q = self.q
        a, b = self.r / q, self.r / (1 - q)
        lo, hi = -n * q, n * (1 - q)

        def slope(s: float) -> float:
            k = n * q + s
            return float(math.log((1 - q) / q) + digamma(b + k) - digamma(a + n - k))

        if slope(lo) >= 0:
            return lo
        if slope(hi) <= 0:
            return hi
        from scipy.optimize import brentq  # loaded when first needed (0.15 s)

        return float(brentq(slope, lo, hi, xtol=1e-13, rtol=1e-15))

    def bounds(self, n: float, alpha: float) -> tuple[float, float]:
        """(s_lo, s_hi) with log M_n(s) < log(1/α) exactly for s_lo < s < s_hi.

        Parameters
        ----------
        n : float
            The observations (n ≥ 1).
        alpha : float
            The level.

        Returns
        -------
        tuple of float
            s_lo ≤ 0 ≤ s_hi; −∞ (+∞) when the martingale cannot reach 1/α on that
            side at n (so the sequence has no lower (upper) end yet).
        """
        return self.roots(n, math.log(1 / alpha))

    def roots(self, n: float, log_threshold: float) -> tuple[float, float]:
        """(s_lo, s_hi) with log M_n(s) < ``log_threshold`` exactly for s_lo < s < s_hi
        (:meth:`bounds` at any threshold; (s*, s*) when even the least value
        log M_n(s*) reaches it).

        Parameters
        ----------
        n : float
            The observations.
        log_threshold : float
            The level of log M_n.

        Returns
        -------
        tuple of float
            s_lo and s_hi, ∓∞ when log M_n stays below the threshold on that side.
        """
        threshold = log_threshold
        lo, hi = -n * self.q, n * (1 - self.q)
        star = self.minimiser(n)
        from scipy.optimize import brentq  # loaded when first needed (0.15 s)

        def excess(s: float) -> float:
            return float(self.log_value(s, n)) - threshold

        if excess(star) >= 0:  # not for alpha < 1: min log M ≤ log M(0) ≤ 0
            return star, star
        s_hi = (
            math.inf
            if excess(hi) < 0
            else float(brentq(excess, star, hi, xtol=1e-12, rtol=4 * np.finfo(float).eps))
        )
        s_lo = (
            -math.inf
            if excess(lo) < 0
            else float(brentq(excess, lo, star, xtol=1e-12, rtol=4 * np.finfo(float).eps))
        )
        return s_lo, s_hi


@dataclass(frozen=True)
class QuantileCS:
    """One look of an arm's quantile confidence sequence (independent observations).

    Parameters
    ----------
    q : float
        The quantile level.
    n : int
        The observations so far.
    estimate : float
        X₍⌈nq⌉₎ (:func:`abkit.stats.quantile.sample_quantile`).
    lower, upper : float
        X₍lower_rank₎ and X₍upper_rank₎ (−∞ / +∞ when the rank leaves 1 … n).
    lower_rank, upper_rank : int
        ⌊nq + s_lo⌋ + 1 and ⌈nq + s_hi⌉ (0 / n + 1 for no end yet).
    alpha : float
        The sequence's level: P(∃n: Q ∉ [lower, upper]) ≤ α.
    method : str
        The construction's name.
    """

    q: float
    n: int
    estimate: float
    lower: float
    upper: float
    lower_rank: int
    upper_rank: int
    alpha: float
    method: str = INDEPENDENT_CS


def quantile_cs(
    sample: Sample, q: float, alpha: float = 0.05, target_n: float | None = None
) -> QuantileCS:
    """The quantile confidence sequence of Howard & Ramdas (2022) at one look.

    Parameters
    ----------
    sample : numpy.ndarray or Histogram
        All of the arm's values so far (or their histogram; histograms of the looks'
        new values add with ``+``).
    q : float
        The quantile level, 0 < q < 1.
    alpha : float, default 0.05
        The level, two-sided.
    target_n : float, optional
        The observations at which the boundary is tightest; keep it fixed over the
        looks (default: the sample's size, which moves the boundary at each look).

    Returns
    -------
    QuantileCS
        [X₍⌊nq + s_lo⌋ + 1₎, X₍⌈nq + s_hi⌉₎] with s_lo, s_hi from
        :meth:`BetaBinomialMixture.bounds`.

    Raises
    ------
    ValueError
        When the sample is empty or has a non-finite value, or q is not in (0, 1).

    Notes
    -----
    The ranks depend only on n, q, α and ``target_n``; the data enter only through
    the order statistics.  The half-width in ranks grows like √(n log n) (a
    conjugate mixture), against z·√(nq(1 − q)) for a fixed-horizon interval; stitched
    boundaries reach √(n log log n) at the cost of larger constants near
    ``target_n``.

    References
    ----------
    .. [1] S. R. Howard and A. Ramdas, "Sequential estimation of quantiles with
       applications to A/B-testing and best-arm identification", Bernoulli 28,
       1704–1728, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.sequential_quantile import quantile_cs
    >>> rng = np.random.default_rng(1)
    >>> latency = rng.lognormal(0.0, 0.5, 4000)  # true p95: exp(0.5·1.645) = 2.276
    >>> cs = quantile_cs(latency, 0.95, target_n=4000)
    >>> cs.lower_rank, cs.upper_rank
    (3757, 3841)
    >>> round(cs.lower, 4), round(cs.estimate, 4), round(cs.upper, 4)
    (2.1564, 2.2857, 2.3898)
    """
    values, cum = _distinct(sample)
    n = int(cum[-1])
    mixture = BetaBinomialMixture.tuned(q, n if target_n is None else target_n, alpha)
    s_lo, s_hi = mixture.bounds(n, alpha)
    lower_rank = max(0, math.floor(n * q + s_lo) + 1) if math.isfinite(s_lo) else 0
    upper_rank = min(n + 1, math.ceil(n * q + s_hi)) if math.isfinite(s_hi) else n + 1
    return QuantileCS(
        q=q,
        n=n,
        estimate=_order_statistic(values, cum, math.ceil(n * q - 1e-9)),
        lower=_order_statistic(values, cum, lower_rank),
        upper=_order_statistic(values, cum, upper_rank),
        lower_rank=lower_rank,
        upper_rank=upper_rank,
        alpha=alpha,
    )


@dataclass(frozen=True)
class QuantileComparison:
    """One look of the always-valid comparison of two arms' quantiles.

    Parameters
    ----------
    q : float
        The quantile level.
    scale : {"difference", "ratio"}
        θ = Q_T − Q_C or Q_T/Q_C.
    estimate : float
        Q̂_T − Q̂_C or Q̂_T/Q̂_C, each Q̂ = X₍⌈nq⌉₎.
    ci_low, ci_high : float
        The confidence sequence's ends at this look: {θ0: p(θ0) > α}.
    p_value : float
        p(θ0) for no difference (θ0 = 0 or 1).
    n_control, n_treatment : int
        The observations of each arm.
    alpha : float
        The level.
    margin : float or None
        The guardrail's margin δ ("must not rise by more than δ"; a ratio on the
        ratio scale), None without a guardrail.
    p_value_margin : float or None
        p(δ) when the estimate is below δ, else 1: below α exactly when
        ``ci_high`` < δ (the guardrail passes).
    method : str
        The construction's name.
    """

    q: float
    scale: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_control: int
    n_treatment: int
    alpha: float
    margin: float | None = None
    p_value_margin: float | None = None
    method: str = INDEPENDENT_CS


@dataclass(frozen=True)
class _Arm:
    """An arm's distinct values (on the tested scale), cumulative counts and mixture."""

    values: np.ndarray
    cum: np.ndarray
    mixture: BetaBinomialMixture
    star: float

    @property
    def n(self) -> int:
        return int(self.cum[-1])

    @classmethod
    def of(cls, sample: Sample, q: float, scale: Scale, target_n: float, alpha: float) -> _Arm:
        values, cum = _distinct(sample)
        if scale == "ratio":
            if values[0] <= 0:
                raise ValueError("the ratio of quantiles needs positive values")
            values = np.log(values)
        mixture = BetaBinomialMixture.tuned(q, target_n, alpha)
        return cls(values, cum, mixture, mixture.minimiser(float(cum[-1])))

    def cost(self, less: np.ndarray, at_or_below: np.ndarray) -> np.ndarray:
        """G: min log M_n(s) over s ∈ [less − nq, at_or_below − nq] (convex in s)."""
        n = self.n
        shift = n * self.mixture.q
        s = np.clip(self.star, less - shift, at_or_below - shift)
        return self.mixture.log_value(s, n)

    def counts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """#{X < x} and #{X ≤ x} for each x."""
        cum = np.concatenate([[0], self.cum])
        less = cum[np.searchsorted(self.values, x, side="left")]
        at_or_below = cum[np.searchsorted(self.values, x, side="right")]
        return less.astype(float), at_or_below.astype(float)

    def candidates(self, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """The values x (sample values, ±∞) with G(x) < ``limit``, and their G."""
        n = self.n
        centre = n * self.mixture.q
        s_lo, s_hi = self.mixture.roots(n, limit)
        cum = self.cum
        below = np.concatenate([[0], cum[:-1]])
        first = 0 if not math.isfinite(s_lo) else int(np.searchsorted(cum, centre + s_lo - 1))
        last = (
            cum.size
            if not math.isfinite(s_hi)
            else int(np.searchsorted(below, centre + s_hi + 1, side="right"))
        )
        points = self.values[first:last]
        costs = self.cost(below[first:last].astype(float), cum[first:last].astype(float))
        ends = np.array([-math.inf, math.inf])
        end_costs = self.mixture.log_value(np.array([-centre, n - centre]), n)
        points = np.concatenate([ends[:1], points, ends[1:]])
        costs = np.concatenate([end_costs[:1], costs, end_costs[1:]])
        keep = costs < limit
        return points[keep], costs[keep]

    def argmin_span(self) -> tuple[float, float]:
        """Sample values bracketing where G is least."""
        n = self.n
        k = n * self.mixture.q + self.star
        return (
            _order_statistic(self.values, self.cum, max(1, math.floor(k))),
            _order_statistic(self.values, self.cum, min(n, math.ceil(k) + 1)),
        )


def quantile_ab_p_value(
    control: Sample,
    treatment: Sample,
    q: float,
    theta0: float | None = None,
    scale: Scale = "difference",
    target_n: float | None = None,
    alpha_opt: float = 0.05,
) -> float:
    """The anytime-valid p-value for H0: Q_T − Q_C = θ0 (or Q_T/Q_C = θ0).

    Parameters
    ----------
    control, treatment : numpy.ndarray or Histogram
        Each arm's values so far.
    q : float
        The quantile level.
    theta0 : float, optional
        The hypothesised difference (default 0) or ratio (default 1).
    scale : {"difference", "ratio"}, default "difference"
        The effect's scale; "ratio" needs positive values.
    target_n : float, optional
        The observations per arm at which the mixture is tuned (default: the larger
        arm's size); keep it fixed over the looks.
    alpha_opt : float, default 0.05
        The level the mixture is tuned for.

    Returns
    -------
    float
        p(θ0) = min(1, exp(−min_x [G_C(x) + G_T(x + θ0)])) (module docstring).

    References
    ----------
    .. [1] S. R. Howard and A. Ramdas, "Sequential estimation of quantiles with
       applications to A/B-testing and best-arm identification", Bernoulli 28,
       1704–1728, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.sequential_quantile import quantile_ab_p_value
    >>> rng = np.random.default_rng(2)
    >>> control = rng.lognormal(0.0, 0.5, 3000)
    >>> treatment = rng.lognormal(0.15, 0.5, 3000)  # every quantile 16 % higher
    >>> round(quantile_ab_p_value(control, treatment, 0.5, target_n=3000), 6)
    0.0
    >>> round(quantile_ab_p_value(control, treatment, 0.5, 1.16, "ratio", 3000), 4)
    1.0
    """
    null = theta0 if theta0 is not None else (1.0 if scale == "ratio" else 0.0)
    tuning = _default_target(control, treatment) if target_n is None else target_n
    arm_c = _Arm.of(control, q, scale, tuning, alpha_opt)
    arm_t = _Arm.of(treatment, q, scale, tuning, alpha_opt)
    return _p_value(arm_c, arm_t, _shift(null, scale))


def quantile_ab(
    control: Sample,
    treatment: Sample,
    q: float,
    alpha: float = 0.05,
    target_n: float | None = None,
    scale: Scale = "difference",
    margin: float | None = None,
) -> QuantileComparison:
    """The always-valid comparison of two arms' q-quantiles at one look.

    Parameters
    ----------
    control, treatment : numpy.ndarray or Histogram
        Each arm's values so far (independent observations).
    q : float
        The quantile level, 0 < q < 1.
    alpha : float, default 0.05
        The level: P(∃ look: θ ∉ [ci_low, ci_high]) ≤ α.
    target_n : float, optional
        The observations per arm at which the sequence is tightest; keep it fixed
        over the looks (default: the larger arm's size now).
    scale : {"difference", "ratio"}, default "difference"
        θ = Q_T − Q_C, or Q_T/Q_C (positive values).
    margin : float, optional
        The guardrail's margin δ: H0 θ ≥ δ, "must not rise by more than δ" (a ratio
        such as 1.05 on the ratio scale).

    Returns
    -------
    QuantileComparison
        The estimate, the sequence's ends and the p-values, consistent: θ0 lies
        outside [ci_low, ci_high] exactly when p(θ0) ≤ α.

    Raises
    ------
    ValueError
        When an arm is empty or has a non-finite value, or (ratio) a value ≤ 0.

    References
    ----------
    .. [1] S. R. Howard and A. Ramdas, "Sequential estimation of quantiles with
       applications to A/B-testing and best-arm identification", Bernoulli 28,
       1704–1728, 2022.

    Examples
    --------
    A p95 latency guardrail, "must not rise by more than 0.25 s", after one look of
    3,000 requests per arm:

    >>> import numpy as np
    >>> from abkit.stats.sequential_quantile import quantile_ab
    >>> rng = np.random.default_rng(3)
    >>> control = rng.lognormal(0.0, 0.5, 3000)  # true p95 2.276 s
    >>> treatment = rng.lognormal(0.02, 0.5, 3000)  # true p95 2.322 s
    >>> r = quantile_ab(control, treatment, 0.95, target_n=3000, margin=0.25)
    >>> round(r.estimate, 4), round(r.ci_low, 4), round(r.ci_high, 4)
    (0.0446, -0.1894, 0.2343)
    >>> round(r.p_value, 4), round(r.p_value_margin, 4)
    (1.0, 0.0188)
    """
    tuning = _default_target(control, treatment) if target_n is None else target_n
    arm_c = _Arm.of(control, q, scale, tuning, alpha)
    arm_t = _Arm.of(treatment, q, scale, tuning, alpha)
    low, high = _interval(arm_c, arm_t, math.log(1 / alpha))
    rank_c = math.ceil(arm_c.n * q - 1e-9)
    rank_t = math.ceil(arm_t.n * q - 1e-9)
    estimate = _order_statistic(arm_t.values, arm_t.cum, rank_t) - _order_statistic(
        arm_c.values, arm_c.cum, rank_c
    )
    p_null = _p_value(arm_c, arm_t, 0.0)
    p_margin = None
    if margin is not None:
        shift = _shift(margin, scale)
        p_margin = _p_value(arm_c, arm_t, shift) if estimate < shift else 1.0
    if scale == "ratio":
        estimate, low, high = math.exp(estimate), math.exp(low), math.exp(high)
    return QuantileComparison(
        q=q,
        scale=scale,
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        p_value=p_null,
        n_control=arm_c.n,
        n_treatment=arm_t.n,
        alpha=alpha,
        margin=margin,
        p_value_margin=p_margin,
    )


def quantile_ab_path(
    control: Sequence[Sample],
    treatment: Sequence[Sample],
    q: float,
    alpha: float = 0.05,
    target_n: float | None = None,
    scale: Scale = "difference",
    margin: float | None = None,
) -> list[QuantileComparison]:
    """:func:`quantile_ab` at every look, with one tuning for all looks.

    Parameters
    ----------
    control, treatment : sequence of numpy.ndarray or Histogram
        Each arm's values up to each look (cumulative: for histograms, the running
        sum of the looks' histograms).
    q : float
        The quantile level.
    alpha : float, default 0.05
        The level.
    target_n : float, optional
        Planned observations per arm (default: the larger arm's size at the last look).
    scale : {"difference", "ratio"}, default "difference"
        The effect's scale.
    margin : float, optional
        The guardrail's margin.

    Returns
    -------
    list of QuantileComparison
        One per look.  Decide at the first look whose p-value is below α; by
        Ville's inequality the chance that any look does so under H0 is ≤ α.

    Raises
    ------
    ValueError
        When the arms have different numbers of looks.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import Histogram, LogBins
    >>> from abkit.stats.sequential_quantile import quantile_ab_path
    >>> rng = np.random.default_rng(4)
    >>> bins = LogBins(0.001)
    >>> days_c = [Histogram.of(rng.lognormal(0.0, 0.5, 500), bins) for _ in range(5)]
    >>> days_t = [Histogram.of(rng.lognormal(0.3, 0.5, 500), bins) for _ in range(5)]
    >>> looks_c = [sum(days_c[: k + 1], Histogram.zero(bins)) for k in range(5)]
    >>> looks_t = [sum(days_t[: k + 1], Histogram.zero(bins)) for k in range(5)]
    >>> path = quantile_ab_path(looks_c, looks_t, 0.95, target_n=2500, scale="ratio")
    >>> [round(r.p_value, 4) for r in path]
    [0.0623, 0.0001, 0.0, 0.0, 0.0]
    """
    if len(control) != len(treatment):
        raise ValueError("the arms have different numbers of looks")
    if not control:
        return []
    tuning = _default_target(control[-1], treatment[-1]) if target_n is None else target_n
    return [
        quantile_ab(c, t, q, alpha, tuning, scale, margin)
        for c, t in zip(control, treatment, strict=True)
    ]


def density_at_quantile(estimate: QuantileEstimate) -> float:
    """f̂(Q̂), the density at the quantile that the clustered fixed-horizon standard
    error implies: se = σ_F/f̂ with se = (U − L)/(2z) read off the order statistics
    at q ∓ z·σ_F (:func:`abkit.stats.quantile.quantile_estimate`), so
    f̂ = σ_F/se = 2z·σ_F/(U − L), Woodruff's estimate.

    Parameters
    ----------
    estimate : QuantileEstimate
        An arm's estimate (clustered or not).

    Returns
    -------
    float
        f̂; NaN when the estimate has no standard error, +∞ when it is 0.

    References
    ----------
    .. [1] R. S. Woodruff, "Confidence intervals for medians and other position
       measures", Journal of the American Statistical Association 47, 635–646, 1952.

    Examples
    --------
    The density of a standard lognormal at its median (1/√(2π) = 0.3989):

    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> from abkit.stats.sequential_quantile import density_at_quantile
    >>> x = np.random.default_rng(5).lognormal(0.0, 1.0, 200_000)
    >>> round(density_at_quantile(quantile_estimate(x, np.arange(x.size), 0.5)), 1)
    0.4
    """
    if estimate.problem is not None or not estimate.se >= 0:
        return math.nan
    sigma_f = math.sqrt(estimate.design_effect * estimate.q * (1 - estimate.q) / estimate.events)
    return sigma_f / estimate.se if estimate.se > 0 else math.inf


def quantile_influence(
    values: np.ndarray, units: np.ndarray, estimate: QuantileEstimate
) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's influence on the arm's quantile (its user-level linearisation).

    Parameters
    ----------
    values : numpy.ndarray
        The arm's event values.
    units : numpy.ndarray
        The unit of each value.
    estimate : QuantileEstimate
        :func:`abkit.stats.quantile.quantile_estimate` of the same values.

    Returns
    -------
    tuple of numpy.ndarray
        The units (sorted ids) and ψᵢ = (F̂·nᵢ − cᵢ)/(f̂·n̄), with cᵢ of unit i's nᵢ
        events at or below Q̂, F̂ = Σcᵢ/N, n̄ = N/K and f̂ = :func:`density_at_quantile`.
        Σψᵢ = 0 and K/(K − 1)·Σψᵢ²/K² = se² of the fixed-horizon clustered test.

    Notes
    -----
    Centring on F̂ rather than q (which differ by less than 1/N without ties) makes the
    influences sum to zero, so that their variance is exactly the delta-method one.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import quantile_estimate
    >>> from abkit.stats.sequential_quantile import quantile_influence
    >>> rng = np.random.default_rng(0)
    >>> users = rng.integers(0, 400, 6000)
    >>> latency = rng.lognormal(0, 0.5, 6000) * rng.lognormal(0, 0.5, 400)[users]
    >>> e = quantile_estimate(latency, users, 0.95)
    >>> ids, psi = quantile_influence(latency, users, e)
    >>> k = psi.size
    >>> round(float(np.sqrt(k / (k - 1) * np.sum(psi**2) / k**2)), 6) == round(e.se, 6)
    True
    """
    x = np.asarray(values, dtype=float)
    ids, codes = np.unique(np.asarray(units), return_inverse=True)
    codes = codes.ravel()
    per_unit = np.bincount(codes, minlength=ids.size).astype(float)
    below = np.bincount(codes[x <= estimate.estimate], minlength=ids.size).astype(float)
    share = below.sum() / per_unit.sum()
    mean_events = per_unit.sum() / ids.size
    psi = (share * per_unit - below) / (density_at_quantile(estimate) * mean_events)
    return ids, psi


def clustered_quantile_cs(
    control: Sequence[QuantileEstimate],
    treatment: Sequence[QuantileEstimate],
    alpha: float,
    target_n: float,
    scale: Scale = "difference",
) -> AlwaysValidPath:
    """Asymptotic confidence sequence for the difference (or log ratio) of two arms'
    quantiles of events clustered by unit.

    Parameters
    ----------
    control, treatment : sequence of QuantileEstimate
        Each arm's clustered estimate at each look
        (:func:`abkit.stats.quantile.quantile_estimate`, or
        :meth:`abkit.stats.quantile.Histogram.estimate` on the histogram route),
        every look re-estimating the quantile and the density at it.
    alpha : float
        The level.
    target_n : float
        The planned units of both arms (where the sequence is tightest).
    scale : {"difference", "ratio"}, default "difference"
        θ = Q_T − Q_C, or log(Q_T/Q_C) (exponentiate the path's ends for the ratio;
        test a ratio margin δ with ``p_value_at(log δ)``).

    Returns
    -------
    AlwaysValidPath
        :func:`abkit.stats.always_valid.asymptotic_cs` of θ̂_k with variance
        V_k = se²_C + se²_T (difference) or se²_C/Q̂²_C + se²_T/Q̂²_T (log ratio) and
        n_k = K_C + K_T units: the variance of the mean user-level influence
        (:func:`quantile_influence`).  NaN at looks where an arm has no standard
        error.

    Raises
    ------
    ValueError
        When the arms have different numbers of looks or ``target_n`` ≤ 0.

    Notes
    -----
    A guardrail "must not rise by more than δ" passes at the first look with
    ``path.ci_high < δ``, i.e. ``path.p_value_at(δ) < α`` with the estimate below δ
    (:mod:`abkit.stats.always_valid`).

    References
    ----------
    .. [1] I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas,
       "Time-uniform central limit theory and asymptotic confidence sequences",
       Annals of Statistics 52, 2613–2640, 2024.
    .. [2] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, section 4.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.quantile import EventValues
    >>> from abkit.stats.sequential_quantile import clustered_quantile_cs
    >>> rng = np.random.default_rng(6)
    >>> def day(shift, first_user):  # 300 users, 1–20 requests each, a slow-device effect
    ...     n = rng.integers(1, 21, 300)
    ...     users = np.repeat(np.arange(first_user, first_user + 300), n)
    ...     slow = rng.lognormal(0.0, 0.4, 300)
    ...     return EventValues(rng.lognormal(shift, 0.5, n.sum()) * np.repeat(slow, n), users)
    >>> c = t = EventValues.zero()
    >>> looks_c, looks_t = [], []
    >>> for k in range(4):
    ...     c, t = c + day(0.0, 300 * k), t + day(0.2, 300 * k)
    ...     looks_c.append(c.estimates((0.95,))[0.95])
    ...     looks_t.append(t.estimates((0.95,))[0.95])
    >>> path = clustered_quantile_cs(looks_c, looks_t, 0.05, target_n=2400, scale="ratio")
    >>> np.round(np.exp(path.ci_low), 3).tolist(), np.round(path.p_value, 4).tolist()
    ([1.085, 1.115, 1.104, 1.056], [0.0022, 0.0, 0.0, 0.0001])
    """
    if len(control) != len(treatment):
        raise ValueError("the arms have different numbers of looks")
    c_est = np.array([e.estimate for e in control], dtype=float)
    t_est = np.array([e.estimate for e in treatment], dtype=float)
    c_se = np.array([e.se for e in control], dtype=float)
    t_se = np.array([e.se for e in treatment], dtype=float)
    units = np.array([c.units + t.units for c, t in zip(control, treatment, strict=True)])
    with np.errstate(divide="ignore", invalid="ignore"):
        if scale == "ratio":
            estimate = np.log(t_est / c_est)
            variance = (c_se / c_est) ** 2 + (t_se / t_est) ** 2
        else:
            estimate = t_est - c_est
            variance = c_se**2 + t_se**2
    variance = np.where(np.isfinite(variance), variance, np.nan)
    path = asymptotic_cs(estimate, variance, units.astype(float), alpha, target_n)
    return dataclasses.replace(path, method=CLUSTERED_CS)


def _default_target(control: Sample, treatment: Sample) -> float:
    return float(max(_distinct(control)[1][-1], _distinct(treatment)[1][-1]))


def _shift(theta0: float, scale: Scale) -> float:
    if scale == "ratio":
        if not theta0 > 0:
            raise ValueError(f"a ratio of quantiles must be positive, got {theta0}")
        return math.log(theta0)
    return float(theta0)


def _distinct(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values ascending and the count of values at or below each."""
    if isinstance(sample, Histogram):
        keep = sample.counts > 0
        keys, counts = sample.keys[keep], sample.counts[keep]
        order = np.argsort(keys, kind="stable")
        values = sample.bins.values(keys[order])
        cum = np.cumsum(counts[order])
    else:
        x = np.asarray(sample, dtype=float).ravel()
        if not np.all(np.isfinite(x)):
            raise ValueError("quantile values must be finite")
        values, counts = np.unique(x, return_counts=True)
        cum = np.cumsum(counts)
    if values.size == 0:
        raise ValueError("an arm has no values")
    return values, cum.astype(np.int64)


def _order_statistic(values: np.ndarray, cum: np.ndarray, rank: int) -> float:
    """X₍rank₎ of the distinct values with cumulative counts; −∞ below rank 1 and +∞
    above rank n."""
    if rank < 1:
        return -math.inf
    if rank > cum[-1]:
        return math.inf
    return float(values[np.searchsorted(cum, rank, side="left")])


def _p_value(control: _Arm, treatment: _Arm, shift: float) -> float:
    """min(1, exp(−min_x [G_C(x) + G_T(x + shift)])) over the merged sample values
    between the two arms' least-G values (G is quasi-convex, so the least sum lies
    there; at a sample value G covers the gaps on both sides)."""
    c_lo, c_hi = control.argmin_span()
    t_lo, t_hi = treatment.argmin_span()
    lo, hi = min(c_lo, t_lo - shift), max(c_hi, t_hi - shift)
    shifted = treatment.values - shift
    points = np.concatenate(
        [
            control.values[(control.values >= lo) & (control.values <= hi)],
            shifted[(shifted >= lo) & (shifted <= hi)],
        ]
    )
    less_c, le_c = control.counts(points)
    less_t, le_t = treatment.counts(points + shift)
    total = control.cost(less_c, le_c) + treatment.cost(less_t, le_t)
    least = float(np.min(total))
    return min(1.0, math.exp(-least)) if least > -700 else 1.0


def _interval(control: _Arm, treatment: _Arm, threshold: float) -> tuple[float, float]:
    """The ends of {y − x: G_C(x) + G_T(y) < threshold} on the tested scale."""
    floor_c = float(control.mixture.log_value(control.star, control.n))
    floor_t = float(treatment.mixture.log_value(treatment.star, treatment.n))
    xs, cx = control.candidates(threshold - floor_t)
    ys, cy = treatment.candidates(threshold - floor_c)
    order = np.argsort(cy, kind="stable")
    cy_sorted, ys_sorted = cy[order], ys[order]
    admissible = np.searchsorted(cy_sorted, threshold - cx, side="left")
    ok = admissible > 0
    largest = np.maximum.accumulate(ys_sorted)[admissible[ok] - 1]
    smallest = np.minimum.accumulate(ys_sorted)[admissible[ok] - 1]
    with np.errstate(invalid="ignore"):
        high = float(np.nanmax(largest - xs[ok]))
        low = float(np.nanmin(smallest - xs[ok]))
    return low, high
