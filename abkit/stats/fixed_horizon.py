"""Fixed-horizon two-sample tests on arm summaries.

Each test returns a :class:`Comparison` holding the absolute effect (treatment −
control) with its confidence interval and p-value, and the relative effect (lift)
with a delta-method interval.  The ``method`` string names the test so that no
p-value is ever shown without what made it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from abkit.stats.arm import ArmSummary
from abkit.stats.distributions import Reference, norm_ppf

WELCH = "Welch t-test"
TWO_PROPORTION_Z = "two-proportion z-test (pooled SE for p, unpooled Wald CI)"
DELTA_RATIO = "delta-method z-test (ratio of sums)"


@dataclass(frozen=True)
class EffectSummary:
    """What a record built from a :class:`Comparison` keeps of it (a segment's effect,
    a point of a quantile profile): both values, the effect, the lift and their
    intervals, and the p-value.

    Parameters
    ----------
    control_value, treatment_value : float
        The metric in each arm (C and T).
    effect : float
        T − C.
    ci : tuple of float
        The effect's two-sided confidence interval (low, high).
    relative_effect : float
        The lift T/C − 1.
    relative_ci : tuple of float
        The lift's interval, built on the log scale (:func:`relative_effect`).
    p_value : float
        The two-sided p-value of the test of no effect.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.fixed_horizon import EffectSummary, welch_test
    >>> control = ArmSummary.from_values(np.array([2.1, 3.4, 1.9, 4.0, 2.8, 3.1]))
    >>> treatment = ArmSummary.from_values(np.array([3.0, 4.2, 2.5, 4.8, 3.9, 3.6, 4.4]))
    >>> summary = EffectSummary(**welch_test(control, treatment).effect_fields())
    >>> round(summary.effect, 4), round(summary.p_value, 4)
    (0.8881, 0.0717)
    >>> ci = summary.to_dict()["ci"]
    >>> type(ci).__name__, round(ci[0], 4), round(ci[1], 4)
    ('list', -0.0933, 1.8695)
    """

    control_value: float
    treatment_value: float
    effect: float
    ci: tuple[float, float]
    relative_effect: float
    relative_ci: tuple[float, float]
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """The record's fields, intervals as lists (JSON).

        Returns
        -------
        dict
            Field name → value, with ``ci`` and ``relative_ci`` as two-element lists.
        """
        return {**self.__dict__, "ci": list(self.ci), "relative_ci": list(self.relative_ci)}


EFFECT_FIELDS = tuple(f.name for f in fields(EffectSummary))
INTERVAL_FIELDS = ("ci", "relative_ci")


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control on one metric.

    ``se`` is the standard error of ``effect``; ``df`` is the t degrees of freedom
    (``math.inf`` for a normal reference).  ``relative_effect`` is
    treatment/control − 1; ``log_ratio_se`` is the standard error of
    log(treatment/control), on which ``relative_ci`` is built.  ``undefined`` says why
    the test has no p-value or interval (an arm too small, no variation), apart from
    the ``warnings`` that qualify a computed result; a decision that rests on the test
    gives it as the reason it is not computable.

    Parameters
    ----------
    method : str
        The test that made the p-value (e.g. ``"Welch t-test"``).
    control_value, treatment_value : float
        The metric in each arm, C and T.
    effect : float
        Δ = T − C.
    se : float
        Standard error of Δ.
    df : float
        Degrees of freedom of the t reference; ``math.inf`` for the normal.
    statistic : float
        The test statistic, Δ / se (the pooled two-proportion test divides by its
        pooled SE instead).
    p_value : float
        Two-sided p-value of H0: Δ = 0.
    ci : tuple of float
        Two-sided (1 − α) interval for Δ, Δ ± q·se with q the reference's 1 − α/2
        quantile.
    relative_effect : float
        The lift T/C − 1.
    log_ratio_se : float
        Standard error of log(T/C).
    relative_ci : tuple of float
        exp(log(T/C) ± z·log_ratio_se) − 1.
    warnings : tuple of str
        What qualifies a computed result.
    undefined : tuple of str
        Why no p-value or interval could be computed; empty when they were.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.fixed_horizon import welch_test
    >>> control = ArmSummary.from_values(np.array([2.1, 3.4, 1.9, 4.0, 2.8, 3.1]))
    >>> treatment = ArmSummary.from_values(np.array([3.0, 4.2, 2.5, 4.8, 3.9, 3.6, 4.4]))
    >>> comparison = welch_test(control, treatment)
    >>> comparison.method, round(comparison.effect, 4), round(comparison.relative_effect, 4)
    ('Welch t-test', 0.8881, 0.308)
    >>> comparison.undefined
    ()
    """

    method: str
    control_value: float
    treatment_value: float
    effect: float
    se: float
    df: float
    statistic: float
    p_value: float
    ci: tuple[float, float]
    relative_effect: float
    log_ratio_se: float
    relative_ci: tuple[float, float]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    undefined: tuple[str, ...] = field(default_factory=tuple)

    def effect_fields(self) -> dict[str, Any]:
        """The values of :class:`EffectSummary`'s fields, to build a record of it.

        Returns
        -------
        dict
            Field name of :class:`EffectSummary` → this comparison's value.
        """
        return {name: getattr(self, name) for name in EFFECT_FIELDS}


