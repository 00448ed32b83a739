"""The reference language of metric columns on event-level input.

A metric names per-unit quantities by reference: an event name counts that event,
``<event>.value`` sums the value column over that event, ``sessions`` counts distinct
sessions and ``active_days`` counts days with any event.  Each reference is one
per-unit aggregate (fixed horizon) and one per-(unit, look) increment (daily looks).
The annotated event rows carry the columns named below.
"""

from __future__ import annotations

import polars as pl

from abkit.io.assignments import UNIT

TS = "_ts"
EVENT = "_event"
SESSION = "_session"
VALUE = "_value"
DAY = "_day"
LOOK = "_look"

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


def unit_aggregate(ref: str) -> pl.Expr:
    """The per-unit aggregate a reference names, over a unit's valid events."""
    if ref == SESSIONS:
        return pl.col(SESSION).drop_nulls().n_unique()
    if ref == ACTIVE_DAYS:
        return pl.col(DAY).n_unique()
    if ref.startswith(IN_SESSION):
        return (
            (pl.col(EVENT) == ref.removeprefix(IN_SESSION)) & pl.col(SESSION).is_not_null()
        ).sum()
    if ref.endswith(VALUE_SUFFIX):
        return pl.col(VALUE).filter(pl.col(EVENT) == ref.removesuffix(VALUE_SUFFIX)).sum()
    return (pl.col(EVENT) == ref).sum()


def look_increments(valid: pl.LazyFrame, ref: str) -> pl.LazyFrame:
    """(unit, look, amount): how much a reference's per-unit aggregate grows at each look
    (a session or an active day counts at the first look that sees it)."""
    if ref == SESSIONS:
        sessions = valid.filter(pl.col(SESSION).is_not_null()).group_by(UNIT, SESSION)
        first = sessions.agg(pl.col(LOOK).min())
        return first.group_by(UNIT, LOOK).agg(pl.len().alias("amount"))
    if ref == ACTIVE_DAYS:
        first = valid.group_by(UNIT, DAY).agg(pl.col(LOOK).min())
        return first.group_by(UNIT, LOOK).agg(pl.len().alias("amount"))
    if ref.startswith(IN_SESSION):
        rows = valid.filter(
            (pl.col(EVENT) == ref.removeprefix(IN_SESSION)) & pl.col(SESSION).is_not_null()
        )
        return rows.group_by(UNIT, LOOK).agg(pl.len().alias("amount"))
    if ref.endswith(VALUE_SUFFIX):
        rows = valid.filter(pl.col(EVENT) == ref.removesuffix(VALUE_SUFFIX))
        return rows.group_by(UNIT, LOOK).agg(pl.col(VALUE).sum().alias("amount"))
    return valid.filter(pl.col(EVENT) == ref).group_by(UNIT, LOOK).agg(pl.len().alias("amount"))
