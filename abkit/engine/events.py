"""Event-level exports → one row per unit with metric numerators and denominators.

The pipeline runs on the events' engine (Polars, DuckDB, Spark, SQLFrame; written once
against Narwhals) and stays lazy until the per-unit aggregation: events are joined to
the assignments and annotated with an exclusion reason, then one pass (``_Queries``)
returns the exclusion counts, the per-unit aggregates, the per-day counts behind the
export end, the retention curve's daily activity and the session-depth histograms.
Large Polars exports are reduced in parts of disjoint units whose results combine
exactly (:func:`abkit.engine.backend.partitions`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import narwhals as nw
import polars as pl

from abkit.config import ExperimentSpec, MetricSpec
from abkit.engine.backend import (
    collect_all,
    days_between,
    distinct,
    engine_name,
    materialise,
    partitions,
    require_utc,
    ship,
    with_days_between,
)
from abkit.engine.event_columns import column_sources, optional_columns, value_out_of_range
from abkit.engine.looks import (
    LookSchedule,
    LookSeries,
    engine_look_series,
    event_look_series,
    schedule_for,
    with_look,
)
from abkit.engine.quantile_looks import (
    QuantileLooks,
    engine_quantile_look_series,
    quantile_look_series,
)
from abkit.engine.quantiles import (
    EVENTS,
    KEY,
    BinnedValues,
    below_query,
    event_values,
    histogram_query,
    profile_levels,
    quantile_bins,
    split_sums,
)
from abkit.engine.week_one import week_one_aggregates, with_week_one_signals
from abkit.errors import AbkitInputError
from abkit.interrupt import is_interrupt
from abkit.io.assignments import ROW_UNIT, Assignments
from abkit.io.columns import Need, account_need, listed, near_names, need
from abkit.io.exclusions import Ledger, first_reason
from abkit.io.readers import BLANK_LINE, Table, blank_row, reader_error, require_all
from abkit.io.timestamps import (
    EARLIEST,
    LATEST,
    OUT_OF_RANGE,
    parse_timestamp,
    with_timestamp,
)
from abkit.metrics.base import component_columns, pre_period_column, value_column
from abkit.metrics.references import (
    DAY,
    EVENT,
    LOOK,
    PERIOD,
    SESSION,
    TS,
    VALUE,
    columns_read,
    count_where,
    event_column,
    needs_session,
    slot,
)
from abkit.names import ASSIGNED_AT, ORDER, REASON, ROW, UNIT, VARIANT
from abkit.stats.quantile import LogBins

DEPTH = "depth"
_DAY_US = 86_400_000_000
_TS_RAW, _EXCLUDED = "_ts_raw", "_excluded"
NULL_UNIT = "event with null unit id"
_LAST_ACTIVE = "_last_active_day"
_LAST_DAY = "_last_complete_day"
_END = "_export_end"
_EVENTS, _NO_SESSION = "_events", "_no_session"  # per unit: valid events, those without a session
_COPIES = "_copies"  # collapsed events (another engine): how many input rows each stands for
_BOOKKEEPING = [_LAST_ACTIVE, _EVENTS, _NO_SESSION]
DUPLICATE_EVENT = "duplicate event (same unit, time, name, session and values)"

EVENT_BEFORE_ASSIGNMENT = "event before assignment (ignored for outcomes)"
PRE_PERIOD_EVENT = "event in the CUPED pre-period before assignment (used only for covariates)"


@dataclass
class EventUnits:
    """Per-unit metric columns built from events, with what was learnt on the way."""

    units: nw.LazyFrame[Any]  # one row per assigned unit (see ``unit_table``)
    export_end: dt.datetime
    depth_histograms: dict[str, pl.DataFrame] = field(default_factory=dict)
    retention_curve: pl.DataFrame | None = None
    event_names: frozenset[str] = frozenset()  # names among the valid events
    eligibility: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    looks: dict[str, LookSeries] = field(default_factory=dict)
    quantile_looks: dict[str, QuantileLooks] = field(default_factory=dict)
    # novelty: UNIT, PERIOD, the metrics' aggregates: a pl.DataFrame on Polars, a
    # nw.LazyFrame kept on another engine
    periods: pl.DataFrame | nw.LazyFrame[Any] | None = None
    # quantiles, exact route: event column → its valid events' UNIT and VALUE (or null)
    values: dict[str, pl.DataFrame] = field(default_factory=dict)
    # quantiles, histogram route: metric name → its arms' histograms and unit sums
    binned: dict[str, BinnedValues] = field(default_factory=dict)
    # rows brought back from another engine into this process: why, and how many
    crossed: list[tuple[str, int]] = field(default_factory=list)


def event_timestamps(
    events: Table, column: str, alias: str, fmt: str | None = None
) -> nw.LazyFrame[Any]:
    """The events with ``column`` read as a UTC timestamp into ``alias``.

    On Polars any accepted form is parsed (:func:`abkit.io.timestamps.parse_timestamp`,
    unparseable values become null and are counted); on other engines the column must
    already be a timestamp or a date (cast it in the query that makes the frame).
    """
    if events.on_polars:
        # parsed once: every query of the pass over the events reads the cached column
        parsed = with_timestamp(events.frame, column, alias, fmt, events.label, "event timestamp")
        return nw.from_native(parsed.cache())
    kind = events.data.collect_schema()[column]
    if kind != nw.Date and not isinstance(kind, nw.Datetime):
        raise AbkitInputError(
            f"the timestamp column has type {kind}; on the {engine_name(events.data)} engine "
            "abkit reads timestamps and dates only.",
            source=events.label,
            column=column,
            hint=f"Cast it in the query, e.g. CAST({column} AS TIMESTAMP).",
        )
    # the session's own spelling of UTC ('Etc/UTC' on a default Linux session): Narwhals
    # casts only to the connection's time zone, named as the connection names it
    utc = require_utc(events.data, events.label)
    return events.data.with_columns(nw.col(column).cast(nw.Datetime("us", utc)).alias(alias))


def require_export(
    assignments: Table, events: Table, spec: ExperimentSpec, account_required: bool
) -> None:
    """The id, time and event columns of an assignments table and an events table, all
    missing ones named in one error (``account_required``: accounts were randomised)."""
    assignment_needs = [need(spec, "unit"), need(spec, "variant"), need(spec, "assigned_at")]
    if spec.account is not None:
        assignment_needs.append(account_need(spec, account_required))
    event_needs: list[str | Need] = [need(spec, "unit"), need(spec, "timestamp")]
    event_needs.append(need(spec, "event"))
    require_all((assignments, [*assignment_needs]), (events, event_needs))


def _require_event(events: Table, column: str, name: str, option: str) -> None:
    """Refuse an event name that no event of ``events`` has, with the near matches."""
    (names,) = collect_all([events.data.select(nw.col(column).cast(nw.String)).unique()])
    present = sorted(str(v) for v in names.get_column(column).drop_nulls())
    if name in present:
        return
    close = near_names(name, present)
    guess = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise AbkitInputError(
        f"no event is named {name!r} ({option}), so no unit has an exposure time.{guess} "
        f"Events in the export: {listed(present)}.",
        source=events.label,
        column=column,
    )


def derive_assignments(events: Table, spec: ExperimentSpec, account_required: bool) -> Table:
    """Assignments from an events table that carries the variant column.

    One row per (unit, variant) with the time of the unit's first exposure: the
    first ``[input] exposure_event`` if set, else its first event of any kind.
    A unit seen in two variants yields two rows and is excluded downstream.
    """
    inp = spec.input
    events.require(
        need(spec, "unit"),
        need(spec, "variant"),
        need(spec, "timestamp"),
        *([need(spec, "event")] if inp.exposure_event else []),
        *([account_need(spec, account_required)] if spec.account else []),
    )
    frame = event_timestamps(events, inp.timestamp, "_first", inp.timestamp_format).filter(
        ~nw.col(spec.variant).is_null() & ~nw.col(spec.unit).is_null()
    )
    if inp.exposure_event:
        _require_event(
            events, inp.event, inp.exposure_event, "--exposure-event or [input] exposure_event"
        )
        frame = frame.filter(nw.col(inp.event).cast(nw.String) == inp.exposure_event)
    keys = [spec.unit, spec.variant]
    aggs = [nw.col("_first").min().alias(inp.assigned_at)]
    if spec.account:
        aggs.append(nw.col(spec.account).min())
    derived = frame.group_by(keys).agg(aggs).sort(keys)
    label = f"assignments derived from {events.label}"
    if events.on_polars:  # computed once: the validation reads it twice when a row is excluded
        try:
            derived = derived.collect().lazy()
        except pl.exceptions.PolarsError as exc:
            raise reader_error(exc, label) from None
    return Table(derived, label)


def _needs(metrics: tuple[MetricSpec, ...], output_event: str) -> tuple[bool, list[str]]:
    """Whether the metrics read session ids, and which event columns they read."""
    refs = [r for m in metrics for r in m.kind.references(m, output_event)]
    columns = sorted({c for r in refs for c in columns_read(r)})
    return any(map(needs_session, refs)), columns


def _id_columns(events: Table, metrics: tuple[MetricSpec, ...], numeric: list[str]) -> list[str]:
    """The event columns the metrics read as ids (:meth:`MetricType.id_columns`), each
    required of the events table; a column also read as a number keeps its number slot."""
    out = []
    for m in metrics:
        for column in m.kind.id_columns(m):
            events.require(column, what=f"id column read by metric '{m.name}'")
            if column not in numeric and column not in out:
                out.append(column)
    return sorted(out)


def _event_columns(
    events: Table,
    spec: ExperimentSpec,
    need_session: bool,
    values: dict[str, nw.Expr],
    unit_as_text: bool,
    ids: list[str],
) -> nw.LazyFrame[Any]:
    """The events reduced to abkit's columns: UNIT, the raw and the parsed timestamp,
    EVENT, [SESSION], one slot per event column read (numbers as Float64, ids as they
    are).  Nothing reads the other columns, nor numbers the rows: a Parquet scan then
    decodes only these columns, which each part of a large export on Polars
    (:func:`~abkit.engine.backend.partitions`) reads again before keeping its units'
    rows (blank lines are told apart afterwards, by :func:`_with_blank_lines`)."""
    inp = spec.input
    frame = event_timestamps(events, inp.timestamp, TS, inp.timestamp_format)
    unit = nw.col(spec.unit)
    cols = [
        (unit.cast(nw.String) if unit_as_text else unit).alias(UNIT),
        nw.col(inp.timestamp).alias(_TS_RAW),
        nw.col(TS),
        nw.col(inp.event).cast(nw.String).alias(EVENT),
    ]
    if need_session:
        cols.append(nw.col(inp.session).alias(SESSION))
    cols += [expr.alias(slot(column)) for column, expr in values.items()]
    cols += [nw.col(column).alias(slot(column)) for column in ids]
    return frame.select(*cols)


def _assigned(
    assignments: Assignments, like: nw.LazyFrame[Any], unit_as_text: bool
) -> nw.LazyFrame[Any]:
    """Assigned units (every column of the assignments, and their order) and the units
    excluded as a whole (flag), one row per unit (the two sets are disjoint: see
    clean_assignments), on the events' engine."""
    units = assignments.units.with_row_index(ORDER).with_columns(pl.lit(False).alias(_EXCLUDED))
    excluded = assignments.excluded_units.select(
        pl.col(UNIT).cast(units.schema[UNIT]), pl.lit(True).alias(_EXCLUDED)
    )
    both = pl.concat([units, excluded], how="diagonal_relaxed")
    if unit_as_text:
        both = both.with_columns(pl.col(UNIT).cast(pl.String))
    return ship(both, like)


