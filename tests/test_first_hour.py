"""The first hour of a new user, end to end, as they would do it.

A data scientist has an export with their own column names, gzipped CSV as warehouses
hand it over. They analyse it with flags only (no TOML), write a report folder for a
pull request, open a notebook, and read the report in a browser at GitHub's width.
Each step runs the way the user runs it: the installed ``abkit`` command in a
subprocess from outside the repository, a notebook executed by a fresh kernel
(nbclient), the reports rendered in headless Chromium at 880 px.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import polars as pl
import pytest

from abkit.dev.simulate import simulate
from tests.browser import assert_nothing_cut_off, github_page, look

# the user's own names for what abkit calls user_id, variant, assigned_at, ...
OWN_NAMES = {
    "user_id": "user",
    "variant": "group",
    "assigned_at": "assigned",
    "timestamp": "ts",
    "event": "event_type",
    "session_id": "sess",
}
FLAGS = [
    "--unit",
    "user",
    "--variant",
    "group",
    "--assigned-at",
    "assigned",
    "--timestamp",
    "ts",
    "--event",
    "event_type",
    "--session",
    "sess",
]
VERDICT_COLUMNS = ("metric", "arm", "control → treatment", "lift", "decision")


def _write_csv_gz(frame: pl.DataFrame, path: Path) -> None:
    with gzip.open(path, "wb") as out:
        frame.write_csv(out)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-day export with a real retention lift, in the user's names, as CSV.gz."""
    folder = tmp_path_factory.mktemp("first_hour")
    e = simulate(users=4_000, days=12, enrol_days=4, seed=31, retention_lift=0.15)
    assignments = e.assignments.rename(
        {k: v for k, v in OWN_NAMES.items() if k in e.assignments.columns}
    )
    events = e.events.rename({k: v for k, v in OWN_NAMES.items() if k in e.events.columns})
    _write_csv_gz(assignments, folder / "assignments.csv.gz")
    _write_csv_gz(events, folder / "events.csv.gz")
    return folder


def _abkit() -> str:
    """The ``abkit`` command installed beside this interpreter."""
    command = Path(sys.executable).with_name("abkit")
    return str(command) if command.exists() else shutil.which("abkit") or "abkit"


def test_first_hour(export: Path, tmp_path: Path) -> None:
    # 1. flags only, from outside the repository, writing the report folder
    run = subprocess.run(
        [_abkit(), "analyze", "assignments.csv.gz", "events.csv.gz", *FLAGS, "--out", "report"],
        cwd=export,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "d1_retention" in run.stdout and "decision" in run.stdout
    report = export / "report"
    for name in ("report.md", "report.html", "results.json", "plots/forest.png"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert re.search(r"events: [\d,]+ read, [\d,]+ used, 0 excluded", run.stdout), run.stdout

    # 2. the same analysis in a notebook: the result displays, the plot is an image
    keywords = ", ".join(
        f"{flag[2:].replace('-', '_')}={value!r}"
        for flag, value in zip(FLAGS[::2], FLAGS[1::2], strict=True)
    )
    cells = [
        "import abkit\n"
        f"result = abkit.analyze('assignments.csv.gz', events='events.csv.gz', {keywords})",
        "result",
        "result.plot()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute(cwd=str(export))
    shown = nb.cells[1].outputs[0]["data"]
    assert "text/html" in shown and "d1_retention" in shown["text/html"]
    plot = nb.cells[2].outputs[0]["data"]
    assert "image/png" in plot, plot.get("text/plain")

    # 3. the reports as a reviewer reads them: 880 px, every verdict column visible
    markdown = (report / "report.md").read_text(encoding="utf-8")
    assert "A/B result" in markdown.splitlines()[0]  # unnamed, files named generically
    pages = {
        "report.md": github_page(markdown, tmp_path, "report_md"),
        "report.html": report / "report.html",
    }
    for what, page in pages.items():
        measured = look(page, tmp_path, what.replace(".", "_"))
        assert_nothing_cut_off(measured, what)
        verdict = measured["tables"][0]
        headers = [c["text"] for c in verdict["cells"]][: len(VERDICT_COLUMNS)]
        for column, header in zip(VERDICT_COLUMNS, headers, strict=True):
            assert header.startswith(column), (what, headers)
