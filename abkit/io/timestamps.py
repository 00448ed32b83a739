"""Timestamp parsing that never guesses per file and never fails silently."""

from __future__ import annotations

import polars as pl

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


def parse_timestamp(column: str, dtype: pl.DataType, fmt: str | None = None) -> pl.Expr:
    """Expression turning ``column`` into ``Datetime('us', 'UTC')``; null when unparseable.

    ``fmt`` (``[input] timestamp_format``, a strptime format) is tried first on text.

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
        return micros.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = col.cast(pl.String).str.strip_chars()
    return pl.coalesce(
        [
            text.str.to_datetime(format=f, strict=False, time_zone="UTC", time_unit="us")
            for f in ((fmt, *_FORMATS) if fmt else _FORMATS)
        ]
    )