def two_sided(
    method: str,
    c_value: float,
    t_value: float,
    c_var_of_value: float,
    t_var_of_value: float,
    alpha: float,
    df: float = math.inf,
    test_se: float | None = None,
    warnings: list[str] | None = None,
) -> Comparison:
    """Assemble a comparison from the two estimates and their sampling variances.

    Δ = T − C with se = √(Var(C) + Var(T)) for independent arms; the statistic
    Δ / se is referred to t(df) (normal when df = inf): p = 2·P(|T_ref| ≥ |Δ/se|)
    and the interval is Δ ± q_{1−α/2}·se.  ``test_se`` replaces the CI's standard
    error in the test statistic (used by the pooled two-proportion test).  The lift
    and its interval come from :func:`relative_effect`.

    Parameters
    ----------
    method : str
        The name of the test, kept in :attr:`Comparison.method`.
    c_value, t_value : float
        The control and treatment estimates, C and T.
    c_var_of_value, t_var_of_value : float
        Their sampling variances (squared standard errors), Var(C) and Var(T).
    alpha : float
        1 − the confidence level of the intervals.
    df : float, default inf
        Degrees of freedom of the t reference; inf for the normal.
    test_se : float or None
        Standard error for the test statistic, when it differs from the interval's.
    warnings : list of str or None
        Warnings to carry into the result.

    Returns
    -------
    Comparison
        With ``undefined`` set (and NaN statistic, p-value and interval) when the
        standard error is 0 or not finite.

    Examples
    --------
    >>> import math
    >>> from scipy import stats
    >>> from abkit.stats.fixed_horizon import two_sided
    >>> c = two_sided("z-test", 10.0, 11.0, 0.25, 0.25, alpha=0.05)
    >>> round(c.se, 4), round(c.p_value, 4), tuple(round(v, 4) for v in c.ci)
    (0.7071, 0.1573, (-0.3859, 2.3859))
    >>> round(float(2 * stats.norm.sf(1.0 / math.sqrt(0.5))), 4)
    0.1573
    """
    warnings = list(warnings or [])
    undefined = []
    effect = t_value - c_value
    se = math.sqrt(c_var_of_value + t_var_of_value)
    z_se = se if test_se is None else test_se
    if not (z_se > 0) or not math.isfinite(z_se):
        undefined.append(
            "no variation in either arm: the standard error is 0 or undefined, so no "
            "test statistic, p-value or interval can be computed"
        )
        statistic = p_value = math.nan
        ci = (math.nan, math.nan)
    else:
        ref = Reference(df)  # normal (df = inf) or Student t(df)
        statistic = effect / z_se
        p_value = float(2.0 * ref.sf(abs(statistic)))
        half = float(ref.ppf(1.0 - alpha / 2.0)) * se
        ci = (effect - half, effect + half) if se > 0 else (math.nan, math.nan)
    rel, log_se, rel_ci, rel_warn = relative_effect(
        c_value, t_value, c_var_of_value, t_var_of_value, alpha
    )
    warnings.extend(rel_warn)
    return Comparison(
        method=method,
        control_value=c_value,
        treatment_value=t_value,
        effect=effect,
        se=se,
        df=df,
        statistic=statistic,
        p_value=p_value,
        ci=ci,
        relative_effect=rel,
        log_ratio_se=log_se,
        relative_ci=rel_ci,
        warnings=tuple(warnings),
        undefined=tuple(undefined),
    )


