"""Input stage: exports → validated units → per-unit rows and per-arm unit moments.

Reads the input (``abkit.io``), rolls it up per unit (``abkit.engine``), chooses the
default metrics when the config names none, and hands a :class:`Reduced` to the
analysis' design (:mod:`abkit.designs`), which builds the statistics its tests need.
No test is run here, and nothing here depends on which unit was randomised beyond the
design's :class:`InputRules`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import narwhals as nw
import polars as pl

from abkit import progress
from abkit.config import ExperimentSpec, MetricSpec
from abkit.defaults import ExportShape, default_event_metrics, default_paired_metrics
from abkit.engine.events import (
    DEPTH,
    EventUnits,
    RetentionCurve,
    configured_export_end,
    derive_assignments,
    event_units,
    require_export,
)
from abkit.engine.looks import LookSeries
from abkit.engine.quantile_looks import QuantileLooks
from abkit.engine.quantiles import BinnedValues
from abkit.errors import AbkitInputError
from abkit.inputs.adoption import AdoptionSummary, adoption_rates, segment_columns
from abkit.inputs.capping import cap_units
from abkit.inputs.covariates import covariates_of, numeric_covariates, require_covariates
from abkit.inputs.paired import PairedSums, paired_units
from abkit.inputs.segments import require_segments
from abkit.inputs.summary import summary_arms, summary_look_series
from abkit.inputs.surrogate_units import forecast_metrics
from abkit.inputs.table import metric_columns, table_units
from abkit.inputs.unit_table import UnitTable
from abkit.io.assignments import clean_assignments
from abkit.io.columns import Missing, guess, listed, missing_message, near_names, need
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data, Table, read_table
from abkit.metrics.base import Statistic
from abkit.metrics.references import DAY
from abkit.names import ASSIGNED_AT, VARIANT
from abkit.stats import ArmSummary
from abkit.stats.shape import DepthShape, depth_shape


class InputRules(Protocol):
    """What the input stage asks of the design chosen for the analysis
    (:class:`abkit.designs.base.Design`)."""

    @property
    def needs_accounts(self) -> bool: ...

    def admit(self, kind: str, label: str) -> None: ...

    def skipped_default(self, metric: MetricSpec, spec: ExperimentSpec) -> str | None: ...


@dataclass(frozen=True)
class UnitFrame:
    """One row per unit with its metric columns (capped, covariates numeric), and what
    a design needs besides: quantile metrics' event values (exact route) or histograms,
    the per-period aggregates of the novelty check, the accounts table."""

    table: UnitTable
    label: str
    export_end: dt.datetime | None = None
    values: dict[str, pl.DataFrame] = field(default_factory=dict)
    binned: dict[str, BinnedValues] = field(default_factory=dict)
    # novelty: UNIT, PERIOD, aggregates; in this process on Polars, kept on another engine
    periods: pl.DataFrame | nw.LazyFrame[Any] | None = None
    accounts: Data | None = None


@dataclass(frozen=True)
class Reduced:
    """What the input stage hands to the design: the input's metrics and variants, the
    per-arm unit moments, and the design's raw material (``units`` for events and
    unit-level tables, ``paired`` for paired exports, neither for summary tables).

    ``metric_notes`` describe (capping, immature windows), ``metric_warnings`` change
    how a result reads (a one-sided pair); ``input_warnings`` are problems of the input
    the reader must see first (an event name no event has).
    """

    kind: str
    metrics: tuple[MetricSpec, ...]
    variants: tuple[str, ...]
    arms: dict[str, dict[str, ArmSummary]]
    unit_counts: dict[str, int]
    metric_notes: dict[str, list[str]] = field(default_factory=dict)
    metric_warnings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_warnings: list[str] = field(default_factory=list)
    export_end: str | None = None
    looks: dict[str, LookSeries] = field(default_factory=dict)
    quantile_looks: dict[str, QuantileLooks] = field(default_factory=dict)
    session_depth: dict[str, dict[str, DepthShape]] = field(default_factory=dict)
    adoption: dict[str, AdoptionSummary] = field(default_factory=dict)
    retention_curve: dict[str, RetentionCurve] = field(default_factory=dict)
    enrolment: tuple[dt.datetime, dt.datetime] | None = None  # first and last assignment
    units: UnitFrame | None = None
    # paired exports: metric → candidate → per-user sums of the paired values
    paired: dict[str, dict[str, PairedSums]] = field(default_factory=dict)


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


def _shape_by_variant(hist: pl.DataFrame, variants: tuple[str, ...]) -> dict[str, DepthShape]:
    out = {}
    for v in variants:
        rows = hist.filter(pl.col(VARIANT) == v)
        out[v] = depth_shape(rows[DEPTH].to_numpy(), rows["sessions"].to_numpy())
    return out


def _prepare_events(
    assign_table: Table,
    events: Table,
    spec: ExperimentSpec,
    ledger: Ledger,
    derived: bool,
    rules: InputRules,
    accounts: Data | None = None,
) -> Reduced:
    name = "assignments (derived: one row per unit and variant)" if derived else "assignments"
    if not derived:  # every missing column of both tables in one message
        require_export(assign_table, events, spec, rules.needs_accounts)
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
        account_required=rules.needs_accounts,
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
        # skipped where the design cannot analyse it (a quantile without its accounts)
        metrics, skipped = default_event_metrics(
            spec, ExportShape(present, cols), lambda m: rules.skipped_default(m, spec)
        )
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
        values_with_accounts=rules.needs_accounts,
        week_one=(week_one := _week_one(spec, metrics, events)),
        covariates={
            m.name: columns
            for m in metrics
            if sequential and m.kind.adjustable() and (columns := covariates_of(spec, m))
        },
    )
    notes.extend(built.notes)
    if not spec.metrics:
        metrics = _matured_defaults(metrics, built, assignments.units, notes)
    if not week_one and (no_forecast := _no_forecast_note(spec, metrics, built)):
        notes.append(no_forecast)
    variants = assignments.variants
    table = UnitTable.on_engine(built.units)
    table.crossed.extend(built.crossed)
    table, capped = _capped(table, metrics, variants)
    export_end = built.export_end.isoformat()
    metric_notes: dict[str, list[str]] = {}
    for metric_name, lines in capped.items():
        metric_notes.setdefault(metric_name, []).extend(lines)
    for metric_name, info in built.eligibility.items():
        waiting = info["assigned"] - info["eligible"]
        if waiting and any(m.name == metric_name for m in metrics):
            metric_notes.setdefault(metric_name, []).append(
                f"{waiting:,} of {info['assigned']:,} units have not completed the window by the "
                f"export end ({export_end}) and are left out."
            )
    input_warnings = [] if unknown is None else [unknown]
    for m in metrics:
        missing = sorted(m.kind.referenced_events(m, spec.event_names.output) - built.event_names)
        if missing:  # said once, first among the warnings, naming the metric
            input_warnings.append(_absent_events(m, missing, built.event_names))
    retention: dict[str, RetentionCurve] = {}
    if built.retention_curve is not None:
        for v in variants:
            rows = built.retention_curve.filter(pl.col(VARIANT) == v)
            retention[v] = RetentionCurve(
                day=tuple(rows[DAY].to_list()),
                eligible=tuple(rows["eligible"].to_list()),
                active=tuple(rows["active"].to_list()),
            )
    times = assignments.units.get_column(ASSIGNED_AT)
    return Reduced(
        kind="events (single table)" if derived else "events",
        metrics=metrics,
        variants=variants,
        arms=_unit_arms(table, metrics, variants),
        unit_counts=table.counts(variants),
        metric_notes=metric_notes,
        notes=notes,
        input_warnings=input_warnings,
        export_end=export_end,
        looks=built.looks,
        quantile_looks=built.quantile_looks,
        session_depth={
            name: _shape_by_variant(hist, variants) for name, hist in built.depth_histograms.items()
        },
        adoption={
            m.name: adoption_rates(table, m, segments[m.name])
            for m in metrics
            if m.kind.adoption_breakdown
        },
        retention_curve=retention,
        enrolment=(times.min(), times.max()),  # type: ignore[arg-type]
        units=UnitFrame(
            table,
            assign_table.label,
            built.export_end,
            built.values,
            built.binned,
            built.periods,
            accounts,
        ),
    )


def _week_one(spec: ExperimentSpec, metrics: tuple[MetricSpec, ...], events: Table) -> bool:
    """Whether the units pass computes the first-week signals of the surrogate forecast:
    for retention metrics past the first week, in B2C mode.  The forecast reads every
    unit's signals in this process, so on another engine, where only aggregates come
    back unless asked, it runs when ``[surrogate] metrics`` names its metrics."""
    candidates = forecast_metrics(spec, metrics) if spec.mode == "b2c" else []
    return bool(candidates) and (events.on_polars or spec.surrogate.metrics is not None)


def _no_forecast_note(
    spec: ExperimentSpec, metrics: tuple[MetricSpec, ...], built: EventUnits
) -> str | None:
    """What a forecast left out on another engine would have covered: the candidate
    metrics whose window some unit has not completed."""
    if spec.mode != "b2c":
        return None
    waiting = [
        m.name
        for m in forecast_metrics(spec, metrics)
        if (info := built.eligibility.get(m.name)) and info["eligible"] < info["assigned"]
    ]
    if not waiting:
        return None
    return (
        "surrogate forecast of "
        + ", ".join(f"'{name}'" for name in waiting)
        + " not made: on an engine other than Polars it brings every unit's first-week "
        "signals into this process; name the metrics in [surrogate] metrics to make it."
    )


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


def _unit_arms(
    table: UnitTable, metrics: tuple[MetricSpec, ...], variants: tuple[str, ...]
) -> dict[str, dict[str, ArmSummary]]:
    """Per-arm sufficient statistics of every metric computed from the units (where
    the unit table is: on another engine only the per-arm aggregates come back)."""
    return table.arm_summaries(
        [m for m in metrics if m.kind.statistic is not Statistic.ACCOUNT_REVENUE], variants
    )


def _unit_counts(units: pl.DataFrame, variants: tuple[str, ...]) -> dict[str, int]:
    """Units per variant of a unit-level table, counted by comparing the variant with
    each name (a group-by over the text column costs several times more)."""
    counts = units.select(
        (pl.col(VARIANT) == v).sum().alias(str(i)) for i, v in enumerate(variants)
    )
    return {v: int(n) for v, n in zip(variants, counts.row(0), strict=True)}


def _capped(
    table: UnitTable, metrics: tuple[MetricSpec, ...], variants: tuple[str, ...]
) -> tuple[UnitTable, dict[str, list[str]]]:
    """The unit table with each capped metric winsorised (its pooled quantile needs
    every unit: on another engine the rows come back, and the table says so)."""
    if not any(m.cap is not None for m in metrics):
        return table, {}
    units, capped = cap_units(table.rows("capping"), metrics, variants)
    return UnitTable(rows_=units, crossed=table.crossed, engine=table.engine), capped


def _prepare_units(
    table: Table,
    spec: ExperimentSpec,
    ledger: Ledger,
    rules: InputRules,
    accounts: Data | None = None,
) -> Reduced:
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
        table,
        spec,
        ledger,
        table_name="units",
        keep=keep,
        repeated_rows="exclude",
        account_required=rules.needs_accounts,
    )
    units, notes = table_units(assignments, table, metrics)
    variants = assignments.variants
    units, capped = cap_units(units, metrics, variants)
    rows = UnitTable.of(numeric_covariates(units, covariates, table))
    return Reduced(
        kind="units",
        metrics=metrics,
        variants=variants,
        arms=_unit_arms(UnitTable.of(units, exact=False), metrics, variants),
        unit_counts=_unit_counts(units, variants),
        metric_notes={name: list(lines) for name, lines in capped.items()},
        notes=notes,
        units=UnitFrame(rows, table.label, accounts=accounts),
    )


def _prepare_summary(table: Table, spec: ExperimentSpec, ledger: Ledger) -> Reduced:
    arms, metrics, variants = summary_arms(table, spec, ledger)
    first = arms[metrics[0].name]
    notes = [f"sample-ratio check uses the unit counts of metric '{metrics[0].name}'"]
    if spec.cuped.covariates or spec.cuped.pre_days or any(m.covariates for m in metrics):
        notes.append("CUPED needs unit-level data; a summary table's results are unadjusted")
    looks = {}
    if spec.sequential.method is not None:
        looks = summary_look_series(table, spec, metrics, variants)
    return Reduced(
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
) -> Reduced:
    """A shadow or replay run: one row per input and version, compared within input
    (:mod:`abkit.inputs.paired`)."""
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
    return Reduced(
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
    rules: InputRules,
    events: Data | None = None,
    kind: str | None = None,
    accounts: Data | None = None,
) -> Reduced:
    """Read the input and reduce it to per-unit rows or per-arm sums (no test is run).

    ``rules`` is the analysis' design: it refuses input kinds it cannot analyse, says
    whether every unit needs its account, and which default metrics it cannot take.
    """
    if events is not None:
        return _prepare_events(
            read_table(data),
            read_table(events),
            spec,
            ledger,
            derived=False,
            rules=rules,
            accounts=accounts,
        )
    table = read_table(data)
    kind = kind or spec.input.kind
    if kind == "auto":
        kind = _detect_kind(table, spec)
        if kind == "units":
            _refuse_unmapped_events(table, spec)
    rules.admit(kind, table.label)
    if kind == "events":
        return _prepare_events(
            derive_assignments(table, spec, rules.needs_accounts),
            table,
            spec,
            ledger,
            derived=True,
            rules=rules,
            accounts=accounts,
        )
    if kind == "summary":
        return _prepare_summary(table, spec, ledger)
    if kind == "paired":
        return _prepare_paired(table, spec, ledger, accounts)
    return _prepare_units(table, spec, ledger, rules, accounts=accounts)
