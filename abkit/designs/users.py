"""Users randomised one by one (B2C): tests on per-arm moments of per-user values.

Means and rates by Welch / two-proportion tests, ratios by the delta method, all
optionally regression-adjusted (CUPED); quantiles of event values with the variance
clustered by user; effects by segment; sequential monitoring and the novelty check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abkit.analysis.quantile_monitoring import monitor_quantile
from abkit.analysis.segments import SegmentBreakdown, quantile_segment_breakdown, segment_breakdown
from abkit.analysis.sequential import SequentialResult, monitor
from abkit.analysis.surrogate import forecasts
from abkit.config import ExperimentSpec, MetricSpec
from abkit.designs.base import Design, Notes, Statistics, Tested, refuse, unadjustable
from abkit.engine.looks import LookSeries
from abkit.engine.quantile_looks import QuantileLooks
from abkit.engine.week_one import COLUMNS
from abkit.inputs.covariates import Covariates, covariate_moments, covariates_of
from abkit.inputs.moments import contamination
from abkit.inputs.novelty import PeriodMoments, novelty_moments
from abkit.inputs.prepare import Reduced, UnitFrame
from abkit.inputs.quantiles import ArmQuantiles, arm_quantiles, binned_arm_quantiles
from abkit.inputs.segments import segment_quantiles
from abkit.inputs.surrogate_units import forecast_metrics, training_table
from abkit.io.exclusions import Ledger
from abkit.metrics.base import Statistic, value_column
from abkit.names import VARIANT
from abkit.result import QuantilePoint
from abkit.stats import ArmSummary
from abkit.stats.cuped import or_unadjusted
from abkit.stats.fixed_horizon import ratio_variance
from abkit.stats.novelty import NoveltyResult, novelty_test
from abkit.stats.quantile import LogBins, QuantileEstimate, quantile_test
from abkit.stats.surrogate import SurrogateForecast

EVENT_VALUES, OWN = Statistic.EVENT_VALUES, Statistic.OWN


@dataclass(frozen=True)
class UserStatistics(Statistics):
    """Per metric: the arms' unit moments (in :class:`Statistics`), CUPED's moments
    with covariates, a quantile metric's quantiles per level and arm, the daily looks
    (a quantile metric's apart: its arms' quantiles at each look),
    the per-period moments of the novelty check; per segment column and value the arms
    of every mean-type metric, and each arm's quantile of quantile metrics."""

    covariates: dict[str, Covariates] = field(default_factory=dict)
    # metric → variant → the statistic a metric type declares instead of the moments
    declared: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    quantiles: dict[str, ArmQuantiles] = field(default_factory=dict)
    looks: dict[str, LookSeries] = field(default_factory=dict)
    quantile_looks: dict[str, QuantileLooks] = field(default_factory=dict)
    novelty: dict[str, PeriodMoments] = field(default_factory=dict)
    # retention metric → treatment → the surrogate forecast of its effect
    surrogates: dict[str, dict[str, SurrogateForecast]] = field(default_factory=dict)
    # segment column → value → metric → variant → arm summary
    segments: dict[str, dict[str, dict[str, dict[str, ArmSummary]]]] = field(default_factory=dict)
    # segment column → metric → value → variant → the arm's quantile
    segment_quantiles: dict[str, dict[str, dict[str, dict[str, QuantileEstimate]]]] = field(
        default_factory=dict
    )


