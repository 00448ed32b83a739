"""Summary exports: per variant (optionally per day) counts and moments of a metric.

Accepted column sets, one row per (metric, variant[, day]):

* mean metrics: ``n``, ``mean``, ``variance`` (sample variance, ddof = 1);
* proportions: ``n`` and ``mean`` (the rate) — the variance is implied;
* sums instead of moments: ``n``, ``sum`` and ``sum_sq``;
* ratio-of-sums metrics: ``n``, ``num_sum``, ``den_sum``, ``num_sum_sq``,
  ``den_sum_sq``, ``num_den_sum`` (sums over units of x, y, x², y², x·y).

With a day column, daily rows are combined (sums add; means and variances are
pooled exactly: s² = [Σ(n_d − 1)s²_d + Σ n_d(x̄_d − x̄)²]/(n − 1)), or, with
``[input] cumulative = true``, the last day's row is taken.
"""

from __future__ import annotations

import math
from dataclasses import replace

import polars as pl

from abkit.config import ExperimentSpec, MetricSpec
from abkit.engine.looks import LookSeries
from abkit.errors import AbkitInputError
from abkit.io.assignments import ordered_variants
from abkit.io.exclusions import Ledger
from abkit.io.readers import Table
from abkit.metrics.ratio import RATIO_SUMS
from abkit.stats.arm import LARGEST_VALUE, ArmSummary


def _combine_days(frame: pl.DataFrame, keys: list[str], day: str) -> pl.DataFrame:
    cols = set(frame.columns)
    aggs = [pl.col("n").sum()]
    sums = [c for c in ("sum", "sum_sq", *RATIO_SUMS) if c in cols]
    aggs += [pl.col(c).sum() for c in sums]
    if "mean" in cols:
        n, mean = pl.col("n"), pl.col("mean")
        grand = (n * mean).sum() / n.sum()
        aggs.append(grand.alias("mean"))
        if "variance" in cols:
            within = ((n - 1) * pl.col("variance")).sum()
            between = (n * (mean - grand) ** 2).sum()
            aggs.append(((within + between) / (n.sum() - 1)).alias("variance"))
    return frame.group_by(keys, maintain_order=True).agg(aggs)


_MOMENTS = ("mean", "variance", "sum", "sum_sq", *RATIO_SUMS)
# rows of a cumulative summary before each arm's last checkpoint: superseded by design,
# not lost (no "rows excluded" warning for them)
EARLIER_CHECKPOINT = "earlier cumulative checkpoint (last one used)"


def _fail(table: Table, column: str, row: int, problem: str, hint: str) -> AbkitInputError:
    return AbkitInputError(
        f"{problem} (data row {row}).", source=table.label, column=column, hint=hint
    )


