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
        found, relative = _independent(metric, looks, control, variant, spec, per, alpha, warnings)
        method = INDEPENDENT
    else:
        found = boundaries(metric, spec, looks, per, alpha, warnings)
        relative = _relative(metric, spec, looks, per, found, alpha)
        method = f"{METHOD_NAMES[spec.method]} {CLUSTERED}"
    return follow(
        metric,
        looks,
        per,
        found,
        alpha,
        method,
        INTERVAL_NAMES[spec.method],
        warnings,
        relative,
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


def _relative(
    metric: MetricSpec,
    spec: SequentialSpec,
    looks: QuantileLooks,
    per: dict[str, np.ndarray],
    found: Looks,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q_T/Q_C − 1 and its interval at the looks ``found`` analysed: the same method on
    log(Q̂_T/Q̂_C) with the delta-method variance, exponentiated.  A τ set on the
    metric is in its own units, so the ratio scale takes the planned one."""
    c, t = per["control_value"], per["treatment_value"]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where((c > 0) & (t > 0), np.log(t / c), np.nan)
        variance = (per["control_se"] / c) ** 2 + (per["treatment_se"] / t) ** 2
    on_log = {
        **per,
        "estimate": log_ratio,
        "variance": np.where(np.isfinite(log_ratio), variance, np.nan),
        "control_value": np.ones_like(c),
    }
    plain = dataclasses.replace(metric, tau=None)
    ratio = boundaries(plain, spec, looks, on_log, alpha, [])
    if ratio.idx != found.idx:  # a group-sequential plan analyses the same looks
        raise AssertionError("the ratio and the difference were analysed at different looks")
    return (
        np.expm1(log_ratio[found.idx]),
        np.expm1(ratio.low),
        np.expm1(ratio.high),
    )


def _independent(
    metric: MetricSpec,
    looks: QuantileLooks,
    control: str,
    variant: str,
    spec: SequentialSpec,
    per: dict[str, np.ndarray],
    alpha: float,
    warnings: list[str],
) -> tuple[Looks, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Howard & Ramdas' two-sample sequence at every look with data in both arms, tuned
    to ``target_units`` / 2 observations per arm (default: the larger arm at the last
    look, with the warning the other methods give)."""
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
    rel = np.full((3, n), np.nan)
    usable = (per["n_control"] > 0) & (per["n_treatment"] > 0)
    positive = all(_positive(s) for s in (samples_c[-1], samples_t[-1]))
    for k in np.flatnonzero(usable):
        found = quantile_ab(samples_c[k], samples_t[k], q, alpha, target)
        low[k], high[k] = found.ci_low, found.ci_high
        if positive:
            ratio = quantile_ab(samples_c[k], samples_t[k], q, alpha, target, "ratio")
            rel[:, k] = ratio.estimate - 1, ratio.ci_low - 1, ratio.ci_high - 1
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

    tuning: dict[str, float | str] = {"target_n": target, "alpha_opt": alpha}
    return Looks(list(range(n)), low, high, p_at, dict(tuning)), (rel[0], rel[1], rel[2])


def _positive(sample: Sample) -> bool:
    """Every value of a sample (raw, or a histogram's bins) is positive."""
    if isinstance(sample, np.ndarray):
        return bool(sample.size) and bool(np.all(sample > 0))
    return bool(sample.keys.size) and bool(np.all(sample.keys > 0))
