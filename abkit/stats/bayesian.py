"""A Bayesian reading of a two-arm comparison: posterior, chance to win, expected loss.

The model is GrowthBook's *effect* Bayesian test (gbstats ``EffectBayesianABTest``): the
estimated effect δ̂ with standard error s is taken as δ̂ | δ ~ N(δ, s²) and the effect has a
normal prior δ ~ N(μ₀, τ₀²), so that the posterior is normal (the conjugate update)

    1/τ₁² = 1/s² + 1/τ₀²,    μ₁ = τ₁² (δ̂/s² + μ₀/τ₀²),

and with a flat prior (τ₀ = ∞, GrowthBook's "improper" prior) μ₁ = δ̂, τ₁ = s.  From the
posterior N(μ₁, τ₁²) of the effect, with g = +1 when higher is better and −1 otherwise:

* credible interval: μ₁ ± z_{1−α/2} τ₁;
* chance to win (beat control): P(gδ > 0) = Φ(gμ₁/τ₁);
* expected loss (risk) of shipping the treatment, E[max(0, −gδ)] = τ₁φ(μ₁/τ₁) − gμ₁Φ(−gμ₁/τ₁),
  and of keeping control, E[max(0, gδ)]: the loss one expects from the choice, in the
  metric's units (absolute) or as a share of control (relative).  These are the normal's
  partial expectations, which gbstats writes as truncated-normal means times a probability.

Three models of the effect (``scale``):

* ``"log"`` (default): δ = log(T/C), s² = Var(T)/T² + Var(C)/C², as abkit's lift interval
  (:func:`abkit.stats.fixed_horizon.relative_effect`).  The lift L = e^δ − 1 is lognormal
  shifted by one: E[L] = e^{μ₁+τ₁²/2} − 1, its interval is exp(μ₁ ± zτ₁) − 1 (never below
  −100 %) and E[max(0, L)] = e^{μ₁+τ₁²/2}Φ((μ₁+τ₁²)/τ₁) − Φ(μ₁/τ₁),
  E[max(0, −L)] = Φ(−μ₁/τ₁) − e^{μ₁+τ₁²/2}Φ(−(μ₁+τ₁²)/τ₁).
* ``"lift"``: δ = (T − C)/C with the delta-method s² = Var(T)/C² + Var(C)T²/C⁴, exactly
  gbstats' relative effect: use it to compare with GrowthBook.
* ``"absolute"``: δ = T − C, s² = Var(T) + Var(C).

Every reading carries both an absolute and a relative summary; the prior is stated on the
relative scale (a share of control, N(0, 0.3²) by default: GrowthBook's proper prior) and
is rescaled to metric units by |C| for the absolute summary, as gbstats does.  For a
proportion with few units, :func:`beta_binomial_comparison` replaces the normal
approximation by the exact Beta posteriors of the two rates (one-dimensional integrals).

Decision (:func:`bayes_verdict`): ship ("better") when the chance to win is at least
``chance`` (0.95) and the expected loss of shipping at most ``tolerance`` (0.0025, i.e.
0.25 % of control: GrowthBook's default acceptable risk), "worse" symmetrically, else
"inconclusive".  A guardrail reads as the posterior probability that the harm exceeds its
margin (:func:`harm_probability`).

References
----------
.. [1] GrowthBook, gbstats ``bayesian/tests.py`` (``EffectBayesianABTest``, ``get_risk``),
   https://github.com/growthbook/growthbook/tree/main/packages/stats
.. [2] A. Deng, "Objective Bayesian two sample hypothesis testing for online controlled
   experiments", WWW 2015.
.. [3] A. Gelman et al., *Bayesian Data Analysis*, 3rd ed., CRC Press 2013, §2.5 (normal
   with known variance).
.. [4] C. Stucchio, "Bayesian A/B Testing at VWO", 2015 (expected loss as the decision
   quantity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import special

from abkit.stats.distributions import norm_cdf, norm_ppf

Scale = Literal["log", "lift", "absolute"]
Verdict = Literal["better", "worse", "inconclusive", "not computable"]
SCALES: tuple[Scale, ...] = ("log", "lift", "absolute")
DEFAULT_CHANCE = 0.95
DEFAULT_TOLERANCE = 0.0025
DEFAULT_DRAWS = 100_000


@dataclass(frozen=True)
class NormalPrior:
    """A normal prior N(mean, sd²) of the relative effect (a share of control).

    Parameters
    ----------
    mean : float, default 0
        The prior mean μ₀ of the lift (0: changes neither help nor harm on average).
    sd : float, default 0.3
        The prior standard deviation τ₀; ``math.inf`` for a flat (improper) prior.

    Examples
    --------
    >>> from abkit.stats.bayesian import NormalPrior
    >>> NormalPrior().proper, NormalPrior(0.0, float("inf")).proper
    (True, False)
    """

    mean: float = 0.0
    sd: float = 0.3

    @property
    def proper(self) -> bool:
        """False for a flat prior (infinite ``sd``)."""
        return math.isfinite(self.sd)


DEFAULT_PRIOR = NormalPrior()
FLAT_PRIOR = NormalPrior(0.0, math.inf)


@dataclass(frozen=True)
class NormalPosterior:
    """The normal posterior N(mean, sd²) of an effect on the model's scale.

    Parameters
    ----------
    mean : float
        The posterior mean μ₁.
    sd : float
        The posterior standard deviation τ₁.
    shrinkage : float
        How far the estimate was pulled to the prior mean, s²/(s² + τ₀²) in [0, 1]
        (0 for a flat prior).
    """

    mean: float
    sd: float
    shrinkage: float


def normal_posterior(estimate: float, se: float, prior: NormalPrior) -> NormalPosterior:
    """The conjugate normal update of an estimate with a known standard error.

    Parameters
    ----------
    estimate : float
        The estimated effect δ̂.
    se : float
        Its standard error s (> 0).
    prior : NormalPrior
        The prior N(μ₀, τ₀²) on the same scale.

    Returns
    -------
    NormalPosterior
        1/τ₁² = 1/s² + 1/τ₀², μ₁ = τ₁²(δ̂/s² + μ₀/τ₀²); shrinkage B = s²/(s² + τ₀²), so
        that μ₁ = (1 − B)δ̂ + Bμ₀.  NaN when s is not positive and finite.

    Notes
    -----
    Gelman et al., *Bayesian Data Analysis*, 3rd ed., §2.5.

    Examples
    --------
    >>> from abkit.stats.bayesian import NormalPrior, normal_posterior
    >>> p = normal_posterior(0.10, 0.05, NormalPrior(0.0, 0.05))
    >>> round(p.mean, 4), round(p.sd, 5), p.shrinkage
    (0.05, 0.03536, 0.5)
    """
    if not (se > 0 and math.isfinite(se) and math.isfinite(estimate)):
        return NormalPosterior(math.nan, math.nan, math.nan)
    if not prior.proper:
        return NormalPosterior(estimate, se, 0.0)
    shrink = se * se / (se * se + prior.sd * prior.sd)
    mean = (1.0 - shrink) * estimate + shrink * prior.mean
    sd = math.sqrt(1.0 / (1.0 / (se * se) + 1.0 / (prior.sd * prior.sd)))
    return NormalPosterior(mean, sd, shrink)


def _phi(z: float) -> float:
    """The standard normal density."""
    return math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


class Law(Protocol):
    """A posterior law of an effect X, as a summary needs it."""

    def mean(self) -> float: ...
    def cdf(self, x: float) -> float: ...
    def ppf(self, q: float) -> float: ...
    def positive_part(self) -> float: ...  # E[max(0, X)]
    def negative_part(self) -> float: ...  # E[max(0, −X)]


@dataclass(frozen=True)
class NormalLaw:
    """X ~ N(m, s²).

    Examples
    --------
    >>> from abkit.stats.bayesian import NormalLaw
    >>> law = NormalLaw(0.0, 1.0)
    >>> round(law.positive_part(), 6), round(law.ppf(0.975), 6)
    (0.398942, 1.959964)
    """

    m: float
    s: float

    def mean(self) -> float:
        return self.m

    def cdf(self, x: float) -> float:
        return float(norm_cdf((x - self.m) / self.s))

    def ppf(self, q: float) -> float:
        return float(self.m + self.s * norm_ppf(q))

    def positive_part(self) -> float:
        z = self.m / self.s
        return float(self.s * _phi(z) + self.m * norm_cdf(z))

    def negative_part(self) -> float:
        z = self.m / self.s
        return float(self.s * _phi(z) - self.m * norm_cdf(-z))


@dataclass(frozen=True)
class LogNormalLiftLaw:
    """L = e^θ − 1 with θ ~ N(m, s²): the lift when the log ratio is normal.

    Examples
    --------
    >>> from abkit.stats.bayesian import LogNormalLiftLaw
    >>> law = LogNormalLiftLaw(0.0, 0.1)
    >>> round(law.mean(), 6), round(law.positive_part() - law.negative_part(), 6)
    (0.005013, 0.005013)
    """

    m: float
    s: float

    def mean(self) -> float:
        return math.expm1(self.m + self.s * self.s / 2.0)

    def cdf(self, x: float) -> float:
        if x <= -1.0:
            return 0.0
        return float(norm_cdf((math.log1p(x) - self.m) / self.s))

    def ppf(self, q: float) -> float:
        return math.expm1(float(self.m + self.s * norm_ppf(q)))

    def positive_part(self) -> float:
        a, s = self.m / self.s, self.s
        return float(math.exp(self.m + s * s / 2.0) * norm_cdf(a + s) - norm_cdf(a))

    def negative_part(self) -> float:
        a, s = self.m / self.s, self.s
        return float(norm_cdf(-a) - math.exp(self.m + s * s / 2.0) * norm_cdf(-a - s))


@dataclass(frozen=True)
class PosteriorSummary:
    """What a posterior says about the effect on one scale.

    Parameters
    ----------
    mean : float
        The posterior mean of the effect (T − C, or the lift T/C − 1).
    interval : tuple of float
        The equal-tailed (1 − α) credible interval.
    chance_to_win : float
        P(the treatment is better than control), direction-aware.
    risk_ship : float
        Expected loss of shipping the treatment: E[max(0, harm)], in the scale's units.
    risk_keep : float
        Expected loss of keeping control: E[max(0, gain forgone)].
    """

    mean: float
    interval: tuple[float, float]
    chance_to_win: float
    risk_ship: float
    risk_keep: float


@dataclass(frozen=True)
class GridLaw:
    """X = g(θ) for a posterior of θ known on a fine grid of points (quadrature): the
    law the t prior's reading uses, where no conjugate form exists.

    Parameters
    ----------
    values : numpy.ndarray
        g(θ) at the grid's points, increasing.
    weights : numpy.ndarray
        The posterior probability of each point's cell (they sum to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian import GridLaw
    >>> x = np.linspace(-8, 8, 16001)
    >>> w = np.exp(-0.5 * x**2)
    >>> law = GridLaw(x, w / w.sum())  # N(0, 1) on a grid
    >>> round(law.cdf(1.0), 4), round(law.ppf(0.975), 3), round(law.positive_part(), 4)
    (0.8413, 1.96, 0.3989)
    """

    values: np.ndarray
    weights: np.ndarray

    def mean(self) -> float:
        return float(self.weights @ self.values)

    def cdf(self, x: float) -> float:
        """P(X ≤ x), interpolated between the cells' midpoints."""
        cumulative = np.cumsum(self.weights) - self.weights / 2.0
        return float(np.clip(np.interp(x, self.values, cumulative), 0.0, 1.0))

    def ppf(self, q: float) -> float:
        cumulative = np.cumsum(self.weights) - self.weights / 2.0
        return float(np.interp(q, cumulative, self.values))

    def positive_part(self) -> float:
        return float(self.weights @ np.maximum(self.values, 0.0))

    def negative_part(self) -> float:
        return float(self.weights @ np.maximum(-self.values, 0.0))


