"""Statistics stage: per-arm sufficient statistics → tests → :class:`AnalysisResult`.

The data stage (:mod:`abkit.prepare`) reads and reduces the input; this module runs
the fixed-horizon, B2B and sequential comparisons (``abkit.stats`` does the
arithmetic), adjusts p-values, applies guardrails and assembles the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from abkit import progress
from abkit.b2b import (
    compare_account_quantiles,
    compare_accounts,
    compare_time_to_value,
    guardrail_account_quantiles,
    guardrail_accounts,
    quantile_limit,
)
from abkit.config import (
    ExperimentSpec,
    MetricSpec,
    load_config,
    with_columns,
    with_input,
    with_mode,
    with_segments,
    with_sequential_method,
)
from abkit.decision import Decision, Evidence, Outcome, checked, guardrail_caution
from abkit.errors import AbkitInputError
from abkit.health import health_band
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data
from abkit.prepare import Prepared, prepare
from abkit.result import AnalysisResult, GuardrailCheck, MetricResult, QuantilePoint
from abkit.segments import (
    account_segment_breakdown,
    quantile_segment_breakdown,
    segment_breakdown,
)
from abkit.sequential import monitor
from abkit.stats import (
    Comparison,
    adjust_pvalues,
    noninferiority_test,
    srm_test,
)
from abkit.stats.account_quantile import AccountValues, account_quantile_test, comparable
from abkit.stats.cluster import AccountArm
from abkit.stats.cuped import Adjustment, or_unadjusted
from abkit.stats.noninferiority import FAIL, INCONCLUSIVE, PASS
from abkit.stats.novelty import novelty_test
from abkit.stats.paired import Pairing, paired_test
from abkit.stats.quantile import quantile_test
from abkit.stats.randomization import RandomizationNonInferiority
from abkit.stats.srm import SrmResult
from abkit.units.events import PRE_PERIOD_EVENT
from abkit.units.quantiles import ArmQuantiles, profile_levels
from abkit.units.summary import EARLIER_CHECKPOINT
from abkit.wording import p_phrase


def _fixed_decision(
    metric: MetricSpec, comp: Comparison, p_adjusted: float, significant: bool, correction: str
) -> Decision:
    """Better / worse / no significant difference from the fixed-horizon test, on the
    multiplicity-adjusted p-value."""
    if not math.isfinite(p_adjusted):
        outcome: Outcome = "not computable"
    elif not significant:
        outcome = "no significant difference"
    else:
        outcome = "better" if (comp.effect > 0) == metric.higher_is_better else "worse"
    adjusted = "" if correction == "none" else f" ({correction}-adjusted p)"
    return Decision(outcome, "fixed-horizon", comp.method + adjusted, p_adjusted, comp.ci)


def _b2b_guardrail(
    metric: MetricSpec, control: AccountArm, treatment: AccountArm, spec: ExperimentSpec
) -> GuardrailCheck:
    """A B2B guardrail: the one-sided account randomisation test shifted by the margin
    (the SE-based test is far too liberal with a few dozen accounts)."""
    relative = metric.relative_margin is not None
    margin = metric.relative_margin if relative else metric.margin
    assert margin is not None
    ni = guardrail_accounts(
        control, treatment, spec.b2b, spec.alpha, margin, relative, metric.higher_is_better
    )
    return _randomization_check(ni, margin, relative, spec.alpha)


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


def _b2b_quantile_guardrail(
    metric: MetricSpec, control: AccountValues, treatment: AccountValues, spec: ExperimentSpec
) -> GuardrailCheck:
    """A B2B guardrail on a quantile: the one-sided account randomisation test with the
    treated values shifted to the margin."""
    relative = metric.relative_margin is not None
    margin = metric.relative_margin if relative else metric.margin
    assert margin is not None and metric.q is not None
    ni = guardrail_account_quantiles(
        control,
        treatment,
        spec.b2b,
        spec.alpha,
        metric.q,
        margin,
        relative,
        metric.higher_is_better,
    )
    return _randomization_check(ni, margin, relative, spec.alpha, "treated values")


def _guardrail(metric: MetricSpec, comp: Comparison, alpha: float) -> GuardrailCheck:
    reference = "normal reference" if math.isinf(comp.df) else "t reference, Welch df"
    if metric.relative_margin is not None:
        # on the log scale, as the lift interval: H0 T/C <= 1 - margin (higher is better)
        # or T/C >= 1 + margin, i.e. log(T/C) beyond log(1 -/+ margin)
        r = metric.relative_margin
        log_margin = -math.log1p(-r) if metric.higher_is_better else math.log1p(r)
        log_ratio = math.log1p(comp.relative_effect) if comp.relative_effect > -1 else math.nan
        ni = noninferiority_test(
            log_ratio, comp.log_ratio_se, log_margin, metric.higher_is_better, alpha
        )
        ni = replace(ni, margin=r, scale="relative", bound=math.expm1(ni.bound))
        reference = "normal reference on log(treatment/control), delta-method SE"
    else:
        assert metric.margin is not None
        ni = noninferiority_test(
            comp.effect, comp.se, metric.margin, metric.higher_is_better, alpha, df=comp.df
        )
    test = f"one-sided non-inferiority ({reference})"
    return GuardrailCheck(ni.margin, ni.scale, test, ni.p_value, ni.bound, ni.verdict)


def _guardrail_decision(
    metric: MetricSpec, guard: GuardrailCheck, comp: Comparison, alpha: float
) -> Decision:
    """The guardrail's non-inferiority verdict, flagged when its two-sided test finds
    the treatment significantly worse all the same."""
    outcome = cast(Outcome, f"guardrail {guard.verdict}")
    ci = comp.relative_ci if guard.scale == "relative" else comp.ci
    harmful = (comp.effect < 0) == metric.higher_is_better and comp.effect != 0
    caution = guardrail_caution(outcome, harmful, comp.p_value, alpha)
    return Decision(outcome, "non-inferiority", guard.test, guard.p_value, ci, caution=caution)


def compare(prepared: Prepared, spec: ExperimentSpec) -> list[MetricResult]:
    """Run every metric × treatment test, adjust p-values across treatments per metric."""
    results = []
    treatments = prepared.variants[1:]
    for metric in prepared.metrics:
        progress.item(f"testing {metric.name}", metric, prepared.metrics)
        arms = prepared.arms.get(metric.name, {})
        details: list[dict[str, Any] | None]
        adjustments: list[Adjustment | None] = [None] * len(treatments)
        pairings: list[Pairing | None] = [None] * len(treatments)
        if metric.name in prepared.paired:
            sums = prepared.paired[metric.name]
            tested = [
                paired_test(sums[v].live, sums[v].candidate, sums[v].pairs, spec.alpha)
                for v in treatments
            ]
            comps, pairings = [c for c, _ in tested], [p for _, p in tested]
            details = [None] * len(comps)
        elif metric.kind.survival:
            times = prepared.survival[metric.name]
            pairs = [
                compare_time_to_value(
                    times[spec.control],
                    times[v],
                    spec.control,
                    v,
                    spec.b2b,
                    spec.alpha,
                    metric.horizon,
                )
                for v in treatments
            ]
            comps, details = [c for c, _ in pairs], [d for _, d in pairs]
        elif metric.kind.per_event and spec.mode == "b2b":
            assert metric.q is not None
            values = prepared.account_values[metric.name]
            pairs_q = [
                compare_account_quantiles(
                    values[spec.control], values[v], spec.control, v, spec.b2b, spec.alpha, metric.q
                )
                for v in treatments
            ]
            comps, details = [c for c, _ in pairs_q], [d for _, d in pairs_q]
        elif metric.kind.per_event:
            assert metric.q is not None
            quantiles = prepared.quantiles[metric.name][metric.q]
            comps = [
                quantile_test(quantiles[spec.control], quantiles[v], spec.alpha) for v in treatments
            ]
            details = [None] * len(comps)
        elif spec.mode == "b2b":
            accounts = prepared.accounts[metric.name]
            triples = [
                compare_accounts(
                    accounts[spec.control], accounts[v], spec.control, v, spec.b2b, spec.alpha
                )
                for v in treatments
            ]
            comps, details = [c for c, _, _ in triples], [d for _, d, _ in triples]
            adjustments = [a for _, _, a in triples]
        else:
            control = arms[spec.control]
            comps = [metric.kind.fixed_test(control, arms[v], spec.alpha) for v in treatments]
            details = [None] * len(comps)
            covariates = prepared.covariates.get(metric.name)
            if covariates is not None:
                pairs_cuped = [
                    or_unadjusted(
                        comp,
                        covariates.test(
                            spec.control, v, spec.alpha, welch_df=math.isfinite(comp.df)
                        ),
                    )
                    for comp, v in zip(comps, treatments, strict=True)
                ]
                comps = [c for c, _ in pairs_cuped]
                adjustments = [a for _, a in pairs_cuped]
        # the units each comparison rests on: per arm, or the users of the paired inputs
        counts = [
            (p.users, p.users) if p is not None else (arms[spec.control].n, arms[v].n)
            for v, p in zip(treatments, pairings, strict=True)
        ]
        raw = [c.p_value for c in comps]
        adjusted = raw if metric.guardrail else adjust_pvalues(raw, spec.correction).tolist()
        # user-level normal approximations are beside the point when accounts are the units
        shared = metric.kind.assumption_warnings(arms) if spec.mode != "b2b" and arms else []
        for variant, comp, p_adj, detail, adjustment, pairing, (control_n, treatment_n) in zip(
            treatments, comps, adjusted, details, adjustments, pairings, counts, strict=True
        ):
            significant = bool(math.isfinite(p_adj) and p_adj < spec.alpha)
            if not metric.guardrail:
                guard = None
            elif spec.mode == "b2b" and metric.kind.per_event:
                values = prepared.account_values[metric.name]
                guard = _b2b_quantile_guardrail(metric, values[spec.control], values[variant], spec)
            elif spec.mode == "b2b" and not metric.kind.survival:
                accounts = prepared.accounts[metric.name]
                guard = _b2b_guardrail(metric, accounts[spec.control], accounts[variant], spec)
            else:
                guard = _guardrail(metric, comp, spec.alpha)
            series = prepared.looks.get(metric.name)
            seq = (
                monitor(metric, series, spec.control, variant, spec.sequential, spec.alpha)
                if series is not None
                else None
            )
            if seq is not None:
                decision = seq.decision
            elif guard is not None:
                decision = _guardrail_decision(metric, guard, comp, spec.alpha)
            else:
                correction = spec.correction if len(treatments) > 1 else "none"
                decision = _fixed_decision(metric, comp, p_adj, significant, correction)
            decision = checked(
                decision,
                Evidence(
                    control_n,
                    treatment_n,
                    adjustment.unadjusted_effect if adjustment is not None else comp.effect,
                    # an adjusted test of a metric without variation has an undefined se
                    adjustment.unadjusted_se if adjustment is not None else comp.se,
                    looks_with_data=seq.looks_with_data if seq is not None else None,
                    undefined=comp.undefined,
                ),
            )
            if seq is not None:  # one truth: the sequential detail states the same decision
                seq = replace(seq, decision=decision)
            periods = prepared.novelty.get(metric.name)
            novelty = (
                novelty_test(
                    periods.arms[spec.control],
                    periods.arms[variant],
                    periods.periods,
                    periods.ratio,
                    spec.novelty.period_days or 0,
                    spec.alpha,
                )
                if periods is not None
                else None
            )
            breakdowns = (
                tuple(
                    segment_breakdown(
                        column, by_value, metric, spec.control, variant, spec.segments, spec.alpha
                    )
                    for column, by_value in prepared.segments.items()
                    if spec.mode != "b2b"
                    and not metric.kind.account_level
                    and not metric.kind.per_event
                )
                + tuple(
                    quantile_segment_breakdown(
                        column,
                        by_metric[metric.name],
                        spec.control,
                        variant,
                        spec.segments,
                        spec.alpha,
                    )
                    for column, by_metric in prepared.segment_quantiles.items()
                    if metric.name in by_metric
                )
                + tuple(
                    account_segment_breakdown(
                        column,
                        by_metric[metric.name],
                        spec.control,
                        variant,
                        spec.segments,
                        spec.b2b,
                        spec.alpha,
                    )
                    for column, by_metric in prepared.segment_accounts.items()
                    if metric.name in by_metric
                )
            )
            if not metric.kind.per_event:
                profile: tuple[QuantilePoint, ...] = ()
            elif spec.mode == "b2b":
                values = prepared.account_values[metric.name]
                profile = _account_quantile_profile(
                    metric, values[spec.control], values[variant], spec
                )
            else:
                profile = _quantile_profile(
                    prepared.quantiles[metric.name], spec.control, variant, spec.alpha
                )
            results.append(
                MetricResult(
                    metric=metric.name,
                    metric_type=metric.type,
                    variant=variant,
                    method=comp.method,
                    control_n=control_n,
                    treatment_n=treatment_n,
                    **comp.effect_fields(),
                    p_value_adjusted=p_adj,
                    significant=significant,
                    direction="increase" if metric.higher_is_better else "decrease",
                    decision=decision,
                    guardrail=guard,
                    sequential=seq,
                    b2b=detail,
                    cuped=adjustment,
                    paired=pairing,
                    novelty=novelty,
                    segments=breakdowns,
                    quantiles=profile,
                    health=health_band(
                        metric, spec.health, comp.control_value, comp.treatment_value
                    ),
                    warnings=(
                        *comp.warnings,
                        *_untested(decision, comp),
                        *shared,
                        *prepared.metric_warnings.get(metric.name, []),
                    ),
                )
            )
    return results


def _untested(decision: Decision, comp: Comparison) -> tuple[str, ...]:
    """Why the fixed-horizon test has no p-value, as a warning, when the decision rests
    on something else (a sequential method); a 'not computable' decision already says
    it as its reason."""
    if not comp.undefined or decision.outcome == "not computable":
        return ()
    return (f"the fixed-horizon test could not be computed: {'; '.join(comp.undefined)}",)


def _quantile_profile(
    levels: ArmQuantiles, control: str, variant: str, alpha: float
) -> tuple[QuantilePoint, ...]:
    """The difference of the arms' quantiles at every level of the profile (pointwise
    intervals: a description of where in the distribution the change lies)."""
    return tuple(
        QuantilePoint(q=q, **quantile_test(arms[control], arms[variant], alpha).effect_fields())
        for q, arms in levels.items()
    )


def _account_quantile_profile(
    metric: MetricSpec, control: AccountValues, treatment: AccountValues, spec: ExperimentSpec
) -> tuple[QuantilePoint, ...]:
    """B2B: the profile's points by the account randomisation p-value, with the account
    bootstrap's percentile intervals (inverting the test at every level would cost a
    few dozen passes each; the profile describes, the metric's own q decides)."""
    if not comparable(control, treatment):
        return ()
    points = []
    for q in profile_levels(metric):
        res = account_quantile_test(
            control,
            treatment,
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


# file names that say what a table is, not which experiment it belongs to
_GENERIC_STEMS = {"assignments", "events", "export", "data", "units", "summary", "outputs"}


def export_name(data: Data) -> str:
    """A title for an unnamed experiment: the export's file name without its suffixes,
    or its folder's name when the file is called 'events', 'assignments' and the like;
    'A/B result' for a frame.

    Examples
    --------
    >>> export_name("exports/summary-prompt-v2.csv.gz")
    'summary-prompt-v2'
    >>> export_name("examples/ai_summary_export/events.parquet")
    'ai_summary_export'
    >>> export_name("events.csv.gz")
    'A/B result'
    """
    if not isinstance(data, str | Path):
        return "A/B result"
    path = Path(data)
    stem = path.name.split(".")[0]
    if stem.lower() in _GENERIC_STEMS or not stem or "*" in stem:
        return path.parent.name or "A/B result"
    return stem


def _stray_arm_warnings(counts: dict[str, int]) -> list[str]:
    """An arm with a handful of units beside arms of thousands is usually not an arm: a
    variant name cut off by a truncated file, or a typo in the export."""
    largest_name, largest = max(counts.items(), key=lambda kv: kv[1], default=("", 0))
    return [
        f"variant '{name}' has only {n:,} unit(s) next to {largest:,} in '{largest_name}': "
        "a name cut off by a truncated file or a typo in the export? Declare the variants "
        "([experiment] variants) to count stray names as exclusions instead."
        for name, n in counts.items()
        if 0 < n <= 10 and largest >= 100 * n
    ]


def _global_warnings(srm: SrmResult | None, ledger: Ledger) -> list[str]:
    out = []
    if srm is not None and srm.mismatch:
        observed = ", ".join(f"{v}: {n:,}" for v, n in srm.observed.items())
        expected = ", ".join(f"{v}: {s:.1%}" for v, s in srm.expected_share.items())
        out.append(
            f"SAMPLE-RATIO MISMATCH: chi-square {p_phrase(srm.p_value)} < {srm.threshold} "
            f"(observed {observed}; expected {expected}). The assignment or logging is "
            "broken somewhere; do not trust the results below until the cause is found."
        )
    for table, read in ledger.read.items():
        # events kept for the CUPED covariates and the earlier checkpoints of a cumulative
        # summary are set aside by design, not lost: no warning for them
        excluded = ledger.excluded(table) - sum(
            e.rows
            for e in ledger.exclusions
            if e.table == table and e.reason in (PRE_PERIOD_EVENT, EARLIER_CHECKPOINT)
        )
        if read and excluded / read > 0.01:
            out.append(
                f"{excluded / read:.1%} of the rows of {table} were excluded "
                "(see the exclusions table)."
            )
    return out


def analyze(
    data: Data,
    config: Any = None,
    *,
    events: Data | None = None,
    kind: str | None = None,
    sequential: str | None = None,
    mode: str | None = None,
    accounts: Data | None = None,
    control: str | None = None,
    unit: str | None = None,
    variant: str | None = None,
    account: str | None = None,
    segments: Sequence[str] = (),
    event: str | None = None,
    timestamp: str | None = None,
    assigned_at: str | None = None,
    session: str | None = None,
    value: str | None = None,
    exposure_event: str | None = None,
    export_end: str | None = None,
    input_id: str | None = None,
    timestamp_format: str | None = None,
    latency: str | None = None,
    ttft: str | None = None,
    input_tokens: str | None = None,
    output_tokens: str | None = None,
    title: str | None = None,
) -> AnalysisResult:
    """Analyse an experiment export.

    ``data`` is a path (file, glob or folder) or a Polars (lazy) frame: an
    assignments table when ``events`` is given; otherwise a single events table
    carrying the variant, a unit-level table or a summary table (detected from
    the columns, or set by ``kind`` / ``[input] kind``).  ``config`` is a TOML
    path, a dict of the same shape, an :class:`ExperimentSpec` or ``None``.
    ``sequential`` (``"msprt"``, ``"cs"`` or ``"gst"``) overrides ``[sequential] method``
    and ``mode`` (``"b2c"`` or ``"b2b"``) overrides ``[experiment] mode``.  ``accounts``
    is the optional accounts table (account id, ARR at start and end) for ``nrr`` metrics.
    ``control``, ``unit``, ``variant`` and ``account`` override the ``[experiment]`` keys
    of the same names (the control variant's name and the three id columns), for quick
    runs without a config file.  ``segments`` adds columns to ``[segments] columns``: the
    effects by segment, adjusted across segments, with a test of whether they differ.
    ``event``, ``timestamp``, ``assigned_at``, ``session``, ``value``, ``exposure_event``,
    ``export_end``, ``input_id``, ``timestamp_format``, ``latency``, ``ttft``,
    ``input_tokens`` and ``output_tokens`` override the ``[input]`` keys of the same
    names (the CLI's --event, --timestamp, --assigned-at, ...).  ``title`` names an
    experiment that ``[experiment] name`` leaves unnamed (default: :func:`export_name`
    of the export's path; the CLI passes it for exports read on another engine).
    """
    spec = with_columns(
        load_config(config), control=control, unit=unit, variant=variant, account=account
    )
    spec = with_input(
        spec,
        event=event,
        timestamp=timestamp,
        assigned_at=assigned_at,
        session=session,
        value=value,
        exposure_event=exposure_event,
        export_end=export_end,
        input_id=input_id,
        timestamp_format=timestamp_format,
        latency=latency,
        ttft=ttft,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
    if sequential is not None:
        spec = with_sequential_method(spec, sequential)
    if segments:
        spec = with_segments(spec, tuple(segments))
    if mode is not None:
        spec = with_mode(spec, mode)
    account_level = [m for m in spec.metrics if m.kind.account_level]
    if spec.mode != "b2b" and account_level:
        raise AbkitInputError(
            f"{account_level[0].type} is an account-level metric: analyse it with "
            'mode = "b2b" and an account column.'
        )
    quantiles = [m.name for m in spec.metrics if m.kind.per_event]
    if quantiles and spec.sequential.method is not None:
        raise AbkitInputError(
            f"metric '{quantiles[0]}' is a quantile, which abkit tests at a fixed horizon "
            "only (its clustered variance is not a sum over units that the always-valid "
            "methods need); analyse it without sequential monitoring."
        )
    if quantiles and spec.mode == "b2b" and spec.quantiles.method == "histogram":
        raise AbkitInputError(
            f"metric '{quantiles[0]}' is a quantile, which B2B mode tests by re-assigning "
            "accounts, so it needs each value with its account; [quantiles] method = "
            "'histogram' keeps only a histogram per arm. Use method = 'exact' (or 'auto')."
        )
    capped = [m.name for m in spec.metrics if m.cap is not None]
    if capped and spec.sequential.method is not None:
        raise AbkitInputError(
            f"metric '{capped[0]}' is capped, and capping is not offered with sequential "
            "monitoring (a pooled-quantile threshold would move from look to look); analyse "
            "the capped metric once, at a fixed horizon."
        )
    if spec.mode == "b2b" and spec.sequential.method is not None:
        raise AbkitInputError(
            "sequential monitoring is not offered in B2B mode. Always-valid intervals rest on "
            "a central limit theorem over randomisation units, and with a few dozen accounts "
            "it does not hold: simulated asymptotic confidence sequences are several times "
            "wider than fixed intervals and their coverage is unproven at these sizes. "
            "Fix the duration in advance and analyse once at the end with the randomisation "
            "test (valid at any number of accounts), or plan two or three looks and split "
            "alpha between them by hand (for example 0.01 then 0.04)."
        )
    ledger = Ledger()
    prepared = prepare(data, spec, ledger, events=events, kind=kind, accounts=accounts)
    ledger.check()
    variants = prepared.variants
    split = spec.expected_split or {v: 1.0 for v in variants}
    # a paired export has no allocation to check: every input went to both versions
    srm = (
        None
        if prepared.kind == "paired"
        else srm_test(prepared.unit_counts, split, spec.srm_threshold)
    )
    results = compare(prepared, spec)
    sequential_warnings = dict.fromkeys(
        w for r in results if r.sequential for w in r.sequential.warnings
    )
    return AnalysisResult(
        name=spec.name or title or export_name(data if events is None else events),
        control=spec.control,
        variants=variants,
        alpha=spec.alpha,
        unit=spec.unit,
        correction=spec.correction,
        input_kind=prepared.kind,
        mode=spec.mode,
        account=spec.account,
        srm=srm,
        exclusions=[e.to_dict() for e in ledger.exclusions],
        rows={
            t: {"read": n, "used": ledger.used.get(t, 0), "excluded": ledger.excluded(t)}
            for t, n in ledger.read.items()
        },
        results=results,
        metric_notes=dict(prepared.metric_notes),
        notes=list(prepared.notes),
        session_depth=prepared.session_depth,
        adoption=prepared.adoption,
        retention_curve=prepared.retention_curve,
        warnings=[
            *prepared.input_warnings,
            *_global_warnings(srm, ledger),
            *_stray_arm_warnings(prepared.unit_counts),
            *prepared.account_warnings,
            *sequential_warnings,
        ],
        export_end=prepared.export_end,
    )
