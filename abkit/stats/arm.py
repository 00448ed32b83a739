"""Sufficient statistics of one arm for one metric.

Every test in :mod:`abkit.stats` works on these few numbers, never on raw rows, so
the same code serves unit-level data (reduced by Polars), summary exports and
simulations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# |x| above this cannot be squared in double precision (1e154² > 1.8e308): inputs beyond
# it are refused by the loaders, so sums of squares stay finite
LARGEST_VALUE = 1e150


@dataclass(frozen=True)
class ArmSummary:
    """Per-unit moments of an arm.

    For a mean or proportion metric only ``n``, ``mean`` and ``var`` are set: the
    per-unit values x_i have sample mean ``mean`` and sample variance ``var``
    (ddof = 1).  For a ratio-of-sums metric, x_i is the numerator and y_i the
    denominator of unit i; ``den_mean``, ``den_var`` and ``cov`` (ddof = 1) describe
    y and its covariance with x, and the metric value is ``mean / den_mean``.
    ``skewness`` (of x, optional) feeds the heavy-skew warning.
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
        return self.den_mean is not None

    @property
    def value(self) -> float:
        """The metric's point estimate: x̄, or x̄ / ȳ for a ratio of sums."""
        if self.den_mean is None:
            return self.mean
        return self.mean / self.den_mean if self.den_mean != 0 else math.nan

    @classmethod
    def from_values(cls, x: np.ndarray, y: np.ndarray | None = None) -> ArmSummary:
        """Moments of raw per-unit arrays (numerator ``x``, optional denominator ``y``)."""
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
