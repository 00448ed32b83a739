"""Ctrl-C during long engine work: recognise it whatever the engine made of it, and
stop the engine's work at once.

A Ctrl-C reaches Python as :class:`KeyboardInterrupt`, but an engine running a query
often turns it into an error of its own: DuckDB stops the query and raises
``RuntimeError("Query interrupted")`` (or :class:`duckdb.InterruptException` when
its connection was interrupted), and a Spark query whose jobs were cancelled fails
with a ``Py4JJavaError`` saying so.  :func:`is_interrupt` recognises all of these, so
that code catching an engine's errors (:func:`abkit.engine.events.event_units`) lets
a Ctrl-C through instead of reporting it as bad input.

An engine notices a SIGINT only when it next checks for one, which DuckDB does
between parts of its work: seconds, or tens of seconds on a large export.  While
:func:`watching` runs, a thread woken by the signal itself interrupts the DuckDB
connections registered with :func:`cancel_on_interrupt` and cancels the jobs of the
running Spark session (:func:`cancel_engine_work`), so that the query stops within
a fraction of a second and the JVM does not keep working for nobody.  The ``abkit``
command watches every command so, and exits with :data:`EXIT_STATUS` and one line on
standard error (after :func:`stopped`); a notebook sees :class:`KeyboardInterrupt`.

Nothing here imports an engine: an engine's types and sessions are looked up only
when the engine was already imported.

Examples
--------
>>> from abkit.interrupt import is_interrupt
>>> is_interrupt(KeyboardInterrupt())
True
>>> is_interrupt(ValueError("bad column"))
False
>>> try:
...     try:
...         raise KeyboardInterrupt
...     except KeyboardInterrupt:
...         raise ValueError("could not process the events") from None
... except ValueError as exc:
...     is_interrupt(exc)  # an error raised while handling a Ctrl-C
True
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any

EXIT_STATUS = 130  # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C
MESSAGE = "interrupted"

# DuckDB's message when a SIGINT stops a query it runs (a plain RuntimeError)
_DUCKDB_INTERRUPTED = "Query interrupted"
# Spark's DAG scheduler: "Job 3 cancelled as part of cancellation of all jobs", "Job 3
# cancelled because SparkContext was shut down", "Stage 5 cancelled", and Spark 4's
# error class for the same
_SPARK_CANCELLED = re.compile(r"\b(?:Job|Stage) \d+ cancelled\b|\bSPARK_JOB_CANCELLED\b")

# DuckDB connections to interrupt on Ctrl-C: weakly held where the type allows it, so
# that registering a connection does not keep it open
_connections: weakref.WeakSet[Any] = weakref.WeakSet()
_held: list[Any] = []
_lock = threading.Lock()


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C, as Python or an engine reports it.

    Parameters
    ----------
    exc : BaseException
        An exception just caught.

    Returns
    -------
    bool
        True for :class:`KeyboardInterrupt`, DuckDB's interrupted query
        (``RuntimeError("Query interrupted")``, :class:`duckdb.InterruptException`),
        a Spark job or stage cancelled (as :func:`cancel_engine_work` and PySpark's
        own SIGINT handler do), and any exception raised while handling one of these
        (found through ``__cause__`` and ``__context__``), as an error that wraps an
        engine's error is.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_one(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_one(exc: BaseException) -> bool:
    if isinstance(exc, KeyboardInterrupt):
        return True
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None:
        interrupted = getattr(duckdb, "InterruptException", None)
        if isinstance(interrupted, type) and isinstance(exc, interrupted):
            return True
        if type(exc) is RuntimeError and str(exc) == _DUCKDB_INTERRUPTED:
            return True
    if type(exc).__module__.startswith(("py4j", "pyspark")):
        return bool(_SPARK_CANCELLED.search(_text(exc)))
    return False


def _text(exc: BaseException) -> str:
    """The message of an exception; a Py4JJavaError asks the JVM for it, which fails
    once the connection is gone."""
    try:
        return str(exc)
    except Exception:
        return ""


def cancel_on_interrupt(connection: Any) -> None:
    """Interrupt ``connection`` when a Ctrl-C arrives while :func:`watching` runs.

    Parameters
    ----------
    connection : duckdb.DuckDBPyConnection
        Any object with an ``interrupt()`` method that may be called from another
        thread; DuckDB's stops the connection's running query at once, where a SIGINT
        alone is noticed only when DuckDB next checks for one.
    """
    with _lock:
        try:
            _connections.add(connection)
        except TypeError:  # a type without weak references: held until the process ends
            if not any(held is connection for held in _held):
                _held.append(connection)


def active_spark_context() -> Any:
    """The running SparkContext, or None; looked up only when PySpark was imported,
    and without calling the JVM."""
    pyspark = sys.modules.get("pyspark")
    spark_context = getattr(pyspark, "SparkContext", None)
    return getattr(spark_context, "_active_spark_context", None)


def cancel_engine_work() -> None:
    """Interrupt the registered DuckDB connections' queries and cancel the jobs of the
    running Spark session, so that no engine keeps working for a query nobody waits
    for.  Polars has no work outside the calling thread.

    May be called from any thread; never raises: a connection closed meanwhile, or a
    JVM gateway broken by the interrupt, is left as it is.
    """
    with _lock:
        connections = [*_connections, *_held]
    for connection in connections:
        with suppress(Exception):
            connection.interrupt()
    context = active_spark_context()
    if context is not None:
        # the gateway may be gone already: the JVM dies with this process then
        with suppress(Exception):
            context.cancelAllJobs()


class _DropInterruptRecords(logging.Filter):
    """Drop log records that carry a Ctrl-C's traceback.  When a Ctrl-C breaks a call
    to the JVM, py4j logs it with ``logging.exception`` on the root logger (which
    then gets a handler printing on standard error, :func:`logging.basicConfig`),
    and closing the broken connection may log a broken pipe on
    ``py4j.clientserver``."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        return not (info and info[1] is not None and is_interrupt(info[1]))


