"""Effects by segment, with multiplicity control across segments and the test of
whether the effect differs between them (:mod:`abkit.stats.heterogeneity`).

Each segment's effect comes from the metric's own fixed-horizon test on the segment's
units; the p-values of one column's segments are adjusted together (Holm by default),
so that looking at every segment does not inflate the chance of a false "this segment
responds"; Cochran's Q says whether the spread of the segment effects exceeds noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from abkit.config import MetricSpec, SegmentSpec
from abkit.json_numbers import number, pair
from abkit.stats import adjust_pvalues
from abkit.stats.arm import ArmSummary
from abkit.stats.heterogeneity import Heterogeneity, cochran_q

SMALL_SEGMENT = 100  # units per arm below which a segment's estimate is called small
MANY_SEGMENTS = 10


@dataclass(frozen=True)
class SegmentEffect:
    value: str
    control_n: int
    treatment_n: int
    control_value: float
    treatment_value: float
    effect: float
    ci: tuple[float, float]
    relative_effect: float
    relative_ci: tuple[float, float]
    p_value: float
    p_value_adjusted: float


@dataclass(frozen=True)
class SegmentBreakdown:
    """One metric × treatment split by one column."""

    column: str
    method: str
    correction: str
    effects: tuple[SegmentEffect, ...]
    heterogeneity: Heterogeneity
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        h = self.heterogeneity
        return {
            "column": self.column,
            "method": self.method,
            "correction": self.correction,
            "effects": [
                {**e.__dict__, "ci": list(e.ci), "relative_ci": list(e.relative_ci)}
                for e in self.effects
            ],
            "heterogeneity": {
                "method": h.method,
                "q": h.q,
                "df": h.df,
                "p_value": h.p_value,
                "i2": h.i2,
                "common_effect": h.common_effect,
            },
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentBreakdown:
        h = d["heterogeneity"]
        effects = tuple(
            SegmentEffect(
                value=e["value"],
                control_n=e["control_n"],
                treatment_n=e["treatment_n"],
                control_value=number(e["control_value"]),
                treatment_value=number(e["treatment_value"]),
                effect=number(e["effect"]),
                ci=pair(e["ci"]),
                relative_effect=number(e["relative_effect"]),
                relative_ci=pair(e["relative_ci"]),
                p_value=number(e["p_value"]),
                p_value_adjusted=number(e["p_value_adjusted"]),
            )
            for e in d["effects"]
        )
        return cls(
            column=d["column"],
            method=d["method"],
            correction=d["correction"],
            effects=effects,
            heterogeneity=Heterogeneity(
                h["method"],
                number(h["q"]),
                h["df"],
                number(h["p_value"]),
                number(h["i2"]),
                number(h["common_effect"]),
            ),
            warnings=tuple(d["warnings"]),
        )


def segment_breakdown(
    column: str,
    by_value: dict[str, dict[str, dict[str, ArmSummary]]],
    metric: MetricSpec,
    control: str,
    variant: str,
    settings: SegmentSpec,
    alpha: float,
) -> SegmentBreakdown:
    """The per-segment comparisons of ``metric`` between ``control`` and ``variant``."""
    comps = [
        (
            value,
            arms[metric.name][control],
            arms[metric.name][variant],
            metric.kind.fixed_test(arms[metric.name][control], arms[metric.name][variant], alpha),
        )
        for value, arms in by_value.items()
    ]
    raw = [c.p_value for *_, c in comps]
    finite = [i for i, p in enumerate(raw) if math.isfinite(p)]
    adjusted = [math.nan] * len(raw)
    if finite:
        done = adjust_pvalues([raw[i] for i in finite], settings.correction)
        for i, p in zip(finite, done, strict=True):
            adjusted[i] = float(p)
    effects = tuple(
        SegmentEffect(
            value=value,
            control_n=c_arm.n,
            treatment_n=t_arm.n,
            control_value=comp.control_value,
            treatment_value=comp.treatment_value,
            effect=comp.effect,
            ci=comp.ci,
            relative_effect=comp.relative_effect,
            relative_ci=comp.relative_ci,
            p_value=comp.p_value,
            p_value_adjusted=p_adj,
        )
        for (value, c_arm, t_arm, comp), p_adj in zip(comps, adjusted, strict=True)
    )
    heterogeneity = cochran_q(
        np.array([c.effect for *_, c in comps]), np.array([c.se**2 for *_, c in comps])
    )
    small = [e.value for e in effects if min(e.control_n, e.treatment_n) < SMALL_SEGMENT]
    warnings = []
    if len(effects) > MANY_SEGMENTS or small:
        warnings.append(
            f"{len(effects)} segments"
            + (f", {len(small)} with fewer than {SMALL_SEGMENT} units in an arm" if small else "")
            + ": per-segment effects are noisy; read the heterogeneity test before any "
            "single segment"
        )
    method = next((c.method for *_, c in comps), "")
    return SegmentBreakdown(
        column, method, settings.correction, effects, heterogeneity, tuple(warnings)
    )
