"""Number formatting shared by the text and Markdown reports."""

from __future__ import annotations

from typing import Any

from abkit.config import RATE_TYPES


def is_rate(metric_type: str) -> bool:
    return metric_type in RATE_TYPES


def num(value: Any, metric_type: str = "mean", signed: bool = False) -> str:
    """A metric value: rates as percentages (percentage points when signed)."""
    if value is None:
        return "n/a"
    if is_rate(metric_type):
        text = f"{value * 100:+.2f}" if signed else f"{value * 100:.2f}"
        return text + (" pp" if signed else " %")
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def pct(value: Any) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f} %"


def interval(ci: list[Any], metric_type: str = "mean") -> str:
    lo, hi = ci
    if lo is None or hi is None:
        return "n/a"
    return f"[{num(lo, metric_type, True)}, {num(hi, metric_type, True)}]"


def rel_interval(ci: list[Any]) -> str:
    lo, hi = ci
    return "n/a" if lo is None or hi is None else f"[{pct(lo)}, {pct(hi)}]"


def pval(p: Any) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def decision_label(result: dict[str, Any]) -> str:
    if result["guardrail"]:
        return f"guardrail {result['decision']}"
    return result["decision"]


def sequential_lines(result: dict[str, Any]) -> tuple[str, str] | None:
    """(current state, method) of a result's sequential block, or None."""
    seq = result.get("sequential")
    if not seq or not seq["looks"]:
        return None
    last = seq["looks"][-1]
    t = result["metric_type"]
    state = seq["decision"]
    if seq["decision_at"]:
        state += f" at look {seq['decision_look']} ({seq['decision_at']})"
    state += (
        f"; latest look {last['look']}: estimate {num(last['estimate'], t, True)}, "
        f"always-valid CI {interval(last['ci'], t)}, always-valid p = "
        f"{pval(last['p_value'])}"
    )
    return state, seq["method"]


def b2b_line(result: dict[str, Any]) -> str | None:
    """One line summarising a result's B2B cross-checks, or None."""
    b = result.get("b2b")
    if not b or "randomization" not in b:
        return None
    t = result["metric_type"]
    arms = ", ".join(f"{v}: {a['accounts']} accounts" for v, a in b["arms"].items())
    boot, cr2 = b["bootstrap"], b["cr2"]
    return (
        f"{arms}; {b['weighting']}-weighted; randomisation p = "
        f"{pval(b['randomization']['p_value'])}, CI {interval(b['randomization']['ci'], t)}; "
        f"bootstrap ({boot['resamples']:,}) percentile {interval(boot['percentile'], t)}, "
        f"bootstrap-t {interval(boot['studentized'], t)}; CR2 + Bell-McCaffrey "
        f"(df {cr2['df']:.1f}) p = {pval(cr2['p_value'])}, CI {interval(cr2['ci'], t)}"
    )


def result_cells(r: dict[str, Any]) -> list[str]:
    """The formatted cells every table shows for a result, in order: metric, variant,
    control, treatment, effect, CI, lift, lift CI, p, p adjusted."""
    t = r["metric_type"]
    return [
        r["metric"],
        r["variant"],
        num(r["control"]["value"], t),
        num(r["treatment"]["value"], t),
        num(r["effect"], t, True),
        interval(r["ci"], t),
        pct(r["relative_effect"]),
        rel_interval(r["relative_ci"]),
        pval(r["p_value"]),
        pval(r["p_value_adjusted"]),
    ]


_SHORT_METHODS = (
    ("Welch", "Welch t"),
    ("two-proportion", "z, 2 props"),
    ("delta-method", "delta z"),
    ("account-level randomisation", "randomisation"),
    ("restricted mean", "RMST, perm."),
)


def short_method(method: str) -> str:
    """A few words naming the test, for narrow tables (the full name is in the footer)."""
    return next(
        (short for prefix, short in _SHORT_METHODS if method.startswith(prefix)), method[:14]
    )
