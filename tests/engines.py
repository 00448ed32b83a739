"""Helpers shared by the engine tests: put a Polars frame on an engine and compare two
results number by number."""

from __future__ import annotations

import importlib
import math
import os
from typing import Any

import polars as pl
import pytest

# a result field that names the input (its label differs by engine, not its numbers)
_LABELS = {"source", "label", "input", "events_source"}


def required(module: str) -> Any:
    """Import an engine; a missing engine fails under CI=true instead of skipping."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def assert_same_numbers(a: Any, b: Any, where: str = "result", rel: float = 1e-12) -> None:
    """Every number of ``b`` equals the one of ``a`` to ``rel`` (relative, with an
    absolute floor of ``rel`` for values near 0); everything else is equal."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            if k not in _LABELS:
                assert_same_numbers(a[k], b[k], f"{where}.{k}", rel)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_numbers(x, y, f"{where}[{i}]", rel)
    elif isinstance(a, float) and isinstance(b, int | float) and not isinstance(b, bool):
        if math.isnan(a):
            assert math.isnan(b), f"{where}: {a} vs {b}"
        else:
            assert b == pytest.approx(a, rel=rel, abs=rel), f"{where}: {a!r} vs {b!r}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def to_duckdb(frame: pl.DataFrame, connection: Any) -> Any:
    return connection.from_arrow(frame.to_arrow())


def to_sqlframe(frame: pl.DataFrame, session: Any, connection: Any, name: str) -> Any:
    """A table of SQLFrame's DuckDB connection (``createDataFrame`` writes every row
    into the SQL text, far too slow for an export)."""
    arrow = frame.to_arrow()  # noqa: F841 - read by name in the statement
    connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM arrow")
    return session.table(name)


def to_spark(frame: pl.DataFrame, session: Any) -> Any:
    """Through Arrow, which keeps nullable integers integers (pandas makes them floats)."""
    return session.createDataFrame(frame.to_arrow())
