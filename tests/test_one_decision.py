"""One decision per result: text, Markdown, HTML, JSON and the forest plot all state the
decision of the typed ``MetricResult.decision``, for fixed-horizon tests, every
sequential method, guardrails and B2B."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape

import pytest
from matplotlib.colors import to_hex

import abkit
from abkit.api import AnalysisResult
from abkit.plots.style import BETTER, NEUTRAL, WORSE
from tests.conftest import ERRORS, SHARE, analyze_example, analyze_small_b2b

TONE = {"good": BETTER, "bad": WORSE, "neutral": NEUTRAL}


# a p95 latency guardrail: in B2B mode tested by re-assigning accounts
P95_GUARDRAIL = {
    "name": "p95_latency",
    "type": "quantile",
    "column": "ai_output.latency_ms",
    "q": 0.95,
    "guardrail": True,
    "relative_margin": 0.25,
    "direction": "decrease",
}

CASES = {
    "fixed": lambda: analyze_example(None),
    "msprt": lambda: analyze_example("msprt"),
    "cs": lambda: analyze_example("cs"),
    "gst": lambda: analyze_example("gst"),
    "b2b": lambda: analyze_small_b2b(SHARE, ERRORS, P95_GUARDRAIL),
    "quantile": lambda: _quantiles(),
    "paired": lambda: _paired(),
}


def _paired() -> AnalysisResult:
    """A shadow replay: judge pass rate better, latency a guardrail, tokens worse."""
    from abkit.dev.replay import simulate_replay

    replay = simulate_replay(users=200, judge_lift=0.1, latency_lift=-0.1, tokens_lift=0.1, seed=9)
    return abkit.analyze(replay, {"experiment": {"control": "live", "variant": "version"}})


def _quantiles() -> AnalysisResult:
    """p95 latency (worse) and a p50 guardrail beside a ratio, on simulated events."""
    from abkit.dev.simulate import simulate

    e = simulate(users=3_000, days=8, enrol_days=3, seed=5, latency_user_sd=0.6, latency_lift=0.3)
    latency = {"type": "quantile", "column": "ai_output.latency_ms", "direction": "decrease"}
    metrics = [
        {"name": "p95_latency", "q": 0.95, **latency},
        {"name": "p50_latency", "q": 0.5, "guardrail": True, "relative_margin": 0.5, **latency},
        SHARE,
    ]
    return abkit.analyze(e.assignments, {"metrics": metrics}, events=e.events)


@pytest.fixture(scope="module", params=list(CASES))
def result(request) -> AnalysisResult:
    return CASES[request.param]()


def _row(lines: list[str], metric: str, variant: str) -> str:
    return next(
        ln for ln in lines if re.match(rf"\W*{re.escape(metric)}\W+{re.escape(variant)}\W", ln)
    )


def test_every_output_states_the_same_decision(result):
    d = json.loads(result.to_json())
    text = result.to_text().splitlines()
    md = result.to_markdown().replace("\\", "").splitlines()
    html_rows = unescape(result.to_html()).split("</table>")[0].split("<tr>")[2:]  # verdicts
    page = unescape(result.to_html_page(plots=False))
    page_rows = page.split("</table>")[0].split("<tr>")[2:]  # report.html's verdict table
    ax = result.plot("forest").axes[0]
    decisions_axis = result.plot("forest").axes[1]  # right-hand labels: decision, effect
    forest_labels = [t.get_text() for t in decisions_axis.get_yticklabels()][::-1]
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"][::-1]
    assert len(html_rows) == len(result.results) == len(d["results"])
    for i, r in enumerate(result.results):
        outcome, label = r.decision.outcome, r.decision.label
        assert d["results"][i]["decision"]["outcome"] == outcome
        assert d["results"][i]["decision"]["caution"] == r.decision.caution
        assert d["results"][i]["decision"]["p_value"] == pytest.approx(r.decision.p_value)
        assert _row(text, r.metric, r.variant).endswith(label)
        md_cell = _row(md, r.metric, r.variant).rstrip(" |").rsplit("|", 1)[1]
        assert outcome in md_cell and (r.decision.caution or "") in md_cell
        assert html_rows[i].split("<td")[-1].split(">", 1)[1].startswith(label)
        assert page_rows[i].split("<td")[-1].split(">", 1)[1].startswith(label)
        assert forest_labels[i].startswith(label + ":")
        assert to_hex(markers[i].get_color()) == to_hex(TONE[r.decision.tone])
        filled = to_hex(markers[i].get_markerfacecolor()) != "#ffffff"
        assert filled == r.decision.decided
    # a saved results.json reads back to the same decisions and the same reports
    back = AnalysisResult.from_dict(d)
    assert back.to_json() == result.to_json()
    assert back.to_markdown() == result.to_markdown()
    assert back.to_text() == result.to_text()


def test_sequential_decision_governs_and_fixed_horizon_is_labelled(result):
    for r in result.results:
        if r.sequential is None:
            assert r.fixed_horizon_valid
            continue
        assert r.decision == r.sequential.decision
        assert r.decision.basis in ("sequential", "sequential non-inferiority")
        assert not r.fixed_horizon_valid
    if any(r.sequential for r in result.results):
        assert "not valid under repeated looks" in result.to_text()
        assert "not valid under repeated looks" in result.to_markdown()


def test_guardrails_show_margin_and_non_inferiority_p(result):
    guards = [r for r in result.results if r.guardrail]
    assert guards
    text, md = result.to_text(), result.to_markdown().replace("\\", "")
    for r in guards:
        row = _row(text.splitlines(), r.metric, r.variant)
        assert "NI (" in row and abkit.report.format.p_phrase(r.decision.p_value) in row
        assert f"| {r.metric} | {r.variant} |" in md
    assert "### Guardrails" in md and "margin" in md


def test_reports_are_identical_across_processes(tmp_path):
    """String hashing differs between processes; nothing in a report may depend on it."""
    script = (
        "from tests.conftest import analyze_example; "
        "r = analyze_example(); print(r.to_markdown()); print(r.to_text())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(outs) == 1
