"""Per-arm inputs of quantile metrics, by one of two routes.

* exact: every valid event's value with its unit comes back from the engine and the
  arm's quantile is an order statistic (:func:`arm_quantiles`);
* histogram: the engine reduces the values to log-spaced bins per arm
  (:func:`histogram_query`; :class:`~abkit.stats.quantile.LogBins`), then, once the
  bin holding each arm's quantile is known, to per-arm sums of each unit's events nᵢ
  and events cᵢ up to that bin (:func:`below_query`): a few numbers per arm on any
  engine, with the quantile within half the bins' relative width of the exact one
  (:func:`binned_arm_quantiles`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.io.names import ACCOUNT, UNIT, VARIANT
from abkit.metrics.references import EVENT, EXACT, VALUE, count_where, event_column, slot
from abkit.stats import ArmSummary
from abkit.stats.account_quantile import AccountValues
from abkit.stats.quantile import (
    LogBins,
    QuantileEstimate,
    binned_quantile_estimate,
    binned_quantile_key,
    quantile_estimates,
)

_CODE = "_unit_code"
KEY = "_bin"
EVENTS = "events"


# the levels of the quantile profile shown beside every quantile metric (and its own q)
PROFILE = (0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


def profile_levels(metric: MetricSpec) -> tuple[float, ...]:
    """The quantile levels computed for a metric: :data:`PROFILE` and its own q."""
    assert metric.q is not None
    return tuple(sorted({*PROFILE, metric.q}))


# per quantile level, per variant, the arm's estimate
ArmQuantiles = dict[float, dict[str, QuantileEstimate]]


def arm_quantiles(
    metric: MetricSpec,
    values: pl.DataFrame,
    units: pl.DataFrame,
    variants: tuple[str, ...],
    levels: tuple[float, ...] | None = None,
) -> tuple[ArmQuantiles, list[str]]:
    """Each arm's quantiles (at ``levels``, by default :func:`profile_levels`) of the
    metric's event values, clustered by unit, and notes.

    ``values`` holds the valid events of the metric's event (UNIT, VALUE, null when
    the event carries none); ``units`` the assigned units (UNIT, VARIANT).  Events
    without a value are counted in a note, not dropped silently.
    """
    codes = units.select(UNIT, VARIANT).with_row_index(_CODE)
    rows = values.join(codes, on=UNIT, how="inner")
    missing = rows.filter(pl.col(VALUE).is_null()).height
    rows = rows.filter(pl.col(VALUE).is_not_null())
    arms = {v: rows.filter(pl.col(VARIANT) == v) for v in variants}
    levels = levels or profile_levels(metric)
    by_arm = {
        v: quantile_estimates(arm[VALUE].to_numpy(), arm[_CODE].to_numpy(), levels)
        for v, arm in arms.items()
    }
    estimates = {q: {v: by_arm[v][q] for v in variants} for q in levels}
    return estimates, [_design_note(metric, estimates), *_missing_note(metric, missing)]


def _missing_note(metric: MetricSpec, missing: int) -> list[str]:
    """Events of the metric's event without a value are counted, not dropped silently."""
    if not missing:
        return []
    read = event_column(str(metric.column))
    assert read is not None
    return [f"{missing:,} '{read[0]}' event(s) have no {read[1]} and are left out of the quantile"]


def _design_note(metric: MetricSpec, profile: ArmQuantiles) -> str:
    """How many events and units each arm's quantile rests on, and how much the
    clustering widens its interval over treating the events as independent."""
    assert metric.q is not None
    estimates = profile[metric.q]
    arms = "; ".join(
        f"{variant}: {e.events:,} events from {e.units:,} units"
        + ("" if math.isnan(e.design_effect) else f", design effect {e.design_effect:.2f}")
        for variant, e in estimates.items()
    )
    effects = [e.design_effect for e in estimates.values() if not math.isnan(e.design_effect)]
    widening = (
        f"; a test treating events as independent would understate the variance up to "
        f"{max(effects):.1f}-fold"
        if effects and max(effects) > 1.1
        else ""
    )
    return (
        f"q = {metric.q:g} quantile of '{metric.column}' over events, clustered by unit "
        f"({arms}){widening}"
    )


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
        keys, counts = _arm_histogram(histogram, variant)
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


