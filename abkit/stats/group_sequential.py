"""Group-sequential designs: Lan–DeMets alpha spending, boundaries, repeated CIs.

The z-statistics Z_k at information fractions 0 < t_1 < … < t_K ≤ 1 behave like
B(t_k)/√t_k for a Brownian motion B (Jennison & Turnbull, "Group Sequential Methods
with Applications to Clinical Trials", 2000, ch. 3).  Two-sided symmetric efficacy
boundaries c_k spend α(t_k) − α(t_{k−1}) at look k:

    P(|Z_j| < c_j for j < k, |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1}),

solved look by look with the recursive numerical integration of Armitage, McPherson
& Rowe (1969) on the B scale (Simpson's rule on a fixed grid; J&T ch. 19).

Spending functions (Lan & DeMets, Biometrika 1983; Kim & DeMets 1987), two-sided:

* O'Brien–Fleming type: α(t) = 2 · (2 − 2 Φ(z_{1−α/4} / √t)), i.e. the one-sided
  function 2 − 2Φ(z_{1−α₁/2}/√t) at α₁ = α/2 on each side.  (Using 2 − 2Φ(z_{1−α/2}/√t)
  as the *total* two-sided spend is a known trap: it gives a first boundary of 4.38
  instead of 4.88 for five looks.)
* Pocock type:          α(t) = α · log(1 + (e − 1) t).

Pocock's (1977) constant boundary (the same c at every equally spaced look) is also
available.  Repeated confidence intervals θ̂_k ± c_k·se_k hold simultaneously over
all looks with probability ≥ 1 − α (J&T ch. 9); the repeated p-value at look k is the
smallest α' whose boundary the look crosses.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from abkit.options import Spending, choices
from abkit.stats.distributions import norm_ppf

SPENDING = choices(Spending)
_POINTS_PER_SD = 12  # grid spacing ≤ (increment's sd)/12 (cf. J&T §19.2: ~ r = 18 per sd)
_MIN_POINTS = 101
_Z_CAP = 8.5  # |Z| beyond which the sub-density is < 1e-16: the grid stops there
_P_FLOOR = 1e-8  # repeated p-values below this are reported as this


def spent(t: np.ndarray | float, alpha: float, kind: str) -> np.ndarray:
    """Cumulative two-sided alpha spent at information fraction(s) t.

    O'Brien–Fleming type: α(t) = 2 · (2 − 2 Φ(z_{1−α/4} / √t)); Pocock type:
    α(t) = α · log(1 + (e − 1) t).  Both spend 0 at t = 0 and α at t = 1.

    Parameters
    ----------
    t : numpy.ndarray or float
        Information fractions, clipped to [0, 1].
    alpha : float
        The two-sided level spent by t = 1.
    kind : str
        "obrien_fleming" or "pocock".

    Returns
    -------
    numpy.ndarray
        α(t), the shape of ``t``.

    Raises
    ------
    ValueError
        For an unknown ``kind``.

    References
    ----------
    .. [1] K. K. G. Lan and D. L. DeMets, "Discrete sequential boundaries for
       clinical trials", Biometrika 70, 659–663, 1983.
    .. [2] K. Kim and D. L. DeMets, "Design and analysis of group sequential tests
       based on the type I error spending rate function", Biometrika 74, 149–154,
       1987.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.group_sequential import spent
    >>> t = np.arange(1, 6) / 5
    >>> np.round(spent(t, 0.05, "obrien_fleming"), 5).tolist()
    [0.0, 0.00079, 0.00762, 0.02442, 0.05]
    >>> np.round(spent(t, 0.05, "pocock"), 5).tolist()
    [0.01477, 0.02616, 0.03543, 0.04324, 0.05]
    """
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obrien_fleming":
        z = norm_ppf(1.0 - alpha / 4.0)
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2.0 * (2.0 - 2.0 * ndtr(z / np.sqrt(t))), 0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1.0) * t)
    raise ValueError(f"unknown spending function '{kind}'; use one of {', '.join(SPENDING)}")


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    density: np.ndarray = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return density


def _simpson(n: int) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w / 3.0


class _Recursion:
    """Sub-density of B(t_k) on the continuation region, propagated look by look.

    B has drift ``theta`` per unit of information fraction: B(t) ~ N(θt, t).  The
    continuation region at a look is lo < Z < hi, i.e. lo·√t < B < hi·√t.
    """

    def __init__(self, theta: float = 0.0) -> None:
        self.theta = theta
        self.grid: np.ndarray | None = None  # B values
        self.dens: np.ndarray | None = None  # density × Simpson weight × spacing
        self.t_prev = 0.0

    def _moments(self, t: float) -> tuple[np.ndarray, float]:
        start = np.zeros(1) if self.grid is None else self.grid
        return start + self.theta * (t - self.t_prev), math.sqrt(t - self.t_prev)

    def _mass(self) -> np.ndarray:
        return np.ones(1) if self.dens is None else self.dens

    def lower_prob(self, t: float, lo: float) -> float:
        """P(continue so far, Z(t) ≤ lo)."""
        mean, sd = self._moments(t)
        return float(np.dot(self._mass(), ndtr((lo * math.sqrt(t) - mean) / sd)))

    def upper_prob(self, t: float, hi: float) -> float:
        """P(continue so far, Z(t) ≥ hi)."""
        mean, sd = self._moments(t)
        return float(np.dot(self._mass(), ndtr((mean - hi * math.sqrt(t)) / sd)))

    def cross_prob(self, t: float, c: float) -> float:
        """P(continue so far, |Z(t)| ≥ c)."""
        return self.lower_prob(t, -c) + self.upper_prob(t, c)

    def advance(self, t: float, lo: float, hi: float) -> None:
        mean, sd = self._moments(t)
        a, b = lo * math.sqrt(t), hi * math.sqrt(t)
        points = max(_MIN_POINTS, 2 * math.ceil((b - a) / 2 / sd * _POINTS_PER_SD) + 1)
        grid = np.linspace(a, b, points)
        w = _simpson(points) * (grid[1] - grid[0])
        dens = _normal_pdf((grid[:, None] - mean[None, :]) / sd) @ self._mass() / sd
        self.grid, self.dens, self.t_prev = grid, dens * w, t


def efficacy_bounds(t: np.ndarray, alpha: float, kind: str = "obrien_fleming") -> np.ndarray:
    """Two-sided efficacy boundaries c_k (on the z scale) for looks at fractions t.

    Look by look, c_k solves P(|Z_j| < c_j for j < k, |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1})
    under no effect, by the recursive numerical integration of Armitage, McPherson
    & Rowe on the Brownian-motion scale (Simpson's rule).  A look that spends
    nothing has c_k = inf.

    Parameters
    ----------
    t : numpy.ndarray
        Information fractions, strictly increasing within (0, 1].
    alpha : float
        The two-sided level.
    kind : str, default "obrien_fleming"
        The spending function (:func:`spent`).

    Returns
    -------
    numpy.ndarray
        c_k per look.

    Raises
    ------
    ValueError
        When the fractions do not increase strictly within (0, 1].

    References
    ----------
    .. [1] C. Jennison and B. W. Turnbull, *Group Sequential Methods with
       Applications to Clinical Trials*, Chapman & Hall/CRC, 2000, ch. 3 and 19.
    .. [2] P. Armitage, C. K. McPherson and B. C. Rowe, "Repeated significance tests
       on accumulating data", Journal of the Royal Statistical Society, Series A 132,
       235–244, 1969.
    .. [3] K. K. G. Lan and D. L. DeMets, "Discrete sequential boundaries for
       clinical trials", Biometrika 70, 659–663, 1983.

    Examples
    --------
    Five equally spaced looks at two-sided α = 0.05 (gsDesign's ``sfLDOF`` gives the
    same boundaries):

    >>> import numpy as np
    >>> from abkit.stats.group_sequential import efficacy_bounds
    >>> t = np.arange(1, 6) / 5
    >>> np.round(efficacy_bounds(t, 0.05), 3).tolist()
    [4.877, 3.357, 2.68, 2.29, 2.031]
    >>> np.round(efficacy_bounds(t, 0.05, "pocock"), 3).tolist()
    [2.438, 2.427, 2.41, 2.397, 2.386]
    """
    from scipy import optimize  # loaded when first needed (0.13 s)

    t = np.asarray(t, dtype=float)
    if t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0 or t[-1] > 1 + 1e-12:
        raise ValueError("information fractions must increase strictly within (0, 1]")
    cumulative = spent(t, alpha, kind)
    rec = _Recursion()
    bounds = np.empty(t.size)
    previous = 0.0
    for k, (tk, ak) in enumerate(zip(t, cumulative, strict=True)):
        target = ak - previous
        previous = ak
        if target <= 1e-15:
            bounds[k] = np.inf
        else:
            bounds[k] = optimize.brentq(
                lambda c, tk=tk, target=target: rec.cross_prob(tk, c) - target,
                1e-6,
                40.0,
                xtol=1e-10,
            )
        c = min(bounds[k], _Z_CAP)
        rec.advance(tk, -c, c)
    return bounds


def crossing_probability(t: np.ndarray, bounds: np.ndarray, drift: float) -> float:
    """P(|Z_k| ≥ c_k at some look k) when Z(t) = B(t)/√t and B has drift ``drift`` per
    unit of information (the expected Z at t = 1): the power of a two-sided sequential
    test with boundaries ``bounds`` at information fractions ``t`` (the same recursion
    as the boundaries themselves; Jennison & Turnbull 2000, ch. 19).

    Parameters
    ----------
    t : numpy.ndarray
        Information fractions of the looks.
    bounds : numpy.ndarray
        c_k per look (z scale).
    drift : float
        θ, the expected Z at t = 1.

    Returns
    -------
    float
        P(|Z_k| ≥ c_k at some k): the type I error at drift 0, the power otherwise.

    References
    ----------
    .. [1] C. Jennison and B. W. Turnbull, *Group Sequential Methods with
       Applications to Clinical Trials*, Chapman & Hall/CRC, 2000, ch. 19.

    Examples
    --------
    Under no effect the boundaries spend exactly α; a drift that gives a single look
    90 % power gives five looks slightly less:

    >>> import numpy as np
    >>> from scipy import stats
    >>> from abkit.stats.group_sequential import crossing_probability, efficacy_bounds
    >>> t = np.arange(1, 6) / 5
    >>> bounds = efficacy_bounds(t, 0.05)
    >>> round(crossing_probability(t, bounds, 0.0), 5)
    0.05
    >>> drift = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.9))
    >>> round(crossing_probability(t, bounds, drift), 4)
    0.8934
    """
    rec = _Recursion(drift)
    total = 0.0
    for tk, ck in zip(np.asarray(t, dtype=float), np.asarray(bounds, dtype=float), strict=True):
        c = min(float(ck), _Z_CAP)
        total += rec.cross_prob(float(tk), c)
        rec.advance(float(tk), -c, c)
    return total


def pocock_constant(k: int, alpha: float) -> float:
    """Pocock's constant boundary for k equally spaced looks, two-sided level alpha.

    The c with P(|Z_j| ≥ c at some j ≤ k) = α under no effect, looks at t_j = j/k.

    Parameters
    ----------
    k : int
        The number of looks.
    alpha : float
        The two-sided level.

    Returns
    -------
    float
        c.

    References
    ----------
    .. [1] S. J. Pocock, "Group sequential methods in the design and analysis of
       clinical trials", Biometrika 64, 191–199, 1977.

    Examples
    --------
    Pocock's table gives 2.413 for five looks at α = 0.05:

    >>> from abkit.stats.group_sequential import pocock_constant
    >>> round(pocock_constant(5, 0.05), 3)
    2.413
    """
    from scipy import optimize  # loaded when first needed (0.13 s)

    t = np.arange(1, k + 1) / k

    def excess(c: float) -> float:
        rec, total = _Recursion(), 0.0
        for tk in t:
            total += rec.cross_prob(tk, c)
            rec.advance(tk, -c, c)
        return total - alpha

    return float(optimize.brentq(excess, 1.0, 10.0, xtol=1e-10))


def repeated_p_values(z: np.ndarray, t: np.ndarray, kind: str) -> np.ndarray:
    """Per-look repeated p-values: at look k, the α' at which |z_k| = c_k(α').

    c_k(α') depends on α' and t_1..t_k only and decreases as α' grows, so each α'_k is
    one root-finding on log α' (J&T §9.4), and |z_k| ≥ c_k(α) exactly when α'_k ≤ α:
    the look's p-value and its repeated confidence interval θ̂_k ± c_k(α)·se_k agree.
    The running minimum over looks (J&T's repeated p-value) is not taken: the first
    look with α'_k ≤ α is the decision, kept by :mod:`abkit.analysis.sequential`.  Cost grows
    with the square of the number of looks: meant for a few planned looks.

    Parameters
    ----------
    z : numpy.ndarray
        The z-statistic at each look (sign ignored).
    t : numpy.ndarray
        The looks' information fractions.
    kind : str
        The spending function.

    Returns
    -------
    numpy.ndarray
        α'_k per look, within [1e-8, 1] (1 when even α' = 0.999 is not crossed);
        NaN where z is not finite.

    References
    ----------
    .. [1] C. Jennison and B. W. Turnbull, *Group Sequential Methods with
       Applications to Clinical Trials*, Chapman & Hall/CRC, 2000, §9.4.

    Examples
    --------
    The repeated p-value is below 0.05 exactly at the looks that cross the α = 0.05
    boundaries:

    >>> import numpy as np
    >>> from abkit.stats.group_sequential import efficacy_bounds, repeated_p_values
    >>> z, t = np.array([1.2, 2.1, 2.9, 2.5]), np.array([0.25, 0.5, 0.75, 1.0])
    >>> np.round(repeated_p_values(z, t, "obrien_fleming"), 4).tolist()
    [0.8615, 0.1896, 0.0144, 0.0135]
    >>> (np.abs(z) >= efficacy_bounds(t, 0.05)).tolist()
    [False, False, True, True]
    """
    from scipy import optimize  # loaded when first needed (0.13 s)

    z, t = np.abs(np.asarray(z, dtype=float)), np.asarray(t, dtype=float)
    crossing = np.full(z.size, np.nan)
    for j in range(z.size):
        if not np.isfinite(z[j]):
            continue

        def gap(log_a: float, j: int = j) -> float:
            distance: float = z[j] - efficacy_bounds(t[: j + 1], math.exp(log_a), kind)[j]
            return distance

        lo, hi = math.log(_P_FLOOR), math.log(0.999)
        if gap(hi) < 0:
            crossing[j] = 1.0
        elif gap(lo) >= 0:
            crossing[j] = _P_FLOOR
        else:
            crossing[j] = math.exp(optimize.brentq(gap, lo, hi, xtol=1e-6))
    return crossing


def futility_bounds(
    t: np.ndarray, efficacy: np.ndarray, theta: float, beta: float, kind: str = "obrien_fleming"
) -> np.ndarray:
    """Non-binding futility bounds b_k by beta spending (J&T §7.2; gsDesign's "non-binding").

    Under the design alternative (drift θ = expected Z at t = 1, positive = the good
    direction) the probability of stopping for futility by look k is β(t_k), with
    β(t) the spending function of ``kind`` applied to β one-sided:

        P_θ(b_j < Z_j < c_j for j < k, Z_k ≤ b_k) = β(t_k) − β(t_{k−1}).

    The bounds never move the efficacy boundaries (they are computed without them),
    so ignoring a futility stop keeps the type I error at α.  A bound that would pass
    its efficacy boundary is capped there, and the last one equals it.

    Parameters
    ----------
    t : numpy.ndarray
        Information fractions of the looks.
    efficacy : numpy.ndarray
        The efficacy boundaries c_k.
    theta : float
        The design drift (expected Z at t = 1 under the alternative).
    beta : float
        The type II error spent by t = 1.
    kind : str, default "obrien_fleming"
        The spending function applied to β.

    Returns
    -------
    numpy.ndarray
        b_k per look (z scale, the good direction positive); −8.5 where nothing is
        spent.

    References
    ----------
    .. [1] C. Jennison and B. W. Turnbull, *Group Sequential Methods with
       Applications to Clinical Trials*, Chapman & Hall/CRC, 2000, §7.2.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> from abkit.stats.group_sequential import efficacy_bounds, futility_bounds
    >>> t = np.arange(1, 6) / 5
    >>> drift = float(stats.norm.ppf(0.975) + stats.norm.ppf(0.9))
    >>> np.round(futility_bounds(t, efficacy_bounds(t, 0.05), drift, beta=0.1), 3).tolist()
    [-2.048, -0.306, 0.643, 1.306, 2.031]
    """
    from scipy import optimize  # loaded when first needed (0.13 s)

    t = np.asarray(t, dtype=float)
    cumulative = (
        spent(t, 2.0 * beta, kind) / 2.0 if kind == "obrien_fleming" else spent(t, beta, kind)
    )
    rec = _Recursion(theta)
    bounds = np.empty(t.size)
    previous = 0.0
    for k, (tk, bk, ck) in enumerate(zip(t, cumulative, efficacy, strict=True)):
        target, previous = bk - previous, bk
        hi = min(ck, _Z_CAP)
        if k == t.size - 1:
            bounds[k] = hi
        elif target <= 1e-15:
            bounds[k] = -_Z_CAP
        else:

            def f(b: float, tk: float = tk, target: float = target) -> float:
                return rec.lower_prob(tk, b) - target

            bounds[k] = hi if f(hi) < 0 else optimize.brentq(f, -_Z_CAP, hi, xtol=1e-10)
        rec.advance(tk, bounds[k], hi)
    return bounds
