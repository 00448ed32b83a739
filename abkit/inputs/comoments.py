"""Exact grouped co-moments computed where a table is: per group, n, the mean vector and
the covariance matrix (ddof = 1) of p expressions, the same on every engine.

Floating-point sums added in an engine's own order differ between engines (and between
runs of a multi-threaded engine) in their last bits; downstream arithmetic such as a
ratio metric's delta-method variance or a CUPED adjustment magnifies that.  Sums here
are taken in fixed point (:data:`abkit.metrics.references.EXACT`, Decimal(38, 18)) on
values scaled by powers of two.  Converting a double to that type keeps 18 decimals
after the point (on a value scaled near 10⁴, a relative error below about 1e-16;
Polars truncates and DuckDB rounds, so a value may enter 10⁻¹⁸ apart on the two); the
sum of the converted values is then exact whatever the order of addition, so only
aggregates leave the engine and every engine returns the same numbers up to those
conversions, which the final rounding to a double hides on ordinary data (the
engine-matrix tests find the same bits).

Three queries, each returning a row per group:

0. n and the range of every zᵢ, which give a power-of-two scale 2^{kᵢ} bringing its
   largest |value| near :data:`~abkit.metrics.references.DEVIATION_SCALE` (10⁴);
1. the exact sums Σ 2^{kᵢ} zᵢ, so z̄ᵢ = Σ 2^{kᵢ} zᵢ / (2^{kᵢ} n), within about one unit
   in the last place (the conversion's error; the division here is correctly rounded);
2. the centred cross-products Sᵢⱼ = Σ uᵢ(zᵢ − z̄ᵢ) · uⱼ(zⱼ − z̄ⱼ), also in fixed point,
   after scaling by powers of two uᵢ bringing the largest deviation near 10⁴ (the
   products are at most 10⁸, so about 10¹² rows fit the type's 20 integer digits and
   each sum keeps about 26 significant digits).  The group mean subtracted is pass 1's
   exact mean, written into the query as a literal for a few groups named by text (the
   arms), else taken on the engine from the group's exact sum, once per group, and
   joined back on the keys (:func:`with_deviations`): the same bits on every engine.

Then cov(zᵢ, zⱼ) = Sᵢⱼ / (uᵢuⱼ(n − 1)).  This is the two-pass (centred) algorithm, which
keeps the covariance of values far from 0 (a mean of 10⁹ with a spread of 10) where
raw sums of products Σzᵢzⱼ − n z̄ᵢz̄ⱼ would keep no digit (Chan, Golub & LeVeque,
"Algorithms for computing the sample variance: analysis and recommendations", The
American Statistician 37(3), 1983).  A variable whose groups' magnitudes differ by
more than :data:`GROUP_SPREAD` (one shared scale would not suit them all) or that is
not finite is summed in floating point instead, as are its products.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import numpy as np

from abkit.engine.backend import collect_all
from abkit.metrics.references import exact_sum, exponent, power_of_two, unscaled
from abkit.names import VARIANT
from abkit.stats.cuped import Moments

# the largest |value| of the groups may differ by this factor under one shared scale:
# the smallest group's values then keep about 16 significant digits in fixed point
GROUP_SPREAD = 1e6


def grouped_comoments(
    units: nw.LazyFrame[Any], keys: Sequence[str], values: Sequence[nw.Expr]
) -> dict[tuple[Any, ...], Moments]:
    """Per group of ``keys``: n, the mean vector and the covariance matrix (ddof = 1) of
    the expressions ``values`` = (z₀, …, z_{p−1}), computed where ``units`` is.

    Parameters
    ----------
    units : narwhals.LazyFrame
        The rows, on any engine.  Every row counts: filter out the rows where a zᵢ is
        null before (nulls are not skipped here).
    keys : sequence of str
        The columns that form the groups (at least one: for example the variant, and a
        period).
    values : sequence of narwhals.Expr
        z₀ … z_{p−1}, numeric expressions over the columns of ``units``.

    Returns
    -------
    dict
        Group (the tuple of its key values; a float NaN key is named ``'nan'``) →
        :class:`~abkit.stats.cuped.Moments`; groups without rows are left out.  The
        covariance is NaN for a group of one row.

    Notes
    -----
    Three queries (see the module's docstring): the groups' ranges; the exact sums
    Σ 2^{kᵢ} zᵢ giving z̄ᵢ; the exact centred cross-products
    Sᵢⱼ = Σ uᵢ(zᵢ − z̄ᵢ) uⱼ(zⱼ − z̄ⱼ), so that
    cov(zᵢ, zⱼ) = Sᵢⱼ / (uᵢ uⱼ (n − 1)).  The same bits on every engine, but where a
    variable falls back to floating point (values not finite, or groups whose
    magnitudes differ by more than :data:`GROUP_SPREAD`).

    References
    ----------
    Chan, T. F., Golub, G. H. and LeVeque, R. J. (1983). Algorithms for computing the
    sample variance: analysis and recommendations. The American Statistician 37(3).

    Examples
    --------
    >>> import narwhals as nw
    >>> import numpy as np
    >>> import polars as pl
    >>> frame = pl.LazyFrame({"g": ["a"] * 4, "x": [1.0, 2.0, 4.0, 8.0], "c": [10.0, 12, 11, 15]})
    >>> moments = grouped_comoments(nw.from_native(frame), ["g"], [nw.col("x"), nw.col("c")])
    >>> a = moments[("a",)]
    >>> a.n, a.mean.tolist()
    (4, [3.75, 12.0])
    >>> z = np.array([[1.0, 10.0], [2.0, 12.0], [4.0, 11.0], [8.0, 15.0]])
    >>> bool(np.allclose(a.cov, np.cov(z, rowvar=False), rtol=1e-15))
    True
    """
    p = len(values)
    keys = list(keys)
    names = [f"__z{i}" for i in range(p)]
    data = units.select(
        *(nw.col(k) for k in keys), *(v.alias(n) for v, n in zip(values, names, strict=True))
    )
    ranges = [nw.len().alias("__n")]
    ranges += [e for name in names for e in value_range(nw.col(name), name)]
    (pass0,) = collect_all([data.group_by(*keys).agg(*ranges)])
    zero = {group_key(r, keys): r for r in pass0.iter_rows(named=True)}
    if not zero:
        return {}
    sizes = {name: largest(zero.values(), name) for name in names}
    exact = {name: one_scale_fits(zero.values(), name) for name in names}
    sums = [scaled_sum(nw.col(n), sizes[n], exact[n]).alias(f"{n}:sum") for n in names]
    (pass1,) = collect_all([data.group_by(*keys).agg(*sums)])
    one = {group_key(r, keys): zero[group_key(r, keys)] | r for r in pass1.iter_rows(named=True)}
    scales = [deviation_exponent(name, "__n", one, sizes) for name in names]
    # a product is summed in fixed point where both variables' values and deviations
    # suit one scale over the groups
    fixed = {name: exact[name] and spreads_fit(name, "__n", one, sizes) for name in names}
    deviations = [
        Deviation(f"{name}:d", nw.col(name), name, "__n", k)
        for name, k in zip(names, scales, strict=True)
    ]
    products = [
        sum_of(
            nw.col(f"{names[i]}:d") * nw.col(f"{names[j]}:d"),
            fixed[names[i]] and fixed[names[j]],
        ).alias(f"__s{i}_{j}")
        for i in range(p)
        for j in range(i, p)
    ]
    centred = with_deviations(data, keys, one, deviations, sizes, exact)
    (pass2,) = collect_all([centred.group_by(*keys).agg(*products)])
    two = {group_key(r, keys): r for r in pass2.iter_rows(named=True)}
    out: dict[tuple[Any, ...], Moments] = {}
    for group, r1 in one.items():
        r2 = two[group]
        n = int(r1["__n"])
        mean = np.array([exact_mean(r1[f"{name}:sum"], n, exponent(sizes[name])) for name in names])
        cov = np.full((p, p), np.nan)
        for i in range(p):
            for j in range(i, p):
                total = unscaled(r2[f"__s{i}_{j}"], scales[i] + scales[j])
                cov[i, j] = cov[j, i] = sample(total, n)
        out[group] = Moments(n, mean, cov)
    return out


def arm_comoments(
    units: nw.LazyFrame[Any], values: Sequence[nw.Expr], variants: tuple[str, ...]
) -> dict[str, Moments]:
    """Per variant (column :data:`~abkit.names.VARIANT`), the co-moments of ``values``
    by :func:`grouped_comoments`; a variant without rows has n = 0 and NaN moments."""
    p = len(values)
    by_group = grouped_comoments(units, [VARIANT], values)
    empty = Moments(0, np.full(p, np.nan), np.full((p, p), np.nan))
    return {v: by_group.get((v,), empty) for v in variants}


def value_range(value: nw.Expr, name: str) -> list[nw.Expr]:
    """The aggregates ``<name>:min`` and ``<name>:max`` of ``value``."""
    return [value.min().alias(f"{name}:min"), value.max().alias(f"{name}:max")]


def largest(rows: Iterable[dict[str, Any]], name: str) -> float:
    """The largest |value| of a variable over every group (0 when it has none), from
    the groups' ``<name>:min`` and ``<name>:max``."""
    ends = [
        abs(float(r[f"{name}:{end}"]))
        for r in rows
        for end in ("min", "max")
        if r[f"{name}:{end}"] is not None
    ]
    return max(ends, default=0.0)


def scaled_sum(value: nw.Expr, largest: float, exact: bool) -> nw.Expr:
    """Σ value·2^k in fixed point (the same whatever the order of addition), k =
    :func:`exponent` of ``largest``; in floating point when a value is not finite (the
    moments are then not finite either) or ``exact`` is false."""
    return sum_of(value * 2.0 ** exponent(largest), exact and math.isfinite(largest))


def sum_of(value: nw.Expr, exact: bool) -> nw.Expr:
    """Σ value, in fixed point when ``exact`` (:func:`exact_sum`)."""
    return exact_sum(value) if exact else value.sum()


def one_scale_fits(rows: Iterable[dict[str, Any]], name: str) -> bool:
    """Whether one power-of-two scale suits every group's values (their largest |values|
    within :data:`GROUP_SPREAD` of each other)."""
    sizes = [largest([r], name) for r in rows]
    positive = [v for v in sizes if v > 0]
    return not positive or max(positive) <= GROUP_SPREAD * min(positive)


def group_key(row: dict[str, Any], keys: Sequence[str]) -> tuple[Any, ...]:
    """A group's key values; a float NaN (which equals nothing) is named 'nan'."""
    return tuple(key_value(row[k]) for k in keys)


def key_value(value: Any) -> Any:
    """A key value as :func:`group_key` names it."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def exact_mean(total: object, n: int, exponent: int = 0) -> float:
    """Σ / (n·2^k) from the fixed-point sum of scaled values (the division correctly
    rounded)."""
    if total is None or n == 0:
        return math.nan
    with decimal.localcontext(prec=60):
        return float(decimal.Decimal(total) / (n * power_of_two(exponent)))  # type: ignore[arg-type]


def deviation_exponent(
    name: str, count: str, pass1: dict[tuple[Any, ...], dict[str, Any]], sizes: dict[str, float]
) -> int:
    """k such that u = 2^k brings the largest deviation from its group's mean of any
    group near :data:`~abkit.metrics.references.DEVIATION_SCALE` (0 when every value is equal).

    ``pass1`` holds each group's ``<name>:min``, ``<name>:max``, ``<name>:sum`` (the
    sum of the values scaled by :func:`exponent` of ``sizes[name]``) and its ``count``
    of values; the exact means of pass 1 size the scale.
    """
    return exponent(max(_spreads(name, count, pass1, sizes), default=0.0))


def spreads_fit(
    name: str, count: str, pass1: dict[tuple[Any, ...], dict[str, Any]], sizes: dict[str, float]
) -> bool:
    """Whether one deviation scale suits every group: their largest deviations from
    their means within :data:`GROUP_SPREAD` of each other.  Otherwise a group whose
    values barely vary would have its centred products near 10⁻¹² under the scale of
    the group that varies most, where fixed point's 18 decimals keep few digits, so
    that variable's products are summed in floating point instead."""
    positive = [s for s in _spreads(name, count, pass1, sizes) if s > 0]
    return not positive or max(positive) <= GROUP_SPREAD * min(positive)


