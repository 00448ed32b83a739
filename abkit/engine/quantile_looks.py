"""Each arm's quantile of a quantile metric at every daily look, from the valid events.

Look k holds the events up to T_k (:class:`~abkit.engine.looks.LookSchedule`).  A
quantile has no fixed-size sufficient statistic, so the looks keep what does add up:

* exact route: each look's new :class:`~abkit.stats.quantile.EventValues` (values with
  their units), added look by look, and the clustered estimate of the running sum;
* histogram route: each look's new :class:`~abkit.stats.quantile.Histogram` on the
  same :class:`~abkit.stats.quantile.LogBins` as the fixed-horizon analysis, added look
  by look (histograms merge by addition), and at each look the per-unit counts below
  the look's quantile bin that the clustered standard error needs
  (:func:`~abkit.stats.quantile.binned_quantile_estimate`, as
  :func:`~abkit.engine.quantiles.below_query` computes them for the last look).

The last look is the export end, so its estimates are the fixed-horizon ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import narwhals as nw
import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.backend import collect_all, materialise, ship
from abkit.engine.looks import LookSchedule
from abkit.engine.quantiles import KEY, bin_key, event_values
from abkit.metrics.references import EVENT, LOOK, VALUE, event_column, slot
from abkit.names import UNIT, VARIANT
from abkit.stats.arm import ArmSummary
from abkit.stats.quantile import (
    EventValues,
    Histogram,
    LogBins,
    QuantileEstimate,
    binned_quantile_key,
)

# what the always-valid comparison of independent observations reads at a look: the
# arm's values so far, raw or binned
Sample = np.ndarray | Histogram


@dataclass(frozen=True)
class QuantileLooks:
    """One quantile metric's arms at every daily look.

    Parameters
    ----------
    q : float
        The metric's quantile level.
    labels : list of str
        When each look was taken (ISO timestamps).
    days : list of float
        Days since the origin at each look.
    estimates : list of dict
        Per look, per variant, the arm's clustered estimate of the running sum of the
        looks' events (:class:`~abkit.stats.quantile.QuantileEstimate`; ``units`` are
        the units with a value by then).
    parts : list of dict
        Per look, per variant, the events the look adds: their values (exact route)
        or their histogram (histogram route).  The running sum of a variant's parts
        is its sample at the look.
    most_per_unit : int
        The most values one unit has by the last look: 1 means every unit
        contributed at most one observation, so the observations are independent.
    route : {"exact", "histogram"}
        How the values came back from the engine.
    """

    q: float
    labels: list[str]
    days: list[float]
    estimates: list[dict[str, QuantileEstimate]]
    parts: list[dict[str, Sample]]
    most_per_unit: int
    route: str

    @property
    def unit(self) -> Literal["day"]:
        """Event exports are looked at daily."""
        return "day"

    @property
    def independent(self) -> bool:
        """Every unit has at most one value: the observations are independent."""
        return self.most_per_unit <= 1

    def samples(self, variant: str) -> list[Sample]:
        """The variant's sample at each look: the running sum of its parts."""
        out: list[Sample] = []
        for look in self.parts:
            part = look[variant]
            if not out:
                out.append(part)
            elif isinstance(part, Histogram):
                previous = out[-1]
                assert isinstance(previous, Histogram)
                out.append(previous + part)
            else:
                out.append(np.concatenate([out[-1], part]))
        return out


