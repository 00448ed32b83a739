"""Always-valid inference from a normal-mixture martingale: mSPRT and asymptotic CSs.

Both methods watch an estimate θ̂_k with (estimated) variance V_k at looks
k = 1, 2, … and mix the Gaussian likelihood ratio over θ ~ N(θ0, τ²):

    Λ_k(θ0) = √(V_k / (V_k + τ²)) · exp(τ² (θ̂_k − θ0)² / (2 V_k (V_k + τ²))).

By Ville's inequality P(∃k: Λ_k(θ_true) ≥ 1/α) ≤ α (Robbins 1970), so

* the confidence sequence is θ̂_k ± h_k, h_k² = 2 V_k (V_k + τ²)/τ² · log(√((V_k + τ²)/V_k)/α),
* the look's p-value is p_k = min(1, 1/Λ_k(0)),

both two-sided at level α, and they agree at every look: 0 lies outside the interval
exactly when p_k < α.  Neither is carried over looks (no running minimum, no running
intersection): in a product experiment each unit's outcome keeps accumulating (outputs
per user grow with time), so the estimand moves from look to look, and an intersection
of intervals for different parameters would be invalid.  A decision is taken at the
first look with p_k < α and stays taken (:mod:`abkit.analysis.sequential`); P(∃k: p_k < α) ≤ α
under no effect at any look is the time-uniform guarantee, and p_k is an anytime-valid
p-value in the sense that P(p_τ ≤ α) ≤ α at any stopping time τ.

* **mSPRT** (Johari, Koomen, Pekelis & Walsh, "Always Valid Inference", Operations
  Research 2022): τ is fixed on the effect's own scale (metric units).
* **Asymptotic confidence sequence** (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas,
  "Time-uniform central limit theory and asymptotic confidence sequences", Annals of
  Statistics 2024, Thm 2.2): τ² = ρ² σ̂²_k where σ̂²_k = n_k V_k is the per-unit
  variance of the effect's influence function and n_k the number of units, i.e. the
  boundary is σ̂_k √(2(n ρ² + 1)/(n² ρ²) · log(√(n ρ² + 1)/α)).  We use this plug-in of
  the two-sample variance (V = s²_C/n_C + s²_T/n_T, so n·V is the variance of the
  paper's inverse-probability-weighted pseudo-outcome for the realised split) rather
  than the IPW pseudo-outcomes themselves; its coverage is checked by simulation in
  ``tests/test_sequential_calibration.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import lambertw

from abkit.stats.distributions import norm_ppf


@dataclass(frozen=True)
class AlwaysValidPath:
    """Per-look always-valid interval and p-value (NaN where a look has no variance).

    Arrays have looks on the last axis; leading axes (e.g. simulation replications)
    are carried through.  ``estimate``, ``variance`` and the mixing variance ``tau2``
    are kept so that :meth:`p_value_at` can test any other θ0 with the same boundary.

    Parameters
    ----------
    method : str
        "mSPRT (normal mixture)" or the asymptotic confidence sequence.
    estimate : numpy.ndarray
        θ̂_k per look.
    variance : numpy.ndarray
        V_k per look.
    tau2 : numpy.ndarray or float
        The mixing variance τ² (per look for the asymptotic CS, τ² = ρ² n_k V_k).
    ci_low, ci_high : numpy.ndarray
        θ̂_k ∓ h_k, the always-valid interval.
    tuning : dict of str to float
        What the boundary was tuned with (``tau``; or ``rho2`` and ``target_n``).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.always_valid import msprt
    >>> estimate = np.array([0.30, 0.22, 0.25, 0.24])  # the effect at four daily looks
    >>> variance = np.array([0.04, 0.02, 0.01, 0.005])
    >>> path = msprt(estimate, variance, alpha=0.05, tau=0.2)
    >>> np.round(path.ci_low, 4).tolist()
    [-0.4313, -0.2412, -0.0582, 0.0254]
    >>> np.round(path.p_value, 4).tolist()
    [0.8058, 0.7731, 0.1835, 0.0179]
    """

    method: str
    estimate: np.ndarray
    variance: np.ndarray
    tau2: np.ndarray | float
    ci_low: np.ndarray
    ci_high: np.ndarray
    tuning: dict[str, float]

    def p_value_at(self, theta0: np.ndarray | float = 0.0) -> np.ndarray:
        """Each look's p-value for H0: effect = θ0, min(1, 1/Λ_k(θ0)); θ0 lies outside
        the look's interval exactly when it is below α.

        Parameters
        ----------
        theta0 : numpy.ndarray or float, default 0.0
            The hypothesised effect.

        Returns
        -------
        numpy.ndarray
            One p-value per look; NaN where the look has no variance.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.always_valid import msprt
        >>> estimate = np.array([0.30, 0.22, 0.25, 0.24])  # the effect at four daily looks
        >>> variance = np.array([0.04, 0.02, 0.01, 0.005])
        >>> path = msprt(estimate, variance, alpha=0.05, tau=0.2)
        >>> np.round(path.p_value_at(0.1), 4).tolist()
        [1.0, 1.0, 0.9091, 0.5254]
        """
        ok = np.isfinite(self.estimate) & (self.variance > 0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_lr = mixture_log_lr(
                np.where(ok, self.estimate, 0.0),
                np.where(ok, self.variance, 1.0),
                self.tau2,
                theta0,
            )
            return np.where(ok, np.minimum(1.0, np.exp(-log_lr)), np.nan)

    @property
    def p_value(self) -> np.ndarray:
        """Each look's p-value for no effect: :meth:`p_value_at` (0)."""
        return self.p_value_at(0.0)


