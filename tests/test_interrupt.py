"""Ctrl-C during a long analysis: ``abkit analyze`` stops with exit code 130 and one
line ("abkit: interrupted"), no traceback, whether Polars, DuckDB or Spark runs the
pass over the events; the engines' own reports of an interrupt are recognised
(:func:`abkit.interrupt.is_interrupt`); the progress display keeps counting through
the engine pass.

The end-to-end tests run the installed ``abkit`` with standard error on a
pseudo-terminal, so that the progress display is on, wait for its "one pass over the
events" stage, and send SIGINT to the command's process group, as a terminal's
Ctrl-C does (a Spark JVM in the group ignores it).  Real signals go to subprocesses
only, never to the pytest process.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from abkit import interrupt
from abkit.errors import AbkitInputError
from abkit.interrupt import is_interrupt
from abkit_cli.main import cli
from tests.engines import required

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and terminals")

PASS = "one pass over the events"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SPINNER = re.compile(r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏][^\n⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]*")


@pytest.fixture
def sigint() -> Iterator[None]:
    """Put back the pytest process's SIGINT handler: a command stopped by a Ctrl-C
    leaves abkit's in place, as its process is on its way out."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


# --- what counts as a Ctrl-C ------------------------------------------------------


def test_keyboard_interrupt_and_errors_raised_while_handling_one():
    assert is_interrupt(KeyboardInterrupt())
    assert not is_interrupt(ValueError("bad column"))
    assert not is_interrupt(RuntimeError("Query failed"))
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise AbkitInputError("could not process the events") from None
    except AbkitInputError as exc:
        wrapped = exc
    assert is_interrupt(wrapped)


def test_duckdb_interrupted_query_in_both_forms():
    duckdb = required("duckdb")
    # a SIGINT that DuckDB notices itself: a plain RuntimeError with this message
    assert is_interrupt(RuntimeError("Query interrupted"))
    # an interrupted connection: duckdb.InterruptException, taken from a real query
    connection = duckdb.connect()
    threading.Timer(0.2, connection.interrupt).start()
    with pytest.raises(duckdb.Error) as caught:
        connection.sql("SELECT count(*) FROM range(100000000000) t(x) WHERE x % 7 = 3").fetchall()
    assert isinstance(caught.value, duckdb.InterruptException)
    assert is_interrupt(caught.value)
    assert not is_interrupt(duckdb.ConversionException("Could not convert"))


class _Py4JJavaError(Exception):
    """Stands for py4j's error type: is_interrupt reads the module name and message."""


_Py4JJavaError.__module__ = "py4j.protocol"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("An error occurred while calling o63.collectToPython.\n: org.apache.spark."
         "SparkException: Job 3 cancelled as part of cancellation of all jobs", True),
        ("org.apache.spark.SparkException: Job 0 cancelled because SparkContext was shut "
         "down", True),
        ("[SPARK_JOB_CANCELLED] Job 2 cancelled part of cancelled job group 7", True),
        ("org.apache.spark.SparkException: Stage 5 cancelled", True),
        ("java.lang.OutOfMemoryError: Java heap space", False),
    ],
)  # fmt: skip
def test_spark_cancelled_jobs_by_their_message(message, expected):
    assert is_interrupt(_Py4JJavaError(message)) is expected
    assert not is_interrupt(ValueError(message))  # other types: the message is not read


def test_registered_duckdb_connections_are_interrupted_from_another_thread():
    duckdb = required("duckdb")
    connection = duckdb.connect()
    interrupt.cancel_on_interrupt(connection)
    threading.Timer(0.2, interrupt.cancel_engine_work).start()
    start = time.monotonic()
    with pytest.raises(duckdb.InterruptException):
        connection.sql("SELECT count(*) FROM range(100000000000) t(x) WHERE x % 7 = 3").fetchall()
    assert time.monotonic() - start < 5


_TWICE = """
import signal
from abkit import interrupt

cleaned = []
try:
    with interrupt.watching():
        try:
            signal.raise_signal(signal.SIGINT)
        finally:
            signal.raise_signal(signal.SIGINT)  # within the grace period: ignored
            cleaned.append(True)
except KeyboardInterrupt:
    print("stopped, cleaned up:", cleaned)
"""


