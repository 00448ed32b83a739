"""Capping heavy tails: winsorise each unit's value at a threshold.

The threshold is a given value or a quantile of the per-unit values of all arms pooled,
computed before the split by variant, so it does not depend on which arm a unit is in
and the capped metric is a fixed function of each unit's outcome: the tests stay valid
for the capped metric, whose variance is smaller (Kohavi, Tang & Xu, *Trustworthy Online
Controlled Experiments*, 2020, on capping to reduce variance).  Only the upper tail is
capped; for a ratio metric the numerator (e.g. latency summed per user) is.
"""

from __future__ import annotations

import polars as pl

from abkit.config import MetricSpec
from abkit.metrics.base import value_column
from abkit.names import VARIANT


def cap_units(
    units: pl.DataFrame, metrics: tuple[MetricSpec, ...], variants: tuple[str, ...]
) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """``units`` with each capped metric's value column winsorised, and per metric a
    note of the threshold and how many units each arm had above it."""
    notes: dict[str, list[str]] = {}
    for metric in metrics:
        if metric.cap is None:
            continue
        column = value_column(metric)
        value = pl.col(column).cast(pl.Float64)
        q = metric.cap.get("quantile")
        if q is not None:
            threshold = units.select(value.quantile(q, "linear")).item()
            how = f"the {q:g} quantile of the pooled arms"
        else:
            threshold, how = metric.cap["value"], "the configured value"
        if threshold is None:  # no unit has a value
            continue
        above = dict(units.filter(value > threshold).group_by(VARIANT).len().iter_rows())
        units = units.with_columns(
            pl.when(value > threshold).then(pl.lit(threshold)).otherwise(value).alias(column)
        )
        counts = ", ".join(f"{v} {above.get(v, 0):,}" for v in variants)
        notes[metric.name] = [
            f"capped at {threshold:.6g} ({how}): units above it per arm: {counts}"
        ]
    return units, notes