def t_prior_posterior(
    estimate: float,
    se: float,
    prior_mean: float,
    prior_scale: float,
    df: float,
    transform: Literal["identity", "lift"] = "identity",
    points: int = 20_001,
) -> tuple[GridLaw, float]:
    """The posterior of θ under a t prior and a normal likelihood, by quadrature.

    p(θ | θ̂) ∝ φ((θ̂ − θ)/se) · t_ν((θ − μ)/s), evaluated on ``points`` equally spaced
    points over θ̂ ± 12·se (where the likelihood is not negligible) and normalised; a
    fat-tailed prior (Azevedo et al. 2020) shrinks a small estimate towards μ more, and
    a large one less, than the normal of the same variance would.

    Parameters
    ----------
    estimate, se : float
        The data's estimate θ̂ and its standard error.
    prior_mean, prior_scale, df : float
        The t prior's location μ, scale s and degrees of freedom ν.
    transform : {"identity", "lift"}, default "identity"
        The law returned: of θ itself, or of the lift e^θ − 1 (θ a log ratio).
    points : int, default 20,001
        The grid's size.

    Returns
    -------
    tuple of (GridLaw, float)
        The posterior law, and the posterior mean of θ.

    References
    ----------
    .. [1] E. M. Azevedo, A. Deng, J. L. Montiel Olea, J. Rao and E. G. Weyl, "A/B
       Testing with Fat Tails", Journal of Political Economy 128, 4614–4672, 2020.

    Examples
    --------
    >>> from abkit.stats.bayesian import t_prior_posterior
    >>> small, _ = t_prior_posterior(0.01, 0.01, 0.0, 0.01, 3.0)
    >>> large, _ = t_prior_posterior(0.10, 0.01, 0.0, 0.01, 3.0)
    >>> round(small.mean(), 4), round(large.mean(), 4)  # shrinks a little lift, not a big one
    (0.0054, 0.0959)
    """
    from scipy.stats import t as student

    theta = np.linspace(estimate - 12.0 * se, estimate + 12.0 * se, points)
    log_w = -0.5 * ((theta - estimate) / se) ** 2 + student.logpdf(
        theta, df, loc=prior_mean, scale=prior_scale
    )
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    values = np.expm1(theta) if transform == "lift" else theta
    return GridLaw(values, w), float(w @ theta)


