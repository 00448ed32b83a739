"""Result objects returned by :func:`abkit.analyze`.

``AnalysisResult.to_dict()`` is exactly what ``abkit analyze --format json``
prints; ``AnalysisResult.table`` is the same results as a Polars DataFrame.
NaN and infinite numbers become ``null`` in the dict (JSON has no NaN).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from abkit.sequential import SequentialResult
from abkit.stats.srm import SrmResult


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class GuardrailCheck:
    margin: float
    scale: str
    p_value: float
    bound: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "margin": self.margin,
            "scale": self.scale,
            "test": "one-sided non-inferiority",
            "p_value": self.p_value,
            "bound": self.bound,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class MetricResult:
    """One metric × treatment comparison against control."""

    metric: str
    metric_type: str
    variant: str
    method: str
    control_n: int
    control_value: float
    treatment_n: int
    treatment_value: float
    effect: float
    ci: tuple[float, float]
    relative_effect: float
    relative_ci: tuple[float, float]
    p_value: float
    p_value_adjusted: float
    significant: bool
    direction: str
    decision: str
    guardrail: GuardrailCheck | None = None
    sequential: SequentialResult | None = None
    b2b: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "metric_type": self.metric_type,
            "variant": self.variant,
            "method": self.method,
            "control": {"n": self.control_n, "value": self.control_value},
            "treatment": {"n": self.treatment_n, "value": self.treatment_value},
            "effect": self.effect,
            "ci": list(self.ci),
            "relative_effect": self.relative_effect,
            "relative_ci": list(self.relative_ci),
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "significant": self.significant,
            "direction": self.direction,
            "decision": self.decision,
            "guardrail": self.guardrail.to_dict() if self.guardrail else None,
            "sequential": self.sequential.to_dict() if self.sequential else None,
            "b2b": self.b2b,
            "warnings": list(self.warnings),
        }


@dataclass
class AnalysisResult:
    """Everything one analysis found, in the order a reader needs it."""

    name: str
    control: str
    variants: tuple[str, ...]
    alpha: float
    unit: str
    correction: str
    input_kind: str
    srm: SrmResult
    exclusions: list[dict[str, Any]]
    rows: dict[str, dict[str, int]]
    results: list[MetricResult]
    mode: str = "b2c"
    account: str | None = None
    metric_notes: dict[str, list[str]] = field(default_factory=dict)
    session_depth: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    adoption: dict[str, dict[str, Any]] = field(default_factory=dict)
    retention_curve: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    export_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        srm = self.srm
        return _clean(
            {
                "experiment": {
                    "name": self.name,
                    "control": self.control,
                    "variants": list(self.variants),
                    "alpha": self.alpha,
                    "unit": self.unit,
                    "mode": self.mode,
                    "account": self.account,
                    "correction": self.correction,
                    "input": self.input_kind,
                    "export_end": self.export_end,
                },
                "srm": {
                    "method": "Pearson chi-square goodness of fit",
                    "statistic": srm.statistic,
                    "p_value": srm.p_value,
                    "threshold": srm.threshold,
                    "observed": srm.observed,
                    "expected_share": srm.expected_share,
                    "mismatch": srm.mismatch,
                },
                "warnings": list(self.warnings),
                "rows": self.rows,
                "exclusions": self.exclusions,
                "metric_notes": self.metric_notes,
                "results": [r.to_dict() for r in self.results],
                "session_depth": self.session_depth,
                "adoption": self.adoption,
                "retention_curve": self.retention_curve,
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @property
    def table(self) -> pl.DataFrame:
        """One row per metric × treatment, flat columns, for notebooks."""
        rows = []
        for r in self.results:
            rows.append(
                {
                    "metric": r.metric,
                    "variant": r.variant,
                    "method": r.method,
                    "control_n": r.control_n,
                    "control_value": r.control_value,
                    "treatment_n": r.treatment_n,
                    "treatment_value": r.treatment_value,
                    "effect": r.effect,
                    "ci_low": r.ci[0],
                    "ci_high": r.ci[1],
                    "relative_effect": r.relative_effect,
                    "relative_ci_low": r.relative_ci[0],
                    "relative_ci_high": r.relative_ci[1],
                    "p_value": r.p_value,
                    "p_value_adjusted": r.p_value_adjusted,
                    "significant": r.significant,
                    "decision": r.decision,
                    "guardrail_verdict": r.guardrail.verdict if r.guardrail else None,
                    "sequential_decision": r.sequential.decision if r.sequential else None,
                    "warnings": len(r.warnings),
                }
            )
        return pl.DataFrame(rows, strict=False, infer_schema_length=None)

    @property
    def exclusions_table(self) -> pl.DataFrame:
        return pl.DataFrame(
            self.exclusions, schema={"table": pl.String, "reason": pl.String, "rows": pl.Int64}
        )

    def to_text(self) -> str:
        from abkit.report.text import render_text

        return render_text(self.to_dict())

    def to_markdown(self) -> str:
        from abkit.report.markdown import render_markdown

        return render_markdown(self.to_dict())

    def plot(
        self, kind: str = "forest", metric: str | None = None, variant: str | None = None
    ) -> Any:
        """A matplotlib Figure: ``forest`` (default), ``retention``, ``session_depth``,
        ``sequential``, ``bootstrap``, ``accounts`` or ``time_to_value``."""
        from abkit.plots import draw

        return draw(self.to_dict(), kind, metric, variant)

    def save(self, folder: str | Any) -> dict[str, Any]:
        """Write report.md, results.json and plots/*.png into ``folder``."""
        from abkit.report.bundle import write_bundle

        return write_bundle(self.to_dict(), folder)

    def _repr_html_(self) -> str:
        from abkit.report.html import render_html

        return render_html(self.to_dict())

    def __repr__(self) -> str:
        return self.to_text()
