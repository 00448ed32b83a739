"""Per-account sums of the unit table, computed where the table is (B2B mode).

Accounts are few (tens, at most thousands) and users many, so the account-level tests
need only one row per account: for a metric with per-unit value xᵢ (a ratio's
numerator) and, for a ratio, denominator yᵢ, over the units i of account g where the
metric is defined,

    X_g = Σ_{i∈g} xᵢ,   Y_g = Σ_{i∈g} yᵢ (ratio) or n_g (mean, proportion),
    Z_gj = Σ_{i∈g} c_ij (a missing covariate counts 0) and M_gj = #{i ∈ g: c_ij missing},

the stratum of the account's first unit in the assignments' order, and for time to
value the account's first assignment and first value event (a time to value has no
sums: it is compared by each account's time,
:func:`abkit.inputs.moments.account_times`).  A range query and a sum query return
them for every metric at once (:func:`engine_account_sums`), one more query per
segment column the sums of each segment's users (:func:`segment_account_sums`); only
those rows leave the engine.  A quantile metric still needs each event value's
account: :func:`account_members` brings back the unit and account columns alone.

The results are one frame per metric (VARIANT, ACCOUNT, ``x``, ``y``[, ``stratum``],
``z0`` …), which :func:`abkit.inputs.moments.arms_of` turns into each arm's
:class:`~abkit.stats.cluster.AccountArm`.

Exact sums
----------
An engine adds in any order, and floating-point sums in different orders differ in
their last bits.  Each variable v is therefore scaled by a power of two 2^k bringing
its largest |v| over the accounts near 10⁴ and summed in fixed point
(:data:`abkit.metrics.references.EXACT`, 38 digits, 18 after the point): the sum of
the fixed-point values is exact whatever the order, and X_g = (Σ 2^k vᵢ) / 2^k is
rounded once here, the same bits on every engine — the method of
:func:`abkit.inputs.unit_table.engine_arm_summaries` with accounts as its groups.
Each value enters as the engine's cast of it to fixed point, within about 1.1·10⁻¹⁶
of it relatively (Polars truncates at the 18th decimal and DuckDB rounds, so a value
may enter 10⁻¹⁸ apart on the two; the sums then agree to that, which the final
rounding to a double hides on ordinary data), so X_g is within about
4·10⁻¹⁶·Σ|vᵢ| of the exact sum of the values (tested against ``math.fsum``).  Counts
(n_g, missing covariates) are integers, exact on every engine.  A variable whose
accounts' magnitudes differ by more than 10⁶ is summed in floating point instead.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.backend import collect_all
from abkit.inputs.comoments import (
    key_value,
    largest,
    one_scale_fits,
    sum_of,
    value_range,
)
from abkit.inputs.moments import arms_of
from abkit.inputs.segments import segment_name, segment_values
from abkit.inputs.unit_table import UnitTable
from abkit.metrics.base import denominator_column, value_column
from abkit.metrics.references import exponent, unscaled
from abkit.names import ACCOUNT, ASSIGNED_AT, ORDER, UNIT, VARIANT
from abkit.stats.cluster import AccountArm

FIRST = "_first"  # the first assignment order of an account's units


@dataclass(frozen=True)
class _Terms:
    """One metric's per-unit terms, each null where the metric is undefined."""

    metric: MetricSpec
    present: nw.Expr
    values: dict[str, nw.Expr]  # variable name → masked value (x, y, covariates)
    missing: dict[str, nw.Expr]  # covariate variable name → masked 0/1 of its nulls
    labels: dict[str, str]  # covariate variable name → the name reports give it


def _terms(i: int, metric: MetricSpec, covariates: Mapping[str, str] | None) -> _Terms:
    """The masked terms of metric ``i``: x (the value column as a float), y for a ratio
    and each covariate with nulls as 0."""
    x = nw.col(value_column(metric)).cast(nw.Float64)
    present = ~x.is_null() & ~nw.col(ACCOUNT).is_null()
    values = {f"{i}:x": x}
    if metric.kind.is_ratio:
        y = nw.col(denominator_column(metric)).cast(nw.Float64)
        present = present & ~y.is_null()
        values[f"{i}:y"] = y
    missing: dict[str, nw.Expr] = {}
    labels: dict[str, str] = {}
    for j, (col, label) in enumerate((covariates or {}).items()):
        c = nw.col(col).cast(nw.Float64)
        values[f"{i}:z{j}"] = c.fill_null(0.0)
        missing[f"{i}:z{j}"] = nw.when(present & c.is_null()).then(nw.lit(1))
        labels[f"{i}:z{j}"] = label
    masked: dict[str, nw.Expr] = {n: nw.when(present).then(v) for n, v in values.items()}
    return _Terms(metric, present, masked, missing, labels)


