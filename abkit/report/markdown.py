"""Markdown summary for pull-request reviews, rendered from an :class:`AnalysisResult`.

Every piece of text that comes from the data (experiment, variant and metric names,
reasons quoting values) goes through :func:`escape`, which keeps it from forming
markup, links, mentions or HTML while leaving ordinary punctuation readable in the
raw file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
from abkit.wording import p_phrase, pct, pval

if TYPE_CHECKING:
    from abkit.analysis.decision import Decision
    from abkit.result import AnalysisResult

# Characters that open inline markup (emphasis, code, links, HTML, tables, strikethrough,
# entities) and '@' (mentions, e-mail autolinks) are escaped; '_' only where it could
# open or close emphasis (GFM ignores it inside a word, so user_id stays as it is).
# Autolinks need a scheme ("://") or a domain ("www.example", "evil.com"), so ':' before
# '//' and '.' before a letter are escaped too; "0.05", "v1.2" and sentences stay.
_ALWAYS = re.compile(r"([\\`*\[\]<>|~&@]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_LINKISH = re.compile(r":(?=//)|\.(?=[A-Za-z])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ICON = {
    "better": "✅ better",
    "worse": "❌ worse",
    "guardrail pass": "✅ guardrail pass",
    "guardrail fail": "❌ guardrail fail",
    "guardrail inconclusive": "⚠️ guardrail inconclusive",
    "continue": "⏳ continue",
    "futility stop": "⏹️ futility stop",
}


def _badge(decision: Decision) -> str:
    """The outcome with its icon, and a guardrail's caution flagged after it."""
    badge = _ICON.get(decision.outcome, decision.outcome)
    return badge + (f" ⚠️ {decision.caution}" if decision.caution else "")


def escape(text: object) -> str:
    """Escape Markdown markup, autolinks and mentions; flatten newlines and control
    characters to spaces."""
    flat = _CONTROL.sub(" ", str(text))
    return _LINKISH.sub(lambda m: "\\" + m.group(0), _ALWAYS.sub(r"\\\1", flat))


def _keep(cell: str) -> str:
    """A value cell that breaks only between a value and its interval or around an
    arrow: no-break spaces keep '+6.06 %' and '[-3.61, +16.70]' whole."""
    return cell.replace(" %", "\u00a0%").replace(" pp", "\u00a0pp").replace(", ", ",\u00a0")


def _p_kept(text: str) -> str:
    """'p = 0.0123' and 'p < 0.0001' kept on one line in a table cell."""
    return text.replace("p = ", "p\u00a0=\u00a0").replace("p < ", "p\u00a0<\u00a0")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    """A table of cells from the data (escaped, values kept whole)."""
    out = [_row([escape(h) for h in header]), "|" + "---|" * len(header)]
    return out + [_row([_keep(escape(c)) for c in row]) for row in rows]


def _verdict_table(res: AnalysisResult) -> list[str]:
    """The compact verdict table a reviewer reads first (five columns that fit GitHub's
    880 px), then the effects in metric units, tests and p-values in a folded table."""
    conf = conf_label(res.alpha)
    header = [*VERDICT_HEADER[:3], f"lift [{conf} CI]", VERDICT_HEADER[4]]
    out = [_row(header), "|---|---|---|---|---|"]
    for r in res.results:
        metric, arm, values, lift, _ = verdict_cells(r)
        cells = [escape(metric), escape(arm), _keep(values), _keep(lift), _badge(r.decision)]
        out.append(_row(cells))
    out += [
        "",
        f"lift: treatment / control − 1 with its {conf} CI (on the log scale); "
        "decision: what the governing test concludes (details below).",
    ]
    return out


def _detail_table(res: AnalysisResult) -> list[str]:
    conf = conf_label(res.alpha)
    header = [*DETAIL_HEADER[:2], f"effect [{conf} CI]", *DETAIL_HEADER[3:]]
    out = [
        "",
        "<details><summary>Effects in metric units, tests and p-values</summary>",
        "",
        _row(header),
        "|---|---|---|---|---|---|",
    ]
    for r in res.results:
        metric, arm, effect, test, p, by = detail_cells(r)
        out.append(_row([escape(metric), escape(arm), _keep(effect), test, p, _p_kept(by)]))
    out.append("")
    out += [escape(n) for n in table_notes(res)]
    out += ["", "Methods:", ""]
    out += [f"- {escape(m)}" for m in method_legend(res)]
    out += ["", "</details>"]
    return out


def _srm_line(res: AnalysisResult) -> str:
    srm = res.srm
    if srm is None:
        return f"**{escape(paired_design(res))}**"
    return (
        f"**Sample ratio:** {'❌ MISMATCH' if srm.mismatch else '✅ ok'} "
        f"(chi-square {p_phrase(srm.p_value)}; "
        + ", ".join(f"{escape(v)}: {n:,}" for v, n in srm.observed.items())
        + ")"
    )


