"""Adoption of the AI feature: who used it, how much, how often, and by segment."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from abkit.config import MetricSpec
from abkit.inputs.unit_table import UnitTable
from abkit.json_codec import from_jsonable
from abkit.metrics.base import value_column
from abkit.names import ACCOUNT, VARIANT

DEFAULT_SEGMENTS = ("role", "seniority", "integration_depth")


@dataclass(frozen=True, kw_only=True)
class AdoptionRate:
    """Adoption in one variant, or in one variant within one segment value.

    Parameters
    ----------
    segment : dict of str to str
        ``{column: value}`` of a segment row, empty for a whole variant; written among
        the row's own keys (``{"role": "admin", "variant": ...}``).
    variant : str
        The variant.
    users : int
        Units assigned.
    adopters : int
        Units that used the feature.
    accounts : int or None
        Accounts the units belong to (B2B exports only; the key is absent otherwise).
    events_per_adopter : float
        Mean AI events per adopter (NaN without adopters).
    active_days_per_adopter : float
        Mean active days per adopter (NaN without adopters).
    rate : float
        ``adopters / users``.
    """

    segment: dict[str, str] = field(default_factory=dict, metadata={"json_flatten": True})
    variant: str
    users: int
    adopters: int
    accounts: int | None = field(default=None, metadata={"json_omit_none": True})
    events_per_adopter: float
    active_days_per_adopter: float
    rate: float


@dataclass(frozen=True)
class AdoptionSummary:
    """One adoption metric's breakdown (descriptive, no tests).

    Parameters
    ----------
    by_variant : tuple of AdoptionRate
        One row per variant.
    segments : dict of str to tuple of AdoptionRate
        Per segment column, one row per value × variant.
    """

    by_variant: tuple[AdoptionRate, ...]
    segments: dict[str, tuple[AdoptionRate, ...]] = field(default_factory=dict)


def segment_columns(metric: MetricSpec, available: list[str]) -> tuple[str, ...]:
    """The metric's ``segments``, or the default segment columns that exist."""
    if metric.segments is not None:
        return metric.segments
    return tuple(c for c in DEFAULT_SEGMENTS if c in available)


def _rates(frame: pl.DataFrame, keys: list[str], val: str) -> tuple[AdoptionRate, ...]:
    aggs = [pl.len().alias("users"), pl.col(val).sum().alias("adopters")]
    if ACCOUNT in frame.columns:
        aggs.append(pl.col(ACCOUNT).n_unique().alias("accounts"))
    adopters = pl.col(val) == 1
    aggs += [
        pl.col(f"{val}:events").filter(adopters).mean().alias("events_per_adopter"),
        pl.col(f"{val}:days").filter(adopters).mean().alias("active_days_per_adopter"),
    ]
    rows = (
        frame.group_by(keys)
        .agg(aggs)
        .with_columns((pl.col("adopters") / pl.col("users")).alias("rate"))
        .sort(keys)
        .rename({VARIANT: "variant"})
        .to_dicts()
    )
    # a mean over no adopters is null: read as NaN, like every number of the results
    return tuple(from_jsonable(AdoptionRate, row) for row in rows)


def adoption_rates(
    table: UnitTable, metric: MetricSpec, segments: tuple[str, ...]
) -> AdoptionSummary:
    """Per variant: users, adopters, adoption rate, AI events and active days per
    adopter; and the same per value of each segment column (descriptive, no tests)."""
    units = table.rows("adoption by cohort")
    val = value_column(metric)
    by_segment = {}
    for col in segments:
        frame = units.with_columns(pl.col(col).cast(pl.String).fill_null("(missing)"))
        by_segment[col] = _rates(frame, [col, VARIANT], val)
    return AdoptionSummary(_rates(units, [VARIANT], val), by_segment)
