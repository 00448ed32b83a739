"""Plain-text report for the terminal, rendered from ``AnalysisResult.to_dict()``."""

from __future__ import annotations

from typing import Any

from abkit.report.format import (
    b2b_line,
    decision_label,
    num,
    pct,
    pval,
    result_cells,
    sequential_lines,
    short_method,
)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def render_text(d: dict[str, Any]) -> str:
    exp, srm = d["experiment"], d["srm"]
    lines = [
        f"Experiment: {exp['name']}   unit: {exp['unit']}   control: {exp['control']}   "
        f"alpha: {exp['alpha']}   input: {exp['input']}"
    ]
    if exp.get("mode") == "b2b":
        lines.append(f"B2B mode: accounts ({exp['account']}) are the units of inference")
    if exp.get("export_end"):
        lines.append(f"Export end: {exp['export_end']}")
    status = "MISMATCH" if srm["mismatch"] else "ok"
    observed = ", ".join(f"{v} {n:,}" for v, n in srm["observed"].items())
    lines.append(f"Sample ratio: {status} (chi-square p = {pval(srm['p_value'])}; {observed})")
    for w in d["warnings"]:
        lines.append(f"WARNING: {w}")
    lines.append("")
    header = [
        "metric",
        "variant",
        "control",
        "treatment",
        "effect",
        "95% CI" if abs(exp["alpha"] - 0.05) < 1e-12 else f"{1 - exp['alpha']:.0%} CI",
        "lift",
        "lift CI",
        "p",
        "p adj",
        "test",
        "decision",
    ]
    rows = [[*result_cells(r), short_method(r["method"]), decision_label(r)] for r in d["results"]]
    lines += _table(header, rows)
    lines.append("")
    methods = sorted({r["method"] for r in d["results"]})
    lines.append(
        "Methods: " + "; ".join(methods) + f". p adj: {exp['correction']} across "
        "treatments per metric (guardrails: one-sided non-inferiority p-value)."
    )
    guards = [r for r in d["results"] if r["guardrail"]]
    if guards:
        lines.append("")
        lines.append("Guardrails (one-sided non-inferiority):")
        for r in guards:
            g = r["guardrail"]
            margin = pct(g["margin"]) if g["scale"] == "relative" else num(g["margin"])
            lines.append(
                f"  {r['metric']} / {r['variant']}: {g['verdict'].upper()} "
                f"(margin {margin.lstrip('+')} {g['scale']}, p = {pval(g['p_value'])})"
            )
    b2b = [(r, b2b_line(r)) for r in d["results"]]
    if any(line for _, line in b2b):
        lines.append("")
        lines.append("B2B cross-checks (accounts are the units of inference):")
        lines += [f"  {r['metric']} / {r['variant']}: {line}" for r, line in b2b if line]
    sequential = [(r, sequential_lines(r)) for r in d["results"]]
    sequential = [(r, s) for r, s in sequential if s]
    if sequential:
        lines.append("")
        lines.append(f"Sequential monitoring ({sequential[0][1][1]}):")
        lines += [f"  {r['metric']} / {r['variant']}: {s[0]}" for r, s in sequential]
    notes = [
        (r["metric"], r["variant"], w)
        for r in d["results"]
        for w in (*r["warnings"], *((r.get("sequential") or {}).get("warnings", [])))
    ]
    if notes:
        lines.append("")
        lines.append("Warnings by result:")
        lines += [f"  {m} / {v}: {w}" for m, v, w in notes]
    if d["session_depth"]:
        lines.append("")
        lines.append("Session depth shape (AI interactions per session):")
        for metric, by_variant in d["session_depth"].items():
            for v, s in by_variant.items():
                lines.append(
                    f"  {metric} / {v}: {s['sessions']:,} sessions, mean {num(s['mean'])}, "
                    f"median {num(s['median'])}, 1 interaction {pct(s['share_one']).lstrip('+')}, "
                    f"20+ {pct(s['share_20_plus']).lstrip('+')}"
                    + ("  BIMODAL (power-user split)" if s["bimodal"] else "")
                )
    for metric, block in d.get("adoption", {}).items():
        lines.append("")
        lines.append(f"Adoption ({metric}):")
        for row in block["by_variant"]:
            accounts = f", {row['accounts']} accounts" if "accounts" in row else ""
            lines.append(
                f"  {row['variant']}: {pct(row['rate']).lstrip('+')} of {row['users']:,} users"
                f"{accounts}; per adopter {num(row['events_per_adopter'])} AI events on "
                f"{num(row['active_days_per_adopter'])} active days"
            )
        for col, rows in block["segments"].items():
            lines.append(
                f"  by {col}: "
                + "; ".join(
                    f"{r[col]} / {r['variant']} {pct(r['rate']).lstrip('+')} (n={r['users']:,})"
                    for r in rows
                )
            )
    lines.append("")
    lines.append(
        "Rows: "
        + "; ".join(
            f"{t}: {c['read']:,} read, {c['used']:,} used, {c['excluded']:,} excluded"
            for t, c in d["rows"].items()
        )
    )
    for e in d["exclusions"]:
        lines.append(f"  excluded {e['rows']:,} {e['table']} row(s): {e['reason']}")
    lines += [f"  note: {n}" for n in d["metric_notes"].get("(all)", [])]
    return "\n".join(lines)
