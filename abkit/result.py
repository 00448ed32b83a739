"""Result objects returned by :func:`abkit.analyze`.

``AnalysisResult.to_dict()`` is exactly what ``abkit analyze --format json``
prints and ``AnalysisResult.from_dict`` reads it back; ``AnalysisResult.table`` is the
same results as a Polars DataFrame.  NaN and infinite numbers become ``null`` in the
dict (JSON has no NaN) and NaN again when read back.  Every renderer (text, Markdown,
HTML, plots) reads these typed objects, so each shows the same
:class:`~abkit.decision.Decision`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from abkit.decision import Decision
from abkit.health import HealthBand
from abkit.json_numbers import effect_fields, number, pair
from abkit.segments import SegmentBreakdown
from abkit.sequential import SequentialResult
from abkit.stats.cuped import Adjustment
from abkit.stats.fixed_horizon import EffectSummary
from abkit.stats.novelty import NoveltyResult
from abkit.stats.paired import PAIRED, Pairing
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
    """One-sided non-inferiority test of a guardrail against its margin (fixed horizon).

    ``test`` names the test (its reference distribution or the account-level test in
    B2B mode); ``bound`` is the one-sided confidence bound on the harmful side.
    """

    margin: float
    scale: str
    test: str
    p_value: float
    bound: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "margin": self.margin,
            "scale": self.scale,
            "test": self.test,
            "p_value": self.p_value,
            "bound": self.bound,
            "verdict": self.verdict,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GuardrailCheck:
        return cls(
            margin=number(d["margin"]),
            scale=d["scale"],
            test=d["test"],
            p_value=number(d["p_value"]),
            bound=number(d["bound"]),
            verdict=d["verdict"],
        )


def _adjustment_dict(a: Adjustment) -> dict[str, Any]:
    return {
        "method": "CUPED regression adjustment (pooled within-arm theta, Deng et al. 2013)",
        "covariates": list(a.covariates),
        "theta": list(a.theta),
        "unadjusted_effect": a.unadjusted_effect,
        "unadjusted_se": a.unadjusted_se,
        "variance_reduction": a.variance_reduction,
    }


def _adjustment(d: dict[str, Any]) -> Adjustment:
    return Adjustment(
        covariates=tuple(d["covariates"]),
        theta=tuple(number(t) for t in d["theta"]),
        unadjusted_effect=number(d["unadjusted_effect"]),
        unadjusted_se=number(d["unadjusted_se"]),
        variance_reduction=number(d["variance_reduction"]),
    )


def _novelty_dict(n: NoveltyResult) -> dict[str, Any]:
    return {
        "method": n.method,
        "period_days": n.period_days,
        "units": list(n.units),
        "lift": list(n.lift),
        "lift_ci": [list(ci) for ci in n.lift_ci],
        "slope": n.slope,
        "slope_se": n.slope_se,
        "p_value": n.p_value,
        "change": n.change,
        "verdict": n.verdict,
    }


def _novelty(d: dict[str, Any]) -> NoveltyResult:
    return NoveltyResult(
        method=d["method"],
        period_days=d["period_days"],
        units=(d["units"][0], d["units"][1]),
        lift=tuple(number(v) for v in d["lift"]),
        lift_ci=tuple(pair(ci) for ci in d["lift_ci"]),
        slope=number(d["slope"]),
        slope_se=number(d["slope_se"]),
        p_value=number(d["p_value"]),
        change=number(d["change"]),
        verdict=d["verdict"],
    )


def _pairing_dict(p: Pairing) -> dict[str, Any]:
    return {
        "method": PAIRED,
        "pairs": p.pairs,
        "users": p.users,
        "se": p.se,
        "unpaired_se": p.unpaired_se,
        "variance_removed": p.variance_removed,
    }


def _pairing(d: dict[str, Any]) -> Pairing:
    return Pairing(d["pairs"], d["users"], number(d["se"]), number(d["unpaired_se"]))


@dataclass(frozen=True)
class QuantilePoint(EffectSummary):
    """One level of a quantile metric's profile: the arms' q-quantiles and their
    difference with its (pointwise, unadjusted) interval and p-value."""

    q: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantilePoint:
        return cls(q=d["q"], **effect_fields(d))


@dataclass(frozen=True)
class MetricResult:
    """One metric × treatment comparison against control.

    ``p_value``, ``ci`` and ``significant`` are the fixed-horizon test's (``method``);
    under a sequential method they are not valid under repeated looks
    (``fixed_horizon_valid`` is False) and ``decision`` comes from the sequential test.
    """

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
    decision: Decision
    guardrail: GuardrailCheck | None = None
    sequential: SequentialResult | None = None
    b2b: dict[str, Any] | None = None
    cuped: Adjustment | None = None
    paired: Pairing | None = None  # a paired export: the pairs and users it rests on
    novelty: NoveltyResult | None = None
    segments: tuple[SegmentBreakdown, ...] = ()
    quantiles: tuple[QuantilePoint, ...] = ()  # a quantile metric's profile across q
    health: HealthBand | None = None  # a retention bar of product practice (not a test)
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
            "fixed_horizon_valid": self.fixed_horizon_valid,
            "decision": self.decision.to_dict(),
            "guardrail": self.guardrail.to_dict() if self.guardrail else None,
            "sequential": self.sequential.to_dict() if self.sequential else None,
            "b2b": self.b2b,
            "cuped": _adjustment_dict(self.cuped) if self.cuped else None,
            "paired": _pairing_dict(self.paired) if self.paired else None,
            "novelty": _novelty_dict(self.novelty) if self.novelty else None,
            "segments": [b.to_dict() for b in self.segments],
            "quantiles": [p.to_dict() for p in self.quantiles],
            "health": self.health.to_dict() if self.health else None,
            "warnings": list(self.warnings),
        }

    @property
    def fixed_horizon_valid(self) -> bool:
        """False when the fixed-horizon p-value and CI were looked at repeatedly."""
        return self.sequential is None

    def __repr__(self) -> str:
        """One line a reader can act on (also inside ``result.results``):
        ``<MetricResult share_rate / v2: better; 0.08 → 0.095, lift … ; decided by …>``."""
        from abkit.report.format import arms_cell, decided_by, lift_cell, show_controls

        return show_controls(
            f"<MetricResult {self.metric} / {self.variant}: {self.decision.label}; "
            f"{arms_cell(self)}, lift {lift_cell(self)}; decided by {decided_by(self)}>"
        )

    def _repr_html_(self) -> str:
        """The verdict row and its detail row, as in the notebook view of the result."""
        from abkit.report.html import render_metric_html

        return render_metric_html(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricResult:
        return cls(
            metric=d["metric"],
            metric_type=d["metric_type"],
            variant=d["variant"],
            method=d["method"],
            control_n=d["control"]["n"],
            control_value=number(d["control"]["value"]),
            treatment_n=d["treatment"]["n"],
            treatment_value=number(d["treatment"]["value"]),
            effect=number(d["effect"]),
            ci=pair(d["ci"]),
            relative_effect=number(d["relative_effect"]),
            relative_ci=pair(d["relative_ci"]),
            p_value=number(d["p_value"]),
            p_value_adjusted=number(d["p_value_adjusted"]),
            significant=d["significant"],
            direction=d["direction"],
            decision=Decision.from_dict(d["decision"]),
            guardrail=GuardrailCheck.from_dict(d["guardrail"]) if d["guardrail"] else None,
            sequential=SequentialResult.from_dict(d["sequential"]) if d["sequential"] else None,
            b2b=d["b2b"],
            cuped=_adjustment(d["cuped"]) if d.get("cuped") else None,
            paired=_pairing(d["paired"]) if d.get("paired") else None,
            novelty=_novelty(d["novelty"]) if d.get("novelty") else None,
            segments=tuple(SegmentBreakdown.from_dict(b) for b in d.get("segments", [])),
            quantiles=tuple(QuantilePoint.from_dict(p) for p in d.get("quantiles", [])),
            health=HealthBand.from_dict(d["health"]) if d.get("health") else None,
            warnings=tuple(d["warnings"]),
        )


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
    srm: SrmResult | None  # None for a paired export: both versions answered every input
    exclusions: list[dict[str, Any]]
    rows: dict[str, dict[str, int]]
    results: list[MetricResult]
    mode: str = "b2c"
    account: str | None = None
    metric_notes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
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
                "srm": None
                if srm is None
                else {
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
                "notes": self.notes,
                "results": [r.to_dict() for r in self.results],
                "session_depth": self.session_depth,
                "adoption": self.adoption,
                "retention_curve": self.retention_curve,
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisResult:
        """Read back what :meth:`to_dict` wrote (for example a saved results.json)."""
        exp, srm = d["experiment"], d["srm"]
        return cls(
            name=exp["name"],
            control=exp["control"],
            variants=tuple(exp["variants"]),
            alpha=exp["alpha"],
            unit=exp["unit"],
            correction=exp["correction"],
            input_kind=exp["input"],
            mode=exp["mode"],
            account=exp["account"],
            export_end=exp["export_end"],
            srm=None
            if srm is None
            else SrmResult(
                observed=srm["observed"],
                expected_share=srm["expected_share"],
                statistic=number(srm["statistic"]),
                p_value=number(srm["p_value"]),
                threshold=srm["threshold"],
            ),
            warnings=list(d["warnings"]),
            rows=d["rows"],
            exclusions=d["exclusions"],
            metric_notes=d["metric_notes"],
            notes=list(d["notes"]),
            results=[MetricResult.from_dict(r) for r in d["results"]],
            session_depth=d["session_depth"],
            adoption=d["adoption"],
            retention_curve=d["retention_curve"],
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
                    "fixed_horizon_valid": r.fixed_horizon_valid,
                    "decision": r.decision.outcome,
                    "decision_basis": r.decision.basis,
                    "decision_p_value": r.decision.p_value,
                    "guardrail_verdict": r.guardrail.verdict if r.guardrail else None,
                    "cuped_variance_reduction": r.cuped.variance_reduction if r.cuped else None,
                    "paired_variance_removed": r.paired.variance_removed if r.paired else None,
                    "novelty_trend_p_value": r.novelty.p_value if r.novelty else None,
                    "novelty_verdict": r.novelty.verdict if r.novelty else None,
                    "warnings": len(r.warnings),
                }
            )
        return pl.DataFrame(rows, strict=False, infer_schema_length=None)

    @property
    def segments_table(self) -> pl.DataFrame:
        """One row per metric × treatment × segment, with the column's heterogeneity test."""
        rows = [
            {
                "metric": r.metric,
                "variant": r.variant,
                "column": b.column,
                "segment": e.value,
                "control_n": e.control_n,
                "treatment_n": e.treatment_n,
                "effect": e.effect,
                "ci_low": e.ci[0],
                "ci_high": e.ci[1],
                "relative_effect": e.relative_effect,
                "p_value": e.p_value,
                "p_value_adjusted": e.p_value_adjusted,
                "heterogeneity_p_value": b.heterogeneity.p_value,
            }
            for r in self.results
            for b in r.segments
            for e in b.effects
        ]
        return pl.DataFrame(rows, strict=False, infer_schema_length=None)

    @property
    def exclusions_table(self) -> pl.DataFrame:
        return pl.DataFrame(
            self.exclusions, schema={"table": pl.String, "reason": pl.String, "rows": pl.Int64}
        )

    def to_text(self, width: int | None = None) -> str:
        """The terminal report; ``width`` picks the layout (None: wide, no wrapping)."""
        from abkit.report.text import render_text

        return render_text(self, width)

    def to_markdown(self) -> str:
        from abkit.report.markdown import render_markdown

        return render_markdown(self)

    def to_html(self) -> str:
        """The notebook view (an HTML fragment): verdict table, warnings, effects and
        tests, guardrails, row accounting and details."""
        from abkit.report.html import render_html

        return render_html(self)

    def to_html_page(self, plots: bool = True) -> str:
        """A self-contained HTML report (``abkit analyze --format html``): the notebook
        view and, with ``plots``, every figure embedded as a base64 PNG."""
        from abkit.plots import plan, png_bytes
        from abkit.report.html import render_html_page

        images = [(caption, png_bytes(make())) for _, caption, make in plan(self)] if plots else []
        return render_html_page(self, images)

    def plot(
        self, kind: str = "forest", metric: str | None = None, variant: str | None = None
    ) -> Any:
        """A matplotlib Figure of one of :data:`abkit.plots.PLOT_KINDS`: ``forest``
        (default), ``retention``, ``session_depth``, ``sequential``, ``bootstrap``,
        ``accounts``, ``time_to_value``, ``novelty``, ``segments`` or ``quantiles``
        (``metric`` and ``variant`` pick the result of the per-result kinds).  In a
        notebook it displays inline, without ``%matplotlib inline`` or importing pyplot."""
        from abkit.plots import draw

        return draw(self, kind, metric, variant)

    def save(self, folder: str | Any) -> dict[str, Any]:
        """Write report.md, report.html, results.json and plots/*.png into ``folder``,
        first removing the files an earlier save listed in the folder's manifest
        (``.abkit-manifest.json``); nothing else in the folder is touched."""
        from abkit.report.bundle import write_bundle

        return write_bundle(self, folder)

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return self.to_text()