def quantile_look_series(
    rows: pl.DataFrame,
    units: pl.DataFrame,
    metrics: tuple[MetricSpec, ...],
    schedule: LookSchedule,
    variants: tuple[str, ...],
    bins: LogBins | None,
) -> dict[str, QuantileLooks]:
    """Per quantile metric, each arm's estimate at every look.

    Parameters
    ----------
    rows : polars.DataFrame
        The valid events after de-duplication, with UNIT, EVENT, the value columns'
        slots and ``LOOK`` (the look at which each is first visible).
    units : polars.DataFrame
        The assigned units (UNIT, VARIANT).
    metrics : tuple of MetricSpec
        The metrics; those without a value reference are skipped.
    schedule : LookSchedule
        The looks' calendar.
    variants : tuple of str
        The arms, control first.
    bins : LogBins or None
        The histogram route's bins, or None for the exact route.

    Returns
    -------
    dict of str to QuantileLooks
        One per quantile metric.
    """
    looks = schedule.count
    labels = [t.isoformat() for t in schedule.times()]
    days = [float(k + 1) for k in range(looks)]
    codes = units.select(UNIT, VARIANT).with_row_index("_unit_index")
    out = {}
    for metric in metrics:
        reference = metric.kind.value_reference(metric)
        read = event_column(reference) if reference is not None else None
        if read is None or metric.q is None:
            continue
        event, column = read
        values = (
            rows.lazy()
            .filter((pl.col(EVENT) == event) & pl.col(slot(column)).is_not_null())
            .select(UNIT, LOOK, pl.col(slot(column)).cast(pl.Float64).alias("_value"))
            .join(codes.lazy(), on=UNIT, how="inner")
            .sort(LOOK, maintain_order=True)
            .collect()
        )
        arms = {v: values.filter(pl.col(VARIANT) == v) for v in variants}
        per_arm = {
            v: _arm_looks(
                arm["_value"].to_numpy(),
                arm["_unit_index"].to_numpy().astype(np.int64),
                arm[LOOK].to_numpy().astype(np.int64),
                metric.q,
                looks,
                bins,
            )
            for v, arm in arms.items()
        }
        per_unit = values.group_by("_unit_index").len()["len"].max()
        out[metric.name] = QuantileLooks(
            q=metric.q,
            labels=labels,
            days=days,
            estimates=[{v: per_arm[v][0][k] for v in variants} for k in range(looks)],
            parts=[{v: per_arm[v][1][k] for v in variants} for k in range(looks)],
            most_per_unit=int(per_unit) if isinstance(per_unit, int) else 0,
            route="exact" if bins is None else "histogram",
        )
    return out


