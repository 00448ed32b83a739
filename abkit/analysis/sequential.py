"""Sequential monitoring of each metric × treatment over the looks of an export.

For every look the fixed-horizon test's estimate and standard error are computed from
the cumulative arm summaries (:mod:`abkit.engine.looks`); the chosen method turns them
into an interval (always-valid for mSPRT and confidence sequences, repeated for a
group-sequential design) and a p-value from the same boundary.  The first look that
decides fixes the :class:`~abkit.analysis.decision.Decision`, with its look and interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from abkit.analysis.decision import Basis, Caution, Decision, Outcome, guardrail_caution
from abkit.config import MetricSpec, SequentialSpec
from abkit.engine.looks import LookSeries
from abkit.stats.always_valid import asymptotic_cs, msprt, planned_tau
from abkit.stats.cuped import cuped_test, or_unadjusted
from abkit.stats.group_sequential import efficacy_bounds, futility_bounds, repeated_p_values
from abkit.wording import interval_text, number_text, p_phrase, show_controls

METHOD_NAMES = {
    "msprt": "mSPRT (normal mixture; Johari et al. 2022)",
    "cs": "asymptotic confidence sequence (Waudby-Smith et al. 2024)",
    "gst": "group-sequential design, Lan-DeMets spending",
}
# what the per-look interval is, by method: the always-valid methods give intervals that
# hold at every look at once; a group-sequential design gives repeated confidence
# intervals, valid at its planned looks only (Jennison & Turnbull 2000, ch. 9)
INTERVAL_NAMES = {
    "msprt": "always-valid interval",
    "cs": "always-valid interval",
    "gst": "repeated confidence interval",
}


# a method's tuning constants by name: mSPRT ``tau``; a confidence sequence's ``rho2``
# and ``target_n``; a group-sequential design's ``spending``, ``planned_look_days``,
# ``duration_days``, ``boundaries`` and ``futility_bounds``
Tuning = dict[str, float | str | tuple[float, ...]]


@dataclass(frozen=True, kw_only=True)
class Look:
    """One look of a sequential path: the data it had and what it concluded.

    Parameters
    ----------
    look : int
        The look's rank among the export's daily looks (1-based; for a summary table,
        the checkpoint's rank).
    at : str
        When it was taken: an ISO timestamp, or the summary table's label ("day 14").
    day : float
        Days since the origin at which the look falls.
    n_control, n_treatment : int
        Units of each arm with data at the look.
    estimate : float
        The effect estimate at the look (NaN without data in both arms).
    ci : tuple of float
        The look's interval (always-valid, or repeated for a group-sequential design).
    p_value : float
        The look's p-value for no effect, from the same boundary as ``ci``.
    p_value_margin : float or None
        A guardrail's p-value against its harmful margin (None, and no key in the JSON,
        for other metrics).
    decision : str
        The decision as it stood after this look ("continue" until one is reached).
    relative_estimate : float or None
        A quantile metric's ratio of the arms' quantiles minus 1 at the look (None,
        and no key in the JSON, for other metrics).
    relative_ci : tuple of float or None
        Its interval, from the same method on the ratio scale (Q_T/Q_C − 1).
    """

    look: int
    at: str
    day: float
    n_control: int
    n_treatment: int
    estimate: float
    ci: tuple[float, float]
    p_value: float
    p_value_margin: float | None = field(default=None, metadata={"json_omit_none": True})
    decision: Outcome
    relative_estimate: float | None = field(default=None, metadata={"json_omit_none": True})
    relative_ci: tuple[float, float] | None = field(default=None, metadata={"json_omit_none": True})


@dataclass(frozen=True)
class SequentialResult:
    """The per-look table of one metric × treatment and the decision it reached.

    Parameters
    ----------
    method : str
        The sequential method, in words (:data:`METHOD_NAMES`).
    interval : str
        What the per-look interval is (:data:`INTERVAL_NAMES`).
    tuning : dict
        The method's tuning constants (see :data:`Tuning`); empty when there was
        nothing to monitor.
    decision : Decision
        Fixed at the first decisive look and kept; its ``ci`` and ``p_value`` are that
        look's.
    looks_with_data : int
        The daily looks (all of them, planned or not) at which both arms had units and
        the effect a positive, finite variance: 0 means there was nothing to monitor,
        whatever the method's boundaries.
    warnings : tuple of str
        What qualifies the path (an assumed plan, boundaries tuned to the latest look).
    looks : tuple of Look
        Per analysed look, the estimate, the interval, the look's p-value and the
        decision as it stood after that look.
    """

    method: str
    interval: str
    tuning: Tuning
    decision: Decision
    looks_with_data: int
    warnings: tuple[str, ...] = ()
    looks: tuple[Look, ...] = ()

    def __repr__(self) -> str:
        """A few lines (method, decision, its interval and the latest look), not every
        look's row."""
        return sequential_summary(self)


