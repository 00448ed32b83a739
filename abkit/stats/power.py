"""Sample size and power for two-arm comparisons, fixed-horizon or sequential.

The effect δ is compared with the standard deviation σ of one randomisation unit's
contribution (a user's value in B2C; in B2B an account's linearised contribution
(X_g − R·Y_g)/Ȳ to the ratio of sums, or its value r_g when accounts are weighted
equally).  With k units per arm the two-sample t-test has noncentrality
δ/(σ√(2/k)) on 2k − 2 degrees of freedom; ``units_needed`` is the smallest k whose
power reaches the target.  Computed with statsmodels' exact noncentral-t power
(``TTestIndPower``), which matters at the 5-60 accounts of B2B experiments.

Sequential designs look at ``looks`` equally spaced fractions t_k of the planned
sample.  Each method rejects at look k when |Z_k| ≥ c_k, with c_k from the same
formulas abkit monitors with: the group-sequential efficacy boundaries, or the
always-valid half-width h_k over the estimate's standard error (mSPRT tuned to the
planned sample, the asymptotic CS tightest there).  Under an effect δ the Z_k are a
Brownian motion with drift θ = δ/(σ√(2/n)) observed at the t_k, so the power is the
probability of crossing any boundary, computed by the same numerical recursion as the
boundaries (:func:`~abkit.stats.group_sequential.crossing_probability`) with a normal
reference; the sample is the smallest n per arm that reaches the target power, and
n / n_fixed is the price of looking.
"""

from __future__ import annotations

import math

import numpy as np
from statsmodels.stats.power import TTestIndPower

from abkit.options import SequentialMethod, Spending
from abkit.stats.always_valid import mixture_half_width, optimal_rho2, planned_tau
from abkit.stats.group_sequential import crossing_probability, efficacy_bounds


def power_at(units_per_arm: float, effect: float, sd: float, alpha: float = 0.05) -> float:
    """Two-sided power of the two-sample t-test with ``units_per_arm`` in each arm.

    P(|T| > t_{1−α/2, 2k−2}) with T noncentral t on 2k − 2 degrees of freedom and
    noncentrality δ/(σ√(2/k)), k = ``units_per_arm`` (statsmodels'
    ``TTestIndPower``).

    Parameters
    ----------
    units_per_arm : float
        k, units in each arm.
    effect : float
        δ, the true difference (its sign is ignored).
    sd : float
        σ, the standard deviation of one unit's contribution.
    alpha : float, default 0.05
        The two-sided level.

    Returns
    -------
    float
        The power; NaN when k < 2 or σ ≤ 0.

    References
    ----------
    .. [1] J. Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.,
       Lawrence Erlbaum, 1988, ch. 2.

    Examples
    --------
    >>> from statsmodels.stats.power import TTestIndPower
    >>> from abkit.stats.power import power_at
    >>> round(power_at(100, effect=0.3, sd=1.0), 4)
    0.5601
    >>> round(float(TTestIndPower().power(0.3, nobs1=100, alpha=0.05)), 4)
    0.5601
    """
    if units_per_arm < 2 or sd <= 0:
        return math.nan
    return float(
        TTestIndPower().power(
            effect_size=abs(effect) / sd,
            nobs1=units_per_arm,
            alpha=alpha,
            ratio=1.0,
            alternative="two-sided",
        )
    )


