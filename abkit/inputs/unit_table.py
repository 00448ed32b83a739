"""The per-unit table, kept where it was computed: one row per assigned unit with its
variant, assignment time, kept columns (account, segments, covariates) and metric
columns.

On Polars the table is a frame of this process.  On DuckDB, Spark, SQLFrame and Ibis it
stays on the engine (:func:`abkit.engine.backend.materialise`), and the analysis asks it
for aggregates: per-arm unit moments (:meth:`UnitTable.arm_summaries`), per segment
(:meth:`UnitTable.segment_arms`), unit counts, the accounts' variants, and through
:meth:`UnitTable.frame` CUPED's and the novelty check's co-moments
(:mod:`abkit.inputs.comoments`), the B2B design's per-account sums
(:mod:`abkit.inputs.account_sums`), adoption counts and the LLM-judge metric's per-arm
sums, each recording the rows of its result with :meth:`UnitTable.record`.  A step that
must see every unit (capping at a pooled quantile, exact quantiles by segment, the
surrogate forecast, a metric type with only a per-unit statistic) asks
:meth:`UnitTable.rows` with its reason; the rows then come back once, and
:attr:`UnitTable.crossed` says how many and why, so the report can say it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.backend import collect_all, engine_name, on_polars
from abkit.inputs.comoments import (
    Deviation,
    deviation_exponent,
    exact_mean,
    group_key,
    key_value,
    largest,
    one_scale_fits,
    sample,
    scaled_sum,
    spreads_fit,
    sum_of,
    to_float,
    value_range,
    with_deviations,
)
from abkit.inputs.moments import arm_summaries
from abkit.inputs.segments import segment_name, segment_values
from abkit.metrics.base import denominator_column, value_column
from abkit.metrics.references import exponent, unscaled
from abkit.names import ACCOUNT, ORDER, VARIANT
from abkit.stats.arm import ArmSummary


@dataclass
class UnitTable:
    """One row per assigned unit, on Polars (``rows_``) or on another engine (``lazy``).

    Parameters
    ----------
    rows_ : polars.DataFrame or None
        The table, when it is in this process.
    lazy : narwhals.LazyFrame or None
        The table on its engine (computed once and kept there), with the column
        :data:`ORDER` (the assignments' order).
    crossed : list of (str, int)
        Why rows of the table came back from the engine, and how many.
    engine : str
        Where the table was computed ('polars', 'duckdb', 'pyspark', …).
    exact : bool
        Per-arm moments by exact fixed-point sums (:func:`engine_arm_summaries`), the
        same on every engine; False: Polars' own group-by moments, for a unit-level
        table (never on another engine), about five times faster.
    """

    rows_: pl.DataFrame | None = None
    lazy: nw.LazyFrame[Any] | None = None
    crossed: list[tuple[str, int]] = field(default_factory=list)
    engine: str = "polars"  # where the table was computed
    # the arms are summed exactly (fixed point), as on every engine; a unit-level
    # table, which is never on another engine, takes Polars' own faster moments
    exact: bool = True

    @classmethod
    def of(cls, rows: pl.DataFrame, exact: bool = True) -> UnitTable:
        """A table already in this process (``exact``: see :attr:`exact`)."""
        return cls(rows_=rows, exact=exact)

    @classmethod
    def on_engine(cls, lazy: nw.LazyFrame[Any]) -> UnitTable:
        """A table kept on its engine (a Polars lazy frame is collected)."""
        if on_polars(lazy):
            return cls(rows_=nw.to_native(lazy).collect().drop(ORDER, strict=False))
        return cls(lazy=lazy, engine=engine_name(lazy))

    @property
    def columns(self) -> list[str]:
        if self.rows_ is not None:
            return self.rows_.columns
        assert self.lazy is not None
        return [c for c in self.lazy.collect_schema().names() if c != ORDER]

    def rows(self, reason: str) -> pl.DataFrame:
        """The table in this process, in the assignments' order; on an engine the rows
        come back once (later calls reuse them) and ``reason`` is recorded with their
        number in :attr:`crossed`."""
        if self.rows_ is None:
            assert self.lazy is not None
            (rows,) = collect_all([self.lazy])
            self.rows_ = rows.sort(ORDER).drop(ORDER)
            self.crossed.append((reason, self.rows_.height))
        elif self.lazy is not None:
            self.crossed.append((reason, 0))
        return self.rows_

    def arm_summaries(
        self, metrics: Sequence[MetricSpec], variants: tuple[str, ...]
    ) -> dict[str, dict[str, ArmSummary]]:
        """Per metric and variant, the unit moments (see
        :func:`abkit.inputs.moments.arm_summaries`), computed where the table is."""
        if self.rows_ is not None and not self.exact:
            return arm_summaries(self.rows_, metrics, variants)
        return engine_arm_summaries(self.frame(), metrics, variants)

    def counts(self, variants: tuple[str, ...]) -> dict[str, int]:
        """Units per variant."""
        if self.rows_ is not None:
            found = dict(self.rows_.group_by(VARIANT).len().iter_rows())
        else:
            assert self.lazy is not None
            (frame,) = collect_all([self.lazy.group_by(VARIANT).agg(nw.len().alias("len"))])
            found = dict(frame.iter_rows())
        return {v: int(found.get(v, 0)) for v in variants}

    def accounts(self) -> tuple[list[object], int]:
        """The accounts (sorted) whose units saw more than one variant, and the number
        of accounts; ([], 0) without an account column.  Counted where the table is:
        only one row per account comes back."""
        if ACCOUNT not in self.columns:
            return [], 0
        variants = nw.col(VARIANT).n_unique().alias("v")
        (per_account,) = collect_all([self.frame().group_by(ACCOUNT).agg(variants)])
        mixed = per_account.filter(pl.col("v") > 1).sort(ACCOUNT)[ACCOUNT].to_list()
        return mixed, per_account.height

    def segment_arms(
        self,
        column: str,
        metrics: Sequence[MetricSpec],
        variants: tuple[str, ...],
        max_values: int,
        label: str,
    ) -> dict[str, dict[str, dict[str, ArmSummary]]]:
        """Segment name → metric → variant → the unit moments of the segment's units,
        in sorted order of the values (the units without one form the segment
        :data:`abkit.inputs.segments.MISSING`, last); computed where the table is."""
        lazy = self.frame()
        values = segment_values(lazy, column, max_values, label)
        by_value = engine_segment_summaries(lazy, column, values, metrics, variants)
        return {segment_name(v): by_value[v] for v in values}

    def frame(self) -> nw.LazyFrame[Any]:
        """The table as a lazy frame where it is (without :data:`ORDER`'s meaning: do not
        rely on row order), to build aggregate queries on; see :meth:`record`."""
        lazy = nw.from_native(self.rows_.lazy()) if self.rows_ is not None else self.lazy
        assert lazy is not None
        return lazy

    def collect(self, query: nw.LazyFrame[Any], reason: str) -> pl.DataFrame:
        """Run an aggregate ``query`` built on :meth:`frame` where the table is, and
        :meth:`record` the rows of its result for ``reason``."""
        (rows,) = collect_all([query])
        self.record(reason, rows.height)
        return rows

    def record(self, reason: str, rows: int) -> None:
        """Say that ``rows`` rows of an aggregate query on an engine came back for
        ``reason`` (nothing is recorded for a table in this process)."""
        if self.lazy is not None and self.rows_ is None:
            self.crossed.append((reason, rows))

    def crossing_note(self) -> str | None:
        """A note saying which steps brought rows back from the engine, how many for
        each (unit rows, or event rows where the reason says so), or None."""
        counted: dict[str, int] = {}
        for reason, n in self.crossed:
            counted[reason] = counted.get(reason, 0) + n
        parts = [f"{n:,} rows for {reason}" for reason, n in counted.items() if n]
        if not parts:
            return None
        return (
            f"rows came back from the {self.engine} engine into this process: "
            f"{'; '.join(parts)}; the other results used per-arm aggregates computed on "
            "the engine"
        )


def engine_arm_summaries(
    units: nw.LazyFrame[Any], metrics: Sequence[MetricSpec], variants: tuple[str, ...]
) -> dict[str, dict[str, ArmSummary]]:
    """Per metric and variant, the unit moments of a unit table wherever it is, in three
    queries that each return a row per variant, with the same bits on every engine.

    Each metric's values are masked to null where it is undefined (x, or y for ratio
    metrics, missing), as in :func:`abkit.inputs.moments.arm_summaries`.  Two passes:

    0. n and the range of x and y, which give each a power-of-two scale s = 2^k bringing
       its largest |value| near 10⁴;
    1. the sums Σ sxᵢ and Σ tyᵢ in fixed point (:data:`abkit.metrics.references.EXACT`,
       the same whatever order the engine adds in, and safe from overflow whatever the
       values' size), so x̄ = Σ sxᵢ / (sn), within about one unit in the last place
       (each value's conversion to fixed point rounds it, the same way on every engine);
    2. the centred sums S_xx = Σ(u(xᵢ − x̄))², S_yy and S_xy = Σ u(xᵢ − x̄) v(yᵢ − ȳ), also
       in fixed point, after scaling by powers of two u and v that bring the largest
       deviation near 10⁴ (the sums then keep about 26 significant digits and cannot
       overflow), and S₃ = Σ(xᵢ − x̄)³ in floating point (it only feeds the skewness
       warning).

    Then var = S_xx / (u²(n − 1)), cov = S_xy / (uv(n − 1)) and the adjusted skewness
    G₁ = √(n(n − 1)) / (n − 2) · (S₃ / n) / (S_xx / (u²n))^{3/2} (NaN for n < 3 or no
    spread).  Floating-point sums in the engine's own order would differ between
    engines in the last bits, and a ratio metric's delta-method variance
    (var − 2r·cov + r²·den_var) and effect (a difference of large ratios) magnify
    that a thousandfold; exact sums make every engine agree.
    """
    by_group = _grouped_summaries(units, metrics, [VARIANT])
    empty = ArmSummary(n=0, mean=math.nan, var=math.nan)
    return {
        m.name: {v: by_group.get((v,), {}).get(m.name, empty) for v in variants} for m in metrics
    }


def engine_segment_summaries(
    units: nw.LazyFrame[Any],
    column: str,
    values: Sequence[object],
    metrics: Sequence[MetricSpec],
    variants: tuple[str, ...],
) -> dict[object, dict[str, dict[str, ArmSummary]]]:
    """Segment value (None for the units without one) → metric → variant → the unit
    moments of the segment's units in that arm, by :func:`engine_arm_summaries`'
    method with the arms split by ``column`` (three queries for every segment at once)."""
    by_group = _grouped_summaries(units, metrics, [VARIANT, column])
    empty = ArmSummary(n=0, mean=math.nan, var=math.nan)
    return {
        value: {
            m.name: {
                v: by_group.get((v, key_value(value)), {}).get(m.name, empty) for v in variants
            }
            for m in metrics
        }
        for value in values
    }


def _grouped_summaries(
    units: nw.LazyFrame[Any], metrics: Sequence[MetricSpec], keys: list[str]
) -> dict[tuple[Any, ...], dict[str, ArmSummary]]:
    """Group (values of ``keys``) → metric → unit moments; groups without a unit with
    the metric defined are left out."""
    if not metrics:
        return {}
    ratio = [m.kind.is_ratio for m in metrics]
    xs = [m.kind.arm_value(nw.col(value_column(m))).cast(nw.Float64) for m in metrics]
    ys = [
        nw.col(denominator_column(m)).cast(nw.Float64) if r else None
        for m, r in zip(metrics, ratio, strict=True)
    ]
    masked_x: list[nw.Expr] = []
    masked_y: list[nw.Expr | None] = []
    for x, y in zip(xs, ys, strict=True):
        present = ~x.is_null() if y is None else ~x.is_null() & ~y.is_null()
        masked_x.append(nw.when(present).then(x))
        masked_y.append(None if y is None else nw.when(present).then(y))
    values = {f"{i}:x": x for i, x in enumerate(masked_x)}
    values |= {f"{i}:y": y for i, y in enumerate(masked_y) if y is not None}
    ranges = [x.count().alias(f"{i}:n") for i, x in enumerate(masked_x)]
    ranges += [e for name, v in values.items() for e in value_range(v, name)]
    (pass0,) = collect_all([units.group_by(*keys).agg(*ranges)])
    zero = {group_key(r, keys): r for r in pass0.iter_rows(named=True)}
    if not zero:
        return {}
    sizes = {name: largest(zero.values(), name) for name in values}
    # exact sums share one scale over the groups: where the groups' magnitudes differ
    # too much for it, that variable is summed in floating point instead
    exact = {name: one_scale_fits(zero.values(), name) for name in values}
    (pass1,) = collect_all(
        [
            units.group_by(*keys).agg(
                *(scaled_sum(v, sizes[n], exact[n]).alias(f"{n}:sum") for n, v in values.items())
            )
        ]
    )
    one = {group_key(r, keys): zero[group_key(r, keys)] | r for r in pass1.iter_rows(named=True)}
    second: list[nw.Expr] = []
    # the centred, scaled variables of pass 2
    deviations: list[Deviation] = []
    scales: dict[str, int] = {}  # the deviations' power-of-two exponents
    for i, (x, y) in enumerate(zip(masked_x, masked_y, strict=True)):
        for name, value in ((f"{i}:x", x), (f"{i}:y", y)):
            if value is not None:
                scales[name] = deviation_exponent(name, f"{i}:n", one, sizes)
                deviations.append(Deviation(f"_d{name}", value, name, f"{i}:n", scales[name]))
        dx = nw.col(f"_d{i}:x")
        # fixed point where the values and the deviations suit one scale over the groups
        fixed = exact[f"{i}:x"] and spreads_fit(f"{i}:x", f"{i}:n", one, sizes)
        second += [
            sum_of(dx * dx, fixed).alias(f"{i}:sxx"),
            (dx * dx * dx).sum().alias(f"{i}:s3"),
        ]
        if y is not None:
            dy = nw.col(f"_d{i}:y")
            fixed_y = exact[f"{i}:y"] and spreads_fit(f"{i}:y", f"{i}:n", one, sizes)
            second += [
                sum_of(dy * dy, fixed_y).alias(f"{i}:syy"),
                sum_of(dx * dy, fixed and fixed_y).alias(f"{i}:sxy"),
            ]
    centred = with_deviations(units, keys, one, deviations, sizes, exact)
    (pass2,) = collect_all([centred.group_by(*keys).agg(*second)])
    two = {group_key(r, keys): r for r in pass2.iter_rows(named=True)}
    out: dict[tuple[Any, ...], dict[str, ArmSummary]] = {}
    for group, r1 in one.items():
        r2 = two[group]
        arms = out[group] = {}
        for i, metric in enumerate(metrics):
            n = int(r1[f"{i}:n"] or 0)
            if not n:
                continue
            sx = scales[f"{i}:x"]
            sxx = unscaled(r2[f"{i}:sxx"], 2 * sx)
            moments = {}
            if ratio[i]:
                sy = scales[f"{i}:y"]
                moments = {
                    "den_mean": exact_mean(r1[f"{i}:y:sum"], n, exponent(sizes[f"{i}:y"])),
                    "den_var": sample(unscaled(r2[f"{i}:syy"], 2 * sy), n),
                    "cov": sample(unscaled(r2[f"{i}:sxy"], sx + sy), n),
                }
            # the skewness is scale-free: from the scaled sums, which stay in range
            scaled_sxx = unscaled(r2[f"{i}:sxx"], 0) if r2[f"{i}:sxx"] is not None else math.nan
            skewness = _skewness(to_float(r2[f"{i}:s3"]), scaled_sxx if sxx > 0 else 0.0, n)
            arms[metric.name] = ArmSummary(
                n=n,
                mean=exact_mean(r1[f"{i}:x:sum"], n, exponent(sizes[f"{i}:x"])),
                var=sample(sxx, n),
                skewness=skewness,
                **moments,
            )
    return out


def _skewness(s3: float, sxx: float, n: int) -> float:
    """G₁ = √(n(n − 1)) / (n − 2) · (S₃ / n) / (S_xx / n)^{3/2}; NaN for n < 3 or no
    spread."""
    if n < 3 or not sxx > 0:
        return math.nan
    return float(math.sqrt(n * (n - 1)) / (n - 2) * (s3 / n) / (sxx / n) ** 1.5)
