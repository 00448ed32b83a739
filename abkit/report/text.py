"""Plain-text report for the terminal, rendered from an :class:`AnalysisResult`.

The results table and the detail tables are laid out wide (one row per result) when
they fit ``width`` columns, and otherwise as one short block per row, so that nothing
wraps mid-token at 80 columns.  Prose lines are wrapped at ``width``; no line has trailing spaces.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from abkit.report.format import (
    JUDGED_HEADER,
    JUDGED_SECTION,
    SEGMENT_HEADER,
    TABLE_HEADER,
    audit_header,
    audit_rows,
    conf_label,
    data_notes,
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
    result_cells,
    segment_rows,
    segment_title,
    sequential_line,
    sequential_methods,
    table_notes,
)
from abkit.wording import p_phrase, pct, show_controls

if TYPE_CHECKING:
    from abkit.result import AnalysisResult


def _wide(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [x.rstrip() for x in out]


def _fitted(
    header: tuple[str, ...], rows: list[list[str]], width: int | None, indent: str
) -> list[str]:
    """A table indented by ``indent``: wide when it fits ``width`` columns, otherwise
    one wrapped line per row, its first cell and then each other cell after its
    column's name ("judge only: control 0.59, treatment 0.75, …")."""
    wide = _wide(header, rows)
    if width is None or max(len(indent + x) for x in wide) <= width:
        return [indent + x for x in wide]
    out: list[str] = []
    for row in rows:
        # a cell and its column's name are not split across lines: joined by no-break
        # spaces while wrapping (textwrap breaks only at ASCII whitespace)
        cells = ", ".join(
            f"{name} {cell}".replace(" ", _NO_BREAK)
            for name, cell in zip(header[1:], row[1:], strict=True)
        )
        wrapped = _wrap(f"{row[0]}: {cells}", width, indent)
        out.extend(line.replace(_NO_BREAK, " ") for line in wrapped)
    return out


_NO_BREAK = "\u00a0"


def _compact(rows: list[list[str]], conf: str) -> list[str]:
    out: list[str] = []
    for metric, variant, control, treatment, effect, ci, lift, lift_ci, p, by, decision in rows:
        out += [
            f"{metric} / {variant}: {decision.upper()}",
            f"  control {control}, treatment {treatment}",
            f"  effect {effect} {ci} ({conf} CI)",
            f"  lift {lift} {lift_ci}, p {p}",
            f"  decided by {by}",
        ]
    return out


