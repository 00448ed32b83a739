"""Progress of a long analysis, on standard error when it is a terminal.

The library marks its stages with :func:`step` ("reading the export", "the pass over
the events", "testing share_rate (3 of 13)", "drawing the plots"); nothing is shown
unless a caller installed a reporter with :func:`reporting`, as the ``abkit`` command
does.  The reporter draws a spinner with the current stage and its elapsed time, and
a line for each finished stage that took a second or more, with rich; it stays
silent when standard error is not a terminal (a pipe, a file, CI logs), so that
scripts and ``--format json`` see nothing but their output.

Examples
--------
>>> from abkit import progress
>>> progress.step("nothing is shown: no reporter is installed")
>>> with progress.reporting(enabled=False):
...     progress.step("nor here")
"""

from __future__ import annotations

import sys
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
    spinner = Spinner("dots", "starting")
    with Live(spinner, console=console, transient=True, refresh_per_second=12.5) as live:

        def show(text: str) -> None:
            text = escape(text)  # a metric name is data, not markup
            now = time.monotonic()
            if labels[0] and now - starts[0] >= _LOGGED:
                console.print(f"[dim]  {labels[0]}: {now - starts[0]:.1f} s[/dim]")
            labels[0], starts[0] = text, now
            spinner.update(text=f"{text} [dim]({now - start:.0f} s in all)[/dim]")
            live.refresh()  # every stage is drawn at least once, however short

        _show = show
        try:
            yield
        finally:
            _show = previous


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