# where the engines log a Ctrl-C's traceback: the root logger and py4j's own
_LOGGERS = ("", "py4j", "py4j.java_gateway", "py4j.clientserver")


@contextmanager
def watching() -> Iterator[None]:
    """Run a block in which a Ctrl-C stops the engines' work at once and unwinds the
    block cleanly.

    - A thread woken by the signal itself (Python's wake-up file descriptor, written
      by the C-level handler even while the main thread is inside an engine) calls
      :func:`cancel_engine_work`; the main thread still gets its
      :class:`KeyboardInterrupt`, or the engine's error for it.
    - The first Ctrl-C raises :class:`KeyboardInterrupt`; those that follow within
      :data:`GRACE` seconds are ignored, so that they do not break the clean-up on
      the way out (Polars raises a Ctrl-C again after stopping its query, and an
      impatient second press is common); a later one ends the process at once
      (:func:`claim_sigint`).
    - The tracebacks py4j logs on a Ctrl-C are left out of the log.

    Outside the main thread, or where SIGINT is ignored, only the log filter applies;
    the wake-up thread also stays off when an event loop's wake-up descriptor is in
    use.

    Yields
    ------
    None
        The block runs watched; afterwards the thread ends, the previous wake-up
        descriptor returns, and so does the previous SIGINT handler unless a Ctrl-C
        arrived (the process is then on its way out, and a Ctrl-C while an engine
        shuts down at exit should not print a traceback either).
    """
    drop = _DropInterruptRecords()
    # a logger's filters see only the records logged on it, not its children's
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    receive, send = socket.socketpair()
    send.setblocking(False)  # the C-level handler must never wait on a full buffer
    handler = signal.getsignal(signal.SIGINT)
    # not in another thread, nor where SIGINT is ignored (a background job of a script)
    main = threading.current_thread() is threading.main_thread() and handler != signal.SIG_IGN
    woken = False
    if main:
        _first[:], _calls[:] = [], []
        claim_sigint()
        previous = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
        woken = previous == -1
        if not woken:  # an event loop's descriptor: put it back
            signal.set_wakeup_fd(previous)
    try:
        if woken:
            watcher = threading.Thread(
                target=_watch, args=(receive,), name="abkit-interrupt", daemon=True
            )
            watcher.start()
        else:
            receive.close()
        yield
    finally:
        if woken:
            signal.set_wakeup_fd(-1)
        send.close()  # the watching thread reads what is left, then the end of the stream
        if woken:  # the signals it passes on arrive while this block's handler is in place
            watcher.join(timeout=2.0)
        if main and not _first:  # after a Ctrl-C the process is on its way out: keep ours
            signal.signal(signal.SIGINT, _DEFAULT if handler is None else handler)
        for logger in loggers:
            logger.removeFilter(drop)