class Users(Design[UserStatistics]):
    """Users are the randomisation unit (the default, ``mode = "b2c"``)."""

    name = "users"

    def check(self, spec: ExperimentSpec) -> None:
        account_level = [m for m in spec.metrics if m.kind.account_level]
        if account_level:
            refuse(
                f"{account_level[0].type} is an account-level metric: analyse it with "
                'mode = "b2b" and an account column.'
            )
        if spec.surrogate.training is not None:  # a wrong file fails before the events pass
            training_table(spec, ())
        if spec.sequential.method is None:
            return
        own = [m for m in spec.metrics if m.kind.statistic is OWN]
        if own:
            refuse(
                f"metric '{own[0].name}' is of type '{own[0].type}', which tests a statistic "
                "of its own at a fixed horizon only; analyse it without sequential monitoring."
            )
        capped = [m.name for m in spec.metrics if m.cap is not None]
        if capped:
            refuse(
                f"metric '{capped[0]}' is capped, and capping is not offered with sequential "
                "monitoring (a pooled-quantile threshold would move from look to look); "
                "analyse the capped metric once, at a fixed horizon."
            )

    # --- statistics ---------------------------------------------------------------------

    def statistics(self, reduced: Reduced, spec: ExperimentSpec, ledger: Ledger) -> UserStatistics:
        frame = reduced.units
        if frame is None:  # a summary table: its arms and looks are all there is
            return UserStatistics(reduced.arms, reduced.unit_counts, looks=reduced.looks)
        notes = Notes()
        arms = dict(reduced.arms)
        quantiles = _quantiles(reduced, frame, spec, arms, notes)
        mixed, accounts = frame.table.accounts()
        if mixed:
            notes.warnings.append(contamination(mixed, "."))
        elif accounts >= 2:
            notes.warnings.append(
                f"every one of the {accounts} accounts saw a single variant: the "
                "randomisation looks account-level, so user-level tests overstate the "
                'evidence. Analyse with mode = "b2b" (or --mode b2b).'
            )
        covariates = _covariates(reduced, frame, spec, notes)
        declared = {
            m.name: _own_statistic(m, frame, reduced.variants)
            for m in reduced.metrics
            if m.kind.statistic is OWN
        }
        segments, by_quantile = _segments(reduced, frame, spec, notes)
        novelty = _novelty(reduced, frame, spec, notes)
        surrogates = _surrogates(reduced, frame, spec, notes)
        crossing = frame.table.crossing_note()
        if crossing is not None:
            notes.notes.append(crossing)
        return UserStatistics(
            arms,
            reduced.unit_counts,
            notes.metric_notes,
            notes.metric_warnings,
            notes.notes,
            notes.warnings,
            covariates=covariates,
            declared=declared,
            quantiles=quantiles,
            looks=reduced.looks,
            quantile_looks=reduced.quantile_looks,
            novelty=novelty,
            surrogates=surrogates,
            segments=segments,
            segment_quantiles=by_quantile,
        )

    # --- tests --------------------------------------------------------------------------

    def compare(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec, variant: str
    ) -> Tested:
        arms = stats.arms[metric.name]
        counts = arms[spec.control].n, arms[variant].n
        if metric.kind.statistic is EVENT_VALUES:
            assert metric.q is not None
            by_arm = stats.quantiles[metric.name][metric.q]
            comp = quantile_test(by_arm[spec.control], by_arm[variant], spec.alpha)
            return Tested(comp, *counts)
        if metric.kind.statistic is OWN:  # a statistic of the type's own, and its test
            own = stats.declared[metric.name]
            found = metric.kind.own_test(own[spec.control], own[variant], spec.alpha)
            return Tested(found.comparison, *counts, judged=found.judged)
        comp = metric.kind.fixed_test(arms[spec.control], arms[variant], spec.alpha)
        covariates = stats.covariates.get(metric.name)
        if covariates is None:
            return Tested(comp, *counts)
        adjusted = covariates.test(
            spec.control, variant, spec.alpha, welch_df=math.isfinite(comp.df)
        )
        comp, adjustment = or_unadjusted(comp, adjusted)
        return Tested(comp, *counts, adjustment=adjustment)

    def monitor(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec, variant: str
    ) -> SequentialResult | None:
        by_quantile = stats.quantile_looks.get(metric.name)
        if by_quantile is not None:
            return monitor_quantile(
                metric, by_quantile, spec.control, variant, spec.sequential, spec.alpha
            )
        series = stats.looks.get(metric.name)
        if series is None:
            return None
        return monitor(metric, series, spec.control, variant, spec.sequential, spec.alpha)

    def novelty(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec, variant: str
    ) -> NoveltyResult | None:
        periods = stats.novelty.get(metric.name)
        if periods is None:
            return None
        return novelty_test(
            periods.arms[spec.control],
            periods.arms[variant],
            periods.periods,
            periods.ratio,
            spec.novelty.period_days or 0,
            spec.alpha,
        )

    def surrogate(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec, variant: str
    ) -> SurrogateForecast | None:
        return stats.surrogates.get(metric.name, {}).get(variant)

    def segments(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec, variant: str
    ) -> tuple[SegmentBreakdown, ...]:
        means = tuple(
            segment_breakdown(
                column, by_value, metric, spec.control, variant, spec.segments, spec.alpha
            )
            for column, by_value in stats.segments.items()
            if metric.kind.statistic in (Statistic.MOMENTS, Statistic.RATIO_MOMENTS)
        )
        quantiles = tuple(
            quantile_segment_breakdown(
                column, by_metric[metric.name], spec.control, variant, spec.segments, spec.alpha
            )
            for column, by_metric in stats.segment_quantiles.items()
            if metric.name in by_metric
        )
        return means + quantiles

    def profile(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec, variant: str
    ) -> tuple[QuantilePoint, ...]:
        """The difference of the arms' quantiles at every level of the profile (pointwise
        intervals: a description of where in the distribution the change lies)."""
        levels = stats.quantiles.get(metric.name, {})
        return tuple(
            QuantilePoint(
                q=q,
                **quantile_test(arms[spec.control], arms[variant], spec.alpha).effect_fields(),
            )
            for q, arms in levels.items()
        )

    def spread(
        self, metric: MetricSpec, stats: UserStatistics, spec: ExperimentSpec
    ) -> dict[str, Any]:
        """σ of a user's value (for a ratio, of its delta-method linearisation; for a
        quantile, n·se² of its clustered standard error), pooled over the arms."""
        if metric.kind.statistic is OWN:
            refuse(
                f"metric '{metric.name}' is of type '{metric.type}', whose statistic is its "
                "own: power analysis sizes means, rates, ratios and quantiles."
            )
        name = metric.name
        arms = stats.arms[name]
        levels = stats.quantiles.get(name)
        if levels is not None:
            assert metric.q is not None
            per_unit = [a.n * levels[metric.q][v].se ** 2 for v, a in arms.items()]
        else:
            per_unit = [
                a.n * ratio_variance(a) if metric.kind.is_ratio else a.var for a in arms.values()
            ]
        out: dict[str, Any] = {
            "sd": math.sqrt(float(np.mean(per_unit))),
            "current": float(np.mean([a.n for a in arms.values()])),
            "baseline": arms[spec.control].value,
            "source": f"per-user spread of '{name}' in the data",
        }
        covariates = stats.covariates.get(name)
        if covariates is not None:
            reductions = []
            for v in list(arms)[1:]:
                _, adjustment = covariates.test(spec.control, v, spec.alpha)
                if adjustment is not None:
                    reductions.append(adjustment.variance_reduction)
            if reductions:
                out["cuped"] = float(np.mean(reductions))
        return out

    def assumption_warnings(self, metric: MetricSpec, stats: UserStatistics) -> list[str]:
        arms = stats.arms.get(metric.name, {})
        return metric.kind.assumption_warnings(arms) if arms else []