def _per_look(
    metric: MetricSpec, series: LookSeries, control: str, variant: str, alpha: float
) -> dict[str, np.ndarray]:
    rows = [metric.kind.fixed_test(arms[control], arms[variant], alpha) for arms in series.arms]
    term = metric.kind.adjustable()
    if series.moments and term is not None:  # CUPED-adjusted estimate and variance per look
        terms = [(i,) for i in range(len(term), len(term) + len(series.covariates))]
        rows = [
            or_unadjusted(
                plain,
                cuped_test(
                    m[control],
                    m[variant],
                    term,
                    terms,
                    series.covariates,
                    alpha,
                    welch_df=math.isfinite(plain.df),
                ),
            )[0]
            for plain, m in zip(rows, series.moments, strict=True)
        ]
    return {
        "estimate": np.array([c.effect for c in rows]),
        "variance": np.array([c.se**2 for c in rows]),
        "n_control": np.array([arms[control].n for arms in series.arms]),
        "n_treatment": np.array([arms[variant].n for arms in series.arms]),
        "control_value": np.array([c.control_value for c in rows]),
    }


def _with_data(per: dict[str, np.ndarray]) -> np.ndarray:
    """Per daily look: both arms have units and the effect a positive, finite variance."""
    var = per["variance"]
    with np.errstate(invalid="ignore"):
        usable: np.ndarray = (
            (per["n_control"] > 0) & (per["n_treatment"] > 0) & np.isfinite(var) & (var > 0)
        )
    return usable


def _gst_plan(spec: SequentialSpec, series: Timeline) -> tuple[np.ndarray, float, list[str]]:
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
class Looks:
    """What a method found at the looks it analysed (``idx`` into the daily series).

    ``p_at(theta0)`` is each analysed look's p-value for H0: effect = theta0 (an array
    over those looks), from the same boundary as ``low``/``high``: theta0 lies outside
    the look's interval exactly when its p-value is below alpha.
    """

    idx: list[int]
    low: np.ndarray
    high: np.ndarray
    p_at: Callable[[np.ndarray], np.ndarray]
    tuning: dict[str, Any]
    futile: np.ndarray | None = None
    final_planned: bool = False


def _gst(
    metric: MetricSpec,
    spec: SequentialSpec,
    series: Timeline,
    per: dict[str, np.ndarray],
    alpha: float,
    warnings: list[str],
) -> Looks:
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
    # Lan-DeMets boundaries depend on the looks actually taken (a planned look that the
    # data skipped spends nothing), and the repeated p-values below use the same looks
    c = efficacy_bounds(fractions[taken], alpha, spec.spending) if taken else bounds[taken]
    tuning: dict[str, Any] = {
        "spending": spec.spending,
        "planned_look_days": planned.tolist(),
        "duration_days": duration,
        "boundaries": bounds.tolist(),
    }

    def p_at(theta0: np.ndarray) -> np.ndarray:
        if not idx:
            return np.array([])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (est - theta0) / se
        return repeated_p_values(z, fractions[taken], spec.spending)

    futile = None
    if spec.futility_effect is not None and idx:
        with np.errstate(divide="ignore", invalid="ignore"):
            z0 = est / se
        futile, tuning["futility_bounds"] = _futility(
            metric, spec, per, idx, taken, fractions, bounds, z0
        )
    return Looks(
        idx=idx,
        low=est - c * se,
        high=est + c * se,
        p_at=p_at,
        tuning=tuning,
        futile=futile,
        final_planned=bool(taken) and taken[-1] == len(planned) - 1,
    )


