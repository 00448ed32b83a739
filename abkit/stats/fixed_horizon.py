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
from scipy import stats as st

from abkit.stats.arm import ArmSummary

WELCH = "Welch t-test"
TWO_PROPORTION_Z = "two-proportion z-test (pooled SE for p, unpooled Wald CI)"
DELTA_RATIO = "delta-method z-test (ratio of sums)"


@dataclass(frozen=True)
class EffectSummary:
    """What a record built from a :class:`Comparison` keeps of it (a segment's effect,
    a point of a quantile profile): both values, the effect, the lift and their
    intervals, and the p-value."""

    control_value: float
    treatment_value: float
    effect: float
    ci: tuple[float, float]
    relative_effect: float
    relative_ci: tuple[float, float]
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """The record's fields, intervals as lists (JSON)."""
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
        """The values of :class:`EffectSummary`'s fields, to build a record of it."""
        return {name: getattr(self, name) for name in EFFECT_FIELDS}


def _reference(df: float) -> Any:
    """The reference distribution of the statistic: normal (df = inf) or Student t(df)."""
    return st.norm if math.isinf(df) else st.t(df)


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

    ``test_se`` replaces the CI's standard error in the test statistic (used by the
    pooled two-proportion test).
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
        ref = _reference(df)
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
    half = float(st.norm.ppf(1.0 - alpha / 2.0)) * se
    log_ratio = math.log(t_value / c_value)
    with np.errstate(over="ignore"):  # a huge SE gives an unbounded (inf) upper side
        low, high = np.expm1([log_ratio - half, log_ratio + half])
    return lift, se, (float(low), float(high)), []


def welch_test(control: ArmSummary, treatment: ArmSummary, alpha: float = 0.05) -> Comparison:
    """Welch's unequal-variance t-test for a difference in means.

    t = (x̄_T − x̄_C) / √(s²_T/n_T + s²_C/n_C), with Welch–Satterthwaite degrees of
    freedom ν = (a + b)² / (a²/(n_T − 1) + b²/(n_C − 1)), a = s²_T/n_T, b = s²_C/n_C
    (Welch, Biometrika 1947).  The CI uses the same t(ν) quantile.
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
    """
    mx, my = arm.mean, arm.den_mean
    assert my is not None and arm.cov is not None and arm.den_var is not None, "not a ratio arm"
    r = mx / my  # the ratio; dividing step by step keeps tiny or huge means finite
    terms = (arm.var / my / my, -2 * r * arm.cov / my / my, r * r * arm.den_var / my / my)
    return nonnegative(sum(terms), sum(abs(t) for t in terms)) / arm.n


def nonnegative(value: float, magnitude: float) -> float:
    """A variance that should be ≥ 0: round-off below zero (within 1e-10 of the size of
    the terms it was computed from) becomes 0; a real negative is a bug and raises."""
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
    else was noticed on the way."""
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
