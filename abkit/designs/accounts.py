"""Accounts randomised (B2B, ``mode = "b2b"``): tests on per-account sums.

With a few dozen randomised accounts the user-level tests overstate the evidence: the
account is the unit.  Each metric is summed per account; the comparison is the account
randomisation test (exact or Monte Carlo) with the account bootstrap and CR2 beside it
(:mod:`abkit.designs.account_tests`), quantiles re-assign each account's event values,
time to value is compared by restricted mean survival, and guardrails are one-sided
randomisation tests shifted by the margin.  Contaminated accounts (users in more than
one variant) are left out, and the sample-ratio check counts accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from abkit.analysis.segments import SegmentBreakdown, account_segment_breakdown
from abkit.config import ExperimentSpec, MetricSpec
from abkit.designs.account_tests import (
    compare_account_quantiles,
    compare_accounts,
    compare_time_to_value,
    guardrail_account_quantiles,
    guardrail_accounts,
    quantile_limit,
)
from abkit.designs.base import (
    Design,
    Notes,
    Statistics,
    Tested,
    normal_guardrail,
    refuse,
    unadjustable,
)
from abkit.engine.quantiles import profile_levels
from abkit.errors import AbkitInputError
from abkit.inputs.account_sums import (
    account_arms_of,
    account_members,
    clean_units,
    engine_account_sums,
    segment_account_sums,
)
from abkit.inputs.accounts import SEATS, load_accounts, revenue_arms
from abkit.inputs.covariates import covariates_of
from abkit.inputs.moments import account_times, contamination
from abkit.inputs.prepare import Reduced, UnitFrame
from abkit.inputs.quantiles import account_values
from abkit.io.exclusions import Ledger
from abkit.io.readers import read_table
from abkit.metrics.base import Statistic
from abkit.names import ACCOUNT, VARIANT
from abkit.result import GuardrailCheck, QuantilePoint
from abkit.stats import ArmSummary
from abkit.stats.account_quantile import AccountValues, account_quantile_test, comparable
from abkit.stats.cluster import USER_WEIGHTED, AccountArm
from abkit.stats.noninferiority import FAIL, INCONCLUSIVE, PASS
from abkit.stats.randomization import RandomizationNonInferiority
from abkit.stats.survival import EventTimes

MOMENTS, RATIO_MOMENTS = Statistic.MOMENTS, Statistic.RATIO_MOMENTS
EVENT_VALUES, EVENT_TIMES = Statistic.EVENT_VALUES, Statistic.EVENT_TIMES
ACCOUNT_REVENUE = Statistic.ACCOUNT_REVENUE


@dataclass(frozen=True)
class AccountStatistics(Statistics):
    """Per metric and variant: the per-account sums (``accounts``), a quantile metric's
    event values with the account of each (``values``), a time-to-value metric's
    per-account times and events (``survival``); per segment column, metric, value and
    variant the per-account sums of the segment's users."""

    accounts: dict[str, dict[str, AccountArm]] = field(default_factory=dict)
    values: dict[str, dict[str, AccountValues]] = field(default_factory=dict)
    survival: dict[str, dict[str, EventTimes]] = field(default_factory=dict)
    segments: dict[str, dict[str, dict[str, dict[str, AccountArm]]]] = field(default_factory=dict)


