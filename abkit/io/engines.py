"""Open an export on another engine: DuckDB, a local Spark session, or Ibis over DuckDB.

``abkit analyze --engine duckdb|spark|ibis`` reads the events with that engine, and the
units stage (:mod:`abkit.engine.events`) then runs there; a notebook user does the same
with :func:`read_on` or hands :func:`abkit.analyze` a frame of their own session
(``spark.table("events")``, a DuckDB relation, an Ibis table of any backend).  The
engines are optional extras: ``pip install "abkit[duckdb]"``, ``"abkit[spark]"`` or
``"abkit[ibis]"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abkit.errors import AbkitInputError
from abkit.interrupt import cancel_on_interrupt
from abkit.io.readers import STDIN, Data, export_files
from abkit.options import Engine


def read_on(engine: Engine, source: str | Path) -> Data:
    """``source`` (a file, glob or folder of CSV, Parquet or NDJSON) as a lazy frame of
    ``engine``: a DuckDB relation on a new UTC connection, a DataFrame of the local
    Spark session (created in UTC with a 4 GB driver when none is running; build your
    own session for other settings), or an Ibis table on a new in-memory Ibis DuckDB
    connection (Ibis sets it to UTC); Polars returns the path, which
    :func:`abkit.io.readers.read_table` opens.

    CSV column types are inferred by the engine, so timestamps must be in a form it
    recognises (ISO 8601).
    """
    if engine == "polars":
        return source
    if str(source) == STDIN:
        raise AbkitInputError(
            f"standard input ('-') is read with the Polars engine only, not with {engine}.",
            hint="Save the export to a file and pass its path, or leave out --engine.",
        )
    files, fmt = export_files(source)
    paths = [str(f) for f in files]
    if engine == "duckdb":
        return _duckdb(paths, fmt)
    if engine == "ibis":
        return _ibis(paths, fmt)
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
    cancel_on_interrupt(connection)  # a Ctrl-C stops its query at once
    connection.execute("SET TimeZone = 'UTC'")
    if fmt == "parquet":
        return connection.read_parquet(paths)
    if fmt == "ndjson":
        return connection.read_json(paths, format="newline_delimited")
    return connection.read_csv(paths, sep="\t" if fmt == "tsv" else ",", header=True)


def _ibis(paths: list[str], fmt: str) -> Any:
    ibis = _extra("ibis", "ibis")
    try:
        connection = ibis.duckdb.connect()
    except ImportError:  # Ibis without its DuckDB backend's packages
        raise AbkitInputError(
            "the ibis engine reads files with DuckDB, which is not installed.",
            hint='pip install "abkit[ibis]"',
        ) from None
    if fmt == "parquet":
        return connection.read_parquet(paths)
    if fmt == "ndjson":
        table = connection.read_json(paths, format="newline_delimited")
        # DuckDB types a column of nulls only as JSON (DuckDB 1) or NULL (DuckDB 2),
        # neither of which has a Polars type
        kinds = table.schema().items()
        untyped = [name for name, kind in kinds if kind.is_json() or kind.is_unknown()]
        return table.mutate(**{name: table[name].cast("string") for name in untyped})
    return connection.read_csv(paths, delim="\t" if fmt == "tsv" else ",", header=True)


def local_spark(cores: str = "*", shuffle_partitions: int | None = None) -> Any:
    """A local Spark session for abkit: UTC, no UI or console progress, a 4 GB driver
    (the per-unit rows come back to this process; Spark's 1 GB default runs out of heap
    at about a million units).  ``cores`` is the ``local[...]`` master's thread count;
    ``shuffle_partitions`` sets ``spark.sql.shuffle.partitions`` (1 suits small jobs)."""
    sql = _extra("pyspark.sql", "spark")
    builder = (
        sql.SparkSession.builder.appName("abkit")
        .master(f"local[{cores}]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
    )
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _spark(paths: list[str], fmt: str) -> Any:
    sql = _extra("pyspark.sql", "spark")
    spark = sql.SparkSession.getActiveSession() or local_spark()
    if fmt == "parquet":
        return spark.read.parquet(*paths)
    if fmt == "ndjson":
        return spark.read.json(paths)
    sep = "\t" if fmt == "tsv" else ","
    return spark.read.csv(paths, header=True, inferSchema=True, sep=sep)
