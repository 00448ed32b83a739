"""HTML views of an :class:`AnalysisResult`: the notebook view (``_repr_html_``) and the
self-contained ``report.html`` that ``--out`` and ``--format html`` write.

Both read the typed result only, through the cells of :mod:`abkit.report.format`, so
they state the same decisions as the text, Markdown and JSON outputs.  Every string
from the data is escaped with :func:`html.escape`.  Styles are inline, so that a
notebook front end that drops ``<style>`` elements still left-aligns text columns and
keeps each value on one line (``white-space: nowrap``); a decision may wrap.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING

from abkit.report.format import (
    DETAIL_HEADER,
    JUDGED_HEADER,
    JUDGED_SECTION,
    SEGMENT_HEADER,
    VERDICT_HEADER,
    audit_header,
    audit_rows,
    conf_label,
    data_notes,
    decided_by,
    detail_cells,
    detail_sections,
    grouped_warnings,
    inference_units,
    judged_footer,
    judged_rows,
    judged_title,
    margin_text,
    method_legend,
    noise_header,
    noise_rows,
    num,
    paired_design,
    report_title,
    segment_rows,
    segment_title,
    sequential_line,
    sequential_methods,
    table_notes,
    verdict_cells,
)
from abkit.wording import p_phrase, pct, pval, show_controls

if TYPE_CHECKING:
    from abkit.result import AnalysisResult, MetricResult

_COLOURS = {"good": "#0072B2", "bad": "#D55E00", "neutral": "inherit"}
_CELL = "text-align:left;vertical-align:top;padding:3px 10px;border-bottom:1px solid #ddd"
_VALUE = f"{_CELL};white-space:nowrap"
_TABLE = "border-collapse:collapse;margin:6px 0 10px 0"
_WARN = "color:#B04A00"
_SMALL = "font-size:0.85em;color:#555"

_PAGE_CSS = """
body { margin: 0; background: #fff; color: #1f2328;
  font-family: -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  font-size: 15px; line-height: 1.45; }
main { box-sizing: border-box; max-width: 880px; padding: 12px 16px; }
h1 { font-size: 1.5em; margin: 0.3em 0; }
h2, h4 { font-size: 1.15em; margin: 1.2em 0 0.4em 0; }
figure { margin: 12px 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-weight: 600; }
"""


def _th(text: str) -> str:
    return f'<th style="{_CELL}">{escape(text)}</th>'


def _td(text: str, style: str = _VALUE) -> str:
    return f'<td style="{style}">{escape(text)}</td>'


_PARTS = re.compile(r" (?=\[)|(?<=→) ")
_NOWRAP = '<span style="white-space:nowrap">'


def _parts_td(text: str) -> str:
    """A cell that may wrap only between whole values: '+6.06 %' / '[-3.61, +16.70]',
    '28.73 % →' / '30.47 %'; each part stays on one line (white-space: nowrap)."""
    parts = [f"{_NOWRAP}{escape(part)}</span>" for part in _PARTS.split(text)]
    return f'<td style="{_CELL}">' + " ".join(parts) + "</td>"


def _words_td(text: str) -> str:
    """A cell of words that may wrap, its numbers whole: 'p = 0.0268', '5 %'."""
    kept = re.sub(r"(?<=\bp) ([<=]) ", "\u00a0\\1\u00a0", text).replace(" %", "\u00a0%")
    return f'<td style="{_CELL}">{escape(kept)}</td>'


def _table(header: Sequence[str], rows: Iterable[str]) -> str:
    head = "<tr>" + "".join(_th(h) for h in header) + "</tr>"
    return f'<table style="{_TABLE}">{head}{"".join(rows)}</table>'


def _list(items: Iterable[str], style: str = "") -> str:
    lis = "".join(f"<li>{item}</li>" for item in items)
    return f'<ul style="margin:4px 0;{style}">{lis}</ul>' if lis else ""


def _decision_td(r: MetricResult) -> str:
    d = r.decision
    style = f"{_CELL};color:{_COLOURS[d.tone]};font-weight:600"
    return f'<td style="{style}" title="{escape(d.meaning)}">{escape(d.label)}</td>'


def verdict_rows(results: Sequence[MetricResult]) -> list[str]:
    """The compact verdict table's rows (``VERDICT_HEADER``), the decision last."""
    rows = []
    for r in results:
        metric, arm, values, lift, _ = verdict_cells(r)
        cells = _td(metric) + _td(arm) + _parts_td(values) + _parts_td(lift)
        rows.append(f"<tr>{cells}{_decision_td(r)}</tr>")
    return rows


def _ci(alpha: float | None) -> str:
    return "CI" if alpha is None else f"{conf_label(alpha)} CI"


