"""Per-arm inputs of quantile metrics: every valid event's value with its unit, and
the arm's quantile estimate with its clustered standard error."""

from __future__ import annotations

import math

import polars as pl

from abkit.config import MetricSpec
from abkit.io.assignments import UNIT, VARIANT
from abkit.stats.quantile import QuantileEstimate, quantile_estimate
from abkit.units.references import VALUE

_CODE = "_unit_code"


def arm_quantiles(
    metric: MetricSpec, values: pl.DataFrame, units: pl.DataFrame, variants: tuple[str, ...]
) -> tuple[dict[str, QuantileEstimate], list[str]]:
    """Each arm's q-quantile of the metric's event values, clustered by unit, and notes.

    ``values`` holds the valid events of the metric's event (UNIT, VALUE, null when
    the event carries none); ``units`` the assigned units (UNIT, VARIANT).  Events
    without a value are counted in a note, not dropped silently.
    """
    assert metric.q is not None
    codes = units.select(UNIT, VARIANT).with_row_index(_CODE)
    rows = values.join(codes, on=UNIT, how="inner")
    missing = rows.filter(pl.col(VALUE).is_null()).height
    rows = rows.filter(pl.col(VALUE).is_not_null())
    estimates = {}
    for variant in variants:
        arm = rows.filter(pl.col(VARIANT) == variant)
        estimates[variant] = quantile_estimate(
            arm.get_column(VALUE).to_numpy(), arm.get_column(_CODE).to_numpy(), metric.q
        )
    event = metric.kind.value_event(metric)
    notes = [_design_note(metric, estimates)]
    if missing:
        notes.append(
            f"{missing:,} '{event}' event(s) carry no value and are left out of the quantile"
        )
    return estimates, notes


def _design_note(metric: MetricSpec, estimates: dict[str, QuantileEstimate]) -> str:
    """How many events and units each arm's quantile rests on, and how much the
    clustering widens its interval over treating the events as independent."""
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
