"""Timestamp parsing: every accepted form gives the same instant; others give null."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from abkit.io.timestamps import parse_timestamp

INSTANT = dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2023-11-14T22:13:20Z",
        "2023-11-14 22:13:20",
        "2023-11-14T22:13:20.000",
        "2023-11-15T00:13:20+02:00",
        "2023-11-14T22:13:20+00:00",
    ],
)
def test_iso_strings(value):
    out = pl.DataFrame({"t": [value]}).select(parse_timestamp("t", pl.String)).item()
    assert out == INSTANT


@pytest.mark.parametrize("value", [1_700_000_000, 1_700_000_000_000, 1_700_000_000_000_000])
def test_epoch_seconds_milliseconds_and_microseconds(value):
    out = pl.DataFrame({"t": [value]}).select(parse_timestamp("t", pl.Int64)).item()
    assert out == INSTANT


def test_naive_and_zoned_datetimes_become_utc():
    naive = pl.DataFrame({"t": [dt.datetime(2023, 11, 14, 22, 13, 20)]})
    assert naive.select(parse_timestamp("t", naive.schema["t"])).item() == INSTANT
    zoned = naive.with_columns(pl.col("t").dt.replace_time_zone("Europe/Berlin"))
    assert zoned.select(parse_timestamp("t", zoned.schema["t"])).item() == INSTANT + dt.timedelta(
        hours=-1
    )


def test_bare_dates_and_garbage():
    out = (
        pl.DataFrame({"t": ["2023-11-14", "14/11/2023", "soon", None]})
        .select(parse_timestamp("t", pl.String))
        .to_series()
        .to_list()
    )
    assert out[0] == dt.datetime(2023, 11, 14, tzinfo=dt.UTC)
    assert out[1:] == [None, None, None]
