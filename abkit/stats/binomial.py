"""Intervals for a binomial proportion.

The Wilson score interval inverts the score test of a proportion: with p̂ = k/n and
z = z₁₋α/₂,

    centre = (p̂ + z²/(2n)) / (1 + z²/n),
    half   = z √(p̂(1 − p̂)/n + z²/(4n²)) / (1 + z²/n),

so it stays inside [0, 1] and keeps near-nominal coverage for small n and for p̂ near
0 or 1, where the Wald interval p̂ ± z √(p̂(1 − p̂)/n) collapses (Brown, Cai &
DasGupta 2001).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from abkit.stats.distributions import norm_ppf


def wilson_interval(
    successes: ArrayLike, trials: ArrayLike, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of the proportion k/n, elementwise.

    Parameters
    ----------
    successes : array_like
        Successes k (0 ≤ k ≤ n).
    trials : array_like
        Trials n (> 0), broadcast against ``successes``.
    alpha : float
        Two-sided level: the interval has coverage about 1 − alpha.

    Returns
    -------
    low, high : numpy.ndarray
        The interval's bounds, within [0, 1].

    References
    ----------
    Wilson, "Probable inference, the law of succession, and statistical inference",
    *JASA* 22, 1927; Brown, Cai & DasGupta, "Interval estimation for a binomial
    proportion", *Statistical Science* 16, 2001.

    Examples
    --------
    The same bounds as statsmodels' ``proportion_confint(method="wilson")``:

    >>> import numpy as np
    >>> from statsmodels.stats.proportion import proportion_confint
    >>> low, high = wilson_interval([30, 0, 5], [100, 40, 5])
    >>> np.round(low, 4).tolist(), np.round(high, 4).tolist()
    ([0.2189, 0.0, 0.5655], [0.3958, 0.0876, 1.0])
    >>> ref = proportion_confint(np.array([30, 0, 5]), np.array([100, 40, 5]), method="wilson")
    >>> bool(np.allclose(low, ref[0]) and np.allclose(high, ref[1]))
    True
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    p = k / n
    z = float(norm_ppf(1 - alpha / 2))
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
