"""Event-level exports → one row per unit with metric numerators and denominators.

The pipeline stays lazy until the per-unit aggregation: events are validated and
annotated with an exclusion reason, then a single ``collect_all`` computes the
exclusion counts, the per-unit aggregates, the export's end and the session-depth
histograms from one scan of the events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from abkit.config import ExperimentSpec, MetricSpec
from abkit.errors import AbkitInputError
from abkit.io.assignments import (
    ASSIGNED_AT,
    REASON,
    ROW,
    ROW_UNIT,
    UNIT,
    VARIANT,
    Assignments,
)
from abkit.io.exclusions import Ledger, first_reason
from abkit.io.readers import BLANK_LINE, Table, blank_row
from abkit.io.timestamps import parse_timestamp
from abkit.units.columns import value_column
from abkit.units.looks import LookSeries, event_look_series, schedule_for
from abkit.units.references import (
    DAY,
    EVENT,
    LOOK,
    SESSION,
    TS,
    VALUE,
    needs_session,
    needs_value,
)

DEPTH = "depth"
_DAY_US = 86_400_000_000

EVENT_BEFORE_ASSIGNMENT = "event before assignment (ignored for outcomes)"


@dataclass
class EventUnits:
    """Per-unit metric columns built from events, with what was learnt on the way."""

    units: pl.DataFrame
    export_end: dt.datetime
    depth_histograms: dict[str, pl.DataFrame] = field(default_factory=dict)
    retention_curve: pl.DataFrame | None = None
    event_names: frozenset[str] = frozenset()  # names among the valid events
    eligibility: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    looks: dict[str, LookSeries] = field(default_factory=dict)


def derive_assignments(events: Table, spec: ExperimentSpec) -> Table:
    """Assignments from an events table that carries the variant column.

    One row per (unit, variant) with the time of the unit's first exposure: the
    first ``[input] exposure_event`` if set, else its first event of any kind.
    A unit seen in two variants yields two rows and is excluded downstream.
    """
    inp = spec.input
    events.require(spec.unit, what="randomisation unit id")
    events.require(spec.variant, what="variant")
    events.require(inp.timestamp, what="event timestamp")
    schema = events.frame.collect_schema()
    frame = events.frame.select(
        pl.col(spec.unit),
        pl.col(spec.variant),
        parse_timestamp(inp.timestamp, schema[inp.timestamp]).alias(inp.assigned_at),
        *([pl.col(spec.account)] if spec.account else []),
        *([pl.col(inp.event)] if inp.exposure_event else []),
    ).filter(pl.col(spec.variant).is_not_null() & pl.col(spec.unit).is_not_null())
    if inp.exposure_event:
        events.require(inp.event, what="event name")
        frame = frame.filter(pl.col(inp.event).cast(pl.String) == inp.exposure_event)
    keys = [spec.unit, spec.variant]
    aggs = [pl.col(inp.assigned_at).min()]
    if spec.account:
        aggs.append(pl.col(spec.account).min())
    derived = frame.group_by(keys).agg(aggs).sort(keys)
    return Table(derived, f"assignments derived from {events.label}")


def _needs(metrics: tuple[MetricSpec, ...], output_event: str) -> tuple[bool, bool]:
    refs = [r for m in metrics for r in m.kind.references(m, output_event)]
    return any(map(needs_session, refs)), any(map(needs_value, refs))


def event_units(
    assignments: Assignments,
    events: Table,
    spec: ExperimentSpec,
    metrics: tuple[MetricSpec, ...],
    ledger: Ledger,
    with_looks: bool = False,
) -> EventUnits:
    """Validate events, roll them up per unit and attach them to every assigned unit.

    Units with no valid event keep zeros (counts) and 0 (retention): assigned but
    inactive units belong in every denominator.  With ``with_looks`` the per-arm
    sufficient statistics at every daily look are computed from the same rows
    (:mod:`abkit.units.looks`).
    """
    inp = spec.input
    if spec.unit == ROW_UNIT:
        raise AbkitInputError(
            'unit = "@row" only applies to unit-level tables; events need a unit id column '
            "to join on."
        )
    events.require(spec.unit, what="randomisation unit id")
    events.require(inp.timestamp, what="event timestamp")
    events.require(inp.event, what="event name")
    output_event = spec.event_names.output
    need_session, need_value = _needs(metrics, output_event)
    if need_session:
        events.require(inp.session, what="session id (needed by session metrics)")
    if need_value:
        events.require(inp.value, what="numeric event value (needed by '.value' references)")
    schema = events.frame.collect_schema()
    units = assignments.units
    unit_dtype = units.schema[UNIT]
    unit_expr = pl.col(spec.unit)
    if schema[spec.unit] != unit_dtype:
        unit_expr = unit_expr.cast(pl.String)
        units = units.with_columns(pl.col(UNIT).cast(pl.String))
    excluded = assignments.excluded_units.with_columns(pl.col(UNIT).cast(units.schema[UNIT]))
    if need_value and not schema[inp.value].is_numeric():
        raise AbkitInputError(
            f"the event value column must be numeric, found type {schema[inp.value]}.",
            source=events.label,
            column=inp.value,
        )
    cols = [
        pl.col(ROW),
        unit_expr.alias(UNIT),
        pl.col(inp.timestamp).alias("_ts_raw"),
        parse_timestamp(inp.timestamp, schema[inp.timestamp]).alias(TS),
        pl.col(inp.event).cast(pl.String).alias(EVENT),
    ]
    key = [UNIT, TS, EVENT]
    if need_session:
        cols.append(pl.col(inp.session).alias(SESSION))
        key.append(SESSION)
    if need_value:
        cols.append(pl.col(inp.value).cast(pl.Float64).alias(VALUE))
        key.append(VALUE)
    frame = (
        events.frame.with_row_index(ROW)
        .select(*cols, blank_row(events.columns).alias("_blank"))
        .join(
            units.lazy().select(UNIT, VARIANT, ASSIGNED_AT),
            on=UNIT,
            how="left",
            maintain_order="left",
        )
        .join(
            excluded.lazy().with_columns(pl.lit(True).alias("_excl")),
            on=UNIT,
            how="left",
            maintain_order="left",
        )
    )
    rules = [
        (pl.col("_blank"), BLANK_LINE),
        (pl.col(UNIT).is_null(), "event with null unit id"),
        (pl.col(EVENT).is_null(), "event with null event name"),
        (pl.col("_ts_raw").is_null(), "event with missing timestamp"),
        (pl.col(TS).is_null(), "event with unparseable timestamp"),
        (pl.col("_excl").is_not_null(), "event of a unit excluded from the assignments"),
        (pl.col(VARIANT).is_null(), "event of a unit that is not in the assignments"),
        (pl.col(TS) < pl.col(ASSIGNED_AT), EVENT_BEFORE_ASSIGNMENT),
    ]
    configured_end = configured_export_end(spec)
    if configured_end is not None:
        rules.append(
            (pl.col(TS) > pl.lit(configured_end), "event after the export end ([input] export_end)")
        )
    frame = frame.with_columns(first_reason(rules).alias(REASON))
    frame = _flag_duplicates(frame, key)
    slim = [
        UNIT,
        VARIANT,
        DAY,
        EVENT,
        *([SESSION] if need_session else []),
        *([VALUE] if need_value else []),
        *([TS] if any(m.kind.survival for m in metrics) else []),
    ]
    try:
        # one pass over the export materialises the annotated rows (slim columns only)
        annotated = (
            frame.with_columns(
                ((pl.col(TS) - pl.col(ASSIGNED_AT)).dt.total_microseconds() // _DAY_US)
                .cast(pl.Int32)
                .alias(DAY),
                pl.col(EVENT).cast(pl.Categorical),
            )
            .select(*dict.fromkeys([REASON, TS, *slim]))
            .collect()
        )
    except pl.exceptions.PolarsError as exc:
        raise AbkitInputError(f"could not process the events: {exc}", source=events.label) from None
    counts = annotated.group_by(REASON).len()
    valid_frame = annotated.filter(pl.col(REASON).is_null())
    del annotated
    _fail_on_unreadable_times(frame, counts, events, inp.timestamp)
    ledger.add_counts("events", counts)
    export_end = _export_end(valid_frame, spec, events)
    schedule = schedule_for(units, export_end) if with_looks else None
    if schedule is not None:
        valid_frame = valid_frame.with_columns(schedule.index(TS).alias(LOOK))
        slim.append(LOOK)
    valid_frame = valid_frame.select(slim)
    valid = valid_frame.lazy()
    aggregates = [e for m in metrics for e in m.kind.event_aggregates(m, output_event)]
    depth_events = {
        m.name: e for m in metrics if (e := m.kind.session_histogram_event(m, output_event))
    }
    queries = [valid.group_by(UNIT).agg(aggregates) if aggregates else valid.select(UNIT).unique()]
    for event in depth_events.values():
        queries.append(
            valid.filter(pl.col(SESSION).is_not_null())
            .group_by(UNIT, SESSION)
            .agg(pl.col(VARIANT).first(), (pl.col(EVENT) == event).sum().alias(DEPTH))
            .group_by(VARIANT, DEPTH)
            .len("sessions")
            .sort(VARIANT, DEPTH)
        )
    if need_session:
        queries.append(valid.select(pl.col(SESSION).is_null().sum().alias("null_sessions")))
    # Per-unit sums may be of floats: the in-memory engine adds them in a fixed order
    # (same input, same bits); the streaming engine merges partial sums in any order.
    # The other queries count integers, which are exact in any order.
    per_unit = queries[0].collect(engine="in-memory")
    results = [per_unit, *pl.collect_all(queries[1:])]
    table = units.join(per_unit, on=UNIT, how="left", maintain_order="left")
    keep_null = {value_column(m) for m in metrics if not m.kind.zero_when_inactive}
    fill = [c for c in per_unit.columns if c != UNIT and c not in keep_null]
    table = table.with_columns(pl.col(fill).fill_null(0))
    out = EventUnits(units=table, export_end=export_end)
    for metric in metrics:
        last_day = metric.kind.maturity_day(metric)
        if last_day is not None:
            out.units, out.eligibility[metric.name] = _apply_eligibility(
                out.units, metric, last_day, export_end
            )
    for name, hist in zip(depth_events, results[1 : 1 + len(depth_events)], strict=True):
        out.depth_histograms[name] = hist
    if need_session:
        nulls = int(results[-1].item())
        if nulls:
            out.notes.append(
                f"{nulls} valid event(s) have no session id; they count for other metrics but "
                "not for session depth."
            )
    out.retention_curve = retention_curve(valid, units, export_end)
    out.event_names = frozenset(
        valid_frame.get_column(EVENT).cast(pl.String).unique().drop_nulls().to_list()
    )
    if schedule is not None:
        out.looks = event_look_series(
            valid, out.units, metrics, schedule, assignments.variants, output_event
        )
    return out


def _flag_duplicates(frame: pl.LazyFrame, key: list[str]) -> pl.LazyFrame:
    """Mark exact repeats of a valid event (all of ``key`` equal) as duplicates.

    Rows are hashed first; only rows whose hash repeats (true repeats plus the rare
    collision) are compared exactly, so the result is exact and the expensive
    multi-column comparison runs on a handful of rows.
    """
    valid = pl.col(REASON).is_null()
    hashed = frame.with_columns(pl.when(valid).then(pl.struct(key).hash(seed=0)).alias("_h"))
    repeats = (
        hashed.filter(valid & pl.col("_h").is_duplicated())
        .select(ROW, *key)
        .sort(ROW)
        .filter(~pl.struct(key).is_first_distinct())
        .select(ROW, pl.lit(True).alias("_dup"))
    )
    return (
        hashed.join(repeats, on=ROW, how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_dup").is_not_null())
            .then(pl.lit("duplicate event (same unit, time, name, session and value)"))
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
        .drop("_h", "_dup")
    )


def _fail_on_unreadable_times(
    frame: pl.LazyFrame, counts: pl.DataFrame, events: Table, column: str
) -> None:
    reasons = dict(counts.iter_rows())
    bad = reasons.get("event with unparseable timestamp", 0)
    if bad and bad == sum(n for r, n in reasons.items() if r != "event with null unit id"):
        row, example = (
            frame.filter(pl.col(REASON) == "event with unparseable timestamp")
            .select(pl.col(ROW), pl.col("_ts_raw"))
            .sort(ROW)
            .head(1)
            .collect()
            .row(0)
        )
        raise AbkitInputError(
            f"no event timestamp could be parsed (first at data row {row + 1}: {example!r}).",
            source=events.label,
            column=column,
            hint="Use ISO 8601 (2024-05-01T13:45:00Z), a date, or Unix epoch seconds.",
        )


def configured_export_end(spec: ExperimentSpec) -> dt.datetime | None:
    """``[input] export_end`` parsed as a UTC timestamp, or None when not set."""
    if not spec.input.export_end:
        return None
    parsed = (
        pl.DataFrame({"e": [spec.input.export_end]})
        .select(parse_timestamp("e", pl.String()))
        .item()
    )
    if parsed is None:
        raise AbkitInputError(
            f"key 'input.export_end' = {spec.input.export_end!r} is not a timestamp."
        )
    return parsed


# the default export end (the latest valid event) is refused when it lies in the future,
# or this far beyond the time by which 99.9 % of the valid events happened
_TAIL_QUANTILE, _TAIL_GAP = 0.999, dt.timedelta(days=30)


def _export_end(valid: pl.DataFrame, spec: ExperimentSpec, events: Table) -> dt.datetime:
    configured = configured_export_end(spec)
    if configured is not None:
        return configured
    stats = valid.select(
        pl.col(TS).max().alias("end"), pl.col(TS).quantile(_TAIL_QUANTILE, "lower").alias("bulk")
    )
    value, bulk = stats.item(0, "end"), stats.item(0, "bulk")
    if value is None:
        raise AbkitInputError(
            "no event could be used (all were excluded; see the exclusions above), so there "
            "is nothing to analyse.",
            source=events.label,
        )
    now = dt.datetime.now(dt.UTC)
    if value > now + dt.timedelta(days=1) or value - bulk > _TAIL_GAP:
        late = valid.filter(pl.col(TS) > (now if value > now else bulk + _TAIL_GAP))
        where = (
            "in the future" if value > now else f"over {_TAIL_GAP.days} days after 99.9 % of them"
        )
        raise AbkitInputError(
            f"{late.height:,} event(s) are stamped {where} (the latest at {value.isoformat()}), "
            "so the export end cannot be taken from the latest event: it would make immature "
            "retention windows look mature and lower every rate.",
            source=events.label,
            column=spec.input.timestamp,
            hint="Fix those timestamps, or set [input] export_end to the real end of the "
            "export (events after it are then excluded and counted).",
        )
    return value


def _apply_eligibility(
    units: pl.DataFrame, metric: MetricSpec, last: int, export_end: dt.datetime
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Null out a metric for units whose last day b has not fully elapsed (retention
    windows [a, b]).

    Eligible iff assigned_at + (b + 1)·24 h ≤ export end.
    """
    col = value_column(metric)
    eligible = pl.col(ASSIGNED_AT) + pl.duration(days=last + 1) <= pl.lit(export_end)
    units = units.with_columns(pl.when(eligible).then(pl.col(col)).alias(col))
    counts = units.group_by(VARIANT).agg(
        pl.len().alias("assigned"), pl.col(col).is_not_null().sum().alias("eligible")
    )
    info = {
        "assigned": int(counts["assigned"].sum()),
        "eligible": int(counts["eligible"].sum()),
    }
    return units, info


