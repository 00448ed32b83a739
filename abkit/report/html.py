"""HTML table for notebooks (``AnalysisResult._repr_html_``); every string from the data
is escaped with :func:`html.escape`."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from abkit.report.format import (
    SEGMENT_HEADER,
    TABLE_HEADER,
    detail_sections,
    method_legend,
    paired_design,
    pval,
    result_cells,
    segment_rows,
    segment_title,
    show_controls,
    table_notes,
)

if TYPE_CHECKING:
    from abkit.result import AnalysisResult

_COLOURS = {"good": "#0072B2", "bad": "#D55E00", "neutral": "inherit"}


def render_html(res: AnalysisResult) -> str:
    srm = res.srm
    parts = [f"<h4>A/B result: {escape(res.name)}</h4>"]
    for w in res.warnings:
        parts.append(f'<p style="color:#D55E00"><b>Warning:</b> {escape(w)}</p>')
    design = (
        escape(paired_design(res))
        if srm is None
        else f"Sample ratio: <b>{'MISMATCH' if srm.mismatch else 'ok'}</b> (chi-square p = "
        f"{pval(srm.p_value)})"
    )
    parts.append(
        f"<p>{design} &middot; unit {escape(res.unit)} &middot; control "
        f"{escape(res.control)} &middot; alpha {res.alpha}</p>"
    )
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in TABLE_HEADER) + "</tr>"]
    for r in res.results:
        *cells, decision = result_cells(r)
        rows.append(
            "<tr>"
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + f'<td style="color:{_COLOURS[r.decision.tone]}" title="'
            + f'{escape(r.decision.meaning)}">{escape(decision)}</td></tr>'
        )
    parts.append("<table>" + "".join(rows) + "</table>")
    notes = [*table_notes(res), "Methods: " + "; ".join(method_legend(res)) + "."]
    notes += [
        f"{title.split(' (')[0]}, {r.metric} / {r.variant}: {line}"
        for title, entries in detail_sections(res)
        for r, line in entries
    ]
    parts.append("<p><small>" + "<br>".join(escape(n) for n in notes) + "</small></p>")
    for r in res.results:
        for b in r.segments:
            parts.append(f"<h5>{escape(segment_title(r, b, res.alpha))}</h5>")
            head = "".join(f"<th>{h}</th>" for h in SEGMENT_HEADER)
            body = "".join(
                "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                for row in segment_rows(r, b)
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
            parts.append(
                "<p><small>"
                + "<br>".join(escape(x) for x in [f"p adj.: {b.correction}", *b.warnings])
                + "</small></p>"
            )
    return show_controls("\n".join(parts))
