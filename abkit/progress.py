"""Progress of a long analysis, on standard error when it is a terminal.

The library marks its stages with :func:`step` ("reading the export", "the pass over
the events", "testing share_rate (3 of 13)", "drawing the plots"); nothing is shown
unless a caller installed a reporter with :func:`reporting`, as the ``abkit`` command
does.  The reporter draws a spinner with the current stage and the time elapsed, which
keeps counting while an engine works (the pass over the events on DuckDB or Spark
holds the calling thread for minutes on a large export), with the progress of
Spark's running stages in tasks when a Spark session is at work, and a line for each
finished stage that took a second or more, with rich.  It stays silent when standard
error is not a terminal (a pipe, a file, CI logs), so that scripts and ``--format
json`` see nothing but their output.

Examples
--------
>>> from abkit import progress
>>> progress.step("nothing is shown: no reporter is installed")
>>> with progress.reporting(enabled=False):
...     progress.step("nor here")
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO

_show: Callable[[str], None] | None = None
_LOGGED = 1.0  # seconds: a finished stage that took as long keeps a line of its own


def step(text: str, index: int | None = None, total: int | None = None) -> None:
    """Mark the start of a stage (the previous one ends); a no-op without a reporter.

    Parameters
    ----------
    text : str
        What runs now, in a few words ("testing share_rate").
    index, total : int, optional
        The stage's place in a loop, counted from 0, and the loop's length: shown as
        "(3 of 13)".
    """
    if _show is not None:
        _show(text if index is None or total is None else f"{text} ({index + 1} of {total})")


def item(text: str, current: object, items: Sequence[object]) -> None:
    """:func:`step` for one element of a loop: "testing share_rate (3 of 13)".

    Parameters
    ----------
    text : str
        What runs now.
    current : object
        The loop's element (its place in ``items`` is shown).
    items : sequence
        What the loop runs over.
    """
    if _show is not None:
        step(text, list(items).index(current), len(items))


@contextmanager
def reporting(enabled: bool = True, stream: IO[str] | None = None) -> Iterator[None]:
    """Show the stages that :func:`step` marks while the block runs.

    Parameters
    ----------
    enabled : bool
        False (``--quiet``, or a report on standard output that a reader parses)
        shows nothing.
    stream : file, optional
        Where to draw (default: standard error); nothing is drawn unless it is a
        terminal.

    Yields
    ------
    None
        The block runs with the reporter installed; the previous one (if any) is
        restored afterwards, and the spinner is cleared.
    """
    global _show
    out = sys.stderr if stream is None else stream
    if not enabled or not _is_terminal(out):
        yield
        return
    from rich.console import Console
    from rich.live import Live
    from rich.markup import escape
    from rich.spinner import Spinner

    console = Console(file=out, highlight=False)
    previous = _show
    start = time.monotonic()
    labels, starts = [""], [start]  # the stage shown and when it started
    spinner = Spinner("dots")
    engine = _EngineTasks()

    def render() -> Spinner:
        # drawn on every refresh, so that the clock runs while an engine holds the
        # calling thread (DuckDB, Spark and Polars release the interpreter meanwhile)
        detail = f"; {engine.text}" if engine.text else ""
        total = time.monotonic() - start
        label = labels[0] or "starting"
        spinner.update(text=f"{label} [dim]({total:.0f} s in all{detail})[/dim]")
        return spinner

    engine.start()
    try:
        with Live(
            console=console, transient=True, refresh_per_second=12.5, get_renderable=render
        ) as live:

            def show(text: str) -> None:
                text = escape(text)  # a metric name is data, not markup
                now = time.monotonic()
                if labels[0] and now - starts[0] >= _LOGGED:
                    console.print(f"[dim]  {labels[0]}: {now - starts[0]:.1f} s[/dim]")
                labels[0], starts[0] = text, now
                live.refresh()  # every stage is drawn at least once, however short

            _show = show
            try:
                yield
            finally:
                _show = previous
    finally:
        engine.stop()


class _EngineTasks(threading.Thread):
    """Polls the running Spark session, twice a second, for the tasks of its active
    stages ("Spark: 37 of 200 tasks" in :attr:`text`, empty without a session).

    A thread of its own, because a call into the JVM can wait: the spinner's refresh
    (and clearing it after a Ctrl-C) never does.  Nothing is imported or asked when
    PySpark was not imported.
    """

    _EVERY = 0.5  # seconds

    def __init__(self) -> None:
        super().__init__(name="abkit-engine-progress", daemon=True)
        self.text = ""
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self._EVERY):
            self.text = _spark_tasks()

    def stop(self) -> None:
        self._done.set()


def _spark_tasks() -> str:
    """The tasks done of the running Spark stages, or "" when none runs."""
    from abkit.interrupt import active_spark_context

    context = active_spark_context()
    if context is None:
        return ""
    try:
        tracker = context.statusTracker()
        done = total = 0
        for stage in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
    except Exception:  # the session stopped meanwhile; nothing to show
        return ""
    return f"Spark: {done} of {total} tasks" if total else ""


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
