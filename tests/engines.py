"""Helpers shared by the engine tests: put a Polars frame on an engine, compare two
results number by number, and run a throw-away PostgreSQL server."""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

# a result field that names the input (its label differs by engine, not its numbers)
_LABELS = {"source", "label", "input", "events_source"}
# a note that only a run on another engine has: per-unit rows that came back from it
_ENGINE_NOTE = re.compile(r"came back from the .* engine")


# a B2B export's account-level metrics, compared between engines
B2B_CONFIG = {
    "experiment": {"mode": "b2b"},
    "metrics": [
        {"name": "d1", "type": "retention", "day": 1},
        {"name": "adopt", "type": "adoption", "event": "share"},
        {"name": "ttv", "type": "time_to_value", "event": "share"},
    ],
    "b2b": {"resamples": 2000, "seed": 1},
}


def required(module: str) -> Any:
    """Import an engine; a missing engine fails under CI=true instead of skipping."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def assert_same_numbers(a: Any, b: Any, where: str = "result", rel: float = 1e-12) -> None:
    """Every number of ``b`` equals the one of ``a`` to ``rel`` (relative, with an
    absolute floor of ``rel`` for values near 0); everything else is equal, but for the
    note of a run on an engine that says which per-unit rows came back from it."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys differ"
        for k in a:
            if k == "notes" and isinstance(b[k], list):
                kept = [n for n in b[k] if not (isinstance(n, str) and _ENGINE_NOTE.search(n))]
                assert_same_numbers(a[k], kept, f"{where}.{k}", rel)
            elif k not in _LABELS:
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


def sqlframe_session(connection: Any) -> Any:
    """A SQLFrame session on ``connection``.  SQLFrame keeps one session per process and
    a session made earlier (a documentation example's ``DuckDBSession()``) would keep
    its own connection, ignoring this one: it is set aside first (a session on this
    same connection is kept: SQLFrame registers its functions once per connection)."""
    from sqlframe.base.session import _BaseSession
    from sqlframe.duckdb import DuckDBSession

    current = _BaseSession._instance
    if current is not None and getattr(current, "_conn", None) is not connection:
        _BaseSession._instance = None  # made on another connection: start afresh
    return DuckDBSession(conn=connection)


def to_sqlframe(frame: pl.DataFrame, session: Any, connection: Any, name: str) -> Any:
    """A table of SQLFrame's DuckDB connection (``createDataFrame`` writes every row
    into the SQL text, far too slow for an export)."""
    arrow = frame.to_arrow()  # noqa: F841 - read by name in the statement
    connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM arrow")
    return session.table(name)


def to_spark(frame: pl.DataFrame, session: Any) -> Any:
    """Through Arrow, which keeps nullable integers integers (pandas makes them floats)."""
    return session.createDataFrame(frame.to_arrow())


def to_ibis(frame: pl.DataFrame, backend: Any, name: str) -> Any:
    """A table of an Ibis backend: a temporary table on DuckDB, and on PostgreSQL a table
    loaded by COPY (see :func:`to_postgres`)."""
    if backend.name == "postgres":
        return to_postgres(frame, backend, name)
    return backend.create_table(name, frame.to_arrow(), temp=True, overwrite=True)


_PG_TYPES = {
    pl.Int64: "bigint",
    pl.Int32: "integer",
    pl.Float64: "double precision",
    pl.String: "text",
    pl.Boolean: "boolean",
    pl.Date: "date",
}


def to_postgres(frame: pl.DataFrame, backend: Any, name: str) -> Any:
    """``frame`` as a PostgreSQL table (timestamps with a time zone as ``timestamptz``,
    without one as ``timestamp``), loaded through COPY, opened with Ibis."""
    columns, times = [], []
    for column, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            kind = "timestamptz" if dtype.time_zone else "timestamp"
            offset = "%:z" if dtype.time_zone else ""
            times.append(pl.col(column).dt.to_string(f"%Y-%m-%dT%H:%M:%S%.6f{offset}"))
        else:
            kind = _PG_TYPES[dtype.base_type()]
        columns.append(f'"{column}" {kind}')
    text = frame.with_columns(times).write_csv(null_value="")
    connection = backend.con
    with connection.cursor() as cursor, connection.transaction():
        cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
        cursor.execute(f'CREATE TABLE "{name}" ({", ".join(columns)})')
        with cursor.copy(f'COPY "{name}" FROM STDIN (FORMAT csv, HEADER true)') as copy:
            copy.write(text)
    return backend.table(name)