def binned_arm_quantiles(
    metric: MetricSpec, binned: BinnedValues, variants: tuple[str, ...], bins: LogBins
) -> tuple[ArmQuantiles, list[str]]:
    """:func:`arm_quantiles` by the histogram route."""
    histograms = {v: _arm_histogram(binned.histogram, v) for v in variants}
    estimates = {
        q: {v: binned_quantile_estimate(*histograms[v], q, bins, _below(sums, v)) for v in variants}
        for q, sums in binned.sums.items()
    }
    missing = int(binned.histogram.filter(pl.col(KEY).is_null())[EVENTS].sum())
    route = (
        "quantile from a histogram of log-spaced bins on the engine ([quantiles] method = "
        f"'histogram'): within {bins.error:.3%} of the exact sample quantile"
    )
    return estimates, [_design_note(metric, estimates), route, *_missing_note(metric, missing)]


def _below(sums: pl.DataFrame, variant: str) -> ArmSummary:
    """One arm's per-unit moments of (cᵢ, nᵢ) from the summed query (an arm without
    values has none: zero units)."""
    row = sums.filter(pl.col(VARIANT) == variant)
    if not row.height:
        return ArmSummary(n=0, mean=math.nan, var=math.nan)
    r = row.row(0, named=True)
    return ArmSummary.from_sums(r["units"], r["c_sum"], r["c_sq"], r["n_sum"], r["n_sq"], r["c_n"])


def split_sums(sums: pl.DataFrame, index: int) -> pl.DataFrame:
    """One metric's per-arm sums out of :func:`below_query`'s (its ``index``)."""
    return sums.select(
        VARIANT,
        "units",
        "n_sum",
        "n_sq",
        *(pl.col(f"c{index}_{part}").alias(f"c_{part}") for part in ("sum", "sq", "n")),
    )


def _arm_histogram(histogram: pl.DataFrame, variant: str) -> tuple[np.ndarray, np.ndarray]:
    rows = histogram.filter((pl.col(VARIANT) == variant) & pl.col(KEY).is_not_null()).sort(KEY)
    return rows[KEY].to_numpy(), rows[EVENTS].to_numpy()


def account_values(
    metric: MetricSpec,
    values: pl.DataFrame,
    units: pl.DataFrame,
    variants: tuple[str, ...],
    strata: str | None,
) -> tuple[dict[str, AccountValues], list[str]]:
    """B2B mode: per arm, the metric's event values with the account of each, and notes.

    ``values`` holds the valid events (UNIT, VALUE); ``units`` the units of the
    uncontaminated accounts (UNIT, VARIANT, ACCOUNT and the ``strata`` column when
    the randomisation was blocked).  An arm's accounts are those of its units, coded
    0 … in sorted order (an account without values still counts: it was randomised);
    events without a value are counted in a note.
    """
    members = units.filter(pl.col(ACCOUNT).is_not_null())
    keep = [
        VARIANT,
        ACCOUNT,
        *([pl.col(strata).cast(pl.String).alias("_stratum")] if strata else []),
    ]
    accounts = members.group_by(ACCOUNT).agg(pl.all().first()).select(keep).sort(VARIANT, ACCOUNT)
    accounts = accounts.with_columns(pl.int_range(pl.len()).over(VARIANT).alias(_CODE))
    rows = values.join(members.select(UNIT, ACCOUNT), on=UNIT, how="inner").join(
        accounts.select(ACCOUNT, VARIANT, _CODE), on=ACCOUNT, how="inner"
    )
    missing = rows.filter(pl.col(VALUE).is_null()).height
    rows = rows.filter(pl.col(VALUE).is_not_null())
    out = {}
    for v in variants:
        arm = rows.filter(pl.col(VARIANT) == v)
        labels = accounts.filter(pl.col(VARIANT) == v)
        out[v] = AccountValues(
            arm[VALUE].cast(pl.Float64).to_numpy(),
            arm[_CODE].cast(pl.Int64).to_numpy(),
            labels.height,
            labels["_stratum"].to_numpy() if strata else None,
        )
    return out, [_account_note(metric, out), *_missing_note(metric, missing)]


def _account_note(metric: MetricSpec, arms: dict[str, AccountValues]) -> str:
    """How many events and accounts each arm's quantile rests on."""
    counts = "; ".join(
        f"{variant}: {arm.events:,} events from {arm.accounts:,} accounts"
        for variant, arm in arms.items()
    )
    return (
        f"q = {metric.q:g} quantile of '{metric.column}' over events, accounts as the units "
        f"of inference ({counts})"
    )
