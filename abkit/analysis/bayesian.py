"""The Bayesian reading of each result, beside the frequentist one and never mixed in.

:func:`bayesian_readings` reads every :class:`~abkit.result.MetricResult` of an analysis
again, Bayesianly, from what the result holds: the lift's interval on the log scale
gives log(T/C) and its standard error exactly (abkit builds that interval as
log(T/C) ± z·se); the effect's interval gives the effect's standard error (exactly for
normal-reference tests, a little wider for Welch's t at small n).  The model
(:mod:`abkit.stats.bayesian`):

* the conjugate normal on log(T/C), prior N(μ₀, τ₀²) — by default N(0, 0.3²), or the
  prior learnt from the archive of past experiments for the metric
  (:mod:`abkit.stats.empirical_bayes`, fallback to the default below ``min_experiments``);
* a 0/1 rate (proportion, retention) with an arm below ``exact_below`` units: the
  exact Beta-Binomial with a uniform prior of each rate;
* B2B mode, when the result carries every account's value and size: Rubin's Bayesian
  bootstrap over accounts (:mod:`abkit.stats.bayesian_bootstrap`).

The decision is a :class:`~abkit.analysis.decision.Decision` of basis ``"bayesian"``
(``"bayesian guardrail"`` for a guardrail: P(harm > margin) ≤ 1 − chance passes, ≥ chance
fails): "better" when the chance to win ≥ ``chance`` and the expected loss of shipping ≤
``tolerance`` (relative to control), "worse" symmetrically, else "inconclusive".  With
several treatments, the chance that each is the best arm and the expected loss of
shipping it come from joint posterior draws; the treatments' comparisons share control's
noise, whose share of each log-ratio variance is taken as n_T/(n_C + n_T) (equal
per-unit relative variances in the arms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, TypeVar

import numpy as np

from abkit.analysis.decision import Decision, Outcome
from abkit.metrics import metric_type
from abkit.stats.bayesian import (
    FLAT_PRIOR,
    BayesRule,
    HarmCheck,
    NormalPrior,
    PosteriorSummary,
    bayes_verdict,
    bayesian_comparison,
    best_of_draws,
    beta_binomial_comparison,
    harm_check,
    normal_posterior,
    summarize,
    t_prior_posterior,
)
from abkit.stats.bayesian_bootstrap import bayesian_bootstrap
from abkit.stats.cluster import AccountArm
from abkit.stats.distributions import norm_ppf
from abkit.stats.empirical_bayes import FittedPrior, fit_prior

if TYPE_CHECKING:
    from abkit.config import BayesianSpec, ExperimentSpec
    from abkit.result import MetricResult

ResultT = TypeVar("ResultT", bound="MetricResult")

PriorSource = Literal["default", "configured", "flat", "archive", "archive fallback", "none"]


@dataclass(frozen=True)
class BayesPrior:
    """The prior a reading used.

    Parameters
    ----------
    source : str
        "default" (N(0, 0.3²)), "configured", "flat", "archive" (fitted to past
        experiments), "archive fallback" (too few past experiments: the default), or
        "none" (the exact Beta-Binomial and the Bayesian bootstrap carry their own).
    mean, sd : float
        The prior of log(T/C) (NaN for "none").
    experiments : int
        Past experiments behind an archive prior (0 otherwise).
    note : str
        What a report says about it.
    """

    source: PriorSource
    mean: float
    sd: float
    experiments: int
    note: str


@dataclass(frozen=True)
class BayesianReading:
    """The Bayesian reading of one metric × treatment.

    Parameters
    ----------
    model : str
        The model in words.
    prior : BayesPrior
        Its prior.
    raw : float
        The raw lift T/C − 1 of the data.
    absolute : PosteriorSummary
        The posterior of T − C (metric units).
    relative : PosteriorSummary
        The posterior of the lift T/C − 1; its mean is the shrunk lift.
    data_scale : str
        The scale of ``data_estimate`` and ``data_se`` ("log": log(T/C)).
    data_estimate, data_se : float
        The data's estimate and standard error on that scale (what the archive keeps).
    shrinkage : float
        How far the estimate moved to the prior mean (NaN without a normal prior).
    chance_to_be_best : float or None
        With several treatments: P(this treatment is the best arm).
    loss_if_shipped : float or None
        With several treatments: E[best arm's lift − this one's].
    harm : HarmCheck or None
        A guardrail's P(harm > margin).
    decision : Decision
        The Bayesian decision (basis "bayesian" or "bayesian guardrail").
    """

    model: str
    prior: BayesPrior
    raw: float
    absolute: PosteriorSummary
    relative: PosteriorSummary
    data_scale: str
    data_estimate: float
    data_se: float
    shrinkage: float
    decision: Decision
    chance_to_be_best: float | None = None
    loss_if_shipped: float | None = None
    harm: HarmCheck | None = None


def _z(alpha: float) -> float:
    return float(norm_ppf(1.0 - alpha / 2.0))


def log_ratio_and_se(r: MetricResult, alpha: float) -> tuple[float, float]:
    """log(T/C) and its standard error, read back from the lift's log-scale interval.

    Examples
    --------
    >>> from abkit.analysis.bayesian import log_ratio_and_se
    >>> from types import SimpleNamespace
    >>> r = SimpleNamespace(relative_effect=0.1, relative_ci=(-0.0364, 0.2558))
    >>> tuple(round(v, 4) for v in log_ratio_and_se(r, 0.05))
    (0.0953, 0.0676)
    """
    low, high = r.relative_ci
    if not (r.relative_effect > -1 and low > -1 and math.isfinite(high) and high > low):
        return math.nan, math.nan
    return math.log1p(r.relative_effect), (math.log1p(high) - math.log1p(low)) / (2 * _z(alpha))


def _effect_se(r: MetricResult, alpha: float) -> float:
    low, high = r.ci
    return (high - low) / (2 * _z(alpha)) if math.isfinite(high - low) else math.nan


def _prior(spec: BayesianSpec, fitted: FittedPrior | None) -> tuple[NormalPrior, BayesPrior]:
    if fitted is not None:
        source: PriorSource = "archive fallback" if fitted.fallback else "archive"
        p = fitted.prior
        return p, BayesPrior(source, p.mean, p.sd, fitted.experiments, fitted.note)
    if spec.flat_prior:
        return FLAT_PRIOR, BayesPrior("flat", 0.0, math.nan, 0, "flat prior: the data alone")
    configured = (spec.prior_mean, spec.prior_sd) != (0.0, 0.3)
    source = "configured" if configured else "default"
    note = f"{source} prior N({spec.prior_mean:g}, {spec.prior_sd:g}²) of log(T/C)"
    return NormalPrior(spec.prior_mean, spec.prior_sd), BayesPrior(
        source, spec.prior_mean, spec.prior_sd, 0, note
    )


def _decision(
    relative: PosteriorSummary,
    harm: HarmCheck | None,
    rule: BayesRule,
    method: str,
    absolute: PosteriorSummary | None = None,
) -> Decision:
    """The reading's decision: a guardrail's from its harm probability (with the
    interval on the margin's scale), any other metric's from the rule on the lift."""
    if harm is not None:
        on_margin = absolute if harm.scale == "absolute" and absolute is not None else relative
        outcome: Outcome = (
            "not computable" if not math.isfinite(harm.probability) else f"guardrail {harm.verdict}"  # type: ignore[assignment]
        )
        return Decision(
            outcome,
            "bayesian guardrail",
            f"P(harm > {harm.margin:g} {harm.scale}): pass at most {1 - rule.chance:g}, "
            f"fail at least {rule.chance:g}",
            math.nan,
            on_margin.interval,
            reason="no posterior" if outcome == "not computable" else None,
        )
    verdict = bayes_verdict(relative, rule)
    reason = None
    if verdict == "not computable":
        unbounded = math.isinf(relative.risk_ship) and math.isfinite(relative.chance_to_win)
        reason = (
            "the expected loss of shipping, as a share of control, is unbounded (control's "
            "rate may be 0 under the posterior)"
            if unbounded
            else "no posterior"
        )
    return Decision(verdict, "bayesian", method, math.nan, relative.interval, reason=reason)


def _t_reading(
    r: MetricResult,
    fitted: FittedPrior,
    used: BayesPrior,
    rule: BayesRule,
    method: str,
    higher: bool,
    alpha: float,
    margin: tuple[float, Literal["absolute", "relative"]] | None,
) -> BayesianReading:
    """The reading under a t prior learnt from the archive (fat-tailed lifts): the
    posterior of log(T/C) by quadrature (:func:`~abkit.stats.bayesian.t_prior_posterior`)
    with the normal likelihood of the log ratio, and of the difference with the prior
    scaled by |control| (as the normal reading scales its prior)."""
    log_est, log_se = log_ratio_and_se(r, alpha)
    relative_law, theta = t_prior_posterior(
        log_est, log_se, fitted.mean, fitted.sd, fitted.df, transform="lift"
    )
    relative = summarize(relative_law, higher, alpha)
    c_abs = abs(r.control_value)
    se_eff = _effect_se(r, alpha)
    absolute = relative  # without a difference's se, the lift's law stands
    absolute_law = None
    if math.isfinite(se_eff) and se_eff > 0 and c_abs > 0:
        absolute_law, _ = t_prior_posterior(
            r.effect, se_eff, fitted.mean * c_abs, fitted.sd * c_abs, fitted.df
        )
        absolute = summarize(absolute_law, higher, alpha)
    harm = None
    if margin is not None:
        m, scale = margin
        law = absolute_law if scale == "absolute" else relative_law
        harm = (
            harm_check(law, m, scale, higher, rule.chance)
            if law is not None
            else HarmCheck(m, scale, math.nan, "inconclusive")
        )
    note = f"{used.note}; posterior under the t prior by quadrature"
    shrinkage = (log_est - theta) / (log_est - fitted.mean) if log_est != fitted.mean else 0.0
    return BayesianReading(
        f"t prior (ν = {fitted.df:.3g}) on log(T/C), posterior by quadrature",
        replace(used, note=note),
        r.relative_effect,
        absolute,
        relative,
        "log",
        log_est,
        log_se,
        shrinkage,
        _decision(relative, harm, rule, method, absolute),
        harm=harm,
    )


def _account_arms(r: MetricResult) -> tuple[AccountArm, AccountArm, str] | None:
    """The two arms' accounts as (x, y) sums, from the B2B detail's points."""
    detail = r.b2b
    points = getattr(detail, "accounts", None)
    weighting = getattr(detail, "weighting", None)
    if not points or weighting not in ("user", "account") or len(points) != 2:
        return None
    control, treatment = (points[k] for k in points)  # control first, as written
    arms = []
    for p in (control, treatment):
        size = np.asarray(p.size, dtype=float)
        value = np.nan_to_num(np.asarray(p.value, dtype=float))
        arms.append(AccountArm(value * size, size))
    return arms[0], arms[1], str(weighting)


def reading(
    r: MetricResult,
    spec: BayesianSpec,
    alpha: float,
    fitted: FittedPrior | None = None,
    margin: tuple[float, Literal["absolute", "relative"]] | None = None,
    b2b: bool = False,
) -> BayesianReading:
    """The Bayesian reading of one result (the module describes the model).

    Parameters
    ----------
    r : MetricResult
        The frequentist result.
    spec : BayesianSpec
        The ``[bayesian]`` settings.
    alpha : float
        1 − the credible level (the analysis's α).
    fitted : FittedPrior or None
        The prior learnt from the archive for this metric, if any.
    margin : tuple or None
        A guardrail's (margin, scale).
    b2b : bool
        Accounts are the units: the Bayesian bootstrap when the accounts are known.

    Returns
    -------
    BayesianReading
    """
    rule = BayesRule(spec.chance, spec.tolerance)
    higher = r.direction != "decrease"
    m: float | None = None
    m_scale: Literal["absolute", "relative"] = "relative"
    if margin is not None:
        m, m_scale = margin
    log_est, log_se = log_ratio_and_se(r, alpha)
    prior, used = _prior(spec, fitted)
    tolerance = f"{rule.tolerance * 100:g} %"
    method = f"chance to win ≥ {rule.chance:g} and expected loss ≤ {tolerance} of control"
    arms = _account_arms(r) if b2b else None
    none = BayesPrior("none", math.nan, math.nan, 0, "")
    if arms is not None:
        boot = bayesian_bootstrap(
            arms[0], arms[1], arms[2], spec.draws, spec.seed, higher, alpha, m, m_scale, rule.chance
        )
        model = f"Bayesian bootstrap over accounts (Rubin 1981), {spec.draws:,} draws"
        prior_used = replace(none, note="flat Dirichlet weights on the accounts seen")
        return BayesianReading(
            model,
            prior_used,
            r.relative_effect,
            boot.absolute,
            boot.relative,
            "log",
            log_est,
            log_se,
            math.nan,
            _decision(boot.relative, boot.harm, rule, method, boot.absolute),
            harm=boot.harm,
        )
    small = min(r.control_n, r.treatment_n) < spec.exact_below
    # a 0/1 outcome per unit (proportion, retention, adoption): successes of n trials
    binary = metric_type(r.metric_type).is_rate
    if binary and small and r.control_n > 0 and r.treatment_n > 0:
        xc = round(r.control_value * r.control_n)
        xt = round(r.treatment_value * r.treatment_n)
        exact = beta_binomial_comparison(
            xc,
            r.control_n,
            xt,
            r.treatment_n,
            higher_is_better=higher,
            alpha=alpha,
            margin=m,
            margin_scale=m_scale,
            chance=rule.chance,
        )
        prior_used = replace(none, note="uniform Beta(1, 1) prior of each rate")
        return BayesianReading(
            exact.model,
            prior_used,
            r.relative_effect,
            exact.absolute,
            exact.relative,
            "log",
            log_est,
            log_se,
            math.nan,
            _decision(exact.relative, exact.harm, rule, method, exact.absolute),
            harm=exact.harm,
        )
    t_prior = fitted is not None and fitted.family == "t" and not fitted.fallback
    if t_prior and fitted is not None and math.isfinite(fitted.df) and log_se > 0:
        return _t_reading(r, fitted, used, rule, method, higher, alpha, margin)
    # the normal on log(T/C): C and T with Var(C) + Var(T) matching the effect's se and
    # Var(T)/T² + Var(C)/C² matching the log ratio's, split as n_T : n_C
    c, t = r.control_value, r.treatment_value
    se_eff = _effect_se(r, alpha)
    share_c = r.treatment_n / (r.control_n + r.treatment_n) if r.control_n + r.treatment_n else 0.5
    rel_var_c, rel_var_t = log_se**2 * share_c, log_se**2 * (1 - share_c)
    c_var = rel_var_c * c * c if math.isfinite(log_se) else se_eff**2 / 2
    t_var = rel_var_t * t * t if math.isfinite(log_se) else se_eff**2 / 2
    comp = bayesian_comparison(
        c, t, c_var, t_var, prior, "log", higher, alpha, m, m_scale, rule.chance
    )
    # the absolute posterior from the effect's own standard error
    c_abs = abs(c)
    abs_prior = NormalPrior(prior.mean * c_abs, prior.sd * c_abs) if prior.proper else FLAT_PRIOR
    a = normal_posterior(t - c, se_eff, abs_prior)
    absolute, harm = comp.absolute, comp.harm
    if math.isfinite(a.sd):
        from abkit.stats.bayesian import NormalLaw

        absolute = summarize(NormalLaw(a.mean, a.sd), higher, alpha)
        if harm is not None and harm.scale == "absolute":  # on the posterior shown
            harm = harm_check(NormalLaw(a.mean, a.sd), harm.margin, "absolute", higher, rule.chance)
    return BayesianReading(
        comp.model,
        used,
        r.relative_effect,
        absolute,
        comp.relative,
        "log",
        log_est,
        log_se,
        comp.posterior.shrinkage,
        _decision(comp.relative, harm, rule, method, absolute),
        harm=harm,
    )


def best_arms(
    readings: list[BayesianReading],
    results: list[MetricResult],
    higher_is_better: bool,
    draws: int,
    seed: int,
) -> list[tuple[float, float]]:
    """Per treatment of one metric: (chance to be the best arm, expected loss of shipping
    it), from joint posterior draws of the log ratios sharing control's noise.

    Parameters
    ----------
    readings, results : list
        The treatments' readings and results, in the same order.
    higher_is_better : bool
        The good direction.
    draws, seed : int
        Monte Carlo draws and seed.

    Returns
    -------
    list of tuple of float
    """
    k = len(readings)
    means = np.array([rd.data_estimate for rd in readings])
    ses = np.array([rd.data_se for rd in readings])
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(ses))):
        return [(math.nan, math.nan)] * k
    n_c = np.array([r.control_n for r in results], dtype=float)
    n_t = np.array([r.treatment_n for r in results], dtype=float)
    shared_var = float(np.mean(ses**2 * n_t / (n_c + n_t)))
    cov = np.full((k, k), shared_var) + np.diag(np.maximum(ses**2 - shared_var, 1e-30))
    prior_sd = readings[0].prior.sd
    prior_mean = readings[0].prior.mean
    if readings[0].prior.source != "none" and math.isfinite(prior_sd):
        precision = np.linalg.inv(cov) + np.eye(k) / prior_sd**2
        post_cov = np.linalg.inv(precision)
        post_mean = post_cov @ (np.linalg.solve(cov, means) + prior_mean / prior_sd**2)
    else:
        post_cov, post_mean = cov, means
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(post_mean, post_cov, size=draws, method="cholesky")
    lifts = np.column_stack([np.zeros(draws), np.expm1(theta)])
    chance, loss = best_of_draws(lifts, higher_is_better)
    return [(float(chance[i + 1]), float(loss[i + 1])) for i in range(k)]


def bayesian_readings(
    results: list[ResultT],
    spec: BayesianSpec,
    alpha: float,
    priors: dict[str, FittedPrior] | None = None,
    margins: dict[str, tuple[float, Literal["absolute", "relative"]]] | None = None,
    b2b: bool = False,
) -> list[ResultT]:
    """Every result with its Bayesian reading (``MetricResult.bayesian``).

    Parameters
    ----------
    results : list of MetricResult
        The analysis's results.
    spec : BayesianSpec
        The ``[bayesian]`` settings.
    alpha : float
        1 − the credible level.
    priors : dict of str to FittedPrior, or None
        Per metric, the prior learnt from the archive.
    margins : dict or None
        Per guardrail metric, its (margin, scale).
    b2b : bool
        Accounts are the units of inference.

    Returns
    -------
    list of MetricResult
    """
    priors = priors or {}
    margins = margins or {}
    read = [
        reading(r, spec, alpha, priors.get(r.metric), margins.get(r.metric), b2b) for r in results
    ]
    by_metric: dict[str, list[int]] = {}
    for i, r in enumerate(results):
        by_metric.setdefault(r.metric, []).append(i)
    for idx in by_metric.values():
        if len(idx) < 2 or any(read[i].prior.source == "none" for i in idx):
            continue
        best = best_arms(
            [read[i] for i in idx],
            [results[i] for i in idx],
            results[idx[0]].direction != "decrease",
            spec.draws,
            spec.seed,
        )
        for i, (chance, loss) in zip(idx, best, strict=True):
            read[i] = replace(read[i], chance_to_be_best=chance, loss_if_shipped=loss)
    return [replace(r, bayesian=rd) for r, rd in zip(results, read, strict=True)]


def with_bayesian(results: list[ResultT], spec: ExperimentSpec, name: str) -> list[ResultT]:
    """The analysis's results with their Bayesian readings, the priors learnt from
    ``[bayesian] archive`` (leaving out this experiment's own earlier rows) when set.

    Parameters
    ----------
    results : list of MetricResult
        The frequentist results.
    spec : ExperimentSpec
        The experiment (its ``bayesian`` section, α, metrics and mode).
    name : str
        The experiment's name, left out of the archive's history.

    Returns
    -------
    list of MetricResult
    """
    settings = spec.bayesian
    priors: dict[str, FittedPrior] = {}
    if settings.archive is not None:
        from abkit.archive import Archive

        archive = Archive(settings.archive)
        empty = not archive.is_url and not archive.path.is_dir()  # created by this run's add
        for metric in dict.fromkeys(r.metric for r in results):
            if empty:
                priors[metric] = fit_prior([], [], minimum=settings.min_experiments)
                continue
            priors[metric] = archive.prior(
                metric,
                method=settings.method,
                family=settings.family,
                minimum=settings.min_experiments,
                exclude=name,
            )
    margins: dict[str, tuple[float, Literal["absolute", "relative"]]] = {}
    for m in spec.metrics:
        if m.guardrail and m.margin is not None:
            margins[m.name] = (m.margin, "absolute")
        elif m.guardrail and m.relative_margin is not None:
            margins[m.name] = (m.relative_margin, "relative")
    return bayesian_readings(results, settings, spec.alpha, priors, margins, b2b=spec.mode == "b2b")
