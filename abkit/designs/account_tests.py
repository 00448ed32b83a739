"""B2B mode: inference over randomised accounts, never over their users.

Per metric and treatment the default answer is the account-level randomisation test
(exact or Monte Carlo) with its test-inversion interval: in simulations with 6-40
log-normally sized accounts per arm it is the only method that holds its size (see
docs/b2b.md).  The account bootstrap (percentile, BCa, bootstrap-t) and the CR2 +
Bell-McCaffrey t-test are reported beside it as cross-checks.  The relative lift's
interval also inverts the randomisation test, under a constant multiplicative effect;
a side that the test never rejects is unbounded and reported as such.  Guardrails are
tested against their margin with the one-sided randomisation test shifted by the margin
(:func:`abkit.stats.randomization.randomization_noninferiority`).  Quantiles of event
values are tested the same way on the pooled quantiles of the re-assigned accounts
(:mod:`abkit.stats.account_quantile`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import ParamSpec, TypeVar

import numpy as np

from abkit.config import B2BSpec
from abkit.result import (
    AccountArmFacts,
    AccountBootstrap,
    AccountDetail,
    AccountPoints,
    AccountQuantileDetail,
    BootstrapHistogram,
    Cr2Detail,
    KaplanMeierCurve,
    QuantileArmFacts,
    QuantileBootstrap,
    RandomizationDetail,
    ReachedValue,
    TimeToValue,
    TimeToValueDetail,
)
from abkit.stats.account_quantile import (
    AccountValues,
    account_quantile_noninferiority,
    account_quantile_test,
    comparable,
)
from abkit.stats.bootstrap import account_bootstrap
from abkit.stats.cluster import AccountArm, cr2_adjusted, cr2_test
from abkit.stats.cuped import Adjustment
from abkit.stats.fixed_horizon import Comparison, undefined_comparison
from abkit.stats.randomization import (
    RandomizationNonInferiority,
    RandomizationResult,
    randomization_noninferiority,
    randomization_test,
)
from abkit.stats.survival import EventTimes, rmst_difference_test

P = ParamSpec("P")
R = TypeVar("R")
FEW_ACCOUNTS = 10
MIN_BOOTSTRAP_ACCOUNTS = 4
DOMINANT_SHARE = 0.3


def _histogram(values: np.ndarray, bins: int = 60) -> BootstrapHistogram:
    """Bootstrap distribution as a histogram (edges, counts): small enough for JSON,
    enough to plot."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return BootstrapHistogram((), ())
    counts, edges = np.histogram(finite, bins=bins)
    return BootstrapHistogram(tuple(edges.tolist()), tuple(counts.tolist()))


def _pair(values: tuple[float, float]) -> tuple[float, float]:
    """An interval of plain floats."""
    return (float(values[0]), float(values[1]))