@dataclass(frozen=True)
class _Queries:
    """The queries of the single pass over the events, built on any part of them."""

    key: list[str]  # columns that make an event; exact repeats are dropped
    aggregates: list[nw.Expr]  # the metrics' per-unit aggregates
    row_columns: list[nw.Expr]  # per-event columns the aggregates read (window expressions)
    depth_events: list[str]  # events whose per-session counts are kept (session depth)
    value_refs: list[str]  # event columns whose values come back one per event (quantiles)
    histogram_refs: list[str]  # event columns whose values are binned per arm (quantiles)
    bins: LogBins
    sessions: bool  # the events carry a session id (valid events without one are counted)
    rows: list[str] | None  # the valid events' columns to return (daily looks), or None
    pre_aggregates: list[nw.Expr]  # per-unit aggregates over the CUPED pre-period events
    period_days: int | None  # novelty: per-unit aggregates per period since assignment
    period_aggregates: list[nw.Expr]
    unit_rows: bool  # per-unit rows come back (Polars); else they stay on the engine
    # the frame is :meth:`collapse`'s (another engine): distinct rows counted in _COPIES
    collapsed: bool = False
    # the events whose rows are returned (``rows``), or None for every valid event
    row_events: list[str] | None = None

    def collapse(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """The annotated events as distinct rows of the key, the unit's variant and
        assignment time and the exclusion reason, each with the number of input rows
        it stands for (``_COPIES``), kept on the engine (:func:`materialise`).

        On an engine without shared subplans (DuckDB, Spark, SQL engines) every query
        of the pass would otherwise scan, join and de-duplicate the events again; the
        queries then read this table, and each count of input rows sums ``_COPIES``.
        The reason is a function of the row, so a valid key is one row of it.
        """
        columns = [*self.key, VARIANT, ASSIGNED_AT, REASON]
        return materialise(frame.group_by(columns).agg(nw.len().cast(nw.Int64).alias(_COPIES)))

    def _rows(self) -> nw.Expr:
        """The number of input rows of a group: rows, or their collapsed copies."""
        return nw.col(_COPIES).sum() if self.collapsed else nw.len().cast(nw.Int64)

    def valid(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Valid events with exact repeats dropped (the other columns are functions of
        the key) and the day after assignment."""
        # the unit's place in the assignments, where the rows (daily looks) carry it
        order = [ORDER] if ORDER in (self.rows or ()) else []
        valid = frame.filter(nw.col(REASON).is_null()).select(
            *self.key, VARIANT, ASSIGNED_AT, *order
        )
        unique = valid if self.collapsed else distinct(valid, self.key)
        return with_days_between(unique, ASSIGNED_AT, TS, DAY)

    def per_unit(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Per unit with a valid event: the metrics' aggregates, the last day with an
        event, and the unit's valid events after de-duplication (all, and those without
        a session id), which add up to the export's exact counts."""
        no_session = count_where(nw.col(SESSION).is_null()) if self.sessions else nw.lit(0)
        valid = self.valid(frame)
        if self.row_columns:
            valid = valid.with_columns(*self.row_columns)
        return valid.group_by(UNIT).agg(
            *self.aggregates,
            nw.col(DAY).max().alias(_LAST_ACTIVE),
            nw.len().cast(nw.Int64).alias(_EVENTS),
            no_session.cast(nw.Int64).alias(_NO_SESSION),
        )

    def run(self, frame: nw.LazyFrame[Any]) -> _Pass:
        valid = self.valid(frame)
        # the valid events before de-duplication: what repeats do not change (which days
        # and dates have events) is read there, so that an engine without shared
        # subplans de-duplicates once per pass fewer
        undeduplicated = frame.filter(nw.col(REASON).is_null()).select(
            UNIT, VARIANT, ASSIGNED_AT, TS, *([_COPIES] if self.collapsed else [])
        )
        queries = [
            # rows per exclusion reason, and the event names found among the valid ones
            frame.group_by(REASON, EVENT).agg(self._rows().alias("len")),
            # valid events per UTC day (repeats included): the export end and the
            # straggler check
            undeduplicated.group_by(nw.col(TS).dt.date().alias("date")).agg(
                self._rows().alias("n"), nw.col(TS).max().alias("end")
            ),
            # units active on day k after assignment, per variant (retention curve)
            distinct(
                with_days_between(undeduplicated, ASSIGNED_AT, TS, DAY)
                .filter(nw.col(DAY) <= CURVE_DAYS)
                .select(UNIT, VARIANT, DAY)
            )
            .group_by(VARIANT, DAY)
            .agg(nw.len().alias("active")),
        ]
        queries += [
            valid.filter(~nw.col(SESSION).is_null())
            .group_by(UNIT, SESSION)
            .agg(nw.col(VARIANT).min(), count_where(nw.col(EVENT) == event).alias(DEPTH))
            .group_by(VARIANT, DEPTH)
            .agg(nw.len().alias("sessions"))
            for event in self.depth_events
        ]
        queries += [event_values(valid, ref).select(UNIT, VALUE) for ref in self.value_refs]
        queries += [histogram_query(valid, ref, self.bins) for ref in self.histogram_refs]
        if self.rows is not None:
            wanted = (
                valid
                if self.row_events is None
                else valid.filter(nw.col(EVENT).is_in(self.row_events))
            )
            queries.append(wanted.select(self.rows))
        if self.pre_aggregates:  # the per-unit pre-period rows stay on another engine
            queries += [self.pre_period(frame)] * self.unit_rows
            queries.append(frame.select(nw.col(TS).min().alias("first")))
        if self.period_days is not None and self.unit_rows:  # elsewhere kept on the engine
            queries.append(self.periods(frame))
        if self.unit_rows:
            queries.append(self.per_unit(frame))
        by_reason, daily, active, *rest = collect_all(queries)
        per_unit = rest.pop() if self.unit_rows else None
        periods = rest.pop() if self.period_days is not None and self.unit_rows else None
        pre = None
        if self.pre_aggregates:
            first = rest.pop()
            pre = PrePeriod(rest.pop() if self.unit_rows else None, first.item())
        rows = rest.pop() if self.rows is not None else None
        depth = len(self.depth_events)
        values = rest[depth : depth + len(self.value_refs)]
        binned = rest[depth + len(self.value_refs) :]
        return _Pass(
            per_unit,
            by_reason,
            daily,
            active,
            rest[:depth],
            values,
            binned,
            rows,
            pre,
            periods,
        )

    def periods(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Per unit and period since assignment (novelty): the metrics' window
        aggregates over the unit's valid events of the period."""
        assert self.period_days is not None
        period = (nw.col(DAY) // self.period_days).alias(PERIOD)
        valid = self.valid(frame).with_columns(period)
        return valid.group_by(UNIT, PERIOD).agg(*self.period_aggregates)

    def pre_period(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Per unit: the pre-period aggregates over its de-duplicated events in the days
        before assignment (DAY counts whole days back from the assignment: 0, 1, …)."""
        pre = frame.filter(nw.col(REASON) == PRE_PERIOD_EVENT).select(*self.key, ASSIGNED_AT)
        unique = pre if self.collapsed else distinct(pre, self.key)
        return (
            with_days_between(unique, TS, ASSIGNED_AT, DAY).group_by(UNIT).agg(*self.pre_aggregates)
        )


@dataclass(frozen=True)
class PrePeriod:
    """Per-unit aggregates over the pre-period events, and the export's first event time
    (a unit assigned sooner after it than the pre-period lasts has a shorter one)."""

    per_unit: pl.DataFrame | None  # on Polars; on another engine they stay there
    first_event: dt.datetime | None


@dataclass(frozen=True)
class _Pass:
    """What one pass over (a part of) the events returns, as Polars frames."""

    per_unit: pl.DataFrame | None  # UNIT, metric columns, _LAST_ACTIVE (on Polars)
    by_reason: pl.DataFrame  # REASON, EVENT, len
    daily: pl.DataFrame  # date, n (valid events, repeats included), end
    active: pl.DataFrame  # VARIANT, DAY, active
    histograms: list[pl.DataFrame]  # per session-depth metric: VARIANT, DEPTH, sessions
    values: list[pl.DataFrame]  # per value reference (quantiles): UNIT, VALUE
    histograms_of_values: list[pl.DataFrame]  # per binned reference: VARIANT, KEY, EVENTS
    rows: pl.DataFrame | None  # the valid events' slim columns (daily looks)
    pre: PrePeriod | None = None  # the CUPED pre-period aggregates, when asked for
    periods: pl.DataFrame | None = None  # UNIT, PERIOD, aggregates (novelty), when asked for

    @staticmethod
    def combine(parts: list[_Pass]) -> _Pass:
        """The parts' results as one: units are disjoint between parts, so per-unit rows
        concatenate and counts add up."""
        if len(parts) == 1:
            return parts[0]

        def stack(frames: list[pl.DataFrame]) -> pl.DataFrame:
            return pl.concat(frames, how="vertical_relaxed")

        def added(frames: list[pl.DataFrame], by: list[str], count: str) -> pl.DataFrame:
            return stack(frames).group_by(by).agg(pl.col(count).cast(pl.Int64).sum())

        daily = stack([p.daily for p in parts]).group_by("date")
        rows = [p.rows for p in parts if p.rows is not None]
        pres = [p.pre for p in parts if p.pre is not None]
        periods = [p.periods for p in parts if p.periods is not None]
        firsts = [p.first_event for p in pres if p.first_event is not None]
        pre = (
            PrePeriod(
                stack([p.per_unit for p in pres if p.per_unit is not None]),
                min(firsts) if firsts else None,
            )
            if pres
            else None
        )
        return _Pass(
            per_unit=stack([p.per_unit for p in parts if p.per_unit is not None]),
            by_reason=added([p.by_reason for p in parts], [REASON, EVENT], "len"),
            daily=daily.agg(pl.col("n").cast(pl.Int64).sum(), pl.col("end").max()),
            active=added([p.active for p in parts], [VARIANT, DAY], "active"),
            histograms=[
                added(list(hists), [VARIANT, DEPTH], "sessions")
                for hists in zip(*(p.histograms for p in parts), strict=True)
            ],
            values=[stack(list(frames)) for frames in zip(*(p.values for p in parts), strict=True)],
            histograms_of_values=[
                added(list(h), [VARIANT, KEY], EVENTS)
                for h in zip(*(p.histograms_of_values for p in parts), strict=True)
            ],
            rows=stack(rows) if rows else None,
            pre=pre,
            periods=stack(periods) if periods else None,
        )


def event_units(
    assignments: Assignments,
    events: Table,
    spec: ExperimentSpec,
    metrics: tuple[MetricSpec, ...],
    ledger: Ledger,
    with_looks: bool = False,
    covariates: Mapping[str, Mapping[str, str]] | None = None,
    values_with_accounts: bool = False,
    week_one: bool = False,
) -> EventUnits:
    """Validate events, roll them up per unit and attach them to every assigned unit.

    Everything up to the per-unit aggregates runs on the events' engine (Polars,
    DuckDB, Spark, SQLFrame; :mod:`abkit.engine.backend`); only per-unit rows and small
    summaries come back.  Units with no valid event keep zeros (counts) and 0
    (retention): assigned but inactive units belong in every denominator.  With
    ``with_looks`` the per-arm sufficient statistics at every daily look are computed
    (:mod:`abkit.engine.looks`; on another engine there, only per-(variant, look) sums
    coming back), and with ``covariates`` (metric name → covariate column → name) each
    look's CUPED moments.
    ``values_with_accounts`` (the design re-assigns accounts) keeps each quantile value
    with its unit on every engine, where ``[quantiles] method = "auto"`` would otherwise bin them.
    ``week_one`` adds each unit's first-week signals (:mod:`abkit.engine.week_one`),
    the inputs of the surrogate forecast.
    """
    inp = spec.input
    if spec.unit == ROW_UNIT:
        raise AbkitInputError(
            'unit = "@row" only applies to unit-level tables; events need a unit id column '
            "to join on."
        )
    output_event = spec.event_names.output
    need_session, columns = _needs(metrics, output_event)
    events.require(
        need(spec, "unit"),
        need(spec, "timestamp"),
        need(spec, "event"),
        *([need(spec, "session", "session id, needed by session metrics")] if need_session else []),
    )
    # the first-week signals read sessions where the export has them (session depth
    # is 0 for every unit otherwise, and the model leaves a constant signal out)
    need_session = need_session or (week_one and spec.input.session in events.columns)
    sources = column_sources(events, spec, columns, metrics)
    schema = events.data.collect_schema()
    require_utc(events.data, events.label)
    units = assignments.units
    unit_as_text = nw.from_native(units.head(0)).schema[UNIT] != schema[spec.unit]
    if unit_as_text:
        units = units.with_columns(pl.col(UNIT).cast(pl.String))
    like = events.data
    assigned = _assigned(assignments, like, unit_as_text)
    ids = _id_columns(events, metrics, columns)
    # the daily looks on Polars key a unit by its place in the assignments
    order = [ORDER] if with_looks and events.on_polars else []
    frame = _event_columns(events, spec, need_session, sources, unit_as_text, ids).join(
        assigned.select(UNIT, VARIANT, ASSIGNED_AT, _EXCLUDED, *order), on=UNIT, how="left"
    )
    rules = [
        (nw.col(UNIT).is_null(), NULL_UNIT),
        (nw.col(EVENT).is_null(), "event with null event name"),
        (nw.col(_TS_RAW).is_null(), "event with missing timestamp"),
        (nw.col(TS).is_null(), "event with unparseable timestamp"),
        (~nw.col(TS).is_between(EARLIEST, LATEST), f"event with a timestamp {OUT_OF_RANGE}"),
        (nw.col(_EXCLUDED).fill_null(False), "event of a unit excluded from the assignments"),
        (nw.col(VARIANT).is_null(), "event of a unit that is not in the assignments"),
    ]
    before = nw.col(TS) < nw.col(ASSIGNED_AT)
    pre_metrics = [m for m in metrics if spec.uses_pre_period(m)]
    pre_days = spec.cuped.pre_days if pre_metrics else None
    if pre_days is None:
        rules.append((before, EVENT_BEFORE_ASSIGNMENT))
    else:  # within pre_days before assignment: kept for the covariates (rule below)
        back = days_between(TS, ASSIGNED_AT, like)
        rules.append((before & (back >= pre_days), EVENT_BEFORE_ASSIGNMENT))
    optional = optional_columns(metrics)  # their NaN came back as null (column_sources)
    for column in columns:  # value sums are exact fixed-point sums (references.EXACT)
        value = nw.col(slot(column))
        rules.append(
            (
                value.is_nan() | (value.abs() >= 1e20),
                value_out_of_range(column, column in optional),
            )
        )
    rules += [r for m in metrics for r in m.kind.exclusion_rules(m)]
    configured_end = configured_export_end(spec)
    if configured_end is not None:
        rules.append(
            (nw.col(TS) > nw.lit(configured_end), "event after the export end ([input] export_end)")
        )
    if pre_days is not None:  # last, so that the checks above apply to these events too
        rules.append((before, PRE_PERIOD_EVENT))
    frame = frame.with_columns(first_reason(rules, nw).alias(REASON))
    slots = [slot(c) for c in columns]
    # events whose repeats a metric averages per output id without a run column: their
    # exact duplicates (same time and values) are counted after de-duplication
    repeated = sorted(
        {
            read[0]
            for m in metrics
            if m.output is not None
            and m.run is None
            and (read := event_column(m.output)) is not None
        }
    )
    kept = {e: f"_kept:{e}" for e in repeated}
    key = [UNIT, TS, EVENT, *([SESSION] if need_session else []), *slots, *map(slot, ids)]
    depth_events = {
        m.name: e for m in metrics if (e := m.kind.session_histogram_event(m, output_event))
    }
    quantiles = [m for m in metrics if m.kind.value_reference(m) is not None]
    method = spec.quantiles.method
    if method == "auto":
        # re-assigning accounts needs every value's account: exact there
        method = "exact" if events.on_polars or values_with_accounts else "histogram"
    bins = LogBins(spec.quantiles.relative_error)
    value_refs = list(dict.fromkeys(str(m.kind.value_reference(m)) for m in quantiles))
    histogram_refs = value_refs if method == "histogram" else []
    value_refs = value_refs if method == "exact" else []
    slim = [UNIT, *order, DAY, EVENT, TS, *([SESSION] if need_session else []), *slots]
    query = _Queries(
        key=key,
        aggregates=[
            *(e for m in metrics for e in m.kind.event_aggregates(m, output_event)),
            *(count_where(nw.col(EVENT) == e).alias(c) for e, c in kept.items()),
            *(
                week_one_aggregates(output_event, spec.event_names.share, need_session)
                if week_one
                else []
            ),
        ],
        row_columns=[e for m in metrics for e in m.kind.row_columns(m, output_event)],
        depth_events=list(depth_events.values()),
        value_refs=value_refs,
        histogram_refs=histogram_refs,
        bins=bins,
        sessions=need_session,
        # the valid events' rows come back for the daily looks on Polars; on another
        # engine only for the exact route of quantile looks (their events only)
        rows=slim if with_looks and (events.on_polars or value_refs) else None,
        row_events=(
            None
            if events.on_polars
            else sorted({read[0] for r in value_refs if (read := event_column(r)) is not None})
        ),
        period_days=spec.novelty.period_days,
        unit_rows=events.on_polars,
        collapsed=not events.on_polars,
        period_aggregates=[
            e.alias(column)
            for m in metrics
            if m.kind.adjustable()
            for e, column in zip(
                m.kind.window_aggregates(m, output_event), component_columns(m), strict=True
            )
        ],
        pre_aggregates=[
            e.alias(pre_period_column(column))
            for m in pre_metrics
            for e, column in zip(
                m.kind.window_aggregates(m, output_event), component_columns(m), strict=True
            )
        ],
    )
    try:
        # one pass over the events per part (one part unless the export is large); on
        # Polars the scan, join and de-duplication run once for all the queries of a part
        frames = partitions(frame, UNIT, events.data)
        if query.collapsed:  # another engine: one scan, join and de-duplication, kept
            frames = [query.collapse(part) for part in frames]
        parts = [query.run(part) for part in frames]
        result = _Pass.combine(parts)
        binned = _binned_values(
            [query.valid(part) for part in frames],
            result.histograms_of_values,
            histogram_refs,
            quantiles,
            bins,
            assignments.variants,
        )
    except Exception as exc:  # the engine's own error type (Polars, DuckDB, Spark …)
        raise _engine_error(exc, events.label) from None
    per_unit, by_reason, daily = result.per_unit, result.by_reason, result.daily
    counts = by_reason.group_by(REASON).agg(pl.col("len").cast(pl.Int64).sum())
    # before the blank lines are told apart: they have no unit id, as the rows this
    # check leaves aside
    _fail_on_unreadable_times(counts, events, spec.unit, inp.timestamp)
    if events.on_polars:
        counts = _with_blank_lines(counts, events, spec.unit)
    valid = frame.filter(nw.col(REASON).is_null())
    export_end = configured_end or _latest_event(valid, daily, spec, events)
    keep_null = {value_column(m) for m in metrics if not m.kind.zero_when_inactive}
    pre = result.pre if pre_days is not None else None
    if per_unit is not None:  # Polars: the per-unit rows are in this process
        # the engine returns units in any order: the unit table keeps the assignments' order
        joined = units.join(per_unit, on=UNIT, how="left", maintain_order="left")
        if pre is not None and pre.per_unit is not None:
            joined = _with_pre_period(joined, pre.per_unit)
        table: nw.LazyFrame[Any] = nw.from_native(joined.lazy())
        aggregated = per_unit.columns
    else:  # another engine: the per-unit rows stay there
        (collapsed,) = frames
        per_unit_rows = query.per_unit(collapsed)
        table = assigned.filter(~nw.col(_EXCLUDED)).drop(_EXCLUDED)
        table = table.join(per_unit_rows, on=UNIT, how="left")
        if pre is not None:
            table = _with_pre_period_on_engine(table, query.pre_period(collapsed))
        aggregated = per_unit_rows.collect_schema().names()
    fill = [c for c in aggregated if c not in (UNIT, *_BOOKKEEPING) and c not in keep_null]
    if fill:
        table = table.with_columns(*(nw.col(c).fill_null(0) for c in fill))
    windows = [(m, d) for m in metrics if (d := m.kind.maturity_day(m)) is not None]
    table = _with_eligibility(table, windows, export_end, like)
    if week_one:
        table = with_week_one_signals(table, export_end)
    with _engine_errors(events.label):
        table = materialise(table)
        # the exact counts of used events and of those without a session
        kept_sums = [nw.col(c).sum() for c in kept.values()]
        (totals,) = collect_all(
            [table.select(nw.col(_EVENTS).sum(), nw.col(_NO_SESSION).sum(), *kept_sums)]
        )
    used, nulls, *kept_rows = (int(v or 0) for v in totals.row(0))
    valid_rows = int(counts.filter(pl.col(REASON).is_null())["len"].sum())
    repeats = pl.DataFrame(
        {REASON: [DUPLICATE_EVENT, None], "len": [valid_rows - used, used - valid_rows]},
        schema={REASON: pl.String, "len": pl.Int64},
    )
    counts = pl.concat([counts, repeats]).group_by(REASON).agg(pl.col("len").sum())
    ledger.add_counts("events", counts)
    out = EventUnits(
        units=table.drop(*_BOOKKEEPING, _LAST_DAY, *kept.values()),
        export_end=export_end,
        periods=result.periods,
        values=dict(zip(value_refs, result.values, strict=True)),
        binned=binned,
    )
    if pre is not None and pre_days is not None:
        out.notes.extend(_short_pre_periods(units, pre, pre_days))
    if not events.on_polars:  # what comes back one row per unit or event, and why
        if query.period_days is not None:  # the per-period rows stay on the engine
            with _engine_errors(events.label):
                (collapsed,) = frames
                out.periods = materialise(query.periods(collapsed))
        if result.values:
            out.crossed.append(("exact quantiles (events)", sum(v.height for v in result.values)))
    with _engine_errors(events.label):
        out.eligibility = _eligible_counts(table, windows)
        out.retention_curve = retention_curve(table, result.active, export_end)
    for name, hist in zip(depth_events, result.histograms, strict=True):
        out.depth_histograms[name] = hist.with_columns(pl.col(DEPTH).cast(pl.Int64)).sort(
            VARIANT, DEPTH
        )
    for name, deduplicated in zip(kept, kept_rows, strict=True):
        valid_of = by_reason.filter(pl.col(REASON).is_null() & (pl.col(EVENT) == name))
        dropped = int(valid_of["len"].sum()) - deduplicated
        if dropped > 0:
            out.notes.append(
                f"{dropped:,} '{name}' event(s) were dropped as duplicate events (same unit, "
                "time, name, output id and values) before the repeated judgements of each "
                "output were averaged: identical repeats need a run column to be kept; give "
                f"run = '{name}.<column>' (the judgement's run) beside output."
            )
    if nulls:
        out.notes.append(
            f"{nulls} valid event(s) have no session id; they count for other metrics but "
            "not for session depth."
        )
    valid_names = by_reason.filter(pl.col(REASON).is_null()).get_column(EVENT)
    out.event_names = frozenset(valid_names.drop_nulls().to_list())
    if with_looks:
        schedule = schedule_for(units, export_end)
        if events.on_polars:
            _looks_in_process(
                out,
                result.rows,
                metrics,
                schedule,
                assignments,
                output_event,
                covariates,
                tuple(quantiles),
                bins if histogram_refs else None,
            )
        else:
            with _engine_errors(events.label):
                (collapsed,) = frames
                valid_looks = with_look(query.valid(collapsed), schedule, TS)
                _looks_on_engine(
                    out,
                    result.rows,
                    valid_looks,
                    table,
                    units,
                    metrics,
                    schedule,
                    assignments,
                    output_event,
                    covariates,
                    tuple(quantiles),
                    bins if histogram_refs else None,
                )
    return out


def _looks_in_process(
    out: EventUnits,
    rows: pl.DataFrame | None,
    metrics: tuple[MetricSpec, ...],
    schedule: LookSchedule,
    assignments: Assignments,
    output_event: str,
    covariates: Mapping[str, Mapping[str, str]] | None,
    quantiles: tuple[MetricSpec, ...],
    bins: LogBins | None,
) -> None:
    """The daily looks from the valid events' rows in this process (``rows``: the
    slim columns of every valid event) and the unit table's rows (on Polars)."""
    assert rows is not None
    rows = rows.with_columns(schedule.index(TS).alias(LOOK))
    (unit_rows,) = collect_all([out.units])
    out.looks = event_look_series(
        rows.lazy(), unit_rows, metrics, schedule, assignments.variants, output_event, covariates
    )
    out.quantile_looks = quantile_look_series(
        rows, unit_rows, quantiles, schedule, assignments.variants, bins
    )


def _looks_on_engine(
    out: EventUnits,
    rows: pl.DataFrame | None,
    valid: nw.LazyFrame[Any],
    table: nw.LazyFrame[Any],
    units: pl.DataFrame,
    metrics: tuple[MetricSpec, ...],
    schedule: LookSchedule,
    assignments: Assignments,
    output_event: str,
    covariates: Mapping[str, Mapping[str, str]] | None,
    quantiles: tuple[MetricSpec, ...],
    bins: LogBins | None,
) -> None:
    """The daily looks of an export on another engine, where only per-(variant, look)
    aggregates come back (:func:`~abkit.engine.looks.engine_look_series`, and the
    histogram route of the quantile looks), the CUPED moments at each look included.
    One step still reads rows here, and ``out.crossed`` says how many: the exact route
    of the quantile looks (its events' values)."""
    variants = assignments.variants
    out.looks = engine_look_series(
        valid, table, units, metrics, schedule, variants, output_event, covariates
    )
    if not quantiles:
        return
    if bins is None:  # the exact route: every value with its unit comes back
        assert rows is not None
        looked = rows.with_columns(schedule.index(TS).alias(LOOK))
        out.quantile_looks = quantile_look_series(
            looked, units.select(UNIT, VARIANT), quantiles, schedule, variants, None
        )
        out.crossed.append(("daily looks of exact quantiles (events)", rows.height))
        return
    out.quantile_looks = engine_quantile_look_series(valid, quantiles, schedule, variants, bins)


def _binned_values(
    valid_parts: list[nw.LazyFrame[Any]],
    histograms: list[pl.DataFrame],
    references: list[str],
    metrics: list[MetricSpec],
    bins: LogBins,
    variants: tuple[str, ...],
) -> dict[str, BinnedValues]:
    """The histogram route's second pass: once each arm's quantile bin is known from
    the histograms, per-arm sums of the units' counts up to it (one query per event
    column and part, every quantile level of its metrics at once; parts add up)."""
    out = {}
    for ref, histogram in zip(references, histograms, strict=True):
        on_event = [m for m in metrics if m.kind.value_reference(m) == ref]
        levels = sorted({q for m in on_event for q in profile_levels(m)})
        thresholds = [quantile_bins(histogram, q, variants) for q in levels]
        parts = collect_all([below_query(v, ref, bins, thresholds) for v in valid_parts])
        sums = pl.concat(parts).group_by(VARIANT).agg(pl.all().sum())
        by_level = {q: split_sums(sums, i) for i, q in enumerate(levels)}
        for m in on_event:
            out[m.name] = BinnedValues(histogram, {q: by_level[q] for q in profile_levels(m)})
    return out


def _with_pre_period(units: pl.DataFrame, pre: pl.DataFrame) -> pl.DataFrame:
    """Attach the pre-period aggregates, keeping the units' order; a unit without
    events then has 0 (it was not active, which is a value, not a missing one)."""
    columns = [c for c in pre.columns if c != UNIT]
    joined = units.join(pre, on=UNIT, how="left", maintain_order="left")
    return joined.with_columns(pl.col(columns).fill_null(0))


def _with_pre_period_on_engine(
    units: nw.LazyFrame[Any], pre: nw.LazyFrame[Any]
) -> nw.LazyFrame[Any]:
    """:func:`_with_pre_period` on another engine (whose rows carry their order)."""
    columns = [c for c in pre.collect_schema().names() if c != UNIT]
    joined = units.join(pre, on=UNIT, how="left")
    if not columns:
        return joined
    return joined.with_columns(*(nw.col(c).fill_null(0) for c in columns))


def _engine_error(exc: Exception, label: str) -> BaseException:
    """What an engine's own error becomes: a Ctrl-C as the engine reports it stays an
    interrupt; anything else is said as an input error naming the events."""
    if is_interrupt(exc):
        return KeyboardInterrupt()
    return AbkitInputError(f"could not process the events: {exc}", source=label)


@contextmanager
def _engine_errors(label: str) -> Iterator[None]:
    """Engine work after the pass (keeping the unit table, its counts) reports errors as
    the pass does; abkit's own errors pass unchanged."""
    try:
        yield
    except AbkitInputError:
        raise
    except Exception as exc:
        raise _engine_error(exc, label) from None


def _short_pre_periods(units: pl.DataFrame, pre: PrePeriod, days: int) -> list[str]:
    """A note when units were assigned sooner after the export's first event than the
    pre-period lasts: the export cannot show their whole pre-period."""
    if pre.first_event is None:
        return []
    start = pl.col(ASSIGNED_AT) - pl.duration(days=days)
    short = units.select((start < pl.lit(pre.first_event)).sum()).item()
    if not short:
        return []
    return [
        f"CUPED pre-period: {short:,} of {units.height:,} units were assigned less than "
        f"{days} days after the export's first event ({pre.first_event:%Y-%m-%d %H:%M}), so "
        "their pre-period covariates cover fewer days (still valid: the covariates are "
        "fixed before assignment, only less informative)"
    ]


def _with_blank_lines(counts: pl.DataFrame, events: Table, unit: str) -> pl.DataFrame:
    """``counts`` (reason → events) with the blank lines (every cell empty) told apart
    from the other events without a unit id, with which the pass counted them.

    Only the rows without a unit id are read again, and only when there are any, so
    that the pass itself reads no column it does not use (a CSV export is in memory
    already; a Parquet scan reads the unit column, and the others for these rows).
    """
    without_unit = counts.filter(pl.col(REASON) == NULL_UNIT)["len"].sum()
    if not without_unit:
        return counts
    native = cast(pl.LazyFrame, nw.to_native(events.data))
    blank = native.filter(pl.col(unit).is_null()).select(blank_row(events.columns).sum())
    try:
        lines = int(blank.collect().item())
    except pl.exceptions.PolarsError as exc:
        raise reader_error(exc, events.label) from None
    if not lines:
        return counts
    moved = pl.DataFrame(
        {REASON: [NULL_UNIT, BLANK_LINE], "len": [-lines, lines]},
        schema={REASON: pl.String, "len": pl.Int64},
    )
    summed = pl.concat([counts.select(REASON, pl.col("len").cast(pl.Int64)), moved])
    return summed.group_by(REASON).agg(pl.col("len").sum()).filter(pl.col("len") != 0)


def _fail_on_unreadable_times(counts: pl.DataFrame, events: Table, unit: str, column: str) -> None:
    reasons = dict(counts.select(REASON, "len").iter_rows())
    bad = reasons.get("event with unparseable timestamp", 0)
    # every row with a unit id (used ones included) has an unreadable time: a format
    # problem, not a few bad rows; the first such row is then the first with a unit id
    if bad and bad == sum(n for r, n in reasons.items() if r != NULL_UNIT):
        if events.on_polars:  # rows are numbered in a Polars table only
            numbered = cast(pl.LazyFrame, nw.to_native(events.data)).with_row_index(ROW)
            head = numbered.filter(pl.col(unit).is_not_null()).select(ROW, column).head(1)
            row, example = head.collect().row(0)
            where = f"first at data row {row + 1}: {example!r}"
        else:
            with_unit = events.data.filter(~nw.col(unit).is_null()).select(column).head(1)
            (first,) = collect_all([with_unit])
            where = f"for example {first.item()!r}"
        raise AbkitInputError(
            f"no event timestamp could be parsed ({where}).",
            source=events.label,
            column=column,
            hint="Use ISO 8601 (2024-05-01T13:45:00Z), a date, or Unix epoch seconds.",
        )


def configured_export_end(spec: ExperimentSpec) -> dt.datetime | None:
    """``[input] export_end`` parsed as a UTC timestamp, or None when not set."""
    if not spec.input.export_end:
        return None
    parsed: dt.datetime | None = (
        pl.DataFrame({"e": [spec.input.export_end]})
        .select(parse_timestamp("e", pl.String(), spec.input.timestamp_format))
        .item()
    )
    if parsed is None:
        raise AbkitInputError(
            f"key 'input.export_end' (--export-end) = {spec.input.export_end!r} is not a "
            "timestamp; give it as ISO 8601, e.g. 2025-03-31T23:59:59Z."
        )
    return parsed


# the default export end (the latest valid event) is refused when it lies in the future,
# or this far beyond the time by which 99.9 % of the valid events happened
_TAIL_QUANTILE, _TAIL_GAP = 0.999, dt.timedelta(days=30)


def _latest_event(
    valid: nw.LazyFrame[Any], daily: pl.DataFrame, spec: ExperimentSpec, events: Table
) -> dt.datetime:
    """The export end taken from the latest valid event, after checking that it is
    neither in the future nor a straggler far after the bulk of the events.

    The bulk is the lower 99.9 % quantile of the n valid event times (repeats
    included), the k-th smallest with k = ⌊0.999·(n − 1)⌋ (0-based).  The per-day
    counts (``daily``: date, n, end) place it within one day; only when that day
    straddles the 30-day limit does one more count on the engine decide (it lies more
    than 30 days before the end exactly when more than k events do).
    """
    end = daily["end"].max()
    if end is None:
        raise AbkitInputError(
            "no event could be used (all were excluded; see the exclusions above), so there "
            "is nothing to analyse.",
            source=events.label,
        )
    assert isinstance(end, dt.datetime)
    now = dt.datetime.now(dt.UTC)
    n = int(daily["n"].sum())
    k = math.floor(_TAIL_QUANTILE * (n - 1))
    days = daily.sort("date").with_columns(pl.col("n").cum_sum().alias("seen"))
    bulk_date = days.filter(pl.col("seen") > k)["date"][0]
    bulk_day = dt.datetime.combine(bulk_date, dt.time(), dt.UTC)
    limit = end - _TAIL_GAP
    if bulk_day + dt.timedelta(days=1) <= limit:
        straggler = True
    elif bulk_day > limit:
        straggler = False
    else:  # the bulk lies on the day that holds the limit: count exactly
        (early,) = collect_all([valid.select(count_where(nw.col(TS) < nw.lit(limit)))])
        straggler = early.item() > k
    if end <= now + dt.timedelta(days=1) and not straggler:
        return end
    if end > now:
        where, after = "in the future", now
    else:
        (bulk,) = collect_all(
            [valid.select(TS).sort(TS, descending=True).head(n - k).select(nw.col(TS).min())]
        )
        where, after = f"over {_TAIL_GAP.days} days after 99.9 % of them", bulk.item() + _TAIL_GAP
    (late,) = collect_all([valid.select(count_where(nw.col(TS) > nw.lit(after)))])
    raise AbkitInputError(
        f"{late.item():,} event(s) are stamped {where} (the latest at {end.isoformat()}), "
        "so the export end cannot be taken from the latest event: it would make immature "
        "retention windows look mature and lower every rate.",
        source=events.label,
        column=spec.input.timestamp,
        hint="Fix those timestamps, or set [input] export_end to the real end of the "
        "export (events after it are then excluded and counted).",
    )


def _with_eligibility(
    units: nw.LazyFrame[Any],
    windows: list[tuple[MetricSpec, int]],
    export_end: dt.datetime,
    like: nw.LazyFrame[Any],
) -> nw.LazyFrame[Any]:
    """Null out each windowed metric (retention windows [a, b], ``windows``: metric →
    b) for the units whose last day b has not fully elapsed by the export end, and add
    each unit's last complete day, ⌊(end − assigned) / 24 h⌋ − 1 (the retention curve).

    Eligible iff assigned_at + (b + 1)·24 h ≤ export end, in whole microseconds: the
    assignment time is compared with the instant export end − (b + 1)·24 h, computed
    here exactly (Python's datetimes are whole microseconds), and the last complete day
    is :func:`~abkit.engine.backend.with_days_between` the assignment and the export
    end, less one (the engines' own microsecond counts).
    """
    nulled = [
        nw.when(nw.col(ASSIGNED_AT) <= nw.lit(export_end - (last + 1) * dt.timedelta(days=1)))
        .then(nw.col(value_column(m)))
        .alias(value_column(m))
        for m, last in windows
    ]
    with_end = units.with_columns(*nulled, nw.lit(export_end).alias(_END))
    elapsed = with_days_between(with_end, ASSIGNED_AT, _END, _LAST_DAY)
    return elapsed.with_columns((nw.col(_LAST_DAY).cast(nw.Int64) - 1).alias(_LAST_DAY)).drop(_END)


def _eligible_counts(
    units: nw.LazyFrame[Any], windows: list[tuple[MetricSpec, int]]
) -> dict[str, dict[str, int]]:
    """Per windowed metric: units assigned, and units whose window is complete."""
    if not windows:
        return {}
    aggs = [nw.col(value_column(m)).count().alias(m.name) for m, _ in windows]
    (counts,) = collect_all([units.select(nw.len().alias("_assigned"), *aggs)])
    row = counts.row(0, named=True)
    total = int(row["_assigned"])
    return {m.name: {"assigned": total, "eligible": int(row[m.name])} for m, _ in windows}


CURVE_DAYS = 60


@dataclass(frozen=True)
class RetentionCurve:
    """One variant's retention curve: units active on each day after assignment.

    Parameters
    ----------
    day : tuple of int
        Days after assignment (0, 1, 2, ...).
    eligible : tuple of int
        Units whose day had ended by the export end.
    active : tuple of int
        Eligible units active that day.
    """

    day: tuple[int, ...]
    eligible: tuple[int, ...]
    active: tuple[int, ...]


def retention_curve(
    units: nw.LazyFrame[Any], active: pl.DataFrame, export_end: dt.datetime
) -> pl.DataFrame:
    """Per variant and day k = 0 … : units whose day k has fully elapsed (eligible) and
    how many of them had any event on day k (active).

    ``units`` holds each unit's last complete day and last active day (on its engine:
    only counts per variant and day come back).  ``active`` counts units with an event
    on day k whether or not the day is over; a unit's unfinished day, its last complete
    day + 1, is the latest day it can have an event on, so it is counted there exactly
    when its last active day equals it, and those units are taken off.
    """
    (latest,) = collect_all([units.select(nw.col(_LAST_DAY).max())])
    latest_day = latest.item()
    horizon = min(CURVE_DAYS, max(0, latest_day)) if isinstance(latest_day, int) else 0
    # eligible on day k = units whose last complete day is >= k: a reverse cumulative
    # count over the (capped) last-day histogram, not a units x days cross join
    over = nw.col(_LAST_DAY) > horizon
    capped_day = nw.when(over).then(nw.lit(horizon)).otherwise(nw.col(_LAST_DAY))
    capped_day = capped_day.cast(nw.Int32).alias(DAY)
    by_last_day, unfinished = collect_all(
        [
            units.filter(nw.col(_LAST_DAY) >= 0)
            .group_by(nw.col(VARIANT), capped_day)
            .agg(nw.len().alias("n")),
            units.filter(nw.col(_LAST_ACTIVE) == nw.col(_LAST_DAY) + 1)
            .group_by(nw.col(VARIANT), nw.col(_LAST_ACTIVE).cast(nw.Int32).alias(DAY))
            .agg(nw.len().alias("unfinished")),
        ]
    )
    by_last_day = by_last_day.with_columns(pl.col(DAY).cast(pl.Int32), pl.col("n").cast(pl.Int64))
    unfinished = unfinished.with_columns(
        pl.col(DAY).cast(pl.Int32), pl.col("unfinished").cast(pl.Int64)
    )
    days = pl.DataFrame({DAY: list(range(horizon + 1))}, schema={DAY: pl.Int32})
    eligible = (
        by_last_day.join(
            days.join(by_last_day.select(VARIANT).unique(), how="cross"),
            on=[VARIANT, DAY],
            how="right",
        )
        .with_columns(pl.col("n").fill_null(0))
        .sort(VARIANT, DAY, descending=[False, True])
        .with_columns(pl.col("n").cum_sum().over(VARIANT).cast(pl.UInt32).alias("eligible"))
        .select(VARIANT, DAY, "eligible")
        .filter(pl.col("eligible") > 0)
    )
    counted = (
        active.with_columns(pl.col(DAY).cast(pl.Int32), pl.col("active").cast(pl.Int64))
        .join(unfinished, on=[VARIANT, DAY], how="left")
        .select(
            VARIANT,
            DAY,
            (pl.col("active") - pl.col("unfinished").fill_null(0)).cast(pl.UInt32).alias("active"),
        )
    )
    return (
        eligible.join(counted, on=[VARIANT, DAY], how="left")
        .with_columns(pl.col("active").fill_null(0))
        .sort(VARIANT, DAY)
    )