def _postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs: Debian keeps them out of PATH in
    /usr/lib/postgresql/<major>/bin (the newest is taken)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return next((f for f in reversed(folders) if (f / "initdb").exists()), None)


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server of the test session, reached on a Unix socket in ``socket``."""

    socket: Path
    port: int
    user: str

    def connect(self) -> Any:
        """A new Ibis connection (Ibis sets the session's time zone to UTC)."""
        ibis = required("ibis")
        return ibis.postgres.connect(
            host=str(self.socket), port=self.port, user=self.user, database="postgres"
        )


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL server in a temporary folder and stop it on exit.

    ``initdb`` refuses to run as root, so under root the server runs as the
    ``postgres`` system user (Debian's package creates it) and the folder is given to
    it.  The server listens on a Unix socket in the folder only (no TCP port), with
    fsync off; a watchdog process stops it if the tests die without tearing it down.
    A missing PostgreSQL skips, or fails under CI=true (CI installs
    Debian's postgresql package in .ci/run).
    """
    bin_dir = _postgres_bin()
    if bin_dir is None:
        reason = "PostgreSQL's server is not installed (Debian: apt-get install postgresql)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI installs it in .ci/run")
        pytest.skip(reason)
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="abkit-pg-"))
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log, port, user = folder / "data", folder / "server.log", 5432, "abkit"

    def run(*command: str) -> None:
        done = subprocess.run(
            [*as_user, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}{tail}")

    pg_ctl = str(bin_dir / "pg_ctl")
    options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off"
    stop = [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
    # a watchdog stops the server and removes the folder if this process dies without
    # its teardown (killed by a timeout or a signal)
    watch = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
        f"{shlex.join(stop)} >/dev/null 2>&1; rm -rf {shlex.quote(str(folder))}"
    )
    watchdog = None
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync")
        run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        watchdog = subprocess.Popen(["sh", "-c", watch], start_new_session=True)
        try:
            yield PostgresServer(folder, port, user)
        finally:
            run(*stop[len(as_user) :])
    finally:
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        shutil.rmtree(folder, ignore_errors=True)


# the way a user runs abkit on the events of a session opened with the engine's defaults:
# a fresh interpreter (SQLFrame's and Spark's sessions are process-wide), the bundled
# example (sys.argv[1]), the session's own zone; then the same session set to
# Europe/Paris, which abkit must refuse with the fix.  {open} opens the session as
# `session` and {read} reads a Parquet path into `events`; {paris} sets the zone.
USER_SCRIPT = """
import json, sys
import abkit
from abkit.errors import AbkitInputError

example = sys.argv[1]
{open}
out = {{"zone": {zone}}}
events = {read}(example + "/events.parquet")
try:
    result = abkit.analyze(
        example + "/assignments.parquet", example + "/experiment.toml", events=events
    )
    out["result"] = result.to_dict()
except AbkitInputError as error:
    out["error"] = str(error)
{paris}
events = {read}(example + "/events.parquet")
try:
    abkit.analyze(example + "/assignments.parquet", example + "/experiment.toml", events=events)
except AbkitInputError as error:
    out["paris"] = str(error)
print("\\n" + json.dumps(out))
"""

UTC_NAMES = ("UTC", "Etc/UTC", "GMT", "Z")


def run_as_a_user(
    open_session: str, zone: str, read: str, paris: str, example: Path, timeout: int = 600
) -> dict[str, Any]:
    """Run :data:`USER_SCRIPT` in a fresh interpreter and return what it printed."""
    code = USER_SCRIPT.format(open=open_session, zone=zone, read=read, paris=paris)
    done = subprocess.run(
        [sys.executable, "-c", code, str(example)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=example,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def assert_default_session_works(seen: dict[str, Any], reference: dict[str, Any], fix: str) -> None:
    """A session in UTC (under any of its names) gives the Polars numbers; one in
    another zone gets abkit's error with ``fix``; set to Europe/Paris, the same."""
    if seen["zone"] in UTC_NAMES:
        assert "error" not in seen, seen.get("error")
        assert_same_numbers(json.loads(json.dumps(reference)), seen["result"])
    else:
        assert fix in seen["error"]
    assert "'Europe/Paris'" in seen["paris"] and fix in seen["paris"], seen["paris"]