def _quiet_numpy(func: Callable[P, R]) -> Callable[P, R]:
    """Degenerate arms (no spread, one usable account) give NaN statistics that abkit
    reports with its own warning; numpy's RuntimeWarnings about them are noise."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return func(*args, **kwargs)

    return wrapper


def _few_accounts(name: str, accounts: int) -> list[str]:
    """At 10 accounts per arm and below the percentile bootstrap still under-covers
    (0.887-0.890 at 6-10 accounts, docs/b2b.md), so the warning starts at 10."""
    if accounts > FEW_ACCOUNTS:
        return []
    return [
        f"only {accounts} account(s) in '{name}': read the randomisation test and its "
        "interval (exact at any size); the bootstrap intervals under-cover at this size, "
        "and only large effects can be detected"
    ]


def _strata(control: AccountArm, treatment: AccountArm) -> np.ndarray | None:
    if control.strata is None or treatment.strata is None:
        return None
    labels = np.concatenate([control.strata, treatment.strata])
    return np.unique(labels, return_inverse=True)[1]


@_quiet_numpy
def guardrail_accounts(
    control: AccountArm,
    treatment: AccountArm,
    settings: B2BSpec,
    alpha: float,
    margin: float,
    relative: bool,
    higher_is_better: bool,
) -> RandomizationNonInferiority | None:
    """A B2B guardrail's one-sided randomisation test against its margin (None when an
    arm has fewer than 2 accounts)."""
    if control.accounts < 2 or treatment.accounts < 2:
        return None
    return randomization_noninferiority(
        control,
        treatment,
        settings.weighting,
        margin,
        relative,
        higher_is_better,
        alpha,
        strata=_strata(control, treatment),
        max_exact=settings.exact_limit,
        draws=settings.resamples,
        seed=settings.seed,
    )


def _dominance(name: str, sizes: np.ndarray, of: str, result: str) -> tuple[float, list[str]]:
    """The largest account's share of an arm's ``sizes`` and the warnings about the arm:
    few accounts, and one account holding more than DOMINANT_SHARE (``of``: what the
    share is of; ``result``: what that account then drives)."""
    total = float(sizes.sum()) if sizes.size else 0.0
    share = float(sizes.max() / total) if total > 0 else math.nan
    warnings = _few_accounts(name, int(sizes.size))
    if share > DOMINANT_SHARE:
        warnings.append(
            f"one account holds {share:.0%} of {of}: the {result} mostly reflects that account"
        )
    return share, warnings


def _arm_facts(name: str, arm: AccountArm) -> tuple[AccountArmFacts, list[str]]:
    share, warnings = _dominance(
        name, arm.y, f"'{name}' (by the metric's denominator)", "user-weighted result"
    )
    facts = AccountArmFacts(
        accounts=arm.accounts, denominator_total=float(arm.y.sum()), largest_account_share=share
    )
    return facts, warnings


def _unbounded(
    control: int, treatment: int, ci: tuple[float, float], relative_ci: tuple[float, float]
) -> list[str]:
    """A warning naming the sides of the inverted intervals that no effect bounds."""
    sides = [
        f"the {what} interval's {side} side"
        for what, interval in (("effect", ci), ("lift", relative_ci))
        for side, bound in (("lower", interval[0]), ("upper", interval[1]))
        if math.isinf(bound)
    ]
    if not sides:
        return []
    return [
        f"with {control} and {treatment} accounts the randomisation test rejects no effect "
        f"however large on {' and '.join(sides)}: unbounded (null in JSON). More accounts "
        "are needed to bound it."
    ]


def _unadjusted(arm: AccountArm) -> AccountArm:
    return replace(arm, z=None, covariates=())


def _adjustment(
    control: AccountArm,
    treatment: AccountArm,
    adjusted: RandomizationResult,
    settings: B2BSpec,
    strata: np.ndarray | None,
) -> Adjustment:
    """What the covariates did to the randomisation test: its null distribution's
    variance against the unadjusted test's on the same re-assignments."""
    plain = randomization_test(
        _unadjusted(control),
        _unadjusted(treatment),
        settings.weighting,
        strata=strata,
        max_exact=settings.exact_limit,
        draws=settings.resamples,
        seed=settings.seed,
        invert=False,
    )
    ratio = (adjusted.null_sd / plain.null_sd) ** 2 if plain.null_sd > 0 else math.nan
    return Adjustment(
        covariates=control.covariates,
        theta=adjusted.theta,
        unadjusted_effect=plain.effect,
        unadjusted_se=plain.null_sd,
        variance_reduction=1.0 - ratio,
    )