def summarize(law: Law, higher_is_better: bool = True, alpha: float = 0.05) -> PosteriorSummary:
    """The mean, credible interval, chance to win and both expected losses of a law.

    With g = +1 when higher is better and −1 otherwise: chance to win P(gX > 0) =
    1 − F(0) (or F(0)); risk of shipping E[max(0, −gX)]; risk of keeping control
    E[max(0, gX)].

    Parameters
    ----------
    law : Law
        The posterior of the effect X.
    higher_is_better : bool, default True
        The metric's good direction.
    alpha : float, default 0.05
        1 − the credible level.

    Returns
    -------
    PosteriorSummary

    Examples
    --------
    >>> from abkit.stats.bayesian import NormalLaw, summarize
    >>> s = summarize(NormalLaw(0.02, 0.01))
    >>> round(s.chance_to_win, 4), round(s.risk_ship, 6), tuple(round(v, 4) for v in s.interval)
    (0.9772, 8.5e-05, (0.0004, 0.0396))
    """
    below = law.cdf(0.0)
    interval = (law.ppf(alpha / 2.0), law.ppf(1.0 - alpha / 2.0))
    pos, neg = law.positive_part(), law.negative_part()
    if higher_is_better:
        return PosteriorSummary(law.mean(), interval, 1.0 - below, neg, pos)
    return PosteriorSummary(law.mean(), interval, below, pos, neg)


