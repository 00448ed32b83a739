"""Timestamp parsing that never guesses per file and never fails silently."""

from __future__ import annotations

import datetime as dt

import polars as pl

from abkit.errors import AbkitInputError

# Tried in order; the first that parses a cell wins.  Offsets are honoured and
# everything is converted to UTC.
_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)


# the times abkit computes with (Python's datetime reaches the years 1-9999; the lower
# bound leaves room for the windows and gaps subtracted from an export's times)
EARLIEST = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
OUT_OF_RANGE = "outside the years 1000-9999"
ACCEPTED = (
    "ISO 8601 (2025-03-01T00:09:00Z, 2025-03-01 00:09, 2025-03-01), Unix epoch seconds, "
    "milliseconds or microseconds, or a format given with --timestamp-format / [input] "
    "timestamp_format (for 03/01/2025 00:09: '%m/%d/%Y %H:%M')"
)


def out_of_range(column: str) -> pl.Expr:
    """True where a parsed timestamp lies outside the years abkit computes with."""
    return ~pl.col(column).is_between(pl.lit(EARLIEST), pl.lit(LATEST))


# formats suggested for a column no accepted format reads (day-first and month-first
# forms are told apart by the values: 13/01 is day-first, 01/13 month-first)
_SUGGESTED = tuple(
    f"{date} {time}".strip()
    for date in ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%m/%d/%y", "%d/%m/%y")
    for time in ("%H:%M:%S", "%H:%M", "%I:%M %p", "%I:%M:%S %p", "")
)


def _suggest_formats(text: pl.Series) -> list[str]:
    """The formats of :data:`_SUGGESTED` that read every value of ``text``."""
    values = text.drop_nulls()
    sample = values.gather_every(max(1, len(values) // 5_000))  # spread over the column
    return [
        f for f in _SUGGESTED if sample.str.to_datetime(format=f, strict=False).null_count() == 0
    ]


def unreadable_times(text: pl.Series, column: str, label: str, what: str) -> AbkitInputError:
    """The error for a timestamp column of which no value could be read: the column,
    the first value, the accepted forms and the format option that would read it."""
    values = text.cast(pl.String).str.strip_chars()
    row = int(values.is_not_null().arg_true()[0])
    fits = _suggest_formats(values)
    if len(fits) == 1:
        option = f" These values read with --timestamp-format '{fits[0]}'."
    elif fits:
        shown = " or ".join(f"'{f}'" for f in fits[:2])
        option = (
            f" These values fit {shown} (month and day cannot be told apart from them); "
            "give the one the export uses with --timestamp-format."
        )
    else:
        option = ""
    return AbkitInputError(
        f"no {what} could be parsed: the first value, at data row {row + 1}, is "
        f"{values[row]!r}.{option}",
        source=label,
        column=column,
        hint=f"Accepted: {ACCEPTED}.",
    )


def with_timestamp(
    frame: pl.LazyFrame,
    column: str,
    alias: str,
    fmt: str | None = None,
    label: str | None = None,
    what: str = "timestamp",
) -> pl.LazyFrame:
    """``frame`` with ``column`` parsed by :func:`parse_timestamp` into ``alias``.

    Text is parsed here, once (so that the queries reading the frame do not parse it
    again), on the frame collected once so that every value stays with its row; a
    format is tried only on the values the earlier ones left unparsed, so a column of
    one format costs one parse, not seven.  With a ``label``, a text column of which no
    value parses is an error (see :func:`unreadable_times`)."""
    dtype = frame.collect_schema()[column]
    if isinstance(dtype, pl.Datetime | pl.Date) or dtype.is_numeric():
        return frame.with_columns(parse_timestamp(column, dtype, fmt).alias(alias))
    table = frame.collect()
    raw = table.get_column(column).cast(pl.String)
    formats = (fmt, *_FORMATS) if fmt else _FORMATS
    parsed = _parse_text(raw, formats[0])  # as a rule the first format reads every value
    if (parsed.is_null() & raw.is_not_null()).any():
        text = raw.str.strip_chars()
        for f in formats:
            parsed = parsed.fill_null(_parse_text(text, f))
            if not (parsed.is_null() & text.is_not_null()).any():
                break
    if label is not None and parsed.null_count() == len(parsed) > raw.null_count():
        raise unreadable_times(raw, column, label, what)
    return table.with_columns(parsed.alias(alias)).lazy()


def _parse_text(text: pl.Series, fmt: str) -> pl.Series:
    """``text`` parsed with one format (null where it does not fit), on the streaming
    engine, which parses the chunks in parallel."""
    parse = pl.col(text.name).str.to_datetime(
        format=fmt, strict=False, time_zone="UTC", time_unit="us"
    )
    return pl.LazyFrame([text]).select(parse).collect(engine="streaming").to_series()


def parse_timestamp(
    column: str,
    dtype: pl.DataType,
    fmt: str | None = None,
) -> pl.Expr:
    """Expression turning ``column`` into ``Datetime('us', 'UTC')``; null when unparseable.

    ``fmt`` (``[input] timestamp_format``, a strptime format) is tried first on text
    (:func:`with_timestamp` parses text faster, from the data).  Times outside
    the years 1000-9999 are kept (:func:`out_of_range` tells them, for an exclusion).

    Accepted: Datetime (naive values are taken as UTC), Date, ISO-8601 strings
    (with 'T' or space, optional fraction, optional 'Z' or ±hh:mm offset, or a bare
    date) and numbers: Unix epoch seconds, milliseconds (≥ 1e11) or microseconds (≥ 1e14).
    """
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return col.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        return col.dt.cast_time_unit("us").dt.convert_time_zone("UTC")
    if isinstance(dtype, pl.Date):
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.is_numeric():
        # epoch seconds stay below 1e10 until the year 2286, so larger magnitudes are
        # milliseconds (up to 1e13) or microseconds: told apart value by value
        x = col.cast(pl.Float64)
        micros = (
            pl.when(x.abs() >= 1e14)
            .then(x)
            .when(x.abs() >= 1e11)
            .then(x * 1_000)
            .otherwise(x * 1_000_000)
        )
        # beyond the Int64 range (1e30, inf) is not a time: null, counted as unparseable
        micros = pl.when(micros.abs() < 9e18).then(micros)
        return (
            micros.cast(pl.Int64, strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        )
    text = col.cast(pl.String).str.strip_chars()
    return pl.coalesce(
        [
            text.str.to_datetime(format=f, strict=False, time_zone="UTC", time_unit="us")
            for f in ((fmt, *_FORMATS) if fmt else _FORMATS)
        ]
    )