@_quiet_numpy
def compare_accounts(
    control: AccountArm,
    treatment: AccountArm,
    control_name: str,
    treatment_name: str,
    settings: B2BSpec,
    alpha: float,
) -> tuple[Comparison, AccountDetail, Adjustment | None]:
    """Randomisation-test comparison plus the B2B detail block for the report, and
    what the covariates did when the arms carry them (CUPED: the randomisation test and
    CR2 are adjusted, the bootstrap cross-check is not)."""
    warnings: list[str] = []
    facts: dict[str, AccountArmFacts] = {}
    for name, arm in ((control_name, control), (treatment_name, treatment)):
        facts[name], arm_warnings = _arm_facts(name, arm)
        warnings += arm_warnings
    w = settings.weighting
    c_value, t_value = control.estimate(w), treatment.estimate(w)
    if control.accounts < 2 or treatment.accounts < 2:
        comp = undefined_comparison(
            "account-level randomisation test",
            c_value,
            t_value,
            ["an arm has fewer than 2 accounts: nothing can be inferred"],
            warnings,
        )
        return comp, AccountDetail(weighting=w, arms=facts), None
    strata = _strata(control, treatment)
    ri = randomization_test(
        control,
        treatment,
        w,
        alpha,
        strata=strata,
        max_exact=settings.exact_limit,
        draws=settings.resamples,
        seed=settings.seed,
    )
    warnings += _unbounded(control.accounts, treatment.accounts, ri.ci, ri.relative_ci)
    adjusted = control.z is not None and treatment.z is not None
    adjustment = _adjustment(control, treatment, ri, settings, strata) if adjusted else None
    boot = account_bootstrap(
        _unadjusted(control), _unadjusted(treatment), w, settings.resamples, alpha, settings.seed
    )
    if min(control.accounts, treatment.accounts) < MIN_BOOTSTRAP_ACCOUNTS:
        warnings.append(
            f"the bootstrap needs at least {MIN_BOOTSTRAP_ACCOUNTS} accounts per arm (with "
            "fewer, many resamples repeat one account and have no spread); its intervals are "
            "not reported"
        )
        nan2 = (math.nan, math.nan)
        boot = replace(boot, percentile=nan2, bca=nan2, studentized=nan2, lift_percentile=nan2)
    cr2 = (
        cr2_adjusted(control, treatment, w, alpha)
        if adjusted
        else cr2_test(control, treatment, w, alpha)
    )
    if boot.degenerate > 0.01:
        warnings.append(
            f"{boot.degenerate:.1%} of bootstrap resamples had an empty "
            "denominator in an arm and were dropped"
        )
    finite = boot.effects[np.isfinite(boot.effects)]
    skew = _skew(finite) if finite.size > 2 else math.nan
    if abs(skew) > 1:
        warnings.append(
            f"the bootstrap distribution of the effect is skewed ({skew:+.1f}): a "
            "few accounts drive the result"
        )
    lift = (t_value if not adjusted else c_value + ri.effect) / c_value - 1 if c_value else math.nan
    lifts = boot.lifts[np.isfinite(boot.lifts)]
    kind = "exact" if ri.exact else "Monte Carlo"
    cuped = f", CUPED-adjusted by {', '.join(control.covariates)}" if adjusted else ""
    comp = Comparison(
        method=f"account-level randomisation test ({kind}, {ri.assignments:,} re-assignments; "
        f"{w}-weighted; CI by test inversion{cuped})",
        control_value=c_value,
        treatment_value=t_value,
        effect=ri.effect,
        se=cr2.se,
        df=cr2.df,
        statistic=ri.effect / cr2.se if cr2.se else math.nan,
        p_value=ri.p_value,
        ci=ri.ci,
        relative_effect=lift,
        log_ratio_se=float(np.log1p(lifts).std(ddof=1)) if lifts.size > 1 else math.nan,
        relative_ci=ri.relative_ci,
        warnings=tuple(warnings),
    )
    detail = AccountDetail(
        weighting=w,
        arms=facts,
        randomization=RandomizationDetail(
            p_value=ri.p_value,
            ci=_pair(ri.ci),
            relative_ci=_pair(ri.relative_ci),
            exact=ri.exact,
            assignments=ri.assignments,
            stratified=strata is not None,
        ),
        bootstrap=AccountBootstrap(
            resamples=settings.resamples,
            seed=settings.seed,
            percentile=_pair(boot.percentile),
            bca=_pair(boot.bca),
            studentized=_pair(boot.studentized),
            lift_percentile=_pair(boot.lift_percentile),
            skewness=skew,
            dropped_share=boot.degenerate,
            adjusted=False,  # CUPED adjusts the randomisation test and CR2 only
        ),
        distribution=_histogram(boot.effects),
        accounts={
            name: AccountPoints(
                value=tuple((arm.x / np.where(arm.y > 0, arm.y, np.nan)).tolist()),
                size=tuple(arm.y.tolist()),
            )
            for name, arm in ((control_name, control), (treatment_name, treatment))
        },
        cr2=Cr2Detail(
            method=cr2.method, se=cr2.se, df=cr2.df, p_value=cr2.p_value, ci=_pair(cr2.ci)
        ),
    )
    return comp, detail, adjustment


