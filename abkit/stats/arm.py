"""Sufficient statistics of one arm for one metric.

Every test in :mod:`abkit.stats` works on these few numbers, never on raw rows, so
the same code serves unit-level data (reduced by Polars), summary exports and
simulations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

import numpy as np

# |x| above this cannot be squared in double precision (1e154² > 1.8e308): inputs beyond
# it are refused by the loaders, so sums of squares stay finite
LARGEST_VALUE = 1e150


class Summable:
    """What lets ``sum(parts)`` add the sufficient statistics of :mod:`abkit.stats`.

    ``sum`` starts from the integer 0; ``0 + part`` is ``part``.  A possibly empty
    list needs a start of the same type, e.g. ``sum(parts, ArmSummary.zero())``.

    Subclasses define ``__add__`` (the statistic of the union of disjoint parts)
    and a ``zero`` constructor (the identity).

    Examples
    --------
    >>> from abkit.stats.arm import ArmSummary
    >>> part = ArmSummary.from_values([1.0, 3.0])
    >>> 0 + part is part
    True
    """

    def __radd__(self, other: object) -> Self:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


@dataclass(frozen=True)
class ArmSummary(Summable):
    """Per-unit moments of an arm.

    For a mean or proportion metric only ``n``, ``mean`` and ``var`` are set: the
    per-unit values x_i have sample mean ``mean`` and sample variance ``var``
    (ddof = 1).  For a ratio-of-sums metric, x_i is the numerator and y_i the
    denominator of unit i; ``den_mean``, ``den_var`` and ``cov`` (ddof = 1) describe
    y and its covariance with x, and the metric value is ``mean / den_mean``.
    ``skewness`` (of x, optional) feeds the heavy-skew warning.

    Parameters
    ----------
    n : int
        Number of units.
    mean : float
        x̄, NaN when n = 0.
    var : float
        Sample variance of x (ddof = 1), NaN when n < 2.
    den_mean, den_var, cov : float or None
        ȳ, the sample variance of y and the sample covariance of x and y (ddof = 1);
        None for a mean or proportion metric.
    skewness : float or None
        The adjusted sample skewness of x, G₁ = √(n(n − 1)) / (n − 2) · m₃ / m₂^{3/2}
        with m_k = Σ(xᵢ − x̄)^k / n (Polars' ``skew(bias=False)``, SciPy's
        ``skew(bias=False)``); NaN when n < 3 or every x is equal; None when unknown.

    Notes
    -----
    Summaries of disjoint sets of units add with ``+`` (and ``sum``) to the summary of
    their union, exactly up to rounding: see :meth:`__add__`.  The merge works on
    central moments, as does every field here, so it keeps its precision when the
    mean is large relative to the spread (unlike sums of squares, :meth:`from_sums`).

    Examples
    --------
    >>> from abkit.stats.arm import ArmSummary
    >>> whole = ArmSummary.from_values([1.0, 2.0, 4.0, 8.0])
    >>> merged = ArmSummary.from_values([1.0, 2.0]) + ArmSummary.from_values([4.0, 8.0])
    >>> merged.n, merged.mean, round(merged.var, 12) == round(whole.var, 12)
    (4, 3.75, True)
    """

    n: int
    mean: float
    var: float
    den_mean: float | None = None
    den_var: float | None = None
    cov: float | None = None
    skewness: float | None = None

    @property
    def is_ratio(self) -> bool:
        """Whether the summary describes a ratio of sums (denominator moments set)."""
        return self.den_mean is not None

    @classmethod
    def zero(cls) -> ArmSummary:
        """The summary of no units: the identity of ``+``, and a start for ``sum``.

        Returns
        -------
        ArmSummary
            n = 0 with NaN moments; added to a summary of either kind (mean or ratio)
            it gives that summary back.

        Examples
        --------
        >>> from abkit.stats.arm import ArmSummary
        >>> sum([], ArmSummary.zero()).n
        0
        >>> part = ArmSummary.from_values([1.0, 3.0])
        >>> ArmSummary.zero() + part == part
        True
        """
        return cls(n=0, mean=math.nan, var=math.nan)

    def __add__(self, other: object) -> ArmSummary:
        """The summary of the union of two disjoint sets of units.

        Parameters
        ----------
        other : ArmSummary
            The summary of units that are not among this summary's units (another
            part of an export, another day's new units, another segment).  An empty
            part (n = 0) of either kind is the identity: the units stage gives an
            empty arm of a ratio metric without denominator moments.

        Returns
        -------
        ArmSummary
            n = n_a + n_b and the pooled mean, variances (ddof = 1), covariance and
            skewness, as :meth:`from_values` (and Polars' ``skew(bias=False)``) give
            them on the union; var is NaN when n < 2 and skewness NaN when n < 3 or
            there is no spread.

        Raises
        ------
        ValueError
            When one summary describes a ratio metric (denominator moments set) and
            the other a mean, both non-empty.

        Notes
        -----
        With δ = x̄_b − x̄_a, the central moments M₂ = Σ(xᵢ − x̄)² = var·(n − 1),
        M₃ = Σ(xᵢ − x̄)³ and the co-moment C = Σ(xᵢ − x̄)(yᵢ − ȳ) = cov·(n − 1) of
        the union are (Chan, Golub & LeVeque, "Updating formulae and a pairwise
        algorithm for computing sample variances", Stanford report STAN-CS-79-773,
        1979; Pébay, "Formulas for robust, one-pass parallel computation of
        covariances and arbitrary-order statistical moments", Sandia report
        SAND2008-6212, 2008)::

            x̄  = x̄_a + δ·n_b/n
            M₂ = M₂,a + M₂,b + δ²·n_a·n_b/n
            C  = C_a + C_b + δ_x·δ_y·n_a·n_b/n
            M₃ = M₃,a + M₃,b + δ³·n_a·n_b·(n_a − n_b)/n² + 3δ·(n_a·M₂,b − n_b·M₂,a)/n

        A part of one unit has M₂ = C = M₃ = 0 (its NaN variance is not carried into
        the merge); a part of two units, or without spread, has M₃ = 0.  Otherwise
        M₃ is recovered from the part's skewness, M₃ = g₁·M₂^{3/2}/√n with
        g₁ = G₁·(n − 2)/√(n(n − 1)), so the merged skewness is exact; it is None
        when a non-empty part has none.

        Only differences from means enter, never Σx², so the merge keeps the
        precision of the parts when the mean is large relative to the spread σ: M₂
        is exact up to the rounding of the parts' means, a relative error near
        ε·|x̄|/(σ·√n) per merge (ε = 2⁻⁵²), where Σx² − n·x̄² has ε·x̄²/σ².
        Associative and commutative up to rounding.  tea-tasting's
        ``Aggregates.__add__`` pools variances and covariances in the same way;
        GrowthBook's gbstats statistics add sums and sums of squares instead
        (``models/statistics.py``), with the precision of :meth:`from_sums`.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.arm import ArmSummary
        >>> x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
        >>> parts = [ArmSummary.from_values(p) for p in (x[:1], x[1:4], x[4:])]
        >>> merged = sum(parts)
        >>> merged.n, round(merged.mean, 12), round(merged.var, 12)
        (7, 3.571428571429, 7.952380952381)
        >>> round(float(np.var(x, ddof=1)), 12)
        7.952380952381

        Ratio metrics merge the denominator's moments and the co-moment as well:

        >>> y = np.array([1.0, 1.0, 2.0, 1.0, 2.0, 3.0, 1.0])
        >>> r = ArmSummary.from_values(x[:3], y[:3]) + ArmSummary.from_values(x[3:], y[3:])
        >>> round(r.cov, 12) == round(float(np.cov(x, y)[0, 1]), 12)
        True
        >>> ArmSummary.from_values(x) + ArmSummary.from_values(x, y)
        Traceback (most recent call last):
        ...
        ValueError: cannot add a mean summary and a ratio summary ...
        """
        if not isinstance(other, ArmSummary):
            return NotImplemented
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        if self.is_ratio != other.is_ratio:
            kinds = ("a ratio" if part.is_ratio else "a mean" for part in (self, other))
            raise ValueError(
                f"cannot add {' summary and '.join(kinds)} summary (only one has "
                "denominator moments): the parts must describe the same metric"
            )
        n_a, n_b = self.n, other.n
        n = n_a + n_b
        weight = n_a * n_b / n
        delta = other.mean - self.mean
        mean = self.mean + delta * (n_b / n)
        m2_a, m2_b = _comoment(self.var, n_a), _comoment(other.var, n_b)
        m2 = m2_a + m2_b + delta * delta * weight
        skewness = None
        m3_a, m3_b = _third_moment(self, m2_a), _third_moment(other, m2_b)
        if m3_a is not None and m3_b is not None:
            m3 = (
                m3_a
                + m3_b
                + delta**3 * weight * (n_a - n_b) / n
                + 3.0 * delta * (n_a * m2_b - n_b * m2_a) / n
            )
            skewness = _skewness(n, m2, m3)
        var = m2 / (n - 1)
        if self.den_mean is None or other.den_mean is None:
            return ArmSummary(n=n, mean=mean, var=var, skewness=skewness)
        den_delta = other.den_mean - self.den_mean
        den_m2 = (
            _comoment(self.den_var, n_a)
            + _comoment(other.den_var, n_b)
            + den_delta * den_delta * weight
        )
        co = _comoment(self.cov, n_a) + _comoment(other.cov, n_b) + delta * den_delta * weight
        return ArmSummary(
            n=n,
            mean=mean,
            var=var,
            den_mean=self.den_mean + den_delta * (n_b / n),
            den_var=den_m2 / (n - 1),
            cov=co / (n - 1),
            skewness=skewness,
        )

    @property
    def value(self) -> float:
        """The metric's point estimate: x̄, or x̄ / ȳ for a ratio of sums."""
        if self.den_mean is None:
            return self.mean
        return self.mean / self.den_mean if self.den_mean != 0 else math.nan

    @classmethod
    def from_values(cls, x: np.ndarray, y: np.ndarray | None = None) -> ArmSummary:
        """Moments of raw per-unit arrays (numerator ``x``, optional denominator ``y``).

        Parameters
        ----------
        x : numpy.ndarray
            The per-unit values (or numerators).
        y : numpy.ndarray or None
            The per-unit denominators of a ratio metric, the same length as ``x``.

        Returns
        -------
        ArmSummary
            n, x̄ and s²_x (ddof = 1); with ``y`` also ȳ, s²_y and s_xy.  Variances
            and the covariance are NaN when n < 2, means NaN when n = 0; the
            skewness is not computed (None).

        Raises
        ------
        ValueError
            When ``x`` and ``y`` differ in length.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.arm import ArmSummary
        >>> ratio = ArmSummary.from_values(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 2.0]))
        >>> ratio.value, ratio.cov, ratio.is_ratio
        (2.0, 0.5, True)
        """
        x = np.asarray(x, dtype=float)
        n = x.size
        var = float(np.var(x, ddof=1)) if n > 1 else math.nan
        if y is None:
            return cls(n=n, mean=float(x.mean()) if n else math.nan, var=var)
        y = np.asarray(y, dtype=float)
        if y.shape != x.shape:
            raise ValueError("numerator and denominator arrays differ in length")
        if n > 1:
            cov = float(np.cov(x, y, ddof=1)[0, 1])
            den_var = float(np.var(y, ddof=1))
        else:
            cov = den_var = math.nan
        return cls(
            n=n,
            mean=float(x.mean()) if n else math.nan,
            var=var,
            den_mean=float(y.mean()) if n else math.nan,
            den_var=den_var,
            cov=cov,
        )

    @classmethod
    def from_sums(
        cls,
        n: float,
        sum_x: float,
        sum_x2: float | None = None,
        sum_y: float | None = None,
        sum_y2: float | None = None,
        sum_xy: float | None = None,
    ) -> ArmSummary:
        """Moments from sums, as summary exports give them.

        s² = (Σx² − n·x̄²) / (n − 1) and likewise for y and the cross-product.
        This textbook formula loses precision when the mean is large relative to
        the spread; prefer exports of mean and variance when available.

        Parameters
        ----------
        n : float
            The number of units.
        sum_x : float
            Σx.
        sum_x2 : float or None
            Σx²; None leaves the variance NaN.
        sum_y, sum_y2, sum_xy : float or None
            Σy, Σy² and Σxy of a ratio metric; None for a mean metric.

        Returns
        -------
        ArmSummary
            Variances and the covariance NaN when n < 2 or their sum is missing.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.arm import ArmSummary
        >>> ArmSummary.from_sums(n=4, sum_x=15.0, sum_x2=85.0).var
        9.583333333333334
        >>> float(np.var([1.0, 2.0, 4.0, 8.0], ddof=1))
        9.583333333333334

        With a mean of 10⁹ and a spread of 1 the sums of squares keep no digit of
        the variance, where the centred moments keep all of them:

        >>> big = 1e9 + np.array([0.0, 1.0, 2.0])
        >>> ArmSummary.from_sums(3, float(big.sum()), float((big**2).sum())).var
        0.0
        >>> ArmSummary.from_values(big).var
        1.0
        """
        n = float(n)
        mean = sum_x / n if n else math.nan

        def centred(sum_sq: float | None, a: float, b: float) -> float:
            if sum_sq is None or n < 2:
                return math.nan
            return (sum_sq - n * a * b) / (n - 1)

        var = centred(sum_x2, mean, mean)
        if sum_y is None:
            return cls(n=int(n), mean=mean, var=var)
        den_mean = sum_y / n if n else math.nan
        return cls(
            n=int(n),
            mean=mean,
            var=var,
            den_mean=den_mean,
            den_var=centred(sum_y2, den_mean, den_mean),
            cov=centred(sum_xy, mean, den_mean),
        )


def _comoment(var: float | None, n: int) -> float:
    """M₂ (or a co-moment) = var·(n − 1): 0 for a single unit, NaN when unknown."""
    if n < 2:
        return 0.0
    return math.nan if var is None else var * (n - 1)


def _third_moment(arm: ArmSummary, m2: float) -> float | None:
    """M₃ = Σ(xᵢ − x̄)³ of a non-empty part from its skewness G₁ (None: unknown).

    With two units or fewer, or no spread, M₃ = 0 whatever the (NaN) skewness says."""
    if arm.skewness is None:
        return None
    n = arm.n
    if n < 3 or m2 == 0:
        return 0.0
    if not m2 > 0:  # unknown (NaN) or a negative variance from cancelling sums
        return math.nan
    g1 = arm.skewness * (n - 2) / math.sqrt(n * (n - 1))
    return g1 * m2 * math.sqrt(m2 / n)


def _skewness(n: int, m2: float, m3: float) -> float:
    """G₁ of n values with central moments M₂ and M₃ (NaN when n < 3 or M₂ = 0)."""
    if n < 3 or not m2 > 0:
        return math.nan
    g1 = m3 * math.sqrt(n / m2) / m2
    return g1 * math.sqrt(n * (n - 1)) / (n - 2)
