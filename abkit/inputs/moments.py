"""Reduce a unit frame to per-arm sufficient statistics (:class:`ArmSummary`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from abkit.config import MetricSpec
from abkit.metrics.base import denominator_column, value_column
from abkit.names import ACCOUNT, ASSIGNED_AT, VARIANT
from abkit.stats.arm import ArmSummary
from abkit.stats.cluster import AccountArm
from abkit.stats.survival import EventTimes


def arm_summaries(
    units: pl.DataFrame, metrics: Sequence[MetricSpec], variants: tuple[str, ...]
) -> dict[str, dict[str, ArmSummary]]:
    """Per metric and variant: n, mean, variance (ddof = 1), skewness and, for ratios,
    the denominator moments and covariance, over the units where the metric is
    defined (x, or y for ratios, not missing; the unit-level table's values are finite,
    so a missing value is the only NaN).

    One Polars selection per variant brings each arm's columns out in the table's row
    order (a filter keeps it); the moments are then two-pass NumPy sums over those
    arrays: x̄ = Σx/n, var = Σ(x − x̄)²/(n − 1), cov = Σ(x − x̄)(y − ȳ)/(n − 1) and the
    adjusted skewness G₁ = √(n(n − 1))/(n − 2) · m₃/m₂^{3/2} (NaN for n < 3 or no
    spread).  NumPy adds a given array in a fixed order, in one thread,
    so the same table gives the same bits however many threads Polars runs, which
    Polars' own multi-threaded aggregations do not guarantee on large tables.

    Examples
    --------
    >>> import polars as pl
    >>> from abkit.config import MetricSpec
    >>> from abkit.metrics.base import value_column
    >>> from abkit.names import VARIANT
    >>> spend = MetricSpec(name="spend", type="mean", column="spend")
    >>> units = pl.DataFrame({VARIANT: ["a", "a", "b", "b", "b"],
    ...                       value_column(spend): [1.0, 3.0, 2.0, 4.0, None]})
    >>> arms = arm_summaries(units, [spend], ("a", "b"))
    >>> arms["spend"]["a"].n, arms["spend"]["a"].mean, arms["spend"]["a"].var
    (2, 2.0, 2.0)
    >>> arms["spend"]["b"].n
    2
    """
    columns: list[pl.Expr] = []
    for i, metric in enumerate(metrics):
        columns.append(
            metric.kind.arm_value(pl.col(value_column(metric))).cast(pl.Float64).alias(f"{i}:x")
        )
        if metric.kind.is_ratio:
            columns.append(pl.col(denominator_column(metric)).cast(pl.Float64).alias(f"{i}:y"))
    per_arm = pl.collect_all(
        [units.lazy().filter(pl.col(VARIANT) == v).select(columns) for v in variants]
    )
    out: dict[str, dict[str, ArmSummary]] = {m.name: {} for m in metrics}
    for variant, frame in zip(variants, per_arm, strict=True):
        for i, metric in enumerate(metrics):
            # one contiguous array each, in the table's order; a null is NaN there
            x = frame.get_column(f"{i}:x").to_numpy()
            y = frame.get_column(f"{i}:y").to_numpy() if metric.kind.is_ratio else None
            missing = np.isnan(x) if y is None else np.isnan(x) | np.isnan(y)
            if missing.any():
                x = x[~missing]
                y = None if y is None else y[~missing]
            out[metric.name][variant] = _moments(x, y)
    return out


def _moments(x: np.ndarray, y: np.ndarray | None) -> ArmSummary:
    """The two-pass moments of one arm's values (and denominators), each sum of
    products added in the arrays' order in one thread (``np.einsum``)."""
    n = x.size
    if n == 0:
        return ArmSummary(n=0, mean=math.nan, var=math.nan)
    mean = float(np.mean(x))
    dx = x - mean
    sxx = float(np.einsum("i,i", dx, dx))
    var = sxx / (n - 1) if n >= 2 else math.nan
    skewness = _skewness(dx, sxx) if n >= 3 and sxx > 0 else math.nan
    if y is None:
        return ArmSummary(n=n, mean=mean, var=var, skewness=skewness)
    den_mean = float(np.mean(y))
    dy = y - den_mean
    return ArmSummary(
        n=n,
        mean=mean,
        var=var,
        den_mean=den_mean,
        den_var=float(np.einsum("i,i", dy, dy)) / (n - 1) if n >= 2 else math.nan,
        cov=float(np.einsum("i,i", dx, dy)) / (n - 1) if n >= 2 else math.nan,
        skewness=skewness,
    )


def _skewness(dx: np.ndarray, sxx: float) -> float:
    """G₁ = √(n(n − 1))/(n − 2) · m₃/m₂^{3/2} of the deviations ``dx`` (Σdx² = ``sxx``);
    where their size would overflow or underflow the cube or the power (deviations
    beyond 1e±50), from dx·2^−k with 2^k near the largest |dx| (it is scale-free)."""
    n = dx.size
    s3 = float(np.einsum("i,i,i", dx, dx, dx))
    if not (math.isfinite(s3) and 1e-100 < sxx / n < 1e100):
        scaled = dx * 2.0 ** -math.frexp(float(np.max(np.abs(dx))))[1]
        sxx = float(np.einsum("i,i", scaled, scaled))
        s3 = float(np.einsum("i,i,i", scaled, scaled, scaled))
    m2 = sxx / n
    return math.sqrt(n * (n - 1)) / (n - 2) * (s3 / n) / (m2 * math.sqrt(m2))


def arms_of(
    sums: pl.DataFrame, variants: tuple[str, ...], stratified: bool, names: Sequence[str] = ()
) -> dict[str, AccountArm]:
    """One :class:`AccountArm` per variant from per-account sums
    (:func:`abkit.inputs.account_sums.engine_account_sums`)."""
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
