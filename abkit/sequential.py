"""Sequential monitoring of each metric × treatment over the looks of an export.

For every look the fixed-horizon test's estimate and standard error are computed from
the cumulative arm summaries (:mod:`abkit.units.looks`); the chosen method turns them
into an always-valid interval, an always-valid p-value and a decision.  The first
look whose evidence crosses the threshold fixes the decision and its day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from abkit.config import MetricSpec, SequentialSpec
from abkit.methods import run_test
from abkit.stats.always_valid import asymptotic_cs, msprt
from abkit.stats.group_sequential import efficacy_bounds, futility_bounds, repeated_p_values
from abkit.units.looks import LookSeries

CONTINUE = "continue"
METHOD_NAMES = {
    "msprt": "mSPRT (normal mixture; Johari et al. 2022)",
    "cs": "asymptotic confidence sequence (Waudby-Smith et al. 2024)",
    "gst": "group-sequential design, Lan-DeMets spending",
}


@dataclass(frozen=True)
class SequentialResult:
    method: str
    tuning: dict[str, Any]
    looks: list[dict[str, Any]]
    decision: str
    decision_look: int | None
    decision_label: str | None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "tuning": self.tuning,
            "decision": self.decision,
            "decision_look": self.decision_look,
            "decision_at": self.decision_label,
            "warnings": list(self.warnings),
            "looks": self.looks,
        }


def _stop_label(metric: MetricSpec, estimate: float) -> str:
    better = (estimate > 0) == metric.higher_is_better
    if metric.guardrail and not better:
        return "guardrail breached"
    return "stop: better" if better else "stop: worse"


def _per_look(
    metric: MetricSpec, series: LookSeries, control: str, variant: str, alpha: float
) -> dict[str, np.ndarray]:
    rows = [run_test(metric, arms[control], arms[variant], alpha) for arms in series.arms]
    return {
        "estimate": np.array([c.effect for c in rows]),
        "variance": np.array([c.se**2 for c in rows]),
        "n_control": np.array([arms[control].n for arms in series.arms]),
        "n_treatment": np.array([arms[variant].n for arms in series.arms]),
        "control_value": np.array([c.control_value for c in rows]),
    }


def _gst_plan(spec: SequentialSpec, series: LookSeries) -> tuple[np.ndarray, float, list[str]]:
    """Planned look days, planned duration and warnings about the plan."""
    warnings = []
    span = math.ceil(series.days[-1])
    looks = np.array(spec.looks or range(7, max(span, 7) + 1, 7), dtype=float)
    duration = float(spec.duration_days or (spec.looks[-1] if spec.looks else looks[-1]))
    if spec.duration_days is None and spec.looks is None:
        warnings.append(
            f"no planned looks or duration given: weekly looks up to day {duration:.0f} (the "
            "export's span) were assumed; a group-sequential design is only valid when the "
            "looks and the duration were fixed before the data were seen"
        )
    return looks, duration, warnings


@dataclass
class _Looks:
    """What a method found at the looks it analysed (``idx`` into the daily series)."""

    idx: list[int]
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    crossed: np.ndarray
    tuning: dict[str, Any]
    futile: np.ndarray | None = None
    final_planned: bool = False


def _gst(
    metric: MetricSpec,
    spec: SequentialSpec,
    series: LookSeries,
    per: dict,
    alpha: float,
    warnings: list[str],
) -> _Looks:
    planned, duration, plan_warnings = _gst_plan(spec, series)
    warnings.extend(plan_warnings)
    fractions = planned / duration
    bounds = efficacy_bounds(fractions, alpha, spec.spending)
    day_to_look = {round(d): k for k, d in enumerate(series.days)}
    taken = [k for k, d in enumerate(planned) if round(d) in day_to_look]
    idx = [day_to_look[round(planned[k])] for k in taken]
    if not idx and series.days:
        warnings.append("no planned look has been reached yet")
    est, var = per["estimate"][idx], per["variance"][idx]
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = est / se
    c = bounds[taken]
    tuning: dict[str, Any] = {
        "spending": spec.spending,
        "planned_look_days": planned.tolist(),
        "duration_days": duration,
        "boundaries": bounds.tolist(),
    }
    futile = None
    if spec.futility_effect is not None and idx:
        futile, tuning["futility_bounds"] = _futility(
            metric, spec, per, idx, taken, fractions, bounds, z
        )
    return _Looks(
        idx=idx,
        low=est - c * se,
        high=est + c * se,
        p=repeated_p_values(z, fractions[taken], spec.spending) if idx else np.array([]),
        crossed=np.abs(z) >= c,
        tuning=tuning,
        futile=futile,
        final_planned=bool(taken) and taken[-1] == len(planned) - 1,
    )


def _futility(
    metric: MetricSpec,
    spec: SequentialSpec,
    per: dict,
    idx: list[int],
    taken: list[int],
    fractions: np.ndarray,
    bounds: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, list[float]]:
    """Non-binding futility at each taken look, with the design drift re-estimated there:
    θ = δ·√I_max, δ = futility_effect·|control value|, I_max ≈ (1/V_k)/t_k."""
    sign = 1.0 if metric.higher_is_better else -1.0
    futile, used = np.zeros(len(idx), dtype=bool), []
    for j, (k, planned_k) in enumerate(zip(idx, taken, strict=True)):
        delta = spec.futility_effect * abs(per["control_value"][k])
        info_max = 1.0 / per["variance"][k] / fractions[planned_k]
        theta = delta * np.sqrt(info_max)
        if not np.isfinite(theta) or theta <= 0:
            used.append(float("nan"))
            continue
        b = futility_bounds(fractions, bounds, float(theta), spec.beta, spec.spending)
        used.append(float(b[planned_k]))
        futile[j] = sign * z[j] <= b[planned_k] and planned_k < len(fractions) - 1
    return futile, used


def _always_valid(
    metric: MetricSpec, spec: SequentialSpec, per: dict, alpha: float, warnings: list[str]
) -> _Looks:
    looks = len(per["estimate"])
    defined = np.isfinite(per["variance"]) & (per["variance"] > 0)
    if not defined.any():
        warnings.append(
            f"metric '{metric.name}': no look has data for both arms yet, so "
            "there is nothing to monitor"
        )
        nan = np.full(looks, np.nan)
        path = msprt(nan, nan, alpha, 1.0)
    elif spec.method == "msprt":
        tau = metric.tau
        if tau is None:
            tau = spec.relative_tau * abs(per["control_value"][np.flatnonzero(defined)[0]])
        if not (tau > 0 and math.isfinite(tau)):
            warnings.append(
                f"metric '{metric.name}': the mSPRT mixing sd could not be set "
                "(control value 0); the smallest standard error seen is used "
                "instead; set 'tau' on the metric"
            )
            tau = float(np.sqrt(np.nanmin(per["variance"][defined])))
        path = msprt(per["estimate"], per["variance"], alpha, tau)
    else:
        n_total = per["n_control"] + per["n_treatment"]
        target = spec.target_units or int(n_total[-1])
        path = asymptotic_cs(per["estimate"], per["variance"], n_total, alpha, target)
    return _Looks(
        idx=list(range(looks)),
        low=path.ci_low,
        high=path.ci_high,
        p=path.p_value,
        crossed=path.p_value < alpha,
        tuning=path.tuning,
    )


def monitor(
    metric: MetricSpec,
    series: LookSeries,
    control: str,
    variant: str,
    spec: SequentialSpec,
    alpha: float,
) -> SequentialResult:
    """Always-valid path and decision of one metric × treatment."""
    per = _per_look(metric, series, control, variant, alpha)
    warnings: list[str] = []
    if spec.method == "gst":
        found = _gst(metric, spec, series, per, alpha, warnings)
    else:
        found = _always_valid(metric, spec, per, alpha, warnings)
    looks, decision, decision_look, label = [], CONTINUE, None, None
    for j, k in enumerate(found.idx):
        if decision == CONTINUE:
            last_planned = found.final_planned and j == len(found.idx) - 1
            if found.crossed[j]:
                decision = _stop_label(metric, per["estimate"][k])
            elif found.futile is not None and found.futile[j]:
                decision = "stop: futility (non-binding)"
            elif last_planned:
                decision = "stop: no difference (final planned look)"
            if decision != CONTINUE:
                decision_look, label = k + 1, series.labels[k]
        looks.append(
            {
                "look": k + 1,
                "at": series.labels[k],
                "day": series.days[k],
                "n_control": int(per["n_control"][k]),
                "n_treatment": int(per["n_treatment"][k]),
                "estimate": float(per["estimate"][k]),
                "ci": [float(found.low[j]), float(found.high[j])],
                "p_value": float(found.p[j]),
                "decision": decision,
            }
        )
    return SequentialResult(
        method=METHOD_NAMES[spec.method],
        tuning={
            k: (float(v) if isinstance(v, float | np.floating) else v)
            for k, v in found.tuning.items()
        },
        looks=looks,
        decision=decision,
        decision_look=decision_look,
        decision_label=label,
        warnings=tuple(warnings),
    )