def units_needed(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Smallest whole number of units per arm that reaches ``power``.

    Parameters
    ----------
    effect : float
        δ ≠ 0, the difference to detect.
    sd : float
        σ > 0, the standard deviation of one unit's contribution.
    alpha : float, default 0.05
        The two-sided level.
    power : float, default 0.8
        The target power.

    Returns
    -------
    int
        The smallest k ≥ 2 with :func:`power_at` (k) ≥ ``power``.

    Raises
    ------
    ValueError
        When the effect is 0 or σ is not positive.

    References
    ----------
    .. [1] J. Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.,
       Lawrence Erlbaum, 1988, ch. 2.

    Examples
    --------
    >>> from abkit.stats.power import power_at, units_needed
    >>> units_needed(0.3, sd=1.0)
    176
    >>> round(power_at(175, 0.3, 1.0), 4), round(power_at(176, 0.3, 1.0), 4)
    (0.7991, 0.8014)
    """
    if effect == 0 or sd <= 0:
        raise ValueError("the effect must be non-zero and the standard deviation positive")
    k = TTestIndPower().solve_power(
        effect_size=abs(effect) / sd, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    k = max(2, math.ceil(float(np.squeeze(k)) - 1e-9))
    while power_at(k, effect, sd, alpha) < power:  # guard against solver tolerance
        k += 1
    return k


def detectable_effect(
    units_per_arm: int, sd: float, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest |δ| detected with ``power`` at ``units_per_arm`` per arm.

    Parameters
    ----------
    units_per_arm : int
        k, units in each arm.
    sd : float
        σ, the standard deviation of one unit's contribution.
    alpha : float, default 0.05
        The two-sided level.
    power : float, default 0.8
        The target power.

    Returns
    -------
    float
        The minimum detectable effect, in the metric's units (σ times the
        standardised effect size).

    References
    ----------
    .. [1] J. Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.,
       Lawrence Erlbaum, 1988, ch. 2.

    Examples
    --------
    >>> from abkit.stats.power import detectable_effect
    >>> round(detectable_effect(176, sd=1.0), 4)
    0.2995
    """
    es = TTestIndPower().solve_power(
        nobs1=units_per_arm, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    return float(np.squeeze(es)) * sd


def sequential_bounds(
    method: SequentialMethod,
    looks: int,
    units_per_arm: float,
    sd: float,
    alpha: float,
    spending: Spending = "obrien_fleming",
) -> np.ndarray:
    """z-scale boundaries c_k at ``looks`` equally spaced looks up to ``units_per_arm``.

    "gst": the efficacy boundaries of the spending function; "msprt" and "cs": the
    always-valid half-width h_k over the estimate's standard error √(2σ²/n_k) at
    n_k = units_per_arm·k/looks.

    Parameters
    ----------
    method : {"gst", "msprt", "cs"}
        The group-sequential test, the mSPRT tuned to the planned sample, or the
        asymptotic confidence sequence tightest there.
    looks : int
        Equally spaced looks, the last at ``units_per_arm``.
    units_per_arm : float
        The planned units per arm.
    sd : float
        σ of one unit's contribution.
    alpha : float
        The two-sided level.
    spending : {"obrien_fleming", "pocock"}, default "obrien_fleming"
        The spending function of "gst".

    Returns
    -------
    numpy.ndarray
        c_k per look.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.power import sequential_bounds
    >>> np.round(sequential_bounds("gst", 5, 200, 1.0, 0.05), 3).tolist()
    [4.877, 3.357, 2.68, 2.29, 2.031]
    >>> np.round(sequential_bounds("msprt", 5, 200, 1.0, 0.05), 3).tolist()
    [3.369, 3.126, 3.062, 3.041, 3.035]
    """
    t = np.arange(1, looks + 1) / looks
    if method == "gst":
        return efficacy_bounds(t, alpha, spending)
    n_k = units_per_arm * t
    variance = 2.0 * sd * sd / n_k  # of the effect estimate at each look
    if method == "msprt":  # tuned to the planned sample, as abkit monitors
        tau = planned_tau(variance[-1], units_per_arm, units_per_arm, alpha)
        tau2: np.ndarray | float = float(np.asarray(tau)) ** 2
    else:  # the asymptotic CS tightest at the planned sample (n counts both arms)
        tau2 = optimal_rho2(2.0 * units_per_arm, alpha) * 2.0 * n_k * variance
    return mixture_half_width(variance, tau2, alpha) / np.sqrt(variance)


def sequential_power(
    method: SequentialMethod,
    units_per_arm: float,
    effect: float,
    sd: float,
    alpha: float = 0.05,
    looks: int = 30,
    spending: Spending = "obrien_fleming",
) -> float:
    """Probability that the sequential test rejects at some look (module docstring).

    The Z_k are a Brownian motion with drift θ = |δ|/(σ√(2/n)) observed at the
    fractions t_k = k/looks, and the power is P(|Z_k| ≥ c_k at some k)
    (:func:`~abkit.stats.group_sequential.crossing_probability`).

    Parameters
    ----------
    method : {"gst", "msprt", "cs"}
        The group-sequential test, the mSPRT tuned to the planned sample, or the
        asymptotic confidence sequence tightest there.
    units_per_arm : float
        n, the planned units per arm.
    effect : float
        δ, the true difference.
    sd : float
        σ of one unit's contribution.
    alpha : float, default 0.05
        The two-sided level.
    looks : int, default 30
        Equally spaced looks.
    spending : {"obrien_fleming", "pocock"}, default "obrien_fleming"
        The spending function of "gst".

    Returns
    -------
    float
        The power.

    References
    ----------
    .. [1] C. Jennison and B. W. Turnbull, *Group Sequential Methods with
       Applications to Clinical Trials*, Chapman & Hall/CRC, 2000, ch. 19.

    Examples
    --------
    Five looks at 200 units per arm, δ = 0.3σ, against a single look:

    >>> from abkit.stats.power import power_at, sequential_power
    >>> round(power_at(200, 0.3, 1.0), 4)
    0.8491
    >>> round(sequential_power("gst", 200, 0.3, 1.0, looks=5), 4)
    0.8424
    >>> round(sequential_power("msprt", 200, 0.3, 1.0, looks=5), 4)
    0.5293
    """
    t = np.arange(1, looks + 1) / looks
    drift = abs(effect) / (sd * math.sqrt(2.0 / units_per_arm))
    bounds = sequential_bounds(method, looks, units_per_arm, sd, alpha, spending)
    return crossing_probability(t, bounds, drift)


def sequential_units_needed(
    method: SequentialMethod,
    effect: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    looks: int = 30,
    spending: Spending = "obrien_fleming",
) -> int:
    """Smallest whole number of units per arm whose sequential power reaches ``power``.

    Found by doubling from half the fixed-horizon sample, then bisection on
    :func:`sequential_power`; n / n_fixed is the price of looking.

    Parameters
    ----------
    method : {"gst", "msprt", "cs"}
        The group-sequential test, the mSPRT tuned to the planned sample, or the
        asymptotic confidence sequence tightest there.
    effect : float
        δ ≠ 0, the difference to detect.
    sd : float
        σ > 0 of one unit's contribution.
    alpha : float, default 0.05
        The two-sided level.
    power : float, default 0.8
        The target power.
    looks : int, default 30
        Equally spaced looks.
    spending : {"obrien_fleming", "pocock"}, default "obrien_fleming"
        The spending function of "gst".

    Returns
    -------
    int
        Units per arm.

    Raises
    ------
    ValueError
        When the effect is 0 or σ is not positive.

    References
    ----------
    .. [1] C. Jennison and B. W. Turnbull, *Group Sequential Methods with
       Applications to Clinical Trials*, Chapman & Hall/CRC, 2000, ch. 19.

    Examples
    --------
    The fixed-horizon test needs 176 units per arm for δ = 0.3σ; five
    O'Brien–Fleming looks cost a few more, the always-valid mSPRT many more:

    >>> from abkit.stats.power import sequential_units_needed
    >>> sequential_units_needed("gst", 0.3, 1.0, looks=5)
    179
    >>> sequential_units_needed("msprt", 0.3, 1.0, looks=5)
    319
    """
    if effect == 0 or sd <= 0:
        raise ValueError("the effect must be non-zero and the standard deviation positive")

    def enough(n: int) -> bool:
        return sequential_power(method, n, effect, sd, alpha, looks, spending) >= power

    low = max(2, units_needed(effect, sd, alpha, power) // 2)
    high = 2 * low
    while not enough(high):
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high
