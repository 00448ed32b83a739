"""Per-unit metric values in each period since assignment, reduced to per-arm moments
for the novelty check (:mod:`abkit.stats.novelty`).

A unit counts when its first W periods have all ended by the export end, so every
period holds the same units; W is the configured number of periods, or else the
largest number that at least half the units have completed.  A unit without events in
a period has 0 there (it was assigned and inactive).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from abkit.config import MetricSpec, NoveltySpec
from abkit.inputs.covariates import arm_moments
from abkit.inputs.unit_table import UnitTable
from abkit.metrics.base import component_columns
from abkit.metrics.references import PERIOD
from abkit.names import ASSIGNED_AT, UNIT, VARIANT
from abkit.stats.cuped import Moments

_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class PeriodMoments:
    """One metric's per-arm moments of (x_0 … x_{W−1}[, y_0 … y_{W−1}])."""

    periods: int
    ratio: bool
    arms: dict[str, Moments]


def completed_periods(
    units: pl.DataFrame, spec: NoveltySpec, export_end: dt.datetime
) -> tuple[int, pl.Expr, list[str]]:
    """W, the filter of the units that completed W periods, and notes."""
    assert spec.period_days is not None
    elapsed = (pl.lit(export_end) - pl.col(ASSIGNED_AT)).dt.total_microseconds()
    done = elapsed // (spec.period_days * _US_PER_DAY)
    if spec.periods is not None:
        periods = spec.periods
    else:  # the largest W that half of the units have completed
        periods = int(units.select(done.quantile(0.5, "lower")).item() or 0)
    eligible = done >= periods
    count = units.select(eligible.sum()).item()
    notes = [
        f"novelty: {count:,} of {units.height:,} units have completed {periods} periods of "
        f"{spec.period_days} days since assignment and are compared period by period"
    ]
    return periods, eligible, notes


def period_moments(
    units: pl.DataFrame,
    per_period: pl.DataFrame,
    metric: MetricSpec,
    periods: int,
    eligible: pl.Expr,
    variants: tuple[str, ...],
) -> PeriodMoments:
    """Per-arm moments of the metric's components in periods 0 … W−1 over the units that
    completed them (``per_period``: UNIT, PERIOD and the metric's window aggregates)."""
    columns = component_columns(metric)
    wide = (
        per_period.filter(pl.col(PERIOD) < periods)
        .select(UNIT, PERIOD, *columns)
        .pivot(on=PERIOD, index=UNIT, values=columns, aggregate_function="sum")
    )
    kept = units.filter(eligible).select(UNIT, VARIANT).join(wide, on=UNIT, how="left")
    z: list[pl.Expr] = []
    for column in columns:  # x_0 … x_{W−1}, then y_0 … y_{W−1}
        for w in range(periods):
            name = f"{column}_{w}" if len(columns) > 1 else str(w)
            value = pl.col(name) if name in kept.columns else pl.lit(0)
            z.append(value.cast(pl.Float64).fill_null(0.0).alias(f"z{len(z)}"))
    frame = kept.select(VARIANT, *z)
    return PeriodMoments(periods, len(columns) == 2, arm_moments(frame, len(z), variants))


def novelty_moments(
    table: UnitTable,
    per_period: pl.DataFrame,
    spec: NoveltySpec,
    export_end: dt.datetime,
    metrics: tuple[MetricSpec, ...],
    variants: tuple[str, ...],
) -> tuple[dict[str, PeriodMoments], list[str]]:
    """Each adjustable metric's per-arm moments in periods 0 … W−1 (empty when fewer
    than 2 periods can be compared), and notes on the units compared."""
    units = table.rows("the novelty check")
    periods, eligible, lines = completed_periods(units, spec, export_end)
    if periods < 2:
        return {}, [
            f"novelty: fewer than half of the units have completed 2 periods of "
            f"{spec.period_days} days by the export end; no trend can be estimated"
        ]
    return {
        m.name: period_moments(units, per_period, m, periods, eligible, variants)
        for m in metrics
        if m.kind.adjustable() is not None
    }, lines
