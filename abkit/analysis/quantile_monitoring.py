"""Sequential monitoring of a quantile metric (p50 / p95 / p99 latency, tokens, cost).

Two constructions, chosen by the data (docs/sequential.md, "Quantile metrics"):

* **Events clustered by unit** (a user sends many requests: the usual case).  At each
  look the difference of the arms' quantiles and its variance se²_C + se²_T come from
  the clustered fixed-horizon estimates (:mod:`abkit.stats.quantile`), which are the
  mean of the units' influences on the quantile (its user-level linearisation,
  :func:`~abkit.stats.sequential_quantile.quantile_influence`), the density at the
  quantile re-estimated at each look.  Any method of :mod:`abkit.analysis.sequential`
  then applies as to a mean: the asymptotic confidence sequence of Waudby-Smith et al.
  (2024) for ``cs``, the normal-mixture mSPRT for ``msprt``, repeated intervals for
  ``gst``; all are asymptotic (they need the CLT and a consistent density).
* **Independent observations** (every unit contributed at most one value) under
  ``cs``: the confidence sequence of Howard & Ramdas (2022) for the difference of two
  quantiles (:func:`~abkit.stats.sequential_quantile.quantile_ab`), exact at every
  look with no approximation.

The ratio of the quantiles comes from the same construction on the log scale and is
shown beside the difference (``relative_estimate``, ``relative_ci`` of each look).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from abkit.analysis.sequential import (
    INTERVAL_NAMES,
    METHOD_NAMES,
    Looks,
    SequentialResult,
    boundaries,
    follow,
)
from abkit.config import MetricSpec, SequentialSpec
from abkit.engine.quantile_looks import QuantileLooks, Sample
from abkit.stats.sequential_quantile import quantile_ab, quantile_ab_p_value

CLUSTERED = "on the user-level linearisation of the quantile, clustered by unit"
INDEPENDENT = "quantile confidence sequence for independent observations (Howard & Ramdas 2022)"


def monitor_quantile(
    metric: MetricSpec,
    looks: QuantileLooks,
    control: str,
    variant: str,
    spec: SequentialSpec,
    alpha: float,
) -> SequentialResult:
    """Per-look path of a quantile metric × treatment and the decision it reaches.

    Parameters
    ----------
    metric : MetricSpec
        The quantile metric (a guardrail's margin is on the difference of quantiles,
        or relative to the control arm's quantile at the look).
    looks : QuantileLooks
        The arms' estimates and samples at every daily look.
    control, variant : str
        The arms compared.
    spec : SequentialSpec
        The method and its tuning.
    alpha : float
        The level: P(∃ look: the interval misses the true difference) ≤ α.

    Returns
    -------
    SequentialResult
        As :func:`abkit.analysis.sequential.monitor` gives for a mean, each look also
        carrying the ratio of quantiles minus 1 and its interval.

    Notes
    -----
    Clustered events: θ̂_k = Q̂_T − Q̂_C with V_k = se²_C + se²_T at look k, and on
    the ratio scale log(Q̂_T/Q̂_C) with V_k = (se_C/Q̂_C)² + (se_T/Q̂_T)² (delta
    method); the method's boundary turns each into an interval.  Independent
    observations under ``cs``: the interval is {θ0: p_k(θ0) > α} with
    p_k(θ0) = min(1, exp(−min_x [G_C(x) + G_T(x + θ0)])), the arms' beta-binomial
    mixture martingales at the common quantile (:mod:`abkit.stats.sequential_quantile`).

    References
    ----------
    .. [1] S. R. Howard and A. Ramdas, "Sequential estimation of quantiles with
       applications to A/B-testing and best-arm identification", Bernoulli 28,
       1704–1728, 2022.
    .. [2] I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas,
       "Time-uniform central limit theory and asymptotic confidence sequences",
       Annals of Statistics 52, 2613–2640, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.config import MetricSpec, SequentialSpec
    >>> from abkit.engine.quantile_looks import QuantileLooks
    >>> from abkit.stats.quantile import EventValues
    >>> from abkit.analysis.quantile_monitoring import monitor_quantile
    >>> rng = np.random.default_rng(7)
    >>> def day(shift, first):  # 400 users a day, 1-10 requests each
    ...     n = rng.integers(1, 11, 400)
    ...     users = np.repeat(np.arange(first, first + 400), n)
    ...     return rng.lognormal(shift, 0.5, n.sum()), users
    >>> days = {"a": [day(0.0, 400 * k) for k in range(5)],
    ...         "b": [day(0.1, 10_000 + 400 * k) for k in range(5)]}
    >>> def estimates(v, k):
    ...     values = np.concatenate([x for x, _ in days[v][: k + 1]])
    ...     units = np.concatenate([u for _, u in days[v][: k + 1]])
    ...     return EventValues(values, units).estimates((0.95,))[0.95]
    >>> looks = QuantileLooks(
    ...     q=0.95, labels=[f"day {k + 1}" for k in range(5)],
    ...     days=[k + 1.0 for k in range(5)],
    ...     estimates=[{v: estimates(v, k) for v in "ab"} for k in range(5)],
    ...     parts=[{v: days[v][k][0] for v in "ab"} for k in range(5)],
    ...     most_per_unit=10, route="exact")
    >>> metric = MetricSpec(
    ...     name="p95", type="quantile", column="out.latency", q=0.95, direction="decrease"
    ... )
    >>> r = monitor_quantile(metric, looks, "a", "b", SequentialSpec(method="cs"), 0.05)
    >>> r.decision.outcome, r.decision.look  # 10 % slower: worse, from the second day
    ('worse', 2)
    """
    assert spec.method is not None
    per = _per_look(looks, control, variant)
    warnings: list[str] = []
    if spec.method == "cs" and looks.independent:
        found, ratio = _independent(metric, looks, control, variant, spec, per, alpha, warnings)
        method = INDEPENDENT
    else:
        found = boundaries(metric, spec, looks, per, alpha, warnings)
        ratio = _log_ratio(metric, spec, looks, per, alpha)
        method = f"{METHOD_NAMES[spec.method]} {CLUSTERED}"
    if ratio is not None and ratio[1].idx != found.idx:
        raise AssertionError("the ratio and the difference were analysed at different looks")
    relative = None
    if ratio is not None:
        on_log, log_looks = ratio
        relative = (
            np.expm1(on_log["estimate"][found.idx]),
            np.expm1(log_looks.low),
            np.expm1(log_looks.high),
        )
    interval = INTERVAL_NAMES[spec.method]
    path = follow(metric, looks, per, found, alpha, method, interval, warnings, relative)
    if not (metric.guardrail and metric.relative_margin is not None):
        return path
    if ratio is None:
        return dataclasses.replace(
            path,
            warnings=(
                *path.warnings,
                f"metric '{metric.name}': the relative margin is tested as a share of the "
                "control's quantile at each look, taken as known (the ratio of quantiles "
                "has no sequence here)",
            ),
        )
    return _decided_on_the_ratio(metric, looks, path, ratio, alpha, method, interval)


def _decided_on_the_ratio(
    metric: MetricSpec,
    looks: QuantileLooks,
    path: SequentialResult,
    ratio: tuple[dict[str, np.ndarray], Looks],
    alpha: float,
    method: str,
    interval: str,
) -> SequentialResult:
    """A guardrail "must not change by more than m % of control" decided on the ratio
    of quantiles: H0 log(Q_T/Q_C) beyond log(1 ± m), on the log-ratio sequence, whose
    interval accounts for the control's quantile being estimated too (a margin of m
    times the estimated control quantile on the difference scale treats it as known).
    The looks keep their difference and ratio; the decision, its look and its p-value
    come from the ratio; its interval is the difference's at that look."""
    on_log, log_looks = ratio
    assert metric.relative_margin is not None
    m = metric.relative_margin
    margin = math.log1p(m) if not metric.higher_is_better else -math.log1p(-m)
    on_ratio = dataclasses.replace(metric, margin=margin, relative_margin=None, tau=None)
    decided = follow(on_ratio, looks, on_log, log_looks, alpha, method, interval, [])
    at = {lk.look: lk for lk in path.looks}
    d = decided.decision
    ci = at[d.look].ci if d.look in at else d.ci
    looks_out = tuple(
        dataclasses.replace(mine, decision=theirs.decision, p_value_margin=theirs.p_value_margin)
        for mine, theirs in zip(path.looks, decided.looks, strict=True)
    )
    return dataclasses.replace(
        path,
        method=f"{method}; the relative margin on the ratio of quantiles",
        decision=dataclasses.replace(d, method=f"{method}; margin on the ratio", ci=ci),
        looks=looks_out,
    )


