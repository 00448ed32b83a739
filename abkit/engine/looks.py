"""Cumulative per-arm sufficient statistics at daily looks, in one pass over the events.

Look k (k = 0 … L−1) is taken at T_k = min(origin + (k + 1) days, export end), where
the origin is midnight UTC of the first assignment; the last look is the export end,
so it reproduces the fixed-horizon analysis exactly.  At look k an arm holds the units
assigned by T_k, each with its metric computed from its events up to T_k.

A unit's value x changes only at looks where it has events, so the arm sums are
cumulative sums of per-(unit, look) changes: Δn at the unit's first look, and
Δx, Δx² = x_k² − x_{k−1}², Δy, Δy², Δxy = x_k y_k − x_{k−1} y_{k−1} where its value
moves.  Retention enters a unit once, at the look where its window has matured.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import narwhals as nw
import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.errors import AbkitInputError
from abkit.metrics.base import value_column
from abkit.metrics.references import LOOK, counted_once, first_seen, unit_aggregate
from abkit.names import ASSIGNED_AT, UNIT, VARIANT
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


def _cumulate(
    deltas: pl.DataFrame, entries: pl.DataFrame, variants: tuple[str, ...], looks: int
) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for v in variants:
        sums = {k: np.zeros(looks) for k in _SUMS}
        ent = entries.filter(pl.col(VARIANT) == v)
        np.add.at(sums["n"], ent[LOOK].to_numpy(), ent["len"].to_numpy())
        d = deltas.filter(pl.col(VARIANT) == v)
        idx = d[LOOK].to_numpy()
        for k in _SUMS[1:]:
            if k in d.columns:
                np.add.at(sums[k], idx, d[k].to_numpy().astype(float))
        out[v] = {k: np.cumsum(a) for k, a in sums.items()}
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
    moments (:func:`_adjusted_looks`)."""
    looks = schedule.count
    times = schedule.times()
    unit_looks = units.lazy().select(UNIT, VARIANT, schedule.index(ASSIGNED_AT).alias(LOOK))
    entries = unit_looks.group_by(VARIANT, LOOK).len().collect()
    # every reference that is a sum over a unit's events grows by that sum over the
    # look's events: one grouped pass for all of them
    summed = sorted(
        {
            r
            for m in metrics
            if m.kind.maturity_day(m) is None
            for r in m.kind.references(m, output_event)
            if not counted_once(r)
        }
    )
    sums = [unit_aggregate(r).alias(r) for r in summed] or [nw.len().alias("_rows")]
    look_sums = nw.from_native(valid).group_by(UNIT, VARIANT, LOOK).agg(sums)
    per_look = nw.to_native(look_sums).collect(engine="in-memory").sort(UNIT, LOOK).lazy()
    out: dict[str, LookSeries] = {}
    for metric in metrics:
        kind = metric.kind
        last_day = kind.maturity_day(metric)
        if last_day is not None:  # a unit enters once, when its window has matured
            matured = units.filter(pl.col(value_column(metric)).is_not_null()).select(
                VARIANT,
                schedule.maturity_index(last_day).alias(LOOK),
                pl.col(value_column(metric)).cast(pl.Float64).alias("x"),
            )
            grouped = matured.group_by(VARIANT, LOOK)
            ent = grouped.agg(pl.len().alias("len"))
            deltas = grouped.agg(
                pl.col("x").sum().alias("sx"), (pl.col("x") * pl.col("x")).sum().alias("sxx")
            )
            out[metric.name] = _series(_cumulate(deltas, ent, variants, looks), False, times)
            if covariates and metric.name in covariates:
                entered = units.filter(pl.col(value_column(metric)).is_not_null()).with_columns(
                    schedule.maturity_index(last_day).alias(LOOK),
                    pl.col(value_column(metric)).cast(pl.Float64).alias("x"),
                )
                steps = entered.select(UNIT, VARIANT, LOOK, pl.col("x").alias("dx"))
                out[metric.name] = _adjusted_looks(
                    out[metric.name], entered, steps, covariates[metric.name], 1, variants
                )
            continue
        refs = kind.references(metric, output_event)
        if not refs:  # account-level types (no sequential monitoring)
            continue
        amounts = [f"a{i}" for i in range(len(refs))]
        if all(r in summed for r in refs):  # straight from the per-look sums, in order
            inc = per_look.select(
                UNIT,
                VARIANT,
                LOOK,
                *(pl.col(r).alias(a) for r, a in zip(refs, amounts, strict=True)),
            )
        else:
            parts = [
                (
                    per_look.select(UNIT, LOOK, pl.col(r).alias(a))
                    if r in summed
                    else first_seen(valid, r).rename({"amount": a})
                )
                for r, a in zip(refs, amounts, strict=True)
            ]
            inc = parts[0]
            for extra in parts[1:]:
                inc = inc.join(extra, on=[UNIT, LOOK], how="full", coalesce=True)
            inc = inc.join(units.lazy().select(UNIT, VARIANT), on=UNIT, how="inner").sort(
                UNIT, LOOK
            )
        inc = inc.with_columns(pl.col(amounts).fill_null(0).cast(pl.Float64))
        # the running sums per unit, computed once (as expressions inside the moments
        # below, Polars would evaluate each window again every time it appears)
        running = [pl.col(a).cum_sum().over(UNIT).alias(f"_run{a}") for a in amounts]
        inc = inc.with_columns(running)
        x = pl.col("_runa0")
        x_prev = x - pl.col("a0")
        if kind.is_rate:  # indicators: ever did it by the look
            x, x_prev = (x > 0).cast(pl.Float64), (x_prev > 0).cast(pl.Float64)
        cols = [(x - x_prev).alias("sx"), (x * x - x_prev * x_prev).alias("sxx")]
        if kind.is_ratio:
            y = pl.col("_runa1")
            y_prev = y - pl.col("a1")
            cols += [
                (y - y_prev).alias("sy"),
                (y * y - y_prev * y_prev).alias("syy"),
                (x * y - x_prev * y_prev).alias("sxy"),
            ]
        # float moments: a parallel group sum would add them in a varying order, so the
        # last bits would change between runs; _cumulate adds the rows in sorted order
        deltas = inc.select(VARIANT, LOOK, *cols).collect(engine="in-memory")
        out[metric.name] = _series(
            _cumulate(deltas, entries, variants, looks), kind.is_ratio, times
        )
        if covariates and metric.name in covariates:
            steps = inc.select(
                UNIT,
                VARIANT,
                LOOK,
                (x - x_prev).alias("dx"),
                *([pl.col("a1").alias("dy")] if kind.is_ratio else []),
            ).collect(engine="in-memory")
            entered = units.with_columns(schedule.index(ASSIGNED_AT).alias(LOOK))
            out[metric.name] = _adjusted_looks(
                out[metric.name],
                entered,
                steps,
                covariates[metric.name],
                2 if kind.is_ratio else 1,
                variants,
            )
    return out


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
    design, names, _ = covariate_design(entered, columns)
    if not names:
        return series
    k = len(names)
    cov = entered.select(UNIT, *(e.alias(f"c{i}") for i, e in enumerate(design)))
    looks = len(series.arms)
    at_entry = entered.select(VARIANT, LOOK, *(e.alias(f"c{i}") for i, e in enumerate(design)))
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
    units: pl.DataFrame, columns: Mapping[str, str]
) -> tuple[list[pl.Expr], list[str], list[str]]:
    """The covariate expressions over ``units`` (missing values 0, plus a 0/1 indicator
    for a column with some missing), their names, and notes on what was filled in or
    left out (a column missing for every unit)."""
    nulls = units.select(pl.col(c).is_null().sum() for c in columns).row(0, named=True)
    exprs: list[pl.Expr] = []
    names: list[str] = []
    notes: list[str] = []
    for column, label in columns.items():
        value = pl.col(column).cast(pl.Float64)
        missing = int(nulls[column])
        if missing == units.height:
            notes.append(f"CUPED: covariate '{label}' is missing for every unit and is not used")
            continue
        exprs.append(value.fill_null(0.0))
        names.append(label)
        if missing:
            exprs.append(value.is_null().cast(pl.Float64))
            names.append(f"{label} missing")
            notes.append(
                f"CUPED: covariate '{label}' is missing for {missing:,} of {units.height:,} "
                "units; they are adjusted with 0 and a missing-value indicator"
            )
    return exprs, names, notes
