"""Cumulative per-arm sufficient statistics at daily looks, in one pass over the events.

Look k (k = 0 … L−1) is taken at T_k = min(origin + (k + 1) days, export end), where
the origin is midnight UTC of the first assignment; the last look is the export end,
so it reproduces the fixed-horizon analysis exactly.  At look k an arm holds the units
assigned by T_k, each with its metric computed from its events up to T_k.

A unit's value x changes only at looks where it has events, so the arm sums are
cumulative sums of per-(unit, look) changes: Δn at the unit's first look, and
Δx, Δx² = x_k² − x_{k−1}², Δy, Δy², Δxy = x_k y_k − x_{k−1} y_{k−1} where its value
moves.  Retention enters a unit once, at the look where its window has matured.

On Polars the changes are computed from the valid events' rows in NumPy
(:func:`event_look_series`).  On another engine (DuckDB, Spark, SQLFrame, Ibis) the same
changes are computed there and only their per-(variant, look) totals come back
(:func:`engine_look_series`): the per-(unit, look) amounts by a group-by, the running
sums by a cumulative sum over each unit's looks, and the totals in fixed point
(:func:`exact_grouped_sums`), so that the engine's order of addition does not show
after the cancellation in s² = (Σx² − n·x̄²)/(n − 1); the CUPED moments at each look
likewise (:func:`_engine_adjusted_looks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import narwhals as nw
import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.backend import collect_all, materialise, with_days_between
from abkit.errors import AbkitInputError
from abkit.metrics.base import value_column
from abkit.metrics.references import (
    ACTIVE,
    ACTIVE_DAYS,
    DAY,
    EVENT,
    EXACT,
    LOOK,
    SESSION,
    SESSIONS,
    count_where,
    counted_once,
    exponent,
    first_seen,
    referenced_events,
    unit_aggregate,
    unscaled,
)
from abkit.names import ASSIGNED_AT, ORDER, UNIT, VARIANT
from abkit.stats.arm import ArmSummary
from abkit.stats.cuped import Moments

_DAY = dt.timedelta(days=1)
_SUMS = ("n", "sx", "sxx", "sy", "syy", "sxy")


@dataclass(frozen=True)
class LookSchedule:
    """Calendar of daily looks for an export."""

    origin: dt.datetime
    export_end: dt.datetime

    @property
    def count(self) -> int:
        return max(1, -(-(self.export_end - self.origin) // _DAY))

    def times(self) -> list[dt.datetime]:
        return [min(self.origin + (k + 1) * _DAY, self.export_end) for k in range(self.count)]

    def index(self, column: str) -> pl.Expr:
        """Look at which a timestamp column is first visible: floor((t − origin)/day)."""
        us = (pl.col(column) - pl.lit(self.origin)).dt.total_microseconds()
        return (us // 86_400_000_000).clip(0, self.count - 1).cast(pl.Int32)

    def maturity_index(self, last_day: int) -> pl.Expr:
        """First look whose time covers assigned_at + (last_day + 1) days."""
        due = pl.col(ASSIGNED_AT) + pl.duration(days=last_day + 1) - pl.lit(self.origin)
        us = due.dt.total_microseconds()
        return (-(-us // 86_400_000_000) - 1).clip(0, self.count - 1).cast(pl.Int32)


# daily looks beyond this many (about three years) mean a mis-stamped assignment, and the
# per-look statistics would cost minutes for nothing
MAX_LOOKS = 1_100


def schedule_for(units: pl.DataFrame, export_end: dt.datetime) -> LookSchedule:
    first = units.get_column(ASSIGNED_AT).min()
    if not isinstance(first, dt.datetime):
        raise AbkitInputError("no unit has an assignment time, so there is no look to take.")
    origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
    schedule = LookSchedule(origin=origin, export_end=export_end)
    if schedule.count > MAX_LOOKS:
        early = units.filter(pl.col(ASSIGNED_AT) < pl.lit(export_end - MAX_LOOKS * _DAY))
        raise AbkitInputError(
            f"daily monitoring would need {schedule.count:,} looks: the first assignment is "
            f"at {origin.date().isoformat()} and the export ends at {export_end.isoformat()}; "
            f"{early.height:,} unit(s) were assigned more than {MAX_LOOKS:,} days before the "
            "end, which usually means mis-stamped assignment times.",
            hint="Fix those timestamps (or leave those units out of the assignments) and "
            "run again.",
        )
    return schedule


@dataclass(frozen=True)
class LookSeries:
    """Per-look arm summaries of one metric; ``labels`` say when each look was taken
    (ISO timestamps, or the summary table's day values); ``days`` are the days since
    the origin at which each look falls (whole days for event exports)."""

    labels: list[str]
    days: list[float]
    arms: list[dict[str, ArmSummary]]
    unit: Literal["day", "checkpoint"] = "day"
    # CUPED: per look and arm the moments of (metric components, covariates), and the
    # covariates' names; empty when the metric is not adjusted
    moments: list[dict[str, Moments]] = field(default_factory=list)
    covariates: tuple[str, ...] = ()


def _variant_codes(variants: tuple[str, ...]) -> pl.Expr:
    """Each row's variant as its index in ``variants`` (null for one not among them)."""
    return pl.col(VARIANT).replace_strict(
        list(variants), list(range(len(variants))), default=None, return_dtype=pl.Int64
    )


def _cumulate(
    entered: np.ndarray,
    code: np.ndarray,
    look: np.ndarray,
    deltas: Mapping[str, np.ndarray],
    variants: tuple[str, ...],
) -> dict[str, dict[str, np.ndarray]]:
    """Per variant the running sums over the looks: n from ``entered`` (variants ×
    looks: units entering at each look), the moments from the rows' ``deltas`` added
    at their (variant ``code``, ``look``).  A bucket's deltas are added in row order,
    one after another (``np.bincount``), so the sums do not depend on threads."""
    looks = entered.shape[1]
    bucket = code * looks + look
    size = len(variants) * looks
    sums = {
        k: np.bincount(bucket, weights=d, minlength=size).reshape(len(variants), looks)
        for k, d in deltas.items()
    }
    out = {}
    for i, v in enumerate(variants):
        arm = {"n": np.cumsum(entered[i])}
        for k in _SUMS[1:]:
            arm[k] = np.cumsum(sums[k][i]) if k in sums else np.zeros(looks)
        out[v] = arm
    return out


def _series(
    cumulative: dict[str, dict[str, np.ndarray]], ratio: bool, times: list[dt.datetime]
) -> LookSeries:
    arms = []
    for k in range(len(times)):
        look = {}
        for v, s in cumulative.items():
            n = s["n"][k]
            if n == 0:
                look[v] = ArmSummary(n=0, mean=np.nan, var=np.nan)
            elif ratio:
                look[v] = ArmSummary.from_sums(
                    n, s["sx"][k], s["sxx"][k], s["sy"][k], s["syy"][k], s["sxy"][k]
                )
            else:
                look[v] = ArmSummary.from_sums(n, s["sx"][k], s["sxx"][k])
        arms.append(look)
    return LookSeries(
        labels=[t.isoformat() for t in times],
        days=[float(k + 1) for k in range(len(times))],
        arms=arms,
    )


def _entered(codes: np.ndarray, look: np.ndarray, variants: int, looks: int) -> np.ndarray:
    """Units entering each arm at each look (variants × looks), as floats."""
    kept = codes >= 0
    counts = np.bincount(codes[kept] * looks + look[kept], minlength=variants * looks)
    return counts.reshape(variants, looks).astype(float)


@dataclass(frozen=True)
class _UnitLooks:
    """One row per unit and look at which the unit has valid events, sorted by unit
    then look: the unit's place in the assignments (the unit table's row), its
    variant's index, the look, and per reference the amount the look adds (0 where it
    adds nothing)."""

    rank: np.ndarray
    code: np.ndarray
    look: np.ndarray
    amounts: dict[str, np.ndarray]
    steps: list[np.ndarray]  # per place k = 1, 2, … in a unit's rows: the rows there

    @classmethod
    def of(
        cls, rank: np.ndarray, code: np.ndarray, look: np.ndarray, amounts: dict[str, np.ndarray]
    ) -> _UnitLooks:
        index = np.arange(rank.size)
        starts = np.ones(rank.size, dtype=bool)
        starts[1:] = rank[1:] != rank[:-1]
        place = index - np.maximum.accumulate(np.where(starts, index, 0))
        order = np.argsort(place, kind="stable")
        ends = np.searchsorted(place[order], np.arange(place.max(initial=0) + 2))
        steps = [order[ends[k] : ends[k + 1]] for k in range(1, ends.size - 1)]
        return cls(rank, code, look, amounts, steps)

    def running(self, ref: str) -> np.ndarray:
        """The unit's sum of ``ref`` up to each of its looks, added look by look in
        order (as a per-unit cumulative sum adds them)."""
        amount = self.amounts[ref]
        total = amount.copy()
        for rows in self.steps:
            total[rows] = total[rows - 1] + amount[rows]
        return total


def _unit_looks(valid: pl.LazyFrame, codes: np.ndarray, refs: list[str], looks: int) -> _UnitLooks:
    """Per (unit, look) the amount of every reference: the sums of the look's events in
    one grouped pass, and for a reference counted once (sessions, active days, being
    active) how many of its items the look sees first (:func:`first_seen`).

    A unit is keyed by its place in the assignments (``ORDER``, which ``valid``
    carries), and a (unit, look) by the one integer place · looks + look, so that the
    events are grouped on one integer key with no join; ``codes`` holds each unit's
    variant index by that place (−1 for a unit in no arm, whose rows are left out)."""
    key = (pl.col(ORDER).cast(pl.Int64) * looks + pl.col(LOOK)).alias("_key")
    summed = [r for r in refs if not counted_once(r)]
    queries = []
    if summed:
        # a look adds to a sum only through the events the sum reads; a (unit, look)
        # where no reference adds anything changes no arm sum, so it may be left out
        read = sorted({e for r in summed for e in referenced_events(r)})
        events = nw.from_native(valid.filter(pl.col(EVENT).is_in(read)).with_columns(key))
        sums = events.group_by("_key").agg(unit_aggregate(r).alias(r) for r in summed)
        queries.append(nw.to_native(sums))
    queries += [
        first_seen(valid, r, unit=ORDER).select(key, pl.col("amount").alias(r))
        for r in refs
        if counted_once(r)
    ]
    # the amounts are exact (counts, fixed-point value sums), so any engine and order of
    # addition gives the same numbers: the streaming engine groups in less time and
    # memory, one query at a time so that one's hash tables are gone before the next
    parts = [q.collect(engine="streaming").sort("_key") for q in queries]
    # the (unit, look) keys of every part, in order, of the units in an arm
    keys = np.sort(np.concatenate([p.get_column("_key").to_numpy() for p in parts]), kind="stable")
    first = np.ones(keys.size, dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    keys = keys[first]
    keys = keys[codes[keys // looks] >= 0]
    amounts = {}
    for part in parts:
        part_keys = part.get_column("_key").to_numpy()
        in_arm = codes[part_keys // looks] >= 0
        at = np.searchsorted(keys, part_keys[in_arm])
        for ref in part.columns[1:]:
            values = part.get_column(ref).fill_null(0).cast(pl.Float64).to_numpy()
            amounts[ref] = np.zeros(keys.size)
            amounts[ref][at] = values[in_arm]
    rank = keys // looks
    return _UnitLooks.of(rank, codes[rank], keys % looks, amounts)


def event_look_series(
    valid: pl.LazyFrame,
    units: pl.DataFrame,
    metrics: tuple[MetricSpec, ...],
    schedule: LookSchedule,
    variants: tuple[str, ...],
    output_event: str,
    covariates: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, LookSeries]:
    """Per-look series for every metric. ``valid`` holds the valid events with a
    ``LOOK`` column (and the columns of :mod:`abkit.metrics.references`).
    ``covariates`` (metric name → covariate column → name) adds each look's CUPED
    moments (:func:`_adjusted_looks`).

    The events are grouped once per (unit, look); each metric's per-unit running sums
    and the changes they make to the arm sums are then array arithmetic over those
    rows, in the order of units and looks."""
    looks = schedule.count
    times = schedule.times()
    nv = len(variants)
    codes = units.select(UNIT, VARIANT, _variant_codes(variants).alias("_code"))
    unit_codes = codes.get_column("_code").fill_null(-1).to_numpy()
    entry_look = units.select(schedule.index(ASSIGNED_AT)).to_series().to_numpy()
    entered = _entered(unit_codes, entry_look, nv, looks)
    # quantile metrics have their own looks (:mod:`abkit.engine.quantile_looks`)
    metrics = tuple(m for m in metrics if m.kind.value_reference(m) is None)
    followed = [
        m for m in metrics if m.kind.maturity_day(m) is None and m.kind.references(m, output_event)
    ]
    read = sorted({r for m in followed for r in m.kind.references(m, output_event)})
    # the unit table is in the assignments' order, by which ``valid`` keys its units
    rows = _unit_looks(valid, unit_codes, read, looks) if followed else None
    running: dict[str, np.ndarray] = {}
    out: dict[str, LookSeries] = {}
    for metric in metrics:
        kind = metric.kind
        last_day = kind.maturity_day(metric)
        if last_day is not None:  # a unit enters once, when its window has matured
            value = pl.col(value_column(metric))
            matured = units.select(
                value.is_not_null().alias("kept"),
                schedule.maturity_index(last_day).alias(LOOK),
                value.cast(pl.Float64).fill_null(0.0).alias("x"),
            )
            kept = matured.get_column("kept").to_numpy() & (unit_codes >= 0)
            code, look = unit_codes[kept], matured.get_column(LOOK).to_numpy()[kept]
            x = matured.get_column("x").to_numpy()[kept]
            cumulative = _cumulate(
                _entered(code, look, nv, looks), code, look, {"sx": x, "sxx": x * x}, variants
            )
            out[metric.name] = _series(cumulative, False, times)
            if covariates and metric.name in covariates:
                entered_units = units.filter(value.is_not_null()).with_columns(
                    schedule.maturity_index(last_day).alias(LOOK),
                    value.cast(pl.Float64).alias("x"),
                )
                steps = entered_units.select(UNIT, VARIANT, LOOK, pl.col("x").alias("dx"))
                out[metric.name] = _adjusted_looks(
                    out[metric.name], entered_units, steps, covariates[metric.name], 1, variants
                )
            continue
        refs = kind.references(metric, output_event)
        if not refs or rows is None:  # account-level types (no sequential monitoring)
            continue
        for ref in refs:
            if ref not in running:
                running[ref] = rows.running(ref)
        x, a0 = running[refs[0]], rows.amounts[refs[0]]
        x_prev = x - a0
        if kind.is_rate:  # indicators: ever did it by the look
            x, x_prev = (x > 0).astype(float), (x_prev > 0).astype(float)
        deltas = {"sx": x - x_prev, "sxx": x * x - x_prev * x_prev}
        if kind.is_ratio:
            y, a1 = running[refs[1]], rows.amounts[refs[1]]
            y_prev = y - a1
            deltas |= {"sy": y - y_prev, "syy": y * y - y_prev * y_prev}
            deltas["sxy"] = x * y - x_prev * y_prev
        cumulative = _cumulate(entered, rows.code, rows.look, deltas, variants)
        out[metric.name] = _series(cumulative, kind.is_ratio, times)
        if covariates and metric.name in covariates:
            steps = (
                codes[rows.rank]
                .select(UNIT, VARIANT)
                .with_columns(
                    pl.Series(LOOK, rows.look),
                    pl.Series("dx", deltas["sx"]),
                    *([pl.Series("dy", rows.amounts[refs[1]])] if kind.is_ratio else []),
                )
            )
            entered_units = units.with_columns(schedule.index(ASSIGNED_AT).alias(LOOK))
            out[metric.name] = _adjusted_looks(
                out[metric.name],
                entered_units,
                steps,
                covariates[metric.name],
                2 if kind.is_ratio else 1,
                variants,
            )
    return out


def with_look(
    frame: nw.LazyFrame[Any],
    schedule: LookSchedule,
    column: str,
    origin: dt.datetime | None = None,
) -> nw.LazyFrame[Any]:
    """``frame`` with ``LOOK``, the look at which the timestamp ``column`` is first
    visible, on the frame's engine: ⌊(t − origin) / 24 h⌋ clipped to 0 … L−1, as
    :meth:`LookSchedule.index` computes it in Polars (``origin``: another instant than
    the schedule's, e.g. for :func:`_maturity_origin`)."""
    start = schedule.origin if origin is None else origin
    framed = frame.with_columns(nw.lit(start).alias("_origin"))
    days = with_days_between(framed, "_origin", column, LOOK).drop("_origin")
    return days.with_columns(nw.col(LOOK).clip(0, schedule.count - 1).cast(nw.Int32))


def _maturity_origin(schedule: LookSchedule, last_day: int) -> dt.datetime:
    """The instant o′ for which ⌊(assigned − o′) / 24 h⌋ is
    :meth:`LookSchedule.maturity_index`: with u = assigned + (b + 1) days − origin in
    whole microseconds (u > 0), ⌈u / 24 h⌉ − 1 = ⌊(u − 1 µs) / 24 h⌋, so
    o′ = origin − (b + 1) days + 1 µs."""
    return schedule.origin - (last_day + 1) * _DAY + dt.timedelta(microseconds=1)


def exact_grouped_sums(
    frame: nw.LazyFrame[Any], keys: list[str], values: Mapping[str, nw.Expr]
) -> dict[tuple[Any, ...], dict[str, float]]:
    """Per group of ``keys``, the sum of every expression of ``values``, exact whatever
    order the engine adds in, in two queries that each return one row per group.

    Each value v is scaled by s = 2^k (an exact multiplication) bringing the largest
    |v| of the frame near 10⁴ (query 1), the scaled values are summed in fixed point
    (:data:`abkit.metrics.references.EXACT`, 18 digits after the point; query 2), and
    the exact sum is divided by s here, correctly rounded.  A value below 10⁻¹⁸/s is
    lost to the fixed point, 10⁻²² of the largest.
    """
    (largest,) = collect_all([frame.select(*(v.abs().max().alias(n) for n, v in values.items()))])
    exponents = {n: exponent(float(largest[n][0] or 0.0)) for n in values}
    (sums,) = collect_all(
        [
            frame.group_by(*keys).agg(
                *((v * 2.0 ** exponents[n]).cast(EXACT).sum().alias(n) for n, v in values.items())
            )
        ]
    )
    return {
        tuple(r[k] for k in keys): {
            n: unscaled(r[n], exponents[n]) if r[n] is not None else 0.0 for n in values
        }
        for r in sums.iter_rows(named=True)
    }


def _arm_sums(
    sums: dict[tuple[Any, ...], dict[str, float]],
    entered: np.ndarray,
    variants: tuple[str, ...],
    looks: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Per variant the running sums over the looks (:func:`_cumulate`'s), from the
    per-(variant, look) sums of the changes and the units entering (``entered``)."""
    out = {}
    for i, v in enumerate(variants):
        arm = {"n": np.cumsum(entered[i])}
        for name in _SUMS[1:]:
            steps = np.zeros(looks)
            for look in range(looks):
                steps[look] = sums.get((v, look), {}).get(name, 0.0)
            arm[name] = np.cumsum(steps)
        out[v] = arm
    return out


def _engine_unit_looks(valid: nw.LazyFrame[Any], refs: list[str]) -> nw.LazyFrame[Any]:
    """:func:`_unit_looks` on the events' engine: one row per (unit, look) where a
    reference adds something, with UNIT, VARIANT, LOOK, each reference's amount
    ``_a{i}`` and the unit's running sum ``_r{i}`` up to the look (a cumulative sum over
    the unit's looks, in fixed point so that its order of addition does not matter)."""
    summed = [(i, r) for i, r in enumerate(refs) if not counted_once(r)]
    parts = []
    if summed:
        read = sorted({e for _, r in summed for e in referenced_events(r)})
        parts.append(
            valid.filter(nw.col(EVENT).is_in(read))
            .group_by(UNIT, VARIANT, LOOK)
            .agg(*(unit_aggregate(r).cast(nw.Float64).alias(f"_a{i}") for i, r in summed))
        )
    for i, ref in enumerate(refs):
        if not counted_once(ref):
            continue
        keys = {SESSIONS: [UNIT, SESSION], ACTIVE_DAYS: [UNIT, DAY], ACTIVE: [UNIT]}[ref]
        present = valid.filter(*(~nw.col(k).is_null() for k in keys))
        first = present.group_by(*keys).agg(nw.col(LOOK).min(), nw.col(VARIANT).min())
        parts.append(
            first.group_by(UNIT, VARIANT, LOOK).agg(nw.len().cast(nw.Float64).alias(f"_a{i}"))
        )
    aligned = [
        part.select(
            UNIT,
            VARIANT,
            LOOK,
            *(
                nw.col(f"_a{i}") if f"_a{i}" in names else nw.lit(0.0, nw.Float64).alias(f"_a{i}")
                for i in range(len(refs))
            ),
        )
        for part in parts
        if (names := part.collect_schema().names())
    ]
    amounts = nw.concat(aligned, how="vertical") if len(aligned) > 1 else aligned[0]
    # each amount is non-zero in one part only: the sums add zeros, exactly
    per_look = amounts.group_by(UNIT, VARIANT, LOOK).agg(
        *(nw.col(f"_a{i}").sum() for i in range(len(refs)))
    )
    running = [
        nw.col(f"_a{i}").cast(EXACT).cum_sum().over(UNIT, order_by=LOOK).cast(nw.Float64)
        for i in range(len(refs))
    ]
    return materialise(per_look.with_columns(*(r.alias(f"_r{i}") for i, r in enumerate(running))))


def engine_look_series(
    valid: nw.LazyFrame[Any],
    table: nw.LazyFrame[Any],
    units: pl.DataFrame,
    metrics: tuple[MetricSpec, ...],
    schedule: LookSchedule,
    variants: tuple[str, ...],
    output_event: str,
    covariates: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, LookSeries]:
    """:func:`event_look_series` on the events' engine: only per-(variant, look) sums
    come back.

    Parameters
    ----------
    valid : narwhals.LazyFrame
        The valid events after de-duplication with ``LOOK`` (:func:`with_look`) and
        VARIANT, on their engine.
    table : narwhals.LazyFrame
        The unit table on the engine (VARIANT, ASSIGNED_AT, the metric columns).
    units : polars.DataFrame
        The assigned units (UNIT, VARIANT, ASSIGNED_AT), in this process: the units
        entering each arm at each look are counted here.
    metrics, schedule, variants, output_event, covariates
        As for :func:`event_look_series`.

    Returns
    -------
    dict of str to LookSeries
        The same series as :func:`event_look_series` gives, with each look's CUPED
        moments for the metrics in ``covariates`` (:func:`_engine_adjusted_looks`).

    Notes
    -----
    Per (unit, look) the references' amounts a and the unit's running sums x
    (:func:`_engine_unit_looks`) give the changes of the arm sums at that look,
    Δx = x − x₋, Δx² = x² − x₋², Δy, Δy², Δxy = xy − x₋y₋ with x₋ = x − a (a rate's
    x is 1[x > 0]); their per-(variant, look) totals are summed exactly
    (:func:`exact_grouped_sums`) and cumulated over the looks here.  A unit with a
    maturity day b enters once, at its maturity look, with its value in the unit table.
    The arm's variance is then s² = (Σx² − n·x̄²)/(n − 1) (:meth:`ArmSummary.from_sums`),
    as on Polars.
    """
    looks = schedule.count
    times = schedule.times()
    nv = len(variants)
    unit_codes = units.select(_variant_codes(variants)).to_series().fill_null(-1).to_numpy()
    entry_look = units.select(schedule.index(ASSIGNED_AT)).to_series().to_numpy()
    entered = _entered(unit_codes, entry_look, nv, looks)
    metrics = tuple(m for m in metrics if m.kind.value_reference(m) is None)
    followed = [
        m for m in metrics if m.kind.maturity_day(m) is None and m.kind.references(m, output_event)
    ]
    refs = sorted({r for m in followed for r in m.kind.references(m, output_event)})
    changes: dict[str, nw.Expr] = {}
    for j, metric in enumerate(followed):
        kind = metric.kind
        place = [refs.index(r) for r in kind.references(metric, output_event)]
        x = nw.col(f"_r{place[0]}")
        x_prev = x - nw.col(f"_a{place[0]}")
        if kind.is_rate:  # indicators: ever did it by the look
            x = nw.when(x > 0).then(nw.lit(1.0)).otherwise(nw.lit(0.0))
            x_prev = nw.when(x_prev > 0).then(nw.lit(1.0)).otherwise(nw.lit(0.0))
        changes |= {f"{j}:sx": x - x_prev, f"{j}:sxx": x * x - x_prev * x_prev}
        if kind.is_ratio:
            y = nw.col(f"_r{place[1]}")
            y_prev = y - nw.col(f"_a{place[1]}")
            changes |= {f"{j}:sy": y - y_prev, f"{j}:syy": y * y - y_prev * y_prev}
            changes[f"{j}:sxy"] = x * y - x_prev * y_prev
    unit_looks = _engine_unit_looks(valid, refs) if changes else None
    per_look = (
        exact_grouped_sums(unit_looks, [VARIANT, LOOK], changes) if unit_looks is not None else {}
    )
    adjusted = covariates or {}
    out: dict[str, LookSeries] = {}
    for metric in metrics:
        kind = metric.kind
        last_day = kind.maturity_day(metric)
        if last_day is not None:  # a unit enters once, when its window has matured
            value = nw.col(value_column(metric))
            matured = with_look(
                table.filter(~value.is_null()),
                schedule,
                ASSIGNED_AT,
                _maturity_origin(schedule, last_day),
            )
            x = value.cast(nw.Float64)
            sums = exact_grouped_sums(
                matured,
                [VARIANT, LOOK],
                {"n": (~x.is_null()).cast(nw.Float64), "sx": x, "sxx": x * x},
            )
            counts = np.zeros((nv, looks))
            for (v, look), row in sums.items():
                if v in variants:
                    counts[variants.index(v), look] = row["n"]
            out[metric.name] = _series(_arm_sums(sums, counts, variants, looks), False, times)
            if metric.name in adjusted:
                steps = matured.select(UNIT, LOOK, x.alias("dx"))
                out[metric.name] = _engine_adjusted_looks(
                    out[metric.name], matured, steps, adjusted[metric.name], 1, variants
                )
            continue
        if metric not in followed or unit_looks is None:  # account-level types
            continue
        j = followed.index(metric)
        mine = {
            key: {name: row[f"{j}:{name}"] for name in _SUMS[1:] if f"{j}:{name}" in row}
            for key, row in per_look.items()
        }
        out[metric.name] = _series(_arm_sums(mine, entered, variants, looks), kind.is_ratio, times)
        if metric.name in adjusted:
            place = [refs.index(r) for r in kind.references(metric, output_event)]
            steps = unit_looks.select(
                UNIT,
                LOOK,
                changes[f"{j}:sx"].alias("dx"),
                *([nw.col(f"_a{place[1]}").alias("dy")] if kind.is_ratio else []),
            )
            out[metric.name] = _engine_adjusted_looks(
                out[metric.name],
                with_look(table, schedule, ASSIGNED_AT),
                steps,
                adjusted[metric.name],
                2 if kind.is_ratio else 1,
                variants,
            )
    return out


def _engine_adjusted_looks(
    series: LookSeries,
    entered: nw.LazyFrame[Any],
    steps: nw.LazyFrame[Any],
    columns: Mapping[str, str],
    components: int,
    variants: tuple[str, ...],
) -> LookSeries:
    """:func:`_adjusted_looks` on the engine: ``entered`` has one row per unit with
    UNIT, VARIANT, LOOK (its entry look) and the covariate columns, ``steps`` one row per
    (unit, look) change with UNIT, LOOK, dx[, dy].  Only per-(variant, look) sums come
    back: Σc and Σcc' at entry, and Σ Δx·c' (Σ Δy·c'), each summed exactly
    (:func:`exact_grouped_sums`) and cumulated over the looks here."""
    design, names, _ = covariate_design(entered, columns)
    if not names:
        return series
    k = len(names)
    looks = len(series.arms)
    c = [nw.col(f"_c{i}") for i in range(k)]
    cov = entered.select(UNIT, VARIANT, LOOK, *(e.alias(f"_c{i}") for i, e in enumerate(design)))
    at_entry = exact_grouped_sums(
        cov,
        [VARIANT, LOOK],
        {f"s{i}": c[i] for i in range(k)}
        | {f"s{i}_{j}": c[i] * c[j] for i in range(k) for j in range(i, k)},
    )
    parts = ["dx", "dy"][:components]
    moved = steps.join(cov.drop(LOOK), on=UNIT, how="inner")
    crossed = exact_grouped_sums(
        moved,
        [VARIANT, LOOK],
        {f"{d}{i}": nw.col(d) * c[i] for d in parts for i in range(k)},
    )
    moments: list[dict[str, Moments]] = [{} for _ in range(looks)]
    for v in variants:
        s1 = np.zeros((looks, k))
        s2 = np.zeros((looks, k, k))
        cross = np.zeros((looks, components, k))
        for t in range(looks):
            entry = at_entry.get((v, t), {})
            for i in range(k):
                s1[t, i] = entry.get(f"s{i}", 0.0)
                for j in range(i, k):
                    s2[t, i, j] = s2[t, j, i] = entry.get(f"s{i}_{j}", 0.0)
            step = crossed.get((v, t), {})
            for a, d in enumerate(parts):
                for i in range(k):
                    cross[t, a, i] = step.get(f"{d}{i}", 0.0)
        s1, s2, cross = np.cumsum(s1, 0), np.cumsum(s2, 0), np.cumsum(cross, 0)
        for t in range(looks):
            moments[t][v] = _moments(series.arms[t][v], s1[t], s2[t], cross[t], components)
    return replace(series, moments=moments, covariates=tuple(names))


def _adjusted_looks(
    series: LookSeries,
    entered: pl.DataFrame,
    steps: pl.DataFrame,
    columns: Mapping[str, str],
    components: int,
    variants: tuple[str, ...],
) -> LookSeries:
    """Add each look's CUPED moments to ``series``.

    The per-unit vector is z = (x[, y], c_1 … c_k).  A unit's covariates c are fixed:
    they enter the arm sums Σc and Σcc' once, at the unit's entry look (``entered``:
    one row per unit with UNIT, VARIANT, LOOK and the covariate columns); the metric's
    changes Δx (Δy) at later looks (``steps``: UNIT, VARIANT, LOOK, dx[, dy]) move Σx
    (Σy) — already in ``series`` — and the cross sums Σxc' by Δx·c'.  Σx², Σy², Σxy
    come from ``series``' own arm summaries.
    """
    frame = nw.from_native(entered)
    design, names, _ = covariate_design(frame.lazy(), columns)
    if not names:
        return series
    k = len(names)
    named = [e.alias(f"c{i}") for i, e in enumerate(design)]
    cov = frame.select(UNIT, *named).to_native()
    looks = len(series.arms)
    at_entry = frame.select(VARIANT, LOOK, *named).to_native()
    parts = ["dx", "dy"][:components]
    moved = steps.join(cov, on=UNIT, how="inner").select(
        VARIANT,
        LOOK,
        *((pl.col(d) * pl.col(f"c{i}")).alias(f"{d}c{i}") for d in parts for i in range(k)),
    )
    moments: list[dict[str, Moments]] = [{} for _ in range(looks)]
    for v in variants:
        ent = at_entry.filter(pl.col(VARIANT) == v)
        idx = ent[LOOK].to_numpy()
        c = ent.select(f"c{i}" for i in range(k)).to_numpy()
        s1 = np.zeros((looks, k))
        s2 = np.zeros((looks, k, k))
        np.add.at(s1, idx, c)
        np.add.at(s2, idx, c[:, :, None] * c[:, None, :])
        mv = moved.filter(pl.col(VARIANT) == v)
        cross = np.zeros((looks, components, k))
        for j, d in enumerate(parts):
            block = mv.select(f"{d}c{i}" for i in range(k)).to_numpy()
            np.add.at(cross[:, j, :], mv[LOOK].to_numpy(), block)
        s1, s2, cross = np.cumsum(s1, 0), np.cumsum(s2, 0), np.cumsum(cross, 0)
        for t in range(looks):
            moments[t][v] = _moments(series.arms[t][v], s1[t], s2[t], cross[t], components)
    return replace(series, moments=moments, covariates=tuple(names))


def _moments(
    arm: ArmSummary, sc: np.ndarray, scc: np.ndarray, sxc: np.ndarray, components: int
) -> Moments:
    """Moments of z = (x[, y], c) from the arm's summary of x (and y) and the covariate
    sums Σc, Σcc' and cross sums Σxc' (Σyc'), all over the arm's n units."""
    n, k = arm.n, sc.size
    p = components + k
    if n < 1:
        return Moments(0, np.full(p, np.nan), np.full((p, p), np.nan))
    mean = np.empty(p)
    mean[0] = arm.mean
    if components == 2:
        assert arm.den_mean is not None
        mean[1] = arm.den_mean
    mean[components:] = sc / n
    cov = np.full((p, p), np.nan)
    if n > 1:
        # co-moments from sums: (Σab − n·ā·b̄)/(n − 1); x and y's own come from ``arm``
        cov[components:, components:] = (
            scc - n * np.outer(mean[components:], mean[components:])
        ) / (n - 1)
        for j in range(components):
            cross = (sxc[j] - n * mean[j] * mean[components:]) / (n - 1)
            cov[j, components:] = cov[components:, j] = cross
        cov[0, 0] = arm.var
        if components == 2:
            assert arm.den_var is not None and arm.cov is not None
            cov[1, 1], cov[0, 1], cov[1, 0] = arm.den_var, arm.cov, arm.cov
    return Moments(n, mean, cov)


def covariate_design(
    units: nw.LazyFrame[Any], columns: Mapping[str, str]
) -> tuple[list[nw.Expr], list[str], list[str]]:
    """The covariate expressions over ``units`` wherever they are (a missing value is
    0, joined by a 0/1 indicator for a column with some missing), their names, and
    notes on what was filled in or left out (a column missing for every unit).

    The missing values are counted by one aggregate query where ``units`` is (a
    conditional count: Spark does not sum booleans); no unit row comes back.
    ``columns`` maps each covariate column to the name the reports give it (its
    indicator is named ``<name> missing``).
    """
    counts = [count_where(nw.col(c).is_null()).alias(f"__null{i}") for i, c in enumerate(columns)]
    (found,) = collect_all([units.select(nw.len().alias("__n"), *counts)])
    row = found.row(0, named=True)
    height = int(row["__n"] or 0)
    exprs: list[nw.Expr] = []
    names: list[str] = []
    notes: list[str] = []
    for i, (column, label) in enumerate(columns.items()):
        value = nw.col(column).cast(nw.Float64)
        missing = int(row[f"__null{i}"] or 0)
        if missing == height:
            notes.append(f"CUPED: covariate '{label}' is missing for every unit and is not used")
            continue
        exprs.append(value.fill_null(0.0))
        names.append(label)
        if missing:
            exprs.append(value.is_null().cast(nw.Float64))
            names.append(f"{label} missing")
            notes.append(
                f"CUPED: covariate '{label}' is missing for {missing:,} of {height:,} "
                "units; they are adjusted with 0 and a missing-value indicator"
            )
    return exprs, names, notes