def _watch(receive: socket.socket) -> None:
    """On each SIGINT written to the wake-up descriptor, cancel the engines' work and,
    unless the main thread handles it within :data:`_HANDLED_WITHIN` seconds, pass
    the signal on to the main thread.

    The kernel gives a process's signal to any one of its threads; when that is not
    the main thread, a main thread waiting in a system call (reading standard
    input) is not woken, and Python's handler waits with it.  Nor is it when the
    handler in place restarts interrupted calls, as the one Polars installs on
    import does (pola-rs/polars#21739): that flag is cleared first.  The signal
    passed on comes back through the descriptor once: it is not passed on again.
    """
    main = threading.main_thread().ident
    echoes = 0  # signals passed on whose byte has not come back yet
    with receive:
        while True:
            try:
                data = receive.recv(64)
            except OSError:
                return
            if not data:
                return
            for number in data:
                if number != signal.SIGINT:
                    continue
                if echoes:
                    echoes -= 1
                    continue
                calls = len(_calls)
                cancel_engine_work()
                time.sleep(_HANDLED_WITHIN)
                if main is None or len(_calls) != calls:
                    continue
                with suppress(OSError, ValueError):
                    signal.siginterrupt(signal.SIGINT, True)
                    signal.pthread_kill(main, signal.SIGINT)
                    echoes += 1


_HANDLED_WITHIN = 0.1  # seconds


GRACE = 2.0  # seconds after a Ctrl-C in which another one is ignored
_DEFAULT = signal.default_int_handler
_first: list[float] = []  # when the first Ctrl-C under watch arrived
_calls: list[float] = []  # when the handler ran, each time


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C raises :class:`KeyboardInterrupt`; another within
    :data:`GRACE` seconds is ignored; one after that ends the process at once, with
    status :data:`EXIT_STATUS` (the clean-up is stuck, or swallowed the first).

    A Ctrl-C counts as the first one unless an interrupt is already on its way out:
    Polars raises its own KeyboardInterrupt for a Ctrl-C during a query, and this
    handler then runs for the same signal while the program unwinds.
    """
    now = time.monotonic()
    _calls.append(now)
    handling = sys.exc_info()[1]
    if not _first and not (handling is not None and is_interrupt(handling)):
        _first.append(now)
        raise KeyboardInterrupt
    if not _first:
        _first.append(now)
    if now - _first[0] < GRACE:
        return
    cancel_engine_work()
    with suppress(Exception):
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h")  # the spinner hides the cursor: show it again
        sys.stderr.write(f"abkit: {MESSAGE}\n")
        sys.stderr.flush()
    os._exit(EXIT_STATUS)


def claim_sigint() -> None:
    """Handle Ctrl-C as :func:`watching` describes, replacing the handler an engine
    installed when it started.

    PySpark installs one when its session starts, which cancels the jobs from inside
    the very call into the JVM that the signal interrupted; that call fails and logs
    a traceback.  Under :func:`watching` the jobs are cancelled from another thread
    instead.  Only the main thread can set a handler: elsewhere nothing changes.
    """
    with suppress(ValueError):
        if signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
            signal.signal(signal.SIGINT, _on_sigint)


def stopped() -> None:
    """Clean up after a Ctrl-C in a command, once its block has unwound: cancel the
    engines' work, and keep a further Ctrl-C (while an engine shuts down at exit)
    from printing a traceback (:func:`claim_sigint`), and keep the JVM's log of its
    shutdown off the terminal (:func:`silence_spark_log`), so that the command's last
    line is its own."""
    if not _first:  # a KeyboardInterrupt raised by other means than our handler
        _first.append(time.monotonic())
    claim_sigint()
    cancel_engine_work()
    silence_spark_log()


def silence_spark_log() -> None:
    """Turn the running Spark session's log off, when one runs.

    After its jobs were cancelled, the JVM shuts down once this process exits, and on
    the way its executor and scheduler log the tasks they can no longer start
    ("Task ... rejected from ThreadPoolExecutor[Terminated]"), with Java stack
    traces, on the standard error this process shares: after the command's own last
    line, a Ctrl-C would look like a crash.  Never raises.
    """
    context = active_spark_context()
    if context is not None:
        with suppress(Exception):
            context.setLogLevel("OFF")
