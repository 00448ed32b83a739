"""``abkit analyze --out DIR`` / ``abkit report``: report.md, results.json, plots/*.png."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from abkit.errors import AbkitInputError
from abkit.report.markdown import render_markdown

if TYPE_CHECKING:
    from abkit.result import AnalysisResult


def write_bundle(result: AnalysisResult, folder: str | Path) -> dict[str, Any]:
    """Write results.json, plots/*.png and report.md (images linked by relative path)."""
    from abkit.plots import save_all

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AbkitInputError(
            f"cannot create the output folder '{folder}': {exc.strerror or exc}.",
            hint="Give --out a folder path whose parents are folders (not files) you can write to.",
        ) from None
    (folder / "results.json").write_text(result.to_json() + "\n", encoding="utf-8")
    plots = save_all(result, folder / "plots")
    images = [(path.relative_to(folder).as_posix(), caption) for path, caption in plots]
    (folder / "report.md").write_text(render_markdown(result, images=images), encoding="utf-8")
    return {
        "report": folder / "report.md",
        "results": folder / "results.json",
        "plots": [p for p, _ in plots],
    }