class Accounts(Design[AccountStatistics]):
    """Accounts are the randomisation unit."""

    name = "accounts"
    needs_accounts = True

    def check(self, spec: ExperimentSpec) -> None:
        if spec.sequential.method is not None:
            refuse(
                "sequential monitoring is not offered in B2B mode. Always-valid intervals rest "
                "on a central limit theorem over randomisation units, and with a few dozen "
                "accounts it does not hold: simulated asymptotic confidence sequences are "
                "several times wider than fixed intervals and their coverage is unproven at "
                "these sizes. Fix the duration in advance and analyse once at the end with the "
                "randomisation test (valid at any number of accounts), or plan two or three "
                "looks and split alpha between them by hand (for example 0.01 then 0.04)."
            )
        own = [m for m in spec.metrics if m.kind.statistic is Statistic.OWN]
        if own:
            refuse(
                f"metric '{own[0].name}' is of type '{own[0].type}', which tests a statistic "
                "of its own between users; B2B mode has no account-level test for it."
            )
        quantiles = [m.name for m in spec.metrics if m.kind.statistic is EVENT_VALUES]
        if quantiles and spec.quantiles.method == "histogram":
            refuse(
                f"metric '{quantiles[0]}' is a quantile, which B2B mode tests by re-assigning "
                "accounts, so it needs each value with its account; [quantiles] method = "
                "'histogram' keeps only a histogram per arm. Use method = 'exact' (or 'auto')."
            )

    def admit(self, kind: str, label: str) -> None:
        if kind == "summary":
            refuse(
                "B2B mode resamples accounts, so it needs one row per user (or per account) "
                "with the account column; a summary table has only per-variant totals.",
                label,
            )
        if kind == "paired":
            refuse(
                "paired export: B2B mode resamples accounts of an experiment randomised by "
                "account; in a paired run every input is answered by both versions, and users "
                "are the clusters.",
                label,
            )

    def skipped_default(self, metric: MetricSpec, spec: ExperimentSpec) -> str | None:
        if metric.kind.statistic is EVENT_VALUES and spec.quantiles.method == "histogram":
            return (
                f"default metric '{metric.name}' skipped: B2B quantiles need each value's "
                "account, which [quantiles] method = 'histogram' does not keep"
            )
        return None

    # --- statistics ---------------------------------------------------------------------

    def statistics(
        self, reduced: Reduced, spec: ExperimentSpec, ledger: Ledger
    ) -> AccountStatistics:
        frame = reduced.units
        assert frame is not None  # summary and paired inputs are refused by admit
        notes = Notes()
        for m in reduced.metrics:
            if covariates_of(spec, m) and m.kind.adjustable() is None:
                notes.warn(m.name, unadjustable(m))
        if ACCOUNT not in frame.table.columns:
            stats = AccountStatistics(reduced.arms, reduced.unit_counts)
        else:
            stats = _account_statistics(reduced, frame, spec, ledger, notes)
        if spec.segments.columns:
            for m in reduced.metrics:
                if m.kind.statistic is EVENT_VALUES:
                    notes.note(
                        m.name, "not broken down by segment: not yet for quantiles in B2B mode"
                    )
        if frame.periods is not None:
            notes.notes.append(
                "novelty: not checked in B2B mode (per-period effects over a few accounts are "
                "too noisy to show a trend)"
            )
        crossing = frame.table.crossing_note()
        if crossing is not None:
            notes.notes.append(crossing)
        return AccountStatistics(
            stats.arms,
            stats.unit_counts,
            notes.metric_notes,
            notes.metric_warnings,
            notes.notes,
            notes.warnings,
            accounts=stats.accounts,
            values=stats.values,
            survival=stats.survival,
            segments=stats.segments,
        )

    # --- tests --------------------------------------------------------------------------

    def compare(
        self, metric: MetricSpec, stats: AccountStatistics, spec: ExperimentSpec, variant: str
    ) -> Tested:
        arms = stats.arms[metric.name]
        counts = arms[spec.control].n, arms[variant].n
        names = spec.control, variant
        statistic = metric.kind.statistic
        if statistic is EVENT_TIMES:
            times = stats.survival[metric.name]
            comp, reached = compare_time_to_value(
                times[spec.control], times[variant], *names, spec.b2b, spec.alpha, metric.horizon
            )
            return Tested(comp, *counts, detail=reached)
        if statistic is EVENT_VALUES:
            assert metric.q is not None
            values = stats.values[metric.name]
            comp, quantile = compare_account_quantiles(
                values[spec.control], values[variant], *names, spec.b2b, spec.alpha, metric.q
            )
            return Tested(comp, *counts, detail=quantile)
        accounts = stats.accounts[metric.name]
        comp, detail, adjustment = compare_accounts(
            accounts[spec.control], accounts[variant], *names, spec.b2b, spec.alpha
        )
        return Tested(comp, *counts, detail=detail, adjustment=adjustment)

    def guardrail(
        self,
        metric: MetricSpec,
        stats: AccountStatistics,
        spec: ExperimentSpec,
        variant: str,
        tested: Tested,
    ) -> GuardrailCheck:
        """The one-sided account randomisation test shifted by the margin (the SE-based
        test is far too liberal with a few dozen accounts); time to value keeps the
        normal test on its restricted-mean difference."""
        relative = metric.relative_margin is not None
        margin = metric.relative_margin if relative else metric.margin
        assert margin is not None
        if metric.kind.statistic is EVENT_VALUES:
            assert metric.q is not None
            values = stats.values[metric.name]
            ni = guardrail_account_quantiles(
                values[spec.control],
                values[variant],
                spec.b2b,
                spec.alpha,
                metric.q,
                margin,
                relative,
                metric.higher_is_better,
            )
            return _randomization_check(ni, margin, relative, spec.alpha, "treated values")
        if metric.kind.statistic is not EVENT_TIMES:
            accounts = stats.accounts[metric.name]
            ni = guardrail_accounts(
                accounts[spec.control],
                accounts[variant],
                spec.b2b,
                spec.alpha,
                margin,
                relative,
                metric.higher_is_better,
            )
            return _randomization_check(ni, margin, relative, spec.alpha)
        return normal_guardrail(metric, tested.comparison, spec.alpha)

    def segments(
        self, metric: MetricSpec, stats: AccountStatistics, spec: ExperimentSpec, variant: str
    ) -> tuple[SegmentBreakdown, ...]:
        return tuple(
            account_segment_breakdown(
                column,
                by_metric[metric.name],
                spec.control,
                variant,
                spec.segments,
                spec.b2b,
                spec.alpha,
            )
            for column, by_metric in stats.segments.items()
            if metric.name in by_metric
        )

    def profile(
        self, metric: MetricSpec, stats: AccountStatistics, spec: ExperimentSpec, variant: str
    ) -> tuple[QuantilePoint, ...]:
        """The profile's points by the account randomisation p-value, with the account
        bootstrap's percentile intervals (inverting the test at every level would cost a
        few dozen passes each; the profile describes, the metric's own q decides)."""
        values = stats.values.get(metric.name)
        if values is None or not comparable(values[spec.control], values[variant]):
            return ()
        points = []
        for q in profile_levels(metric):
            res = account_quantile_test(
                values[spec.control],
                values[variant],
                q,
                spec.alpha,
                quantile_limit(spec.b2b),
                spec.b2b.resamples,
                spec.b2b.resamples,
                spec.b2b.seed,
                invert=False,
            )
            points.append(
                QuantilePoint(
                    q=q,
                    control_value=res.control,
                    treatment_value=res.treatment,
                    effect=res.effect,
                    ci=res.percentile,
                    relative_effect=res.relative_effect,
                    relative_ci=res.lift_percentile,
                    p_value=res.p_value,
                )
            )
        return tuple(points)

    def spread(
        self, metric: MetricSpec, stats: AccountStatistics, spec: ExperimentSpec
    ) -> dict[str, Any]:
        """σ of the accounts' linearised contributions (:func:`account_sd`)."""
        if metric.kind.statistic in (EVENT_VALUES, EVENT_TIMES, Statistic.OWN):
            refuse(
                f"metric '{metric.name}' ({metric.type}): B2B power analysis sizes a mean, "
                "rate or ratio from the spread of its account values; a quantile or a "
                "time to value has no such spread here. Size a mean or rate metric, or "
                "give --sd."
            )
        accounts = stats.accounts[metric.name]
        weighting = spec.b2b.weighting
        sd, current = account_sd(list(accounts.values()), weighting)
        return {
            "sd": sd,
            "current": current,
            "baseline": accounts[spec.control].estimate(weighting),
            "source": f"between-account spread of '{metric.name}' in the data",
        }