def mixture_half_width(variance: np.ndarray, tau2: np.ndarray | float, alpha: float) -> np.ndarray:
    """h = √(2 V (V + τ²)/τ² · log(√((V + τ²)/V)/α)): where Λ(θ0) = 1/α.

    Parameters
    ----------
    variance : numpy.ndarray
        V, the estimate's variance at each look.
    tau2 : numpy.ndarray or float
        τ², the mixing variance.
    alpha : float
        The level.

    Returns
    -------
    numpy.ndarray
        h, the half-width of the always-valid interval θ̂ ± h.

    References
    ----------
    .. [1] H. Robbins, "Statistical methods related to the law of the iterated
       logarithm", Annals of Mathematical Statistics 41, 1397–1409, 1970.
    .. [2] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always Valid Inference:
       Continuous Monitoring of A/B Tests", Operations Research 70, 1806–1821, 2022.

    Examples
    --------
    At θ̂ − θ0 = h the mixture likelihood ratio is exactly 1/α:

    >>> import math
    >>> import numpy as np
    >>> from abkit.stats.always_valid import mixture_half_width, mixture_log_lr
    >>> h = float(mixture_half_width(np.array(0.01), 0.04, alpha=0.05))
    >>> round(h, 4)
    0.3082
    >>> round(float(mixture_log_lr(h, 0.01, 0.04)), 4), round(math.log(1 / 0.05), 4)
    (2.9957, 2.9957)
    """
    v = np.asarray(variance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        half: np.ndarray = np.sqrt(
            2.0 * v * (v + tau2) / tau2 * np.log(np.sqrt((v + tau2) / v) / alpha)
        )
        return half


def mixture_log_lr(
    estimate: np.ndarray,
    variance: np.ndarray,
    tau2: np.ndarray | float,
    theta0: np.ndarray | float = 0.0,
) -> np.ndarray:
    """log Λ(θ0) of the normal mixture (see the module docstring).

    log Λ(θ0) = ½ log(V/(V + τ²)) + τ² (θ̂ − θ0)² / (2 V (V + τ²)).

    Parameters
    ----------
    estimate : numpy.ndarray
        θ̂ at each look.
    variance : numpy.ndarray
        V at each look.
    tau2 : numpy.ndarray or float
        τ², the mixing variance.
    theta0 : numpy.ndarray or float, default 0.0
        The hypothesised effect.

    Returns
    -------
    numpy.ndarray
        log Λ(θ0); the look's p-value is min(1, exp(−log Λ)).

    References
    ----------
    .. [1] H. Robbins, "Statistical methods related to the law of the iterated
       logarithm", Annals of Mathematical Statistics 41, 1397–1409, 1970.
    .. [2] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always Valid Inference:
       Continuous Monitoring of A/B Tests", Operations Research 70, 1806–1821, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.always_valid import mixture_log_lr
    >>> round(float(np.exp(-mixture_log_lr(0.25, 0.01, 0.04))), 4)
    0.1835
    """
    v = np.asarray(variance, dtype=float)
    d = np.asarray(estimate, dtype=float) - theta0
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2.0 * v * (v + tau2))