def _spreads(
    name: str, count: str, pass1: dict[tuple[Any, ...], dict[str, Any]], sizes: dict[str, float]
) -> list[float]:
    """Each group's largest |value − its mean| (see :func:`deviation_exponent`)."""
    exponent_of_sum = exponent(sizes[name])  # pass 1 summed the values scaled by it
    out = []
    for r in pass1.values():
        mean = exact_mean(r[f"{name}:sum"], int(r[count] or 0), exponent_of_sum)
        lo, hi = r[f"{name}:min"], r[f"{name}:max"]
        if lo is not None and hi is not None and math.isfinite(mean):
            out.append(max(abs(float(hi) - mean), abs(float(lo) - mean)))
    return out


def group_centre(value: nw.Expr, name: str, sizes: dict[str, float], exact: bool) -> nw.Expr:
    """The aggregate giving a group's mean of ``value`` on the engine: its fixed-point
    sum of the values scaled as in pass 1 (where one scale fits the groups), as a
    double, over the scale and the group's count.

    The same bits whatever order the engine adds in, so the centred sums are too (a
    floating-point mean differs in its last bits from run to run on a multi-threaded
    engine, and so would the centred sums); where the variable is summed in floating
    point, its floating-point mean.  An error δ in the means would change a centred sum
    of products only by nδᵢδⱼ.
    """
    if exact and math.isfinite(sizes[name]):
        scale = 2.0 ** exponent(sizes[name])
        return exact_sum(value * scale).cast(nw.Float64) / scale / value.count()
    return value.mean()