@dataclass(frozen=True)
class HarmCheck:
    """A guardrail read as the posterior probability that harm exceeds its margin.

    Parameters
    ----------
    margin : float
        The harmful margin (> 0), on ``scale``.
    scale : {"absolute", "relative"}
        Metric units, or a share of control.
    probability : float
        P(harm > margin | data).
    verdict : {"pass", "fail", "inconclusive"}
        "pass" when the probability is at most 1 − chance, "fail" when at least chance.
    """

    margin: float
    scale: Literal["absolute", "relative"]
    probability: float
    verdict: Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class BayesianComparison:
    """The Bayesian reading of one treatment against control.

    Parameters
    ----------
    model : str
        The model in words (the scale of the normal, or the exact Beta-Binomial).
    prior_mean, prior_sd : float
        The prior of the relative effect (``prior_sd`` inf: flat); for the Beta-Binomial
        the prior Beta(a, b) of each rate is in the model's words and these are NaN.
    posterior : NormalPosterior
        The posterior on the model's scale (NaN for the Beta-Binomial).
    absolute : PosteriorSummary
        The reading of T − C, in metric units.
    relative : PosteriorSummary
        The reading of the lift T/C − 1.
    harm : HarmCheck or None
        The guardrail reading, when a margin was given.
    """

    model: str
    prior_mean: float
    prior_sd: float
    posterior: NormalPosterior
    absolute: PosteriorSummary
    relative: PosteriorSummary
    harm: HarmCheck | None = None


def harm_check(
    law: Law,
    margin: float,
    scale: Literal["absolute", "relative"],
    higher_is_better: bool,
    chance: float,
) -> HarmCheck:
    """A guardrail read on a posterior: P(harm > margin) = P(θ < −margin) when higher is
    better, P(θ > margin) otherwise; pass at most 1 − ``chance``, fail at least
    ``chance``.

    Examples
    --------
    >>> from abkit.stats.bayesian import NormalLaw, harm_check
    >>> h = harm_check(NormalLaw(0.0, 0.01), 0.02, "absolute", True, 0.95)
    >>> round(h.probability, 4), h.verdict
    (0.0228, 'pass')
    """
    p = law.cdf(-margin) if higher_is_better else 1.0 - law.cdf(margin)
    verdict: Literal["pass", "fail", "inconclusive"] = (
        "pass" if p <= 1.0 - chance else "fail" if p >= chance else "inconclusive"
    )
    return HarmCheck(margin, scale, p, verdict)


def _nan_summary() -> PosteriorSummary:
    nan = math.nan
    return PosteriorSummary(nan, (nan, nan), nan, nan, nan)


def relative_model(
    c_value: float, t_value: float, c_var: float, t_var: float, scale: Scale
) -> tuple[float, float]:
    """The relative effect and its standard error on the model's scale.

    ``"log"``: log(T/C) with s² = Var(T)/T² + Var(C)/C²; ``"lift"``: (T − C)/C with
    s² = Var(T)/C² + Var(C)·T²/C⁴ (the delta method, as gbstats' relative effect).

    Parameters
    ----------
    c_value, t_value : float
        The arm estimates C and T.
    c_var, t_var : float
        Their sampling variances.
    scale : {"log", "lift"}
        The model's scale.

    Returns
    -------
    tuple of float
        (estimate, standard error); NaN when undefined (C = 0, or T/C ≤ 0 on the log scale).

    Examples
    --------
    >>> from abkit.stats.bayesian import relative_model
    >>> tuple(round(v, 5) for v in relative_model(10.0, 11.0, 0.25, 0.25, "lift"))
    (0.1, 0.07433)
    """
    if c_value == 0 or not math.isfinite(c_value) or not math.isfinite(t_value):
        return math.nan, math.nan
    if scale == "lift":
        est = (t_value - c_value) / c_value
        var = t_var / c_value**2 + c_var * t_value**2 / c_value**4
        return est, math.sqrt(var)
    if not t_value / c_value > 0:
        return math.nan, math.nan
    cv_t = math.sqrt(t_var) / abs(t_value)
    cv_c = math.sqrt(c_var) / abs(c_value)
    return math.log(t_value / c_value), math.sqrt(cv_t * cv_t + cv_c * cv_c)


