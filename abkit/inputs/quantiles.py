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

import polars as pl

from abkit.config import MetricSpec
from abkit.engine.quantiles import EVENTS, KEY, BinnedValues, arm_histogram, profile_levels
from abkit.metrics.references import VALUE, event_column
from abkit.names import ACCOUNT, UNIT, VARIANT
from abkit.stats import ArmSummary
from abkit.stats.account_quantile import AccountValues
from abkit.stats.quantile import (
    LogBins,
    QuantileEstimate,
    binned_quantile_estimate,
    quantile_estimates,
)

_CODE = "_unit_code"


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


def binned_arm_quantiles(
    metric: MetricSpec, binned: BinnedValues, variants: tuple[str, ...], bins: LogBins
) -> tuple[ArmQuantiles, list[str]]:
    """:func:`arm_quantiles` by the histogram route."""
    histograms = {v: arm_histogram(binned.histogram, v) for v in variants}
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
