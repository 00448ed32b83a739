"""CUPED: regression adjustment by pre-experiment covariates, on per-arm moments.

Each unit carries a vector z = (metric components, covariate components); an arm
reduces to n, the mean vector z̄ and the covariance matrix S (ddof = 1): :class:`Moments`.
The metric is g(z̄) — a mean z̄_i, or a ratio of means z̄_i / z̄_j — and each covariate
is h_k(z̄), a mean or a ratio in the same way, so a ratio metric (share rate) can be
adjusted by its own pre-period ratio.

Per arm a, with gradients G_a = ∇g(z̄_a) and H_a = ∇h(z̄_a) (rows), the delta method
gives the per-unit (co)variances v_gg = G S G', v_hg = H S G', V_hh = H S H'
(Deng, Knoblich & Lu, "Applying the Delta Method in Metric Analytics", KDD 2018).  The
coefficient is the pooled within-arm regression of the metric on the covariates,

    θ = (Σ_a (n_a − 1) V_hh,a)⁻¹ Σ_a (n_a − 1) v_hg,a,

which for means is exactly the OLS slope of y on the covariates with one intercept
per arm (so the adjusted effect equals the treatment coefficient of
``y ~ treatment + centred covariates``).  The adjusted effect and its variance are

    Δ_cv = (g_T − θ'h_T) − (g_C − θ'h_C),
    Var(Δ_cv) = Σ_a (v_gg,a − 2 θ'v_hg,a + θ'V_hh,a θ) / n_a

(Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online Controlled Experiments
by Utilizing Pre-Experiment Data", WSDM 2013, eqs. 3–5; the same variance GrowthBook
documents in "Technical CUPED details").  θ is treated as known, as in those sources;
its estimation adds a term of relative order 1/n, so the standard error agrees with an
OLS sandwich (HC) standard error to that order, not exactly.  With several covariates
this is the multivariate regression adjustment of Statsig's CURE and Eppo's CUPED++.

The relative effect is the adjusted treatment value T* = g_C + Δ_cv over the control
value C = g_C, on the log scale as every lift in abkit:
Var(log T*/C) = Var(T*)/T*² + Var(C)/C² − 2 Cov(T*, C)/(T* C), where
T* = g_T − θ'(h_T − h_C), so Cov(T*, C) = θ'v_hg,C / n_C.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from abkit.stats.arm import Summable
from abkit.stats.distributions import Reference, norm_ppf
from abkit.stats.fixed_horizon import Comparison, nonnegative, undefined_comparison

# a metric or covariate as a function of the mean vector: (i,) = z̄_i, (i, j) = z̄_i / z̄_j
Term = tuple[int] | tuple[int, int]


@dataclass(frozen=True)
class Moments(Summable):
    """n, mean vector and covariance matrix (ddof = 1) of one arm's per-unit vectors.

    Parameters
    ----------
    n : int
        Number of units.
    mean : numpy.ndarray
        z̄, shape (p,): the mean of each column (metric components, covariates).
    cov : numpy.ndarray
        S, shape (p, p): the sample covariance matrix (ddof = 1) of the columns, NaN
        when n < 2.

    Notes
    -----
    Moments of disjoint sets of units add with ``+`` (and ``sum``) to the moments of
    their union: see :meth:`__add__`.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments
    >>> z = np.array([[1.0, 10.0], [2.0, 12.0], [4.0, 11.0], [8.0, 15.0]])
    >>> merged = Moments.from_values(z[:2]) + Moments.from_values(z[2:])
    >>> merged.n, merged.mean.tolist()
    (4, [3.75, 12.0])
    >>> bool(np.allclose(merged.cov, np.cov(z, rowvar=False), rtol=1e-12))
    True
    """

    n: int
    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def zero(cls, columns: int) -> Moments:
        """The moments of no units with ``columns`` columns: the identity of ``+``.

        Parameters
        ----------
        columns : int
            p, the length of the mean vector.

        Returns
        -------
        Moments
            n = 0 with NaN means and covariances.

        Examples
        --------
        >>> from abkit.stats.cuped import Moments
        >>> sum([], Moments.zero(3)).mean.shape
        (3,)
        """
        return cls(n=0, mean=np.full(columns, np.nan), cov=np.full((columns, columns), np.nan))

    def __add__(self, other: object) -> Moments:
        """The moments of the union of two disjoint sets of units.

        Parameters
        ----------
        other : Moments
            Moments of the same columns over units that are not among these.  An
            empty part (n = 0) is the identity.

        Returns
        -------
        Moments
            n = n_a + n_b, the pooled mean vector and covariance matrix (ddof = 1;
            NaN when n < 2), as :meth:`from_values` gives them on the union.

        Raises
        ------
        ValueError
            When the two parts have different numbers of columns.

        Notes
        -----
        The multivariate form of the parallel update of Chan, Golub & LeVeque
        ("Updating formulae and a pairwise algorithm for computing sample
        variances", Stanford report STAN-CS-79-773, 1979; Pébay, SAND2008-6212,
        2008, for co-moments): with δ = z̄_b − z̄_a and the matrix of cross-products
        of deviations Q = Σ(zᵢ − z̄)(zᵢ − z̄)' = S·(n − 1),

            z̄ = z̄_a + δ·n_b/n,    Q = Q_a + Q_b + δδ'·n_a·n_b/n.

        A part of one unit has Q = 0 (its NaN covariance is not carried into the
        merge).  Only deviations from means enter, never Σzz', so the merge keeps
        the precision of the parts when means are large relative to the spread.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.cuped import Moments
        >>> z = np.random.default_rng(0).normal(size=(9, 3))
        >>> merged = sum(Moments.from_values(p) for p in (z[:1], z[1:5], z[5:]))
        >>> merged.n, bool(np.allclose(merged.cov, np.cov(z, rowvar=False), rtol=1e-12))
        (9, True)
        >>> Moments.from_values(z) + Moments.from_values(z[:, :2])
        Traceback (most recent call last):
        ...
        ValueError: cannot add moments of 3 columns and of 2 columns: ...
        """
        if not isinstance(other, Moments):
            return NotImplemented
        if self.mean.shape != other.mean.shape:
            raise ValueError(
                f"cannot add moments of {self.mean.size} columns and of {other.mean.size} "
                "columns: the parts must hold the same metric components and covariates"
            )
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        scatter = self._scatter() + other._scatter()
        scatter = scatter + np.outer(delta, delta) * (self.n * other.n / n)
        return Moments(n=n, mean=self.mean + delta * (other.n / n), cov=scatter / (n - 1))

    def _scatter(self) -> np.ndarray:
        """Q = S·(n − 1), the cross-products of deviations (0 for a single unit)."""
        if self.n < 2:
            return np.zeros_like(self.cov, dtype=float)
        return np.asarray(self.cov, dtype=float) * (self.n - 1)

    @classmethod
    def from_values(cls, z: np.ndarray) -> Moments:
        """Moments of an (n, p) array of per-unit vectors.

        Parameters
        ----------
        z : numpy.ndarray
            One row per unit, one column per component; a 1-d array is one column.

        Returns
        -------
        Moments
            n, the column means and the covariance matrix (ddof = 1; NaN when n < 2).

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.cuped import Moments
        >>> m = Moments.from_values(np.array([[1.0, 10.0], [3.0, 14.0]]))
        >>> m.n, m.mean.tolist(), m.cov.tolist()
        (2, [2.0, 12.0], [[2.0, 4.0], [4.0, 8.0]])
        """
        z = np.asarray(z, dtype=float)
        if z.ndim == 1:
            z = z[:, None]
        n, p = z.shape
        cov = np.cov(z, rowvar=False, ddof=1).reshape(p, p) if n > 1 else np.full((p, p), np.nan)
        return cls(n=n, mean=z.mean(axis=0), cov=cov)


@dataclass(frozen=True)
class Adjustment:
    """What the adjustment did: θ per covariate, the unadjusted effect and its SE,
    and the share of the effect's variance removed (1 − Var(Δ_cv) / Var(Δ)).

    Parameters
    ----------
    covariates : tuple of str
        The covariates' names.
    theta : tuple of float
        θ, the pooled within-arm regression coefficient of each covariate.
    unadjusted_effect : float
        g_T − g_C, the effect without adjustment.
    unadjusted_se : float
        √(v_gg,C/n_C + v_gg,T/n_T), its delta-method standard error.
    variance_reduction : float
        1 − Var(Δ_cv)/Var(Δ); NaN when Var(Δ) is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments, cuped_test
    >>> rng = np.random.default_rng(7)
    >>> pre_c, pre_t = rng.gamma(2, 2, 200), rng.gamma(2, 2, 200)
    >>> y_c = pre_c + rng.normal(0, 1, 200)
    >>> y_t = pre_t + 0.3 + rng.normal(0, 1, 200)
    >>> control = Moments.from_values(np.column_stack([y_c, pre_c]))
    >>> treatment = Moments.from_values(np.column_stack([y_t, pre_t]))
    >>> _, adjustment = cuped_test(control, treatment, (0,), [(1,)], ["pre"], alpha=0.05)
    >>> round(adjustment.theta[0], 4), round(adjustment.variance_reduction, 4)
    (1.0128, 0.8805)
    """

    covariates: tuple[str, ...]
    theta: tuple[float, ...]
    unadjusted_effect: float
    unadjusted_se: float
    variance_reduction: float


def term_value(term: Term, mean: np.ndarray) -> float:
    """A term's value at the mean vector: z̄_i, or z̄_i / z̄_j (NaN when z̄_j = 0).

    Parameters
    ----------
    term : tuple of int
        (i,) for the mean of column i, (i, j) for the ratio of the means of i and j.
    mean : numpy.ndarray
        The mean vector z̄.

    Returns
    -------
    float
        g(z̄).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cuped import term_value
    >>> term_value((0, 1), np.array([3.0, 2.0])), term_value((0,), np.array([3.0, 2.0]))
    (1.5, 3.0)
    """
    if len(term) == 1:
        return float(mean[term[0]])
    den = mean[term[1]]
    return float(mean[term[0]] / den) if den != 0 else math.nan


def term_gradient(term: Term, mean: np.ndarray) -> np.ndarray:
    """The gradient of a term with respect to the mean vector.

    ∇z̄_i = e_i; ∇(z̄_i / z̄_j) = e_i/z̄_j − e_j·z̄_i/z̄_j², the row G of the delta
    method Var(g(z̄)) ≈ G S G'/n.

    Parameters
    ----------
    term : tuple of int
        (i,) or (i, j), as in :func:`term_value`.
    mean : numpy.ndarray
        The mean vector z̄, shape (p,).

    Returns
    -------
    numpy.ndarray
        ∇g(z̄), shape (p,).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cuped import term_gradient
    >>> term_gradient((0, 1), np.array([3.0, 2.0])).tolist()
    [0.5, -0.75]
    """
    grad = np.zeros(mean.size)
    if len(term) == 1:
        grad[term[0]] = 1.0
    else:
        i, j = term
        grad[i] = 1.0 / mean[j]
        grad[j] = -mean[i] / mean[j] ** 2
    return grad


@dataclass(frozen=True)
class _Arm:
    """One arm linearised: metric value g, covariate values h and the per-unit
    (co)variances of the linearised metric and covariates."""

    n: int
    g: float
    h: np.ndarray
    v_gg: float
    v_hg: np.ndarray
    v_hh: np.ndarray

    @classmethod
    def of(cls, arm: Moments, metric: Term, covariates: Sequence[Term]) -> _Arm:
        grad_g = term_gradient(metric, arm.mean)
        grad_h = np.array([term_gradient(c, arm.mean) for c in covariates])
        return cls(
            n=arm.n,
            g=term_value(metric, arm.mean),
            h=np.array([term_value(c, arm.mean) for c in covariates]),
            v_gg=float(grad_g @ arm.cov @ grad_g),
            v_hg=grad_h @ arm.cov @ grad_g,
            v_hh=grad_h @ arm.cov @ grad_h.T,
        )

    def adjusted_variance(self, theta: np.ndarray) -> float:
        """Per-unit variance of the adjusted metric, v_gg − 2θ'v_hg + θ'V_hh θ."""
        terms = (self.v_gg, -2.0 * float(theta @ self.v_hg), float(theta @ self.v_hh @ theta))
        return nonnegative(sum(terms), sum(abs(t) for t in terms))


def pooled_theta(arms: Sequence[_Arm]) -> tuple[np.ndarray, bool]:
    """θ = (Σ (n_a − 1) V_hh,a)⁻¹ Σ (n_a − 1) v_hg,a by least squares; the flag says
    whether the covariates were linearly independent (a collinear set gets the
    minimum-norm θ, which adjusts as well as any other solution).

    Parameters
    ----------
    arms : sequence of _Arm
        The linearised arms (n_a, V_hh,a and v_hg,a of each), as :func:`cuped_test`
        builds them.

    Returns
    -------
    theta : numpy.ndarray
        One coefficient per covariate.
    independent : bool
        False when the covariates are collinear.

    Examples
    --------
    For a mean metric θ is the pooled within-arm OLS slope of the metric on the
    covariate:

    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments, cuped_test
    >>> rng = np.random.default_rng(7)
    >>> pre_c, pre_t = rng.gamma(2, 2, 200), rng.gamma(2, 2, 200)
    >>> y_c = pre_c + rng.normal(0, 1, 200)
    >>> y_t = pre_t + 0.3 + rng.normal(0, 1, 200)
    >>> control = Moments.from_values(np.column_stack([y_c, pre_c]))
    >>> treatment = Moments.from_values(np.column_stack([y_t, pre_t]))
    >>> from abkit.stats.cuped import _Arm, pooled_theta
    >>> arms = [_Arm.of(m, (0,), [(1,)]) for m in (control, treatment)]
    >>> theta, independent = pooled_theta(arms)
    >>> theta.round(4).tolist(), independent
    ([1.0128], True)
    """
    lhs = sum((a.n - 1) * a.v_hh for a in arms)
    rhs = sum((a.n - 1) * a.v_hg for a in arms)
    theta, _, rank, _ = np.linalg.lstsq(np.atleast_2d(lhs), np.atleast_1d(rhs), rcond=None)
    return theta, int(rank) == len(theta)


def cuped_test(
    control: Moments,
    treatment: Moments,
    metric: Term,
    covariates: Sequence[Term],
    covariate_names: Sequence[str],
    alpha: float,
    welch_df: bool = False,
) -> tuple[Comparison, Adjustment | None]:
    """The CUPED-adjusted comparison of ``metric`` (see the module docstring).

    ``welch_df`` uses a t reference with the
    Welch–Satterthwaite degrees of freedom of the adjusted per-arm variances (mean
    metrics), otherwise the reference is normal.  Returns the comparison and the
    :class:`Adjustment`, or no adjustment (None) with the comparison undefined when
    an arm has fewer than two units or a ratio's denominator mean is 0.

    Δ_cv = (g_T − θ'h_T) − (g_C − θ'h_C) with θ from :func:`pooled_theta` and
    Var(Δ_cv) = Σ_a (v_gg,a − 2 θ'v_hg,a + θ'V_hh,a θ) / n_a; the lift is
    T*/C − 1 with T* = g_C + Δ_cv, on the log scale.

    Parameters
    ----------
    control, treatment : Moments
        The arms' moments of the per-unit vectors z.
    metric : tuple of int
        The metric as a term of z̄: (i,) a mean, (i, j) a ratio of means.
    covariates : sequence of tuple of int
        The covariates as terms of z̄.
    covariate_names : sequence of str
        Their names, for the method string and :class:`Adjustment`.
    alpha : float
        1 − the confidence level of the intervals.
    welch_df : bool, default False
        A t reference with Welch–Satterthwaite df instead of the normal.

    Returns
    -------
    comparison : Comparison
        The adjusted comparison; ``control_value`` and ``treatment_value`` are the
        unadjusted g_C and g_T.
    adjustment : Adjustment or None
        θ, the unadjusted effect and the variance reduction; None when the
        comparison is undefined before adjustment.

    References
    ----------
    .. [1] A. Deng, Y. Xu, R. Kohavi and T. Walker, "Improving the Sensitivity of
       Online Controlled Experiments by Utilizing Pre-Experiment Data", WSDM 2013,
       eqs. 3–5.
    .. [2] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018.

    Examples
    --------
    The adjusted effect is the treatment coefficient of the regression of y on the
    treatment and the centred pre-period value:

    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments, cuped_test
    >>> rng = np.random.default_rng(7)
    >>> pre_c, pre_t = rng.gamma(2, 2, 200), rng.gamma(2, 2, 200)
    >>> y_c = pre_c + rng.normal(0, 1, 200)
    >>> y_t = pre_t + 0.3 + rng.normal(0, 1, 200)
    >>> control = Moments.from_values(np.column_stack([y_c, pre_c]))
    >>> treatment = Moments.from_values(np.column_stack([y_t, pre_t]))
    >>> comp, adjustment = cuped_test(
    ...     control, treatment, (0,), [(1,)], ["pre-period value"], alpha=0.05
    ... )
    >>> comp.method
    'CUPED-adjusted z-test (delta-method SE) by pre-period value'
    >>> round(comp.effect, 4), round(comp.se, 4), round(adjustment.unadjusted_se, 4)
    (0.1174, 0.0972, 0.2813)
    >>> y, pre = np.r_[y_c, y_t], np.r_[pre_c, pre_t]
    >>> treated = np.r_[np.zeros(200), np.ones(200)]
    >>> design = np.column_stack([np.ones(400), treated, pre - pre.mean()])
    >>> round(float(np.linalg.lstsq(design, y, rcond=None)[0][1]), 4)
    0.1174
    """
    test = "Welch t-test" if welch_df else "z-test (delta-method SE)"
    label = f"CUPED-adjusted {test} by {', '.join(covariate_names)}"
    arms = []
    for name, m in (("control", control), ("treatment", treatment)):
        if m.n < 2:
            return undefined_comparison(
                label,
                math.nan,
                math.nan,
                [f"the {name} arm has {m.n} unit(s); at least 2 are needed"],
            ), None
        dens = [t[1] for t in (metric, *covariates) if len(t) == 2]
        if any(m.mean[j] == 0 for j in dens):
            return undefined_comparison(
                label,
                term_value(metric, control.mean),
                term_value(metric, treatment.mean),
                [f"a denominator of the {name} arm averages 0, so a ratio is undefined"],
            ), None
        arms.append(_Arm.of(m, metric, covariates))
    c, t = arms
    theta, independent = pooled_theta(arms)
    warnings = [] if independent else ["the covariates are collinear: the minimum-norm θ is used"]

    effect = (t.g - c.g) - float(theta @ (t.h - c.h))
    var_c, var_t = c.adjusted_variance(theta) / c.n, t.adjusted_variance(theta) / t.n
    var = var_c + var_t
    raw_var = c.v_gg / c.n + t.v_gg / t.n
    adjustment = Adjustment(
        covariates=tuple(covariate_names),
        theta=tuple(float(v) for v in theta),
        unadjusted_effect=t.g - c.g,
        unadjusted_se=math.sqrt(raw_var),
        variance_reduction=1.0 - var / raw_var if raw_var > 0 else math.nan,
    )
    se = math.sqrt(var)
    df = _welch_df(var_c, var_t, c.n, t.n) if welch_df else math.inf
    if not se > 0:
        comp = undefined_comparison(
            label, c.g, t.g, ["the adjusted metric has no variation in either arm"], warnings
        )
        return comp, adjustment
    ref = Reference(df)
    statistic = effect / se
    half = float(ref.ppf(1.0 - alpha / 2.0)) * se
    rel, log_se, rel_ci, rel_warn = _adjusted_lift(c, t, theta, effect, var_t, alpha)
    comp = Comparison(
        method=label,
        control_value=c.g,
        treatment_value=t.g,
        effect=effect,
        se=se,
        df=df,
        statistic=statistic,
        p_value=float(2.0 * ref.sf(abs(statistic))),
        ci=(effect - half, effect + half),
        relative_effect=rel,
        log_ratio_se=log_se,
        relative_ci=rel_ci,
        warnings=(*warnings, *rel_warn),
    )
    return comp, adjustment


def _welch_df(var_c: float, var_t: float, n_c: int, n_t: int) -> float:
    """Welch–Satterthwaite degrees of freedom from the two variances of the means."""
    scale = max(var_c, var_t)
    if not (scale > 0 and math.isfinite(scale)):
        return math.nan
    a, b = var_t / scale, var_c / scale
    return (a + b) ** 2 / (a * a / (n_t - 1) + b * b / (n_c - 1))


def _adjusted_lift(
    c: _Arm, t: _Arm, theta: np.ndarray, effect: float, var_t: float, alpha: float
) -> tuple[float, float, tuple[float, float], list[str]]:
    """Lift T*/C − 1 with T* = g_C + Δ_cv, and its log-scale interval (module docstring)."""
    nan2 = (math.nan, math.nan)
    if c.g == 0 or not math.isfinite(c.g):
        return (
            math.nan,
            math.nan,
            nan2,
            ["control value is 0 or undefined, so the relative effect is undefined (NaN)"],
        )
    adjusted = c.g + effect
    lift = adjusted / c.g - 1.0
    if not adjusted / c.g > 0:
        return (
            lift,
            math.nan,
            nan2,
            [
                "the adjusted treatment value and the control value differ in sign, so the "
                "relative effect has no log-scale interval (NaN)"
            ],
        )
    var_adjusted = var_t + float(theta @ c.v_hh @ theta) / c.n
    var_control = c.v_gg / c.n
    cov = float(theta @ c.v_hg) / c.n
    log_var = var_adjusted / adjusted**2 + var_control / c.g**2 - 2.0 * cov / (adjusted * c.g)
    se = math.sqrt(max(log_var, 0.0))
    half = float(norm_ppf(1.0 - alpha / 2.0)) * se
    log_ratio = math.log(adjusted / c.g)
    with np.errstate(over="ignore"):  # a huge SE gives an unbounded (inf) upper side
        low, high = np.expm1([log_ratio - half, log_ratio + half])
    return lift, se, (float(low), float(high)), []


def or_unadjusted(
    plain: Comparison, adjusted: tuple[Comparison, Adjustment | None]
) -> tuple[Comparison, Adjustment | None]:
    """The CUPED comparison (:func:`cuped_test`'s result) in place of the unadjusted
    ``plain`` one; ``plain``, with the reason added, when it could not be computed.

    Parameters
    ----------
    plain : Comparison
        The unadjusted comparison of the same metric.
    adjusted : tuple of (Comparison, Adjustment or None)
        What :func:`cuped_test` returned.

    Returns
    -------
    comparison : Comparison
        The adjusted comparison, or ``plain`` with a "CUPED not applied: …" warning.
    adjustment : Adjustment or None
        The adjustment, None when it was not applied.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cuped import Moments, cuped_test
    >>> rng = np.random.default_rng(7)
    >>> pre_c, pre_t = rng.gamma(2, 2, 200), rng.gamma(2, 2, 200)
    >>> y_c = pre_c + rng.normal(0, 1, 200)
    >>> y_t = pre_t + 0.3 + rng.normal(0, 1, 200)
    >>> control = Moments.from_values(np.column_stack([y_c, pre_c]))
    >>> treatment = Moments.from_values(np.column_stack([y_t, pre_t]))
    >>> from abkit.stats.arm import ArmSummary
    >>> from abkit.stats.cuped import or_unadjusted
    >>> from abkit.stats.fixed_horizon import welch_test
    >>> plain = welch_test(ArmSummary.from_values(y_c), ArmSummary.from_values(y_t))
    >>> one_unit = Moments.from_values(np.array([[1.0, 2.0]]))
    >>> comp, adjustment = or_unadjusted(
    ...     plain, cuped_test(one_unit, treatment, (0,), [(1,)], ["pre"], alpha=0.05)
    ... )
    >>> adjustment, comp.warnings
    (None, ('CUPED not applied: the control arm has 1 unit(s); at least 2 are needed',))
    """
    comp, adjustment = adjusted
    if adjustment is None:
        reason = "; ".join((*comp.undefined, *comp.warnings))
        return replace(plain, warnings=(*plain.warnings, f"CUPED not applied: {reason}")), None
    return comp, adjustment
