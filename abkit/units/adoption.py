"""Adoption of the AI feature: who used it, how much, how often, and by segment."""

from __future__ import annotations

from typing import Any

import polars as pl

from abkit.config import MetricSpec
from abkit.io.names import ACCOUNT, VARIANT
from abkit.metrics.base import value_column

DEFAULT_SEGMENTS = ("role", "seniority", "integration_depth")


def segment_columns(metric: MetricSpec, available: list[str]) -> tuple[str, ...]:
    """The metric's ``segments``, or the default segment columns that exist."""
    if metric.segments is not None:
        return metric.segments
    return tuple(c for c in DEFAULT_SEGMENTS if c in available)


def _rates(frame: pl.DataFrame, keys: list[str], val: str) -> pl.DataFrame:
    aggs = [pl.len().alias("users"), pl.col(val).sum().alias("adopters")]
    if ACCOUNT in frame.columns:
        aggs.append(pl.col(ACCOUNT).n_unique().alias("accounts"))
    adopters = pl.col(val) == 1
    aggs += [
        pl.col(f"{val}:events").filter(adopters).mean().alias("events_per_adopter"),
        pl.col(f"{val}:days").filter(adopters).mean().alias("active_days_per_adopter"),
    ]
    return (
        frame.group_by(keys)
        .agg(aggs)
        .with_columns((pl.col("adopters") / pl.col("users")).alias("rate"))
        .sort(keys)
        .rename({VARIANT: "variant"})
    )


def adoption_summary(
    units: pl.DataFrame, metric: MetricSpec, segments: tuple[str, ...]
) -> dict[str, Any]:
    """Per variant: users, adopters, adoption rate, AI events and active days per
    adopter; and the same per value of each segment column (descriptive, no tests)."""
    val = value_column(metric)
    out: dict[str, Any] = {"by_variant": _rates(units, [VARIANT], val).to_dicts(), "segments": {}}
    for col in segments:
        frame = units.with_columns(pl.col(col).cast(pl.String).fill_null("(missing)"))
        out["segments"][col] = _rates(frame, [col, VARIANT], val).to_dicts()
    return out