def relative_effect(
    c_value: float,
    t_value: float,
    c_var_of_value: float,
    t_var_of_value: float,
    alpha: float,
) -> tuple[float, float, tuple[float, float], list[str]]:
    """Lift L = T/C − 1 with an interval built on the log scale.

    Var(log T/C) ≈ Var(T)/T² + Var(C)/C² for independent arms (first-order Taylor
    expansion of log; Deng, Knoblich & Lu, "Applying the Delta Method in Metric
    Analytics", KDD 2018, section 3; the log transform for ratios follows Katz et al.,
    Biometrics 1978).  The interval exp(log(T/C) ± z·se) − 1 never goes below −100 %
    and is skewed as a ratio's sampling distribution is; a symmetric interval on L
    itself can cross −100 % at small n or large effects.  Needs T/C > 0.
    Returns (lift, se of log(T/C), ci, warnings).

    Parameters
    ----------
    c_value, t_value : float
        The control and treatment estimates, C and T.
    c_var_of_value, t_var_of_value : float
        Their sampling variances, Var(C) and Var(T).
    alpha : float
        1 − the confidence level of the interval.

    Returns
    -------
    lift : float
        T/C − 1; NaN when C is 0 or not finite.
    log_ratio_se : float
        √(Var(T)/T² + Var(C)/C²), the standard error of log(T/C); NaN unless T/C > 0.
    ci : tuple of float
        exp(log(T/C) ± z_{1−α/2}·se) − 1; (NaN, NaN) unless T/C > 0.
    warnings : list of str
        Why the lift or its interval is NaN; empty otherwise.

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, section 3.
    .. [2] D. Katz, J. Baptista, S. P. Azen and M. C. Pike, "Obtaining confidence
       intervals for the risk ratio in cohort studies", Biometrics 34, 469–474, 1978.

    Examples
    --------
    >>> from abkit.stats.fixed_horizon import relative_effect
    >>> lift, se, ci, warnings = relative_effect(10.0, 11.0, 0.25, 0.25, alpha=0.05)
    >>> round(lift, 4), round(se, 5), tuple(round(v, 4) for v in ci), warnings
    (0.1, 0.06757, (-0.0364, 0.2558), [])
    >>> lift, se, ci, warnings = relative_effect(0.0, 1.0, 0.1, 0.1, alpha=0.05)
    >>> lift, warnings
    (nan, ['control value is 0 or undefined, so the relative effect is undefined (NaN)'])
    """
    if c_value == 0 or not math.isfinite(c_value):
        return (
            math.nan,
            math.nan,
            (math.nan, math.nan),
            ["control value is 0 or undefined, so the relative effect is undefined (NaN)"],
        )
    lift = t_value / c_value - 1.0
    if not t_value / c_value > 0:
        return (
            lift,
            math.nan,
            (math.nan, math.nan),
            [
                "treatment and control values are not both positive (or both negative), so "
                "the relative effect has no log-scale interval (NaN); read the absolute effect"
            ],
        )
    # squared coefficients of variation, formed as (sd/value)² so that tiny values do
    # not underflow to a zero denominator
    cv_t = math.sqrt(t_var_of_value) / abs(t_value)
    cv_c = math.sqrt(c_var_of_value) / abs(c_value)
    se = math.sqrt(cv_t * cv_t + cv_c * cv_c)  # products, not **: inf instead of OverflowError
    half = float(norm_ppf(1.0 - alpha / 2.0)) * se
    log_ratio = math.log(t_value / c_value)
    with np.errstate(over="ignore"):  # a huge SE gives an unbounded (inf) upper side
        low, high = np.expm1([log_ratio - half, log_ratio + half])
    return lift, se, (float(low), float(high)), []