@dataclass(frozen=True)
class AccountSums:
    """The per-account inputs of the B2B design, with one row per account.

    Parameters
    ----------
    sums : dict of str to polars.DataFrame
        Per metric: VARIANT, ACCOUNT, ``x``, ``y``, ``stratum`` (with strata) and the
        covariate sums ``z0`` …, one row per account where the metric is defined,
        sorted by variant and account.
    names : dict of str to list of str
        Per metric, the names of its ``z`` columns.
    accounts : polars.DataFrame
        One row per account of the clean units: VARIANT, ACCOUNT, the strata column
        (its value at the account's first unit) and, with a time-to-value metric,
        ASSIGNED_AT (the account's first assignment) and each such metric's value
        column (its first event).
    distinct : int
        Distinct values of the account column over the clean units (a missing
        account counts as one value, as Polars' ``n_unique`` does).
    scales : dict of str to (int, bool)
        Per summed variable, the power of two it was scaled by and whether it was
        summed in fixed point (segments reuse them).
    index : dict of str to int
        Per metric, its position in the query (the prefix of its variables' names).
    """

    sums: dict[str, pl.DataFrame]
    names: dict[str, list[str]]
    accounts: pl.DataFrame
    distinct: int
    scales: dict[str, tuple[int, bool]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)


def clean_units(table: UnitTable, mixed: Sequence[object]) -> nw.LazyFrame[Any]:
    """The unit table where it is, with the assignments' order (:data:`ORDER`), without
    the units of the contaminated accounts ``mixed`` (a unit without an account is
    then left out too, as Polars' ``~is_in`` leaves out a null)."""
    if table.rows_ is not None:
        lazy = nw.from_native(table.rows_.lazy().with_row_index(ORDER))
    else:
        assert table.lazy is not None
        lazy = table.lazy
    return lazy.filter(~nw.col(ACCOUNT).is_in(list(mixed))) if mixed else lazy


def engine_account_sums(
    table: UnitTable,
    units: nw.LazyFrame[Any],
    metrics: Sequence[MetricSpec],
    strata: str | None,
    covariates: Mapping[str, Mapping[str, str]],
    times: Sequence[MetricSpec] = (),
    reason: str = "the account sums",
) -> AccountSums:
    """Every metric's per-account sums in two queries on ``units`` (:func:`clean_units`):
    the range of each variable per account, then its fixed-point sums, counts and
    first units (see the module's notes).  ``metrics`` are means, proportions and
    ratios; ``times`` time-to-value metrics, whose accounts' first assignment and
    first value event come back with them.  ``covariates``: metric name → covariate
    column → name; the rows that come back are recorded on ``table`` for ``reason``."""
    keys = [VARIANT, ACCOUNT, *([strata] if strata else [])]
    terms = [_terms(i, m, covariates.get(m.name)) for i, m in enumerate(metrics)]
    values = {name: v for t in terms for name, v in t.values.items()}
    scales: dict[str, tuple[int, bool]] = {}
    if values:
        ranges = [e for name, v in values.items() for e in value_range(v, name)]
        (pass0,) = collect_all([units.group_by(*keys).agg(*ranges)])
        table.record(reason, pass0.height)
        rows = pass0.to_dicts()
        for name in values:
            size = largest(rows, name)
            fits = one_scale_fits(rows, name) and math.isfinite(size)
            scales[name] = (exponent(size), fits)
    aggs = [nw.col(ORDER).min().alias(FIRST)]
    # time to value: each account's first assignment and first value event
    extra = [ASSIGNED_AT, *(value_column(m) for m in times)] if times else []
    aggs += [nw.col(c).min().alias(c) for c in extra]
    for i, t in enumerate(terms):
        aggs += [
            t.values[f"{i}:x"].count().alias(f"{i}:n"),
            nw.when(t.present).then(nw.col(ORDER)).min().alias(f"{i}:first"),
        ]
        aggs += [m.count().alias(f"{name}:missing") for name, m in t.missing.items()]
    for name, v in values.items():
        aggs.append(_scaled_sum(v, scales[name]).alias(f"{name}:sum"))
    (pass1,) = collect_all([units.group_by(*keys).agg(*aggs)])
    table.record(reason, pass1.height)
    sums, names = {}, {}
    for i, t in enumerate(terms):
        sums[t.metric.name], names[t.metric.name] = _metric_sums(pass1, i, t, strata, scales)
    distinct = pass1.select(pl.col(ACCOUNT).n_unique()).item()
    accounts = _first_of(pass1.filter(pl.col(ACCOUNT).is_not_null()), FIRST, strata)
    if extra:
        starts = (
            pass1.filter(pl.col(ACCOUNT).is_not_null())
            .group_by(ACCOUNT)
            .agg(pl.col(c).min() for c in extra)
        )
        accounts = accounts.join(starts, on=ACCOUNT, how="left", maintain_order="left")
    return AccountSums(
        sums,
        names,
        accounts.sort(VARIANT, ACCOUNT),
        int(distinct),
        scales,
        {m.name: i for i, m in enumerate(metrics)},
    )