def _guardrails(res: AnalysisResult) -> list[str]:
    guards = [r for r in res.results if r.guardrail]
    if not guards:
        return []
    out = [
        "",
        "### Guardrails (one-sided non-inferiority against the margin)",
        "",
        "| metric | arm | margin | fixed-horizon NI p | decided by | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in guards:
        g = r.guardrail
        assert g is not None
        out.append(
            f"| {escape(r.metric)} | {escape(r.variant)} | {escape(margin_text(r))} | "
            f"{pval(g.p_value)} | {_p_kept(decided_by(r))} | {_badge(r.decision)} |"
        )
    return out


def _quality(res: AnalysisResult) -> list[str]:
    title = "Data quality" if res.srm is None else "Sample ratio and data quality"
    out = ["", f"### {title}", "", _srm_line(res), ""]
    for t, c in res.rows.items():
        out.append(f"- {escape(t)}: {c.read:,} rows read, {c.used:,} used, {c.excluded:,} excluded")
    if res.exclusions:
        out += ["", "| table | reason | rows |", "|---|---|---|"]
        out += [f"| {escape(e.table)} | {escape(e.reason)} | {e.rows:,} |" for e in res.exclusions]
    out += [f"- {escape(metric)}: {escape(note)}" for metric, note in data_notes(res)]
    return out


def _result_warnings(res: AnalysisResult) -> list[str]:
    """Warnings that change how a result reads, right under the verdict table (the
    sequential ones are global and shown once at the top)."""
    warned = grouped_warnings(res)
    if not warned:
        return []
    out = ["", "### Warnings by result", ""]
    return out + [f"- ⚠️ **{escape(where)}**: {escape(w)}" for where, w in warned]


def _details(res: AnalysisResult) -> list[str]:
    out: list[str] = []
    for title, entries in detail_sections(res):
        out += ["", f"### {title}", ""]
        out += [f"- **{escape(r.metric)} / {escape(r.variant)}**: {escape(x)}" for r, x in entries]
    judged = [r for r in res.results if r.judged is not None]
    if judged:
        out += ["", f"### {JUDGED_SECTION}"]
    for r in judged:
        out += ["", f"**{escape(judged_title(r))}**", ""]
        out += _table(JUDGED_HEADER, judged_rows(r))
        out += [""]
        out += _table(audit_header(r), audit_rows(r))
        out += ["", escape(judged_footer(r))]
        if noise_header(r):
            out += ["", *_table(noise_header(r), noise_rows(r))]
    for r in res.results:
        for b in r.segments:
            out += ["", f"### {escape(segment_title(r, b, res.alpha))}", ""]
            out += [f"p adj.: {b.correction} across the segments of {escape(b.column)}.", ""]
            out += ["| " + " | ".join(SEGMENT_HEADER) + " |"]
            out += ["|" + "---|" * len(SEGMENT_HEADER)]
            out += ["| " + " | ".join(escape(c) for c in row) + " |" for row in segment_rows(r, b)]
            out += [f"\n⚠️ {escape(w)}" for w in b.warnings]
    sequential = [(r, sequential_line(r)) for r in res.results]
    sequential = [(r, s) for r, s in sequential if s]
    if sequential:
        out += ["", f"### Sequential monitoring: {escape(sequential_methods(res))}", ""]
        out += [
            f"- **{escape(r.metric)} / {escape(r.variant)}**: {escape(s)}" for r, s in sequential
        ]
    if res.session_depth:
        out += [
            "",
            "### Session depth shape",
            "",
            "| metric | arm | sessions | mean | median | 1 interaction | 20+ | bimodal |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for metric, by_variant in res.session_depth.items():
            for v, s in by_variant.items():
                out.append(
                    f"| {escape(metric)} | {escape(v)} | {s.sessions:,} | "
                    f"{num(s.mean)} | {num(s.median)} | "
                    f"{pct(s.share_one).lstrip('+')} | "
                    f"{pct(s.share_power).lstrip('+')} | "
                    f"{'⚠️ yes' if s.bimodal else 'no'} |"
                )
    return out


def _mode(res: AnalysisResult) -> str:
    units = inference_units(res)
    return "" if units is None else f" · **B2B mode**: {escape(units)} are the units of inference"


def render_markdown(res: AnalysisResult, images: list[tuple[str, str]] | None = None) -> str:
    """PR-review summary: verdict table first, then the warnings that change its
    reading, guardrails, sample ratio and data quality, details and plots.  A
    sample-ratio mismatch or other global warning is shown above everything.
    ``images`` are (relative path, caption) pairs; without them there is no plot
    section."""
    out = [f"## {escape(report_title(res))}", ""]
    out += [f"> ⚠️ {escape(w)}" for w in res.warnings]
    if res.warnings:
        out.append("")
    out += [
        f"Unit: {escape(res.unit)}{_mode(res)} · control: **{escape(res.control)}** · "
        f"alpha {res.alpha} · p adj: {res.correction} · input: {res.input_kind} · "
        f"{_srm_line(res)}",
        "",
    ]
    out += _verdict_table(res)
    out += _result_warnings(res)
    out += _detail_table(res)
    out += _guardrails(res)
    out += _quality(res)
    out += _details(res)
    if images:
        out += ["", "### Plots", ""]
        for path, caption in images:
            out += [f"**{escape(caption)}**", "", f"![{escape(caption)}]({path})", ""]
    out.append("")
    return "\n".join(out)
