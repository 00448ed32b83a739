"""HTML table for notebooks (``AnalysisResult._repr_html_``); every string from the data
is escaped with :func:`html.escape`."""

from __future__ import annotations

from html import escape
from typing import Any

from abkit.report.format import decision_label, pval, result_cells

_COLOURS = {"better": "#0072B2", "pass": "#0072B2", "worse": "#D55E00", "fail": "#D55E00"}


def render_html(d: dict[str, Any]) -> str:
    exp, srm = d["experiment"], d["srm"]
    parts = [f"<h4>A/B result: {escape(exp['name'])}</h4>"]
    for w in d["warnings"]:
        parts.append(f'<p style="color:#D55E00"><b>Warning:</b> {escape(w)}</p>')
    status = "MISMATCH" if srm["mismatch"] else "ok"
    parts.append(
        f"<p>Sample ratio: <b>{status}</b> (chi-square p = {pval(srm['p_value'])}) "
        f"&middot; unit {escape(exp['unit'])} &middot; control "
        f"{escape(exp['control'])} &middot; alpha {exp['alpha']}</p>"
    )
    head = (
        "metric",
        "variant",
        "control",
        "treatment",
        "effect",
        "CI",
        "lift",
        "lift CI",
        "p",
        "p adj",
        "method",
        "decision",
    )
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in d["results"]:
        colour = _COLOURS.get(r["decision"], "inherit")
        cells = [*result_cells(r), r["method"]]
        rows.append(
            "<tr>"
            + "".join(f"<td>{escape(str(c))}</td>" for c in cells)
            + f'<td style="color:{colour}">{escape(decision_label(r))}</td></tr>'
        )
    parts.append("<table>" + "".join(rows) + "</table>")
    return "\n".join(parts)
