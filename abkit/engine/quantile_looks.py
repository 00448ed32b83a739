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
from typing import Literal

import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.looks import LookSchedule
from abkit.metrics.references import EVENT, LOOK, event_column, slot
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
