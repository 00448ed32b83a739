"""Each unit's first-week signals, the inputs of the surrogate forecast of long-run
retention (:mod:`abkit.stats.surrogate`), computed in the units pass on any engine.

Days follow the retention metrics: day d of a unit is [assigned_at + d·24 h,
assigned_at + (d + 1)·24 h).  Per unit, over its valid events after de-duplication:

* ``d1``, ``d7``: any event on day 1, on day 7 (0 / 1);
* ``active_days_7d``: days 0–6 with an event;
* ``share_rate``: share events per AI output in days 0–6 (0 without an output);
* ``session_depth``: AI outputs per session in days 0–6 (sessions: the distinct
  session ids of its events in those days; 0 without one).

All are null until day 7 has fully elapsed by the export end (assigned_at + 8·24 h ≤
end): the first week is days 0–6 and day 7, whose activity is D7.  The names and
definitions are those of :func:`abkit.inputs.surrogate_units.week_one_units`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import narwhals as nw

from abkit.metrics.references import (
    DAY,
    EVENT,
    SESSION,
    any_where,
    count_where,
    distinct_where,
)
from abkit.names import ASSIGNED_AT

# the signals, in the order the model reads them
SIGNALS = ("d1", "d7", "active_days_7d", "share_rate", "session_depth")
# the unit table's column of each signal
PREFIX = "_week1:"
COLUMNS = {name: PREFIX + name for name in SIGNALS}
# the last day the signals read (D7)
LAST_DAY = 7
_OUTPUTS, _SHARES, _SESSIONS = PREFIX + "outputs", PREFIX + "shares", PREFIX + "sessions"


def week_one_aggregates(output_event: str, share_event: str, sessions: bool) -> list[nw.Expr]:
    """The per-unit aggregates the signals are built from (one group-by over a unit's
    valid events, with their day ``DAY`` after assignment)."""
    first = nw.col(DAY) < LAST_DAY
    return [
        any_where(nw.col(DAY) == 1).cast(nw.Int64).alias(COLUMNS["d1"]),
        any_where(nw.col(DAY) == LAST_DAY).cast(nw.Int64).alias(COLUMNS["d7"]),
        distinct_where(DAY, first).alias(COLUMNS["active_days_7d"]),
        count_where(first & (nw.col(EVENT) == output_event)).alias(_OUTPUTS),
        count_where(first & (nw.col(EVENT) == share_event)).alias(_SHARES),
        (distinct_where(SESSION, first) if sessions else nw.lit(0, nw.Int64)).alias(_SESSIONS),
    ]


def aggregated_columns() -> list[str]:
    """The columns :func:`week_one_aggregates` adds (counts, 0 for a unit without
    events)."""
    return [COLUMNS["d1"], COLUMNS["d7"], COLUMNS["active_days_7d"], _OUTPUTS, _SHARES, _SESSIONS]


def with_week_one_signals(units: nw.LazyFrame[Any], export_end: dt.datetime) -> nw.LazyFrame[Any]:
    """The signals from the aggregates (their counts already 0 for units without
    events), null where the first week has not fully elapsed by ``export_end``."""
    outputs, shares, sessions = nw.col(_OUTPUTS), nw.col(_SHARES), nw.col(_SESSIONS)
    complete = nw.col(ASSIGNED_AT) <= nw.lit(export_end - (LAST_DAY + 1) * dt.timedelta(days=1))
    rates = {
        "share_rate": nw.when(outputs > 0).then(shares / outputs).otherwise(0.0),
        "session_depth": nw.when(sessions > 0).then(outputs / sessions).otherwise(0.0),
    }
    values = {
        name: rates.get(name, nw.col(COLUMNS.get(name, name))).cast(nw.Float64) for name in SIGNALS
    }
    return units.with_columns(
        *(nw.when(complete).then(value).alias(COLUMNS[name]) for name, value in values.items())
    ).drop(_OUTPUTS, _SHARES, _SESSIONS)
