"""Reports that fit where people read them: a pull request (GitHub's 880 px of content),
a notebook, a browser, a terminal and a folder that held an earlier report.

The width tests render the reports as a reader sees them: report.md through a
GitHub-flavoured renderer (markdown-it-py's gfm-like preset) with GitHub's table CSS,
report.html as written, both in headless Chromium at 880 px, and a script in the page
measures every table.  Without Chromium they skip, except under CI=true, where they
fail.  ABKIT_SCREENSHOTS=<folder> keeps the screenshots for a human to look at.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.api import AnalysisResult
from abkit.report.format import method_legend
from abkit.report.markdown import render_markdown
from abkit_cli.main import cli
from tests.browser import WIDTH, assert_nothing_cut_off, github_page, look
from tests.conftest import ERRORS, EXAMPLE, SHARE, analyze_example, analyze_small_b2b

ARGS = [
    str(EXAMPLE / "assignments.parquet"),
    str(EXAMPLE / "events.parquet"),
    "-c",
    str(EXAMPLE / "experiment.toml"),
]


def _verdict_lines(measured: dict) -> list[list[int]]:
    """Lines of text in each cell of each row of the verdict table (the first)."""
    return [row for row in measured["tables"][0]["lines"] if row]


@pytest.fixture(scope="module")
def example() -> AnalysisResult:
    return analyze_example()


def _crowded() -> AnalysisResult:
    """The example made as wide as a report gets: a long metric name, a guardrail that
    passes while significantly worse (its caution in the decision cell), three arms
    with long names, and a B2B account-level test beside it."""
    base = analyze_example("cs")
    rows = list(base.results)
    guard = next(i for i, r in enumerate(rows) if r.guardrail is not None)
    rows[guard] = replace(
        rows[guard],
        decision=replace(rows[guard].decision, caution="significantly worse, within the margin"),
    )
    rows[0] = replace(rows[0], metric="output_tokens_per_output_p95", variant="summary-v2-long")
    return replace(base, results=rows)


def _segmented() -> AnalysisResult:
    """The example by a country column with long segment names (8-column tables)."""
    a = pl.read_parquet(EXAMPLE / "assignments.parquet")
    names = ["united-kingdom", "germany", "united-states", "brazil-portugal-long"]
    a = a.with_columns(country=pl.Series([names[i % 4] for i in range(a.height)]))
    config = EXAMPLE / "experiment.toml"
    return abkit.analyze(a, config, events=EXAMPLE / "events.parquet", segments=["country"])


def test_markdown_verdict_table_fits_github_width(example, tmp_path):
    """Every column of every table is visible at 880 px, and each verdict row is one
    line high (a lift cell wrapped over 5 lines before)."""
    b2b = analyze_small_b2b(SHARE, ERRORS)
    cases = {"example": example, "crowded": _crowded(), "b2b": b2b, "segments": _segmented()}
    for name, result in cases.items():
        page = github_page(result.to_markdown(), tmp_path, f"report-md-{name}")
        measured = look(page, tmp_path, f"report-md-{name}")
        assert_nothing_cut_off(measured, f"report.md of {name}")
        header = [c["text"] for c in measured["tables"][0]["cells"][:5]]
        assert header == ["metric", "arm", "control → treatment", "lift [95% CI]", "decision"]
        lines = _verdict_lines(measured)
        assert len(lines) == len(result.results)
        if name == "crowded":  # a value wraps at most once (value / interval), never inside
            assert max(max(row[:4]) for row in lines) <= 2, lines
        else:
            assert all(row == [1] * 5 for row in lines), (name, lines)
    # the crowded decision cell still carries its caution, in the visible table
    crowded = _crowded().to_markdown()
    assert "guardrail pass ⚠️ significantly worse, within the margin |" in crowded


def test_html_report_fits_880_px_with_plots_embedded(example, tmp_path):
    written = example.save(tmp_path / "out")
    page = written["html"]
    html = page.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(written["plots"]) >= 3
    assert "plots/" not in html  # self-contained: nothing linked
    measured = look(page, tmp_path, "report-html")
    assert_nothing_cut_off(measured, "report.html")
    assert measured["page"] <= WIDTH, "the page scrolls sideways"
    assert all(row == [1] * 5 for row in _verdict_lines(measured))
    cells = [c["text"] for c in measured["tables"][0]["cells"]]
    for r in example.results:
        assert r.decision.label in cells
    # as wide as a report gets: long names, a caution, sequential 'decided by'
    crowded = tmp_path / "crowded.html"
    crowded.write_text(_crowded().to_html_page(plots=False), encoding="utf-8")
    measured = look(crowded, tmp_path, "report-html-crowded")
    assert_nothing_cut_off(measured, "report.html of the crowded result")
    assert measured["page"] <= WIDTH, "the page scrolls sideways"


def test_markdown_layout_reads_as_a_verdict_first(example):
    raw = example.to_markdown()
    md = raw.replace("\u00a0", " ")  # the rendered page shows no-break spaces as spaces
    lines = md.splitlines()
    verdict = lines.index("| metric | arm | control → treatment | lift [95% CI] | decision |")
    details = md.index("<details><summary>")
    assert lines[verdict + 2].startswith("| d1_retention | summary_v2 | 28.73 % → 30.47 % |")
    assert md.index(lines[verdict]) < details
    detail = md[details:]
    assert "| metric | arm | effect [95% CI] | test | p | decided by |" in detail
    assert "+1.74 pp [-1.09, +4.57]" in detail and "2-prop z, p = 0.2279" in detail
    # no-break spaces keep a number with its unit and an interval whole
    assert "+13.47\u00a0% [-1.80,\u00a0+31.11]" in raw


def test_numbers_read_one_way(example, tmp_path):
    """'p = 0.0123' or 'p < 0.0001', never 'p = <0.0001' or 'p <0.0001'."""
    gst = analyze_example("gst")
    for result in (example, gst):
        for out in (result.to_text(), result.to_markdown(), result.to_html()):
            plain = out.replace("\\", "")
            assert "p = <" not in plain and "p <0" not in plain and "p =<" not in plain
            assert not re.search(r"p = \d\.\d+e[+-]", plain)
    assert "NI (5 % relative), p < 0.0001" in example.to_text()


def test_methods_legend_names_each_family_once():
    units = pl.DataFrame(
        {
            "user_id": range(400),
            "variant": ["control", "treatment"] * 200,
            "pre": [float(i % 13) for i in range(400)],
            "spend": [float((i * 7) % 19) + (i % 13) for i in range(400)],
            "conv": [i % 3 == 0 for i in range(400)],
        }
    )
    config = {
        "cuped": {"covariates": ["pre"]},
        "metrics": [
            {"name": "spend", "type": "mean", "column": "spend"},
            {
                "name": "spend_guard",
                "type": "mean",
                "column": "spend",
                "guardrail": True,
                "relative_margin": 0.1,
            },
            {"name": "conv", "type": "proportion", "column": "conv"},
        ],
    }
    result = abkit.analyze(units, config)
    legend = method_legend(result)
    for entry in legend:
        family = entry.split(" = ", 1)[1].split(" (")[0]
        assert entry.count(family) == 1, entry
    assert not any(" by pre" in entry for entry in legend)  # the CUPED section lists them
    text = result.to_text()
    assert text.count("by pre;") == sum(r.cuped is not None for r in result.results)


def test_cli_infers_the_format_from_the_output_suffix(tmp_path):
    runner = CliRunner()
    for name, starts in (
        ("r.html", "<!doctype html>"),
        ("r.md", "## A/B result: summary-prompt-v2"),
        ("r.json", "{"),
        ("r.txt", "A/B result: summary-prompt-v2"),
    ):
        out = runner.invoke(cli, ["analyze", *ARGS, "-o", str(tmp_path / name)])
        assert out.exit_code == 0, out.output
        assert (tmp_path / name).read_text(encoding="utf-8").startswith(starts), name
    # --format wins over the suffix
    out = runner.invoke(cli, ["analyze", *ARGS, "-f", "markdown", "-o", str(tmp_path / "x.html")])
    assert out.exit_code == 0 and (tmp_path / "x.html").read_text().startswith("## A/B result")
    out = runner.invoke(cli, ["analyze", *ARGS, "--format", "html"])
    assert out.exit_code == 0 and out.stdout.startswith("<!doctype html>")


def test_out_replaces_its_own_files_and_nothing_else(tmp_path):
    """An earlier report's plots (27 of them beside 3 new ones) are removed; a file of
    the user's in the folder, or in plots/, stays."""
    folder = tmp_path / "report"
    b2b = analyze_small_b2b(
        {"name": "share", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "ttv", "type": "time_to_value", "event": "error"},
    )
    first = b2b.save(folder)
    (folder / "notes.md").write_text("mine")
    (folder / "plots" / "my_chart.png").write_bytes(b"mine")
    manifest = json.loads((folder / ".abkit-manifest.json").read_text())
    assert "notes.md" not in manifest["files"] and "report.html" in manifest["files"]
    runner = CliRunner()
    out = runner.invoke(cli, ["analyze", *ARGS, "--out", str(folder)])
    assert out.exit_code == 0, out.output
    second = json.loads((folder / ".abkit-manifest.json").read_text())["files"]
    pngs = sorted(p.name for p in (folder / "plots").iterdir())
    assert pngs == sorted(
        [*(Path(f).name for f in second if f.startswith("plots/")), "my_chart.png"]
    )
    assert not any(p.exists() for p in first["plots"] if f"plots/{p.name}" not in second)
    assert (folder / "notes.md").read_text() == "mine"
    # a manifest pointing outside the folder deletes nothing there
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    (folder / ".abkit-manifest.json").write_text(json.dumps({"files": ["../precious.txt"]}))
    out = runner.invoke(cli, ["report", str(folder / "results.json"), "--out", str(folder)])
    assert out.exit_code == 0, out.output
    assert outside.read_text() == "keep"


