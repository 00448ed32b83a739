"""Paired exports (a shadow or replay run): one row per input and version → per-user
sums of the paired values.

Each row is one version's output for one input: the input id (``[input] input_id``),
the user who asked it (``[experiment] unit``), the version (``[experiment] variant``;
the live version is ``[experiment] control``) and value columns (judge score, latency,
cost).  An input is paired when the live version and a candidate both answered it; per
metric, a pair counts when both outputs have a value.  What reaches the statistics is,
per candidate and user, the sums of the live and the candidate values over the user's
pairs and their number (:func:`abkit.stats.paired.paired_test`).

Rows that cannot be paired are counted in the exclusions table, in this order: blank
line, null input id, null user id, null version, unknown version (when the variants
are declared), a repeat of an identical row (the first kept), an input that one version
answered twice with different values, an input whose user differs between its rows,
and an input that the live version or every candidate did not answer.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import polars as pl

from abkit.config import ExperimentSpec, MetricSpec
from abkit.errors import AbkitInputError
from abkit.inputs.table import numeric
from abkit.io.assignments import ordered_variants
from abkit.io.exclusions import Ledger, first_reason
from abkit.io.readers import BLANK_LINE, Table, blank_row, reader_error
from abkit.names import REASON, UNIT, VARIANT
from abkit.stats.paired import PairedSums as PairedSums  # the type lives with its test

INPUT = "_input"
TABLE = "outputs"
# values beyond this are not summed (as event values: abkit.engine.event_columns)
_SUMMABLE = 1e20


@dataclass(frozen=True)
class PairedInputs:
    """Variants (live first), per metric and candidate the per-user sums, and notes."""

    variants: tuple[str, ...]
    sums: dict[str, dict[str, PairedSums]]
    notes: dict[str, list[str]]


def _slot(metric: MetricSpec) -> str:
    return f"p:{metric.name}"


def _value_columns(
    table: Table, spec: ExperimentSpec, metrics: tuple[MetricSpec, ...]
) -> dict[str, pl.Expr]:
    """Per metric, its per-output value as Float64: the table's column (numbers,
    booleans or text holding them), or with ``[cost]`` prices the cost priced from the
    token columns.  Missing or non-numeric columns are refused."""
    prices = spec.cost.token_prices(spec.input) if spec.cost.priced else {}
    if prices and spec.cost.column in table.columns:
        raise AbkitInputError(
            f"the table has a column '{spec.cost.column}' and [cost] prices tokens into a "
            "column of the same name; set [cost] column to another name, or drop the prices "
            "to read the table's own costs.",
            source=table.label,
            column=spec.cost.column,
        )
    frame = table.frame
    out = {}
    for m in metrics:
        column = m.kind.paired_column(m)
        who = f"metric '{m.name}'"
        if prices and column == spec.cost.column:
            table.require(*prices, what=f"token column priced by [cost] for {who}")
            terms = [numeric(frame, c, table, who) * (p / 1000) for c, p in prices.items()]
            out[m.name] = functools.reduce(operator.add, terms)
        else:
            table.require(column, what=f"value column of {who}")
            out[m.name] = numeric(frame, column, table, who)
    return out


def _check_columns(spec: ExperimentSpec, metrics: tuple[MetricSpec, ...], table: Table) -> None:
    ids = {spec.input.input_id: "input id", spec.unit: "user id", spec.variant: "version"}
    for m in metrics:
        column = m.kind.paired_column(m)
        if column in ids:
            raise AbkitInputError(
                f"metric '{m.name}' reads column '{column}', which is the {ids[column]} "
                "column, not an outcome.",
                source=table.label,
                column=column,
            )
    table.require(spec.input.input_id, what="input id of a paired export ([input] input_id)")
    table.require(spec.unit, what="user id ([experiment] unit)")
    table.require(spec.variant, what="version ([experiment] variant)")


def _with_id_reasons(
    table: Table, spec: ExperimentSpec, values: dict[str, pl.Expr], slots: dict[str, str]
) -> pl.LazyFrame:
    """The table's rows with the reasons that a row alone shows (blank line, null ids,
    undeclared version; null: valid so far)."""
    frame = table.frame.select(
        pl.col(spec.input.input_id).alias(INPUT),
        pl.col(spec.unit).alias(UNIT),
        pl.col(spec.variant).cast(pl.String).alias(VARIANT),
        *(expr.alias(slots[name]) for name, expr in values.items()),
        blank_row(table.columns).alias("_blank"),
    )
    rules = [
        (pl.col("_blank"), BLANK_LINE),
        (pl.col(INPUT).is_null(), "null input id"),
        (pl.col(UNIT).is_null(), "null user id"),
        (pl.col(VARIANT).is_null(), "null version"),
    ]
    if spec.declared_variants is not None:
        declared = list(spec.declared_variants)
        rules.append((~pl.col(VARIANT).is_in(declared), "unknown version (not declared)"))
    return frame.with_columns(first_reason(rules).alias(REASON))


def _unpaired(control: str) -> str:
    return f"input not answered by both the live version ('{control}') and a candidate"


def _flag_unpaired(frame: pl.LazyFrame, control: str) -> pl.LazyFrame:
    valid = pl.col(REASON).is_null()
    live = valid & (pl.col(VARIANT) == control)
    candidate = valid & (pl.col(VARIANT) != control)
    return _flag(frame, ~(live.any().over(INPUT) & candidate.any().over(INPUT)), _unpaired(control))


def _flag(frame: pl.LazyFrame, condition: pl.Expr, reason: str) -> pl.LazyFrame:
    """``reason`` for the rows not yet excluded where ``condition`` holds."""
    valid = pl.col(REASON).is_null()
    return frame.with_columns(
        pl.when(valid & condition).then(pl.lit(reason)).otherwise(pl.col(REASON)).alias(REASON)
    )


def _input_shape(valid: pl.LazyFrame, control: str) -> pl.LazyFrame:
    """One row: whether a version answered an input twice or an input has two users
    (``repeats``), and the rows of inputs answered by the live version and a candidate
    (``paired``) and of the others (``unpaired``): without repeats, the row accounting
    needs no per-row windows."""
    per_input = valid.group_by(INPUT).agg(
        pl.len().alias("n"),
        pl.col(VARIANT).n_unique().alias("versions"),
        pl.col(UNIT).n_unique().alias("users"),
        (pl.col(VARIANT) == control).any().alias("live"),
        (pl.col(VARIANT) != control).any().alias("candidate"),
    )
    paired = pl.col("live") & pl.col("candidate")
    return per_input.select(
        ((pl.col("n") > pl.col("versions")) | (pl.col("users") > 1)).any().alias("repeats"),
        pl.col("n").filter(paired).sum().alias("paired"),
        pl.col("n").filter(~paired).sum().alias("unpaired"),
    )


def _flag_repeats(frame: pl.LazyFrame, slots: dict[str, str]) -> pl.LazyFrame:
    """Exclude repeats of an identical row (the first kept), then inputs that one
    version answered twice with different values, then inputs with two users."""
    valid = pl.col(REASON).is_null()
    row = pl.struct(INPUT, VARIANT, UNIT, *slots.values())
    frame = _flag(
        frame, ~pl.when(valid).then(row).is_first_distinct(), "repeated identical row (first kept)"
    )
    valid = pl.col(REASON).is_null()
    # in two steps: Polars evaluates a window nested in a window per group (quadratic)
    frame = frame.with_columns((valid & (valid.sum().over(INPUT, VARIANT) > 1)).alias("_twice"))
    frame = _flag(
        frame,
        pl.col("_twice").any().over(INPUT),
        "input answered more than once by one version with different values (all its rows)",
    )
    valid = pl.col(REASON).is_null()
    return _flag(
        frame,
        pl.col(UNIT).filter(valid).n_unique().over(INPUT) > 1,
        "input whose user differs between its rows (all its rows)",
    )


def _finite(column: str) -> pl.Expr:
    """The value, null when NaN, infinite or beyond ±1e20 (not summable)."""
    value = pl.col(column)
    return pl.when(value.is_finite() & (value.abs() < _SUMMABLE)).then(value)


def _user_sums(used: pl.LazyFrame, spec: ExperimentSpec, slots: dict[str, str]) -> pl.LazyFrame:
    """Per candidate and user, for every metric: Σ live, Σ candidate and the number of
    pairs where both outputs have a summable value, and the number of inputs where only
    one of them has."""
    cleaned = used.select(INPUT, UNIT, VARIANT, *(_finite(s).alias(s) for s in slots.values()))
    live = cleaned.filter(pl.col(VARIANT) == spec.control).select(
        INPUT, *(pl.col(s).alias(f"{s}:live") for s in slots.values())
    )
    joined = cleaned.filter(pl.col(VARIANT) != spec.control).join(live, on=INPUT, how="inner")
    aggregates = []
    for s in slots.values():
        both = pl.col(s).is_not_null() & pl.col(f"{s}:live").is_not_null()
        aggregates += [
            pl.col(f"{s}:live").filter(both).sum().alias(f"{s}:live"),
            pl.col(s).filter(both).sum().alias(f"{s}:candidate"),
            both.sum().alias(f"{s}:pairs"),
            (pl.col(s).is_null() ^ pl.col(f"{s}:live").is_null()).sum().alias(f"{s}:one"),
        ]
    return joined.group_by(VARIANT, UNIT).agg(aggregates).sort(VARIANT, UNIT)


def _out_of_range(used: pl.LazyFrame, slots: dict[str, str]) -> pl.LazyFrame:
    """Per metric, how many used outputs have a value that is NaN, infinite or too large."""
    return used.select(
        *(
            (pl.col(s).is_not_null() & _finite(s).is_null()).sum().alias(name)
            for name, s in slots.items()
        )
    )


def paired_units(
    table: Table, spec: ExperimentSpec, metrics: tuple[MetricSpec, ...], ledger: Ledger
) -> PairedInputs:
    """Validate a paired export, record its exclusions in ``ledger`` (table
    ``outputs``) and reduce it to per-user paired sums per metric and candidate."""
    _check_columns(spec, metrics, table)
    slots = {m.name: _slot(m) for m in metrics}
    rows = _with_id_reasons(table, spec, _value_columns(table, spec, metrics), slots)
    valid = pl.col(REASON).is_null()
    try:
        id_counts, versions, shape = pl.collect_all(
            [
                rows.group_by(REASON).len(),
                rows.filter(valid).select(pl.col(VARIANT).unique()),
                _input_shape(rows.filter(valid), spec.control),
            ]
        )
        if shape.item(0, "repeats"):  # per-row windows find the rows to exclude
            annotated = _flag_unpaired(_flag_repeats(rows, slots), spec.control).cache()
            used = annotated.filter(valid)
            row_counts = annotated.group_by(REASON).len()
        else:
            used = rows.filter(valid)
            pairing = pl.DataFrame(
                {
                    REASON: [None, _unpaired(spec.control)],
                    "len": [shape.item(0, "paired"), shape.item(0, "unpaired")],
                },
                schema=id_counts.schema,
            )
            excluded = id_counts.filter(pl.col(REASON).is_not_null())
            row_counts = pl.concat([excluded, pairing]).lazy()
        counts, sums, bad = pl.collect_all(
            [row_counts, _user_sums(used, spec, slots), _out_of_range(used, slots)]
        )
    except pl.exceptions.PolarsError as exc:
        raise reader_error(exc, table.label) from None
    if counts["len"].sum() == 0:
        raise AbkitInputError("the table has no rows.", source=table.label)
    variants = ordered_variants(versions.get_column(VARIANT), spec, table)
    ledger.add_counts(TABLE, counts, REASON)
    if sums.is_empty():
        raise AbkitInputError(
            f"no input was answered by both the live version ('{spec.control}') and a "
            "candidate ("
            + "; ".join(f"{r or 'used'}: {n:,}" for r, n in counts.sort(REASON).iter_rows())
            + ").",
            source=table.label,
            hint=f"Each input (column '{spec.input.input_id}') needs one row per version.",
        )
    out: dict[str, dict[str, PairedSums]] = {}
    notes: dict[str, list[str]] = {}
    for m in metrics:
        s = slots[m.name]
        out[m.name] = {}
        for v in variants[1:]:
            users = sums.filter(pl.col(VARIANT) == v)
            pairs = users.get_column(f"{s}:pairs").to_numpy()
            keep = pairs > 0
            out[m.name][v] = PairedSums(
                users.get_column(f"{s}:live").to_numpy()[keep].astype(float),
                users.get_column(f"{s}:candidate").to_numpy()[keep].astype(float),
                pairs[keep].astype(float),
            )
            one_sided = int(users.get_column(f"{s}:one").sum())
            if one_sided:
                notes.setdefault(m.name, []).append(
                    f"{one_sided:,} input(s) have a {m.kind.paired_column(m)} value from only "
                    f"one of '{spec.control}' and '{v}' and are left out of this metric; if "
                    "one version fails to produce a value more often (a timeout, a refused "
                    "answer), the comparison of the others is biased"
                )
        if bad.get_column(m.name).item():
            notes.setdefault(m.name, []).append(
                f"{bad.get_column(m.name).item():,} output(s) have a value that is NaN, "
                "infinite or beyond ±1e20, treated as missing"
            )
    return PairedInputs(variants, out, notes)