CURVE_DAYS = 60


def retention_curve(
    valid: pl.LazyFrame, units: pl.DataFrame, export_end: dt.datetime
) -> pl.DataFrame:
    """Per variant and day k = 0 … : units whose day k has fully elapsed (eligible) and
    how many of them had any event on day k (active)."""
    elapsed = (pl.lit(export_end) - pl.col(ASSIGNED_AT)).dt.total_microseconds() // _DAY_US
    last = units.select(UNIT, VARIANT, (elapsed - 1).alias("last_day"))
    latest = last["last_day"].max()
    horizon = min(CURVE_DAYS, max(0, latest)) if isinstance(latest, int) else 0
    # eligible on day k = units whose last complete day is >= k: a reverse cumulative
    # count over the (capped) last-day histogram, not a units x days cross join
    capped = last.filter(pl.col("last_day") >= 0).with_columns(
        pl.col("last_day").clip(upper_bound=horizon).cast(pl.Int32).alias(DAY)
    )
    days = pl.DataFrame({DAY: list(range(horizon + 1))}, schema={DAY: pl.Int32})
    eligible = (
        capped.group_by(VARIANT, DAY)
        .len("n")
        .join(
            days.join(capped.select(VARIANT).unique(), how="cross"), on=[VARIANT, DAY], how="right"
        )
        .with_columns(pl.col("n").fill_null(0))
        .sort(VARIANT, DAY, descending=[False, True])
        .with_columns(pl.col("n").cum_sum().over(VARIANT).cast(pl.UInt32).alias("eligible"))
        .select(VARIANT, DAY, "eligible")
        .filter(pl.col("eligible") > 0)
    )
    active = (
        valid.select(UNIT, DAY)
        .unique()
        .join(last.lazy(), on=UNIT)
        .filter((pl.col(DAY) <= pl.col("last_day")) & (pl.col(DAY) <= horizon))
        .group_by(VARIANT, DAY)
        .len("active")
        .collect()
    )
    return (
        eligible.join(active, on=[VARIANT, DAY], how="left")
        .with_columns(pl.col("active").fill_null(0))
        .sort(VARIANT, DAY)
    )
