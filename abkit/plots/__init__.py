"""Figures for reports and notebooks, drawn from an :class:`AnalysisResult`.

``plan(d)`` lists every figure a result supports (file stem, caption, drawing
function); ``save_all(d, folder)`` writes them as PNG.  matplotlib is imported only
when a figure is drawn.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abkit import progress
from abkit.result import TimeToValueDetail

if TYPE_CHECKING:
    from abkit.result import AnalysisResult as Result
PLOT_KINDS = (
    "forest",
    "retention",
    "session_depth",
    "sequential",
    "bootstrap",
    "accounts",
    "time_to_value",
    "novelty",
    "segments",
    "quantiles",
)


def _slug(*parts: str) -> str:
    """A file-name-safe stem; a short hash keeps distinct names distinct."""
    text = "_".join(parts)
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:50] or "plot"
    return f"{clean}_{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def plan(d: Result) -> list[tuple[str, str, Callable[[], Any]]]:
    """Every figure this result supports: (file stem, caption, draw)."""
    from abkit.plots import figures as f

    out: list[tuple[str, str, Callable[[], Any]]] = []
    if f.forest_rows(d):  # no blank figures: a forest needs one result with a lift
        out.append(("forest", "Effects of every metric and treatment", lambda: f.forest(d)))
    if d.retention_curve:
        out.append(("retention", "Retention curve", lambda: f.retention(d)))
    for metric in d.session_depth:
        out.append(
            (
                _slug("session_depth", metric),
                f"Session depth: {metric}",
                partial(f.session_depth, d, metric),
            )
        )
    for r in d.results:
        m, v = r.metric, r.variant
        if r.decision.outcome == "not computable":
            continue  # no data to draw: the reason stands in every report instead
        if r.sequential and r.sequential.looks and r.sequential.looks_with_data:
            out.append(
                (
                    _slug("sequential", m, v),
                    f"Sequential path: {m}, {v}",
                    partial(f.sequential, d, m, v),
                )
            )
        if r.segments:
            out.append(
                (
                    _slug("segments", m, v),
                    f"Effect by segment: {m}, {v}",
                    partial(f.segments, d, m, v),
                )
            )
        if any(math.isfinite(p.relative_effect) for p in r.quantiles):
            out.append(
                (
                    _slug("quantiles", m, v),
                    f"Quantile profile: {m}, {v}",
                    partial(f.quantiles, d, m, v),
                )
            )
        if r.novelty and r.novelty.verdict != "not computable":
            out.append(
                (
                    _slug("novelty", m, v),
                    f"Lift by time since assignment: {m}, {v}",
                    partial(f.novelty, d, m, v),
                )
            )
        b2b = r.b2b
        if isinstance(b2b, TimeToValueDetail):
            if b2b.time_to_value is not None:  # no curves without a test
                out.append(
                    (
                        _slug("time_to_value", m, v),
                        f"Time to value: {m}, {v}",
                        partial(f.time_to_value, d, m, v),
                    )
                )
        elif b2b is not None and b2b.distribution is not None and b2b.distribution.counts:
            out.append(
                (
                    _slug("bootstrap", m, v),
                    f"Account bootstrap: {m}, {v}",
                    partial(f.bootstrap, d, m, v),
                )
            )
            out.append(
                (
                    _slug("accounts", m, v),
                    f"Accounts by arm: {m}, {v}",
                    partial(f.accounts, d, m, v),
                )
            )
    return out


def save_all(d: Result, folder: str | Path) -> list[tuple[Path, str]]:
    """Draw and save every supported figure; returns (path, caption) pairs."""
    from abkit.plots.style import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    figures = plan(d)
    for i, (stem, caption, draw) in enumerate(figures):
        progress.step("drawing the plots", i, len(figures))
        path = folder / f"{stem}.png"
        save(draw(), path)
        written.append((path, caption))
    return written


def png_bytes(fig: Any) -> bytes:
    """A figure as PNG bytes, as :func:`abkit.plots.style.save` writes it."""
    from io import BytesIO

    from abkit.plots.style import DPI

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def show_inline() -> None:
    """Let IPython show a matplotlib Figure as its PNG (a fresh kernel shows only
    ``<Figure size 800x500 with 2 Axes>`` for a Figure made without pyplot, until
    ``%matplotlib inline`` runs).  Does nothing outside IPython, and keeps a PNG
    formatter the user or a backend already registered."""
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", {})
    png = formatters.get("image/png")
    if png is None:
        return
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        png.for_type(Figure, png_bytes)


def draw(
    d: Result, kind: str = "forest", metric: str | None = None, variant: str | None = None
) -> Any:
    """One figure by kind (see ``PLOT_KINDS``); in IPython it displays inline."""
    from abkit.plots import figures as f

    show_inline()
    if kind not in PLOT_KINDS:
        raise ValueError(f"unknown plot '{kind}'; choose from {', '.join(PLOT_KINDS)}")
    fn = getattr(f, kind)
    if kind in ("forest", "retention"):
        return fn(d)
    if kind == "session_depth":
        return fn(d, metric)
    if metric is None:
        candidates = [
            r
            for r in d.results
            if (
                kind == "sequential"
                and r.sequential
                and r.sequential.looks
                and r.sequential.looks_with_data
            )
            or (kind == "novelty" and r.novelty)
            or (kind == "segments" and r.segments)
            or (kind == "quantiles" and r.quantiles)
            or (kind not in ("sequential", "novelty", "segments", "quantiles") and r.b2b)
        ]
        if not candidates:
            raise ValueError(f"this result has nothing to draw as '{kind}'")
        metric = candidates[0].metric
    return fn(d, metric, variant)
