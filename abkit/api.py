"""The result as users hold it: :class:`AnalysisResult` and :class:`MetricResult` with
their renderings (terminal text, Markdown, HTML, figures, the report bundle) and their
notebook displays.

The data of a result and its JSON form are :mod:`abkit.result`, which the report and
plot layers read; the renderings are added here, above both, so that no layer imports
one above it.  :func:`abkit.analyze` and :meth:`AnalysisResult.from_dict` return these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from abkit import plots as drawing
from abkit import result
from abkit.bundle import write_bundle
from abkit.report.format import arms_cell, decided_by, lift_cell
from abkit.report.html import render_html, render_html_page, render_metric_html
from abkit.report.markdown import render_markdown
from abkit.report.text import render_text
from abkit.wording import show_controls


class MetricResult(result.MetricResult):
    """One metric × treatment comparison against control (the fields:
    :class:`abkit.result.MetricResult`), shown as one line and, in a notebook, as its
    verdict and detail rows."""

    def __repr__(self) -> str:
        """One line a reader can act on (also inside ``result.results``):
        ``<MetricResult share_rate / v2: better; 0.08 → 0.095, lift … ; decided by …>``."""
        return show_controls(
            f"<MetricResult {self.metric} / {self.variant}: {self.decision.label}; "
            f"{arms_cell(self)}, lift {lift_cell(self)}; decided by {decided_by(self)}>"
        )

    def _repr_html_(self) -> str:
        """The verdict row and its detail row, as in the notebook view of the result."""
        return render_metric_html(self)


@dataclass(kw_only=True, repr=False)
class AnalysisResult(result.AnalysisResult):
    """Everything one analysis found (the fields: :class:`abkit.result.AnalysisResult`),
    with its renderings.

    Examples
    --------
    >>> import numpy as np, polars as pl, abkit
    >>> rng = np.random.default_rng(7)
    >>> units = pl.DataFrame({"user_id": range(400), "variant": ["control", "v2"] * 200,
    ...                       "converted": (rng.random(400) < 0.3).astype(int)})
    >>> res = abkit.analyze(units)
    >>> type(res).__name__, [r.metric for r in res.results]
    ('AnalysisResult', ['converted'])
    >>> res.to_markdown().splitlines()[0]
    '## A/B result'
    >>> abkit.AnalysisResult.from_dict(res.to_dict()).to_json() == res.to_json()
    True
    """

    # the same field, holding the results with their renderings (a list is invariant,
    # so the narrower element type is declared against the base's)
    results: list[MetricResult]  # type: ignore[assignment]

    def to_text(self, width: int | None = None) -> str:
        """The terminal report; ``width`` picks the layout (None: wide, no wrapping)."""
        return render_text(self, width)

    def to_markdown(self) -> str:
        """The report as Markdown, for a pull request or a wiki page."""
        return render_markdown(self)

    def to_html(self) -> str:
        """The notebook view (an HTML fragment): verdict table, warnings, effects and
        tests, guardrails, row accounting and details."""
        return render_html(self)

    def to_html_page(self, plots: bool = True) -> str:
        """A self-contained HTML report (``abkit analyze --format html``): the notebook
        view and, with ``plots``, every figure embedded as a base64 PNG."""
        figures = drawing.plan(self) if plots else []
        images = [(caption, drawing.png_bytes(make())) for _, caption, make in figures]
        return render_html_page(self, images)

    def plot(
        self, kind: str = "forest", metric: str | None = None, variant: str | None = None
    ) -> Any:
        """A matplotlib Figure of one of :data:`abkit.plots.PLOT_KINDS`: ``forest``
        (default), ``retention``, ``session_depth``, ``sequential``, ``bootstrap``,
        ``accounts``, ``time_to_value``, ``novelty``, ``segments`` or ``quantiles``
        (``metric`` and ``variant`` pick the result of the per-result kinds).  In a
        notebook it displays inline, without ``%matplotlib inline`` or importing pyplot."""
        return drawing.draw(self, kind, metric, variant)

    def save(self, folder: str | Path) -> dict[str, Any]:
        """Write report.md, report.html, results.json and plots/*.png into ``folder``,
        first removing the files an earlier save listed in the folder's manifest
        (``.abkit-manifest.json``); nothing else in the folder is touched."""
        return write_bundle(self, folder)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self.to_text()