def _per_look(looks: QuantileLooks, control: str, variant: str) -> dict[str, np.ndarray]:
    """Per daily look: the difference of the quantiles, its clustered variance, the units
    with a value in each arm and the control arm's quantile."""
    c = looks.estimates
    c_est = np.array([e[control].estimate for e in c], dtype=float)
    t_est = np.array([e[variant].estimate for e in c], dtype=float)
    c_se = np.array([e[control].se for e in c], dtype=float)
    t_se = np.array([e[variant].se for e in c], dtype=float)
    return {
        "estimate": t_est - c_est,
        "variance": c_se**2 + t_se**2,
        "n_control": np.array([e[control].units for e in c]),
        "n_treatment": np.array([e[variant].units for e in c]),
        "control_value": c_est,
        "treatment_value": t_est,
        "control_se": c_se,
        "treatment_se": t_se,
    }


def _log_ratio(
    metric: MetricSpec,
    spec: SequentialSpec,
    looks: QuantileLooks,
    per: dict[str, np.ndarray],
    alpha: float,
) -> tuple[dict[str, np.ndarray], Looks] | None:
    """The method on log(Q̂_T/Q̂_C), with the delta-method variance
    (se_C/Q̂_C)² + (se_T/Q̂_T)²: its per-look inputs and intervals (None when no look has
    two positive quantiles).  A τ set on the metric is in its own units, so the ratio
    scale takes the planned one."""
    c, t = per["control_value"], per["treatment_value"]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where((c > 0) & (t > 0), np.log(t / c), np.nan)
        variance = (per["control_se"] / c) ** 2 + (per["treatment_se"] / t) ** 2
    if not np.isfinite(log_ratio).any():
        return None
    on_log = {
        **per,
        "estimate": log_ratio,
        "variance": np.where(np.isfinite(log_ratio), variance, np.nan),
        "control_value": np.ones_like(c),
    }
    plain = dataclasses.replace(metric, tau=None)
    return on_log, boundaries(plain, spec, looks, on_log, alpha, [])