def _verdict_header(alpha: float | None) -> list[str]:
    return [*VERDICT_HEADER[:3], f"lift [{_ci(alpha)}]", VERDICT_HEADER[4]]


def _detail_table(results: Sequence[MetricResult], alpha: float | None) -> str:
    header = [*DETAIL_HEADER[:2], f"effect [{_ci(alpha)}]", *DETAIL_HEADER[3:]]
    rows = []
    for r in results:
        metric, arm, effect, test, p, by = detail_cells(r)
        cells = [_td(metric), _td(arm), _parts_td(effect), _td(test), _td(p), _words_td(by)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(header, rows)


def _design(res: AnalysisResult) -> str:
    srm = res.srm
    if srm is None:
        design = escape(paired_design(res))
    else:
        observed = ", ".join(f"{escape(v)} {n:,}" for v, n in srm.observed.items())
        status = "MISMATCH" if srm.mismatch else "ok"
        colour = f' style="{_WARN}"' if srm.mismatch else ""
        design = (
            f"Sample ratio: <b{colour}>{status}</b> (chi-square {p_phrase(srm.p_value)}; "
            f"{observed})"
        )
    units = inference_units(res)
    mode = (
        "" if units is None else f" &middot; B2B mode: {escape(units)} are the units of inference"
    )
    return (
        f"<p>Unit {escape(res.unit)}{mode} &middot; control <b>{escape(res.control)}</b> "
        f"&middot; alpha {res.alpha} &middot; p adj: {escape(res.correction)} &middot; "
        f"input: {escape(res.input_kind)}<br>{design}</p>"
    )


def _result_warnings(res: AnalysisResult) -> list[str]:
    """The warnings that change how a result reads, each once with the results it
    concerns (the global ones stand above the table)."""
    warned = grouped_warnings(res)
    if not warned:
        return []
    items = (f"⚠️ <b>{escape(where)}</b>: {escape(w)}" for where, w in warned)
    return ["<h4>Warnings by result</h4>", _list(items, style=_WARN)]


def _guardrails(res: AnalysisResult) -> list[str]:
    guards = [r for r in res.results if r.guardrail]
    if not guards:
        return []
    rows = []
    for r in guards:
        g = r.guardrail
        assert g is not None
        cells = [r.metric, r.variant, margin_text(r), pval(g.p_value)]
        by = _words_td(decided_by(r))
        rows.append("<tr>" + "".join(_td(c) for c in cells) + by + _decision_td(r) + "</tr>")
    header = ("metric", "arm", "margin", "fixed-horizon NI p", "decided by", "verdict")
    return [
        "<h4>Guardrails (one-sided non-inferiority against the margin)</h4>",
        _table(header, rows),
    ]


def _quality(res: AnalysisResult) -> list[str]:
    """The row accounting, exclusions and notes on the data."""
    title = "Data quality" if res.srm is None else "Sample ratio and data quality"
    rows = [
        "<tr>"
        + _td(t)
        + "".join(_td(f"{n:,}", f"{_VALUE};text-align:right") for n in (c.read, c.used))
        + _td(f"{c.excluded:,}", f"{_VALUE};text-align:right")
        + "</tr>"
        for t, c in res.rows.items()
    ]
    parts = [f"<h4>{title}</h4>", _table(("table", "rows read", "used", "excluded"), rows)]
    if res.exclusions:
        excluded = [
            "<tr>"
            + _td(e.table)
            + _td(e.reason, _CELL)
            + _td(f"{e.rows:,}", f"{_VALUE};text-align:right")
            + "</tr>"
            for e in res.exclusions
        ]
        parts.append(_table(("table", "excluded because", "rows"), excluded))
    notes = [f"{escape(metric)}: {escape(note)}" for metric, note in data_notes(res)]
    if notes:
        parts.append(_list(notes))
    return parts


def _details(res: AnalysisResult) -> list[str]:
    parts: list[str] = []
    for title, entries in detail_sections(res):
        parts.append(f"<h4>{escape(title)}</h4>")
        parts.append(
            _list(
                f"<b>{escape(r.metric)} / {escape(r.variant)}</b>: {escape(x)}" for r, x in entries
            )
        )
    judged = [r for r in res.results if r.judged is not None]
    if judged:
        parts.append(f"<h4>{escape(JUDGED_SECTION)}</h4>")
    for r in judged:
        parts.append(f"<p><b>{escape(judged_title(r))}</b></p>")
        tables = [(JUDGED_HEADER, judged_rows(r)), (audit_header(r), audit_rows(r))]
        if noise_header(r):
            tables.append((noise_header(r), noise_rows(r)))
        for i, (header, table) in enumerate(tables):
            trs = ["<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in table]
            parts.append(_table(header, trs))
            if i == 1:  # the audit's tests between the arms, under its table
                parts.append(f'<p style="{_SMALL}">{escape(judged_footer(r))}</p>')
    for r in res.results:
        for b in r.segments:
            parts.append(f"<h4>{escape(segment_title(r, b, res.alpha))}</h4>")
            rows = ["<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in segment_rows(r, b)]
            parts.append(_table(SEGMENT_HEADER, rows))
            notes = [f"p adj.: {escape(b.correction)}", *(f"⚠️ {escape(w)}" for w in b.warnings)]
            parts.append(f'<p style="{_SMALL}">' + "<br>".join(notes) + "</p>")
    sequential = [(r, s) for r in res.results if (s := sequential_line(r))]
    if sequential:
        parts.append(f"<h4>Sequential monitoring: {escape(sequential_methods(res))}</h4>")
        parts.append(
            _list(
                f"<b>{escape(r.metric)} / {escape(r.variant)}</b>: {escape(s)}"
                for r, s in sequential
            )
        )
    if res.session_depth:
        rows = []
        for metric, by_variant in res.session_depth.items():
            for v, shape in by_variant.items():
                cells = [
                    metric,
                    v,
                    f"{shape.sessions:,}",
                    num(shape.mean),
                    num(shape.median),
                    pct(shape.share_one).lstrip("+"),
                    pct(shape.share_power).lstrip("+"),
                    "yes" if shape.bimodal else "no",
                ]
                rows.append("<tr>" + "".join(_td(c) for c in cells) + "</tr>")
        header = ("metric", "arm", "sessions", "mean", "median", "1 interaction", "20+", "bimodal")
        parts += ["<h4>Session depth shape</h4>", _table(header, rows)]
    return parts


def _body(res: AnalysisResult, heading: str) -> list[str]:
    parts = [f"<{heading}>{escape(report_title(res))}</{heading}>"]
    parts += [f'<p style="{_WARN}"><b>⚠️ Warning:</b> {escape(w)}</p>' for w in res.warnings]
    parts.append(_design(res))
    parts.append(_table(_verdict_header(res.alpha), verdict_rows(res.results)))
    conf = conf_label(res.alpha)
    parts.append(
        f'<p style="{_SMALL}">lift: treatment / control − 1 with its {conf} CI (on the log '
        "scale); decision: what the governing test concludes (hover for its meaning).</p>"
    )
    parts += _result_warnings(res)
    parts.append("<h4>Effects in metric units, tests and p-values</h4>")
    parts.append(_detail_table(res.results, res.alpha))
    notes = [escape(n) for n in table_notes(res)]
    parts.append(f'<p style="{_SMALL}">' + "<br>".join(notes) + "</p>")
    parts.append(
        f'<p style="{_SMALL}">Methods:</p>'
        + _list((escape(m) for m in method_legend(res)), style=_SMALL)
    )
    parts += _guardrails(res)
    parts += _quality(res)
    parts += _details(res)
    return parts


def render_html(res: AnalysisResult) -> str:
    """The notebook view: the verdict table first, then the warnings, the effects in
    metric units with their tests, guardrails, the row accounting and the details."""
    return show_controls('<div class="abkit-result">\n' + "\n".join(_body(res, "h3")) + "\n</div>")


def render_html_page(res: AnalysisResult, images: Sequence[tuple[str, bytes]] = ()) -> str:
    """A self-contained HTML report: the notebook view and the plots, embedded as
    base64 PNG (``images``: (caption, PNG bytes) pairs), readable at 880 px."""
    parts = _body(res, "h1")
    if images:
        parts.append("<h2>Plots</h2>")
        for caption, png in images:
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f'<figure><figcaption>{escape(caption)}</figcaption><img alt="{escape(caption)}" '
                f'src="data:image/png;base64,{data}"></figure>'
            )
    return show_controls(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report_title(res))}</title><style>{_PAGE_CSS}</style></head>"
        "<body><main>\n" + "\n".join(parts) + "\n</main></body></html>\n"
    )


def render_metric_html(r: MetricResult) -> str:
    """One result's view in a notebook: its verdict row, then its effect, test and
    p-values, and the warnings it carries."""
    alpha = None  # a result alone does not know the analysis's alpha
    parts = [
        _table(_verdict_header(alpha), verdict_rows([r])),
        _detail_table([r], alpha),
    ]
    if r.warnings:
        parts.append(_list((f"⚠️ {escape(w)}" for w in r.warnings), style=_WARN))
    return show_controls('<div class="abkit-result">' + "".join(parts) + "</div>")
