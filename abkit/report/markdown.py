"""Markdown summary for pull-request reviews, rendered from ``AnalysisResult.to_dict()``.

Every piece of text that comes from the data (experiment, variant and metric
names, reasons quoting values) is escaped so that it cannot inject markup, links
or HTML into the review.
"""

from __future__ import annotations

import re
from typing import Any

from abkit.report.format import (
    b2b_line,
    decision_label,
    num,
    pct,
    pval,
    result_cells,
    sequential_lines,
)

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:@])")
_ICON = {
    "better": "✅ better",
    "worse": "❌ worse",
    "guardrail pass": "✅ guardrail pass",
    "guardrail fail": "❌ guardrail fail",
    "guardrail inconclusive": "⚠️ guardrail inconclusive",
}


def escape(text: Any) -> str:
    """Backslash-escape Markdown punctuation and flatten newlines."""
    return _SPECIAL.sub(r"\\\1", str(text).replace("\r", " ").replace("\n", " "))


def _verdict_table(d: dict[str, Any]) -> list[str]:
    conf = f"{1 - d['experiment']['alpha']:.0%}"
    out = [
        f"| metric | variant | control | treatment | effect ({conf} CI) | lift ({conf} CI)"
        " | p | p adj | method | decision |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in d["results"]:
        metric, variant, control, treatment, effect, ci, lift, lift_ci, p, p_adj = result_cells(r)
        label = decision_label(r)
        out.append(
            f"| {escape(metric)} | {escape(variant)} | {control} | {treatment} | "
            f"{effect} {ci} | {lift} {lift_ci} | {p} | {p_adj} | {escape(r['method'])} "
            f"| {_ICON.get(label, label)} |"
        )
    return out


def _srm_line(d: dict[str, Any]) -> str:
    srm = d["srm"]
    return (
        f"**Sample ratio:** {'❌ MISMATCH' if srm['mismatch'] else '✅ ok'} "
        f"(chi-square p = {pval(srm['p_value'])}; "
        + ", ".join(f"{escape(v)}: {n:,}" for v, n in srm["observed"].items())
        + ")"
    )


def _quality(d: dict[str, Any]) -> list[str]:
    out = ["", "### Sample ratio and data quality", "", _srm_line(d), ""]
    for t, c in d["rows"].items():
        out.append(
            f"- {escape(t)}: {c['read']:,} rows read, {c['used']:,} used, "
            f"{c['excluded']:,} excluded"
        )
    if d["exclusions"]:
        out += ["", "| table | reason | rows |", "|---|---|---|"]
        out += [
            f"| {escape(e['table'])} | {escape(e['reason'])} | {e['rows']:,} |"
            for e in d["exclusions"]
        ]
    for metric, notes in d["metric_notes"].items():
        label = "all metrics" if metric == "(all)" else escape(metric)
        out += [f"- {label}: {escape(n)}" for n in notes]
    return out


def _details(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    b2b = [(r, b2b_line(r)) for r in d["results"]]
    if any(line for _, line in b2b):
        out += ["", "### B2B cross-checks (accounts are the units of inference)", ""]
        out += [
            f"- **{escape(r['metric'])} / {escape(r['variant'])}**: {escape(line)}"
            for r, line in b2b
            if line
        ]
    sequential = [(r, sequential_lines(r)) for r in d["results"]]
    sequential = [(r, s) for r, s in sequential if s]
    if sequential:
        out += ["", f"### Sequential monitoring: {escape(sequential[0][1][1])}", ""]
        out += [
            f"- **{escape(r['metric'])} / {escape(r['variant'])}**: {escape(s[0])}"
            for r, s in sequential
        ]
    if d["session_depth"]:
        out += [
            "",
            "### Session depth shape",
            "",
            "| metric | variant | sessions | mean | median | 1 interaction | 20+ | bimodal |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for metric, by_variant in d["session_depth"].items():
            for v, s in by_variant.items():
                out.append(
                    f"| {escape(metric)} | {escape(v)} | {s['sessions']:,} | "
                    f"{num(s['mean'])} | {num(s['median'])} | "
                    f"{pct(s['share_one']).lstrip('+')} | "
                    f"{pct(s['share_20_plus']).lstrip('+')} | "
                    f"{'⚠️ yes' if s['bimodal'] else 'no'} |"
                )
    warned = [(r["metric"], r["variant"], w) for r in d["results"] for w in r["warnings"]]
    if warned:
        out += ["", "<details><summary>Warnings by result</summary>", ""]
        out += [f"- **{escape(m)} / {escape(v)}**: {escape(w)}" for m, v, w in warned]
        out += ["", "</details>"]
    return out


def _mode(exp: dict[str, Any]) -> str:
    if exp.get("mode") != "b2b":
        return ""
    return f" · **B2B mode**: accounts ({escape(exp.get('account'))}) are the units of inference"


def render_markdown(d: dict[str, Any], images: list[tuple[str, str]] | None = None) -> str:
    """PR-review summary: verdict table first, then sample ratio and data quality, then
    details and plots.  A sample-ratio mismatch or other global warning is shown above
    everything.  ``images`` are (relative path, caption) pairs."""
    exp = d["experiment"]
    out = [f"## A/B result: {escape(exp['name'])}", ""]
    out += [f"> ⚠️ {escape(w)}" for w in d["warnings"]]
    if d["warnings"]:
        out.append("")
    out += [
        f"Unit: {escape(exp['unit'])}{_mode(exp)} · control: **{escape(exp['control'])}** · "
        f"alpha {exp['alpha']} · p adj: {exp['correction']} · input: {exp['input']} · "
        f"{_srm_line(d)}",
        "",
    ]
    out += _verdict_table(d)
    out += _quality(d)
    out += _details(d)
    if images:
        out += ["", "### Plots", ""]
        for path, caption in images:
            out += [f"**{escape(caption)}**", "", f"![{escape(caption)}]({path})", ""]
    out.append("")
    return "\n".join(out)
