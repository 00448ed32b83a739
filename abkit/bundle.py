"""``abkit analyze --out DIR`` / ``abkit report``: report.md, report.html, results.json
and plots/*.png, with a manifest of what abkit wrote.

A folder written before holds a ``.abkit-manifest.json`` listing the files abkit wrote
there; the next write removes exactly those files first (plots of metrics that are
gone would otherwise stay beside the new ones) and never touches anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abkit.errors import AbkitInputError
from abkit.report.html import render_html_page
from abkit.report.markdown import render_markdown

if TYPE_CHECKING:
    from abkit.result import AnalysisResult

MANIFEST = ".abkit-manifest.json"


def _listed(folder: Path) -> list[Path]:
    """The files the previous write listed in the manifest, each inside ``folder``; a
    missing or unreadable manifest lists nothing."""
    try:
        entries = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    root = folder.resolve()
    out = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, str):
            continue
        path = folder / entry
        try:
            inside = path.resolve().is_relative_to(root) and not path.is_symlink()
        except OSError:
            continue
        if inside and path.is_file():
            out.append(path)
    return out


def remove_previous(folder: Path) -> list[Path]:
    """Remove the files that abkit's previous write into ``folder`` listed in its
    manifest (and nothing else); returns the removed paths."""
    removed = []
    for path in _listed(folder):
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def write_bundle(result: AnalysisResult, folder: str | Path) -> dict[str, Any]:
    """Write results.json, plots/*.png, report.md (images linked by relative path) and
    a self-contained report.html (images embedded), after removing what the previous
    write listed in the folder's manifest; returns the paths written."""
    from abkit.plots import save_all

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AbkitInputError(
            f"cannot create the output folder '{folder}': {exc.strerror or exc}.",
            hint="Give --out a folder path whose parents are folders (not files) you can write to.",
        ) from None
    remove_previous(folder)
    (folder / "results.json").write_text(result.to_json() + "\n", encoding="utf-8")
    plots = save_all(result, folder / "plots")
    images = [(path.relative_to(folder).as_posix(), caption) for path, caption in plots]
    (folder / "report.md").write_text(render_markdown(result, images=images), encoding="utf-8")
    embedded = [(caption, path.read_bytes()) for path, caption in plots]
    (folder / "report.html").write_text(render_html_page(result, embedded), encoding="utf-8")
    written = [folder / "results.json", folder / "report.md", folder / "report.html"]
    written += [p for p, _ in plots]
    manifest = {
        "written_by": "abkit",
        "note": "abkit removes the files listed here before it writes into this folder again",
        "files": sorted(p.relative_to(folder).as_posix() for p in written),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {
        "report": folder / "report.md",
        "html": folder / "report.html",
        "results": folder / "results.json",
        "plots": [p for p, _ in plots],
    }