def account_sd(arms: list[AccountArm], weighting: str) -> tuple[float, float]:
    """Pooled sd of the accounts' linearised contributions, and the mean arm size.

    User-weighted (ratio of sums R = ΣX/ΣY) the contribution of account g is
    u_g = (X_g − R·Y_g)/Ȳ, whose sample variance over k accounts gives the CR0
    variance of R as sd²·(k − 1)/k²; account-weighted it is the account value's
    deviation from the arm's mean.
    """
    ss = dof = 0.0
    for arm in arms:
        r, w = arm.weights(weighting)
        if weighting == USER_WEIGHTED:
            u = (r - (w * r).sum() / w.sum()) * w / w.mean()
        else:
            u = r - r.mean()
        ss += float((u**2).sum())
        dof += u.size - 1
    return math.sqrt(ss / dof) if dof > 0 else math.nan, float(np.mean([a.accounts for a in arms]))


def _randomization_check(
    ni: RandomizationNonInferiority | None,
    margin: float,
    relative: bool,
    alpha: float,
    shifted: str = "",
) -> GuardrailCheck:
    """The guardrail check of a one-sided randomisation test (inconclusive without
    one: an arm with fewer than 2 accounts)."""
    test = "one-sided account randomisation test" + (f", {shifted}" if shifted else "")
    test += " shifted by the margin"
    scale = "relative" if relative else "absolute"
    if ni is None:
        return GuardrailCheck(margin, scale, test, math.nan, math.nan, INCONCLUSIVE)
    kind = "exact" if ni.exact else "Monte Carlo"
    verdict = PASS if ni.p_value < alpha else FAIL if ni.p_harm < alpha else INCONCLUSIVE
    test += f" ({kind}, {ni.assignments:,} re-assignments)"
    return GuardrailCheck(margin, scale, test, ni.p_value, ni.bound, verdict)


