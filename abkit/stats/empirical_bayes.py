"""The prior of a metric's lift learnt from the team's own past experiments.

Past experiments give estimates y_i with standard errors s_i of their true effects θ_i.
The random-effects model y_i | θ_i ~ N(θ_i, s_i²), θ_i ~ N(μ, τ²) makes
y_i ~ N(μ, s_i² + τ²): τ² is the between-experiment spread once each estimate's own
sampling variance is removed (DerSimonian & Laird 1986).  With w_i = 1/(s_i² + τ²),
μ̂ = Σ w_i y_i / Σ w_i and Var(μ̂) = 1/Σ w_i.  τ² by

* ``"reml"`` (default): restricted maximum likelihood by Fisher scoring,
  τ² ← Σ w_i²((y_i − μ̂)² − s_i²)/Σ w_i² + 1/Σ w_i iterated to its fixed point
  (Viechtbauer, "Bias and efficiency of meta-analytic variance estimators in the
  random-effects model", JEBS 30, 2005, eq. 12), floored at 0;
* ``"paule-mandel"``: the τ² ≥ 0 at which the generalised Q statistic
  Σ w_i (y_i − μ̂)² equals k − 1 (Paule & Mandel, J. Res. NBS 87, 1982);
* ``"dersimonian-laird"``: the moment estimator τ² = max(0, (Q − (k − 1))/(Σw − Σw²/Σw))
  with w = 1/s² (DerSimonian & Laird, Controlled Clinical Trials 7, 1986).

``family="t"`` replaces the normal by a scaled t, θ_i = μ + τ·T_ν, for fat-tailed effects
(Azevedo, Deng, Montiel Olea, Rao & Weyl, "A/B Testing with Fat Tails", JPE 128, 2020):
μ, τ and ν > 2 by maximum likelihood, the marginal density of y_i computed by
Gauss–Hermite quadrature over the sampling error.

Shrinkage (:func:`shrink`): each estimate's posterior under the fitted prior; for the
normal θ̃_i = (1 − B_i) y_i + B_i μ̂ with B_i = s_i²/(s_i² + τ̂²) — the cure for the
winner's curse (Deng WWW 2015; Azevedo et al. 2020).  Below ``minimum`` past
experiments (10 by default) the fit is not trusted: the default prior is used instead
and the :class:`FittedPrior` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from abkit.stats.bayesian import DEFAULT_PRIOR, NormalPrior

Method = Literal["reml", "paule-mandel", "dersimonian-laird"]
Family = Literal["normal", "t"]
METHODS: tuple[Method, ...] = ("reml", "paule-mandel", "dersimonian-laird")
MIN_EXPERIMENTS = 10
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(60)  # ∫ f(z) φ(z) dz ≈ Σ w f(x)/√(2π)
_GH_W = _GH_W / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class FittedPrior:
    """The prior of the lift fitted to past experiments (or the default, and why).

    Parameters
    ----------
    family : {"normal", "t"}
        The prior's family.
    method : str
        How it was fitted, in words.
    mean : float
        μ̂, the typical effect of past changes.
    sd : float
        τ̂, their spread beyond sampling noise (the t's scale for ``family="t"``).
    df : float
        ν̂ of the t (inf for the normal).
    mean_se : float
        The standard error of μ̂, 1/√Σw_i (the normal fit's for the t; NaN for the
        default prior).
    experiments : int
        Past experiments the fit used.
    fallback : bool
        True when the default prior replaced the fit (too few experiments).
    note : str
        What a report says about the prior.

    Examples
    --------
    >>> from abkit.stats.empirical_bayes import fit_prior
    >>> fit_prior([0.01, 0.02], [0.01, 0.01]).note
    'only 2 past experiments (fewer than 10): the default prior N(0, 0.3²) is used'
    """

    family: Family
    method: str
    mean: float
    sd: float
    df: float
    mean_se: float
    experiments: int
    fallback: bool
    note: str

    @property
    def prior(self) -> NormalPrior:
        """The normal prior where a normal is needed (the chance to be best among
        several arms, planning): the t's normal of equal variance when ν > 2, else its
        scale.  The reading of one comparison uses the t itself
        (:func:`abkit.stats.bayesian.t_prior_posterior`)."""
        if self.family == "t" and self.df > 2:
            return NormalPrior(self.mean, self.sd * math.sqrt(self.df / (self.df - 2.0)))
        return NormalPrior(self.mean, self.sd)


def _clean(estimates: object, ses: object) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(estimates, dtype=float).ravel()
    s = np.asarray(ses, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{y.size} estimates but {s.size} standard errors")
    keep = np.isfinite(y) & np.isfinite(s) & (s > 0)
    return y[keep], s[keep]


def _weighted(y: np.ndarray, v: np.ndarray, tau2: float) -> tuple[np.ndarray, float]:
    w = 1.0 / (v + tau2)
    return w, float(w @ y / w.sum())


def tau2_dersimonian_laird(y: np.ndarray, v: np.ndarray) -> float:
    """DerSimonian–Laird's moment estimator of τ².

    Parameters
    ----------
    y, v : numpy.ndarray
        Estimates and their sampling variances.

    Returns
    -------
    float
        max(0, (Q − (k − 1)) / (Σw − Σw²/Σw)), w = 1/v, Q = Σ w (y − ȳ_w)².

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.empirical_bayes import tau2_dersimonian_laird
    >>> round(tau2_dersimonian_laird(np.array([0.1, -0.1, 0.3]), np.array([0.01] * 3)), 4)
    0.03
    """
    w, mu = _weighted(y, v, 0.0)
    q = float(w @ (y - mu) ** 2)
    denom = float(w.sum() - (w * w).sum() / w.sum())
    return max(0.0, (q - (y.size - 1)) / denom) if denom > 0 else 0.0


def tau2_paule_mandel(y: np.ndarray, v: np.ndarray) -> float:
    """Paule–Mandel's τ²: the generalised Q equals its expectation k − 1.

    Parameters
    ----------
    y, v : numpy.ndarray
        Estimates and their sampling variances.

    Returns
    -------
    float
        The root in τ² ≥ 0 of Σ w(τ²)(y − μ̂(τ²))² = k − 1 (0 when Q(0) ≤ k − 1).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.empirical_bayes import tau2_paule_mandel
    >>> round(tau2_paule_mandel(np.array([0.1, -0.1, 0.3]), np.array([0.01] * 3)), 4)
    0.03
    """

    def excess(tau2: float) -> float:
        w, mu = _weighted(y, v, tau2)
        return float(w @ (y - mu) ** 2) - (y.size - 1)

    if excess(0.0) <= 0:
        return 0.0
    hi = float(np.var(y)) + float(v.max()) + 1e-12
    while excess(hi) > 0:
        hi *= 2.0
    from scipy import optimize  # loaded when first needed (0.15 s)

    return float(optimize.brentq(excess, 0.0, hi, xtol=1e-14, rtol=1e-12))


def tau2_reml(y: np.ndarray, v: np.ndarray, tol: float = 1e-12, iterations: int = 500) -> float:
    """Restricted maximum likelihood τ² by Fisher scoring (Viechtbauer 2005, eq. 12).

    Parameters
    ----------
    y, v : numpy.ndarray
        Estimates and their sampling variances.
    tol : float, default 1e-12
        The change in τ² at which the iteration stops.
    iterations : int, default 500
        The most iterations.

    Returns
    -------
    float
        τ² ← Σw²((y − μ̂)² − v)/Σw² + 1/Σw, started at DerSimonian–Laird's, floored at 0.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.empirical_bayes import tau2_reml
    >>> round(tau2_reml(np.array([0.1, -0.1, 0.3]), np.array([0.01] * 3)), 4)
    0.03
    """
    tau2 = tau2_dersimonian_laird(y, v)
    for _ in range(iterations):
        w, mu = _weighted(y, v, tau2)
        w2 = w * w
        step = (float(w2 @ ((y - mu) ** 2 - v - tau2)) + float(w2.sum() / w.sum())) / float(
            w2.sum()
        )
        new = max(0.0, tau2 + step)
        if abs(new - tau2) < tol:
            return new
        tau2 = new
    return tau2


def _t_marginal(y: np.ndarray, s: np.ndarray, mu: float, tau: float, nu: float) -> np.ndarray:
    """p(y_i) = E_z[t_ν((y_i − s_i z − μ)/τ)/τ], z ~ N(0, 1), by Gauss–Hermite."""
    x = (y[:, None] - s[:, None] * _GH_X[None, :] - mu) / tau
    log_t = (
        special.gammaln((nu + 1) / 2)
        - special.gammaln(nu / 2)
        - 0.5 * math.log(nu * math.pi)
        - (nu + 1) / 2 * np.log1p(x * x / nu)
    )
    return np.asarray(np.exp(log_t) @ _GH_W / tau, dtype=float)


NU_BOUNDS = (2.1, 200.0)  # ν of the t prior: finite variance, and 200 is a normal already


def _fit_t(y: np.ndarray, s: np.ndarray, start: tuple[float, float]) -> tuple[float, float, float]:
    """(μ, τ, ν) maximising Σ log p(y_i) (L-BFGS-B from three starting ν, ν in
    :data:`NU_BOUNDS`)."""

    def nll(p: np.ndarray) -> float:
        mu, log_tau, nu = p
        dens = _t_marginal(y, s, float(mu), math.exp(log_tau), float(nu))
        return float(-np.log(np.maximum(dens, 1e-300)).sum())

    from scipy import optimize  # loaded when first needed (0.15 s)

    spread = max(start[1], float(np.std(y)) / 10.0, 1e-8)
    bounds = [(None, None), (math.log(spread) - 12.0, math.log(spread) + 5.0), NU_BOUNDS]
    best: optimize.OptimizeResult | None = None
    for nu0 in (3.0, 10.0, 100.0):
        x0 = np.array([start[0], math.log(spread), nu0])
        res = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    mu, log_tau, nu = best.x
    return float(mu), math.exp(float(log_tau)), float(nu)


def fit_prior(
    estimates: object,
    ses: object,
    method: Method = "reml",
    family: Family = "normal",
    minimum: int = MIN_EXPERIMENTS,
    default: NormalPrior = DEFAULT_PRIOR,
) -> FittedPrior:
    """Fit the prior of the lift to past experiments' estimates and standard errors.

    Parameters
    ----------
    estimates, ses : array_like
        Past experiments' estimated lifts y_i (on the scale of the reading: log ratios
        for abkit's default) and their standard errors s_i; non-finite pairs and s ≤ 0
        are left out.
    method : {"reml", "paule-mandel", "dersimonian-laird"}, default "reml"
        The estimator of τ² for the normal (the t is fitted by maximum likelihood, started
        from it).
    family : {"normal", "t"}, default "normal"
        The prior's family.
    minimum : int, default 10
        The fewest past experiments a fit needs; below it ``default`` is returned.
    default : NormalPrior, default N(0, 0.3²)
        The prior used below ``minimum``.

    Returns
    -------
    FittedPrior

    References
    ----------
    .. [1] R. DerSimonian and N. Laird, "Meta-analysis in clinical trials", Controlled
       Clinical Trials 7, 177–188, 1986.
    .. [2] W. Viechtbauer, "Bias and efficiency of meta-analytic variance estimators in
       the random-effects model", JEBS 30, 261–293, 2005.
    .. [3] E. M. Azevedo, A. Deng, J. L. Montiel Olea, J. Rao and E. G. Weyl, "A/B Testing
       with Fat Tails", Journal of Political Economy 128, 4614–4672, 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.empirical_bayes import fit_prior
    >>> rng = np.random.default_rng(0)
    >>> se = rng.uniform(0.01, 0.04, 200)
    >>> y = rng.normal(0.01, 0.03, 200) + rng.normal(0, se)
    >>> f = fit_prior(y, se)
    >>> round(f.mean, 3), round(f.sd, 3), f.experiments, f.fallback
    (0.008, 0.031, 200, False)
    """
    y, s = _clean(estimates, ses)
    k = int(y.size)
    if k < max(minimum, 2):
        sd = "∞" if not default.proper else f"{default.sd:g}²"
        note = (
            f"only {k} past experiment{'s' if k != 1 else ''} (fewer than {minimum}): "
            f"the default prior N({default.mean:g}, {sd}) is used"
        )
        return FittedPrior(
            "normal", "default", default.mean, default.sd, math.inf, math.nan, k, True, note
        )
    v = s * s
    tau2 = {
        "reml": tau2_reml,
        "paule-mandel": tau2_paule_mandel,
        "dersimonian-laird": tau2_dersimonian_laird,
    }[method](y, v)
    w, mu = _weighted(y, v, tau2)
    mean_se = 1.0 / math.sqrt(float(w.sum()))
    words = {
        "reml": "REML",
        "paule-mandel": "Paule-Mandel",
        "dersimonian-laird": "DerSimonian-Laird",
    }
    if family == "normal":
        return FittedPrior(
            "normal",
            f"normal, tau² by {words[method]}",
            mu,
            math.sqrt(tau2),
            math.inf,
            mean_se,
            k,
            False,
            f"fitted to {k} past experiments: N({mu:.3g}, {math.sqrt(tau2):.3g}²) "
            f"({words[method]})",
        )
    m, tau, nu = _fit_t(y, s, (mu, math.sqrt(tau2) if tau2 > 0 else float(np.std(y))))
    return FittedPrior(
        "t",
        "scaled t, maximum likelihood",
        m,
        tau,
        nu,
        mean_se,
        k,
        False,
        f"fitted to {k} past experiments: {m:.3g} + {tau:.3g}·t({nu:.3g}) (maximum likelihood)",
    )


@dataclass(frozen=True)
class Shrunk:
    """Estimates shrunk toward the fitted prior: each one's posterior.

    Parameters
    ----------
    mean : numpy.ndarray
        Posterior means E[θ_i | y_i].
    sd : numpy.ndarray
        Posterior standard deviations.
    shrinkage : numpy.ndarray
        1 − (mean − μ)/(y − μ): the share of the way to the prior mean (B_i for the
        normal).
    """

    mean: np.ndarray
    sd: np.ndarray
    shrinkage: np.ndarray


def shrink(estimates: object, ses: object, prior: FittedPrior) -> Shrunk:
    """Each estimate's posterior under the fitted prior.

    Normal: θ̃ = (1 − B)y + Bμ, B = s²/(s² + τ²), sd = √((1 − B)s²).  t: the posterior
    moments E[θ | y] = E_z[θ(z) t(θ(z))]/E_z[t(θ(z))] with θ(z) = y − s·z, z ~ N(0, 1)
    (Gauss–Hermite), which shrinks small estimates hard and large ones little.

    Parameters
    ----------
    estimates, ses : array_like
        The estimates y and standard errors s.
    prior : FittedPrior
        From :func:`fit_prior`.

    Returns
    -------
    Shrunk

    Examples
    --------
    >>> from abkit.stats.empirical_bayes import FittedPrior, shrink
    >>> prior = FittedPrior("normal", "given", 0.0, 0.02, float("inf"), 0.0, 50, False, "")
    >>> s = shrink([0.04], [0.02], prior)
    >>> float(s.mean[0]), float(s.shrinkage[0])
    (0.02, 0.5)
    """
    y = np.asarray(estimates, dtype=float).ravel()
    s = np.asarray(ses, dtype=float).ravel()
    if prior.family == "normal":
        if not math.isfinite(prior.sd):
            return Shrunk(y.copy(), s.copy(), np.zeros_like(y))
        b = s * s / (s * s + prior.sd**2)
        return Shrunk((1 - b) * y + b * prior.mean, np.sqrt((1 - b) * s * s), b)
    theta = y[:, None] - s[:, None] * _GH_X[None, :]
    x = (theta - prior.mean) / prior.sd
    dens = np.exp(-(prior.df + 1) / 2 * np.log1p(x * x / prior.df)) * _GH_W
    norm = dens.sum(axis=1)
    mean = (dens * theta).sum(axis=1) / norm
    sd = np.sqrt(np.maximum((dens * theta * theta).sum(axis=1) / norm - mean * mean, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(y != prior.mean, 1 - (mean - prior.mean) / (y - prior.mean), 0.0)
    return Shrunk(mean, sd, b)


__all__ = [
    "METHODS",
    "MIN_EXPERIMENTS",
    "NU_BOUNDS",
    "FittedPrior",
    "Shrunk",
    "fit_prior",
    "shrink",
    "tau2_dersimonian_laird",
    "tau2_paule_mandel",
    "tau2_reml",
]
