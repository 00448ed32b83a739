"""Renderers of an analysis result: text, Markdown (JSON is ``AnalysisResult.to_json``)."""

from abkit.report.markdown import escape, render_markdown
from abkit.report.text import render_text

__all__ = ["escape", "render_markdown", "render_text"]