def _independent(
    metric: MetricSpec,
    looks: QuantileLooks,
    control: str,
    variant: str,
    spec: SequentialSpec,
    per: dict[str, np.ndarray],
    alpha: float,
    warnings: list[str],
) -> tuple[Looks, tuple[dict[str, np.ndarray], Looks] | None]:
    """Howard & Ramdas' two-sample sequence at every look with data in both arms, tuned
    to ``target_units`` / 2 observations per arm (default: the larger arm at the last
    look, with the warning the other methods give); and the same on the ratio of
    quantiles, as log(Q_T/Q_C) (None when a value is 0 or negative)."""
    assert metric.q is not None
    q = metric.q
    samples_c, samples_t = looks.samples(control), looks.samples(variant)
    last_c, last_t = int(per["n_control"][-1]), int(per["n_treatment"][-1])
    if spec.target_units is not None:
        target = spec.target_units / 2
    else:
        target = float(max(last_c, last_t, 1))
        warnings.append(
            "no [sequential] target_units: the boundaries are tuned to the units at the "
            "latest look, so they move a little as data arrive; set target_units to the "
            "planned sample (all units the experiment will enrol) to fix them"
        )
    n = len(looks.days)
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    logs = np.full((3, n), np.nan)  # log ratio, and its sequence's ends
    usable = (per["n_control"] > 0) & (per["n_treatment"] > 0)
    positive = all(_positive(s) for s in (samples_c[-1], samples_t[-1]))
    for k in np.flatnonzero(usable):
        found = quantile_ab(samples_c[k], samples_t[k], q, alpha, target)
        low[k], high[k] = found.ci_low, found.ci_high
        if positive:
            ratio = quantile_ab(samples_c[k], samples_t[k], q, alpha, target, "ratio")
            with np.errstate(divide="ignore"):
                logs[:, k] = np.log([ratio.estimate, ratio.ci_low, ratio.ci_high])
    if not positive:
        warnings.append(
            f"metric '{metric.name}': some values are 0 or negative, so the ratio of "
            "quantiles has no confidence sequence; the difference is monitored"
        )

    def p_at(theta0: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        for k in np.flatnonzero(usable):
            out[k] = quantile_ab_p_value(
                samples_c[k], samples_t[k], q, float(theta0[k]), "difference", target, alpha
            )
        return out

    def p_at_ratio(theta0: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        for k in np.flatnonzero(usable):
            out[k] = quantile_ab_p_value(
                samples_c[k], samples_t[k], q, math.exp(theta0[k]), "ratio", target, alpha
            )
        return out

    tuning: dict[str, float | str] = {"target_n": target, "alpha_opt": alpha}
    difference = Looks(list(range(n)), low, high, p_at, dict(tuning))
    if not positive:
        return difference, None
    on_log = {**per, "estimate": logs[0], "control_value": np.ones(n)}
    return difference, (on_log, Looks(list(range(n)), logs[1], logs[2], p_at_ratio, {}))


def _positive(sample: Sample) -> bool:
    """Every value of a sample (raw, or a histogram's bins) is positive."""
    if isinstance(sample, np.ndarray):
        return bool(sample.size) and bool(np.all(sample > 0))
    return bool(sample.keys.size) and bool(np.all(sample.keys > 0))
