"""Per-arm moments of a metric together with its pre-experiment covariates (CUPED).

Each unit where the metric is defined contributes the vector
z = (x[, y], c_1, …, c_k): the metric's value (or numerator and denominator) and the
covariate columns.  Each arm's n, mean vector and covariance matrix (ddof = 1) — the
:class:`~abkit.stats.cuped.Moments` the adjustment needs — are computed where the unit
table is, by exact fixed-point sums (:func:`abkit.inputs.comoments.grouped_comoments`):
only per-arm aggregates come back from an engine, with the same bits on every engine.

A covariate that is missing for some units (users with no history before the
experiment) is set to 0 there and joined by a 0/1 indicator of being missing, so that
those units are adjusted by their own mean instead of being dropped (the
missing-indicator method; valid here because the covariate and its missingness are
fixed before randomisation: Zhao & Ding, "To adjust or not to adjust? Estimating the
average treatment effect in randomized experiments with missing covariates", JASA 2024).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import narwhals as nw
import polars as pl

from abkit.config import ExperimentSpec, MetricSpec
from abkit.engine.looks import covariate_design
from abkit.errors import AbkitInputError
from abkit.inputs.comoments import arm_comoments
from abkit.inputs.table import numeric
from abkit.inputs.unit_table import UnitTable
from abkit.io.readers import Table
from abkit.metrics.base import (
    component_columns,
    denominator_column,
    pre_period_column,
    value_column,
)
from abkit.names import UNIT
from abkit.stats.arm import LARGEST_VALUE
from abkit.stats.cuped import Adjustment, Moments, Term, cuped_test
from abkit.stats.fixed_horizon import Comparison


@dataclass(frozen=True)
class Covariates:
    """One metric's adjustment inputs: the covariates' names (a missing-value indicator
    is named ``<column> missing``), the metric and covariate terms over the components
    of z, each arm's moments and notes on what was filled in or left out."""

    names: tuple[str, ...]
    metric: Term
    terms: tuple[Term, ...]
    arms: dict[str, Moments]
    notes: tuple[str, ...]

    def test(
        self, control: str, variant: str, alpha: float, welch_df: bool = False
    ) -> tuple[Comparison, Adjustment | None]:
        """The CUPED comparison of ``variant`` with ``control`` (:func:`cuped_test`)."""
        return cuped_test(
            self.arms[control],
            self.arms[variant],
            self.metric,
            self.terms,
            self.names,
            alpha,
            welch_df,
        )


def require_covariates(table: Table, columns: tuple[str, ...], role: str) -> None:
    """Refuse a covariate that is not a column of ``table`` (the ``role`` it plays)."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AbkitInputError(
            f"covariate '{missing[0]}' is not a column of the {role} (columns: "
            f"{', '.join(table.columns)}).",
            source=table.label,
            column=missing[0],
            hint="[cuped] covariates name columns measured before assignment, such as "
            "last month's spend or sessions.",
        )


def numeric_covariates(units: pl.DataFrame, columns: tuple[str, ...], table: Table) -> pl.DataFrame:
    """The covariate columns as Float64 (text holding numbers or true/false converted);
    a column that is not numeric is refused, naming it, and so is a value that is not
    finite (NaN, ±inf, or text such as 'nan') or beyond ±1e150, naming its unit: the
    covariances could not be computed (a missing value is null, which is adjusted
    with a missing-value indicator)."""
    converted = units.with_columns(
        numeric(units, c, table, f"covariate '{c}'").alias(c) for c in columns
    )
    for c in columns:
        value = pl.col(c)
        bad = (
            converted.with_row_index("_r")
            .filter(value.is_not_null() & (~value.is_finite() | (value.abs() > LARGEST_VALUE)))
            .head(1)
        )
        if bad.height:
            unit = f"unit {bad.item(0, UNIT)!r}" if UNIT in bad.columns else "a unit"
            raise AbkitInputError(
                f"covariate '{c}': {unit} has {units[c][bad.item(0, '_r')]!r}, which is not "
                f"finite or beyond ±{LARGEST_VALUE:.0e}.",
                source=table.label,
                column=c,
                hint="Leave a covariate that is not known empty (null): CUPED adjusts those "
                "units with a missing-value indicator.",
            )
    return converted


def pre_period_covariates(metric: MetricSpec, days: int) -> dict[str, str]:
    """The unit-frame columns holding ``metric``'s pre-period value (numerator and
    denominator for a ratio, each a covariate) and the names the reports give them."""
    labels = metric.kind.pre_period_labels(metric, days)
    columns = component_columns(metric)
    return {pre_period_column(c): label for c, label in zip(columns, labels, strict=True)}


def covariates_of(spec: ExperimentSpec, metric: MetricSpec) -> dict[str, str]:
    """The unit-frame columns that adjust ``metric`` and the names reports give them:
    its covariate columns, then its own pre-period value (``[cuped] pre_days``)."""
    columns = {c: c for c in spec.covariates(metric)}
    if spec.cuped.pre_days is not None and spec.uses_pre_period(metric):
        columns |= pre_period_covariates(metric, spec.cuped.pre_days)
    return columns


def covariate_moments(
    table: UnitTable,
    metric: MetricSpec,
    columns: Mapping[str, str],
    variants: tuple[str, ...],
) -> Covariates | None:
    """Moments of (metric components, covariates) per arm over the units where the
    metric is defined; None (with the reason in a note) when no covariate is usable.
    ``columns`` maps each covariate column to the name the reports give it.

    Computed where the unit table is (:meth:`UnitTable.frame`): one query counting the
    missing covariates (:func:`abkit.engine.looks.covariate_design`) and the three of
    :func:`abkit.inputs.comoments.grouped_comoments`, each returning a row per arm; no
    unit row comes back from an engine."""
    term = metric.kind.adjustable()
    assert term is not None, f"metric type '{metric.type}' cannot be adjusted"
    x = metric.kind.arm_value(nw.col(value_column(metric))).cast(nw.Float64)
    components = [x]
    present = ~x.is_null()
    if len(term) == 2:
        y = nw.col(denominator_column(metric)).cast(nw.Float64)
        components.append(y)
        present &= ~y.is_null()
    defined = table.frame().filter(present)
    design, names, notes = covariate_design(defined, columns)
    if not names:
        return None
    arms = arm_comoments(defined, [*components, *design], variants)
    p = len(components) + len(design)
    terms: tuple[Term, ...] = tuple((i,) for i in range(len(term), p))
    return Covariates(tuple(names), term, terms, arms, tuple(notes))