def test_report_redraws_the_same_markdown_and_html(example, tmp_path):
    first = example.save(tmp_path / "a")
    out = CliRunner().invoke(cli, ["report", str(first["results"]), "--out", str(tmp_path / "b")])
    assert out.exit_code == 0, out.output
    for name in ("report.md", "report.html"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()


def _run_cli(args: list[str], tty: bool) -> tuple[str, str]:
    """Run abkit with stderr on a pseudo-terminal (``tty``) or a pipe; returns (stdout,
    stderr) with terminal escapes removed."""
    command = [sys.executable, "-c", "from abkit_cli.main import cli; cli()", *args]
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    if not tty:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower, env=env
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    stdout = proc.communicate(timeout=60)[0].decode()
    os.close(leader)
    assert proc.returncode == 0, seen.decode(errors="replace")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", seen.decode(errors="replace"))
    return stdout, plain


def test_progress_on_a_terminal_and_silence_in_pipes(tmp_path):
    md = str(tmp_path / "r.md")
    _, stderr = _run_cli(["analyze", *ARGS, "-o", md, "--out", str(tmp_path / "o")], tty=True)
    # the spinner redraws a few times a second: the stages that take a while show
    for stage in ("reading the export", "one pass over the events", "drawing the plots (1 of 3)"):
        assert stage in stderr, stderr[-2000:]
    # piped: only the 'wrote' lines
    stdout, stderr = _run_cli(["analyze", *ARGS, "-o", md, "--out", str(tmp_path / "p")], tty=False)
    assert stderr.splitlines() and all(x.startswith("wrote ") for x in stderr.splitlines())
    # JSON on standard output and --quiet stay silent even on a terminal
    stdout, stderr = _run_cli(["analyze", *ARGS, "-f", "json"], tty=True)
    assert json.loads(stdout)["results"] and "testing" not in stderr
    _, stderr = _run_cli(["analyze", *ARGS, "--quiet", "-o", md], tty=True)
    assert "testing" not in stderr and "wrote" in stderr


def test_notebook_shows_plot_warnings_rows_and_sub_results(tmp_path):
    """A fresh kernel, no %matplotlib and no pyplot: result.plot() is an image; the
    result's HTML view has the warnings and the row accounting; result.srm and a single
    result read as text."""
    import nbclient
    import nbformat

    cells = [
        "import abkit\n"
        f"result = abkit.analyze({str(EXAMPLE / 'assignments.parquet')!r}, "
        f"{str(EXAMPLE / 'experiment.toml')!r}, events={str(EXAMPLE / 'events.parquet')!r}, "
        "sequential='gst')",
        "result",
        "result.plot()",
        "result.srm",
        "result.results[0]",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute(cwd=str(tmp_path))
    outputs = [cell.outputs for cell in nb.cells]
    html = outputs[1][0]["data"]["text/html"]
    assert "⚠️ Warning:" in html and "group-sequential design is only valid" in html
    assert "rows read" in html and "124,657" in html
    assert "white-space:nowrap" in html and "text-align:left" in html
    plot = outputs[2][0]["data"]
    assert "image/png" in plot, plot.get("text/plain")
    assert len(plot["image/png"]) > 10_000
    srm = outputs[3][0]["data"]
    assert srm["text/plain"].startswith("Sample ratio ok: chi-square")
    assert "control: 1,998 units" in srm["text/plain"] and "text/html" in srm
    one = outputs[4][0]["data"]
    assert one["text/plain"].startswith("<MetricResult d1_retention / summary_v2: ")
    assert "<table" in one["text/html"]


def test_html_view_carries_what_the_markdown_carries(tmp_path):
    """Warnings by result, the notes on the data and the row accounting are in the
    HTML view, as in text and Markdown."""
    from abkit.dev.simulate import simulate

    e = simulate(users=3_000, days=8, enrol_days=3, seed=5, latency_user_sd=0.6)
    metrics = [
        {
            "name": "p95_latency",
            "type": "quantile",
            "column": "ai_output.latency_ms",
            "q": 0.95,
            "direction": "decrease",
        },
        {"name": "shares", "type": "ratio", "numerator": "shares", "denominator": "ai_output"},
    ]
    result = abkit.analyze(e.assignments, {"metrics": metrics}, events=e.events)
    html = result.to_html()
    warned = [w for r in result.results for w in r.warnings]
    assert warned
    from html import escape

    for w in warned:
        assert escape(w) in html
    for table, counts in result.rows.items():
        assert f">{escape(table)}<" in html and f">{counts.read:,}<" in html
    md = render_markdown(result)
    assert "Warnings by result" in md and "Warnings by result" in html
    # a metric's note is said once, not under the warnings and again under data quality
    note = next(n for n in result.metric_notes["p95_latency"] if "quantile" in n)
    text = result.to_text()
    assert text.count(note) == 1 and html.count(escape(note)) == 1
    assert md.replace("\\", "").count(note) == 1


def test_out_with_an_html_report_draws_each_plot_once(tmp_path, monkeypatch):
    """--out and --format html together print the page written into the folder (the
    plots were drawn twice), byte for byte the page --format html alone prints."""
    import abkit.plots

    drawn = []
    real = abkit.plots.png_bytes
    monkeypatch.setattr(abkit.plots, "png_bytes", lambda fig: drawn.append(1) or real(fig))
    both, alone = tmp_path / "both.html", tmp_path / "alone.html"
    runner = CliRunner()
    out = runner.invoke(cli, ["analyze", *ARGS, "--out", str(tmp_path / "o"), "-o", str(both)])
    assert out.exit_code == 0, out.output
    assert drawn == []  # the folder's PNGs were embedded, not drawn again
    out = runner.invoke(cli, ["analyze", *ARGS, "-o", str(alone)])
    assert out.exit_code == 0, out.output
    assert drawn  # alone, the page draws its plots
    assert both.read_bytes() == alone.read_bytes()
    assert both.read_bytes() == (tmp_path / "o" / "report.html").read_bytes() + b"\n"
