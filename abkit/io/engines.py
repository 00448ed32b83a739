"""Open an export on another engine: DuckDB, or a local Spark session.

``abkit analyze --engine duckdb|spark`` reads the events with that engine, and the
units stage (:mod:`abkit.units.events`) then runs there; a notebook user does the same
with :func:`read_on` or hands :func:`abkit.analyze` a frame of their own session
(``spark.table("events")``, a DuckDB relation).  Both engines are optional extras:
``pip install "abkit[duckdb]"`` or ``"abkit[spark]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abkit.errors import AbkitInputError
from abkit.io.readers import Data, export_files
from abkit.options import Engine


def read_on(engine: Engine, source: str | Path) -> Data:
    """``source`` (a file, glob or folder of CSV, Parquet or NDJSON) as a lazy frame of
    ``engine``: a DuckDB relation on a new UTC connection, or a DataFrame of the local
    Spark session (created in UTC with a 4 GB driver when none is running; build your
    own session for other settings); Polars returns the path, which
    :func:`abkit.io.readers.read_table` opens.

    CSV column types are inferred by the engine, so timestamps must be in a form it
    recognises (ISO 8601).
    """
    if engine == "polars":
        return source
    files, fmt = export_files(source)
    paths = [str(f) for f in files]
    if engine == "duckdb":
        return _duckdb(paths, fmt)
    return _spark(paths, fmt)


def _extra(module: str, engine: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise AbkitInputError(
            f"the {engine} engine is not installed.", hint=f'pip install "abkit[{engine}]"'
        ) from None


def _duckdb(paths: list[str], fmt: str) -> Any:
    duckdb = _extra("duckdb", "duckdb")
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    if fmt == "parquet":
        return connection.read_parquet(paths)
    if fmt == "ndjson":
        return connection.read_json(paths, format="newline_delimited")
    return connection.read_csv(paths, sep="\t" if fmt == "tsv" else ",", header=True)


def _spark(paths: list[str], fmt: str) -> Any:
    sql = _extra("pyspark.sql", "spark")
    active = sql.SparkSession.getActiveSession()
    spark = active
    if spark is None:
        spark = (
            sql.SparkSession.builder.appName("abkit")
            .master("local[*]")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # the per-unit rows come back to this process: Spark's 1 GB default runs out
            # of heap at about a million units
            .config("spark.driver.memory", "4g")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
    if fmt == "parquet":
        return spark.read.parquet(*paths)
    if fmt == "ndjson":
        return spark.read.json(paths)
    sep = "\t" if fmt == "tsv" else ","
    return spark.read.csv(paths, header=True, inferSchema=True, sep=sep)