def _arm_looks(
    values: np.ndarray,
    units: np.ndarray,
    look: np.ndarray,
    q: float,
    looks: int,
    bins: LogBins | None,
) -> tuple[list[QuantileEstimate], list[Sample]]:
    """One arm's estimate and new events at each look (``look`` ascending)."""
    ends = np.searchsorted(look, np.arange(looks), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    if bins is None:
        estimates = [
            EventValues(values[:end], units[:end]).estimates((q,))[q] for end in ends.tolist()
        ]
        parts: list[Sample] = [values[s:e] for s, e in zip(starts, ends, strict=True)]
        return estimates, parts
    keys = bins.keys(values)
    histograms: list[Sample] = []
    estimates = []
    running = Histogram.zero(bins)
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        distinct, counts = np.unique(keys[start:end], return_counts=True)
        part = Histogram(bins, distinct.astype(np.int64), counts.astype(np.int64))
        histograms.append(part)
        running = running + part
        below = None
        if running.events:
            threshold = binned_quantile_key(running.keys, running.counts, q)
            below = _below(units[:end], keys[:end] <= threshold)
        estimates.append(running.estimate(q, below))
    return estimates, histograms


def _below(units: np.ndarray, at_or_below: np.ndarray) -> ArmSummary:
    """Per-unit moments of (cᵢ, nᵢ), cᵢ of unit i's nᵢ values in bins up to the
    quantile's: the sums :func:`~abkit.engine.quantiles.below_query` computes on the
    engine, here exact in integers."""
    ids, codes = np.unique(units, return_inverse=True)
    n = np.bincount(codes, minlength=ids.size).astype(np.int64)
    c = np.bincount(codes, weights=at_or_below, minlength=ids.size).astype(np.int64)
    return ArmSummary.from_sums(
        int(ids.size),
        float(c.sum()),
        float((c * c).sum()),
        float(n.sum()),
        float((n * n).sum()),
        float((c * n).sum()),
    )


def engine_quantile_look_series(
    valid: nw.LazyFrame[Any],
    metrics: tuple[MetricSpec, ...],
    schedule: LookSchedule,
    variants: tuple[str, ...],
    bins: LogBins,
) -> dict[str, QuantileLooks]:
    """The histogram route of :func:`quantile_look_series` on the events' engine: only
    per-(variant, look) aggregates come back.

    Parameters
    ----------
    valid : narwhals.LazyFrame
        The valid events after de-duplication, with VARIANT and ``LOOK``
        (:func:`~abkit.engine.looks.with_look`), on their engine.
    metrics : tuple of MetricSpec
        The metrics; those without a value reference are skipped.
    schedule : LookSchedule
        The looks' calendar.
    variants : tuple of str
        The arms, control first.
    bins : LogBins
        The bins of the fixed-horizon histograms.

    Returns
    -------
    dict of str to QuantileLooks
        One per quantile metric, the same as :func:`quantile_look_series` gives.

    Notes
    -----
    Three queries per metric: the histogram of each look's new events per arm
    (VARIANT, LOOK, bin → events), which add by ``+`` into the arm's histogram at each
    look, whose quantile bin b_k is found here; then, with the thresholds b_k sent to
    the engine, each unit's values up to look k, nᵢ(k), and those in bins up to b_k,
    cᵢ(k), summed per (arm, look) as units, Σnᵢ, Σnᵢ², Σcᵢ, Σcᵢ², Σcᵢnᵢ (integers,
    exact in any order); and the most values of one unit.
    """
    looks = schedule.count
    labels = [t.isoformat() for t in schedule.times()]
    days = [float(k + 1) for k in range(looks)]
    out = {}
    for metric in metrics:
        reference = metric.kind.value_reference(metric)
        if reference is None or event_column(reference) is None or metric.q is None:
            continue
        q = metric.q
        values = (
            event_values(valid, reference)
            .filter(~nw.col(VALUE).is_null())
            .with_columns(bin_key(bins).alias(KEY))
        )
        cells = materialise(
            values.group_by(UNIT, VARIANT, LOOK, KEY).agg(nw.len().cast(nw.Int64).alias("m"))
        )
        hist, most = collect_all(
            [
                cells.group_by(VARIANT, LOOK, KEY).agg(nw.col("m").sum().cast(nw.Int64)),
                cells.group_by(UNIT)
                .agg(nw.col("m").sum().cast(nw.Int64))
                .select(nw.col("m").max()),
            ]
        )
        parts: dict[str, list[Sample]] = {}
        thresholds: list[tuple[str, int, int]] = []
        for v in variants:
            arm = hist.filter(pl.col(VARIANT) == v)
            running = Histogram.zero(bins)
            parts[v] = []
            for k in range(looks):
                look = arm.filter(pl.col(LOOK) == k).sort(KEY)
                part = Histogram(
                    bins,
                    look[KEY].to_numpy().astype(np.int64),
                    look["m"].to_numpy().astype(np.int64),
                )
                parts[v].append(part)
                running = running + part
                if running.events:
                    thresholds.append((v, k, binned_quantile_key(running.keys, running.counts, q)))
        below = _engine_below(cells, thresholds)
        estimates: list[dict[str, QuantileEstimate]] = [{} for _ in range(looks)]
        for v in variants:
            running = Histogram.zero(bins)
            for k in range(looks):
                running = running + parts[v][k]
                estimates[k][v] = running.estimate(q, below.get((v, k)))
        top = most.item()
        out[metric.name] = QuantileLooks(
            q=q,
            labels=labels,
            days=days,
            estimates=estimates,
            parts=[{v: parts[v][k] for v in variants} for k in range(looks)],
            most_per_unit=int(top) if top is not None else 0,
            route="histogram",
        )
    return out


def _engine_below(
    cells: nw.LazyFrame[Any], thresholds: list[tuple[str, int, int]]
) -> dict[tuple[str, int], ArmSummary]:
    """Per (arm, look k) with values by then, the per-unit moments of (cᵢ, nᵢ) that
    :func:`_below` computes, on the engine: ``cells`` holds per (unit, look, bin) the
    unit's values there (``m``); ``thresholds`` the arm's quantile bin at each look."""
    if not thresholds:
        return {}
    table = pl.DataFrame(
        thresholds,
        schema={VARIANT: pl.String, "_k": pl.Int32, "_threshold": pl.Int64},
        orient="row",
    )
    shipped = ship(table, cells)
    seen = cells.join(shipped, on=VARIANT, how="inner").filter(nw.col(LOOK) <= nw.col("_k"))
    m = nw.col("m")
    at_or_below = nw.when(nw.col(KEY) <= nw.col("_threshold")).then(m).otherwise(nw.lit(0))
    per_unit = seen.group_by(UNIT, VARIANT, "_k").agg(
        m.sum().cast(nw.Int64).alias("n"), at_or_below.sum().cast(nw.Int64).alias("c")
    )
    n, c = nw.col("n"), nw.col("c")
    (sums,) = collect_all(
        [
            per_unit.group_by(VARIANT, "_k").agg(
                nw.len().cast(nw.Int64).alias("units"),
                *(
                    e.sum().cast(nw.Int64).alias(name)
                    for name, e in {"c": c, "cc": c * c, "n": n, "nn": n * n, "cn": c * n}.items()
                ),
            )
        ]
    )
    return {
        (r[VARIANT], int(r["_k"])): ArmSummary.from_sums(
            int(r["units"]),
            float(r["c"]),
            float(r["cc"]),
            float(r["n"]),
            float(r["nn"]),
            float(r["cn"]),
        )
        for r in sums.iter_rows(named=True)
    }