def _path(
    method: str,
    estimate: np.ndarray,
    variance: np.ndarray,
    tau2: np.ndarray | float,
    alpha: float,
    tuning: dict[str, float],
) -> AlwaysValidPath:
    estimate = np.asarray(estimate, dtype=float)
    variance = np.asarray(variance, dtype=float)
    ok = np.isfinite(estimate) & (variance > 0)
    half = np.where(ok, mixture_half_width(np.where(ok, variance, 1.0), tau2, alpha), np.nan)
    return AlwaysValidPath(
        method, estimate, variance, tau2, estimate - half, estimate + half, tuning
    )


def msprt(
    estimate: np.ndarray, variance: np.ndarray, alpha: float, tau: float | np.ndarray
) -> AlwaysValidPath:
    """mSPRT with mixing N(0, τ²) on the effect scale (Johari et al. 2022, eq. 11).

    τ is the effect size the test is tuned to find quickly: the boundary is
    tightest when the estimate's standard error is near τ.  An array τ broadcasts
    against the leading (replication) axes.

    Parameters
    ----------
    estimate : numpy.ndarray
        θ̂_k, looks on the last axis.
    variance : numpy.ndarray
        V_k, the same shape.
    alpha : float
        The level: P(∃k: the interval misses θ) ≤ α.
    tau : float or numpy.ndarray
        τ > 0, the mixing standard deviation on the effect's scale.

    Returns
    -------
    AlwaysValidPath
        Per look θ̂_k ± h_k and p_k = min(1, 1/Λ_k(0)).

    Raises
    ------
    ValueError
        When τ is not positive and finite.

    References
    ----------
    .. [1] H. Robbins, "Statistical methods related to the law of the iterated
       logarithm", Annals of Mathematical Statistics 41, 1397–1409, 1970.
    .. [2] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always Valid Inference:
       Continuous Monitoring of A/B Tests", Operations Research 70, 1806–1821, 2022.

    Examples
    --------
    The always-valid interval is wider than the fixed-horizon one at every look:

    >>> import numpy as np
    >>> from abkit.stats.always_valid import msprt
    >>> estimate = np.array([0.30, 0.22, 0.25, 0.24])  # the effect at four daily looks
    >>> variance = np.array([0.04, 0.02, 0.01, 0.005])
    >>> path = msprt(estimate, variance, alpha=0.05, tau=0.2)
    >>> np.round(path.ci_low, 4).tolist()
    [-0.4313, -0.2412, -0.0582, 0.0254]
    >>> np.round(estimate - 1.959964 * np.sqrt(variance), 4).tolist()
    [-0.092, -0.0572, 0.054, 0.1014]
    """
    tau_arr = np.asarray(tau, dtype=float)
    if not (np.all(tau_arr > 0) and np.all(np.isfinite(tau_arr))):
        raise ValueError("the mSPRT mixing standard deviation tau must be positive")
    tuning = {"tau": float(tau_arr)} if tau_arr.ndim == 0 else {}
    return _path("mSPRT (normal mixture)", estimate, variance, tau_arr**2, alpha, tuning)


def planned_tau(
    variance: np.ndarray | float,
    n: np.ndarray | float,
    target_n: float,
    alpha: float,
    power: float = 0.8,
) -> np.ndarray | float:
    """mSPRT mixing sd tuned to the planned sample: the effect a two-sided fixed-horizon
    test at level α detects with the given power at ``target_n`` units,
    τ = (z_{1−α/2} + z_power)·√(V·n/target_n), from an estimate's variance V at n units
    (V·n/target_n is its variance at the planned sample).  Johari et al. (2022, §4.2)
    recommend a mixing distribution matched to the effects the experiment is sized for.

    Parameters
    ----------
    variance : numpy.ndarray or float
        V, the estimate's variance now.
    n : numpy.ndarray or float
        The units V was computed with.
    target_n : float
        The planned units.
    alpha : float
        The two-sided level.
    power : float, default 0.8
        The power at the planned sample.

    Returns
    -------
    numpy.ndarray or float
        τ.

    References
    ----------
    .. [1] R. Johari, P. Koomen, L. Pekelis and D. Walsh, "Always Valid Inference:
       Continuous Monitoring of A/B Tests", Operations Research 70, 1806–1821, 2022,
       §4.2.

    Examples
    --------
    >>> import math
    >>> from scipy import stats
    >>> from abkit.stats.always_valid import planned_tau
    >>> round(float(planned_tau(0.02, n=500, target_n=2000, alpha=0.05)), 4)
    0.1981
    >>> z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    >>> round(float(z * math.sqrt(0.02 * 500 / 2000)), 4)
    0.1981
    """
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    tau: np.ndarray | float = z * np.sqrt(
        np.asarray(variance, dtype=float) * np.asarray(n, dtype=float) / target_n
    )
    return tau