def _futility(
    metric: MetricSpec,
    spec: SequentialSpec,
    per: dict[str, np.ndarray],
    idx: list[int],
    taken: list[int],
    fractions: np.ndarray,
    bounds: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, list[float]]:
    """Non-binding futility at each taken look, with the design drift re-estimated there:
    θ = δ·√I_max, δ = futility_effect·|control value|, I_max ≈ (1/V_k)/t_k."""
    assert spec.futility_effect is not None
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
    metric: MetricSpec,
    spec: SequentialSpec,
    per: dict[str, np.ndarray],
    alpha: float,
    warnings: list[str],
) -> Looks:
    looks = len(per["estimate"])
    est, var = per["estimate"], per["variance"]
    defined = _with_data(per)
    if not defined.any():
        warnings.append(
            f"metric '{metric.name}': no look has data for both arms yet, so "
            "there is nothing to monitor"
        )
        nan = np.full(looks, np.nan)
        return Looks(list(range(looks)), nan, nan, lambda theta0: nan, {})
    n_total = per["n_control"] + per["n_treatment"]
    last = int(np.flatnonzero(defined)[-1])
    target = spec.target_units or int(n_total[-1])
    if spec.target_units is None and metric.tau is None:
        warnings.append(
            "no [sequential] target_units: the boundaries are tuned to the units at the "
            "latest look, so they move a little as data arrive; set target_units to the "
            "planned sample (all units the experiment will enrol) to fix them"
        )
    if spec.method == "msprt":
        tau = _msprt_tau(metric, spec, per, defined, last, target, alpha)
        if not (tau > 0 and math.isfinite(tau)):
            warnings.append(
                f"metric '{metric.name}': the mSPRT mixing sd could not be set "
                "(control value or variance 0); the smallest standard error seen is used "
                "instead; set 'tau' on the metric"
            )
            tau = float(np.sqrt(np.nanmin(var[defined])))
        path = msprt(est, var, alpha, tau)
    else:
        path = asymptotic_cs(est, var, n_total, alpha, target)
    return Looks(
        idx=list(range(looks)),
        low=path.ci_low,
        high=path.ci_high,
        p_at=path.p_value_at,
        tuning=path.tuning,
    )


def _msprt_tau(
    metric: MetricSpec,
    spec: SequentialSpec,
    per: dict[str, np.ndarray],
    defined: np.ndarray,
    last: int,
    target: int,
    alpha: float,
) -> float:
    """The mSPRT mixing sd τ, in metric units.

    A per-metric ``tau`` wins; then ``relative_tau`` times the control value at the
    first look with data.  By default τ is
    :func:`~abkit.stats.always_valid.planned_tau` at the planned sample ``target``
    from the latest look's variance: the effect the experiment is sized for, 2.80
    standard errors at the planned sample at α = 0.05, close to the τ that makes the
    boundary tightest there (√(u* − 1) = 2.88 standard errors, u* from
    :func:`~abkit.stats.always_valid.optimal_rho2`).  Anchoring on the first look
    instead is nearly powerless for metrics that accumulate per unit, whose first-look
    value and spread are a fraction of the final ones (docs/sequential.md).
    """
    if metric.tau is not None:
        return metric.tau
    if spec.relative_tau is not None:
        return spec.relative_tau * abs(float(per["control_value"][np.flatnonzero(defined)[0]]))
    n_last = per["n_control"][last] + per["n_treatment"][last]
    return float(planned_tau(per["variance"][last], n_last, target, alpha))