def _scaled_sum(value: nw.Expr, scale: tuple[int, bool]) -> nw.Expr:
    """Σ value·2^k, in fixed point when ``scale`` (k, exact) says so."""
    power, exact = scale
    total: nw.Expr = sum_of(value * 2.0**power, exact)
    return total


def _first_of(rows: pl.DataFrame, first: str, strata: str | None) -> pl.DataFrame:
    """One row per account (VARIANT, ACCOUNT, the strata column) from rows grouped by
    variant, account and stratum: the stratum of the group with the first unit."""
    keep = [VARIANT, ACCOUNT, *([strata] if strata else [])]
    return (
        rows.filter(pl.col(first).is_not_null())
        .sort(first)
        .group_by(ACCOUNT, maintain_order=True)
        .agg(pl.col(c).first() for c in keep if c != ACCOUNT)
        .select(keep)
    )


def _total(values: Sequence[object]) -> decimal.Decimal | float | None:
    """The exact sum of an account's parts (a fixed-point Decimal, or a float summed in
    floating point), None when it has none."""
    parts = [v for v in values if v is not None]
    if not parts:
        return None
    with decimal.localcontext(prec=80):
        return sum((decimal.Decimal(v) for v in parts), decimal.Decimal(0))  # type: ignore[arg-type]


def _metric_sums(
    rows: pl.DataFrame,
    i: int,
    terms: _Terms,
    strata: str | None,
    scales: dict[str, tuple[int, bool]],
) -> tuple[pl.DataFrame, list[str]]:
    """One metric's per-account frame (see :class:`AccountSums`) from the grouped rows
    (variant, account[, stratum]) of the sums query."""
    mine = rows.filter(pl.col(f"{i}:n") > 0)
    accounts = _first_of(mine, f"{i}:first", strata)
    if strata:
        accounts = accounts.with_columns(pl.col(strata).cast(pl.String).alias("stratum"))
        accounts = accounts.drop(strata)
    ratio = terms.metric.kind.is_ratio
    parts: dict[object, list[dict[str, Any]]] = {}
    for r in mine.iter_rows(named=True):
        parts.setdefault(key_value(r[ACCOUNT]), []).append(r)
    columns: dict[str, list[float]] = {"x": [], "y": []}
    names: list[str] = []
    missing_counts = {
        name: sum(int(r[f"{name}:missing"] or 0) for rs in parts.values() for r in rs)
        for name in terms.missing
    }
    z_columns: list[tuple[str, str]] = []  # (z column, source: variable or its missing count)
    for name, label in terms.labels.items():
        z_columns.append((f"z{len(names)}", name))
        names.append(label)
        if missing_counts[name]:
            z_columns.append((f"z{len(names)}", f"{name}:missing"))
            names.append(f"{label} missing")
    for column, _ in z_columns:
        columns[column] = []
    for account in accounts[ACCOUNT].to_list():
        group = parts[key_value(account)]
        columns["x"].append(_unsum(group, f"{i}:x", scales))
        if ratio:
            columns["y"].append(_unsum(group, f"{i}:y", scales))
        else:
            columns["y"].append(float(sum(int(r[f"{i}:n"]) for r in group)))
        for column, source in z_columns:
            if source.endswith(":missing"):
                columns[column].append(float(sum(int(r[source] or 0) for r in group)))
            else:
                columns[column].append(_unsum(group, source, scales))
    frame = accounts.with_columns(
        pl.Series(name, values, dtype=pl.Float64) for name, values in columns.items()
    )
    order = [
        VARIANT,
        ACCOUNT,
        "x",
        "y",
        *(["stratum"] if strata else []),
        *(c for c, _ in z_columns),
    ]
    return frame.select(order).sort(VARIANT, ACCOUNT), names


