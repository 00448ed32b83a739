"""Quantile metrics on the engine: the queries that bring back each event value with its
unit (exact route) or log-spaced histograms and per-arm sums (histogram route,
:class:`~abkit.stats.quantile.LogBins`), so that only a few numbers per arm leave the
engine.  :mod:`abkit.inputs.quantiles` turns what they return into per-arm estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.metrics.references import EVENT, EXACT, VALUE, count_where, event_column, slot
from abkit.names import UNIT, VARIANT
from abkit.stats.quantile import LogBins, binned_quantile_key

KEY = "_bin"
EVENTS = "events"


# the levels of the quantile profile shown beside every quantile metric (and its own q)
PROFILE = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def profile_levels(metric: MetricSpec) -> tuple[float, ...]:
    """The quantile levels computed for a metric: :data:`PROFILE` and its own q."""
    assert metric.q is not None
    return tuple(sorted({*PROFILE, metric.q}))


def bin_key(bins: LogBins) -> nw.Expr:
    """:meth:`LogBins.keys` of the value column on any engine (null for a null value)."""
    size = nw.col(VALUE).abs()
    floored = nw.when(size < bins.TINY).then(nw.lit(bins.TINY)).otherwise(size)
    index = (floored.log() / bins.log_gamma).floor() + bins.offset
    signed = nw.when(nw.col(VALUE) > 0).then(index).otherwise(-index)
    return nw.when(size < bins.TINY).then(nw.lit(0.0)).otherwise(signed).cast(nw.Int64)


def event_values(valid: nw.LazyFrame[Any], reference: str) -> nw.LazyFrame[Any]:
    """The valid events of a column reference's event, its values as VALUE (null when
    the event carries none)."""
    read = event_column(reference)
    assert read is not None
    event, column = read
    return valid.filter(nw.col(EVENT) == event).with_columns(nw.col(slot(column)).alias(VALUE))


def histogram_query(valid: nw.LazyFrame[Any], reference: str, bins: LogBins) -> nw.LazyFrame[Any]:
    """Per arm and bin, the reference's events (bin null: events without a value)."""
    return (
        event_values(valid, reference)
        .with_columns(bin_key(bins).alias(KEY))
        .group_by(VARIANT, KEY)
        .agg(nw.len().cast(nw.Int64).alias(EVENTS))
    )


def quantile_bins(histogram: pl.DataFrame, q: float, variants: tuple[str, ...]) -> dict[str, int]:
    """Per arm, the bin holding the q-quantile (arms without values: none)."""
    out = {}
    for variant in variants:
        keys, counts = arm_histogram(histogram, variant)
        if counts.sum():
            out[variant] = binned_quantile_key(keys, counts, q)
    return out


def below_query(
    valid: nw.LazyFrame[Any], reference: str, bins: LogBins, thresholds: list[dict[str, int]]
) -> nw.LazyFrame[Any]:
    """Per arm: units with values, Σnᵢ, Σnᵢ² and, for each metric's per-arm quantile
    bin, Σcᵢ, Σcᵢ², Σcᵢnᵢ (cᵢ: the unit's events in bins up to it).  Squares are
    summed in fixed point so that the result does not depend on the order of addition."""
    rows = (
        event_values(valid, reference)
        .filter(~nw.col(VALUE).is_null())
        .with_columns(bin_key(bins).alias(KEY))
    )
    counts = [
        count_where(nw.col(KEY) <= _per_arm(threshold)).alias(f"c{i}")
        for i, threshold in enumerate(thresholds)
    ]
    per_unit = rows.group_by(UNIT).agg(
        nw.col(VARIANT).min(), nw.len().cast(nw.Int64).alias("n"), *counts
    )

    def total(expr: nw.Expr, name: str) -> nw.Expr:
        return expr.cast(EXACT).sum().cast(nw.Float64).alias(name)

    n = nw.col("n")
    sums = [total(n, "n_sum"), total(n * n, "n_sq")]
    for i in range(len(thresholds)):
        c = nw.col(f"c{i}")
        sums += [total(c, f"c{i}_sum"), total(c * c, f"c{i}_sq"), total(c * n, f"c{i}_n")]
    return per_unit.group_by(VARIANT).agg(nw.len().cast(nw.Int64).alias("units"), *sums)


def _per_arm(threshold: dict[str, int]) -> nw.Expr:
    """The arm's threshold bin for each row (arms without one: no bin is below it)."""
    expr: nw.Expr = nw.lit(None, nw.Int64)
    for variant, key in threshold.items():
        expr = nw.when(nw.col(VARIANT) == variant).then(nw.lit(key)).otherwise(expr)
    return expr


@dataclass(frozen=True)
class BinnedValues:
    """A quantile metric's histogram route: the arms' histograms (VARIANT, KEY,
    EVENTS; KEY null for events without a value) and, per quantile level, per-arm sums
    of the unit counts at the arm's quantile bin (VARIANT, units, n_sum, n_sq, c_sum,
    c_sq, c_n)."""

    histogram: pl.DataFrame
    sums: dict[float, pl.DataFrame]


def split_sums(sums: pl.DataFrame, index: int) -> pl.DataFrame:
    """One metric's per-arm sums out of :func:`below_query`'s (its ``index``)."""
    return sums.select(
        VARIANT,
        "units",
        "n_sum",
        "n_sq",
        *(pl.col(f"c{index}_{part}").alias(f"c_{part}") for part in ("sum", "sq", "n")),
    )


def arm_histogram(histogram: pl.DataFrame, variant: str) -> tuple[np.ndarray, np.ndarray]:
    rows = histogram.filter((pl.col(VARIANT) == variant) & pl.col(KEY).is_not_null()).sort(KEY)
    return rows[KEY].to_numpy(), rows[EVENTS].to_numpy()