def welch_test(control: ArmSummary, treatment: ArmSummary, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test for a difference in means.

    t = (x̄_T − x̄_C) / √(s²_T/n_T + s²_C/n_C), with Welch–Satterthwaite degrees of
    freedom ν = (a + b)² / (a²/(n_T − 1) + b²/(n_C − 1)), a = s²_T/n_T, b = s²_C/n_C
    (Welch, Biometrika 1947).  The CI uses the same t(ν) quantile.

    Parameters
    ----------
    control, treatment : ArmSummary
        Per-unit moments (n, mean, var) of each arm.
    alpha : float, default 0.05
        1 − the confidence level of the intervals.

    Returns
    -------
    Comparison
        ``method`` "Welch t-test", ``df`` = ν; undefined (NaN p-value and interval,
        the reason in ``undefined``) when an arm has fewer than 2 units.

    References
    ----------
    .. [1] B. L. Welch, "The generalization of 'Student's' problem when several
       different population variances are involved", Biometrika 34, 28–35, 1947.

    Examples
    --------
    The p-value, degrees of freedom and interval equal SciPy's Welch test:

    >>> import numpy as np
    >>> from scipy import stats
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.fixed_horizon import welch_test
    >>> c = np.array([2.1, 3.4, 1.9, 4.0, 2.8, 3.1])
    >>> t = np.array([3.0, 4.2, 2.5, 4.8, 3.9, 3.6, 4.4])
    >>> result = welch_test(ArmSummary.from_values(c), ArmSummary.from_values(t))
    >>> round(result.effect, 4), round(result.df, 2), round(result.p_value, 4)
    (0.8881, 10.75, 0.0717)
    >>> tuple(round(v, 4) for v in result.ci)
    (-0.0933, 1.8695)
    >>> round(float(stats.ttest_ind(t, c, equal_var=False).pvalue), 4)
    0.0717
    """
    warnings = _small_arm_warnings(control, treatment, minimum=2)
    if warnings:
        return _undefined(WELCH, control, treatment, warnings)
    a = treatment.var / treatment.n
    b = control.var / control.n
    # the df is scale-free: dividing a and b by their maximum keeps the squares finite
    scale = max(a, b)
    if scale > 0 and math.isfinite(scale):
        a_s, b_s = a / scale, b / scale
        df = (a_s + b_s) ** 2 / (a_s**2 / (treatment.n - 1) + b_s**2 / (control.n - 1))
    else:
        df = math.nan
    return two_sided(WELCH, control.mean, treatment.mean, b, a, alpha, df=df, warnings=warnings)


def two_proportion_ztest(
    control: ArmSummary, treatment: ArmSummary, alpha: float = 0.05
) -> Comparison:
    """Two-proportion z-test.

    The test uses the pooled SE √(p̂(1 − p̂)(1/n_C + 1/n_T)), p̂ the pooled rate, so
    z² equals Pearson's χ² for the 2×2 table without continuity correction; the
    interval is the unpooled Wald interval (p_T − p_C) ± z·√(p_T(1−p_T)/n_T +
    p_C(1−p_C)/n_C) (Agresti, Categorical Data Analysis, 3rd ed., §1.4, §2.2).

    Parameters
    ----------
    control, treatment : ArmSummary
        Per-unit moments of 0/1 values: ``mean`` is the arm's rate, ``n`` its units.
    alpha : float, default 0.05
        1 − the confidence level of the intervals.

    Returns
    -------
    Comparison
        Normal reference (df = inf), ``statistic`` the pooled z; undefined when an
        arm has no units.

    References
    ----------
    .. [1] A. Agresti, *Categorical Data Analysis*, 3rd ed., Wiley, 2013, §1.4, §2.2.

    Examples
    --------
    120 of 1,000 control users convert and 150 of 1,000 treated; z² is Pearson's
    χ² without continuity correction:

    >>> import numpy as np
    >>> from scipy import stats
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.fixed_horizon import two_proportion_ztest
    >>> control = ArmSummary.from_values(np.r_[np.ones(120), np.zeros(880)])
    >>> treatment = ArmSummary.from_values(np.r_[np.ones(150), np.zeros(850)])
    >>> z = two_proportion_ztest(control, treatment)
    >>> round(z.effect, 4), round(z.statistic, 4), round(z.p_value, 4)
    (0.03, 1.963, 0.0496)
    >>> tuple(round(v, 4) for v in z.ci)
    (0.0001, 0.0599)
    >>> chi2, p, _, _ = stats.chi2_contingency([[120, 880], [150, 850]], correction=False)
    >>> round(float(chi2), 4) == round(z.statistic**2, 4), round(float(p), 4)
    (True, 0.0496)
    """
    warnings = _small_arm_warnings(control, treatment, minimum=1)
    if warnings:
        return _undefined(TWO_PROPORTION_Z, control, treatment, warnings)
    pc, pt = control.mean, treatment.mean
    nc, nt = control.n, treatment.n
    pooled = (pc * nc + pt * nt) / (nc + nt)
    test_se = math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    return two_sided(
        TWO_PROPORTION_Z,
        pc,
        pt,
        pc * (1 - pc) / nc,
        pt * (1 - pt) / nt,
        alpha,
        test_se=test_se,
    )


def ratio_variance(arm: ArmSummary) -> float:
    """Delta-method variance of the ratio of sums R = Σx / Σy = x̄ / ȳ.

    Var(R) ≈ (1/n)·(s²_x/ȳ² − 2·x̄·s_xy/ȳ³ + x̄²·s²_y/ȳ⁴)
    (Deng, Knoblich & Lu, KDD 2018, eq. 4).  Equivalently the variance of the mean
    of the linearised values (x_i − R·y_i)/ȳ.

    Parameters
    ----------
    arm : ArmSummary
        A ratio arm: ``den_mean``, ``den_var`` and ``cov`` set.

    Returns
    -------
    float
        Var(R), the squared standard error of the arm's ratio.

    Raises
    ------
    ArithmeticError
        When round-off cannot explain a negative result (:func:`nonnegative`).

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018, eq. 4.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.fixed_horizon import ratio_variance
    >>> x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    >>> y = np.array([2.0, 1.0, 3.0, 1.0, 2.0, 4.0])
    >>> round(ratio_variance(ArmSummary.from_values(x, y)), 6)
    0.064031
    >>> linearised = (x - x.sum() / y.sum() * y) / y.mean()
    >>> round(float(np.var(linearised, ddof=1)) / x.size, 6)
    0.064031
    """
    mx, my = arm.mean, arm.den_mean
    assert my is not None and arm.cov is not None and arm.den_var is not None, "not a ratio arm"
    r = mx / my  # the ratio; dividing step by step keeps tiny or huge means finite
    terms = (arm.var / my / my, -2 * r * arm.cov / my / my, r * r * arm.den_var / my / my)
    return nonnegative(sum(terms), sum(abs(t) for t in terms)) / arm.n


def nonnegative(value: float, magnitude: float) -> float:
    """A variance that should be ≥ 0: round-off below zero (within 1e-10 of the size of
    the terms it was computed from) becomes 0; a real negative is a bug and raises.

    Parameters
    ----------
    value : float
        A variance computed as a sum of terms of both signs.
    magnitude : float
        The sum of the absolute values of those terms.

    Returns
    -------
    float
        ``value``, or 0.0 when −value ≤ 1e-10·magnitude; NaN and inf pass through.

    Raises
    ------
    ArithmeticError
        When ``value`` is negative beyond round-off.

    Examples
    --------
    >>> from abkit.stats.fixed_horizon import nonnegative
    >>> nonnegative(-1e-13, 1.0), nonnegative(0.5, 1.0)
    (0.0, 0.5)
    >>> nonnegative(-0.1, 1.0)
    Traceback (most recent call last):
    ...
    ArithmeticError: negative variance -0.1 from terms of size 1.0
    """
    if value >= 0 or not math.isfinite(value):
        return value
    if -value <= 1e-10 * magnitude:
        return 0.0
    raise ArithmeticError(f"negative variance {value!r} from terms of size {magnitude!r}")


def delta_ratio_test(control: ArmSummary, treatment: ArmSummary, alpha: float = 0.05) -> Comparison:
    """Difference of two ratio-of-sums metrics, delta-method SEs, normal reference.

    The randomisation unit (user) is the independent observation, not the event in
    the denominator, so the SE comes from the per-unit numerator/denominator
    moments (:func:`ratio_variance`).

    Δ = R_T − R_C with R = Σx/Σy per arm, se = √(Var(R_C) + Var(R_T)), z = Δ/se
    against N(0, 1); the lift's interval is :func:`relative_effect`'s.

    Parameters
    ----------
    control, treatment : ArmSummary
        Per-unit numerator and denominator moments of each arm (ratio arms).
    alpha : float, default 0.05
        1 − the confidence level of the intervals.

    Returns
    -------
    Comparison
        Normal reference (df = inf); undefined when an arm has fewer than 2 units or
        a denominator that sums to 0.

    References
    ----------
    .. [1] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.fixed_horizon import delta_ratio_test
    >>> control = ArmSummary.from_values(
    ...     np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0]), np.array([2.0, 1.0, 3.0, 1.0, 2.0, 4.0])
    ... )
    >>> treatment = ArmSummary.from_values(
    ...     np.array([4.0, 2.0, 6.0, 3.0, 5.0, 8.0, 7.0]),
    ...     np.array([2.0, 1.0, 3.0, 2.0, 2.0, 3.0, 3.0]),
    ... )
    >>> r = delta_ratio_test(control, treatment)
    >>> round(r.control_value, 4), round(r.treatment_value, 4), round(r.effect, 4)
    (1.7692, 2.1875, 0.4183)
    >>> round(r.se, 4), round(r.p_value, 4), r.df
    (0.2949, 0.1561, inf)
    """
    warnings = _small_arm_warnings(control, treatment, minimum=2)
    for name, arm in (("control", control), ("treatment", treatment)):
        if not warnings and arm.den_mean == 0:
            warnings.append(f"the {name} arm's denominator sums to 0, so its ratio is undefined")
    if warnings:
        return _undefined(DELTA_RATIO, control, treatment, warnings)
    return two_sided(
        DELTA_RATIO,
        control.value,
        treatment.value,
        ratio_variance(control),
        ratio_variance(treatment),
        alpha,
    )


def _small_arm_warnings(control: ArmSummary, treatment: ArmSummary, minimum: int) -> list[str]:
    return [
        f"the {name} arm has {arm.n} unit(s); at least {minimum} are needed"
        for name, arm in (("control", control), ("treatment", treatment))
        if arm.n < minimum
    ]


def undefined_comparison(
    method: str,
    control_value: float,
    treatment_value: float,
    reasons: list[str] | tuple[str, ...],
    warnings: list[str] | tuple[str, ...] = (),
) -> Comparison:
    """A comparison that cannot be computed: the values are kept, everything inferred is
    NaN, ``reasons`` say why (:attr:`Comparison.undefined`) and ``warnings`` carry what
    else was noticed on the way.

    Parameters
    ----------
    method : str
        The test that could not be computed.
    control_value, treatment_value : float
        The arms' values, kept (NaN when unknown).
    reasons : list or tuple of str
        Why no inference is possible; become :attr:`Comparison.undefined`.
    warnings : list or tuple of str, optional
        Other things noticed on the way.

    Returns
    -------
    Comparison
        ``effect`` = treatment_value − control_value; se, df, statistic, p-value,
        lift and intervals NaN.

    Examples
    --------
    >>> from abkit.stats.fixed_horizon import undefined_comparison
    >>> u = undefined_comparison("Welch t-test", 1.0, 1.5, ["the control arm has 1 unit(s)"])
    >>> u.effect, u.p_value, u.undefined
    (0.5, nan, ('the control arm has 1 unit(s)',))
    """
    nan = math.nan
    return Comparison(
        method=method,
        control_value=control_value,
        treatment_value=treatment_value,
        effect=treatment_value - control_value,
        se=nan,
        df=nan,
        statistic=nan,
        p_value=nan,
        ci=(nan, nan),
        relative_effect=nan,
        log_ratio_se=nan,
        relative_ci=(nan, nan),
        warnings=tuple(warnings),
        undefined=tuple(reasons),
    )


def _undefined(
    method: str, control: ArmSummary, treatment: ArmSummary, warnings: list[str]
) -> Comparison:
    return undefined_comparison(
        method,
        control.value if control.n else math.nan,
        treatment.value if treatment.n else math.nan,
        warnings,
    )
