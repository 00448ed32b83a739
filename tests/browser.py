"""Reports as a reader sees them: headless Chromium at the width people read at.

report.md goes through a GitHub-flavoured renderer (markdown-it-py's gfm-like preset)
with GitHub's table CSS, report.html as written; a script in the page opens every
``<details>`` and measures every table.  Without Chromium the callers skip, except
under CI=true, where they fail.  ABKIT_SCREENSHOTS=<folder> keeps the screenshots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

WIDTH = 880  # px of content of a GitHub pull-request comment or README

# GitHub's rules for Markdown tables (github-markdown-css): a table is a block as wide
# as its content up to the column's width and scrolls sideways beyond it, which is how
# a column gets cut off in a pull request.
GITHUB_CSS = f"""
body {{ margin: 0; background: #fff; }}
.markdown-body {{ box-sizing: border-box; width: {WIDTH}px; color: #1f2328;
  font-family: -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  font-size: 16px; line-height: 1.5; word-wrap: break-word; }}
.markdown-body table {{ display: block; width: max-content; max-width: 100%;
  overflow: auto; border-spacing: 0; border-collapse: collapse; margin: 0 0 16px 0; }}
.markdown-body td, .markdown-body th {{ padding: 6px 13px; border: 1px solid #d1d9e0; }}
.markdown-body th {{ font-weight: 600; }}
.markdown-body tr:nth-child(2n) {{ background: #f6f8fa; }}
.markdown-body img {{ max-width: 100%; }}
"""

# Opens every <details> (a reader expands them) and writes, for every table, its
# scroll and client widths, the right edge of every cell and each row's height in
# lines of text, into a <pre> that --dump-dom prints.
MEASURE = """
<script>
window.addEventListener('load', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var out = {page: document.documentElement.scrollWidth, tables: []};
  document.querySelectorAll('table').forEach(function (t) {
    var line = parseFloat(getComputedStyle(t.querySelector('td') || t).lineHeight) || 24;
    var cells = [].map.call(t.querySelectorAll('th, td'), function (c) {
      return {text: c.textContent, right: c.getBoundingClientRect().right,
              lines: Math.round(c.clientHeight / line)};
    });
    var rows = [].map.call(t.querySelectorAll('tr'), function (r) {
      return [].map.call(r.querySelectorAll('td'), function (c) {
        var range = document.createRange();
        range.selectNodeContents(c);
        var tops = {};
        [].forEach.call(range.getClientRects(), function (b) {
          if (b.width > 0) { tops[Math.round(b.top)] = 1; }
        });
        return Object.keys(tops).length;
      });
    });
    out.tables.push({header: t.querySelector('th') ? t.querySelector('th').textContent : '',
                     scroll: t.scrollWidth, client: t.clientWidth,
                     right: t.getBoundingClientRect().right, cells: cells, lines: rows});
  });
  var pre = document.createElement('pre');
  pre.id = 'abkit-measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "headless Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI installs it in .ci/run")
        pytest.skip(reason)
    return path


def _browser(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},2000",
    ]
    return subprocess.run(
        [*flags, *extra, page.as_uri()], capture_output=True, text=True, timeout=120
    )


def look(page: Path, tmp: Path, shot: str) -> dict:
    """Screenshot ``page`` at 880 px and measure its tables."""
    measured = page.with_suffix(".measured.html")
    html = page.read_text(encoding="utf-8")
    measured.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    png = tmp / f"{shot}.png"
    shot_run = _browser(page, tmp / "profile", f"--screenshot={png}")
    assert png.is_file() and png.stat().st_size > 10_000, (
        f"no screenshot (chromium exit {shot_run.returncode}): {shot_run.stderr[-1500:]}"
    )
    keep = os.environ.get("ABKIT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
    dom = _browser(measured, tmp / "profile", "--dump-dom").stdout
    found = re.search(r'<pre id="abkit-measure">(.*?)</pre>', dom, re.S)
    assert found, f"the page was not measured: {dom[-500:]}"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<"))


def github_page(markdown: str, folder: Path, name: str) -> Path:
    from markdown_it import MarkdownIt

    body = MarkdownIt("gfm-like").render(markdown)
    page = folder / f"{name}.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><style>{GITHUB_CSS}</style>'
        f'</head><body><article class="markdown-body">{body}</article></body></html>',
        encoding="utf-8",
    )
    return page


def assert_nothing_cut_off(measured: dict, what: str) -> None:
    assert measured["tables"], f"{what}: no table"
    for t in measured["tables"]:
        where = f"{what}, table '{t['header']}'"
        assert t["scroll"] <= t["client"], f"{where}: scrolls ({t['scroll']} > {t['client']} px)"
        assert t["right"] <= WIDTH, f"{where}: ends at {t['right']} px"
        for c in t["cells"]:
            assert c["right"] <= WIDTH + 0.5, f"{where}: '{c['text']}' ends at {c['right']} px"