def bayesian_comparison(
    c_value: float,
    t_value: float,
    c_var: float,
    t_var: float,
    prior: NormalPrior = DEFAULT_PRIOR,
    scale: Scale = "log",
    higher_is_better: bool = True,
    alpha: float = 0.05,
    margin: float | None = None,
    margin_scale: Literal["absolute", "relative"] = "relative",
    chance: float = DEFAULT_CHANCE,
) -> BayesianComparison:
    """The conjugate-normal Bayesian reading of treatment against control.

    The relative effect is modelled on ``scale`` ("log" or "lift", see the module) with
    the prior N(μ₀, τ₀²); the absolute effect T − C, with s² = Var(T) + Var(C), gets the
    prior N(μ₀|C|, τ₀²C²) (the relative prior in metric units, as gbstats rescales it).
    With ``scale="absolute"`` the relative summary is the absolute posterior divided by
    C.  Each posterior is then summarised by :func:`summarize`; a guardrail ``margin``
    adds :class:`HarmCheck`, P(harm > margin).

    Parameters
    ----------
    c_value, t_value : float
        The arm estimates C and T.
    c_var, t_var : float
        Their sampling variances (squared standard errors).
    prior : NormalPrior, default N(0, 0.3²)
        The prior of the lift.
    scale : {"log", "lift", "absolute"}, default "log"
        Where the normal model of the relative effect lives.
    higher_is_better : bool, default True
        The metric's good direction.
    alpha : float, default 0.05
        1 − the credible level.
    margin : float or None
        A guardrail's harmful margin (> 0).
    margin_scale : {"absolute", "relative"}, default "relative"
        The margin's scale.
    chance : float, default 0.95
        The posterior probability a guardrail verdict needs.

    Returns
    -------
    BayesianComparison

    References
    ----------
    .. [1] GrowthBook gbstats, ``EffectBayesianABTest`` (effect prior, risk).
    .. [2] A. Deng, WWW 2015.

    Examples
    --------
    >>> from abkit.stats.bayesian import bayesian_comparison
    >>> r = bayesian_comparison(0.10, 0.11, 0.003**2, 0.003**2)
    >>> round(r.relative.mean, 4), round(r.relative.chance_to_win, 4)
    (0.099, 0.9901)
    >>> round(r.relative.risk_ship, 6), round(r.absolute.chance_to_win, 4)
    (0.000133, 0.9902)
    """
    rel_est, rel_se = (
        relative_model(c_value, t_value, c_var, t_var, scale)
        if scale != "absolute"
        else (math.nan, math.nan)
    )
    abs_se = math.sqrt(c_var + t_var) if c_var >= 0 and t_var >= 0 else math.nan
    c_abs = abs(c_value)
    abs_prior = (
        NormalPrior(prior.mean * c_abs, prior.sd * c_abs)
        if prior.proper and c_abs > 0
        else FLAT_PRIOR
    )
    abs_post = normal_posterior(t_value - c_value, abs_se, abs_prior)
    absolute = (
        summarize(NormalLaw(abs_post.mean, abs_post.sd), higher_is_better, alpha)
        if math.isfinite(abs_post.sd)
        else _nan_summary()
    )
    rel_law: Law | None = None
    if scale == "absolute":
        post = abs_post
        if math.isfinite(post.sd) and c_abs > 0:
            rel_law = NormalLaw(post.mean / c_value, post.sd / c_abs)
    else:
        post = normal_posterior(rel_est, rel_se, prior)
        if math.isfinite(post.sd):
            rel_law = (
                LogNormalLiftLaw(post.mean, post.sd)
                if scale == "log"
                else NormalLaw(post.mean, post.sd)
            )
    relative = (
        summarize(rel_law, higher_is_better, alpha) if rel_law is not None else _nan_summary()
    )
    harm = None
    if margin is not None:
        law: Law | None = rel_law if margin_scale == "relative" else None
        if margin_scale == "absolute" and math.isfinite(abs_post.sd):
            law = NormalLaw(abs_post.mean, abs_post.sd)
        harm = (
            harm_check(law, margin, margin_scale, higher_is_better, chance)
            if law is not None
            else HarmCheck(margin, margin_scale, math.nan, "inconclusive")
        )
    words = {
        "log": "conjugate normal on the log ratio",
        "lift": "conjugate normal on the lift (delta method)",
        "absolute": "conjugate normal on the difference",
    }[scale]
    return BayesianComparison(words, prior.mean, prior.sd, post, absolute, relative, harm)


# --- the exact Beta-Binomial ---------------------------------------------------------


@dataclass(frozen=True)
class BetaPrior:
    """A Beta(a, b) prior of each arm's rate (Beta(1, 1): uniform).

    Examples
    --------
    >>> from abkit.stats.bayesian import BetaPrior
    >>> BetaPrior()
    BetaPrior(a=1.0, b=1.0)
    """

    a: float = 1.0
    b: float = 1.0


_PROBS = np.concatenate(
    [
        [1e-15, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 0.01, 0.03],
        np.linspace(0.1, 0.9, 9),
        [0.97, 0.99, 0.999, 1 - 1e-4, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12, 1 - 1e-15],
    ]
)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