def _unsum(group: list[dict[str, Any]], name: str, scales: dict[str, tuple[int, bool]]) -> float:
    """An account's sum of a variable from its groups' scaled sums, correctly rounded."""
    total = _total([r[f"{name}:sum"] for r in group])
    return 0.0 if total is None else unscaled(total, scales[name][0])


def account_arms_of(
    sums: AccountSums,
    metric: MetricSpec,
    variants: tuple[str, ...],
    stratified: bool,
    seats: pl.DataFrame | None = None,
) -> dict[str, AccountArm]:
    """Each arm's :class:`~abkit.stats.cluster.AccountArm` of one metric from the
    engine's sums: ``seats`` (ACCOUNT, ``_seats``) replaces Y_g by the licensed seats
    where given (adoption as a share of seats)."""
    frame = sums.sums[metric.name]
    if seats is not None:
        frame = frame.join(seats, on=ACCOUNT, how="left", maintain_order="left").with_columns(
            pl.coalesce("_seats", "y").alias("y")
        )
    return arms_of(frame, variants, stratified, sums.names[metric.name])


def segment_account_sums(
    table: UnitTable,
    units: nw.LazyFrame[Any],
    column: str,
    metrics: Sequence[MetricSpec],
    sums: AccountSums,
    variants: tuple[str, ...],
    strata: str | None,
    max_values: int,
    label: str,
) -> dict[str, dict[str, dict[str, AccountArm]]]:
    """Metric → segment → variant → per-account sums of the segment's users (every
    segment over the accounts where the metric is defined, in the same order, 0 where
    an account has none of the segment's users, so that one re-assignment of accounts
    applies to all), in one query grouped by variant, account and ``column``."""
    values = segment_values(units, column, max_values, label)
    aggs = []
    for m in metrics:
        i = sums.index[m.name]
        t = _terms(i, m, None)
        aggs.append(t.values[f"{i}:x"].count().alias(f"{i}:n"))
        for name in (f"{i}:x", f"{i}:y"):
            if name in t.values:
                aggs.append(_scaled_sum(t.values[name], sums.scales[name]).alias(f"{name}:sum"))
    out: dict[str, dict[str, dict[str, AccountArm]]] = {m.name: {} for m in metrics}
    if not aggs:
        return out
    (rows,) = collect_all([units.group_by(VARIANT, ACCOUNT, column).agg(*aggs)])
    table.record(f"the account sums by {column}", rows.height)
    for m in metrics:
        i = sums.index[m.name]
        keys = sums.sums[m.name].select(VARIANT, ACCOUNT, *(["stratum"] if strata else []))
        mine = rows.filter((pl.col(f"{i}:n") > 0) & pl.col(ACCOUNT).is_not_null())
        for value in values:
            part = [
                r for r in mine.iter_rows(named=True) if key_value(r[column]) == key_value(value)
            ]
            y = (
                [_unsum([r], f"{i}:y", sums.scales) for r in part]
                if m.kind.is_ratio
                else [float(r[f"{i}:n"]) for r in part]
            )
            found = pl.DataFrame(
                {
                    VARIANT: pl.Series([r[VARIANT] for r in part], dtype=rows.schema[VARIANT]),
                    ACCOUNT: pl.Series([r[ACCOUNT] for r in part], dtype=rows.schema[ACCOUNT]),
                    "x": pl.Series(
                        [_unsum([r], f"{i}:x", sums.scales) for r in part], dtype=pl.Float64
                    ),
                    "y": pl.Series(y, dtype=pl.Float64),
                }
            )
            aligned = keys.join(
                found, on=[VARIANT, ACCOUNT], how="left", maintain_order="left"
            ).with_columns(pl.col("x", "y").fill_null(0.0))
            out[m.name][segment_name(value)] = arms_of(aligned, variants, strata is not None)
    return out


def account_members(
    table: UnitTable,
    units: nw.LazyFrame[Any],
    sums: AccountSums,
    strata: str | None,
    reason: str = "the accounts of exact quantile values",
) -> pl.DataFrame:
    """UNIT, VARIANT, ACCOUNT (and the strata column) of every unit with an account, in
    the assignments' order: the unit and account columns come back from the engine
    (recorded for ``reason``), the variant and stratum are the account's."""
    (rows,) = collect_all([units.filter(~nw.col(ACCOUNT).is_null()).select(ORDER, UNIT, ACCOUNT)])
    table.record(reason, rows.height)
    per_account = sums.accounts.select(VARIANT, ACCOUNT, *([strata] if strata else []))
    return (
        rows.sort(ORDER)
        .drop(ORDER)
        .join(per_account, on=ACCOUNT, how="left", maintain_order="left")
    )