def test_a_second_ctrl_c_while_stopping_does_not_break_the_clean_up():
    out = subprocess.run([sys.executable, "-c", _TWICE], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "stopped, cleaned up: [True]", out.stdout + out.stderr
    assert out.returncode == 0


def test_the_tracebacks_py4j_logs_on_a_ctrl_c_are_left_out(caplog):
    """py4j logs the interrupted call on the root logger and the broken pipe of
    closing its connection on py4j.clientserver; other records pass."""

    def log_broken_pipe() -> None:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise BrokenPipeError(32, "Broken pipe") from None
        except BrokenPipeError:
            logging.getLogger("py4j.clientserver").exception("Exception occurred")
            logging.getLogger().exception("KeyboardInterrupt while sending command.")
        logging.getLogger("py4j.clientserver").warning("something else")

    with interrupt.watching():
        log_broken_pipe()
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    caplog.clear()
    log_broken_pipe()  # outside the block: nothing is left out
    assert len(caplog.records) == 3


_WATCHED = """
import os, signal, threading, time
import duckdb
from abkit import interrupt

connection = duckdb.connect()
interrupt.cancel_on_interrupt(connection)
threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    with interrupt.watching():
        connection.execute(
            "SELECT count(*) FROM range(100000000000) t(x) WHERE x % 7 = 3"
        ).fetchall()
except BaseException as exc:
    print(type(exc).__name__, interrupt.is_interrupt(exc), time.monotonic() - start - 0.5)
"""


def test_a_ctrl_c_interrupts_a_registered_duckdb_query_at_once():
    """The watching thread interrupts the connection when the signal arrives, where
    DuckDB alone may notice it only at its next check (``execute`` of some builds:
    not before the query ends)."""
    required("duckdb")
    out = subprocess.run(
        [sys.executable, "-c", _WATCHED], capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in out.stderr, out.stderr
    _, recognised, waited = out.stdout.split()
    assert recognised == "True", out.stdout
    assert float(waited) < 2.0, out.stdout


# --- the command, in process ------------------------------------------------------


def test_keyboard_interrupt_in_a_command_exits_130_without_traceback(monkeypatch, sigint):
    import abkit

    def stop(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(abkit, "analyze", stop)
    result = CliRunner().invoke(cli, ["analyze", "a.parquet"])
    assert result.exit_code == interrupt.EXIT_STATUS
    assert result.output.strip() == "abkit: interrupted"
    assert "Traceback" not in result.output


def test_an_engine_error_for_a_ctrl_c_is_not_an_input_error(monkeypatch, sigint):
    """What :func:`abkit.engine.events.event_units` made of DuckDB's interrupt before
    it let interrupts through: an input error wrapping the engine's."""
    import abkit

    def stop(*args: Any, **kwargs: Any) -> None:
        try:
            raise RuntimeError("Query interrupted")
        except RuntimeError as exc:
            raise AbkitInputError(f"could not process the events: {exc}") from None

    required("duckdb")
    monkeypatch.setattr(abkit, "analyze", stop)
    result = CliRunner().invoke(cli, ["analyze", "a.parquet"])
    assert result.exit_code == interrupt.EXIT_STATUS, result.output
    assert result.output.strip() == "abkit: interrupted"


# --- the command, stopped by a real Ctrl-C ---------------------------------------


@dataclass
class Stopped:
    """How a command ended after a SIGINT."""

    status: int
    stdout: str
    stderr: str  # ANSI codes and spinner frames taken out
    frames: str  # the spinner's frames, ANSI codes taken out
    waited: float  # seconds from the SIGINT to the command's exit
    group: int  # the command's process group (a Spark JVM runs in it)


def _abkit() -> list[str]:
    script = Path(sys.executable).with_name("abkit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "abkit_cli.main"]


def interrupted(args: list[str], after: str, delay: float, timeout: float = 180) -> Stopped:
    """Run ``abkit ARGS`` with standard error on a pseudo-terminal and send SIGINT to
    its process group ``delay`` seconds after ``after`` shows on standard error."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [*_abkit(), *args],
        stdin=subprocess.PIPE,  # held open and empty: "-" waits for it
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        process_group=0,
    )
    os.close(slave)
    raw, seen, sent = b"", None, None
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closed: the command ended
                    chunk = b""
                raw += chunk
                if not chunk:
                    break
            elif process.poll() is not None:
                break
            now = time.monotonic()
            if seen is None and after.encode() in raw:
                seen = now
            if seen is not None and sent is None and now - seen >= delay:
                os.killpg(process.pid, signal.SIGINT)
                sent = now
            if now > deadline:
                raise AssertionError(f"no exit within {timeout} s: {raw[-2000:]!r}")
        status = process.wait(timeout=30)
        ended = time.monotonic()
        stdout = process.stdout.read().decode() if process.stdout else ""
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        os.close(master)
    text = _ANSI.sub("", raw.decode(errors="replace")).replace("\r", "")
    assert sent is not None, f"the command ended before {after!r} showed: {text[-3000:]}"
    return Stopped(
        status=status,
        stdout=stdout,
        stderr=_SPINNER.sub("", text),
        frames=" ".join(_SPINNER.findall(text)),
        waited=ended - sent,
        group=process.pid,
    )


def group_ends(group: int, within: float) -> bool:
    """Whether every process of ``group`` ends within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def assert_stopped_cleanly(stopped: Stopped) -> None:
    assert stopped.status == interrupt.EXIT_STATUS, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    lines = [line for line in stopped.stderr.splitlines() if line.strip()]
    assert lines[-1] == "abkit: interrupted", stopped.stderr[-3000:]
    assert stopped.stdout == ""  # stopped before any report


def _export(folder: Path, users: int, events: int) -> list[str]:
    """An assignments table and an events table of ``events`` events over two weeks
    (session starts, AI outputs, shares), written as Parquet within a second or two."""
    rng = np.random.default_rng(1)
    day_us = 86_400_000_000
    start = np.datetime64("2025-01-06T00:00:00", "us")
    assigned = start + rng.integers(0, 14 * day_us, users).astype("timedelta64[us]")
    variant = np.where(rng.random(users) < 0.5, "control", "treatment")
    unit = rng.integers(0, users, events)
    stamps = assigned[unit] + rng.integers(0, 14 * day_us, events).astype("timedelta64[us]")
    kinds = np.array(["session_start", "ai_output", "share"])
    event = kinds[rng.choice(3, events, p=[0.25, 0.7, 0.05])]
    session = unit * 100 + rng.integers(0, 20, events)
    pl.DataFrame(
        {"user_id": np.arange(users), "variant": variant, "assigned_at": assigned}
    ).with_columns(pl.col("assigned_at").dt.replace_time_zone("UTC")).write_parquet(
        folder / "assignments.parquet"
    )
    pl.DataFrame(
        {"user_id": unit, "timestamp": stamps, "event": event, "session_id": session}
    ).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC")).write_parquet(
        folder / "events.parquet"
    )
    return [str(folder / "assignments.parquet"), str(folder / "events.parquet")]


@pytest.fixture(scope="module")
def large_export(tmp_path_factory) -> list[str]:
    """Six million events: the pass over them takes several seconds on Polars and on
    DuckDB (which scans, joins and de-duplicates them once)."""
    return _export(tmp_path_factory.mktemp("large"), users=200_000, events=6_000_000)


def test_ctrl_c_during_the_polars_pass(large_export):
    export = large_export
    stopped = interrupted(["analyze", *export], after=PASS, delay=0.5)
    assert_stopped_cleanly(stopped)
    assert stopped.waited < 10


def test_ctrl_c_during_the_duckdb_pass(large_export):
    required("duckdb")
    export = large_export
    stopped = interrupted(["analyze", *export, "--engine", "duckdb"], after=PASS, delay=1.5)
    assert_stopped_cleanly(stopped)
    assert stopped.waited < 30
    # the clock of the progress display kept counting while DuckDB held the thread
    shown = re.findall(rf"{PASS} \(per-unit metrics\) \((\d+) s in all", stopped.frames)
    assert len(set(shown)) >= 2, stopped.frames[-2000:]


@pytest.mark.spark
def test_ctrl_c_during_the_spark_pass(tmp_path):
    required("pyspark.sql")
    export = _export(tmp_path, users=5_000, events=150_000)
    stopped = interrupted(["analyze", *export, "--engine", "spark"], after=PASS, delay=1.0)
    assert_stopped_cleanly(stopped)
    assert stopped.waited < 15
    assert group_ends(stopped.group, within=10)  # the JVM does not work on for nobody
    # the progress display showed the running Spark stages' tasks
    assert re.search(r"Spark: \d+ of \d+ tasks", stopped.frames), stopped.frames[-2000:]


def test_ctrl_c_outside_the_engines_reading_standard_input():
    stopped = interrupted(["analyze", "-"], after="reading the export", delay=0.3)
    assert_stopped_cleanly(stopped)
    assert stopped.waited < 5