def validate_numbers(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Cast the count and moment columns to Float64 and refuse impossible values, naming
    the column, the data row (1-based, after the header) and the value: text where a
    number belongs, a non-finite value, a count that is not a positive whole number, a
    negative variance, or a value too large to square in double precision.  Empty cells
    stay null (rows without a value are counted and dropped later)."""
    frame = frame.with_row_index("_row", offset=1)
    for col in ("n", *_MOMENTS):
        if col not in frame.columns:
            continue
        dtype = frame.schema[col]
        if dtype == pl.String:
            cast = pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)
            bad = frame.filter(cast.is_null() & pl.col(col).str.strip_chars().ne(""))
            if bad.height:
                raise _fail(
                    table,
                    col,
                    bad.item(0, "_row"),
                    f"{bad.item(0, col)!r} is not a number",
                    "Summary columns hold numbers only; fix or remove the row.",
                )
            frame = frame.with_columns(cast.alias(col))
        elif dtype.is_numeric() or dtype == pl.Boolean:
            frame = frame.with_columns(pl.col(col).cast(pl.Float64))
        else:
            raise AbkitInputError(
                f"the column must hold numbers, found type {dtype}.", source=table.label, column=col
            )
        checks = [
            (~pl.col(col).is_finite(), "is not a finite number", "Replace it or remove the row."),
            (
                pl.col(col).abs() > LARGEST_VALUE,
                f"is too large to analyse (beyond ±{LARGEST_VALUE:.0e}, its square overflows)",
                "Rescale the metric (for example to thousands) or remove the row.",
            ),
        ]
        if col == "n":
            checks.append(
                (
                    (pl.col(col) < 0) | (pl.col(col) != pl.col(col).floor()),
                    "is not a whole number of units",
                    "n counts units: a whole number, 0 or more.",
                )
            )
        if col == "variance":
            checks.append(
                (
                    pl.col(col) < 0,
                    "is a negative variance",
                    "A variance cannot be negative; check the export.",
                )
            )
        for condition, problem, hint in checks:
            bad = frame.filter(pl.col(col).is_not_null() & condition)
            if bad.height:
                raise _fail(
                    table, col, bad.item(0, "_row"), f"{bad.item(0, col)!r} {problem}", hint
                )
    return frame.drop("_row")


def _drop_rows_without_values(frame: pl.DataFrame, ledger: Ledger) -> pl.DataFrame:
    """Rows whose outcome is missing (an immature window, a failed export) are counted
    and dropped: pooling them would count their units without their outcomes."""
    cols = [c for c in ("mean", "sum", "num_sum") if c in frame.columns]
    if not cols:
        return frame
    has_value = pl.any_horizontal([pl.col(c).is_not_null() for c in cols])
    ledger.add(
        "summary",
        "row without a value (mean, sum or num_sum is empty)",
        frame.filter(~has_value).height,
    )
    return frame.filter(has_value)


def _infer_type(name: str, row: dict[str, object], table: Table) -> str:
    if all(row.get(c) is not None for c in RATIO_SUMS):
        return "ratio"
    if row.get("variance") is not None or row.get("sum_sq") is not None:
        return "mean"
    mean = row.get("mean")
    if isinstance(mean, int | float) and 0 <= mean <= 1:
        return "proportion"
    raise AbkitInputError(
        f"cannot tell the type of metric '{name}': it has no variance, no sum_sq and no "
        "ratio sums.",
        source=table.label,
        hint="Declare it in the config as [[metrics]] with a type, or add a 'variance' column.",
    )


def _arm(row: dict[str, object], metric: MetricSpec, label: str, where: str) -> ArmSummary:
    """One arm's summary from its (combined) row; ``where`` names the metric and variant
    in messages about impossible values."""
    arm = metric.kind.summary_arm(row, label)
    if metric.kind.is_rate and not 0 <= arm.mean <= 1:
        raise AbkitInputError(
            f"{where} is a proportion, but its mean is {arm.mean!r}, outside [0, 1].",
            source=label,
            hint='Declare the metric with type = "mean" if it is not a rate.',
        )
    # sums that imply a negative variance (beyond float round-off) are impossible
    scale = max(abs(arm.mean), 1.0) ** 2
    if arm.n > 1 and arm.var < -1e-9 * scale:
        raise AbkitInputError(
            f"{where}: the sums imply a negative variance ({arm.var:.4g}), which is impossible; "
            "sum_sq (or the ratio's squared sums) must be at least sum²/n.",
            source=label,
            hint="Check that the squared sums are sums of squares over units.",
        )
    if arm.n > 1 and arm.var < 0:  # round-off of sum_sq - sum²/n: the variance is 0
        arm = replace(arm, var=0.0)
    return arm


def summary_arms(
    table: Table, spec: ExperimentSpec, ledger: Ledger
) -> tuple[dict[str, dict[str, ArmSummary]], tuple[MetricSpec, ...], tuple[str, ...]]:
    """Read a summary table into {metric: {variant: ArmSummary}}, metric specs, variants."""
    inp = spec.input
    table.require(spec.variant, what="variant")
    table.require("n", what="units per variant")
    cols = table.columns
    has_metric = inp.metric in cols
    frame = table.frame.collect()
    ledger.read["summary"] = frame.height
    frame = validate_numbers(frame, table)
    frame = frame.with_columns(pl.col(spec.variant).cast(pl.String))
    if not has_metric:
        frame = frame.with_columns(pl.lit("metric").alias(inp.metric))
    bad = frame.filter(pl.col(spec.variant).is_null() | pl.col("n").is_null())
    ledger.add("summary", "null variant or null n", bad.height)
    frame = frame.filter(pl.col(spec.variant).is_not_null() & pl.col("n").is_not_null())
    unnamed = frame.filter(pl.col(inp.metric).is_null())
    ledger.add("summary", "null metric name", unnamed.height)
    frame = frame.filter(pl.col(inp.metric).is_not_null())
    frame = _drop_rows_without_values(frame, ledger)
    declared = spec.declared_variants
    if declared:
        unknown = frame.filter(~pl.col(spec.variant).is_in(list(declared)))
        ledger.add("summary", "unknown variant (not declared in the config)", unknown.height)
        frame = frame.filter(pl.col(spec.variant).is_in(list(declared)))
    keys = [inp.metric, spec.variant]
    if inp.day in cols:
        if inp.cumulative:
            last = frame.sort(inp.day).group_by(keys, maintain_order=True).last()
            ledger.add(
                "summary",
                EARLIER_CHECKPOINT,
                frame.height - last.height,
            )
            frame = last.drop(inp.day)
        else:
            frame = _combine_days(frame, keys, inp.day)
    dupes = frame.filter(pl.len().over(keys) > 1)
    if dupes.height:
        raise AbkitInputError(
            f"{dupes.height} rows repeat a (metric, variant) pair; add a '{inp.day}' column "
            "for daily rows or remove the repeats.",
            source=table.label,
        )
    ledger.used["summary"] = ledger.read["summary"] - ledger.excluded("summary")
    variants = ordered_variants(frame.get_column(spec.variant), spec, table)
    names = frame.get_column(inp.metric).unique(maintain_order=True).to_list()
    configured = {m.name: m for m in spec.metrics}
    metrics = []
    for name in configured or names:
        if name not in names:
            raise AbkitInputError(
                f"metric '{name}' from the config is not in the summary. Metrics found: "
                f"{', '.join(map(str, names))}.",
                source=table.label,
                column=inp.metric,
            )
        first = frame.filter(pl.col(inp.metric) == name).row(0, named=True)
        metrics.append(
            configured.get(name)
            or MetricSpec(name=str(name), type=_infer_type(str(name), first, table))
        )
    arms: dict[str, dict[str, ArmSummary]] = {}
    for metric in metrics:
        rows = frame.filter(pl.col(inp.metric) == metric.name)
        by_variant = {r[spec.variant]: r for r in rows.iter_rows(named=True)}
        arms[metric.name] = {
            v: _arm(by_variant[v], metric, table.label, f"metric '{metric.name}', '{v}'")
            if v in by_variant
            else ArmSummary(n=0, mean=math.nan, var=math.nan)
            for v in variants
        }
    return arms, tuple(metrics), variants


def summary_look_series(
    table: Table, spec: ExperimentSpec, metrics: tuple[MetricSpec, ...], variants: tuple[str, ...]
) -> dict[str, LookSeries]:
    """One look per value of the day column: the cumulative checkpoint itself with
    ``[input] cumulative = true``, else the exact pooling of all days so far."""
    inp = spec.input
    if inp.day not in table.columns:
        raise AbkitInputError(
            f"sequential analysis of a summary table needs a '{inp.day}' column with one row "
            "per variant and look.",
            source=table.label,
            hint="Name it with [input] day.",
        )
    frame = validate_numbers(table.frame.collect(), table)
    frame = frame.with_columns(pl.col(spec.variant).cast(pl.String))
    if inp.metric not in frame.columns:
        frame = frame.with_columns(pl.lit("metric").alias(inp.metric))
    frame = frame.filter(pl.col(spec.variant).is_in(list(variants)) & pl.col("n").is_not_null())
    keys = [inp.metric, spec.variant]
    out = {}
    for metric in metrics:
        rows = frame.filter(pl.col(inp.metric) == metric.name).sort(inp.day)
        days = rows.get_column(inp.day).unique(maintain_order=True).to_list()
        arms = []
        for day in days:
            upto = rows.filter(pl.col(inp.day) <= day)
            if inp.cumulative:
                state = upto.group_by(keys, maintain_order=True).last()
            else:
                state = _combine_days(upto, keys, inp.day)
            by_variant = {r[spec.variant]: r for r in state.iter_rows(named=True)}
            arms.append(
                {
                    v: _arm(by_variant[v], metric, table.label, f"metric '{metric.name}', '{v}'")
                    if v in by_variant
                    else ArmSummary(n=0, mean=math.nan, var=math.nan)
                    for v in variants
                }
            )
        out[metric.name] = LookSeries(
            labels=[f"{inp.day} {d}" for d in days],
            days=[float(d) for d in days],
            arms=arms,
            unit="checkpoint",
        )
    return out