@_quiet_numpy
def compare_time_to_value(
    control: EventTimes,
    treatment: EventTimes,
    control_name: str,
    treatment_name: str,
    settings: B2BSpec,
    alpha: float,
    horizon: float | None,
) -> tuple[Comparison, TimeToValueDetail]:
    """Days to an account's first value event: RMST difference, randomisation p-value,
    account-bootstrap interval; Kaplan-Meier curves and log-rank beside it."""
    warnings = []
    for name, arm in ((control_name, control), (treatment_name, treatment)):
        warnings += _few_accounts(name, arm.time.size)
    if control.time.size < 2 or treatment.time.size < 2:
        comp = undefined_comparison(
            "RMST difference", math.nan, math.nan, ["an arm has fewer than 2 accounts"], warnings
        )
        return comp, TimeToValueDetail(weighting=None, arms={})
    res = rmst_difference_test(
        control.time,
        control.event,
        treatment.time,
        treatment.event,
        tau=horizon,
        resamples=settings.resamples,
        alpha=alpha,
        seed=settings.seed,
    )
    kind = "exact" if res.exact else "Monte Carlo"
    comp = Comparison(
        method=f"restricted mean days to value up to day {res.tau:.1f} (Kaplan-Meier); "
        f"account randomisation test ({kind}); CI: account bootstrap percentile",
        control_value=res.rmst_control,
        treatment_value=res.rmst_treatment,
        effect=res.effect,
        se=math.nan,
        df=math.nan,
        statistic=math.nan,
        p_value=res.p_value,
        ci=res.ci,
        relative_effect=res.effect / res.rmst_control if res.rmst_control else math.nan,
        log_ratio_se=math.nan,
        relative_ci=(math.nan, math.nan),
        warnings=tuple(warnings),
    )
    reached = {
        name: ReachedValue(accounts=int(arm.time.size), reached_value=int(arm.event.sum()))
        for name, arm in ((control_name, control), (treatment_name, treatment))
    }
    curves = {
        name: KaplanMeierCurve(
            times=tuple(res.curves[arm]["times"]), survival=tuple(res.curves[arm]["survival"])
        )
        for name, arm in ((control_name, "control"), (treatment_name, "treatment"))
    }
    detail = TimeToValueDetail(
        weighting="account",
        arms=reached,
        time_to_value=TimeToValue(
            horizon_days=res.tau,
            median_days={control_name: res.median_control, treatment_name: res.median_treatment},
            logrank_p_value=res.logrank_p,
            kaplan_meier=curves,
            assignments=res.assignments,
        ),
    )
    return comp, detail


def quantile_limit(settings: B2BSpec) -> int:
    """Up to how many re-assignments a quantile's test lists them all: each costs a
    pass over the events per hypothesis tested, so only up to ``resamples`` (else
    ``resamples`` random ones, a test that still holds its size)."""
    return min(settings.exact_limit, settings.resamples)