def _account_statistics(
    reduced: Reduced,
    frame: UnitFrame,
    spec: ExperimentSpec,
    ledger: Ledger,
    notes: Notes,
) -> AccountStatistics:
    """Sum each metric by account over the accounts that saw one variant (and keep the
    account of each value of a quantile metric); read the accounts table for NRR and
    seat counts; the sample-ratio check counts accounts."""
    mixed, _ = frame.table.accounts()
    if mixed:
        notes.warnings.append(
            contamination(mixed, "; their users are left out of the account-level analysis.")
        )
    table = frame.table
    clean = clean_units(table, mixed)
    metrics, variants = reduced.metrics, reduced.variants
    strata = spec.b2b.strata
    nrr = [m for m in metrics if m.kind.statistic is ACCOUNT_REVENUE]
    if nrr and frame.accounts is None:
        raise AbkitInputError(
            f"metric '{nrr[0].name}' (net revenue retention) needs an accounts table with ARR "
            "at the start and end: pass --accounts (or accounts= in Python)."
        )
    # a time to value is compared by each account's time (survival): no sums of it
    summed = [m for m in metrics if m.kind.statistic in (MOMENTS, RATIO_MOMENTS)]
    times = [m for m in metrics if m.kind.statistic is EVENT_TIMES]
    covariates = {m.name: covariates_of(spec, m) for m in summed if m.kind.adjustable() is not None}
    sums = engine_account_sums(table, clean, summed, strata, covariates, times)
    accounts_table = None
    if frame.accounts is not None:
        owner = sums.accounts.select(ACCOUNT, VARIANT)
        accounts_table = load_accounts(
            read_table(frame.accounts), spec, owner, ledger, need_revenue=bool(nrr)
        )
    seats = (
        accounts_table.select(ACCOUNT, SEATS).drop_nulls()
        if accounts_table is not None and SEATS in accounts_table.columns
        else None
    )
    accounts = {
        m.name: account_arms_of(
            sums, m, variants, strata is not None, seats if m.kind.adoption_breakdown else None
        )
        for m in summed
    }
    values = {}
    quantiles = [m for m in metrics if m.kind.statistic is EVENT_VALUES]
    members = account_members(table, clean, sums, strata) if quantiles else None
    for m in quantiles:
        reference = m.kind.value_reference(m)
        if reference is not None:
            assert members is not None
            values[m.name], lines = account_values(
                m, frame.values[reference], members, variants, strata
            )
            notes.note(m.name, *lines)
    segments = {}
    for column in spec.segments.columns:
        segments[column] = segment_account_sums(
            table,
            clean,
            column,
            summed,
            sums,
            variants,
            strata,
            spec.segments.max_values,
            "the units",
        )
    if seats is not None and any(m.kind.adoption_breakdown for m in metrics):
        notes.notes.append(
            f"adoption is a share of licensed seats for the {seats.height} account(s) with a "
            f"seat count (of {sums.distinct}); the others use their users in the export"
        )
    arms = dict(reduced.arms)
    for m in nrr:
        assert accounts_table is not None  # an nrr metric without one was refused above
        revenue = revenue_arms(accounts_table, variants)
        accounts[m.name] = revenue
        arms[m.name] = {v: ArmSummary.from_values(a.x, a.y) for v, a in revenue.items()}
    survival = {}
    if frame.export_end is not None:
        survival = {
            m.name: account_times(sums.accounts, m, variants, frame.export_end) for m in times
        }
    # accounts, not users, were randomised: the sample-ratio check counts accounts
    counts = dict(sums.accounts.group_by(VARIANT).agg(pl.col(ACCOUNT).n_unique()).iter_rows())
    notes.notes.append("B2B mode: the sample-ratio check counts accounts per variant")
    return AccountStatistics(
        arms,
        {v: int(counts.get(v, 0)) for v in variants},
        accounts=accounts,
        values=values,
        survival=survival,
        segments=segments,
    )