@dataclass(frozen=True)
class BetaDifferenceLaw:
    """X = p_T − p_C (or p_T/p_C − 1 when ``relative``) with independent Beta posteriors.

    Every quantity is an expectation over the control rate, E[h(p_C)] = ∫ f_C(x) h(x) dx,
    by composite 20-point Gauss–Legendre on panels cut at both arms' quantiles (from
    10⁻¹⁵ to 1 − 10⁻¹⁵, the treatment's mapped through the shift), which resolves both
    laws whatever their widths (the tests check it against ``scipy.integrate.quad`` and
    Evan Miller's closed form to 1e-9): F(d) = E[F_T(p_C + d)] (relative:
    E[F_T((1 + d)p_C)]), and the expected losses E[max(0, p_C − p_T)] =
    E[p_C F_T(p_C) − m_T F_T⁺(p_C)], with m_T the treatment mean and F_T⁺ the cdf of
    Beta(a_T + 1, b_T) (since E[Y; Y < x] = m_T F_T⁺(x)); relative losses divide the inner
    expectation by p_C.

    Examples
    --------
    >>> from abkit.stats.bayesian import BetaDifferenceLaw
    >>> law = BetaDifferenceLaw(3.0, 9.0, 6.0, 6.0, relative=False)
    >>> round(law.mean(), 6), round(law.cdf(0.0), 6)
    (0.25, 0.091331)
    """

    a_c: float
    b_c: float
    a_t: float
    b_t: float
    relative: bool

    def _nodes(self, shift: float = 0.0, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Nodes x and weights f_C(x)·w for E[h(p_C)], with panels also cut where the
        treatment's quantiles fall for h(x) = F_T(scale·x + shift)."""
        qc = special.betaincinv(self.a_c, self.b_c, _PROBS)
        qt = (special.betaincinv(self.a_t, self.b_t, _PROBS) - shift) / scale
        lo, hi = float(qc[0]), float(qc[-1])
        cuts = np.unique(np.clip(np.concatenate([qc, qt, [shift / -scale]]), lo, hi))
        half = np.diff(cuts) / 2.0
        mid = (cuts[:-1] + cuts[1:]) / 2.0
        x = (mid[:, None] + half[:, None] * _GL_X).ravel()
        w = (half[:, None] * _GL_W).ravel()
        log_pdf = (
            (self.a_c - 1.0) * np.log(x)
            + (self.b_c - 1.0) * np.log1p(-x)
            - special.betaln(self.a_c, self.b_c)
        )
        return x, w * np.exp(log_pdf)

    def _ft(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(special.betainc(self.a_t, self.b_t, np.clip(x, 0.0, 1.0)), dtype=float)

    def mean(self) -> float:
        m_t = self.a_t / (self.a_t + self.b_t)
        if not self.relative:
            return m_t - self.a_c / (self.a_c + self.b_c)
        if self.a_c <= 1.0:
            return math.inf  # E[1/p_C] diverges
        return m_t * (self.a_c + self.b_c - 1.0) / (self.a_c - 1.0) - 1.0

    def cdf(self, x: float) -> float:
        if self.relative:
            if x <= -1.0:
                return 0.0
            nodes, w = self._nodes(scale=1.0 + x)
            inner = self._ft((1.0 + x) * nodes)
        else:
            nodes, w = self._nodes(shift=x)
            inner = self._ft(nodes + x)
        return float(min(1.0, max(0.0, float(w @ inner))))

    def ppf(self, q: float) -> float:
        lo, hi = -1.0, 1.0
        if self.relative:
            while self.cdf(hi) < q:
                hi *= 2.0
                if hi > 1e12:
                    return math.inf
        from scipy import optimize  # loaded when first needed (0.15 s)

        return float(optimize.brentq(lambda d: self.cdf(d) - q, lo, hi, xtol=1e-12, rtol=1e-12))

    def _parts(self) -> tuple[float, float]:
        """(E[max(0, X)], E[max(0, −X)])."""
        u, w = self._nodes()
        m_t = self.a_t / (self.a_t + self.b_t)
        ft = self._ft(u)
        ft1 = np.asarray(special.betainc(self.a_t + 1.0, self.b_t, u), dtype=float)
        below = u * ft - m_t * ft1  # E[max(0, u − Y)]
        above = m_t * (1.0 - ft1) - u * (1.0 - ft)  # E[max(0, Y − u)]
        if self.relative:
            below, above = below / u, above / u
            if self.a_c <= 1.0:  # f_C(0) > 0: E[(p_T/p_C − 1)⁺] diverges like ∫ dx/x
                return math.inf, float(w @ below)
        return float(w @ above), float(w @ below)

    def positive_part(self) -> float:
        return self._parts()[0]

    def negative_part(self) -> float:
        return self._parts()[1]


def chance_beta_beats(a_c: float, b_c: float, a_t: float, b_t: float) -> float:
    """P(p_T > p_C) for independent p_C ~ Beta(a_C, b_C), p_T ~ Beta(a_T, b_T).

    The integral ∫ f_C(x) (1 − F_T(x)) dx (:class:`BetaDifferenceLaw`); for integer a_T
    it equals Evan Miller's closed form
    Σ_{i<a_T} B(a_C + i, b_C + b_T) / ((b_T + i) B(1 + i, b_T) B(a_C, b_C)).

    Parameters
    ----------
    a_c, b_c, a_t, b_t : float
        The Beta parameters of control and treatment.

    Returns
    -------
    float

    References
    ----------
    .. [1] E. Miller, "Formulas for Bayesian A/B Testing", 2015,
       https://www.evanmiller.org/bayesian-ab-testing.html

    Examples
    --------
    >>> from abkit.stats.bayesian import chance_beta_beats
    >>> round(chance_beta_beats(3.0, 9.0, 6.0, 6.0), 6)
    0.908669
    """
    return 1.0 - BetaDifferenceLaw(a_c, b_c, a_t, b_t, relative=False).cdf(0.0)


def beta_binomial_comparison(
    c_successes: int,
    c_n: int,
    t_successes: int,
    t_n: int,
    prior: BetaPrior = BetaPrior(),
    higher_is_better: bool = True,
    alpha: float = 0.05,
    margin: float | None = None,
    margin_scale: Literal["absolute", "relative"] = "relative",
    chance: float = DEFAULT_CHANCE,
) -> BayesianComparison:
    """The exact Beta-Binomial reading of two proportions (for few units).

    p_C | data ~ Beta(a + x_C, b + n_C − x_C), p_T likewise, independent.  The absolute
    summary is of p_T − p_C, the relative of p_T/p_C − 1, each from
    :class:`BetaDifferenceLaw` (one-dimensional integrals, no normal approximation);
    the chance to win P(p_T > p_C) is the same on both scales.

    Parameters
    ----------
    c_successes, c_n, t_successes, t_n : int
        Successes and units per arm.
    prior : BetaPrior, default Beta(1, 1)
        The prior of each rate.
    higher_is_better : bool, default True
        The metric's good direction.
    alpha : float, default 0.05
        1 − the credible level.
    margin : float or None
        A guardrail's harmful margin.
    margin_scale : {"absolute", "relative"}, default "relative"
        The margin's scale.
    chance : float, default 0.95
        The probability a guardrail verdict needs.

    Returns
    -------
    BayesianComparison

    References
    ----------
    .. [1] E. Miller, "Formulas for Bayesian A/B Testing", 2015.
    .. [2] C. Stucchio, "Bayesian A/B Testing at VWO", 2015.

    Examples
    --------
    >>> from abkit.stats.bayesian import beta_binomial_comparison
    >>> r = beta_binomial_comparison(2, 10, 5, 10)
    >>> round(r.absolute.mean, 4), round(r.absolute.chance_to_win, 4)
    (0.25, 0.9087)
    >>> round(r.absolute.risk_ship, 4)
    0.0083
    """
    a_c, b_c = prior.a + c_successes, prior.b + c_n - c_successes
    a_t, b_t = prior.a + t_successes, prior.b + t_n - t_successes
    abs_law = BetaDifferenceLaw(a_c, b_c, a_t, b_t, relative=False)
    rel_law = BetaDifferenceLaw(a_c, b_c, a_t, b_t, relative=True)
    harm = None
    if margin is not None:
        law = rel_law if margin_scale == "relative" else abs_law
        harm = harm_check(law, margin, margin_scale, higher_is_better, chance)
    nan = math.nan
    return BayesianComparison(
        f"exact Beta-Binomial, Beta({prior.a:g}, {prior.b:g}) prior of each rate",
        nan,
        nan,
        NormalPosterior(nan, nan, nan),
        summarize(abs_law, higher_is_better, alpha),
        summarize(rel_law, higher_is_better, alpha),
        harm,
    )


# --- several arms --------------------------------------------------------------------


@dataclass(frozen=True)
class BestArm:
    """Which of several arms is best, by Monte Carlo over the joint posterior.

    Parameters
    ----------
    chance_to_be_best : tuple of float
        Per arm (control first), P(the arm is the best); they sum to 1.
    expected_loss : tuple of float
        Per arm, E[best arm's value − this arm's value] on the lift scale (in the good
        direction): what shipping it is expected to forgo.
    draws : int
        Posterior draws used.
    seed : int
        Their seed.
    """

    chance_to_be_best: tuple[float, ...]
    expected_loss: tuple[float, ...]
    draws: int
    seed: int


def best_of_draws(
    lifts: np.ndarray, higher_is_better: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Chance to be best and expected loss per arm from posterior draws.

    Parameters
    ----------
    lifts : numpy.ndarray
        Draws × arms: each arm's value relative to control (control's column 0).
    higher_is_better : bool, default True
        The good direction.

    Returns
    -------
    tuple of numpy.ndarray
        P(arm k is best) = mean over draws of 1{k = argmax_j g·L_j}, and the expected
        loss E[max_j g·L_j − g·L_k].

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian import best_of_draws
    >>> p, loss = best_of_draws(np.array([[0.0, 0.1, -0.1], [0.0, -0.2, 0.3]]))
    >>> p.tolist(), [round(float(v), 3) for v in loss]
    ([0.0, 0.5, 0.5], [0.2, 0.25, 0.1])
    """
    g = lifts if higher_is_better else -lifts
    best = g.argmax(axis=1)
    chance = np.bincount(best, minlength=g.shape[1]) / g.shape[0]
    loss = (g.max(axis=1, keepdims=True) - g).mean(axis=0)
    return chance, loss


def best_arm_normal(
    c_value: float,
    c_var: float,
    t_values: np.ndarray,
    t_vars: np.ndarray,
    prior: NormalPrior = DEFAULT_PRIOR,
    scale: Literal["log", "lift"] = "log",
    higher_is_better: bool = True,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> BestArm:
    """Chance to be best and expected loss of each of several arms (normal model).

    The K − 1 relative effects share control's noise: on the log scale
    Cov(δ̂_j, δ̂_k) = Var(C)/C² for j ≠ k (Var(T_k)/T_k² + Var(C)/C² on the diagonal);
    on the lift scale Var(C)T_jT_k/C⁴ off the diagonal.  With independent priors
    N(μ₀, τ₀²) the joint posterior is normal, Σ₁ = (Σ⁻¹ + I/τ₀²)⁻¹ and
    μ₁ = Σ₁(Σ⁻¹δ̂ + μ₀/τ₀²); ``draws`` vectors are drawn (seeded), turned into lifts
    (e^δ − 1 on the log scale) and scored by :func:`best_of_draws`.

    Parameters
    ----------
    c_value, c_var : float
        Control's estimate and sampling variance.
    t_values, t_vars : numpy.ndarray
        The treatments' estimates and sampling variances.
    prior : NormalPrior, default N(0, 0.3²)
        The prior of each lift.
    scale : {"log", "lift"}, default "log"
        The model's scale.
    higher_is_better : bool, default True
        The good direction.
    draws : int, default 100_000
        Monte Carlo draws.
    seed : int, default 0
        Their seed.

    Returns
    -------
    BestArm

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian import best_arm_normal
    >>> b = best_arm_normal(0.10, 1e-5, np.array([0.105, 0.11]), np.array([1e-5, 1e-5]))
    >>> [round(p, 2) for p in b.chance_to_be_best]
    [0.01, 0.13, 0.86]
    """
    t_values = np.asarray(t_values, dtype=float)
    t_vars = np.asarray(t_vars, dtype=float)
    if scale == "log":
        est = np.log(t_values / c_value)
        shared = np.full((t_values.size, t_values.size), c_var / c_value**2)
        cov = shared + np.diag(t_vars / t_values**2)
    else:
        est = (t_values - c_value) / c_value
        cov = c_var * np.outer(t_values, t_values) / c_value**4 + np.diag(t_vars / c_value**2)
    if prior.proper:
        precision = np.linalg.inv(cov) + np.eye(est.size) / prior.sd**2
        post_cov = np.linalg.inv(precision)
        post_mean = post_cov @ (np.linalg.solve(cov, est) + prior.mean / prior.sd**2)
    else:
        post_cov, post_mean = cov, est
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(post_mean, post_cov, size=draws, method="cholesky")
    lifts = np.expm1(theta) if scale == "log" else theta
    lifts = np.column_stack([np.zeros(draws), lifts])
    chance, loss = best_of_draws(lifts, higher_is_better)
    return BestArm(tuple(map(float, chance)), tuple(map(float, loss)), draws, seed)


def best_arm_beta(
    successes: np.ndarray,
    n: np.ndarray,
    prior: BetaPrior = BetaPrior(),
    higher_is_better: bool = True,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> BestArm:
    """Chance to be best and expected loss of several proportions (Beta posteriors).

    Parameters
    ----------
    successes, n : numpy.ndarray
        Per arm, control first.
    prior : BetaPrior, default Beta(1, 1)
        The prior of each rate.
    higher_is_better : bool, default True
        The good direction.
    draws : int, default 100_000
        Monte Carlo draws.
    seed : int, default 0
        Their seed.

    Returns
    -------
    BestArm
        Losses are on the lift scale, p_k/p_C − 1.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.bayesian import best_arm_beta
    >>> b = best_arm_beta(np.array([2, 5]), np.array([10, 10]))
    >>> round(b.chance_to_be_best[1], 2)
    0.91
    """
    successes = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    rng = np.random.default_rng(seed)
    p = rng.beta(prior.a + successes, prior.b + n - successes, size=(draws, successes.size))
    chance, loss = best_of_draws(p / p[:, :1] - 1.0, higher_is_better)
    return BestArm(tuple(map(float, chance)), tuple(map(float, loss)), draws, seed)


# --- the decision rule ----------------------------------------------------------------


@dataclass(frozen=True)
class BayesRule:
    """Ship when the chance to win ≥ ``chance`` and the expected loss ≤ ``tolerance``.

    Parameters
    ----------
    chance : float, default 0.95
        The chance to win (or to lose, for "worse") a verdict needs.
    tolerance : float, default 0.0025
        The largest expected loss accepted, on the relative scale (0.0025 = 0.25 % of
        control, GrowthBook's default acceptable risk).

    Examples
    --------
    >>> from abkit.stats.bayesian import BayesRule
    >>> BayesRule()
    BayesRule(chance=0.95, tolerance=0.0025)
    """

    chance: float = DEFAULT_CHANCE
    tolerance: float = DEFAULT_TOLERANCE


def bayes_verdict(summary: PosteriorSummary, rule: BayesRule = BayesRule()) -> Verdict:
    """The decision of the rule on a (relative) posterior summary.

    "better" when P(win) ≥ chance and E[loss of shipping] ≤ tolerance; "worse" when
    P(win) ≤ 1 − chance and E[loss of keeping control] ≤ tolerance (the treatment is
    harmful and keeping control is safe); "not computable" without a posterior;
    otherwise "inconclusive".

    Parameters
    ----------
    summary : PosteriorSummary
        The relative reading (losses as shares of control).
    rule : BayesRule, default BayesRule()
        The thresholds.

    Returns
    -------
    str

    Examples
    --------
    >>> from abkit.stats.bayesian import PosteriorSummary, bayes_verdict
    >>> bayes_verdict(PosteriorSummary(0.05, (0.01, 0.09), 0.99, 0.0001, 0.05))
    'better'
    >>> bayes_verdict(PosteriorSummary(0.01, (-0.05, 0.07), 0.6, 0.01, 0.02))
    'inconclusive'
    """
    if not math.isfinite(summary.chance_to_win) or not math.isfinite(summary.risk_ship):
        return "not computable"
    if summary.chance_to_win >= rule.chance and summary.risk_ship <= rule.tolerance:
        return "better"
    if summary.chance_to_win <= 1.0 - rule.chance and summary.risk_keep <= rule.tolerance:
        return "worse"
    return "inconclusive"


__all__ = [
    "DEFAULT_PRIOR",
    "FLAT_PRIOR",
    "SCALES",
    "BayesRule",
    "BayesianComparison",
    "BestArm",
    "BetaDifferenceLaw",
    "BetaPrior",
    "HarmCheck",
    "LogNormalLiftLaw",
    "NormalLaw",
    "NormalPosterior",
    "NormalPrior",
    "PosteriorSummary",
    "bayes_verdict",
    "bayesian_comparison",
    "best_arm_beta",
    "best_arm_normal",
    "best_of_draws",
    "beta_binomial_comparison",
    "chance_beta_beats",
    "normal_posterior",
    "relative_model",
    "summarize",
]
