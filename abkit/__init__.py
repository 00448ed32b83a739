"""abkit: trustworthy A/B test analysis for AI product changes.

Public API::

    import abkit
    result = abkit.analyze("assignments.parquet", "experiment.toml", events="events.parquet")
    result.table          # Polars DataFrame, one row per metric × treatment
    result.to_dict()      # the CLI's JSON
    result.to_markdown()  # a PR-review summary

    # events on DuckDB or Spark: the per-unit pass (abkit.engine) runs there
    abkit.analyze("assignments.parquet", events=spark.table("events"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AbkitInputError",
    "AnalysisResult",
    "ConfigError",
    "ExperimentSpec",
    "analyze",
    "load_config",
    "power_analysis",
    "read_on",
    "simulate",
    "surrogate_training_table",
    "write_report",
]

if TYPE_CHECKING:
    from abkit.analysis.surrogate import surrogate_training_table
    from abkit.api import AnalysisResult
    from abkit.bundle import write_bundle as write_report
    from abkit.config import ExperimentSpec, load_config
    from abkit.dev.simulate import simulate
    from abkit.errors import AbkitInputError, ConfigError
    from abkit.io.engines import read_on
    from abkit.power import power_analysis
    from abkit.run import analyze

_LAZY = {
    "analyze": "abkit.run",
    "load_config": "abkit.config",
    "ExperimentSpec": "abkit.config",
    "AbkitInputError": "abkit.errors",
    "ConfigError": "abkit.errors",
    "AnalysisResult": "abkit.api",
    "simulate": "abkit.dev.simulate",
    "surrogate_training_table": "abkit.analysis.surrogate",
    "power_analysis": "abkit.power",
    "read_on": "abkit.io.engines",
    "write_report": ("abkit.bundle", "write_bundle"),
}


def __getattr__(name: str) -> Any:
    """Import the heavy parts (Polars, SciPy) only when first used, so `abkit --help`
    stays fast."""
    if name in _LAZY:
        import importlib

        target = _LAZY[name]
        module, attr = target if isinstance(target, tuple) else (target, name)
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'abkit' has no attribute {name!r}")
