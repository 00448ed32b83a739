"""Reduce a unit frame to per-arm sufficient statistics (:class:`ArmSummary`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence

import polars as pl

from abkit.config import MetricSpec
from abkit.metrics.base import denominator_column, value_column
from abkit.names import ACCOUNT, ASSIGNED_AT, VARIANT
from abkit.stats.arm import ArmSummary
from abkit.stats.cluster import AccountArm
from abkit.stats.survival import EventTimes


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


def arm_summaries(
    units: pl.DataFrame, metrics: Sequence[MetricSpec], variants: tuple[str, ...]
) -> dict[str, dict[str, ArmSummary]]:
    """Per metric and variant: n, mean, variance (ddof = 1), skewness and, for ratios,
    the denominator moments and covariance, over the units where the metric is
    defined; one Polars selection per variant for all metrics (a filter and a select
    per arm run several times faster than a group-by into a handful of groups).

    A metric's values are masked to null where it is undefined (x, or y for ratios,
    missing), so that every aggregate of it runs over the same units.
    """
    aggs: list[pl.Expr] = []
    for i, metric in enumerate(metrics):
        x = metric.kind.arm_value(pl.col(value_column(metric))).cast(pl.Float64)
        present = x.is_not_null()
        if metric.kind.is_ratio:
            y = pl.col(denominator_column(metric)).cast(pl.Float64)
            present &= y.is_not_null()
            y = pl.when(present).then(y)
            aggs += [
                y.mean().alias(f"{i}:den_mean"),
                y.var(ddof=1).alias(f"{i}:den_var"),
                pl.cov(pl.when(present).then(x), y, ddof=1).alias(f"{i}:cov"),
            ]
        x = pl.when(present).then(x)
        aggs += [
            present.sum().alias(f"{i}:n"),
            x.mean().alias(f"{i}:mean"),
            x.var(ddof=1).alias(f"{i}:var"),
            x.skew(bias=False).alias(f"{i}:skew"),
        ]
    per_arm = pl.collect_all(
        [units.lazy().filter(pl.col(VARIANT) == v).select(aggs) for v in variants]
    )
    rows = {v: frame.row(0, named=True) for v, frame in zip(variants, per_arm, strict=True)}
    out: dict[str, dict[str, ArmSummary]] = {}
    for i, metric in enumerate(metrics):
        ratio = metric.kind.is_ratio
        arms = out[metric.name] = {}
        for variant in variants:
            r = rows.get(variant)
            if r is None or not r[f"{i}:n"]:
                arms[variant] = ArmSummary(n=0, mean=math.nan, var=math.nan)
                continue
            arms[variant] = ArmSummary(
                n=int(r[f"{i}:n"]),
                mean=_float(r[f"{i}:mean"]),
                var=_float(r[f"{i}:var"]),
                den_mean=_float(r[f"{i}:den_mean"]) if ratio else None,
                den_var=_float(r[f"{i}:den_var"]) if ratio else None,
                cov=_float(r[f"{i}:cov"]) if ratio else None,
                skewness=_float(r[f"{i}:skew"]),
            )
    return out


def account_sums(
    units: pl.DataFrame,
    metric: MetricSpec,
    strata: str | None = None,
    covariates: Mapping[str, str] | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Per variant and account, sorted: the sums x and y (see :func:`account_arms`), the
    stratum when given, and the covariate sums ``z0`` … with their names."""
    x = pl.col(value_column(metric)).cast(pl.Float64)
    present = x.is_not_null() & pl.col(ACCOUNT).is_not_null()
    if metric.kind.is_ratio:
        y = pl.col(denominator_column(metric)).cast(pl.Float64)
        present &= y.is_not_null()
    else:  # one per eligible unit: a literal would sum to 1 per group, not to the count
        y = x.is_not_null().cast(pl.Float64)
    aggs = [x.sum().alias("x"), y.sum().alias("y")]
    if strata:
        aggs.append(pl.col(strata).first().cast(pl.String).alias("stratum"))
    eligible = units.filter(present)
    names: list[str] = []
    for column, label in (covariates or {}).items():
        c = pl.col(column).cast(pl.Float64)
        aggs.append(c.fill_null(0.0).sum().alias(f"z{len(names)}"))
        names.append(label)
        if eligible.get_column(column).null_count():
            aggs.append(c.is_null().sum().cast(pl.Float64).alias(f"z{len(names)}"))
            names.append(f"{label} missing")
    return eligible.group_by(VARIANT, ACCOUNT).agg(aggs).sort(VARIANT, ACCOUNT), names


