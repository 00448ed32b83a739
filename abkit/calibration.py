"""Monte Carlo calibration of the sequential methods (vectorised over replications).

A replication is one experiment observed at K equally spaced looks with ``per_look``
new units per arm at each look.  Batch sums are drawn exactly: Bernoulli batches as
binomial counts; normal batches as Σx ~ N(mμ, mσ²) and Σ(x − x̄)² ~ σ²χ²_{m−1}
(independent), so Σx² = Σ(x − x̄)² + (Σx)²/m.  The tests in
``tests/test_sequential_calibration.py`` and ``benchmarks/sequential_simulation.py``
both run on this, so the numbers in the docs are the ones the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from abkit.stats.always_valid import asymptotic_cs, msprt
from abkit.stats.group_sequential import efficacy_bounds

METHODS = ("naive", "msprt", "cs", "gst_obf", "gst_pocock")


@dataclass(frozen=True)
class LookPaths:
    """Per replication (rows) and look (columns): estimate, its variance, units, control mean."""

    estimate: np.ndarray
    variance: np.ndarray
    n: np.ndarray
    control_mean: np.ndarray
    effect: float


def _arm(
    rng: np.random.Generator, reps: int, looks: int, m: int, outcome: str, mean: float, sd: float
) -> tuple[np.ndarray, np.ndarray]:
    if outcome == "bernoulli":
        s = rng.binomial(m, mean, size=(reps, looks)).astype(float)
        return s, s
    if outcome == "normal":
        s = rng.normal(m * mean, sd * np.sqrt(m), size=(reps, looks))
        ss = sd**2 * rng.chisquare(m - 1, size=(reps, looks)) + s**2 / m
        return s, ss
    raise ValueError(f"unknown outcome '{outcome}'")


def simulate_looks(
    reps: int,
    looks: int = 30,
    per_look: int = 200,
    outcome: str = "normal",
    mean: float = 1.0,
    sd: float = 1.0,
    effect: float = 0.0,
    seed: int = 0,
) -> LookPaths:
    """Cumulative two-arm statistics at each look; the treatment mean is mean + effect."""
    rng = np.random.default_rng(seed)
    sc, ssc = _arm(rng, reps, looks, per_look, outcome, mean, sd)
    st_, sst = _arm(rng, reps, looks, per_look, outcome, mean + effect, sd)
    n_arm = per_look * np.arange(1, looks + 1, dtype=float)
    sc, ssc, st_, sst = (np.cumsum(a, axis=1) for a in (sc, ssc, st_, sst))
    mc, mt = sc / n_arm, st_ / n_arm
    vc = (ssc - n_arm * mc**2) / (n_arm - 1)
    vt = (sst - n_arm * mt**2) / (n_arm - 1)
    if outcome == "bernoulli":  # the z-test's binomial variance, as abkit uses
        vc, vt = mc * (1 - mc) * n_arm / (n_arm - 1), mt * (1 - mt) * n_arm / (n_arm - 1)
    variance = vc / n_arm + vt / n_arm
    return LookPaths(mt - mc, variance, np.broadcast_to(2 * n_arm, mc.shape), mc, effect)


@dataclass(frozen=True)
class MethodOutcome:
    rejected: np.ndarray  # ever rejected H0: no effect
    first_look: np.ndarray  # 1-based look of the first rejection (0: never)
    covered: np.ndarray  # the interval held the true effect at every look


def evaluate(
    paths: LookPaths, method: str, alpha: float = 0.05, relative_tau: float = 0.05
) -> MethodOutcome:
    """Apply one method to every replication."""
    est, var = paths.estimate, paths.variance
    se = np.sqrt(var)
    looks = est.shape[1]
    if method == "naive":
        half = st.norm.ppf(1 - alpha / 2) * se
        reject = np.abs(est) >= half
    elif method == "msprt":
        tau = relative_tau * np.abs(paths.control_mean[:, :1])  # first look, per replication
        path = msprt(est, var, alpha, tau)
        half, reject = path.ci_high - est, path.p_value < alpha
    elif method == "cs":
        path = asymptotic_cs(est, var, paths.n, alpha, target_n=float(paths.n[0, -1]))
        half, reject = path.ci_high - est, path.p_value < alpha
    elif method.startswith("gst_"):
        kind = "obrien_fleming" if method == "gst_obf" else "pocock"
        c = efficacy_bounds(np.arange(1, looks + 1) / looks, alpha, kind)
        half = c * se
        reject = np.abs(est) >= half
    else:
        raise ValueError(f"unknown method '{method}'")
    rejected = reject.any(axis=1)
    first = np.where(rejected, reject.argmax(axis=1) + 1, 0)
    covered = (np.abs(est - paths.effect) <= half).all(axis=1)
    return MethodOutcome(rejected, first, covered)
