"""The reference language of metric columns on event-level input.

A metric names per-unit quantities by reference: an event name counts that event,
``<event>.value`` sums the value column over that event, ``sessions`` counts distinct
sessions and ``active_days`` counts days with any event.  Each reference is one
per-unit aggregate (fixed horizon) and one per-(unit, look) increment (daily looks).
The annotated event rows carry the columns named below.

The per-unit aggregates are Narwhals expressions that every engine runs (Polars,
DuckDB, PySpark, SQLFrame): a filtered aggregate is written as a conditional
``when/then/otherwise`` and distinct counts leave nulls out explicitly, because
``filter(...).sum()`` and null-free ``n_unique`` are not portable.  Counts are cast to
Int64 (DuckDB sums integers to a 128-bit decimal) and value sums to Float64.
"""

from __future__ import annotations

import narwhals as nw
import polars as pl

from abkit.io.assignments import UNIT

TS = "_ts"
EVENT = "_event"
SESSION = "_session"
VALUE = "_value"
DAY = "_day"
LOOK = "_look"
PERIOD = "_period"  # whole periods since assignment (novelty)

# value sums are taken in fixed point (38 digits, 18 after the point): exact, so the
# same in any order of addition (the streaming engine and Spark add in any order)
EXACT = nw.Decimal(38, 18)

SESSIONS = "sessions"
ACTIVE_DAYS = "active_days"
VALUE_SUFFIX = ".value"
IN_SESSION = "@in_session:"  # events of one name that carry a session id (session depth)


def referenced_event(ref: str) -> str | None:
    """The event name a reference reads, or None for sessions / active days."""
    if ref in (SESSIONS, ACTIVE_DAYS):
        return None
    return ref.removeprefix(IN_SESSION).removesuffix(VALUE_SUFFIX)


def needs_session(ref: str) -> bool:
    return ref == SESSIONS or ref.startswith(IN_SESSION)


def needs_value(ref: str) -> bool:
    return ref.endswith(VALUE_SUFFIX)


def count_where(condition: nw.Expr) -> nw.Expr:
    """Number of rows where ``condition`` holds (0 for none), on any engine."""
    return nw.when(condition).then(1).otherwise(0).sum().cast(nw.Int64)


def any_where(condition: nw.Expr) -> nw.Expr:
    """1 if ``condition`` holds on any row, else 0 (Int8), on any engine."""
    return nw.when(condition).then(1).otherwise(0).max().cast(nw.Int8)


def distinct_where(column: str, condition: nw.Expr | None = None) -> nw.Expr:
    """Distinct non-null values of ``column`` (on rows where ``condition`` holds).

    ``n_unique`` counts null as one more value on every engine, so one is taken off
    when a null (or a row outside the condition) is present.
    """
    kept = nw.col(column) if condition is None else nw.when(condition).then(nw.col(column))
    return (kept.n_unique() - any_where(kept.is_null())).cast(nw.Int64)


def unit_aggregate(ref: str) -> nw.Expr:
    """The per-unit aggregate a reference names, over a unit's valid events."""
    if ref == SESSIONS:
        return distinct_where(SESSION)
    if ref == ACTIVE_DAYS:
        return distinct_where(DAY)
    if ref.startswith(IN_SESSION):
        event = ref.removeprefix(IN_SESSION)
        return count_where((nw.col(EVENT) == event) & ~nw.col(SESSION).is_null())
    if ref.endswith(VALUE_SUFFIX):
        event = ref.removesuffix(VALUE_SUFFIX)
        value = nw.when(nw.col(EVENT) == event).then(nw.col(VALUE)).otherwise(0.0)
        return value.cast(EXACT).sum().cast(nw.Float64)
    return count_where(nw.col(EVENT) == ref)


def counted_once(ref: str) -> bool:
    """Sessions and active days count once per unit, at the first look that sees them;
    every other reference is a sum over the unit's events."""
    return ref in (SESSIONS, ACTIVE_DAYS)


def first_seen(valid: pl.LazyFrame, ref: str) -> pl.LazyFrame:
    """(unit, look, amount) for a reference counted once (:func:`counted_once`): how
    many of the unit's sessions or active days the look sees for the first time."""
    column = SESSION if ref == SESSIONS else DAY
    first = (
        valid.filter(pl.col(column).is_not_null()).group_by(UNIT, column).agg(pl.col(LOOK).min())
    )
    return first.group_by(UNIT, LOOK).agg(pl.len().alias("amount"))