def _quantiles(
    reduced: Reduced,
    frame: UnitFrame,
    spec: ExperimentSpec,
    arms: dict[str, dict[str, ArmSummary]],
    notes: Notes,
) -> dict[str, ArmQuantiles]:
    """Each arm's quantiles of a quantile metric's event values (exact route: order
    statistics of the values; histogram route: from the binned counts); the arm summary
    keeps the assigned units and the quantile as its value."""
    out = {}
    for m in reduced.metrics:
        reference = m.kind.value_reference(m)
        if m.kind.statistic is not EVENT_VALUES or reference is None:
            continue
        if m.name in frame.binned:
            bins = LogBins(spec.quantiles.relative_error)
            estimates, lines = binned_arm_quantiles(m, frame.binned[m.name], reduced.variants, bins)
        else:
            estimates, lines = arm_quantiles(
                m, frame.values[reference], frame.table.rows("exact quantiles"), reduced.variants
            )
        out[m.name] = estimates
        assert m.q is not None
        arms[m.name] = {
            v: ArmSummary(n=reduced.unit_counts[v], mean=e.estimate, var=math.nan)
            for v, e in estimates[m.q].items()
        }
        notes.note(m.name, *lines)
    return out


def _covariates(
    reduced: Reduced, frame: UnitFrame, spec: ExperimentSpec, notes: Notes
) -> dict[str, Covariates]:
    """Per-arm moments of each metric with its covariates (CUPED), or a note on why a
    metric with covariates stays unadjusted."""
    out = {}
    for m in reduced.metrics:
        columns = covariates_of(spec, m)
        if not columns:
            continue
        if m.kind.adjustable() is None:
            notes.warn(m.name, unadjustable(m))
            continue
        adjusted = covariate_moments(frame.table, m, columns, reduced.variants)
        if adjusted is not None:  # how missing covariates were handled: notes
            out[m.name] = adjusted
            notes.note(m.name, *adjusted.notes)
        else:  # the adjustment asked for did not happen: a warning
            notes.warn(
                m.name,
                f"CUPED: no usable covariate among {', '.join(columns.values())}; unadjusted",
            )
    return out