# at most this many groups take their means as literals (one comparison per group and
# deviation); more groups join their means back instead
LITERAL_GROUPS = 8


@dataclass(frozen=True)
class Deviation:
    """A centred, scaled column of pass 2: ``alias`` = 2^k·(``value`` − its group's
    mean), the mean from pass 1's sum ``<name>:sum`` over the group's ``count``, which
    must count the rows where ``value`` is not null (as :func:`group_centre`'s mean
    does on the engine)."""

    alias: str
    value: nw.Expr
    name: str
    count: str
    k: int


def with_deviations(
    units: nw.LazyFrame[Any],
    keys: Sequence[str],
    pass1: dict[tuple[Any, ...], dict[str, Any]],
    deviations: Sequence[Deviation],
    sizes: dict[str, float],
    exact: dict[str, bool],
) -> nw.LazyFrame[Any]:
    """``units`` with a column 2^k·(value − its group's mean) for each of
    ``deviations``, the group of ``keys`` (at least one key).

    With a few groups named by text (the arms, say), each group's mean is
    :func:`exact_mean` of pass 1's sum, correctly rounded here and written into the
    query as a literal: no query recomputes it.  Otherwise it is :func:`group_centre`,
    computed once per group on the engine and joined back on the keys (several times
    faster than a window on Polars and DuckDB), or, where a group's key is null or NaN,
    which a join does not match, in a window.  Each way gives the same bits on every
    engine.
    """
    keys = list(keys)
    literal = _literal_centres(keys, pass1, deviations, sizes)
    if literal is not None:
        return units.with_columns(
            ((d.value - centre) * 2.0**d.k).alias(d.alias)
            for d, centre in zip(deviations, literal, strict=True)
        )
    columns = [(d, group_centre(d.value, d.name, sizes, exact[d.name])) for d in deviations]
    joinable = all(
        r[k] is not None and not (isinstance(r[k], float) and math.isnan(r[k]))
        for r in pass1.values()
        for k in keys
    )
    if not joinable:
        return units.with_columns(
            ((d.value - c.over(*keys)) * 2.0**d.k).alias(d.alias) for d, c in columns
        )
    centres = units.group_by(*keys).agg(c.alias(f"{d.alias}:c") for d, c in columns)
    return units.join(centres, on=keys, how="left").with_columns(
        ((d.value - nw.col(f"{d.alias}:c")) * 2.0**d.k).alias(d.alias) for d, _ in columns
    )


