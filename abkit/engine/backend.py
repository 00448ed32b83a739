"""The engine the events live on: Polars by default, or the user's DuckDB, PySpark,
SQLFrame or Ibis session.

The units stage is written once against Narwhals (https://narwhals-dev.github.io/narwhals/)
and runs where the events are.  What differs between engines is gathered here:

* :func:`ship` moves a small Polars table (the assignments) to the events' engine, so
  that the join runs there (on SQLFrame over DuckDB as a table of the
  session's connection, named ``_abkit_<random hex>``; on Ibis as a memtable, which
  Ibis loads into the events' backend when a query reads it);
* :func:`epoch_microseconds` turns a timestamp into microseconds since 1970 (Narwhals'
  ``dt.timestamp`` and duration totals are not available on DuckDB and Spark);
* :func:`collect_all` brings several small results back as Polars frames (on Polars
  in one ``collect_all``, so the shared scan of the events runs once); it is the door
  through which results cross into this process, and :func:`crossing` counts the rows
  and frames that pass it;
* :func:`materialise` computes a frame once and keeps it on its engine (a DuckDB
  temporary table, a checkpointed Spark DataFrame, a temporary table of Ibis'
  backend), so that
  several aggregates of the per-unit rows read it without re-running the pass over the
  events; inside :func:`scratch` (one analysis) what it kept is dropped at the end;
* :func:`require_utc` refuses a DuckDB, Spark, SQLFrame or Ibis (DuckDB, PostgreSQL)
  session whose time zone is not UTC, because day boundaries are computed from clock
  fields.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import polars as pl

from abkit.errors import AbkitInputError

_US_PER_DAY = 86_400_000_000
_US_PER_HOUR = 3_600_000_000
_US_PER_MINUTE = 60_000_000
_US_PER_SECOND = 1_000_000
# leap years in 1 … 1969 (n // 4 - n // 100 + n // 400 at n = 1969)
_LEAP_YEARS_BEFORE_1970 = 477


def engine_name(frame: nw.LazyFrame[Any]) -> str:
    """'polars', 'duckdb', 'pyspark', 'sqlframe', … (Narwhals' implementation name);
    an Ibis table names its backend too: 'ibis (postgres)'."""
    if frame.implementation is nw.Implementation.IBIS:
        return f"ibis ({_ibis_backend(frame).name})"
    return str(frame.implementation.value)


@dataclass
class Crossing:
    """What came back from the engine into this process while :func:`crossing` was open.

    Parameters
    ----------
    rows : int
        Rows of the result frames (on Polars too, where nothing crosses a connection
        but the results are counted alike).
    frames : int
        Result frames.
    """

    rows: int = 0
    frames: int = 0


_CROSSINGS: ContextVar[tuple[Crossing, ...]] = ContextVar("abkit_crossings", default=())


@contextmanager
def crossing() -> Iterator[Crossing]:
    """Count the rows and frames that :func:`collect_all` (and the other reads of this
    module) bring into this process inside the ``with`` block.

    Blocks nest: each open block counts what crosses while it is open.  The blocks
    belong to the current context (:mod:`contextvars`): an asyncio task created inside
    a block counts into it, another thread does not.

    Examples
    --------
    >>> import narwhals as nw
    >>> import polars as pl
    >>> with crossing() as seen:
    ...     _ = collect_all([nw.from_native(pl.LazyFrame({"x": [1, 2, 3]}))])
    >>> (seen.rows, seen.frames)
    (3, 1)
    """
    seen = Crossing()
    token = _CROSSINGS.set((*_CROSSINGS.get(), seen))
    try:
        yield seen
    finally:
        _CROSSINGS.reset(token)


_SCRATCH: ContextVar[list[Callable[[], object]] | None] = ContextVar("abkit_scratch", default=None)


@contextmanager
def scratch() -> Iterator[None]:
    """Drop what :func:`materialise` keeps on an engine inside the ``with`` block when
    the block ends (an analysis): the temporary tables of a DuckDB connection or an
    Ibis backend, Spark's checkpointed blocks.  Outside a block they live as long as
    the connection or session.  A table that cannot be dropped (the connection closed)
    is left to it; an interrupt is not swallowed.

    Examples
    --------
    >>> import duckdb
    >>> import narwhals as nw
    >>> connection = duckdb.connect()
    >>> with scratch():
    ...     kept = materialise(nw.from_native(connection.sql("SELECT 1 AS x")))
    ...     tables = connection.sql("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0]
    >>> tables, connection.sql("SELECT count(*) FROM duckdb_tables()").fetchall()[0][0]
    (1, 0)
    """
    token = _SCRATCH.set([])
    try:
        yield
    finally:
        drops = _SCRATCH.get() or []
        _SCRATCH.reset(token)
        for drop in reversed(drops):
            with contextlib.suppress(Exception):
                drop()


def _on_release(drop: Callable[[], object]) -> None:
    """Run ``drop`` when the open :func:`scratch` block ends (none open: never)."""
    drops = _SCRATCH.get()
    if drops is not None:
        drops.append(drop)


def _crossed(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``, counted in every open :func:`crossing` block."""
    for seen in _CROSSINGS.get():
        seen.rows += frame.height
        seen.frames += 1
    return frame


def on_polars(frame: nw.LazyFrame[Any]) -> bool:
    return frame.implementation is nw.Implementation.POLARS


def ship(table: pl.DataFrame, like: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """``table`` as a lazy frame on the engine (and session) of ``like``.

    DuckDB joins only relations of one connection and a relation does not expose its
    connection, so the table is read by a query run on ``like`` itself (DuckDB scans
    a Python Arrow table by name: https://duckdb.org/docs/guides/python/sql_on_arrow).
    """
    native = nw.to_native(like)
    impl = like.implementation
    if impl is nw.Implementation.POLARS:
        return nw.from_native(table.lazy())
    table = table.with_columns(_portable(table.schema))
    if impl is nw.Implementation.DUCKDB:
        _abkit_table = table.to_arrow()
        query = native.query("_abkit_like", "select * from _abkit_table")
        return nw.from_native(query)  # type: ignore[no-any-return]
    if impl is nw.Implementation.PYSPARK:
        return nw.from_native(table).lazy(backend=impl, session=native.sparkSession)
    if impl is nw.Implementation.SQLFRAME:
        session = native.session
        connection = _sqlframe_duckdb(like)
        if connection is None:  # not on DuckDB: SQLFrame writes the rows into the query
            return nw.from_native(table).lazy(backend=impl, session=session)
        # SQLFrame on DuckDB reads tables of its connection (a registered view has no
        # schema for it)
        name = f"_abkit_{uuid.uuid4().hex[:16]}"
        _abkit_table = table.to_arrow()
        connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _abkit_table")
        _on_release(lambda: connection.execute(f"DROP TABLE IF EXISTS {name}"))
        return nw.from_native(session.table(name))  # type: ignore[no-any-return]
    if impl is nw.Implementation.IBIS:
        # a memtable belongs to no backend: Ibis writes it into the backend of the
        # query that reads it (a temporary table on PostgreSQL, a view of the Arrow
        # table on DuckDB), once per backend
        import ibis

        return nw.from_native(ibis.memtable(table.to_arrow()))  # type: ignore[no-any-return]
    raise AbkitInputError(
        f"events on the '{engine_name(like)}' engine are not supported; use a Polars "
        "frame, a DuckDB relation, a Spark / SQLFrame DataFrame or an Ibis table."
    )


def _portable(schema: pl.Schema) -> list[pl.Expr]:
    """Casts that give a table types every engine has: unsigned integers (a row index)
    become Int64, categoricals become strings (neither PostgreSQL nor SQLFrame has
    them)."""
    unsigned = (pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
    casts = []
    for name, dtype in schema.items():
        if isinstance(dtype, unsigned):
            casts.append(pl.col(name).cast(pl.Int64))
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            casts.append(pl.col(name).cast(pl.String))
    return casts


def materialise(frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """``frame`` computed once and kept where it is: on DuckDB a temporary table of the
    relation's connection (``_abkit_<random hex>``, dropped at the end of the open
    :func:`scratch` block, else with the connection; a temporary table never writes
    into the user's database file), on Spark a local
    checkpoint (kept by the executors, not by this process), on Ibis over DuckDB or
    PostgreSQL a temporary table named like :func:`ship`'s (dropped with the
    connection), on other Ibis backends Ibis' cached table.
    Polars frames are collected (Polars holds the rows in this process anyway); an
    engine without a way to keep a result gets the frame back as it is, and each later
    query recomputes it.
    """
    native = nw.to_native(frame)
    impl = frame.implementation
    name = f"_abkit_{uuid.uuid4().hex[:16]}"
    if impl is nw.Implementation.POLARS:
        return nw.from_native(native.collect().lazy())  # type: ignore[no-any-return]
    if impl is nw.Implementation.DUCKDB:
        native.query("_abkit_rows", f"CREATE TEMPORARY TABLE {name} AS SELECT * FROM _abkit_rows")
        _on_release(lambda: native.query("_abkit_rows", f"DROP TABLE IF EXISTS {name}"))
        return nw.from_native(native.query("_abkit_like", f"SELECT * FROM {name}"))  # type: ignore[no-any-return]
    if impl is nw.Implementation.PYSPARK:
        kept = native.localCheckpoint(eager=True)
        _on_release(kept.unpersist)
        return nw.from_native(kept)  # type: ignore[no-any-return]
    if impl is nw.Implementation.IBIS:
        backend, query = _ibis_backend(frame), _ibis_casts(native)
        if backend.name in ("duckdb", "postgres"):
            # a temporary table by name: Ibis drops a cached table from a garbage
            # collector callback, which deadlocks on psycopg's connection lock when the
            # collection runs while this thread holds it
            table = backend.create_table(name, query, temp=True)
            _on_release(lambda: backend.drop_table(name, force=True))
            return nw.from_native(table)  # type: ignore[no-any-return]
        cached = query.cache()
        _on_release(cached.release)
        return nw.from_native(cached)  # type: ignore[no-any-return]
    # SQLFrame: a table it creates cannot always be read back (its catalog quotes a
    # column named with ':' twice), so its frames stay queries, recomputed when read
    return frame


def _ibis_casts(table: Any) -> Any:
    """An Ibis table expression whose casts of a boolean to a number type other than
    int32 go through int32: PostgreSQL casts a boolean to ``integer`` only, and
    Narwhals on Ibis casts booleans to int8 (``n_unique``) and to floats (sums)."""
    import ibis.expr.datatypes as dt
    import ibis.expr.operations as ops

    def through_int32(node: Any, changed: dict[str, Any] | None) -> Any:
        node = node.__recreate__(changed) if changed else node
        if (
            isinstance(node, ops.Cast)
            and node.arg.dtype.is_boolean()
            and node.to.is_numeric()
            and node.to != dt.int32
        ):
            return ops.Cast(ops.Cast(node.arg, dt.int32), node.to)
        return node

    return table.op().replace(through_int32).to_expr()


def _sqlframe_duckdb(like: nw.LazyFrame[Any]) -> Any:
    """The DuckDB connection under a SQLFrame DataFrame, or None (another engine, or
    SQLFrame on another database).  SQLFrame keeps it in ``session._conn``."""
    if like.implementation is not nw.Implementation.SQLFRAME:
        return None
    return getattr(nw.to_native(like).session, "_conn", None)


_UTC_NAMES = ("UTC", "Etc/UTC", "GMT", "Z")


def _ibis_backend(frame: nw.LazyFrame[Any]) -> Any:
    """The Ibis backend (connection) an Ibis table belongs to."""
    return nw.to_native(frame).get_backend()


# the Ibis backends whose session time zone abkit reads, and how to set it to UTC;
# Ibis sets UTC on connecting to them, but the user may have changed it since
_IBIS_ZONE_FIX = {
    "duckdb": "con.raw_sql(\"SET TimeZone = 'UTC'\") on the Ibis connection",
    "postgres": "con.raw_sql(\"SET TIME ZONE 'UTC'\") on the Ibis connection",
}


def require_utc(like: nw.LazyFrame[Any], label: str) -> str:
    """The session's own name for UTC ('UTC' or 'Etc/UTC', as a default DuckDB
    connection or Spark session on Linux says), to cast timestamps to; a DuckDB, Spark,
    SQLFrame-over-DuckDB or Ibis-over-DuckDB or -PostgreSQL session whose time zone is
    not UTC is refused (clock fields of timestamps, and so the day after assignment,
    would shift with summer time).  Other Ibis backends are taken to be in UTC: Ibis
    sets UTC where a backend has a session zone (Snowflake), and BigQuery computes in
    UTC."""
    native = nw.to_native(like)
    impl = like.implementation
    query = "select current_setting('TimeZone')"
    connection = _sqlframe_duckdb(like)
    if impl is nw.Implementation.DUCKDB:
        zone = native.query("_abkit_like", query).fetchall()[0][0]
        fix = "SET TimeZone = 'UTC' on the connection"
    elif impl is nw.Implementation.PYSPARK:
        zone = native.sparkSession.conf.get("spark.sql.session.timeZone")
        fix = "spark.conf.set('spark.sql.session.timeZone', 'UTC')"
    elif connection is not None:
        zone = connection.execute(query).fetchall()[0][0]
        fix = "SET TimeZone = 'UTC' on the DuckDB connection"
    elif impl is nw.Implementation.IBIS:
        backend = _ibis_backend(like)
        fix = _IBIS_ZONE_FIX.get(backend.name, "")
        if not fix:
            return "UTC"
        # DuckDB answers on its connection, PostgreSQL on a new cursor (closed here)
        cursor = backend.raw_sql(query)
        said = pl.DataFrame(cursor.fetchall(), schema=["zone"], orient="row")
        if backend.name == "postgres":
            cursor.close()
        zone = _crossed(said).item()
    else:
        return "UTC"
    if zone not in _UTC_NAMES:
        raise AbkitInputError(
            f"the {engine_name(like)} session's time zone is {zone!r}; abkit counts days "
            "after assignment in UTC.",
            source=label,
            hint=f"Run {fix} before the analysis.",
        )
    # Ibis casts to its own name of UTC, whatever the session calls it
    return "UTC" if impl is nw.Implementation.IBIS else str(zone)


def epoch_microseconds(column: str, like: nw.LazyFrame[Any]) -> nw.Expr:
    """Microseconds since 1970-01-01 of a timestamp column, as Int64.

    Polars reads them directly; elsewhere they are assembled from clock fields:
    days before the year = 365·(y − 1970) + leap years in [1970, y) with the
    Gregorian rule (n//4 − n//100 + n//400 leap years in 1 … n), plus the ordinal day,
    hour, minute, second and microsecond.
    """
    col = nw.col(column)
    if on_polars(like):
        return col.dt.timestamp("us")
    dt_ = col.dt
    year = dt_.year().cast(nw.Int64)
    before = year - 1
    leap = before // 4 - before // 100 + before // 400 - _LEAP_YEARS_BEFORE_1970
    days = 365 * (year - 1970) + leap + dt_.ordinal_day().cast(nw.Int64) - 1
    clock = (
        dt_.hour().cast(nw.Int64) * _US_PER_HOUR
        + dt_.minute().cast(nw.Int64) * _US_PER_MINUTE
        + dt_.second().cast(nw.Int64) * _US_PER_SECOND
        + dt_.microsecond().cast(nw.Int64)
    )
    return (days.cast(nw.Int64) * _US_PER_DAY + clock).cast(nw.Int64)


def days_between(start: str, end: str, like: nw.LazyFrame[Any]) -> nw.Expr:
    """Whole days (24 h) from ``start`` to ``end``: ⌊(end − start) / 24 h⌋ as Int32."""
    span = epoch_microseconds(end, like) - epoch_microseconds(start, like)
    return (span // _US_PER_DAY).cast(nw.Int32)


def with_days_between(
    frame: nw.LazyFrame[Any], start: str, end: str, alias: str
) -> nw.LazyFrame[Any]:
    """``frame`` with ``alias``: whole days from ``start`` to ``end``,
    ⌊(end − start) / 24 h⌋ as a 32-bit integer (:func:`days_between`).

    On DuckDB and Spark the engine's own microsecond count (``epoch_us``,
    ``unix_micros``) and an exact integer floor division run instead of Narwhals'
    portable form (clock fields, and a floor division that checks each value's type),
    which costs DuckDB several times the scan itself.
    """
    native = nw.to_native(frame)
    impl = frame.implementation
    span = f"(epoch_us({_quoted(end)}) - epoch_us({_quoted(start)}))"
    if impl is nw.Implementation.DUCKDB:
        k = _US_PER_DAY  # DuckDB's // truncates: take the remainder's sign off first
        floor = f"CAST(({span} - (({span} % {k}) + {k}) % {k}) // {k} AS INTEGER)"
        return nw.from_native(native.project(f"*, {floor} AS {_quoted(alias)}"))  # type: ignore[no-any-return]
    if impl is nw.Implementation.PYSPARK:
        functions = _extra_functions(native)
        micros = functions.unix_micros(functions.col(end)) - functions.unix_micros(
            functions.col(start)
        )
        day = functions.floor(micros / _US_PER_DAY).cast("int")
        return nw.from_native(native.withColumn(alias, day))  # type: ignore[no-any-return]
    return frame.with_columns(days_between(start, end, frame).alias(alias))


def distinct(frame: nw.LazyFrame[Any], key: Sequence[str] | None = None) -> nw.LazyFrame[Any]:
    """``frame`` without repeated rows.  Engines that have a DISTINCT get it (Narwhals'
    ``unique`` numbers the rows of each group with a window function on DuckDB, Spark
    and SQL engines, several times slower).  ``key``: columns that the others are
    functions of (the unit's variant and assignment time are of its id); Polars then
    hashes only those (a quarter less work on an event export)."""
    native = nw.to_native(frame)
    if frame.implementation in (
        nw.Implementation.DUCKDB,
        nw.Implementation.PYSPARK,
        nw.Implementation.SQLFRAME,
        nw.Implementation.IBIS,
    ):
        return nw.from_native(native.distinct())  # type: ignore[no-any-return]
    return frame.unique(subset=None if key is None else list(key), keep="any")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _extra_functions(native: Any) -> Any:
    """pyspark.sql.functions (imported only when the frame is a Spark one)."""
    from pyspark.sql import functions

    return functions


# events per part when a Polars export is reduced in parts (about 1.2 GB of memory each;
# at 1M users / 9.7M events four parts cost 10 % more CPU than one and 60 % less memory)
EVENTS_PER_PART = 3_000_000


def partitions(
    frame: nw.LazyFrame[Any], unit: str, events: nw.LazyFrame[Any]
) -> list[nw.LazyFrame[Any]]:
    """``frame`` in parts that hold disjoint sets of units, so that each part's
    per-unit work fits in memory: on Polars one part per ``EVENTS_PER_PART`` input
    events (counted on ``events``), by a hash of the unit id; other engines manage
    their own memory and get one part.  Duplicates, per-unit aggregates and the
    counts of a unit all fall in one part, so the parts' results combine exactly.
    """
    if not on_polars(frame):
        return [frame]
    rows = _crossed(nw.to_native(events.select(nw.len())).collect()).item()
    count = max(1, -(-rows // EVENTS_PER_PART))
    if count == 1:
        return [frame]
    native = nw.to_native(frame)
    bucket = pl.col(unit).hash(seed=0) % count
    return [nw.from_native(native.filter(bucket == i)) for i in range(count)]


def collect_all(frames: Sequence[nw.LazyFrame[Any]]) -> list[pl.DataFrame]:
    """Run the queries and return Polars frames.

    On Polars one ``pl.collect_all`` runs them together on the streaming engine
    (common subplans, such as the scan, join and de-duplication of the events, are
    computed once).  Its additions come in any order, which is why the per-unit value
    sums are taken in fixed point (:data:`abkit.metrics.references.EXACT`): same input,
    same bits.

    Every frame returned is counted in the open :func:`crossing` blocks.
    """
    if not frames:
        return []
    if all(on_polars(f) for f in frames):
        done = pl.collect_all([nw.to_native(f) for f in frames], engine="streaming")
    else:
        done = [_in_utc(_on_its_engine(f).collect("polars").to_native()) for f in frames]
    return [_crossed(frame) for frame in done]


def _on_its_engine(frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """``frame`` as its engine runs it (an Ibis table with its casts made portable)."""
    if frame.implementation is nw.Implementation.IBIS:
        return nw.from_native(_ibis_casts(nw.to_native(frame)))  # type: ignore[no-any-return]
    return frame


def _in_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps from another engine named 'UTC', whatever that session calls it
    ('Etc/UTC' on a default Linux DuckDB connection or Spark session): the same
    instants, one spelling, so they compare with abkit's own UTC times."""
    zoned = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone not in (None, "UTC")
    ]
    if not zoned:
        return frame
    return frame.with_columns(pl.col(zoned).dt.convert_time_zone("UTC"))