def _own_statistic(
    metric: MetricSpec, frame: UnitFrame, variants: tuple[str, ...]
) -> Mapping[str, Any]:
    """The per-arm statistic a type of :attr:`Statistic.OWN` builds from the units:
    by aggregate queries where the unit table is when the type offers them
    (:meth:`~abkit.metrics.base.MetricType.table_statistic`), else from the units
    brought back (recorded with the metric type as the reason)."""
    statistic = metric.kind.table_statistic(metric, frame.table, variants)
    if statistic is not None:
        return statistic
    units = frame.table.rows(f"metric type '{metric.type}'")
    statistic = metric.kind.unit_statistic(metric, units, variants)
    if statistic is None:
        raise TypeError(
            f"metric type '{metric.type}' declares Statistic.OWN but its unit_statistic "
            "returns None"
        )
    return statistic


def _segments(
    reduced: Reduced, frame: UnitFrame, spec: ExperimentSpec, notes: Notes
) -> tuple[
    dict[str, dict[str, dict[str, dict[str, ArmSummary]]]],
    dict[str, dict[str, dict[str, dict[str, QuantileEstimate]]]],
]:
    """Per-segment arm summaries of the mean-type metrics, and each arm's quantile per
    segment for quantile metrics whose values came back one by one."""
    if not spec.segments.columns:
        return {}, {}
    quantiles = [m for m in reduced.metrics if m.kind.statistic is EVENT_VALUES]
    for m in quantiles:
        if m.kind.value_reference(m) not in frame.values:
            notes.note(
                m.name,
                "not broken down by segment: the histogram route ([quantiles] method) "
                "keeps no unit per value",
            )
    for m in reduced.metrics:
        if m.kind.statistic is OWN:
            notes.note(
                m.name,
                f"not broken down by segment: metric type '{m.type}' tests a statistic of "
                "its own, which abkit does not split by segment",
            )
    metrics = tuple(
        m
        for m in reduced.metrics
        if m.kind.statistic in (Statistic.MOMENTS, Statistic.RATIO_MOMENTS)
    )
    by_mean, by_quantile = {}, {}
    for column in spec.segments.columns:
        by_mean[column] = frame.table.segment_arms(
            column, metrics, reduced.variants, spec.segments.max_values, frame.label
        )
        by_quantile[column] = {
            m.name: segment_quantiles(
                m,
                frame.values[reference],
                frame.table.rows("quantiles by segment"),
                column,
                reduced.variants,
                spec.segments.max_values,
                frame.label,
            )
            for m in quantiles
            if (reference := m.kind.value_reference(m)) in frame.values
        }
    return by_mean, by_quantile


def _novelty(
    reduced: Reduced, frame: UnitFrame, spec: ExperimentSpec, notes: Notes
) -> dict[str, PeriodMoments]:
    """Per-arm moments of each metric in the periods since assignment (novelty)."""
    if frame.periods is None or frame.export_end is None:
        return {}
    moments, lines = novelty_moments(
        frame.table,
        frame.periods,
        spec.novelty,
        frame.export_end,
        reduced.metrics,
        reduced.variants,
    )
    notes.notes.extend(lines)
    return moments


def _surrogates(
    reduced: Reduced, frame: UnitFrame, spec: ExperimentSpec, notes: Notes
) -> dict[str, dict[str, SurrogateForecast]]:
    """The surrogate forecast of each retention metric not yet matured for every unit,
    from the unit table's first-week signals (:mod:`abkit.analysis.surrogate`)."""
    metrics = forecast_metrics(spec, reduced.metrics)
    if not metrics or COLUMNS["d1"] not in frame.table.columns:
        return {}
    training = training_table(spec, metrics)
    columns = [VARIANT, *COLUMNS.values(), *(value_column(m) for m in metrics)]
    units = frame.table.rows("the surrogate forecast").select(columns)
    found, lines = forecasts(units, metrics, spec, reduced.variants, training)
    for name, text in lines.items():
        notes.warn(name, *text)
    return found
