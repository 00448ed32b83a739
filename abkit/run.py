"""The analysis: input → design → tests → decisions → :class:`AnalysisResult`.

The input stage (:mod:`abkit.inputs.prepare`) reads and reduces the export; the design chosen
for the experiment's randomisation unit (:mod:`abkit.designs`) builds its statistics
and runs each metric's tests on them (``abkit.stats`` does the arithmetic).  This
module adjusts p-values across treatments, turns every test into one
:class:`~abkit.analysis.decision.Decision` and assembles the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from abkit import progress
from abkit.analysis.bayesian import with_bayesian
from abkit.analysis.decision import Decision, Evidence, Outcome, checked, guardrail_caution
from abkit.analysis.health import health_band
from abkit.analysis.surrogate import forecast_decision
from abkit.api import AnalysisResult, MetricResult
from abkit.config import (
    ExperimentSpec,
    MetricSpec,
    load_config,
    with_bayesian_reading,
    with_columns,
    with_input,
    with_mode,
    with_segments,
    with_sequential_method,
)
from abkit.designs import design_for, statistics_of
from abkit.designs.base import Design, StatisticsT
from abkit.engine.events import PRE_PERIOD_EVENT
from abkit.inputs.summary import EARLIER_CHECKPOINT
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data
from abkit.result import GuardrailCheck
from abkit.stats import Comparison, adjust_pvalues, srm_test
from abkit.stats.srm import SrmResult
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


def compare(
    design: Design[StatisticsT],
    stats: StatisticsT,
    metrics: tuple[MetricSpec, ...],
    variants: tuple[str, ...],
    spec: ExperimentSpec,
    metric_warnings: dict[str, list[str]],
) -> list[MetricResult]:
    """Run every metric × treatment test of the design, adjust p-values across
    treatments per metric, and decide each one."""
    results = []
    treatments = variants[1:]
    for metric in metrics:
        progress.item(f"testing {metric.name}", metric, metrics)
        tested = [design.compare(metric, stats, spec, v) for v in treatments]
        raw = [t.comparison.p_value for t in tested]
        adjusted = raw if metric.guardrail else adjust_pvalues(raw, spec.correction).tolist()
        shared = design.assumption_warnings(metric, stats)
        for variant, t, p_adj in zip(treatments, tested, adjusted, strict=True):
            comp = t.comparison
            significant = bool(math.isfinite(p_adj) and p_adj < spec.alpha)
            guard = design.guardrail(metric, stats, spec, variant, t) if metric.guardrail else None
            seq = design.monitor(metric, stats, spec, variant)
            if seq is not None:
                decision = seq.decision
            elif guard is not None:
                decision = _guardrail_decision(metric, guard, comp, spec.alpha)
            else:
                correction = spec.correction if len(treatments) > 1 else "none"
                decision = _fixed_decision(metric, comp, p_adj, significant, correction)
            adjustment = t.adjustment
            decision = checked(
                decision,
                Evidence(
                    t.control_n,
                    t.treatment_n,
                    adjustment.unadjusted_effect if adjustment is not None else comp.effect,
                    # an adjusted test of a metric without variation has an undefined se
                    adjustment.unadjusted_se if adjustment is not None else comp.se,
                    looks_with_data=seq.looks_with_data if seq is not None else None,
                    undefined=comp.undefined,
                ),
            )
            if seq is not None:  # one truth: the sequential detail states the same decision
                seq = replace(seq, decision=decision)
            forecast = design.surrogate(metric, stats, spec, variant)
            if metric.name in spec.surrogate.decide:  # the user made the forecast decide
                decision = forecast_decision(metric, forecast, spec.alpha)
            results.append(
                MetricResult(
                    metric=metric.name,
                    metric_type=metric.type,
                    variant=variant,
                    method=comp.method,
                    control_n=t.control_n,
                    treatment_n=t.treatment_n,
                    **comp.effect_fields(),
                    p_value_adjusted=p_adj,
                    significant=significant,
                    direction="increase" if metric.higher_is_better else "decrease",
                    decision=decision,
                    guardrail=guard,
                    sequential=seq,
                    b2b=t.detail,
                    cuped=adjustment,
                    paired=t.pairing,
                    judged=t.judged,
                    novelty=design.novelty(metric, stats, spec, variant),
                    segments=design.segments(metric, stats, spec, variant),
                    quantiles=design.profile(metric, stats, spec, variant),
                    health=health_band(
                        metric, spec.health, comp.control_value, comp.treatment_value
                    ),
                    surrogate=forecast,
                    warnings=(
                        *comp.warnings,
                        *_untested(decision, comp),
                        *shared,
                        *metric_warnings.get(metric.name, []),
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


def _by_metric(
    metrics: tuple[MetricSpec, ...], *parts: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Per-metric lines of the input stage and of the design, joined, in the order of
    the metrics (lines about a metric that is not analysed come last)."""
    names = [m.name for m in metrics] + [n for part in parts for n in part]
    joined: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        if any(name in part for part in parts):
            joined[name] = [line for part in parts for line in part.get(name, [])]
    return joined


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
    bayesian: bool = False,
    archive: str | Path | None = None,
    surrogate_training: str | Path | None = None,
) -> AnalysisResult:
    """Analyse an experiment export: every metric × treatment tested, decided and
    reported with its method.

    The export is read and reduced to per-unit rows or per-arm sums
    (:mod:`abkit.inputs`); the design of the randomisation unit (users, accounts in
    B2B mode, or the inputs of a paired run; :mod:`abkit.designs`) builds its
    statistics and runs the tests; p-values are adjusted across treatments per metric
    (Holm by default) and each comparison becomes one
    :class:`~abkit.analysis.decision.Decision`.  Every input row is used or counted in the
    exclusions table with its reason.

    Parameters
    ----------
    data
        A path (file, glob or folder) or a Polars (lazy) frame: an assignments table
        when ``events`` is given; otherwise a single events table carrying the
        variant, a unit-level table, a summary table or a paired export (detected
        from the columns, or set by ``kind`` / ``[input] kind``).
    config
        A TOML path, a dict of the same shape, an :class:`ExperimentSpec` or None
        (the documented defaults: the built-in AI metrics on an event export, every
        numeric column of a unit-level table).
    events
        The events table (a path, a Polars frame, or a DuckDB / Spark / SQLFrame
        relation: the per-unit reduction then runs on that engine).
    kind
        ``"events"``, ``"units"``, ``"summary"`` or ``"paired"`` (default: detected).
    sequential
        ``"msprt"``, ``"cs"`` or ``"gst"``: overrides ``[sequential] method``.
    mode
        ``"b2c"`` or ``"b2b"``: overrides ``[experiment] mode``.
    accounts
        The accounts table (account id, ARR at start and end, seats) for ``nrr``
        metrics and adoption as a share of seats.
    control, unit, variant, account
        Override the ``[experiment]`` keys of the same names (the control variant's
        name and the id columns), for quick runs without a config file.
    segments
        Columns added to ``[segments] columns``: the effects by segment, adjusted
        across segments, with a test of whether they differ.
    event, timestamp, assigned_at, session, value, exposure_event, export_end, \
input_id, timestamp_format, latency, ttft, input_tokens, output_tokens
        Override the ``[input]`` keys of the same names (the CLI's --event,
        --timestamp, --assigned-at, ...).
    title
        Names an experiment that ``[experiment] name`` leaves unnamed (default:
        :func:`export_name` of the export's path).
    bayesian
        Adds the Bayesian reading to every result (as a ``[bayesian]`` section does):
        posterior, chance to win, expected loss and a decision of its own
        (:mod:`abkit.analysis.bayesian`).
    archive
        An experiment archive (:class:`abkit.archive.Archive`) whose past experiments
        give each metric's prior (overrides ``[bayesian] archive``; implies ``bayesian``).

    surrogate_training
        A past experiment's per-unit table of first-week signals and long-run retention
        (:func:`abkit.surrogate_training_table`) to train the surrogate forecast on
        (overrides ``[surrogate] training``).

    Returns
    -------
    AnalysisResult
        One :class:`~abkit.result.MetricResult` per metric × treatment (estimate,
        interval, p-value with its method, decision), the sample-ratio check, the
        exclusions, notes and warnings; ``.table`` as a Polars frame, ``.to_text()``,
        ``.to_markdown()``, ``.to_html()``, ``.to_dict()`` and ``.plot()``.

    Raises
    ------
    AbkitInputError
        Input or settings that cannot be analysed, naming the file, column or value.
    ConfigError
        A configuration key or value that is not allowed.

    Examples
    --------
    >>> import numpy as np, polars as pl, abkit
    >>> rng = np.random.default_rng(1)
    >>> variant = ["control", "treatment"] * 500
    >>> rate = np.where(np.array(variant) == "treatment", 0.30, 0.22)
    >>> units = pl.DataFrame({"user_id": range(1000), "variant": variant,
    ...                       "converted": (rng.random(1000) < rate).astype(int)})
    >>> (r,) = abkit.analyze(units).results
    >>> r.metric, r.method
    ('converted', 'two-proportion z-test (pooled SE for p, unpooled Wald CI)')
    >>> print(f"{r.control_value:.3f} → {r.treatment_value:.3f}, p = {r.p_value:.4f}")
    0.212 → 0.302, p = 0.0011
    >>> r.decision.outcome
    'better'
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
    if surrogate_training is not None:
        spec = replace(spec, surrogate=replace(spec.surrogate, training=str(surrogate_training)))
    if bayesian or archive is not None:
        spec = with_bayesian_reading(spec, archive)
    design_for(spec).check(spec)
    ledger = Ledger()
    design, reduced, stats = statistics_of(
        data, spec, ledger, events=events, kind=kind, accounts=accounts
    )
    ledger.check()
    variants = reduced.variants
    split = spec.expected_split or {v: 1.0 for v in variants}
    # a paired export has no allocation to check: every input went to both versions
    srm = (
        None if reduced.kind == "paired" else srm_test(stats.unit_counts, split, spec.srm_threshold)
    )
    metric_warnings = _by_metric(reduced.metrics, reduced.metric_warnings, stats.metric_warnings)
    results = compare(design, stats, reduced.metrics, variants, spec, metric_warnings)
    name = spec.name or title or export_name(data if events is None else events)
    if spec.bayesian.enabled:
        results = with_bayesian(results, spec, name)
    sequential_warnings = dict.fromkeys(
        w for r in results if r.sequential for w in r.sequential.warnings
    )
    return AnalysisResult(
        name=name,
        control=spec.control,
        variants=variants,
        alpha=spec.alpha,
        unit=spec.unit,
        correction=spec.correction,
        input_kind=reduced.kind,
        mode=spec.mode,
        account=spec.account,
        srm=srm,
        exclusions=list(ledger.exclusions),
        rows=ledger.counts(),
        results=results,
        metric_notes=_by_metric(reduced.metrics, reduced.metric_notes, stats.metric_notes),
        notes=[*reduced.notes, *stats.notes],
        session_depth=reduced.session_depth,
        adoption=reduced.adoption,
        retention_curve=reduced.retention_curve,
        warnings=[
            *reduced.input_warnings,
            *_global_warnings(srm, ledger),
            *_stray_arm_warnings(stats.unit_counts),
            *stats.warnings,
            *sequential_warnings,
        ],
        export_end=reduced.export_end,
    )
