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
from scipy import optimize
from scipy import stats as st
from scipy.special import ndtr

from abkit.options import Spending, choices

SPENDING = choices(Spending)
_POINTS_PER_SD = 12  # grid spacing ≤ (increment's sd)/12 (cf. J&T §19.2: ~ r = 18 per sd)
_MIN_POINTS = 101
_Z_CAP = 8.5  # |Z| beyond which the sub-density is < 1e-16: the grid stops there
_P_FLOOR = 1e-8  # repeated p-values below this are reported as this


def spent(t: np.ndarray | float, alpha: float, kind: str) -> np.ndarray:
    """Cumulative two-sided alpha spent at information fraction(s) t."""
    t = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if kind == "obrien_fleming":
        z = st.norm.ppf(1.0 - alpha / 4.0)
        with np.errstate(divide="ignore"):
            return np.where(t > 0, 2.0 * (2.0 - 2.0 * ndtr(z / np.sqrt(t))), 0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1.0) * t)
    raise ValueError(f"unknown spending function '{kind}'; use one of {', '.join(SPENDING)}")


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


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
    """Two-sided efficacy boundaries c_k (on the z scale) for looks at fractions t."""
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
    as the boundaries themselves; Jennison & Turnbull 2000, ch. 19)."""
    rec = _Recursion(drift)
    total = 0.0
    for tk, ck in zip(np.asarray(t, dtype=float), np.asarray(bounds, dtype=float), strict=True):
        c = min(float(ck), _Z_CAP)
        total += rec.cross_prob(float(tk), c)
        rec.advance(float(tk), -c, c)
    return total


def pocock_constant(k: int, alpha: float) -> float:
    """Pocock's constant boundary for k equally spaced looks, two-sided level alpha."""
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
    look with α'_k ≤ α is the decision, kept by :mod:`abkit.sequential`.  Cost grows
    with the square of the number of looks: meant for a few planned looks.
    """
    z, t = np.abs(np.asarray(z, dtype=float)), np.asarray(t, dtype=float)
    crossing = np.full(z.size, np.nan)
    for j in range(z.size):
        if not np.isfinite(z[j]):
            continue

        def gap(log_a: float, j: int = j) -> float:
            return z[j] - efficacy_bounds(t[: j + 1], math.exp(log_a), kind)[j]

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
    """
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
            f = lambda b, tk=tk, target=target: rec.lower_prob(tk, b) - target  # noqa: E731
            bounds[k] = hi if f(hi) < 0 else optimize.brentq(f, -_Z_CAP, hi, xtol=1e-10)
        rec.advance(tk, bounds[k], hi)
    return bounds