@_quiet_numpy
def compare_account_quantiles(
    control: AccountValues,
    treatment: AccountValues,
    control_name: str,
    treatment_name: str,
    settings: B2BSpec,
    alpha: float,
    q: float,
) -> tuple[Comparison, AccountQuantileDetail]:
    """A quantile of event values by the account randomisation test, its intervals by
    test inversion and the account bootstrap beside them
    (:mod:`abkit.stats.account_quantile`), plus the B2B detail block."""
    warnings: list[str] = []
    facts: dict[str, QuantileArmFacts] = {}
    for name, arm in ((control_name, control), (treatment_name, treatment)):
        events = np.bincount(arm.account, minlength=arm.accounts)
        share, arm_warnings = _dominance(name, events, f"the events of '{name}'", "pooled quantile")
        facts[name] = QuantileArmFacts(
            accounts=arm.accounts, events=arm.events, largest_account_share=share
        )
        warnings += arm_warnings
    method = "account-level randomisation test of the quantile difference"
    if not comparable(control, treatment):
        why = "an arm has fewer than 2 accounts or no values: nothing can be inferred"
        comp = undefined_comparison(method, math.nan, math.nan, [why], warnings)
        return comp, AccountQuantileDetail(weighting="event", arms=facts)
    res = account_quantile_test(
        control,
        treatment,
        q,
        alpha,
        quantile_limit(settings),
        settings.resamples,
        settings.resamples,
        settings.seed,
    )
    warnings += _unbounded(control.accounts, treatment.accounts, res.ci, res.relative_ci)
    effects = res.effects[np.isfinite(res.effects)]
    lifts = res.lifts[np.isfinite(res.lifts)]
    kind = "exact" if res.exact else "Monte Carlo"
    comp = Comparison(
        method=f"{method} ({kind}, {res.assignments:,} re-assignments; CI by test inversion "
        "under a constant shift, lift under a constant scale)",
        control_value=res.control,
        treatment_value=res.treatment,
        effect=res.effect,
        se=float(effects.std(ddof=1)) if effects.size > 1 else math.nan,
        df=math.inf,
        statistic=math.nan,
        p_value=res.p_value,
        ci=res.ci,
        relative_effect=res.relative_effect,
        log_ratio_se=float(np.log1p(lifts).std(ddof=1)) if lifts.size > 1 else math.nan,
        relative_ci=res.relative_ci,
        warnings=tuple(warnings),
    )
    detail = AccountQuantileDetail(
        weighting="event",
        arms=facts,
        randomization=RandomizationDetail(
            p_value=res.p_value,
            ci=_pair(res.ci),
            relative_ci=_pair(res.relative_ci),
            exact=res.exact,
            assignments=res.assignments,
            stratified=control.strata is not None,
        ),
        bootstrap=QuantileBootstrap(
            resamples=settings.resamples,
            seed=settings.seed,
            percentile=_pair(res.percentile),
            lift_percentile=_pair(res.lift_percentile),
        ),
        distribution=_histogram(res.effects),
        accounts={
            name: AccountPoints(value=tuple(own.tolist()), size=tuple(events.tolist()))
            for name, (own, events) in zip(
                (control_name, treatment_name), res.per_account.values(), strict=True
            )
        },
    )
    return comp, detail


@_quiet_numpy
def guardrail_account_quantiles(
    control: AccountValues,
    treatment: AccountValues,
    settings: B2BSpec,
    alpha: float,
    q: float,
    margin: float,
    relative: bool,
    higher_is_better: bool,
) -> RandomizationNonInferiority | None:
    """A B2B guardrail on a quantile: the one-sided account randomisation test with the
    treated values shifted to the margin (None when an arm has fewer than 2 accounts)."""
    if not comparable(control, treatment):
        return None
    return account_quantile_noninferiority(
        control,
        treatment,
        q,
        margin,
        relative,
        higher_is_better,
        alpha,
        quantile_limit(settings),
        settings.resamples,
        settings.seed,
    )


def _skew(values: np.ndarray) -> float:
    """SciPy's biased sample skewness (imported here: ``scipy.stats`` costs half a
    second at start, for this one call)."""
    from scipy import stats

    return float(stats.skew(values))