def _wrap(text: str, width: int | None, indent: str = "") -> list[str]:
    if width is None:
        return [indent + text]
    return textwrap.wrap(
        text,
        width=max(width, 40),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_text(result: AnalysisResult, width: int | None = None) -> str:
    """The terminal report; ``width`` is the terminal's width (None: no limit)."""
    res, srm = result, result.srm
    conf = conf_label(res.alpha)
    lines: list[str] = []

    def say(text: str, indent: str = "") -> None:
        lines.extend(_wrap(text, width, indent))

    say(
        f"{report_title(res)}   unit: {res.unit}   control: {res.control}   "
        f"alpha: {res.alpha}   input: {res.input_kind}"
    )
    units = inference_units(res)
    if units is not None:
        say(f"B2B mode: {units} are the units of inference")
    if res.export_end:
        say(f"Export end: {res.export_end}")
    if srm is None:
        say(paired_design(res))
    else:
        status = "MISMATCH" if srm.mismatch else "ok"
        observed = ", ".join(f"{v} {n:,}" for v, n in srm.observed.items())
        say(f"Sample ratio: {status} (chi-square {p_phrase(srm.p_value)}; {observed})")
    for w in res.warnings:
        say(f"WARNING: {w}")
    lines.append("")
    rows = [result_cells(r) for r in res.results]
    wide = _wide(TABLE_HEADER, rows)
    if width is None or max(len(x) for x in wide) <= width:
        lines += wide
    else:
        lines += _compact(rows, conf)
    lines.append("")
    for note in table_notes(res):
        say(note)
    lines.append("Methods:")
    for entry in method_legend(res):
        say(entry, "  ")
    guards = [r for r in res.results if r.guardrail]
    if guards:
        lines.append("")
        lines.append("Guardrails (one-sided non-inferiority against the margin):")
        for r in guards:
            g = r.guardrail
            assert g is not None
            say(
                f"{r.metric} / {r.variant}: {r.decision.outcome.upper()}"
                + (f" — {r.decision.caution}" if r.decision.caution else "")
                + f" (margin "
                f"{margin_text(r)}; {p_phrase(g.p_value, 'fixed-horizon NI p')}, {g.test}"
                + (
                    f"; decided by {r.decision.method} {r.decision.where}, "
                    f"{p_phrase(r.decision.p_value)}"
                    if r.decision.basis.startswith("sequential")
                    else ""
                )
                + ")",
                "  ",
            )
    for title, entries in detail_sections(res):
        lines.append("")
        say(f"{title}:")
        for r, line in entries:
            say(f"{r.metric} / {r.variant}: {line}", "  ")
    judged = [r for r in res.results if r.judged is not None]
    if judged:
        lines.append("")
        say(f"{JUDGED_SECTION}:")
        for r in judged:
            say(judged_title(r), "  ")
            lines.extend(_fitted(JUDGED_HEADER, judged_rows(r), width, "    "))
            lines.append("")
            lines.extend(_fitted(audit_header(r), audit_rows(r), width, "    "))
            say(judged_footer(r), "    ")
            if noise_header(r):
                lines.append("")
                lines.extend(_fitted(noise_header(r), noise_rows(r), width, "    "))
    for r in res.results:
        for b in r.segments:
            lines.append("")
            say(segment_title(r, b, res.alpha) + f"; p adj. = {b.correction} across segments")
            lines.extend(_fitted(SEGMENT_HEADER, segment_rows(r, b), width, "  "))
            for w in b.warnings:
                say(f"warning: {w}", "  ")
    sequential = [(r, sequential_line(r)) for r in res.results]
    sequential = [(r, s) for r, s in sequential if s]
    if sequential:
        lines.append("")
        say(f"Sequential monitoring ({sequential_methods(res)}):")
        for r, s in sequential:
            say(f"{r.metric} / {r.variant}: {s}", "  ")
    # sequential warnings are global (shown once at the top), not repeated per result
    notes = grouped_warnings(res)
    if notes:
        lines.append("")
        lines.append("Warnings by result:")
        for where, w in notes:
            say(f"{where}: {w}", "  ")
    if res.session_depth:
        lines.append("")
        lines.append("Session depth shape (AI interactions per session):")
        for metric, by_variant in res.session_depth.items():
            for v, shape in by_variant.items():
                say(
                    f"{metric} / {v}: {shape.sessions:,} sessions, mean {num(shape.mean)}, "
                    f"median {num(shape.median)}, 1 interaction "
                    f"{pct(shape.share_one).lstrip('+')}, "
                    f"20+ {pct(shape.share_power).lstrip('+')}"
                    + ("  BIMODAL (power-user split)" if shape.bimodal else ""),
                    "  ",
                )
    for metric, block in res.adoption.items():
        lines.append("")
        lines.append(f"Adoption ({metric}):")
        for row in block.by_variant:
            accounts = f", {row.accounts} accounts" if row.accounts is not None else ""
            say(
                f"{row.variant}: {pct(row.rate).lstrip('+')} of {row.users:,} users"
                f"{accounts}; per adopter {num(row.events_per_adopter)} AI events on "
                f"{num(row.active_days_per_adopter)} active days",
                "  ",
            )
        for col, seg_rows in block.segments.items():
            say(
                f"by {col}: "
                + "; ".join(
                    f"{r.segment[col]} / {r.variant} {pct(r.rate).lstrip('+')} (n={r.users:,})"
                    for r in seg_rows
                ),
                "  ",
            )
    lines.append("")
    say(
        "Rows: "
        + "; ".join(
            f"{t}: {c.read:,} read, {c.used:,} used, {c.excluded:,} excluded"
            for t, c in res.rows.items()
        )
    )
    for e in res.exclusions:
        say(f"excluded {e.rows:,} {e.table} row(s): {e.reason}", "  ")
    for metric, note in data_notes(res):
        say(f"note: {note}" if metric == "all metrics" else f"note: {metric}: {note}", "  ")
    return show_controls("\n".join(line.rstrip() for line in lines))