def _look_outcome(
    metric: MetricSpec, estimate: float, low: float, high: float, p0: float, alpha: float
) -> Outcome | None:
    """The outcome a look decides on its own, or None (keep going).

    Non-guardrail metrics: better / worse when 0 is outside the interval (p0 < α).
    Guardrails: pass when the interval's harmful end is on the safe side of the margin,
    fail when even its safe end is beyond it (``low``/``high`` already shifted so that
    the margin sits at 0, see :func:`monitor`).
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return None
    sign = 1.0 if metric.higher_is_better else -1.0
    if metric.guardrail:
        harmful, safe = (low, high) if sign > 0 else (-high, -low)
        if harmful > 0:
            return "guardrail pass"
        if safe < 0:
            return "guardrail fail"
        return None
    if p0 < alpha:
        return "better" if sign * estimate > 0 else "worse"
    return None


def _caution(
    metric: MetricSpec, outcome: Outcome, estimate: float, p0: float, alpha: float
) -> Caution | None:
    """A guardrail's regression flag at the deciding look: its always-valid (or
    repeated) p-value for no effect below α with the estimate on the harmful side."""
    if not metric.guardrail:
        return None
    harmful = (estimate < 0) == metric.higher_is_better and estimate != 0
    return guardrail_caution(outcome, harmful, p0, alpha)


def _margin_point(metric: MetricSpec, control_value: np.ndarray) -> np.ndarray:
    """The harmful margin θ_m per look on the effect scale (0 for non-guardrails); a
    relative margin is taken times the look's control value."""
    if not metric.guardrail:
        return np.zeros_like(control_value)
    sign = 1.0 if metric.higher_is_better else -1.0
    margin = (
        metric.margin
        if metric.relative_margin is None
        else metric.relative_margin * np.abs(control_value)
    )
    point: np.ndarray = -sign * np.asarray(margin, dtype=float) * np.ones_like(control_value)
    return point


def monitor(
    metric: MetricSpec,
    series: LookSeries,
    control: str,
    variant: str,
    spec: SequentialSpec,
    alpha: float,
) -> SequentialResult:
    """Per-look path of one metric × treatment and the decision it reaches.

    At each look the interval and p-value come from the same boundary, so 0 lies
    outside the interval exactly when p < α.  The first look that decides (see
    :func:`_look_outcome`; for a group-sequential design also a non-binding futility
    stop, or the final planned look) fixes the decision, reported with that look's
    interval and p-value.  A guardrail is tested against its margin: its p-value is
    the look's p-value for H0: effect = harmful margin (1 when the estimate lies beyond
    the margin), the non-inferiority test of the two-sided interval.
    """
    assert spec.method is not None
    per = _per_look(metric, series, control, variant, alpha)
    warnings: list[str] = []
    found = boundaries(metric, spec, series, per, alpha, warnings)
    return follow(
        metric,
        series,
        per,
        found,
        alpha,
        METHOD_NAMES[spec.method],
        INTERVAL_NAMES[spec.method],
        warnings,
    )


class Timeline(Protocol):
    """When a series' looks fall: labels, days since the origin, the look's unit."""

    @property
    def labels(self) -> list[str]: ...

    @property
    def days(self) -> list[float]: ...

    @property
    def unit(self) -> Literal["day", "checkpoint"]: ...


def boundaries(
    metric: MetricSpec,
    spec: SequentialSpec,
    timeline: Timeline,
    per: dict[str, np.ndarray],
    alpha: float,
    warnings: list[str],
) -> Looks:
    """The method's interval and p-values at every analysed look, from each look's
    estimate and variance in ``per`` (estimate, variance, n_control, n_treatment,
    control_value: arrays over the daily looks)."""
    if spec.method == "gst":
        return _gst(metric, spec, timeline, per, alpha, warnings)
    return _always_valid(metric, spec, per, alpha, warnings)