def account_arms(
    units: pl.DataFrame,
    metric: MetricSpec,
    variants: tuple[str, ...],
    strata: str | None = None,
    seats: pl.DataFrame | None = None,
    covariates: Mapping[str, str] | None = None,
) -> dict[str, AccountArm]:
    """Per-account numerator and denominator sums of each arm (eligible units only).

    Mean and proportion metrics: X_g = Σ values, Y_g = number of units; ratio metrics:
    X_g = Σ numerators, Y_g = Σ denominators.  ``seats`` (ACCOUNT, ``_seats``) replaces
    Y_g by the account's licensed seats where given (adoption as a share of seats).
    ``covariates`` (column → name) adds Z_g, the sums of the covariates over the same
    units; a column with missing values adds the account's count of them as one more
    covariate (missing values themselves count 0).
    """
    sums, names = account_sums(units, metric, strata, covariates)
    if seats is not None:
        sums = sums.join(seats, on=ACCOUNT, how="left", maintain_order="left").with_columns(
            pl.coalesce("_seats", "y").alias("y")
        )
    return arms_of(sums, variants, strata is not None, names)


def arms_of(
    sums: pl.DataFrame, variants: tuple[str, ...], stratified: bool, names: Sequence[str] = ()
) -> dict[str, AccountArm]:
    """One :class:`AccountArm` per variant from per-account sums (``account_sums``)."""
    out = {}
    for v in variants:
        rows = sums.filter(pl.col(VARIANT) == v)
        labels = rows["stratum"].to_numpy() if stratified else None
        z = rows.select(f"z{i}" for i in range(len(names))).to_numpy() if names else None
        out[v] = AccountArm(rows["x"].to_numpy(), rows["y"].to_numpy(), labels, z, tuple(names))
    return out


def account_times(
    units: pl.DataFrame, metric: MetricSpec, variants: tuple[str, ...], export_end: dt.datetime
) -> dict[str, EventTimes]:
    """Per account: days from its first assignment to its first value event (event = 1),
    or to the export end when it has none yet (censored, event = 0)."""
    first = pl.col(value_column(metric))
    per_account = (
        units.filter(pl.col(ACCOUNT).is_not_null())
        .group_by(VARIANT, ACCOUNT)
        .agg(pl.col(ASSIGNED_AT).min().alias("start"), first.min().alias("value"))
        .with_columns(
            pl.col("value").is_not_null().alias("event"),
            (
                (pl.coalesce("value", pl.lit(export_end)) - pl.col("start")).dt.total_microseconds()
                / 86_400_000_000
            ).alias("days"),
        )
        .sort(VARIANT, ACCOUNT)
    )
    out = {}
    for v in variants:
        rows = per_account.filter(pl.col(VARIANT) == v)
        out[v] = EventTimes(rows["days"].to_numpy(), rows["event"].to_numpy())
    return out


def contamination(mixed: list[object], consequence: str) -> str:
    """The warning naming accounts whose users saw different variants."""
    shown = ", ".join(map(str, mixed[:10])) + (" …" if len(mixed) > 10 else "")
    return (
        f"CONTAMINATION: {len(mixed)} account(s) have users in more than one variant "
        f"({shown}). Randomisation by account was broken there{consequence}"
    )
