"""Validate the assignment table: one row per unit and variant, or an exclusion."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from abkit.errors import AbkitInputError
from abkit.io.columns import Need, account_need, need
from abkit.io.exclusions import Ledger, first_reason
from abkit.io.readers import BLANK_LINE, Table, blank_row, reader_error
from abkit.io.timestamps import OUT_OF_RANGE, out_of_range, with_timestamp
from abkit.names import ACCOUNT, ASSIGNED_AT, REASON, ROW, UNIT, VARIANT

if TYPE_CHECKING:
    from abkit.config import ExperimentSpec

ROW_UNIT = "@row"  # [experiment] unit = "@row": each row of a unit-level table is one unit

_BLANK = "_blank"  # the row is blank (every cell empty)

TWO_VARIANTS = "unit assigned to more than one variant (all its rows excluded)"
REPEAT_KEPT_EARLIEST = "repeated assignment row for the same unit (earliest kept)"
REPEAT_EXCLUDED = "unit appears in more than one row (all its rows excluded)"


@dataclass(frozen=True)
class Assignments:
    """Valid units (one row each) and the ids of units excluded as a whole."""

    units: pl.DataFrame  # _unit, _variant, [_assigned_at], [_account], kept columns
    excluded_units: pl.DataFrame  # _unit
    variants: tuple[str, ...]  # control first, then treatments in sorted order


def ordered_variants(observed: pl.Series, spec: ExperimentSpec, table: Table) -> tuple[str, ...]:
    """Control first, then the treatments (declared in the config, else observed) sorted.

    Raises when the control does not occur or no treatment does.
    """
    seen = sorted(observed.drop_nulls().unique().to_list())
    if spec.control not in seen:
        raise AbkitInputError(
            f"the control variant '{spec.control}' does not occur. Variants found: "
            f"{', '.join(seen)}.",
            source=table.label,
            column=spec.variant,
            hint="Set [experiment] control to the name of the control arm.",
        )
    candidates = spec.declared_variants or tuple(seen)
    variants = (spec.control, *sorted(v for v in candidates if v != spec.control))
    if len(variants) < 2:
        raise AbkitInputError(
            f"only one variant ('{spec.control}') occurs; an experiment needs a treatment.",
            source=table.label,
            column=spec.variant,
        )
    return variants


def _first_row_with(frame: pl.DataFrame, reason: str, column: str) -> str:
    row = frame.filter(pl.col(REASON) == reason).row(0, named=True)
    return f"first at data row {row[ROW] + 1}, value {row[column]!r}"


def clean_assignments(
    table: Table,
    spec: ExperimentSpec,
    ledger: Ledger,
    *,
    table_name: str,
    assigned_at: str | None = None,
    keep: tuple[str, ...] = (),
    repeated_rows: str = "keep_earliest",
    assigned_by: dt.datetime | None = None,
    account_required: bool = False,
) -> Assignments:
    """Validate units and variants, recording every row that is not used.

    Exclusion reasons, in order of precedence: blank line, null unit id, null variant,
    unknown variant (when variants are declared), null account id (B2B mode), missing or
    unparseable assignment timestamp, assigned after ``assigned_by`` (the configured
    export end), unit in more than one variant, repeated row for a unit (the earliest
    assignment is kept when ``repeated_rows == "keep_earliest"``; with
    ``"exclude"`` all rows of a unit that appears twice are dropped, as a
    unit-level table with two rows for a unit cannot say which is right).
    """
    row_units = spec.unit == ROW_UNIT
    needs = [] if row_units else [need(spec, "unit")]
    needs.append(need(spec, "variant"))
    if assigned_at:
        mapped = assigned_at == spec.input.assigned_at
        needs.append(
            need(spec, "assigned_at") if mapped else Need(assigned_at, what="assignment timestamp")
        )
    if spec.account is not None:
        needs.append(account_need(spec, account_required))
    needs.extend(Need(c, what="metric column") for c in keep)
    table.require(*needs)
    cols = [
        (pl.col(ROW) if row_units else pl.col(spec.unit)).alias(UNIT),
        pl.col(spec.variant).cast(pl.String).alias(VARIANT),
    ]
    source = table.frame
    if assigned_at:
        cols.append(pl.col(assigned_at).alias("_assigned_raw"))
        cols.append(pl.col(ASSIGNED_AT))
        fmt = spec.input.timestamp_format
        what = "assignment timestamp"
        source = with_timestamp(source, assigned_at, ASSIGNED_AT, fmt, table.label, what)
    has_account = spec.account is not None
    if spec.account is not None:
        cols.append(pl.col(spec.account).alias(ACCOUNT))
    cols.extend(pl.col(c) for c in keep if c not in (spec.unit, spec.variant))
    if row_units:  # the row number is the unit
        source = source.with_row_index(ROW)
    picked = source.select(*cols)

    declared = spec.declared_variants
    rules = [
        (pl.col(UNIT).is_null(), "null unit id"),
        (pl.col(VARIANT).is_null(), "null variant"),
    ]
    if declared is not None:
        rules.append(
            (~pl.col(VARIANT).is_in(list(declared)), "unknown variant (not declared in the config)")
        )
    if has_account and account_required:  # accounts are the units of inference
        rules.append((pl.col(ACCOUNT).is_null(), "null account id (B2B mode)"))
    if assigned_at:
        rules.append((pl.col("_assigned_raw").is_null(), "missing assignment timestamp"))
        rules.append((pl.col(ASSIGNED_AT).is_null(), "unparseable assignment timestamp"))
        rules.append((out_of_range(ASSIGNED_AT), f"assignment timestamp {OUT_OF_RANGE}"))
        if assigned_by is not None:
            rules.append(
                (
                    pl.col(ASSIGNED_AT) > pl.lit(assigned_by),
                    "assigned after the export end ([input] export_end)",
                )
            )
    # a blank line has no variant: the rules above flag it, and it is told apart below
    flagged = pl.any_horizontal([rule for rule, _ in rules]).any().alias("flagged")
    try:
        # The common case, every row valid, is told by one aggregate beside the columns,
        # without per-row reasons or row numbers.  The kept columns are cut into the
        # same chunks, so that what follows takes them as they are: a frame whose
        # columns are cut differently is copied whole by the next operation on it.
        columns = picked.collect()
        height = columns.height
        repeated = not row_units and _repeats(columns.get_column(UNIT))
        annotated = None
        if repeated or columns.select(flagged).item():
            columns = columns.clear()  # freed: the rows are read again, each with its reason
            blank = blank_row(table.columns).alias(_BLANK)
            named = [(pl.col(_BLANK), BLANK_LINE), *rules]
            reason_type = _reason_type([r for _, r in named], repeated_rows)
            reasons = first_reason(named, dtype=reason_type).alias(REASON)
            numbered = source if row_units else source.with_row_index(ROW)
            frame = numbered.select(pl.col(ROW), *cols, blank).with_columns(reasons)
            if repeated:
                frame = _flag_repeated_units(frame, repeated_rows, assigned_at, reason_type)
            annotated = frame.collect()
    except pl.exceptions.PolarsError as exc:
        raise reader_error(exc, table.label) from None

    if height == 0:
        raise AbkitInputError("the table has no rows.", source=table.label)
    raw = ["_assigned_raw"] if assigned_at else []
    if annotated is None:  # every row is valid: no group-by over the whole table
        counts = pl.DataFrame(
            {REASON: [None], "len": [height]},
            schema={REASON: pl.String, "len": pl.get_index_type()},
        )
        ledger.add_counts(table_name, counts)
        units = columns.drop(raw)
        variants = ordered_variants(units.get_column(VARIANT), spec, table)
        return Assignments(units, units.select(UNIT).clear(), variants)
    counts = annotated.group_by(REASON).len().with_columns(pl.col(REASON).cast(pl.String))
    if assigned_at and counts.filter(pl.col(REASON).is_null()).is_empty():
        bad = annotated.filter(pl.col(REASON) == "unparseable assignment timestamp")
        if bad.height:
            raise AbkitInputError(
                "no assignment timestamp could be parsed ("
                + _first_row_with(annotated, "unparseable assignment timestamp", "_assigned_raw")
                + ").",
                source=table.label,
                column=assigned_at,
                hint="Use ISO 8601 (2024-05-01T13:45:00Z), a date, or Unix epoch seconds.",
            )
    ledger.add_counts(table_name, counts)

    units = annotated.filter(pl.col(REASON).is_null())
    if units.is_empty():
        raise AbkitInputError(
            "no usable rows: every row was excluded ("
            + "; ".join(f"{r}: {n}" for r, n in counts.iter_rows())
            + ").",
            source=table.label,
        )
    variants = ordered_variants(units.get_column(VARIANT), spec, table)
    excluded_units = (
        annotated.filter(pl.col(REASON).is_not_null() & pl.col(UNIT).is_not_null())
        .select(UNIT)
        .unique()
        .join(units.select(UNIT), on=UNIT, how="anti")
    )
    return Assignments(units.drop([ROW, REASON, _BLANK, *raw]), excluded_units, variants)


def _repeats(ids: pl.Series) -> bool:
    """Whether a unit id occurs twice.  Checked on the collected column (a sorted one
    is checked in one pass): the sort and the per-unit windows of
    :func:`_flag_repeated_units` cost more than the whole check (a sort holds several
    copies of the table), so they run only when a unit repeats."""
    present = ids.drop_nulls()
    return present.n_unique() < present.len()


def _reason_type(reasons: list[str], repeated_rows: str) -> pl.Enum:
    """The type of a row's exclusion reason: an Enum of every reason a row may get,
    which holds each row's as a small integer code (as text, a reason takes up to 60
    bytes)."""
    return pl.Enum(list(dict.fromkeys([*reasons, TWO_VARIANTS, _repeat_reason(repeated_rows)])))


def _repeat_reason(repeated_rows: str) -> str:
    """Why a repeated row of a unit is excluded, by ``[input] repeated_rows``."""
    return REPEAT_KEPT_EARLIEST if repeated_rows == "keep_earliest" else REPEAT_EXCLUDED


def _flag_repeated_units(
    frame: pl.LazyFrame, repeated_rows: str, assigned_at: str | None, reason_type: pl.Enum
) -> pl.LazyFrame:
    """Exclude units seen in two variants, then the repeated rows of a unit: all but the
    earliest (``"keep_earliest"``: the earliest assignment time, then the earliest row)
    or all of them.  The rows stay in the table's order."""
    if repeated_rows == "keep_earliest" and assigned_at:  # the earliest row of a unit first
        frame = frame.sort([ASSIGNED_AT, ROW], nulls_last=True)
    valid = pl.col(REASON).is_null()
    multi = pl.col(VARIANT).filter(valid).n_unique().over(UNIT) > 1
    frame = frame.with_columns(
        pl.when(valid & multi)
        .then(pl.lit(TWO_VARIANTS, reason_type))
        .otherwise(pl.col(REASON))
        .alias(REASON)
    )
    valid = pl.col(REASON).is_null()
    if repeated_rows == "keep_earliest":
        first = pl.when(valid).then(pl.col(UNIT)).is_first_distinct()
    else:
        first = valid.sum().over(UNIT) == 1
    repeat = pl.lit(_repeat_reason(repeated_rows), reason_type)
    return frame.with_columns(
        pl.when(valid & ~first).then(repeat).otherwise(pl.col(REASON)).alias(REASON)
    ).sort(ROW)
