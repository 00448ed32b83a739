"""Figures and report bundles: expected elements, determinism, links, escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure

import abkit
from abkit.plots import draw, plan
from abkit.plots.style import save
from abkit_cli.main import cli
from tests.conftest import analyze_example, analyze_small_b2b

EXPORT = Path(__file__).resolve().parents[1] / "examples" / "ai_summary_export"


@pytest.fixture(scope="module")
def b2c():
    return analyze_example("cs")


@pytest.fixture(scope="module")
def b2b():
    return analyze_small_b2b(
        {"name": "share", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "ttv", "type": "time_to_value", "event": "error"},
    )


def test_forest_has_one_row_per_result_and_guardrail_margins(b2c):
    fig = b2c.plot("forest")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == len(b2c.results)
    assert "summary-prompt-v2" in ax.get_title(loc="left")
    assert "relative effect" in ax.get_xlabel()
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(dashed) == sum(r.guardrail is not None for r in b2c.results)
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert len(markers) == len(b2c.results)


def test_retention_curve_has_a_line_and_band_per_variant(b2c):
    ax = b2c.plot("retention").axes[0]
    assert len(ax.get_lines()) == 2
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 2
    assert ax.get_yscale() == "log" and "days after assignment" in ax.get_xlabel()
    assert {t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()} == {
        "control",
        "summary_v2",
    }


def test_session_depth_marks_one_and_twenty_plus(b2c):
    ax = b2c.plot("session_depth").axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert all("1 interaction" in t and "20+" in t for t in labels)
    assert any(ln.get_xdata()[0] == 20 for ln in ax.get_lines() if ln.get_linestyle() == "--")


def test_sequential_path_shows_band_estimate_fixed_ci_and_decision(b2c):
    ax = b2c.plot("sequential", metric="share_rate").axes[0]
    assert any(isinstance(c, PolyCollection) for c in ax.collections)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        "always-valid interval",
        "estimate",
        "fixed-horizon CI (not valid under repeated looks)",
    ]
    assert "asymptotic confidence sequence" in ax.get_title(loc="left")
    decision = next(r for r in b2c.results if r.metric == "share_rate").decision
    assert decision.outcome != "continue"
    assert any(t.get_text() == f"{decision.outcome} at day {decision.look}" for t in ax.texts)


def test_gst_looks_are_drawn_as_separate_repeated_intervals_not_a_path():
    result = abkit.analyze(
        EXPORT / "assignments.parquet",
        EXPORT / "experiment.toml",
        events=EXPORT / "events.parquet",
        sequential="gst",
    )
    ax = result.plot("sequential", metric="share_rate").axes[0]
    assert not any(isinstance(c, PolyCollection) for c in ax.collections)  # no band
    joined = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 2]
    assert joined == []
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "efficacy boundary (±c_k·se_k)"
    assert "estimate and repeated CI at each planned look" in labels
    from matplotlib.colors import to_hex

    from abkit.plots.style import WORSE

    ticks = [
        ln
        for ln in ax.get_lines()
        if ln.get_marker() == "_" and to_hex(ln.get_color()) == to_hex(WORSE)
    ]
    assert len(ticks) == 2  # upper and lower boundary, one tick per planned look each


def test_b2b_figures(b2b):
    ax = b2b.plot("accounts", metric="share").axes[0]
    assert sum(isinstance(c, PathCollection) for c in ax.collections) == 2
    ax = b2b.plot("bootstrap", metric="share").axes[0]
    assert "account bootstrap" in ax.get_title(loc="left")
    ax = b2b.plot("time_to_value", metric="ttv").axes[0]
    assert len([ln for ln in ax.get_lines() if ln.get_drawstyle() == "steps-post"]) == 2
    assert "Kaplan-Meier" in ax.get_title(loc="left")


def test_same_input_gives_the_same_bytes(b2c, tmp_path):
    for stem, _, make in plan(b2c)[:3]:
        save(make(), tmp_path / f"{stem}-1.png")
        save(make(), tmp_path / f"{stem}-2.png")
        assert (tmp_path / f"{stem}-1.png").read_bytes() == (
            tmp_path / f"{stem}-2.png"
        ).read_bytes()


def test_report_bundle_sections_and_links(b2c, tmp_path):
    from markdown_it import MarkdownIt

    written = b2c.save(tmp_path)
    md = written["report"].read_text()
    table = md.index("| metric | arm |")
    quality = md.index("### Sample ratio and data quality")
    plots = md.index("### Plots")
    assert table < quality < plots
    html = MarkdownIt("gfm-like").render(md)
    sources = [part.split('"')[0] for part in html.split('<img src="')[1:]]
    assert len(sources) == len(written["plots"]) >= 4
    for src in sources:
        assert (tmp_path / src).is_file(), src
    assert json.loads(written["results"].read_text()) == b2c.to_dict()


def test_abkit_report_redraws_the_same_bundle_from_json(b2c, tmp_path):
    first = b2c.save(tmp_path / "a")
    out = CliRunner().invoke(cli, ["report", str(first["results"]), "--out", str(tmp_path / "b")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "b" / "report.md").read_text() == first["report"].read_text()
    for p in first["plots"]:
        assert (tmp_path / "b" / "plots" / p.name).read_bytes() == p.read_bytes()


def test_report_command_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    out = CliRunner().invoke(cli, ["report", str(tmp_path / "x.json"), "--out", str(tmp_path)])
    assert out.exit_code == 2 and "not an abkit results.json" in out.output


def test_html_repr_escapes_names_from_the_data():
    import polars as pl

    evil = "<script>alert(1)</script>"
    units = pl.DataFrame(
        {"user_id": [1, 2, 3, 4], "variant": ["control", evil] * 2, "x": [1.0, 2.0, 3.0, 5.0]}
    )
    html = abkit.analyze(units)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_unknown_plot_kind_is_a_clear_error(b2c):
    with pytest.raises(ValueError, match="unknown plot"):
        draw(b2c, "pie")


def test_retention_curve_agrees_with_the_retention_metrics(b2c):
    """Two code paths: the curve's day-k share equals the dk_retention metric."""
    rows = {r.metric: r for r in b2c.results}
    for day in (1, 7, 14):
        metric = rows[f"d{day}_retention"]
        for variant, value, n in (
            ("control", metric.control_value, metric.control_n),
            ("summary_v2", metric.treatment_value, metric.treatment_n),
        ):
            curve = b2c.retention_curve[variant]
            k = curve.day.index(day)
            assert curve.eligible[k] == n
            assert curve.active[k] / curve.eligible[k] == pytest.approx(value, rel=1e-12)


def test_rendered_report_shows_names_without_escape_backslashes(b2c, b2b):
    from markdown_it import MarkdownIt

    html = MarkdownIt("gfm-like").render(b2c.to_markdown())
    assert "user_id" in html and "user\\_id" not in html
    html = MarkdownIt("gfm-like").render(b2b.to_markdown())
    assert "B2B mode" in html and "account_id" in html and "account\\_id" not in html


def test_raw_markdown_stays_readable(b2c):
    """Escaping keeps markup and links off without backslashes in ordinary text:
    numbers, parentheses, hyphens, colons and snake_case names read as they are."""
    md = b2c.to_markdown()
    for needle in ("\\.", "\\-", "\\(", "\\)", "\\:", "\\_"):
        assert needle not in md, needle
    assert "summary-prompt-v2" in md and "d1_retention" in md and "0.0026 †" in md
