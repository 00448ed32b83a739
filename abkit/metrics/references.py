"""The reference language of metric columns on event-level input.

A metric names per-unit quantities by reference: an event name counts that event,
``<event>.<column>`` sums a numeric column of the events table over that event
(``<event>.value``: the ``[input] value`` column; ``<event>.cost``: the cost priced by
``[cost]`` when it is set), ``sessions`` counts distinct sessions and ``active_days``
counts days with any event, ``active`` is 1 for a unit with any event (an active
user); ``a + b`` adds references of events or event columns
(thumbs up + thumbs down: the rated outputs).  Each reference is one per-unit
aggregate (fixed horizon) and one per-(unit, look) increment (daily looks).  The
annotated event rows carry the columns named below, one ``_v:<column>`` per column read.

A reference with a dot reads a column: the part after its last dot names it, so an
event whose name contains a dot can be counted only through a column of its own.

The per-unit aggregates are Narwhals expressions that every engine runs (Polars,
DuckDB, PySpark, SQLFrame): a filtered aggregate is written as a conditional
``when/then/otherwise`` and distinct counts leave nulls out explicitly, because
``filter(...).sum()`` and null-free ``n_unique`` are not portable.  Counts are cast to
Int64 (DuckDB sums integers to a 128-bit decimal) and value sums to Float64.
"""

from __future__ import annotations

import decimal
import functools
import math
import operator

import narwhals as nw
import polars as pl

from abkit.names import UNIT

TS = "_ts"
EVENT = "_event"
SESSION = "_session"
VALUE = "_value"  # the values of one event column, once taken out of the event rows
DAY = "_day"
LOOK = "_look"
PERIOD = "_period"  # whole periods since assignment (novelty)

# value sums are taken in fixed point (38 digits, 18 after the point): exact, so the
# same in any order of addition (the streaming engine and Spark add in any order)
EXACT = nw.Decimal(38, 18)
# the largest centred deviation is scaled near this before it is squared in fixed point
DEVIATION_SCALE = 1e4


def exponent(largest: float) -> int:
    """k such that 2^k brings ``largest`` near :data:`DEVIATION_SCALE` (0 for 0 or a
    non-finite value), so that a fixed-point sum of scaled values cannot overflow."""
    if largest == 0 or not math.isfinite(largest):
        return 0
    # log2(a / b) as a difference, which stays finite for subnormal values (1e-306);
    # 2^k is kept within a double's range (a value below 1e-290 then keeps fewer
    # digits in fixed point, but no error is raised)
    k = math.floor(math.log2(DEVIATION_SCALE) - math.log2(largest))
    return max(-_MAX_EXPONENT, min(_MAX_EXPONENT, k))


_MAX_EXPONENT = 1000


def power_of_two(exponent: int) -> decimal.Decimal:
    """2^k exactly (a float 2^k overflows beyond k = 1023)."""
    two = decimal.Decimal(2)
    return two**exponent if exponent >= 0 else 1 / two**-exponent


def unscaled(total: object, exponent: int) -> float:
    """An exact fixed-point sum of products scaled by 2^k, divided by 2^k (NaN for
    None)."""
    if total is None:
        return math.nan
    with decimal.localcontext(prec=60):
        return float(decimal.Decimal(total) / power_of_two(exponent))  # type: ignore[arg-type]


def exact_sum(value: nw.Expr) -> nw.Expr:
    """Σ value in :data:`EXACT` fixed point."""
    return value.cast(EXACT).sum()


SESSIONS = "sessions"
ACTIVE_DAYS = "active_days"
ACTIVE = "active"
_ONCE = (SESSIONS, ACTIVE_DAYS, ACTIVE)  # per unit, not summed over its events
COLUMN_MARK = "."
PLUS = "+"
IN_SESSION = "@in_session:"  # events of one name that carry a session id (session depth)
WITH_VALUE = "@with_value:"  # an event's rows with a value in a column (means per event)
SLOT = "_v:"


def terms(ref: str) -> list[str]:
    """The references a sum ``a + b`` adds (a single reference: itself)."""
    return [t.strip() for t in ref.split(PLUS)] if PLUS in ref else [ref]


def event_column(term: str) -> tuple[str, str] | None:
    """(event, column) of a column reference ``<event>.<column>``, else None."""
    event, mark, column = term.removeprefix(WITH_VALUE).rpartition(COLUMN_MARK)
    return (event, column) if mark and not term.startswith(IN_SESSION) else None


def slot(column: str) -> str:
    """The annotated events' column that carries the events table's ``column``."""
    return SLOT + column


def referenced_events(ref: str) -> set[str]:
    """The event names a reference reads (none for sessions / active days)."""
    out = set()
    for term in terms(ref):
        if term in _ONCE:
            continue
        read = event_column(term)
        out.add(read[0] if read else term.removeprefix(IN_SESSION))
    return out


def columns_read(ref: str) -> set[str]:
    """The event columns a reference reads (``value`` for ``<event>.value``)."""
    return {read[1] for term in terms(ref) if (read := event_column(term))}


def sum_problem(ref: str) -> str | None:
    """Why a sum ``a + b`` cannot be a reference (None: it can): its terms must be
    events or event columns, which add up event by event."""
    if PLUS not in ref:
        return None
    if any(not t or t in _ONCE for t in terms(ref)):
        return f"'{ref}' adds references that are not events or event columns"
    return None


def needs_session(ref: str) -> bool:
    return ref == SESSIONS or ref.startswith(IN_SESSION)


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
    return functools.reduce(operator.add, [_term_aggregate(term) for term in terms(ref)])


def _term_aggregate(term: str) -> nw.Expr:
    if term == SESSIONS:
        return distinct_where(SESSION)
    if term == ACTIVE_DAYS:
        return distinct_where(DAY)
    if term == ACTIVE:
        return any_where(~nw.col(EVENT).is_null()).cast(nw.Int64)  # valid events have names
    if term.startswith(IN_SESSION):
        event = term.removeprefix(IN_SESSION)
        return count_where((nw.col(EVENT) == event) & ~nw.col(SESSION).is_null())
    read = event_column(term)
    if read is None:
        return count_where(nw.col(EVENT) == term)
    event, column = read
    values = nw.col(slot(column))
    if term.startswith(WITH_VALUE):
        return count_where((nw.col(EVENT) == event) & ~values.is_null())
    # null values (an event without the column's value) add nothing
    value = nw.when((nw.col(EVENT) == event) & ~values.is_null()).then(values).otherwise(0.0)
    return value.cast(EXACT).sum().cast(nw.Float64)


def counted_once(ref: str) -> bool:
    """Sessions, active days and being active count once per unit, at the first look
    that sees them; every other reference is a sum over the unit's events."""
    return ref in _ONCE


def first_seen(valid: pl.LazyFrame, ref: str, unit: str = UNIT) -> pl.LazyFrame:
    """(unit, look, amount) for a reference counted once (:func:`counted_once`): how
    many of the unit's sessions or active days (or whether the unit itself) the look
    sees for the first time.  ``unit``: the column that tells the units apart."""
    keys = {SESSIONS: [unit, SESSION], ACTIVE_DAYS: [unit, DAY], ACTIVE: [unit]}[ref]
    first = valid.filter(pl.all_horizontal(pl.col(keys).is_not_null())).group_by(keys)
    return first.agg(pl.col(LOOK).min()).group_by(unit, LOOK).agg(pl.len().alias("amount"))