def optimal_rho2(target_n: float, alpha: float) -> float:
    """ρ² minimising the asymptotic CS width at ``target_n`` units.

    With u = n ρ² + 1 the width is ∝ u/(u − 1)·(½ log u − log α); its minimum solves
    u − log u = 1 − 2 log α, so u = −W₋₁(−exp(−(1 − 2 log α))) (Lambert W, lower
    branch; cf. Waudby-Smith et al. 2024, §B).

    Parameters
    ----------
    target_n : float
        The units at which the sequence should be tightest.
    alpha : float
        The level.

    Returns
    -------
    float
        ρ² = (u − 1)/target_n.

    References
    ----------
    .. [1] I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas,
       "Time-uniform central limit theory and asymptotic confidence sequences",
       Annals of Statistics 52, 2613–2640, 2024.

    Examples
    --------
    >>> import math
    >>> from abkit.stats.always_valid import optimal_rho2
    >>> rho2 = optimal_rho2(1000, alpha=0.05)
    >>> round(rho2, 6)
    0.008212
    >>> u = 1000 * rho2 + 1
    >>> round(u - math.log(u), 6), round(1 - 2 * math.log(0.05), 6)
    (6.991465, 6.991465)
    """
    k = 1.0 - 2.0 * math.log(alpha)
    u = float(-lambertw(-math.exp(-k), -1).real)
    return (u - 1.0) / target_n


def asymptotic_cs(
    estimate: np.ndarray, variance: np.ndarray, n: np.ndarray, alpha: float, target_n: float
) -> AlwaysValidPath:
    """Asymptotic CS of Waudby-Smith et al. (2024) tuned to be tightest at ``target_n``.

    The normal mixture with τ²_k = ρ² σ̂²_k, σ̂²_k = n_k V_k, ρ² from
    :func:`optimal_rho2`: the half-width is
    σ̂_k √(2(n ρ² + 1)/(n² ρ²) · log(√(n ρ² + 1)/α)).

    Parameters
    ----------
    estimate : numpy.ndarray
        θ̂_k, looks on the last axis.
    variance : numpy.ndarray
        V_k.
    n : numpy.ndarray
        n_k, the units at each look (both arms).
    alpha : float
        The level.
    target_n : float
        The units at which the sequence is tightest.

    Returns
    -------
    AlwaysValidPath
        ``tuning`` holds ``rho2`` and ``target_n``.

    Raises
    ------
    ValueError
        When ``target_n`` is not positive.

    References
    ----------
    .. [1] I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas,
       "Time-uniform central limit theory and asymptotic confidence sequences",
       Annals of Statistics 52, 2613–2640, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.always_valid import asymptotic_cs
    >>> path = asymptotic_cs(
    ...     np.array([0.30, 0.22, 0.25, 0.24]),
    ...     np.array([0.04, 0.02, 0.01, 0.005]),
    ...     n=np.array([250, 500, 1000, 2000]),
    ...     alpha=0.05,
    ...     target_n=1000,
    ... )
    >>> np.round(path.ci_low, 4).tolist(), np.round(path.p_value, 4).tolist()
    ([-0.3502, -0.2154, -0.0535, 0.0233], [0.82, 0.854, 0.1872, 0.0183])
    """
    if not target_n > 0:
        raise ValueError("target_n must be positive")
    rho2 = optimal_rho2(target_n, alpha)
    n = np.asarray(n, dtype=float)
    tau2 = rho2 * n * np.asarray(variance, dtype=float)  # ρ² σ̂², σ̂² = n V
    tau2 = np.where(tau2 > 0, tau2, np.nan)
    return _path(
        "asymptotic confidence sequence (Waudby-Smith et al. 2024)",
        estimate,
        variance,
        tau2,
        alpha,
        {"rho2": rho2, "target_n": float(target_n)},
    )
