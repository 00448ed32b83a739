"""The surrogate index: a forecast of a long-term effect (D30 retention) from short-term
signals (the first week), before the long-term outcome has matured.

Following Athey, Chetty, Imbens & Kang [1]_: the long-term outcome Y (active on day 30,
0 / 1) is modelled on the surrogates S (first-week signals) in *training* units whose
Y has matured, h(s) = P(Y = 1 | S = s), here a logistic regression

    logit h(s) = β₀ + Σⱼ βⱼ·sⱼ    (maximum likelihood, statsmodels ``Logit``).

The *surrogate index* of a unit is ĥ(Sᵢ), its predicted D30; the surrogate estimate of
the treatment's effect on D30 is the difference of the arms' mean index,

    τ̂ = (1/n_T)·Σ_{i∈T} ĥ(Sᵢ) − (1/n_C)·Σ_{i∈C} ĥ(Sᵢ),

and its relative form m̂_T / m̂_C − 1 (the arms' mean indices).  It estimates the
average effect on D30 under two assumptions ([1]_, section 3):

* **surrogacy**: the treatment acts on D30 only through the surrogates (Y ⊥ W | S);
* **comparability**: h is the same in the training units as in the experiment's
  units (the training units' first week relates to D30 as the experiment's does).

Training units are the control arm's matured units (the early cohorts of the same
export), or a separate table of matured units (a past export).

**Interval.**  τ̂ varies with the experiment's units (which first weeks each arm drew)
and with the model (β̂ is estimated from the training units).  To first order

    τ̂ − τ ≈ [τ_N(β) − τ]  +  ∇τ(β)ᵀ·(β̂ − β),

an experiment-sampling term and a model term.  Var(τ̂) is their variances plus twice
their covariance; the covariance is not 0 when the training units are the control's
own matured units (the same units enter both terms).  A stratified bootstrap estimates
all three at once: each of ``resamples`` replicates redraws, with replacement, the
experiment's units within each arm × matured stratum (and a separate training table on
its own), **refits the model on the replicate's training units** and recomputes τ̂.
se = the replicates' standard deviation and the interval is τ̂ ± z_{1−α/2}·se (the
relative one on the log scale, exp(log(m̂_T/m̂_C) ± z·se_log) − 1).  The delta method
(``interval = "delta"``, :func:`_influence`) computes the same first-order variance
in one pass from each unit's influence, its model part through β̂ included: the
bootstrap's limit (3 s with the fit at a million units, where the bootstrap's refits
take half a minute).  The experiment-sampling part alone, with the model held at β̂, is
s²_T(ĥ)/n_T + s²_C(ĥ)/n_C; 1 − that / se² is reported as the model's share of the
variance (:attr:`SurrogateForecast.model_share`).  The index averages predicted
probabilities instead of 0 / 1 outcomes, so s²(ĥ) is far below the Bernoulli variance
of D30 itself: the forecast is much narrower than the realised D30 effect would be with
the same units, which is why it is worth having (and why it needs validating).

**Fit diagnostics.**  Out-of-fold predictions over ``folds`` random folds of the
training units give the AUC (Mann–Whitney), the Brier score, calibration in the large
(mean predicted − mean observed) and the calibration slope (the logistic regression of
Y on the out-of-fold logit; 1 when calibrated).

**Validation.**  Units whose D30 has matured in both arms (the early cohorts) have a
realised D30 effect, Ȳ_T − Ȳ_C, beside their surrogate estimate.  Under the two
assumptions the gap realised − surrogate has mean 0; its standard error comes from the
same bootstrap replicates or influences (the realised and surrogate effects share units
and the model), and the validation is flagged as disagreeing when the gap's two-sided p-value
is below α.  This is the test of surrogacy the early cohorts allow; it has the power of
a D30 comparison on those cohorts only (Netflix's practice [2]_: compare forecasts with
realised long-term effects where both exist).

References
----------
.. [1] S. Athey, R. Chetty, G. W. Imbens and H. Kang, "The Surrogate Index: Combining
   Short-Term Proxies to Estimate Long-Term Treatment Effects More Rapidly and
   Precisely", NBER Working Paper 26463, 2019.
.. [2] V. Zhang, M. Zhao, A. Le, M. Nie and N. Kallus, "Evaluating the Surrogate Index
   as a Decision-Making Tool Using 200 A/B Tests at Netflix", arXiv:2311.11922, 2023.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from abkit.errors import AbkitInputError
from abkit.stats.distributions import norm_ppf, norm_sf

SURROGATE_METHOD = "surrogate index (logistic regression of D30 on the first week)"
Interval = Literal["bootstrap", "delta"]
INTERVALS: dict[Interval, str] = {
    "bootstrap": "bootstrap refitting the model",
    "delta": "delta method on each unit's influence, model included",
}
MODEL = "logistic regression (statsmodels Logit, maximum likelihood)"
ASSUMPTIONS = (
    "surrogacy: the treatment acts on D30 only through the first-week signals",
    "comparability: the training units relate their first week to D30 as the experiment's units do",
)
# fewest training units of each outcome (0 and 1) per coefficient fitted
_PER_COEFFICIENT = 2


@dataclass(frozen=True)
class ModelFit:
    """The D30 model fitted on the training units, with out-of-fold diagnostics.

    Attributes
    ----------
    model : str
        What was fitted.
    signals : tuple of str
        The signals, in the order of ``coefficients[1:]``.
    coefficients : tuple of float
        The intercept, then one coefficient per signal, on the logit scale and the
        signals' own scale (0 for a signal constant in the training units).
    training_units : int
        Units the model was fitted on.
    training_rate : float
        Their D30 rate.
    folds : int
        Folds of the out-of-fold diagnostics.
    auc : float
        Area under the ROC curve of the out-of-fold predictions.
    brier : float
        Mean squared error of the out-of-fold predictions.
    calibration_in_the_large : float
        Mean out-of-fold prediction − mean outcome (0 when calibrated).
    calibration_slope : float
        Slope of the logistic regression of the outcome on the out-of-fold logit (1
        when calibrated; below 1 when the model overfits).
    """

    model: str
    signals: tuple[str, ...]
    coefficients: tuple[float, ...]
    training_units: int
    training_rate: float
    folds: int
    auc: float
    brier: float
    calibration_in_the_large: float
    calibration_slope: float


@dataclass(frozen=True)
class SurrogateValidation:
    """The surrogate estimate beside the realised D30 effect, on the units matured in
    both arms.

    Attributes
    ----------
    control_n, treatment_n : int
        Matured units per arm.
    surrogate_effect : float
        The surrogate estimate of the D30 effect on them.
    surrogate_ci : tuple of float
        Its interval (the forecast's standard error: bootstrap or delta method).
    realised_effect : float
        Their realised D30 effect, Ȳ_T − Ȳ_C.
    realised_ci : tuple of float
        Its interval (Wald, unpooled).
    gap : float
        realised_effect − surrogate_effect.
    gap_ci : tuple of float
        Its interval (the forecast's standard error: bootstrap or delta method).
    p_value : float
        Two-sided p-value of gap = 0 (normal reference).
    disagree : bool
        p_value < α: the realised effect of the matured cohorts contradicts the
        forecast (surrogacy or comparability fails, or the model is wrong).
    """

    control_n: int
    treatment_n: int
    surrogate_effect: float
    surrogate_ci: tuple[float, float]
    realised_effect: float
    realised_ci: tuple[float, float]
    gap: float
    gap_ci: tuple[float, float]
    p_value: float
    disagree: bool


@dataclass(frozen=True)
class SurrogateForecast:
    """The surrogate forecast of a treatment's D30 effect: a forecast under the stated
    assumptions, never a measured effect.

    Attributes
    ----------
    estimate : float
        τ̂, the difference of the arms' mean predicted D30.
    ci : tuple of float
        Its interval at level 1 − α (model and experiment sampling).
    se : float
        The standard error of τ̂ (the bootstrap's, or the delta method's: ``method``).
    relative : float
        m̂_T / m̂_C − 1.
    relative_ci : tuple of float
        Its interval (log scale).
    control_value, treatment_value : float
        m̂_C and m̂_T, the arms' mean predicted D30.
    control_n, treatment_n : int
        Units predicted per arm (those with a complete first week).
    without_signals : int
        Units left out because their first week is not complete (or a signal is
        missing).
    alpha : float
        1 − the interval's level.
    method : str
        How it was computed.
    assumptions : tuple of str
        What the forecast assumes.
    training : str
        Where the training units came from: ``'control'`` (the control arm's matured
        units) or ``'separate'`` (a separate table).
    resamples : int
        Bootstrap replicates used (replicates whose refit failed are left out).
    seed : int
        Seed of the bootstrap and the folds.
    model_share : float
        The share of Var(τ̂) not explained by experiment sampling with the model held
        fixed: the model's own uncertainty (and its covariance with the sampling).
    fit : ModelFit
        The model and its diagnostics.
    validation : SurrogateValidation or None
        The check on the cohorts matured in both arms; None when an arm has fewer
        than 10 matured units.
    """

    estimate: float
    ci: tuple[float, float]
    se: float
    relative: float
    relative_ci: tuple[float, float]
    control_value: float
    treatment_value: float
    control_n: int
    treatment_n: int
    without_signals: int
    alpha: float
    method: str
    assumptions: tuple[str, ...]
    training: str
    resamples: int
    seed: int
    model_share: float
    fit: ModelFit
    validation: SurrogateValidation | None


@dataclass(frozen=True)
class _Model:
    """A fitted logistic model on standardised signals (the columns ``used``)."""

    params: np.ndarray
    centre: np.ndarray
    scale: np.ndarray
    used: np.ndarray

    def logit(self, x: np.ndarray) -> np.ndarray:
        z = (x[:, self.used] - self.centre) / self.scale
        out: np.ndarray = self.params[0] + z @ self.params[1:]
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-self.logit(x)))
        return out

    def coefficients(self, k: int) -> tuple[float, ...]:
        """Intercept and per-signal coefficients on the signals' own scale."""
        slopes = np.zeros(k)
        slopes[self.used] = self.params[1:] / self.scale
        intercept = self.params[0] - float(np.sum(self.params[1:] * self.centre / self.scale))
        return (float(intercept), *map(float, slopes))


class _FitFailed(Exception):
    """The logistic model could not be fitted (separation, a singular design)."""


def fit_logistic(x: np.ndarray, y: np.ndarray) -> _Model:
    """Maximum-likelihood logistic regression of ``y`` (0 / 1) on the columns of ``x``
    (standardised first; a column constant in ``x`` is left out), by Newton's method
    (statsmodels ``Logit``).  Raises ``_FitFailed`` when it does not converge to finite
    estimates."""
    from statsmodels.discrete.discrete_model import Logit

    design, centre, scale, used = _standardised(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = Logit(y, design, missing="none").fit(method="newton", disp=0, maxiter=100)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise _FitFailed(str(exc)) from exc
    params = np.asarray(res.params, dtype=float)
    if not (res.mle_retvals.get("converged", False) and np.all(np.isfinite(params))):
        raise _FitFailed("Newton's method did not converge")
    return _Model(params, centre, scale, used)


def refit_logistic(x: np.ndarray, y: np.ndarray, start: _Model) -> _Model:
    """:func:`fit_logistic` on resampled units, by the same Newton iterations written
    out in numpy and started from ``start``'s estimates (a bootstrap replicate's fit is
    near the full fit's: three or four steps), about ten times faster than a new
    statsmodels model per replicate; the same maximum to 1e-9 (tests/test_surrogate.py).

    β ← β + (XᵀWX)⁻¹·Xᵀ(y − p), W = diag(p(1 − p)), until max |step| < 1e-10, the step
    halved while the log-likelihood falls."""
    design, centre, scale, used = _standardised(x)
    beta = np.zeros(design.shape[1])
    if np.array_equal(used, start.used):  # the full fit's slopes, on this standardisation
        beta[1:] = start.params[1:] * scale / start.scale
        beta[0] = start.params[0] + float(
            np.sum(start.params[1:] * (centre - start.centre) / start.scale)
        )

    def loglik(b: np.ndarray) -> float:
        eta = design @ b
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = loglik(beta)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design
        try:
            step = np.linalg.solve(hessian, design.T @ (y - p))
        except np.linalg.LinAlgError as exc:
            raise _FitFailed(str(exc)) from exc
        for _ in range(30):
            trial = loglik(beta + step)
            if trial >= current - 1e-12 * abs(current):
                break
            step = step / 2
        beta, current = beta + step, trial
        if not np.all(np.isfinite(beta)):
            break
        if float(np.max(np.abs(step))) < 1e-10:
            return _Model(beta, centre, scale, used)
    raise _FitFailed("Newton's method did not converge")


def _standardised(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The design [1, z] of the non-constant columns of ``x`` standardised, with their
    centres, scales and which columns they are."""
    centre, scale = x.mean(axis=0), x.std(axis=0)
    used = scale > 1e-12 * np.maximum(1.0, np.abs(centre))
    z = (x[:, used] - centre[used]) / scale[used]
    return np.column_stack([np.ones(x.shape[0]), z]), centre[used], scale[used], used


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann–Whitney U of the positives over n₁·n₀ (ties
    count one half)."""
    from scipy.stats import rankdata

    positives = y == 1
    n1, n0 = int(positives.sum()), int((~positives).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _diagnostics(
    x: np.ndarray, y: np.ndarray, start: _Model, folds: int, rng: np.random.Generator
) -> tuple[float, float, float, float]:
    """AUC, Brier score, calibration in the large and calibration slope of the
    out-of-fold predictions over ``folds`` random folds (NaN when a fold's fit fails)."""
    fold = rng.permutation(y.size) % folds
    logit = np.empty(y.size)
    try:
        for k in range(folds):
            held = fold == k
            logit[held] = refit_logistic(x[~held], y[~held], start).logit(x[held])
        slope_fit = fit_logistic(logit[:, None], y)
    except _FitFailed:
        return math.nan, math.nan, math.nan, math.nan
    p = 1.0 / (1.0 + np.exp(-logit))
    slope = float(slope_fit.params[1] / slope_fit.scale[0]) if slope_fit.used[0] else math.nan
    return _auc(y, p), float(np.mean((p - y) ** 2)), float(p.mean() - y.mean()), slope


def _validate(
    signals: np.ndarray,
    treated: np.ndarray,
    outcome: np.ndarray,
    names: Sequence[str] | None,
    training: tuple[np.ndarray, np.ndarray] | None,
    alpha: float,
    resamples: int,
    folds: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """The inputs as float / bool arrays, checked once before any computation."""
    x = np.asarray(signals, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    w = np.asarray(treated)
    y = np.asarray(outcome, dtype=float)
    if x.ndim != 2 or w.shape != (x.shape[0],) or y.shape != (x.shape[0],):
        raise AbkitInputError(
            "the surrogate index needs one row of signals, one arm flag and one outcome "
            f"per unit; got signals {x.shape}, treated {w.shape}, outcome {y.shape}."
        )
    if w.dtype != bool:
        raise AbkitInputError("treated must be a boolean array (True: the treatment arm).")
    label = tuple(names) if names is not None else tuple(f"s{j}" for j in range(x.shape[1]))
    if len(label) != x.shape[1]:
        raise AbkitInputError(f"{len(label)} signal names for {x.shape[1]} signal columns.")
    outcomes = [("outcome", y)]
    if training is not None:
        outcomes.append(("training outcome", np.asarray(training[1], dtype=float)))
    for what, values in outcomes:
        seen = values[~np.isnan(values)]
        if np.any((seen != 0) & (seen != 1)):
            raise AbkitInputError(f"the {what} (D30) must be 0, 1 or NaN (not matured).")
    if training is not None:
        tx, ty = np.asarray(training[0], dtype=float), np.asarray(training[1], dtype=float)
        if tx.reshape(ty.size, -1).shape[1] != x.shape[1]:
            raise AbkitInputError("the training table must carry the same signals as the units.")
    if not 0 < alpha < 1 or resamples < 20 or folds < 2:
        raise AbkitInputError("alpha must lie in (0, 1), resamples be ≥ 20 and folds ≥ 2.")
    return x, w, y, label


def _training_check(y: np.ndarray, k: int, where: str) -> None:
    """Enough training units of each outcome for ``k`` signals."""
    need = _PER_COEFFICIENT * (k + 1)
    ones = int(np.sum(y == 1))
    if min(ones, y.size - ones) < need:
        raise AbkitInputError(
            f"the D30 model needs at least {need} training units retained on day 30 and "
            f"{need} not; {where} has {ones} and {y.size - ones}.",
            hint="Wait until more early cohorts have matured, or give a past export's "
            "matured units as the training table.",
        )


def _normal_ci(estimate: float, se: float, z: float) -> tuple[float, float]:
    return (estimate - z * se, estimate + z * se)


def surrogate_index(
    signals: np.ndarray,
    treated: np.ndarray,
    outcome: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    training: tuple[np.ndarray, np.ndarray] | None = None,
    alpha: float = 0.05,
    resamples: int = 200,
    folds: int = 5,
    seed: int = 0,
    interval: Interval = "bootstrap",
) -> SurrogateForecast:
    """The surrogate index forecast of a treatment's effect on D30 retention.

    Trains h(s) = P(D30 = 1 | first week = s) on matured training units, predicts every
    experiment unit's D30 from its first week and returns the difference of the arms'
    mean predictions, with an interval that carries the model's own uncertainty (a
    bootstrap that refits the model in every replicate, or the delta method on each
    unit's influence), the fit's diagnostics and the validation on the cohorts matured in both
    arms (see the module docstring for the formulas).

    Parameters
    ----------
    signals : numpy.ndarray
        (n, k) first-week signals of the experiment's units (control and one
        treatment); a row with a NaN (a first week not complete) is left out.
    treated : numpy.ndarray
        (n,) booleans: True for the treatment arm.
    outcome : numpy.ndarray
        (n,) D30 retention, 1 / 0, NaN where the unit's D30 has not matured.
    names : sequence of str, optional
        The signals' names (``s0``, ``s1``, … by default).
    training : (numpy.ndarray, numpy.ndarray), optional
        A separate training table, (signals (m, k), D30 (m,)): matured units of a
        comparable population (a past export).  By default the model is trained on
        the control arm's matured units.
    alpha : float
        1 − the intervals' level; also the validation's test level.
    resamples : int
        Bootstrap replicates (at least 20).
    folds : int
        Folds of the out-of-fold fit diagnostics.
    seed : int
        Seed of the bootstrap and of the folds: the same inputs and seed give the same
        result.
    interval : {"bootstrap", "delta"}
        How the standard errors are found: the bootstrap that refits the model
        ``resamples`` times, or the delta method on each unit's influence
        (:func:`_influence`), the same first-order variance in one pass (for large
        experiments, where refitting hundreds of times costs minutes).

    Returns
    -------
    SurrogateForecast

    Notes
    -----
    τ̂ = mean_{T} ĥ(Sᵢ) − mean_{C} ĥ(Sᵢ), with ĥ the logistic regression of D30 on the
    signals (maximum likelihood, statsmodels ``Logit``).  se is the standard deviation
    of τ̂ over a stratified bootstrap (arm × matured) that refits ĥ in each replicate,
    or its first-order limit from each unit's influence (``interval="delta"``,
    :func:`_influence`), so the interval carries the model's own uncertainty, the
    experiment's sampling and their covariance.

    References
    ----------
    .. [1] Athey, Chetty, Imbens & Kang, "The Surrogate Index", NBER w26463, 2019.

    Examples
    --------
    One binary signal: the model is saturated, so ĥ is the training units' D30 rate in
    each cell (0.2 without the signal, 0.6 with it), and the forecast is
    (0.6 − 0.2)·(share of T with the signal − share of C with it).

    >>> import numpy as np
    >>> from abkit.stats.surrogate import surrogate_index
    >>> s = np.array([0] * 50 + [1] * 50 + [0] * 40 + [1] * 60, dtype=float)
    >>> treated = np.arange(200) >= 100
    >>> y = np.full(200, np.nan)
    >>> y[:100] = np.r_[np.ones(10), np.zeros(40), np.ones(30), np.zeros(20)]
    >>> res = surrogate_index(s, treated, y, names=["active_day_1"], resamples=50, seed=1)
    >>> round(res.estimate, 12), round((0.6 - 0.2) * (0.6 - 0.5), 12)
    (0.04, 0.04)
    >>> res.ci[0] < res.estimate < res.ci[1], res.fit.training_units
    (True, 100)
    """
    x, w, y, label = _validate(signals, treated, outcome, names, training, alpha, resamples, folds)
    k = x.shape[1]
    has = np.all(np.isfinite(x), axis=1)
    matured = has & ~np.isnan(y)
    # the experiment's units the model is trained on (none with a separate table)
    train_mask = matured & ~w if training is None else np.zeros(x.shape[0], dtype=bool)
    if training is None:
        x_train, y_train = x[train_mask], y[train_mask]
        where = "the control arm's matured units"
    else:
        tx = np.asarray(training[0], dtype=float).reshape(len(training[1]), k)
        ty = np.asarray(training[1], dtype=float)
        keep = np.all(np.isfinite(tx), axis=1) & ~np.isnan(ty)
        x_train, y_train = tx[keep], ty[keep]
        where = "the training table"
    _training_check(y_train, k, where)
    if not (np.any(has & w) and np.any(has & ~w)):
        raise AbkitInputError("each arm needs units with a complete first week.")
    try:
        model = fit_logistic(x_train, y_train)
    except _FitFailed as exc:
        raise AbkitInputError(
            f"the D30 model could not be fitted on {where} ({exc}): a signal separates "
            "the retained units from the others perfectly, or the signals are collinear."
        ) from exc

    rng = np.random.default_rng(seed)
    p = np.where(has, model.predict(np.where(has[:, None], x, 0.0)), np.nan)
    point = _effects(p, y, w, matured, np.ones(x.shape[0]))
    if interval == "delta":
        sd = _influence(x, p, y, w, matured, model, train_mask, x_train, y_train)
        replicates_used = 0
    else:
        sd, replicates_used = _bootstrap(
            x, y, w, matured, has, model, train_mask, x_train, y_train, resamples, rng
        )
    z = float(norm_ppf(1 - alpha / 2))
    c_value, t_value = float(np.mean(p[has & ~w])), float(np.mean(p[has & w]))
    n_c, n_t = int(np.sum(has & ~w)), int(np.sum(has & w))
    estimate = t_value - c_value
    v_sampling = np.var(p[has & ~w], ddof=1) / n_c + np.var(p[has & w], ddof=1) / n_t
    log_ratio = math.log(t_value / c_value)
    lo, hi = _normal_ci(log_ratio, float(sd[1]), z)
    auc, brier, in_large, slope = _diagnostics(x_train, y_train, model, folds, rng)
    fit = ModelFit(
        model=MODEL,
        signals=label,
        coefficients=model.coefficients(k),
        training_units=int(y_train.size),
        training_rate=float(y_train.mean()),
        folds=folds,
        auc=auc,
        brier=brier,
        calibration_in_the_large=in_large,
        calibration_slope=slope,
    )
    return SurrogateForecast(
        estimate=estimate,
        ci=_normal_ci(estimate, float(sd[0]), z),
        se=float(sd[0]),
        relative=t_value / c_value - 1.0,
        relative_ci=(math.expm1(lo), math.expm1(hi)),
        control_value=c_value,
        treatment_value=t_value,
        control_n=n_c,
        treatment_n=n_t,
        without_signals=int(np.sum(~has)),
        alpha=alpha,
        method=f"{SURROGATE_METHOD}, {INTERVALS[interval]}",
        assumptions=ASSUMPTIONS,
        training="control" if training is None else "separate",
        resamples=replicates_used,
        seed=seed,
        model_share=max(0.0, 1.0 - float(v_sampling) / float(sd[0]) ** 2) if sd[0] > 0 else 0.0,
        fit=fit,
        validation=_validation(point, sd, y, w, matured, alpha, z),
    )


def _bootstrap(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    matured: np.ndarray,
    has: np.ndarray,
    model: _Model,
    train_mask: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """The standard deviations of :func:`_effects` over a stratified bootstrap (arm ×
    matured) that refits the model on each replicate's training units (the experiment's
    own where ``train_mask`` marks any, else a redraw of the separate table), and the
    replicates whose refit succeeded."""
    strata = [has & (w == arm) & (matured == m) for arm in (False, True) for m in (False, True)]
    indices = [np.flatnonzero(s) for s in strata]
    own = bool(train_mask.any())
    replicates = []
    for _ in range(resamples):
        counts = np.zeros(x.shape[0])
        for idx in indices:
            if idx.size:
                counts += np.bincount(rng.choice(idx, idx.size), minlength=x.shape[0])
        if own:
            rows = np.repeat(np.arange(x.shape[0]), counts.astype(np.int64) * train_mask)
            bx, by = x[rows], y[rows]
        else:
            rows = rng.integers(0, y_train.size, y_train.size)
            bx, by = x_train[rows], y_train[rows]
        try:
            refit = refit_logistic(bx, by, model)
        except _FitFailed:
            continue
        pb = np.where(has, refit.predict(np.where(has[:, None], x, 0.0)), np.nan)
        replicates.append(_effects(pb, y, w, matured, counts))
    boot = np.array(replicates)
    if boot.shape[0] < 20:
        raise AbkitInputError("the D30 model could not be refitted on most bootstrap replicates.")
    sd: np.ndarray = np.std(boot, axis=0, ddof=1)  # NaN for the validation without matured
    return sd, int(boot.shape[0])


def _influence(
    x: np.ndarray,
    p: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    matured: np.ndarray,
    model: _Model,
    train_mask: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
) -> np.ndarray:
    """The standard errors of :func:`_effects`' five statistics by the delta method.

    Each statistic is a smooth function of arm means of the index ĥ(Sᵢ) = p(Sᵢ; β̂)
    and of the outcome, so to first order it moves by Σᵢ φᵢ over the units, with

    * a unit's **sampling** influence on the mean over a set A of n_A units,
      (pᵢ − m_A)/n_A for i ∈ A (ȳ likewise with yᵢ), and
    * a training unit's **model** influence through β̂ − β ≈ Σⱼ H⁻¹x̃ⱼ(yⱼ − pⱼ),
      H = Σⱼ pⱼ(1 − pⱼ)x̃ⱼx̃ⱼᵀ over the training units (x̃ = (1, z), the model's
      standardised design), on m_A: g_Aᵀ H⁻¹x̃ⱼ(yⱼ − pⱼ), g_A = (1/n_A)Σ_{i∈A} pᵢ(1 − pᵢ)x̃ᵢ.

    A control unit that trains the model carries both, so their covariance is kept;
    separate training units carry the model part only.  The log ratio's influence is
    φ(m_T)/m_T − φ(m_C)/m_C.  Var = Σᵢ φᵢ² (the sandwich variance of independent
    units): the bootstrap's first-order limit, computed in one pass.
    """
    n = x.shape[0]
    has = ~np.isnan(p)
    design = _design(x, model)
    train_design = _design(x_train, model)
    p_train = model.predict(x_train)
    hessian = (train_design * (p_train * (1 - p_train))[:, None]).T @ train_design
    # each training unit's influence on β̂ (rows: units, columns: coefficients)
    beta = np.linalg.solve(hessian, (train_design * (y_train - p_train)[:, None]).T).T
    slope = np.where(has, p * (1 - p), 0.0)[:, None] * np.where(has[:, None], design, 0.0)
    sets = {
        "c": has & ~w,
        "t": has & w,
        "mc": has & matured & ~w,
        "mt": has & matured & w,
    }
    own = bool(train_mask.any())

    def index_mean(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Per experiment unit and per training unit, the influence on the mean index
        over ``mask``, and the mean."""
        count = int(mask.sum())
        if not count:
            return np.full(n, np.nan), np.full(y_train.size, np.nan), math.nan
        mean = float(p[mask].mean())
        sampling = np.where(mask, np.nan_to_num(p) - mean, 0.0) / count
        model_part = beta @ (slope[mask].sum(axis=0) / count)
        return sampling, model_part, mean

    def outcome_mean(mask: np.ndarray) -> np.ndarray:
        count = int(mask.sum())
        if not count:
            return np.full(n, np.nan)
        return np.where(mask, np.nan_to_num(y) - float(y[mask].mean()), 0.0) / count

    sc, mc, c = index_mean(sets["c"])
    st, mt, t = index_mean(sets["t"])
    smc, mmc, _ = index_mean(sets["mc"])
    smt, mmt, _ = index_mean(sets["mt"])
    realised = outcome_mean(sets["mt"]) - outcome_mean(sets["mc"])
    sampling = np.column_stack(
        [st - sc, st / t - sc / c, smt - smc, realised, realised - (smt - smc)]
    )
    model_part = np.column_stack(
        [mt - mc, mt / t - mc / c, mmt - mmc, np.zeros(y_train.size), -(mmt - mmc)]
    )
    if own:  # the training units are the control's matured units, in this order
        sampling[train_mask] += model_part
        total = np.sum(sampling**2, axis=0)
    else:
        total = np.sum(sampling**2, axis=0) + np.sum(model_part**2, axis=0)
    out: np.ndarray = np.sqrt(total)
    return out


def _design(x: np.ndarray, model: _Model) -> np.ndarray:
    """The model's standardised design [1, z] of ``x`` (rows with a NaN give NaN)."""
    z = (x[:, model.used] - model.centre) / model.scale
    return np.column_stack([np.ones(x.shape[0]), z])


def _effects(
    p: np.ndarray, y: np.ndarray, w: np.ndarray, matured: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """With units weighted by ``counts`` (a bootstrap replicate's draws): the index's
    effect, its log ratio, and on the matured units the surrogate effect, the realised
    effect and their gap."""

    def mean(values: np.ndarray, mask: np.ndarray) -> float:
        weight = counts * mask
        total = weight.sum()
        return float(np.sum(np.where(mask, values, 0.0) * weight) / total) if total else math.nan

    has = ~np.isnan(p)
    c, t = mean(p, has & ~w), mean(p, has & w)
    mc, mt = has & matured & ~w, has & matured & w
    surrogate = mean(p, mt) - mean(p, mc)
    realised = mean(y, mt) - mean(y, mc)
    return np.array([t - c, math.log(t / c), surrogate, realised, realised - surrogate])


def _validation(
    point: np.ndarray,
    sd: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    matured: np.ndarray,
    alpha: float,
    z: float,
) -> SurrogateValidation | None:
    """The surrogate and realised effects on the units matured in both arms, and the
    test of their gap (None with fewer than 10 matured units in an arm)."""
    yc, yt = y[matured & ~w], y[matured & w]
    if min(yc.size, yt.size) < 10:
        return None
    surrogate, realised, gap = (float(v) for v in point[2:])
    realised_se = math.sqrt(yc.var() / yc.size + yt.var() / yt.size)
    gap_se = float(sd[4])
    p_value = float(2 * norm_sf(abs(gap) / gap_se)) if gap_se > 0 else math.nan
    return SurrogateValidation(
        control_n=int(yc.size),
        treatment_n=int(yt.size),
        surrogate_effect=surrogate,
        surrogate_ci=_normal_ci(surrogate, float(sd[2]), z),
        realised_effect=realised,
        realised_ci=_normal_ci(realised, realised_se, z),
        gap=gap,
        gap_ci=_normal_ci(gap, gap_se, z),
        p_value=p_value,
        disagree=bool(p_value < alpha),
    )