def follow(
    metric: MetricSpec,
    timeline: Timeline,
    per: dict[str, np.ndarray],
    found: Looks,
    alpha: float,
    method: str,
    interval: str,
    warnings: list[str],
    relative: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> SequentialResult:
    """The looks' table and the decision :func:`monitor` describes, from the intervals
    and p-values a method ``found``; ``relative`` adds, per analysed look, the ratio
    minus 1 and its interval (a quantile metric)."""
    idx = found.idx
    est = per["estimate"][idx]
    p0 = found.p_at(np.zeros(len(idx)))
    theta_m = _margin_point(metric, per["control_value"][idx])
    if metric.guardrail:
        sign = 1.0 if metric.higher_is_better else -1.0
        safe_side = sign * (est - theta_m) > 0
        p_decide = np.where(safe_side, found.p_at(theta_m), 1.0)
    else:
        p_decide = p0
    basis: Basis = "sequential non-inferiority" if metric.guardrail else "sequential"
    decided: Decision | None = None
    looks: list[Look] = []
    for j, k in enumerate(idx):
        if decided is None:
            outcome = _look_outcome(
                metric,
                float(est[j]),
                float(found.low[j] - theta_m[j]),
                float(found.high[j] - theta_m[j]),
                float(p0[j]),
                alpha,
            )
            if outcome is None and found.futile is not None and found.futile[j]:
                outcome = "futility stop"
            elif outcome is None and found.final_planned and j == len(idx) - 1:
                outcome = (
                    "guardrail inconclusive" if metric.guardrail else "no significant difference"
                )
            if outcome is not None:
                decided = Decision(
                    outcome=outcome,
                    basis=basis,
                    method=method,
                    p_value=float(p_decide[j]),
                    ci=(float(found.low[j]), float(found.high[j])),
                    look=k + 1,
                    at=timeline.labels[k],
                    look_unit=timeline.unit,
                    caution=_caution(metric, outcome, float(est[j]), float(p0[j]), alpha),
                )
        looks.append(
            Look(
                look=k + 1,
                at=timeline.labels[k],
                day=timeline.days[k],
                n_control=int(per["n_control"][k]),
                n_treatment=int(per["n_treatment"][k]),
                estimate=float(per["estimate"][k]),
                ci=(float(found.low[j]), float(found.high[j])),
                p_value=float(p0[j]),
                p_value_margin=float(p_decide[j]) if metric.guardrail else None,
                decision=decided.outcome if decided else "continue",
                relative_estimate=None if relative is None else float(relative[0][j]),
                relative_ci=None
                if relative is None
                else (float(relative[1][j]), float(relative[2][j])),
            )
        )
    if decided is None:
        last = len(idx) - 1
        decided = Decision(
            outcome="continue",
            basis=basis,
            method=method,
            p_value=float(p_decide[last]) if idx else math.nan,
            ci=(float(found.low[last]), float(found.high[last])) if idx else (math.nan, math.nan),
            look=idx[last] + 1 if idx else None,
            at=timeline.labels[idx[last]] if idx else None,
            look_unit=timeline.unit,
            caution=_caution(metric, "continue", float(est[last]), float(p0[last]), alpha)
            if idx
            else None,
        )
    return SequentialResult(
        method=method,
        interval=interval,
        tuning={k: _tuned(v) for k, v in found.tuning.items()},
        decision=decided,
        looks_with_data=int(np.sum(_with_data(per))),
        warnings=tuple(warnings),
        looks=tuple(looks),
    )


def _tuned(value: Any) -> float | str | tuple[float, ...]:
    """A tuning constant as the result keeps it: a float, a word, or floats."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(float(v) for v in value)
    return float(value) if isinstance(value, float | np.floating) else int(value)


def sequential_summary(seq: SequentialResult) -> str:
    """A sequential result in a few lines (for its ``__repr__``; the looks are in
    ``seq.looks``): the method, the decision and where, and the latest look.

    Numbers are shown to 4 significant digits: the result does not know its metric's
    type (rates in percent are :func:`sequential_line`'s, which does).
    """
    d = seq.decision
    unit = d.look_unit or "look"
    lines = [f"<SequentialResult {seq.method}: {d.label} {d.where}".rstrip() + ">"]
    if d.outcome not in ("continue", "not computable"):
        lines.append(f"  {seq.interval} {interval_text(d.ci)}, {p_phrase(d.p_value)}")
    if d.reason:
        lines.append(f"  {d.reason}")
    if seq.looks:
        last = seq.looks[-1]
        lines.append(
            f"  {len(seq.looks)} looks ({seq.looks_with_data} with data in both arms); latest "
            f"{unit} {last.look}: estimate {number_text(last.estimate, signed=True)}, "
            f"{seq.interval} {interval_text(last.ci)}, {p_phrase(last.p_value)}"
        )
    lines += [f"  warning: {w}" for w in seq.warnings]
    return show_controls("\n".join(lines))
