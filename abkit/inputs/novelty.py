"""Per-unit metric values in each period since assignment, reduced to per-arm moments
for the novelty check (:mod:`abkit.stats.novelty`).

A unit counts when its first W periods have all ended by the export end, so every
period holds the same units; W is the configured number of periods, or else the
largest number that at least half the units have completed.  A unit without events in
a period has 0 there (it was assigned and inactive).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import polars as pl

from abkit.config import MetricSpec, NoveltySpec
from abkit.engine.backend import collect_all, with_days_between
from abkit.inputs.comoments import arm_comoments
from abkit.inputs.unit_table import UnitTable
from abkit.metrics.base import component_columns
from abkit.metrics.references import PERIOD
from abkit.names import ASSIGNED_AT, UNIT, VARIANT
from abkit.stats.cuped import Moments

_DONE, _END = "_periods_done", "_export_end"


@dataclass(frozen=True)
class PeriodMoments:
    """One metric's per-arm moments of (x_0 … x_{W−1}[, y_0 … y_{W−1}])."""

    periods: int
    ratio: bool
    arms: dict[str, Moments]


def _with_periods_done(
    units: nw.LazyFrame[Any], spec: NoveltySpec, export_end: dt.datetime
) -> nw.LazyFrame[Any]:
    """``units`` with each unit's whole periods elapsed by the export end,
    ⌊⌊(end − assigned) / 24 h⌋ / period_days⌋ (= ⌊(end − assigned) / period⌋), where the
    units are."""
    assert spec.period_days is not None
    ended = with_days_between(
        units.with_columns(nw.lit(export_end).alias(_END)), ASSIGNED_AT, _END, _DONE
    )
    return ended.with_columns((nw.col(_DONE) // spec.period_days).alias(_DONE)).drop(_END)


def completed_periods(
    units: nw.LazyFrame[Any], spec: NoveltySpec, export_end: dt.datetime
) -> tuple[int, list[str]]:
    """W and notes: W is ``spec.periods``, or else the largest number of periods that at
    least half of the units have completed, the lower median of the units' completed
    periods (the value of rank ⌊(m − 1)/2⌋, 0-based, among the m units with an
    assignment time), read off their counts per number of periods (one query, a row
    per number)."""
    (counts,) = collect_all(
        [_with_periods_done(units, spec, export_end).group_by(_DONE).agg(nw.len().alias("n"))]
    )
    counts = counts.with_columns(pl.col("n").cast(pl.Int64))
    known = counts.filter(pl.col(_DONE).is_not_null()).sort(_DONE)
    if spec.periods is not None:
        periods = spec.periods
    elif known.height:
        rank = math.floor(0.5 * (int(known["n"].sum()) - 1))
        seen = known.with_columns(pl.col("n").cum_sum().alias("seen"))
        periods = int(seen.filter(pl.col("seen") > rank)[_DONE][0])
    else:
        periods = 0
    count = int(known.filter(pl.col(_DONE) >= periods)["n"].sum())
    total = int(counts["n"].sum())
    notes = [
        f"novelty: {count:,} of {total:,} units have completed {periods} periods of "
        f"{spec.period_days} days since assignment and are compared period by period"
    ]
    return periods, notes


def period_moments(
    eligible: nw.LazyFrame[Any],
    per_period: nw.LazyFrame[Any],
    metric: MetricSpec,
    periods: int,
    variants: tuple[str, ...],
) -> PeriodMoments:
    """Per-arm moments of the metric's components in periods 0 … W−1 over the units that
    completed them (``eligible``: UNIT, VARIANT; ``per_period``: UNIT, PERIOD and the
    metric's window aggregates), computed where the tables are: each unit's period
    values side by side (a unit without events in a period has 0 there), then the
    exact co-moments of (x_0 … x_{W−1}[, y_0 … y_{W−1}]) per arm
    (:func:`abkit.inputs.comoments.arm_comoments`)."""
    columns = component_columns(metric)
    # x_0 … x_{W−1}, then y_0 … y_{W−1}, under names that no SQL engine reads as a
    # number (SQLFrame takes a column named 0 for the literal)
    names = [(column, w, f"_z{i}_{w}") for i, column in enumerate(columns) for w in range(periods)]
    at = nw.col(PERIOD)
    wide = (
        per_period.filter(at < periods)
        .group_by(UNIT)
        .agg(
            *(
                nw.when(at == w).then(nw.col(c).cast(nw.Float64)).otherwise(0.0).sum().alias(n)
                for c, w, n in names
            )
        )
    )
    kept = eligible.join(wide, on=UNIT, how="left")
    z = [nw.col(n).cast(nw.Float64).fill_null(0.0) for _, _, n in names]
    return PeriodMoments(periods, len(columns) == 2, arm_comoments(kept, z, variants))


def novelty_moments(
    table: UnitTable,
    per_period: pl.DataFrame | nw.LazyFrame[Any],
    spec: NoveltySpec,
    export_end: dt.datetime,
    metrics: tuple[MetricSpec, ...],
    variants: tuple[str, ...],
) -> tuple[dict[str, PeriodMoments], list[str]]:
    """Each adjustable metric's per-arm moments in periods 0 … W−1 (empty when fewer
    than 2 periods can be compared), and notes on the units compared.

    Everything is computed where the unit table and ``per_period`` (UNIT, PERIOD, the
    metrics' window aggregates) are: on another engine only per-arm aggregates and the
    units' counts per number of completed periods come back."""
    units = table.frame()
    periods, lines = completed_periods(units, spec, export_end)
    if periods < 2:
        return {}, [
            f"novelty: fewer than half of the units have completed 2 periods of "
            f"{spec.period_days} days by the export end; no trend can be estimated"
        ]
    eligible = (
        _with_periods_done(units, spec, export_end)
        .filter(nw.col(_DONE) >= periods)
        .select(UNIT, VARIANT)
    )
    rows = nw.from_native(per_period.lazy()) if isinstance(per_period, pl.DataFrame) else per_period
    return {
        m.name: period_moments(eligible, rows, m, periods, variants)
        for m in metrics
        if m.kind.adjustable() is not None
    }, lines
