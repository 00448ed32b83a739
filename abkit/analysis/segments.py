"""Effects by segment, with multiplicity control across segments and the test of
whether the effect differs between them.

Each segment's effect comes from the metric's own fixed-horizon test on the segment's
units; the p-values of one column's segments are adjusted together (Holm by default),
so that looking at every segment does not inflate the chance of a false "this segment
responds"; Cochran's Q (:mod:`abkit.stats.heterogeneity`) says whether the spread of
the segment effects exceeds noise.  In B2B mode each segment (a role, a seniority) is
tested with the account-level randomisation test on its users' account sums, and since
segments share accounts their estimates are correlated: the heterogeneity test is then
the randomisation test of a common effect
(:func:`~abkit.stats.randomization.segment_heterogeneity`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abkit.config import B2BSpec, MetricSpec, SegmentSpec
from abkit.stats import adjust_pvalues
from abkit.stats.arm import ArmSummary
from abkit.stats.cluster import AccountArm
from abkit.stats.fixed_horizon import Comparison, EffectSummary
from abkit.stats.heterogeneity import Heterogeneity, cochran_q
from abkit.stats.quantile import QuantileEstimate, quantile_test
from abkit.stats.randomization import randomization_test, segment_heterogeneity

B2B_HETEROGENEITY = (
    "randomisation test of a common effect across segments (accounts re-assigned; the "
    "largest p over a 99.5 % interval for the common effect, + 0.005)"
)

SMALL_SEGMENT = 100  # units per arm below which a segment's estimate is called small
SMALL_ACCOUNTS = 6  # B2B: accounts per arm below which a segment's test is called small
MANY_SEGMENTS = 10


@dataclass(frozen=True)
class SegmentEffect(EffectSummary):
    """One segment's effect, with its p-value adjusted across the column's segments."""

    value: str
    control_n: int
    treatment_n: int
    p_value_adjusted: float


@dataclass(frozen=True)
class SegmentBreakdown:
    """One metric × treatment split by one column."""

    column: str
    method: str
    correction: str
    effects: tuple[SegmentEffect, ...]
    heterogeneity: Heterogeneity
    warnings: tuple[str, ...] = ()


def _adjusted(raw: list[float], correction: str) -> list[float]:
    """Adjusted p-values of the finite ones, NaN elsewhere."""
    finite = [i for i, p in enumerate(raw) if math.isfinite(p)]
    adjusted = [math.nan] * len(raw)
    if finite:
        done = adjust_pvalues([raw[i] for i in finite], correction)  # type: ignore[arg-type]
        for i, p in zip(finite, done, strict=True):
            adjusted[i] = float(p)
    return adjusted


def _warnings(effects: tuple[SegmentEffect, ...], small: int) -> tuple[str, ...]:
    few = [e.value for e in effects if min(e.control_n, e.treatment_n) < small]
    if len(effects) <= MANY_SEGMENTS and not few:
        return ()
    return (
        f"{len(effects)} segments"
        + (f", {len(few)} with fewer than {small} units in an arm" if few else "")
        + ": per-segment effects are noisy; read the heterogeneity test before any "
        "single segment",
    )


def account_segment_breakdown(
    column: str,
    by_value: dict[str, dict[str, AccountArm]],
    control: str,
    variant: str,
    settings: SegmentSpec,
    b2b: B2BSpec,
    alpha: float,
) -> SegmentBreakdown:
    """B2B: per segment the account-level randomisation test on the segment's users'
    account sums; the heterogeneity test re-assigns the accounts of all segments at once."""
    w = b2b.weighting
    tests = {
        value: randomization_test(
            arms[control],
            arms[variant],
            w,
            alpha,
            max_exact=b2b.exact_limit,
            draws=b2b.resamples,
            seed=b2b.seed,
        )
        for value, arms in by_value.items()
    }
    adjusted = _adjusted([t.p_value for t in tests.values()], settings.correction)
    effects = []
    for (value, arms), p_adj in zip(by_value.items(), adjusted, strict=True):
        c, t, ri = arms[control], arms[variant], tests[value]
        c_value, t_value = c.estimate(w), t.estimate(w)
        effects.append(
            SegmentEffect(
                value=value,
                control_n=int((c.y > 0).sum()),
                treatment_n=int((t.y > 0).sum()),
                control_value=c_value,
                treatment_value=t_value,
                effect=ri.effect,
                ci=ri.ci,
                relative_effect=t_value / c_value - 1 if c_value else math.nan,
                relative_ci=ri.relative_ci,
                p_value=ri.p_value,
                p_value_adjusted=p_adj,
            )
        )
    pairs = [(arms[control], arms[variant]) for arms in by_value.values()]
    het = segment_heterogeneity(
        pairs, w, None, b2b.exact_limit, b2b.resamples, b2b.seed, gamma=alpha / 10
    )
    heterogeneity = Heterogeneity(
        B2B_HETEROGENEITY, het.statistic, len(pairs) - 1, het.p_value, math.nan, het.common_effect
    )
    kind = "exact" if het.exact else "Monte Carlo"
    return SegmentBreakdown(
        column,
        f"account-level randomisation test ({kind}, {het.assignments:,} re-assignments; "
        f"{w}-weighted); n = accounts with users in the segment",
        settings.correction,
        tuple(effects),
        heterogeneity,
        _warnings(tuple(effects), SMALL_ACCOUNTS),
    )


def segment_breakdown(
    column: str,
    by_value: dict[str, dict[str, dict[str, ArmSummary]]],
    metric: MetricSpec,
    control: str,
    variant: str,
    settings: SegmentSpec,
    alpha: float,
) -> SegmentBreakdown:
    """The per-segment comparisons of ``metric`` between ``control`` and ``variant``."""
    comps = {}
    for value, arms in by_value.items():
        c_arm, t_arm = arms[metric.name][control], arms[metric.name][variant]
        comps[value] = (c_arm.n, t_arm.n, metric.kind.fixed_test(c_arm, t_arm, alpha))
    return breakdown_of(column, comps, settings)


def quantile_segment_breakdown(
    column: str,
    by_value: dict[str, dict[str, QuantileEstimate]],
    control: str,
    variant: str,
    settings: SegmentSpec,
    alpha: float,
) -> SegmentBreakdown:
    """A quantile metric by segment: each segment's clustered quantile test, n = units
    with values."""
    comps = {
        value: (
            arms[control].units,
            arms[variant].units,
            quantile_test(arms[control], arms[variant], alpha),
        )
        for value, arms in by_value.items()
    }
    return breakdown_of(column, comps, settings)


def breakdown_of(
    column: str, comps: dict[str, tuple[int, int, Comparison]], settings: SegmentSpec
) -> SegmentBreakdown:
    """The breakdown from each segment's (control n, treatment n, comparison): p-values
    adjusted across the segments, Cochran's Q on the effects and their variances."""
    adjusted = _adjusted([c.p_value for *_, c in comps.values()], settings.correction)
    effects = tuple(
        SegmentEffect(
            value=value,
            control_n=control_n,
            treatment_n=treatment_n,
            p_value_adjusted=p_adj,
            **comp.effect_fields(),
        )
        for (value, (control_n, treatment_n, comp)), p_adj in zip(
            comps.items(), adjusted, strict=True
        )
    )
    heterogeneity = cochran_q(
        np.array([c.effect for *_, c in comps.values()]),
        np.array([c.se**2 for *_, c in comps.values()]),
    )
    method = next((c.method for *_, c in comps.values()), "")
    return SegmentBreakdown(
        column,
        method,
        settings.correction,
        effects,
        heterogeneity,
        _warnings(effects, SMALL_SEGMENT),
    )