def _literal_centres(
    keys: list[str],
    pass1: dict[tuple[Any, ...], dict[str, Any]],
    deviations: Sequence[Deviation],
    sizes: dict[str, float],
) -> list[nw.Expr] | None:
    """Per deviation, its group's mean as a literal chosen by the row's keys; None when
    the groups are too many, a key is not text, or a mean is not finite."""
    rows = list(pass1.values())
    if len(rows) > LITERAL_GROUPS or not all(isinstance(r[k], str) for r in rows for k in keys):
        return None
    matches = [
        nw.all_horizontal(*(nw.col(k) == r[k] for k in keys), ignore_nulls=False) for r in rows
    ]
    out = []
    for d in deviations:
        means = []
        for row in rows:
            n = int(row[d.count] or 0)
            # a group without a value of this variable has only null deviations
            mean = exact_mean(row[f"{d.name}:sum"], n, exponent(sizes[d.name])) if n else 0.0
            if not math.isfinite(mean):
                return None
            means.append(mean)
        centre: nw.Expr = nw.lit(means[-1])  # the last group's rows match no other
        for match, mean in zip(matches[:-1], means[:-1], strict=True):
            centre = nw.when(match).then(nw.lit(mean)).otherwise(centre)
        out.append(centre)
    return out


def sample(centred: float, n: int) -> float:
    """A sum of centred products over n − 1 (NaN for n < 2)."""
    return centred / (n - 1) if n >= 2 else math.nan


def to_float(value: object) -> float:
    """A float of an aggregate, NaN for None."""
    return math.nan if value is None else float(value)  # type: ignore[arg-type]
