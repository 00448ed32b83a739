"""Data stage: exports → validated units → per-arm (and per-account) sufficient statistics.

Reads the input (``abkit.io``), rolls it up per unit (``abkit.units``), chooses the
default metrics when the config names none, and hands a :class:`Prepared` to the
statistics stage in :mod:`abkit.analysis`.  No test is run here.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from abkit import progress
from abkit.config import ExperimentSpec, MetricSpec
from abkit.defaults import ExportShape, default_event_metrics, default_paired_metrics
from abkit.errors import AbkitInputError
from abkit.io.assignments import ACCOUNT, ASSIGNED_AT, VARIANT, clean_assignments
from abkit.io.columns import Missing, guess, listed, missing_message, near_names, need
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data, Table, read_table
from abkit.stats import ArmSummary
from abkit.stats.account_quantile import AccountValues
from abkit.stats.cluster import AccountArm
from abkit.stats.quantile import LogBins, QuantileEstimate
from abkit.stats.shape import depth_shape
from abkit.units.accounts import SEATS, load_accounts, revenue_arms
from abkit.units.adoption import adoption_summary, segment_columns
from abkit.units.capping import cap_units
from abkit.units.covariates import (
    Covariates,
    covariate_moments,
    numeric_covariates,
    pre_period_covariates,
    require_covariates,
)
from abkit.units.events import (
    DEPTH,
    EventUnits,
    configured_export_end,
    derive_assignments,
    event_units,
    require_export,
)
from abkit.units.looks import LookSeries
from abkit.units.moments import account_arms, account_times, arm_summaries
from abkit.units.novelty import PeriodMoments, completed_periods, period_moments
from abkit.units.paired import PairedSums, paired_units
from abkit.units.quantiles import (
    ArmQuantiles,
    account_values,
    arm_quantiles,
    binned_arm_quantiles,
)
from abkit.units.references import DAY
from abkit.units.segments import (
    require_segments,
    segment_account_arms,
    segment_arms,
    segment_quantiles,
)
from abkit.units.summary import summary_arms, summary_look_series
from abkit.units.table import metric_columns, table_units


@dataclass
class Prepared:
    """What the data stage hands to the statistics stage."""

    kind: str
    metrics: tuple[MetricSpec, ...]
    variants: tuple[str, ...]
    arms: dict[str, dict[str, ArmSummary]]
    unit_counts: dict[str, int]
    # per metric: notes that describe (design, capping, immature windows) and warnings
    # that change how a result reads (a missing event, CUPED not applied, one-sided pairs)
    metric_notes: dict[str, list[str]] = field(default_factory=dict)
    metric_warnings: dict[str, list[str]] = field(default_factory=dict)
    session_depth: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    export_end: str | None = None
    looks: dict[str, LookSeries] = field(default_factory=dict)
    accounts: dict[str, dict[str, AccountArm]] = field(default_factory=dict)
    survival: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    adoption: dict[str, dict[str, Any]] = field(default_factory=dict)
    retention_curve: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    account_warnings: list[str] = field(default_factory=list)
    covariates: dict[str, Covariates] = field(default_factory=dict)
    novelty: dict[str, PeriodMoments] = field(default_factory=dict)
    # quantile metrics: per level (the profile and the metric's q), per variant
    quantiles: dict[str, ArmQuantiles] = field(default_factory=dict)
    # B2B quantile metrics: per variant, the event values with the account of each
    account_values: dict[str, dict[str, AccountValues]] = field(default_factory=dict)
    enrolment: tuple[dt.datetime, dt.datetime] | None = None  # first and last assignment
    # segment column → value → metric → variant → arm summary
    segments: dict[str, dict[str, dict[str, dict[str, ArmSummary]]]] = field(default_factory=dict)
    # quantile metrics: segment column → metric → value → variant → the arm's quantile
    segment_quantiles: dict[str, dict[str, dict[str, dict[str, QuantileEstimate]]]] = field(
        default_factory=dict
    )
    # B2B: segment column → metric → value → variant → per-account sums (aligned accounts)
    segment_accounts: dict[str, dict[str, dict[str, dict[str, AccountArm]]]] = field(
        default_factory=dict
    )
    # paired exports: metric → candidate → per-user sums of the paired values
    paired: dict[str, dict[str, PairedSums]] = field(default_factory=dict)
    # problems of the input the reader must see first (an event name no event has)
    input_warnings: list[str] = field(default_factory=list)


def _absent_events(metric: MetricSpec, missing: list[str], present: frozenset[str]) -> str:
    """The warning for events a metric counts that no used event of the export has: the
    near matches (a misspelt name) and the names the export does have."""
    parts = []
    for name in missing:
        guess = " or ".join(f"'{c}'" for c in near_names(name, present))
        parts.append(f"'{name}'" + (f" (did you mean {guess}?)" if guess else ""))
    return (
        f"EVENT NOT FOUND: metric '{metric.name}' counts {' and '.join(parts)}, but no used "
        f"event of the export has that name, so the metric is zero in every arm. Events in "
        f"the export: {listed(present)}. Fix the event name in the config."
    )


def _no_default_events(spec: ExperimentSpec, present: set[str]) -> str | None:
    """A warning when the output event every default AI metric counts per output does not
    occur in the export (its events are named otherwise, or the event column is another)."""
    output = spec.event_names.output
    if not present or output in present:
        return None
    found = listed(map(str, present))
    return (
        f"NO OUTPUT EVENTS: the default metrics count AI outputs as '{output}' events, and "
        f"none occurs in the event column '{spec.input.event}', so only retention and "
        "activity are analysed (the per-output rates, session depth, latency and tokens are "
        f"skipped). Events found: {found}. If the export names its outputs otherwise, set "
        "[events] output (and share, regenerate, error) to its names, or name the metrics "
        "in [[metrics]]; if this is not the event column, give the right one with --event "
        "or [input] event."
    )


def _unmapped_events(columns: list[str], spec: ExperimentSpec) -> tuple[str, str] | None:
    """When a table read as unit-level looks like an event export whose event or
    timestamp column has another name: the problem and the flags / keys that map them."""
    missing = [n for n in (need(spec, "timestamp"), need(spec, "event")) if n.column not in columns]
    present = {spec.unit, spec.variant, spec.input.timestamp, spec.input.event} & set(columns)
    if not missing or not (
        present - {spec.unit, spec.variant} or any(guess(n, columns, present) for n in missing)
    ):
        return None
    problem, hint = missing_message(
        [Missing("", tuple(missing), tuple(columns), frozenset(present))]
    )
    return "the table looks like an event export, but " + problem, hint


def _refuse_unmapped_events(table: Table, spec: ExperimentSpec) -> None:
    """A table detected as unit-level whose columns look like an event export with the
    event or timestamp column named otherwise, and whose unit ids repeat (one row per
    event), is refused with the flags that map it, instead of losing every repeated unit."""
    unmapped = _unmapped_events(table.columns, spec)
    if unmapped is None or spec.unit not in table.columns:
        return
    unit = pl.col(spec.unit)
    if not table.frame.select(unit.n_unique() < unit.len()).collect().item():
        return
    problem, hint = unmapped
    raise AbkitInputError(
        f"{problem} Its unit ids repeat (one row per event), so it cannot be a unit-level table.",
        source=table.label,
        hint=hint,
    )


def default_unit_metrics(
    table: Table, spec: ExperimentSpec, ids: set[str | None]
) -> tuple[MetricSpec, ...]:
    """Every numeric or boolean column that is not one of ``ids``: 0/1 → proportion,
    else mean."""
    schema = table.frame.collect_schema()
    cols = [c for c, t in schema.items() if c not in ids and (t.is_numeric() or t == pl.Boolean)]
    if not cols:
        unmapped = _unmapped_events(list(schema), spec)
        if unmapped is not None:
            raise AbkitInputError(unmapped[0], source=table.label, hint=unmapped[1])
        raise AbkitInputError(
            "the table has no numeric metric column besides the ids.",
            source=table.label,
            hint="Add [[metrics]] to the config naming the columns to analyse.",
        )
    binary = (
        table.frame.select(
            [pl.col(c).cast(pl.Float64).drop_nulls().is_in([0.0, 1.0]).all().alias(c) for c in cols]
        )
        .collect()
        .row(0, named=True)
    )
    return tuple(
        MetricSpec(name=c, type="proportion" if binary[c] else "mean", column=c) for c in cols
    )


def _detect_kind(table: Table, spec: ExperimentSpec) -> str:
    cols = set(table.columns)
    if "n" in cols and cols & {"mean", "sum", "num_sum"}:
        return "summary"
    if {spec.input.event, spec.input.timestamp} <= cols:
        return "events"
    if spec.input.input_id in cols:
        return "paired"
    return "units"


def _shape_by_variant(hist: pl.DataFrame, variants: tuple[str, ...]) -> dict[str, dict]:
    out = {}
    for v in variants:
        rows = hist.filter(pl.col(VARIANT) == v)
        out[v] = depth_shape(rows[DEPTH].to_numpy(), rows["sessions"].to_numpy()).to_dict()
    return out


def _prepare_events(
    assign_table: Table,
    events: Table,
    spec: ExperimentSpec,
    ledger: Ledger,
    derived: bool,
    accounts: Data | None = None,
) -> Prepared:
    name = "assignments (derived: one row per unit and variant)" if derived else "assignments"
    if not derived:  # every missing column of both tables in one message
        require_export(assign_table, events, spec)
    available = assign_table.columns
    segments = {
        m.name: segment_columns(m, available) for m in spec.metrics if m.kind.adoption_breakdown
    }
    covariates = _covariate_columns(spec, spec.metrics)
    require_covariates(assign_table, covariates, "assignments table")
    require_segments(
        assign_table, spec.segments.columns, "assignments table", _id_columns(spec), events
    )
    keep = tuple(
        dict.fromkeys(
            [
                *([spec.b2b.strata] if spec.b2b.strata else []),
                *(c for cols in segments.values() for c in cols),
                *covariates,
                *spec.segments.columns,
            ]
        )
    )
    assignments = clean_assignments(
        assign_table,
        spec,
        ledger,
        table_name=name,
        assigned_at=spec.input.assigned_at,
        keep=keep,
        assigned_by=configured_export_end(spec),
    )
    if covariates:  # numeric before any use, daily looks included
        covariate_units = numeric_covariates(assignments.units, covariates, assign_table)
        assignments = replace(assignments, units=covariate_units)
    notes: list[str] = []
    metrics = spec.metrics
    unknown: str | None = None
    if not metrics:
        cols = set(events.columns)
        events.require(need(spec, "unit"), need(spec, "timestamp"), need(spec, "event"))
        present = set(
            events.frame.select(pl.col(spec.input.event).cast(pl.String).unique())
            .collect()
            .to_series()
            .drop_nulls()
            .to_list()
        )
        metrics, skipped = default_event_metrics(spec, ExportShape(present, cols))
        notes.extend(skipped)
        unknown = _no_default_events(spec, present)
    sequential = spec.sequential.method is not None
    progress.step("one pass over the events (per-unit metrics)")
    built = event_units(
        assignments,
        events,
        spec,
        metrics,
        ledger,
        with_looks=sequential,
        covariates={
            m.name: columns
            for m in metrics
            if sequential and m.kind.adjustable() and (columns := _covariates_of(spec, m))
        },
    )
    notes.extend(built.notes)
    if not spec.metrics:
        metrics = _matured_defaults(metrics, built, assignments.units, notes)
    variants = assignments.variants
    built.units, capped = cap_units(built.units, metrics, variants)
    prepared = Prepared(
        kind="events (single table)" if derived else "events",
        metrics=metrics,
        variants=variants,
        arms=_unit_arms(built.units, metrics, variants),
        unit_counts=_unit_counts(built.units, variants),
        notes=notes,
        export_end=built.export_end.isoformat(),
        looks=built.looks,
    )
    if unknown is not None:
        prepared.input_warnings.append(unknown)
    _quantile_inputs(prepared, built, spec)
    for metric_name, lines in capped.items():
        prepared.metric_notes.setdefault(metric_name, []).extend(lines)
    for metric_name, info in built.eligibility.items():
        waiting = info["assigned"] - info["eligible"]
        if waiting and any(m.name == metric_name for m in metrics):
            prepared.metric_notes.setdefault(metric_name, []).append(
                f"{waiting:,} of {info['assigned']:,} units have not completed the window by the "
                f"export end ({prepared.export_end}) and are left out."
            )
    for m in metrics:
        missing = sorted(m.kind.referenced_events(m, spec.event_names.output) - built.event_names)
        if missing:  # said once, first among the warnings, naming the metric
            prepared.input_warnings.append(_absent_events(m, missing, built.event_names))
    for metric_name, hist in built.depth_histograms.items():
        prepared.session_depth[metric_name] = _shape_by_variant(hist, variants)
    if built.retention_curve is not None:
        for v in variants:
            rows = built.retention_curve.filter(pl.col(VARIANT) == v)
            prepared.retention_curve[v] = {
                "day": rows[DAY].to_list(),
                "eligible": rows["eligible"].to_list(),
                "active": rows["active"].to_list(),
            }
    for m in metrics:
        if m.kind.adoption_breakdown:
            prepared.adoption[m.name] = adoption_summary(built.units, m, segments[m.name])
    times = assignments.units.get_column(ASSIGNED_AT)
    prepared.enrolment = (times.min(), times.max())  # type: ignore[assignment]
    _account_structure(
        prepared, built.units, spec, built.export_end, accounts, ledger, built.values
    )
    _adjustment_inputs(prepared, built.units, spec)
    _segment_inputs(prepared, built.units, spec, assign_table.label, built.values)
    if built.periods is not None:
        _novelty_inputs(prepared, built.units, built.periods, spec, built.export_end)
    return prepared


def _matured_defaults(
    metrics: tuple[MetricSpec, ...],
    built: EventUnits,
    assignments: pl.DataFrame,
    notes: list[str],
) -> tuple[MetricSpec, ...]:
    """The default metrics without those whose window no unit has completed by the
    export end (D30 retention in a 30-day export), each left out with one note.

    A metric the user configured is never left out: it keeps its row, ``not
    computable``, with the reason.
    """
    kept = []
    first = assignments.get_column(ASSIGNED_AT).min()
    for m in metrics:
        info = built.eligibility.get(m.name)
        last_day = m.kind.maturity_day(m)
        if info is None or info["eligible"] or last_day is None:
            kept.append(m)
            continue
        when = (
            f"; the first units complete it on {(first + dt.timedelta(days=last_day + 1)):%Y-%m-%d}"
            if isinstance(first, dt.datetime)
            else ""
        )
        notes.append(
            f"default metric '{m.name}' left out: no unit has completed day {last_day} after "
            f"its assignment by the export end ({built.export_end:%Y-%m-%d}){when}."
        )
    return tuple(kept)


def _quantile_inputs(prepared: Prepared, built: EventUnits, spec: ExperimentSpec) -> None:
    """Each arm's quantile of a quantile metric's event values; the arm summary keeps
    the assigned units and the quantile as its value.  In B2B mode the accounts, not
    the units, are the clusters (:func:`_account_structure` reads the values)."""
    for m in prepared.metrics:
        reference = m.kind.value_reference(m)
        if reference is None or spec.mode == "b2b":
            continue
        if m.name in built.binned:
            bins = LogBins(spec.quantiles.relative_error)
            estimates, notes = binned_arm_quantiles(
                m, built.binned[m.name], prepared.variants, bins
            )
        else:
            estimates, notes = arm_quantiles(
                m, built.values[reference], built.units, prepared.variants
            )
        prepared.quantiles[m.name] = estimates
        assert m.q is not None
        prepared.arms[m.name] = {
            v: ArmSummary(n=prepared.unit_counts[v], mean=e.estimate, var=math.nan)
            for v, e in estimates[m.q].items()
        }
        prepared.metric_notes.setdefault(m.name, []).extend(notes)


def _covariate_columns(spec: ExperimentSpec, metrics: tuple[MetricSpec, ...]) -> tuple[str, ...]:
    """Every covariate named in ``[cuped]`` or by a metric, in order of first mention."""
    return tuple(
        dict.fromkeys([*spec.cuped.covariates, *(c for m in metrics for c in spec.covariates(m))])
    )


def _id_columns(spec: ExperimentSpec) -> dict[str, str]:
    """The id columns of the experiment and what each one identifies."""
    ids = {spec.unit: "unit id", spec.variant: "variant"}
    if spec.account is not None:
        ids[spec.account] = "account id"
    return ids


def _segment_inputs(
    prepared: Prepared,
    units: pl.DataFrame,
    spec: ExperimentSpec,
    label: str,
    values: dict[str, pl.DataFrame] | None = None,
) -> None:
    """Per-segment arm summaries of the user-level metrics, and each arm's quantile per
    segment for quantile metrics whose values came back one by one (``values``; not
    in B2B mode, where a segment holds too few accounts)."""
    if not spec.segments.columns:
        return
    values = values or {}
    quantiles = [m for m in prepared.metrics if m.kind.per_event]
    for m in quantiles:
        if spec.mode == "b2b" or m.kind.value_reference(m) not in values:
            why = (
                "not yet for quantiles in B2B mode"
                if spec.mode == "b2b"
                else "the histogram route ([quantiles] method) keeps no unit per value"
            )
            prepared.metric_notes.setdefault(m.name, []).append(
                f"not broken down by segment: {why}"
            )
    if spec.mode == "b2b":  # by account, in _account_structure
        return
    metrics = tuple(
        m for m in prepared.metrics if not m.kind.account_level and not m.kind.per_event
    )
    for column in spec.segments.columns:
        prepared.segments[column] = segment_arms(
            units, column, metrics, prepared.variants, spec.segments.max_values, label
        )
        prepared.segment_quantiles[column] = {
            m.name: segment_quantiles(
                m,
                values[reference],
                units,
                column,
                prepared.variants,
                spec.segments.max_values,
                label,
            )
            for m in quantiles
            if (reference := m.kind.value_reference(m)) in values
        }


def _novelty_inputs(
    prepared: Prepared,
    units: pl.DataFrame,
    per_period: pl.DataFrame,
    spec: ExperimentSpec,
    export_end: dt.datetime,
) -> None:
    """Per-arm moments of each metric in the periods since assignment (novelty)."""
    if spec.mode == "b2b":
        prepared.notes.append(
            "novelty: not checked in B2B mode (per-period effects over a few accounts are "
            "too noisy to show a trend)"
        )
        return
    periods, eligible, notes = completed_periods(units, spec.novelty, export_end)
    if periods < 2:
        prepared.notes.append(
            f"novelty: fewer than half of the units have completed 2 periods of "
            f"{spec.novelty.period_days} days by the export end; no trend can be estimated"
        )
        return
    prepared.notes.extend(notes)
    for m in prepared.metrics:
        if m.kind.adjustable() is not None:
            prepared.novelty[m.name] = period_moments(
                units, per_period, m, periods, eligible, prepared.variants
            )


def _covariates_of(spec: ExperimentSpec, metric: MetricSpec) -> dict[str, str]:
    """The unit-frame columns that adjust ``metric`` and the names reports give them:
    its covariate columns, then its own pre-period value (``[cuped] pre_days``)."""
    columns = {c: c for c in spec.covariates(metric)}
    if spec.cuped.pre_days is not None and spec.uses_pre_period(metric):
        columns |= pre_period_covariates(metric, spec.cuped.pre_days)
    return columns


def _adjustment_inputs(prepared: Prepared, units: pl.DataFrame, spec: ExperimentSpec) -> None:
    """Per-arm moments of each metric with its covariates (CUPED), or a note on why a
    metric with covariates stays unadjusted."""
    for m in prepared.metrics:
        columns = _covariates_of(spec, m)
        if not columns:
            continue
        if m.kind.adjustable() is None:
            prepared.metric_warnings.setdefault(m.name, []).append(
                f"CUPED covariates are not used for a metric of type '{m.type}'; the result "
                "is unadjusted"
            )
            continue
        if spec.mode == "b2b":  # adjusted per account, inside the account-level tests
            continue
        adjusted = covariate_moments(units, m, columns, prepared.variants)
        if adjusted is not None:  # how missing covariates were handled: notes
            prepared.covariates[m.name] = adjusted
            prepared.metric_notes.setdefault(m.name, []).extend(adjusted.notes)
        else:  # the adjustment asked for did not happen: a warning
            prepared.metric_warnings.setdefault(m.name, []).append(
                f"CUPED: no usable covariate among {', '.join(columns.values())}; unadjusted"
            )


def _account_structure(
    prepared: Prepared,
    units: pl.DataFrame,
    spec: ExperimentSpec,
    export_end: dt.datetime | None = None,
    accounts: Data | None = None,
    ledger: Ledger | None = None,
    values: dict[str, pl.DataFrame] | None = None,
) -> None:
    """Check how variants fall within accounts; in B2B mode sum each metric by account
    (and keep the account of each value of a quantile metric, from ``values``).

    An account whose users saw different variants is contaminated: it is named in a
    warning and, in B2B mode, left out of the account-level analysis.
    """
    if ACCOUNT not in units.columns:
        return
    per_account = units.group_by(ACCOUNT).agg(pl.col(VARIANT).n_unique().alias("v"))
    mixed = per_account.filter(pl.col("v") > 1).sort(ACCOUNT)[ACCOUNT].to_list()
    if mixed:
        shown = ", ".join(map(str, mixed[:10])) + (" …" if len(mixed) > 10 else "")
        prepared.account_warnings.append(
            f"CONTAMINATION: {len(mixed)} account(s) have users in more than one variant "
            f"({shown}). Randomisation by account was broken there"
            + (
                "; their users are left out of the account-level analysis."
                if spec.mode == "b2b"
                else "."
            )
        )
    elif spec.mode == "b2c" and per_account.height >= 2:
        prepared.account_warnings.append(
            f"every one of the {per_account.height} accounts saw a single variant: the "
            "randomisation looks account-level, so user-level tests overstate the evidence. "
            'Analyse with mode = "b2b" (or --mode b2b).'
        )
    if spec.mode != "b2b":
        return
    clean = units.filter(~pl.col(ACCOUNT).is_in(mixed)) if mixed else units
    nrr = [m for m in prepared.metrics if m.kind.from_accounts_table]
    if nrr and (accounts is None or ledger is None):
        raise AbkitInputError(
            f"metric '{nrr[0].name}' (net revenue retention) needs an accounts table with ARR "
            "at the start and end: pass --accounts (or accounts= in Python)."
        )
    table = None
    if accounts is not None and ledger is not None:
        owner = clean.group_by(ACCOUNT).agg(pl.col(VARIANT).first()).drop_nulls(ACCOUNT)
        table = load_accounts(read_table(accounts), spec, owner, ledger, need_revenue=bool(nrr))
    seats = (
        table.select(ACCOUNT, SEATS).drop_nulls()
        if table is not None and SEATS in table.columns
        else None
    )
    prepared.accounts = {
        m.name: account_arms(
            clean,
            m,
            prepared.variants,
            spec.b2b.strata,
            seats=seats if m.kind.adoption_breakdown else None,
            covariates=_covariates_of(spec, m) if m.kind.adjustable() else None,
        )
        for m in prepared.metrics
        if not m.kind.from_accounts_table and not m.kind.per_event
    }
    for m in prepared.metrics:
        reference = m.kind.value_reference(m)
        if reference is not None and values is not None:
            arms, notes = account_values(
                m, values[reference], clean, prepared.variants, spec.b2b.strata
            )
            prepared.account_values[m.name] = arms
            prepared.metric_notes.setdefault(m.name, []).extend(notes)
    for column in spec.segments.columns:
        prepared.segment_accounts[column] = {
            m.name: segment_account_arms(
                clean,
                column,
                m,
                prepared.variants,
                spec.b2b.strata,
                spec.segments.max_values,
                "the units",
            )
            for m in prepared.metrics
            if not m.kind.from_accounts_table and not m.kind.survival and not m.kind.per_event
        }
    if seats is not None and any(m.kind.adoption_breakdown for m in prepared.metrics):
        in_experiment = clean.select(pl.col(ACCOUNT).n_unique()).item()
        prepared.notes.append(
            f"adoption is a share of licensed seats for the {seats.height} account(s) with a "
            f"seat count (of {in_experiment}); the others use their users in the export"
        )
    for m in nrr:
        assert table is not None  # an nrr metric without an accounts table was refused above
        revenue = revenue_arms(table, prepared.variants)
        prepared.accounts[m.name] = revenue
        prepared.arms[m.name] = {v: ArmSummary.from_values(a.x, a.y) for v, a in revenue.items()}
    if export_end is not None:
        prepared.survival = {
            m.name: account_times(clean, m, prepared.variants, export_end)
            for m in prepared.metrics
            if m.kind.survival
        }
    # accounts, not users, were randomised: the sample-ratio check counts accounts
    counts = dict(
        clean.filter(pl.col(ACCOUNT).is_not_null())
        .group_by(VARIANT)
        .agg(pl.col(ACCOUNT).n_unique())
        .iter_rows()
    )
    prepared.unit_counts = {v: int(counts.get(v, 0)) for v in prepared.variants}
    prepared.notes.append("B2B mode: the sample-ratio check counts accounts per variant")


def _unit_arms(
    units: pl.DataFrame, metrics: tuple[MetricSpec, ...], variants: tuple[str, ...]
) -> dict[str, dict[str, ArmSummary]]:
    """Per-arm sufficient statistics of every metric computed from the units."""
    return arm_summaries(units, [m for m in metrics if not m.kind.from_accounts_table], variants)


def _unit_counts(units: pl.DataFrame, variants: tuple[str, ...]) -> dict[str, int]:
    counts = dict(units.group_by(VARIANT).len().iter_rows())
    return {v: int(counts.get(v, 0)) for v in variants}


def _prepare_units(
    table: Table, spec: ExperimentSpec, ledger: Ledger, accounts: Data | None = None
) -> Prepared:
    if spec.sequential.method is not None:
        raise AbkitInputError(
            "sequential analysis needs to know when each outcome happened: give an event "
            "export (assignments + events) or a summary table with a day column; a unit-level "
            "table has no time.",
            source=table.label,
        )
    not_outcomes = {
        spec.unit,
        spec.variant,
        spec.account,
        spec.input.assigned_at,
        *spec.cuped.covariates,
    }
    metrics = spec.metrics or default_unit_metrics(table, spec, not_outcomes)
    ids = {spec.unit: "unit", spec.variant: "variant", spec.account: "account"}
    for m in metrics:
        clash = next((c for c in metric_columns(m) if c in ids), None)
        if clash is not None:
            raise AbkitInputError(
                f"metric '{m.name}' reads column '{clash}', which is the {ids[clash]} id "
                "column, not an outcome.",
                source=table.label,
                hint="Point the metric at an outcome column (column / numerator / denominator).",
            )
    if spec.cuped.pre_days is not None:
        raise AbkitInputError(
            "[cuped] pre_days computes each metric over the days before assignment from an "
            "event export; a unit-level table has no events.",
            source=table.label,
            hint="Name the pre-period columns of the table in [cuped] covariates instead.",
        )
    covariates = _covariate_columns(spec, metrics)
    require_covariates(table, covariates, "unit-level table")
    require_segments(table, spec.segments.columns, "unit-level table", _id_columns(spec))
    outcome_segment = next(
        (c for c in spec.segments.columns for m in metrics if c in metric_columns(m)), None
    )
    if outcome_segment is not None:
        raise AbkitInputError(
            f"segment '{outcome_segment}' is also a metric's column: a segment defined by "
            "an outcome is not randomised.",
            source=table.label,
            column=outcome_segment,
        )
    for m in metrics:
        outcome = next((c for c in spec.covariates(m) if c in metric_columns(m)), None)
        if outcome is not None:
            raise AbkitInputError(
                f"metric '{m.name}' would be adjusted by its own outcome column '{outcome}'.",
                source=table.label,
                column=outcome,
                hint="A covariate must be measured before assignment (e.g. the same metric "
                "over the month before the experiment).",
            )
    keep = tuple(
        dict.fromkeys(
            [
                *(c for m in metrics for c in metric_columns(m)),
                *([spec.b2b.strata] if spec.b2b.strata else []),
                *covariates,
                *spec.segments.columns,
            ]
        )
    )
    assignments = clean_assignments(
        table, spec, ledger, table_name="units", keep=keep, repeated_rows="exclude"
    )
    units, notes = table_units(assignments, table, metrics)
    variants = assignments.variants
    units, capped = cap_units(units, metrics, variants)
    prepared = Prepared(
        kind="units",
        metrics=metrics,
        variants=variants,
        arms=_unit_arms(units, metrics, variants),
        unit_counts=_unit_counts(units, variants),
        notes=notes,
    )
    units = numeric_covariates(units, covariates, table)
    for metric_name, lines in capped.items():
        prepared.metric_notes.setdefault(metric_name, []).extend(lines)
    _account_structure(prepared, units, spec, accounts=accounts, ledger=ledger)
    _adjustment_inputs(prepared, units, spec)
    _segment_inputs(prepared, units, spec, table.label)
    return prepared


def _prepare_summary(table: Table, spec: ExperimentSpec, ledger: Ledger) -> Prepared:
    if spec.mode == "b2b":
        raise AbkitInputError(
            "B2B mode resamples accounts, so it needs one row per user (or per account) with "
            "the account column; a summary table has only per-variant totals.",
            source=table.label,
        )
    arms, metrics, variants = summary_arms(table, spec, ledger)
    first = arms[metrics[0].name]
    notes = [f"sample-ratio check uses the unit counts of metric '{metrics[0].name}'"]
    if spec.cuped.covariates or spec.cuped.pre_days or any(m.covariates for m in metrics):
        notes.append("CUPED needs unit-level data; a summary table's results are unadjusted")
    looks = {}
    if spec.sequential.method is not None:
        looks = summary_look_series(table, spec, metrics, variants)
    return Prepared(
        kind="summary",
        metrics=metrics,
        variants=variants,
        arms=arms,
        unit_counts={v: first[v].n for v in variants},
        notes=notes,
        looks=looks,
    )


def _paired_refusals(spec: ExperimentSpec, metrics: tuple[MetricSpec, ...]) -> str | None:
    """Why a paired export cannot be analysed with these settings, or None."""
    if spec.sequential.method is not None:
        return (
            "sequential monitoring follows an experiment as it runs; a paired (shadow or "
            "replay) run is analysed once, when it is complete"
        )
    if spec.mode == "b2b":
        return (
            "B2B mode resamples accounts of an experiment randomised by account; in a paired "
            "run every input is answered by both versions, and users are the clusters"
        )
    if spec.cuped.covariates or spec.cuped.pre_days or any(m.covariates for m in metrics):
        return (
            "CUPED adjusts two independent arms by a pre-experiment covariate; the pairing "
            "already removes the variance the two versions share (remove [cuped] settings)"
        )
    if spec.segments.columns:
        return "effects by segment are not yet offered for paired exports"
    capped = next((m.name for m in metrics if m.cap is not None), None)
    if capped is not None:
        return f"metric '{capped}' is capped, which is not yet offered for paired exports"
    return None


def _prepare_paired(
    table: Table, spec: ExperimentSpec, ledger: Ledger, accounts: Data | None
) -> Prepared:
    """A shadow or replay run: one row per input and version, compared within input
    (:mod:`abkit.units.paired`)."""
    if spec.metrics:
        metrics = spec.metrics
    else:
        ids = {spec.input.input_id, spec.unit, spec.variant, spec.account}
        columns = default_unit_metrics(table, spec, ids)
        metrics = default_paired_metrics(columns, spec, set(table.columns))
    refusal = _paired_refusals(spec, metrics) or (
        "an accounts table is read for net revenue retention, not for paired exports"
        if accounts is not None
        else None
    )
    if refusal is not None:
        raise AbkitInputError(f"paired export: {refusal}.", source=table.label)
    paired = paired_units(table, spec, metrics, ledger)
    return Prepared(
        kind="paired",
        metrics=metrics,
        variants=paired.variants,
        arms={},
        unit_counts={},
        metric_warnings=paired.notes,
        paired=paired.sums,
    )


def prepare(
    data: Data,
    spec: ExperimentSpec,
    ledger: Ledger,
    events: Data | None = None,
    kind: str | None = None,
    accounts: Data | None = None,
) -> Prepared:
    """Load and reduce the input to per-arm sufficient statistics."""
    if events is not None:
        return _prepare_events(
            read_table(data), read_table(events), spec, ledger, derived=False, accounts=accounts
        )
    table = read_table(data)
    kind = kind or spec.input.kind
    if kind == "auto":
        kind = _detect_kind(table, spec)
        if kind == "units":
            _refuse_unmapped_events(table, spec)
    if kind == "events":
        return _prepare_events(
            derive_assignments(table, spec), table, spec, ledger, derived=True, accounts=accounts
        )
    if kind == "summary":
        return _prepare_summary(table, spec, ledger)
    if kind == "paired":
        return _prepare_paired(table, spec, ledger, accounts)
    return _prepare_units(table, spec, ledger, accounts=accounts)
