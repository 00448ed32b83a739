"""Randomisation inference at the account level.

Under the sharp null that the treatment changes no account's value, every
re-assignment of accounts to arms (with the arm sizes, and within strata when given)
was equally likely, so the share of re-assignments whose statistic is at least as
extreme as the observed one is an exact p-value (Fisher 1935; Imbens & Rubin, *Causal
Inference*, 2015, ch. 5).  All re-assignments are enumerated when there are at most
``max_exact`` of them; otherwise ``draws`` random ones are used and the p-value is
(1 + #extreme)/(1 + draws) (Phipson & Smyth 2010), still valid.

The statistic is the difference of arm estimates (user- or account-weighted).  With
pre-experiment covariates Z_g per account it is the difference of CUPED-adjusted
estimates, each account's numerator replaced by its residual X_g − (Z_g − Y_g·z̄)'β from
the Y-weighted regression of X_g/Y_g on Z_g/Y_g fitted over all accounts *ignoring the
assignment* (z̄ = ΣZ/ΣY).  Under the sharp null the residuals are fixed, so permuting
them keeps the test exact — covariance adjustment of a randomisation test by Rosenbaum,
"Covariance adjustment in randomized experiments and observational studies",
Statistical Science 17 (2002) 286–327.  Under a hypothesised effect the regression is
refitted on the effect-free numerators; the residuals stay affine in the effect, so the
test inversion below applies unchanged.

The confidence interval inverts the test under a constant additive effect δ per unit
of the denominator: treated accounts' numerators become X_g − δ·Y_g, which shifts both
estimators by exactly δ; the interval is every δ not rejected at α.  The interval for
the relative effect (lift) λ inverts it under a constant multiplicative effect:
treated numerators become X_g/(1 + λ), which scales both estimators by 1/(1 + λ).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from abkit.stats.cluster import USER_WEIGHTED, AccountArm

LOG_LIMIT = math.log(1e6)  # lifts beyond ×1e6 or below ÷1e6 are reported as unbounded


@dataclass(frozen=True)
class RandomizationResult:
    """A randomisation test of the difference between two arms of accounts
    (:func:`randomization_test`).

    Parameters
    ----------
    effect : float
        The observed difference of the arm estimates (covariate-adjusted when
        ``theta`` is set).
    p_value : float
        Two-sided randomisation p-value of the sharp null of no effect.
    ci : tuple of float
        The effects not rejected at α under a constant additive shift.
    assignments : int
        The re-assignments used.
    exact : bool
        Whether they are all of them (else random draws).
    relative_ci : tuple of float
        The lifts not rejected under a constant multiplicative effect (NaN unless
        both arm values are positive).
    null_sd : float
        Standard deviation of the statistic over the re-assignments (no effect).
    theta : tuple of float
        The covariates' coefficients β at no effect; empty without covariates.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.randomization import randomization_test
    >>> r = randomization_test(control, treatment, "account")
    >>> r.assignments, r.exact, round(r.p_value, 4)
    (462, True, 0.0584)
    """

    effect: float
    p_value: float
    ci: tuple[float, float]
    assignments: int
    exact: bool
    relative_ci: tuple[float, float] = (math.nan, math.nan)
    null_sd: float = math.nan  # sd of the statistic over the re-assignments (no effect)
    theta: tuple[float, ...] = ()  # the covariates' coefficients β (no effect), if any


def assignment_matrix(
    treated: np.ndarray, strata: np.ndarray, max_exact: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """Rows: re-assignments (True = treatment) that keep each stratum's treated count.

    When Π_s C(n_s, k_s) ≤ ``max_exact`` (n_s units of stratum s, k_s of them
    treated) every re-assignment is listed once; otherwise ``draws`` random ones,
    each a uniform choice of k_s treated units within every stratum.

    Parameters
    ----------
    treated : numpy.ndarray
        The observed assignment, one bool per unit (account).
    strata : numpy.ndarray
        The stratum of each unit (one value for all: unblocked).
    max_exact : int
        The most re-assignments listed exhaustively.
    draws : int
        Random re-assignments drawn otherwise.
    rng : numpy.random.Generator
        The source of the random draws.

    Returns
    -------
    assign : numpy.ndarray
        Bool, (re-assignments, units).
    exact : bool
        Whether ``assign`` lists all re-assignments.

    Examples
    --------
    Two of four units treated, within two strata of two:

    >>> import numpy as np
    >>> from abkit.stats.randomization import assignment_matrix
    >>> assign, exact = assignment_matrix(
    ...     np.array([False, True, False, True]), np.array([0, 0, 1, 1]),
    ...     max_exact=100, draws=10, rng=np.random.default_rng(0),
    ... )
    >>> assign.astype(int).tolist(), exact
    ([[1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1]], True)
    """
    n = treated.size
    sizes = [
        (np.flatnonzero(strata == s), int(treated[strata == s].sum())) for s in np.unique(strata)
    ]
    total = math.prod(math.comb(g.size, k) for g, k in sizes)
    if total <= max_exact:
        blocks = []
        for g, k in sizes:
            count = math.comb(g.size, k)
            combos = np.fromiter(
                itertools.chain.from_iterable(itertools.combinations(range(g.size), k)),
                dtype=int,
                count=count * k,
            ).reshape(count, k)
            rows = np.zeros((count, g.size), dtype=bool)
            np.put_along_axis(rows, combos, True, axis=1)
            blocks.append(rows)
        grid = np.stack(
            np.meshgrid(*[np.arange(b.shape[0]) for b in blocks], indexing="ij"), axis=-1
        ).reshape(-1, len(blocks))
        out = np.zeros((grid.shape[0], n), dtype=bool)
        for j, ((g, _), rows) in enumerate(zip(sizes, blocks, strict=True)):
            out[:, g] = rows[grid[:, j]]
        return out, True
    out = np.zeros((draws, n), dtype=bool)
    for g, k in sizes:
        chosen = np.argsort(rng.random((draws, g.size)), axis=1)[:, :k]
        block = np.zeros((draws, g.size), dtype=bool)
        np.put_along_axis(block, chosen, True, axis=1)
        out[:, g] = block
    return out, False


@dataclass(frozen=True)
class AffineStatistics:
    """The difference statistic of every re-assignment as an affine function of a
    hypothesised effect.

    Shifting treated accounts' numerators by a constant additive effect δ
    (X_g − δ·Y_g) or multiplicative effect (X_g·e^−θ = X_g − c·X_g, c = 1 − e^−θ)
    changes the statistic of re-assignment j to ``base[j] − s·slope[j]`` with s = δ
    or c, and the observed one to ``base_obs − s·slope_obs``.  One matrix product
    gives all columns, after which any hypothesis costs O(re-assignments), so the
    interval inversion never redoes the product.

    Parameters
    ----------
    base : numpy.ndarray
        The statistic of each re-assignment at no effect.
    additive, multiplicative : numpy.ndarray
        Its slope in δ and in c for each re-assignment.
    base_obs, additive_obs, multiplicative_obs : float
        The same for the observed assignment.
    exact : bool
        Whether the re-assignments are all of them.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.randomization import affine_statistics, assignment_matrix
    >>> x = np.array([12.0, 30.0, 8.0, 21.0, 15.0, 18.0, 40.0, 9.0, 30.0, 11.0, 26.0])
    >>> y = np.array([10.0, 25.0, 5.0, 20.0, 12.0, 12.0, 28.0, 6.0, 22.0, 8.0, 17.0])
    >>> treated = np.r_[np.zeros(5, bool), np.ones(6, bool)]
    >>> assign, exact = assignment_matrix(
    ...     treated, np.zeros(11, int), 1000, 0, np.random.default_rng(0)
    ... )
    >>> stats, _ = affine_statistics(assign, treated, x, y, "account", exact)
    >>> stats.base.shape, round(stats.base_obs, 4)
    ((462,), 0.1894)
    """

    base: np.ndarray
    additive: np.ndarray
    multiplicative: np.ndarray
    base_obs: float
    additive_obs: float
    multiplicative_obs: float
    exact: bool

    def statistics(self, shift: float, kind: str) -> tuple[np.ndarray, float]:
        """The statistics under a hypothesised effect.

        Parameters
        ----------
        shift : float
            δ ("additive"), or θ = log(1 + lift) ("multiplicative").
        kind : str
            "additive" or "multiplicative".

        Returns
        -------
        values : numpy.ndarray
            base − s·slope of every re-assignment (s = δ, or c = 1 − e^−θ).
        observed : float
            The observed statistic under the same hypothesis.
        """
        if kind == "additive":
            return self.base - shift * self.additive, self.base_obs - shift * self.additive_obs
        c = -math.expm1(-shift)  # 1 − e^−θ
        return (
            self.base - c * self.multiplicative,
            self.base_obs - c * self.multiplicative_obs,
        )

    def estimate(self, kind: str) -> float:
        """The hypothesised effect at which the observed statistic is 0: the additive
        effect δ, or log(1 + lift) for the multiplicative one.

        Parameters
        ----------
        kind : str
            "additive" or "multiplicative".

        Returns
        -------
        float
            δ̂ = base_obs/additive_obs, or θ̂ = −log(1 − ĉ) with
            ĉ = base_obs/multiplicative_obs; NaN when the slope is 0 (or ĉ ≥ 1).

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.randomization import affine_statistics, assignment_matrix
        >>> x = np.array([12.0, 30.0, 8.0, 21.0, 15.0, 18.0, 40.0, 9.0, 30.0, 11.0, 26.0])
        >>> y = np.array([10.0, 25.0, 5.0, 20.0, 12.0, 12.0, 28.0, 6.0, 22.0, 8.0, 17.0])
        >>> treated = np.r_[np.zeros(5, bool), np.ones(6, bool)]
        >>> assign, exact = assignment_matrix(
        ...     treated, np.zeros(11, int), 1000, 0, np.random.default_rng(0)
        ... )
        >>> stats, _ = affine_statistics(assign, treated, x, y, "account", exact)
        >>> round(stats.estimate("additive"), 4), round(stats.estimate("multiplicative"), 4)
        (0.1894, 0.1401)
        """
        if kind == "additive":
            return self.base_obs / self.additive_obs if self.additive_obs else math.nan
        c = self.base_obs / self.multiplicative_obs if self.multiplicative_obs else math.nan
        return -math.log1p(-c) if c < 1 else math.nan


class ShiftStatistics(Protocol):
    """A randomisation statistic under a hypothesised constant effect: for a shift s
    (an additive effect, or log(1 + lift) for a multiplicative one, by ``kind``) the
    statistic of every re-assignment and the observed one; ``exact`` when the
    re-assignments are all of them.

    :class:`AffineStatistics` (account sums) and
    :class:`~abkit.stats.account_quantile.QuantileShifts` (quantiles of event values)
    implement it; :func:`shift_p_value`, :func:`invert_test` and
    :func:`shifted_noninferiority` work on either.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.randomization import AffineStatistics, shift_p_value
    >>> stats = AffineStatistics(
    ...     base=np.array([-1.0, 0.5, 2.0]), additive=np.zeros(3), multiplicative=np.zeros(3),
    ...     base_obs=1.5, additive_obs=1.0, multiplicative_obs=1.0, exact=True,
    ... )
    >>> stats.statistics(0.5, "additive")[1], shift_p_value(stats, 0.5, "additive")
    (1.0, 0.6666666666666666)
    """

    @property
    def exact(self) -> bool:
        """Whether the re-assignments are all of them (else random draws)."""
        ...

    def statistics(self, shift: float, kind: str) -> tuple[np.ndarray, float]:
        """The statistic of every re-assignment and the observed one under ``shift``.

        Parameters
        ----------
        shift : float
            The hypothesised effect: δ, or log(1 + lift).
        kind : str
            "additive" or "multiplicative".

        Returns
        -------
        values : numpy.ndarray
            One statistic per re-assignment (NaN where undefined).
        observed : float
            The observed statistic.
        """
        ...


def shift_p_value(
    stats: ShiftStatistics, shift: float, kind: str, side: str = "two-sided"
) -> float:
    """Share of re-assignments at least as extreme as the observed statistic under the
    hypothesised shift ('greater' / 'less': one-sided).  Re-assignments whose
    statistic is undefined (an arm left without data) are left out: under the sharp
    null whether it is defined depends on the assignment only, so the test conditional
    on it stays exact.

    With T_j the statistic of re-assignment j and T the observed one, the two-sided
    p-value counts |T_j| ≥ |T| ("greater": T_j ≥ T; "less": T_j ≤ T), with a
    relative tolerance of 1e-12 for ties; the share is count/J when the J
    re-assignments are all of them, (1 + count)/(1 + J) when they are random draws
    (Phipson & Smyth 2010).

    Parameters
    ----------
    stats : ShiftStatistics
        The statistics under any hypothesised shift.
    shift : float
        The hypothesised effect (δ, or log(1 + lift) for "multiplicative").
    kind : str
        "additive" or "multiplicative".
    side : str, default "two-sided"
        "two-sided", "greater" or "less".

    Returns
    -------
    float
        The p-value; NaN when no re-assignment or the observed statistic is defined.

    References
    ----------
    .. [1] R. A. Fisher, *The Design of Experiments*, Oliver & Boyd, 1935.
    .. [2] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, ch. 5.
    .. [3] B. Phipson and G. K. Smyth, "Permutation P-values should never be zero:
       calculating exact P-values when permutations are randomly drawn",
       Statistical Applications in Genetics and Molecular Biology 9, 2010.

    Examples
    --------
    At no shift, the exact two-sided p-value of SciPy's ``permutation_test`` on the
    account values:

    >>> import numpy as np
    >>> from abkit.stats.randomization import affine_statistics, assignment_matrix
    >>> x = np.array([12.0, 30.0, 8.0, 21.0, 15.0, 18.0, 40.0, 9.0, 30.0, 11.0, 26.0])
    >>> y = np.array([10.0, 25.0, 5.0, 20.0, 12.0, 12.0, 28.0, 6.0, 22.0, 8.0, 17.0])
    >>> treated = np.r_[np.zeros(5, bool), np.ones(6, bool)]
    >>> assign, exact = assignment_matrix(
    ...     treated, np.zeros(11, int), 1000, 0, np.random.default_rng(0)
    ... )
    >>> stats, _ = affine_statistics(assign, treated, x, y, "account", exact)
    >>> from scipy import stats as st
    >>> from abkit.stats.randomization import shift_p_value
    >>> round(shift_p_value(stats, 0.0, "additive"), 4)
    0.0584
    >>> gap = lambda a, b, axis: np.abs(a.mean(axis=axis) - b.mean(axis=axis))
    >>> arms = (x / y)[treated], (x / y)[~treated]
    >>> perm = st.permutation_test(arms, gap, n_resamples=np.inf, alternative="greater")
    >>> round(float(perm.pvalue), 4)
    0.0584
    >>> round(shift_p_value(stats, 0.0, "additive", side="greater"), 4)
    0.0303
    """
    values, obs = stats.statistics(shift, kind)
    values = values[~np.isnan(values)]
    tol = 1e-12 * max(1.0, abs(obs))
    if side == "greater":
        extreme = np.count_nonzero(values >= obs - tol)
    elif side == "less":
        extreme = np.count_nonzero(values <= obs + tol)
    else:
        extreme = np.count_nonzero(np.abs(values) >= abs(obs) - tol)
    n = values.size
    if n == 0 or math.isnan(obs):
        return math.nan
    return float(extreme / n) if stats.exact else float((1 + extreme) / (1 + n))


def covariate_residuals(
    columns: np.ndarray, den: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each column q minus its den-weighted regression on the covariates per unit of
    den: q − D·A⁻¹·Vᶜ'q, with v_g = z_g/den_g, Vᶜ = v − z̄ (z̄ = Σz/Σden; 0 where den = 0),
    D = z − den·z̄ and A = Vᶜ'D = Σ den (v − z̄)(v − z̄)'.  The den column is left as it is
    (its coefficient is 0).  Returns the residual columns and the coefficients.

    The coefficients are those of the den-weighted least-squares regression of
    q/den on v with an intercept, fitted over all units whatever their assignment.

    Parameters
    ----------
    columns : numpy.ndarray
        Columns q to adjust, units × m.
    den : numpy.ndarray
        The denominator (size) of each unit.
    z : numpy.ndarray
        Covariate sums, units × k.

    Returns
    -------
    residuals : numpy.ndarray
        q − D·coef, units × m.
    coef : numpy.ndarray
        k × m, one column of coefficients per column of ``columns``.

    References
    ----------
    .. [1] P. R. Rosenbaum, "Covariance adjustment in randomized experiments and
       observational studies", Statistical Science 17, 286–327, 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.randomization import covariate_residuals
    >>> x = np.array([12.0, 30.0, 8.0, 21.0, 15.0, 18.0])
    >>> y = np.array([10.0, 25.0, 5.0, 20.0, 12.0, 15.0])
    >>> z = np.array([[9.0], [22.0], [6.0], [18.0], [10.0], [12.0]])
    >>> residuals, coef = covariate_residuals(np.column_stack([x, y]), y, z)
    >>> round(float(coef[0, 0]), 4), bool(np.allclose(residuals[:, 1], y))
    (0.8604, True)
    >>> round(float(np.polyfit(z[:, 0] / y, x / y, 1, w=np.sqrt(y))[0]), 4)
    0.8604
    """
    ok = den > 0
    z_bar = z.sum(axis=0) / den.sum()
    centred = np.where(ok[:, None], z / np.where(ok, den, 1.0)[:, None] - z_bar, 0.0)
    d = z - den[:, None] * z_bar
    coef = np.linalg.lstsq(centred.T @ d, centred.T @ columns, rcond=None)[0]
    return columns - d @ coef, coef


def affine_statistics(
    assign: np.ndarray,
    treated: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    weighting: str,
    exact: bool,
    z: np.ndarray | None = None,
) -> tuple[AffineStatistics, tuple[float, ...]]:
    """Columns a·v for v in (numerator, size, treated parts) for every re-assignment,
    the numerators adjusted by the covariates ``z`` (accounts × k) when given; returns
    the statistics and the covariates' coefficients at no effect.

    For a row a of re-assignments (and, last, the observed one) the statistic is
    Σ_T num/Σ_T den − Σ_C num/Σ_C den; moving the treated numerators by δ·den or
    c·num subtracts δ or c times the same difference formed with the treated parts,
    which gives :class:`AffineStatistics`' slopes.

    Parameters
    ----------
    assign : numpy.ndarray
        Re-assignments, bool (rows, accounts).
    treated : numpy.ndarray
        The observed assignment.
    x, y : numpy.ndarray
        The accounts' numerator and denominator sums.
    weighting : str
        "user" (ratio of sums) or "account" (mean of x/y over accounts with y > 0).
    exact : bool
        Whether ``assign`` lists all re-assignments.
    z : numpy.ndarray or None
        Covariate sums, accounts × k.

    Returns
    -------
    statistics : AffineStatistics
        The statistics as affine functions of the hypothesised effect.
    theta : tuple of float
        The covariates' coefficients at no effect (empty without ``z``).

    References
    ----------
    .. [1] P. R. Rosenbaum, "Covariance adjustment in randomized experiments and
       observational studies", Statistical Science 17, 286–327, 2002.

    Examples
    --------
    The statistic under δ is the one at no effect minus δ:

    >>> import numpy as np
    >>> from abkit.stats.randomization import affine_statistics, assignment_matrix
    >>> x = np.array([12.0, 30.0, 8.0, 21.0, 15.0, 18.0, 40.0, 9.0, 30.0, 11.0, 26.0])
    >>> y = np.array([10.0, 25.0, 5.0, 20.0, 12.0, 12.0, 28.0, 6.0, 22.0, 8.0, 17.0])
    >>> treated = np.r_[np.zeros(5, bool), np.ones(6, bool)]
    >>> assign, exact = assignment_matrix(
    ...     treated, np.zeros(11, int), 1000, 0, np.random.default_rng(0)
    ... )
    >>> stats, _ = affine_statistics(assign, treated, x, y, "account", exact)
    >>> round(stats.statistics(0.1, "additive")[1], 4), round(stats.base_obs - 0.1, 4)
    (0.0894, 0.0894)
    """
    t = treated.astype(float)
    if weighting == USER_WEIGHTED:
        num, den = x, y
    else:
        ok = y > 0
        num, den = np.where(ok, x / np.where(ok, y, 1.0), 0.0), ok.astype(float)
        if z is not None:  # per-user covariate rates, as the numerators are
            z = np.where(ok[:, None], z / np.where(ok, y, 1.0)[:, None], 0.0)
    # additive: numerator − δ·(t·size); multiplicative: numerator − c·(t·numerator)
    columns = np.column_stack([num, den, t * den, t * num])
    theta: tuple[float, ...] = ()
    if z is not None:
        columns, coef = covariate_residuals(columns, den, z)
        theta = tuple(float(b) for b in coef[:, 0])
    rows = np.vstack([assign, treated[None, :]]).astype(float)
    in_t = rows @ columns
    in_c = columns.sum(axis=0) - in_t
    with np.errstate(divide="ignore", invalid="ignore"):
        parts = [in_t[:, k] / in_t[:, 1] - in_c[:, k] / in_c[:, 1] for k in (0, 2, 3)]
    statistics = AffineStatistics(
        base=parts[0][:-1],
        additive=parts[1][:-1],
        multiplicative=parts[2][:-1],
        base_obs=float(parts[0][-1]),
        additive_obs=float(parts[1][-1]),
        multiplicative_obs=float(parts[2][-1]),
        exact=exact,
    )
    return statistics, theta


def _setup(
    control: AccountArm,
    treatment: AccountArm,
    weighting: str,
    strata: np.ndarray | None,
    max_exact: int,
    draws: int,
    seed: int,
) -> tuple[AffineStatistics, int, tuple[float, ...]]:
    x = np.concatenate([control.x, treatment.x]).astype(float)
    y = np.concatenate([control.y, treatment.y]).astype(float)
    treated = np.concatenate([np.zeros(control.accounts, bool), np.ones(treatment.accounts, bool)])
    strata = np.zeros(x.size, dtype=int) if strata is None else np.asarray(strata)
    assign, exact = assignment_matrix(
        treated, strata, max_exact, draws, np.random.default_rng(seed)
    )
    z = None
    if control.z is not None and treatment.z is not None:
        z = np.vstack([control.z, treatment.z]).astype(float)
    aff, theta = affine_statistics(assign, treated, x, y, weighting, exact, z)
    return aff, int(assign.shape[0]), theta


def randomization_test(
    control: AccountArm,
    treatment: AccountArm,
    weighting: str,
    alpha: float = 0.05,
    strata: np.ndarray | None = None,
    max_exact: int = 200_000,
    draws: int = 10_000,
    seed: int = 0,
    invert: bool = True,
) -> RandomizationResult:
    """Two-sided randomisation p-value and test-inversion interval for the effect.

    All re-assignments are enumerated up to ``max_exact`` of them, else ``draws``
    random ones (see the module docstring).

    The p-value is the share of re-assignments whose difference of arm estimates
    is at least as large in size as the observed one (:func:`shift_p_value`); the
    interval is every δ not rejected at α when treated numerators are X_g − δ·Y_g,
    and the lift's every λ not rejected when they are X_g/(1 + λ)
    (:func:`invert_test`).

    Parameters
    ----------
    control, treatment : AccountArm
        Per-account sums; with covariate sums ``z`` in both arms the statistic is
        the covariate-adjusted one.
    weighting : str
        "user" (ratio of sums) or "account" (mean of account values).
    alpha : float, default 0.05
        1 − the confidence level of the intervals.
    strata : numpy.ndarray or None
        The stratum of each account (control first) for a blocked randomisation.
    max_exact : int, default 200_000
        The most re-assignments enumerated.
    draws : int, default 10_000
        Random re-assignments otherwise.
    seed : int, default 0
        Seed of the random draws.
    invert : bool, default True
        False skips the intervals (NaN), for a p-value alone.

    Returns
    -------
    RandomizationResult
        The effect, p-value, intervals and the re-assignments used.

    References
    ----------
    .. [1] R. A. Fisher, *The Design of Experiments*, Oliver & Boyd, 1935.
    .. [2] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, ch. 5.
    .. [3] B. Phipson and G. K. Smyth, "Permutation P-values should never be zero:
       calculating exact P-values when permutations are randomly drawn",
       Statistical Applications in Genetics and Molecular Biology 9, 2010.
    .. [4] P. R. Rosenbaum, "Covariance adjustment in randomized experiments and
       observational studies", Statistical Science 17, 286–327, 2002.

    Examples
    --------
    11 accounts give C(11, 5) = 462 re-assignments, all listed:

    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.randomization import randomization_test
    >>> r = randomization_test(control, treatment, "user")
    >>> round(r.effect, 4), round(r.p_value, 4), r.assignments, r.exact
    (0.2464, 0.0108, 462, True)
    >>> [round(v, 4) for v in r.ci], [round(v, 4) for v in r.relative_ci]
    ([0.0922, 0.3874], [0.0673, 0.3505])
    """
    aff, count, theta = _setup(control, treatment, weighting, strata, max_exact, draws, seed)
    c_value, t_value = control.estimate(weighting), treatment.estimate(weighting)
    # with covariates the effect is the adjusted one: where the adjusted statistic is 0
    adjusted = bool(theta)
    effect = aff.estimate("additive") if adjusted else t_value - c_value
    p_value = shift_p_value(aff, 0.0, "additive")
    ci = relative_ci = (math.nan, math.nan)
    spread = float(np.nanstd(aff.base))
    if invert:
        ci = invert_test(lambda d: shift_p_value(aff, d, "additive"), effect, alpha, spread)
        if c_value > 0 and t_value > 0:
            log_ci = invert_test(
                lambda th: shift_p_value(aff, th, "multiplicative"),
                aff.estimate("multiplicative") if adjusted else math.log(t_value / c_value),
                alpha,
                spread / c_value,
                limit=LOG_LIMIT,
            )
            relative_ci = (math.expm1(log_ci[0]), math.expm1(log_ci[1]))
    return RandomizationResult(
        effect, p_value, ci, count, aff.exact, relative_ci, null_sd=spread, theta=theta
    )


@dataclass(frozen=True)
class RandomizationNonInferiority:
    """``p_value``: H0 harm at least the margin (small: the guardrail passes);
    ``p_harm``: H0 harm at most the margin (small: harm beyond it is established);
    ``bound``: one-sided (1 − α) confidence bound on the harmful side (a lift for a
    relative margin).

    Parameters
    ----------
    p_value : float
        The one-sided p-value of H0 "harm at least the margin".
    p_harm : float
        The one-sided p-value of H0 "harm at most the margin".
    bound : float
        The one-sided (1 − α) bound on the harmful side.
    assignments : int
        The re-assignments used.
    exact : bool
        Whether they are all of them.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.randomization import randomization_noninferiority
    >>> r = randomization_noninferiority(
    ...     control, treatment, "account", margin=0.1, relative=False, higher_is_better=True
    ... )
    >>> round(r.p_value, 4), round(r.p_harm, 4), round(r.bound, 4)
    (0.013, 0.9935, 0.0318)
    """

    p_value: float
    p_harm: float
    bound: float
    assignments: int
    exact: bool


def randomization_noninferiority(
    control: AccountArm,
    treatment: AccountArm,
    weighting: str,
    margin: float,
    relative: bool,
    higher_is_better: bool,
    alpha: float = 0.05,
    strata: np.ndarray | None = None,
    max_exact: int = 200_000,
    draws: int = 10_000,
    seed: int = 0,
) -> RandomizationNonInferiority:
    """One-sided randomisation test of a guardrail against its margin.

    Treated accounts are shifted to the harmful margin (additive ∓δ per unit of size,
    or multiplicative 1 ∓ δ for a relative margin), under which the sharp hypothesis
    "the treatment's effect is exactly the margin" makes every re-assignment equally
    likely; the p-value is the share of re-assignments whose statistic lies at least as
    far on the safe side as the observed one (Rosenbaum, *Observational Studies*, 2nd
    ed., 2002, §2.4.4; Imbens & Rubin 2015, §5.7).  ``bound`` inverts the same test.

    Parameters
    ----------
    control, treatment : AccountArm
        Per-account sums (with covariate sums ``z`` for an adjusted test).
    weighting : str
        "user" or "account".
    margin : float
        δ > 0: metric units, or a share (0.05 = 5 %) when ``relative``.
    relative : bool
        Whether the margin is on the lift.
    higher_is_better : bool
        The direction in which the metric improves.
    alpha : float, default 0.05
        The one-sided level of the bound.
    strata : numpy.ndarray or None
        The stratum of each account for a blocked randomisation.
    max_exact : int, default 200_000
        The most re-assignments enumerated.
    draws : int, default 10_000
        Random re-assignments otherwise.
    seed : int, default 0
        Seed of the random draws.

    Returns
    -------
    RandomizationNonInferiority
        The two one-sided p-values and the bound.

    References
    ----------
    .. [1] P. R. Rosenbaum, *Observational Studies*, 2nd ed., Springer, 2002, §2.4.4.
    .. [2] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, §5.7.

    Examples
    --------
    Is the lift of a cost metric (lower is better) below +5 %?  The data do not
    show it (large ``p_value``):

    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.randomization import randomization_noninferiority
    >>> r = randomization_noninferiority(
    ...     control, treatment, "account", margin=0.05, relative=True, higher_is_better=False
    ... )
    >>> round(r.p_value, 4), round(r.bound, 4)
    (0.8961, 0.2941)
    """
    aff, count, theta = _setup(control, treatment, weighting, strata, max_exact, draws, seed)
    kind = "multiplicative" if relative else "additive"
    c_value, t_value = control.estimate(weighting), treatment.estimate(weighting)
    if relative:
        estimate = math.log(t_value / c_value) if c_value > 0 and t_value > 0 else math.nan
        spread = float(np.nanstd(aff.base)) / c_value if c_value > 0 else math.nan
    else:
        estimate, spread = t_value - c_value, float(np.nanstd(aff.base))
    if theta:  # the adjusted estimate, where the adjusted statistic is 0
        estimate = aff.estimate(kind)
    return shifted_noninferiority(
        aff, estimate, spread, margin, relative, higher_is_better, alpha, count
    )


def shifted_noninferiority(
    stats: ShiftStatistics,
    estimate: float,
    spread: float,
    margin: float,
    relative: bool,
    higher_is_better: bool,
    alpha: float,
    assignments: int,
    tolerance: float = 0.0,
) -> RandomizationNonInferiority:
    """The one-sided tests of :func:`randomization_noninferiority` for any statistic
    that a hypothesised shift moves: ``estimate`` is the observed shift (an effect, or
    log(T/C) for a relative margin) and ``spread`` the scale of the statistic's null
    distribution, where the interval search starts.

    The treated values are moved to the harmful margin (shift −δ, or log(1 − δ) for a
    relative margin, when higher is better; +δ or log(1 + δ) otherwise): ``p_value``
    is the one-sided p-value on the safe side, ``p_harm`` on the harmful side, and
    the bound is the end, on the harmful side, of the effects not rejected by the
    safe-side test.

    Parameters
    ----------
    stats : ShiftStatistics
        The statistic under any hypothesised shift.
    estimate : float
        The observed shift.
    spread : float
        The null distribution's scale (the first step of the search).
    margin : float
        δ > 0.
    relative : bool
        Whether the margin is on the lift (multiplicative shifts).
    higher_is_better : bool
        The direction in which the metric improves.
    alpha : float
        The one-sided level of the bound.
    assignments : int
        Recorded in the result.
    tolerance : float, default 0.0
        Bracket width at which the bound's search stops (0: 50 halvings).

    Returns
    -------
    RandomizationNonInferiority
        The bound is a lift (e^θ − 1) for a relative margin.

    References
    ----------
    .. [1] P. R. Rosenbaum, *Observational Studies*, 2nd ed., Springer, 2002, §2.4.4.
    .. [2] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, §5.7.

    Examples
    --------
    The same result as :func:`randomization_noninferiority`, from the statistics:

    >>> import numpy as np
    >>> from abkit.stats.randomization import affine_statistics, assignment_matrix
    >>> x = np.array([12.0, 30.0, 8.0, 21.0, 15.0, 18.0, 40.0, 9.0, 30.0, 11.0, 26.0])
    >>> y = np.array([10.0, 25.0, 5.0, 20.0, 12.0, 12.0, 28.0, 6.0, 22.0, 8.0, 17.0])
    >>> treated = np.r_[np.zeros(5, bool), np.ones(6, bool)]
    >>> assign, exact = assignment_matrix(
    ...     treated, np.zeros(11, int), 1000, 0, np.random.default_rng(0)
    ... )
    >>> stats, _ = affine_statistics(assign, treated, x, y, "account", exact)
    >>> from abkit.stats.randomization import shifted_noninferiority
    >>> spread = float(np.nanstd(stats.base))
    >>> r = shifted_noninferiority(
    ...     stats, stats.base_obs, spread, margin=0.1, relative=False,
    ...     higher_is_better=True, alpha=0.05, assignments=462,
    ... )
    >>> round(r.p_value, 4), round(r.bound, 4)
    (0.013, 0.0318)
    """
    sign = 1.0 if higher_is_better else -1.0
    kind = "multiplicative" if relative else "additive"
    shift = math.log1p(-sign * margin) if relative else -sign * margin
    safe, harm = ("greater", "less") if higher_is_better else ("less", "greater")
    sides = invert_test(
        lambda s: shift_p_value(stats, s, kind, safe),
        estimate,
        alpha,
        spread,
        limit=LOG_LIMIT if relative else None,
        tolerance=tolerance,
    )
    bound = sides[0] if higher_is_better else sides[1]
    return RandomizationNonInferiority(
        p_value=shift_p_value(stats, shift, kind, safe),
        p_harm=shift_p_value(stats, shift, kind, harm),
        bound=math.expm1(bound) if relative else bound,
        assignments=assignments,
        exact=stats.exact,
    )


def invert_test(
    p_at: Callable[[float], float],
    effect: float,
    alpha: float,
    spread: float,
    limit: float | None = None,
    tolerance: float = 0.0,
) -> tuple[float, float]:
    """Outermost value on each side of the estimate that the test does not reject.

    A side still not rejected ``limit`` away from the estimate is unbounded (±inf):
    under a multiplicative model the permuted statistics scale with the hypothesised
    effect, so the p-value can level off above alpha (as with Fieller's interval for
    a ratio); with very few accounts even the smallest attainable p-value can exceed
    alpha, and then no effect is ever rejected.  Each side is found by bisection,
    stopped when the bracket is narrower than ``tolerance`` (0: after 50 halvings).

    From the estimate, steps of ``spread``, doubling, go outward until a value is
    rejected (p ≤ α); the last value not rejected and the first rejected bracket
    the end, which bisection narrows.  The interval {δ : p(δ) > α} is the
    (1 − α) confidence set when it is an interval.

    Parameters
    ----------
    p_at : callable
        The p-value of the test of a hypothesised effect.
    effect : float
        The estimate, inside the interval.
    alpha : float
        The level; values with p > α are kept.
    spread : float
        The first step (the null distribution's scale).
    limit : float or None
        The distance beyond which a side is unbounded; None: 1e6·spread.
    tolerance : float, default 0.0
        The bracket width at which bisection stops.

    Returns
    -------
    tuple of float
        (low, high), ±inf for an unbounded side; (NaN, NaN) when the estimate is
        not finite or ``spread`` is not positive.

    References
    ----------
    .. [1] G. W. Imbens and D. B. Rubin, *Causal Inference for Statistics, Social, and
       Biomedical Sciences*, Cambridge University Press, 2015, §5.7.

    Examples
    --------
    A test that rejects every effect more than 1 from 2:

    >>> from abkit.stats.randomization import invert_test
    >>> low, high = invert_test(lambda d: 1.0 if abs(d - 2.0) < 1.0 else 0.0, 2.0, 0.05, 0.5)
    >>> round(low, 6), round(high, 6)
    (1.0, 3.0)
    >>> invert_test(lambda d: 0.5, 0.0, 0.05, 1.0, limit=10.0)
    (-inf, inf)
    """
    if not (np.isfinite(effect) and spread > 0):
        return (math.nan, math.nan)
    limit = limit if limit is not None else 1e6 * spread
    bounds = []
    for sign in (-1.0, 1.0):
        inside, step = effect, spread
        outside = effect + sign * step
        grow = 0
        unbounded = False
        while p_at(outside) > alpha:
            inside, outside, grow = outside, outside + sign * step * 2**grow, grow + 1
            if abs(outside - effect) > limit:
                unbounded = True
                break
        if unbounded:
            bounds.append(sign * math.inf)
            continue
        for _ in range(50):
            if abs(outside - inside) <= tolerance:
                break
            mid = 0.5 * (inside + outside)
            inside, outside = (mid, outside) if p_at(mid) > alpha else (inside, mid)
        bounds.append(inside)
    return bounds[0], bounds[1]


@dataclass(frozen=True)
class SegmentHeterogeneity:
    """``p_value``: the randomisation test of a common additive effect across segments;
    ``statistic``: the observed spread of the segment effects at ``common_effect``.

    Parameters
    ----------
    statistic : float
        H = Σ_s w_s (Δ_s − Δ̄_w)² observed at the common effect.
    p_value : float
        The Berger–Boos p-value (largest over the interval for δ, plus γ).
    common_effect : float
        The effect of all segments pooled.
    assignments : int
        The re-assignments used.
    exact : bool
        Whether they are all of them.

    Examples
    --------
    See :func:`segment_heterogeneity`.
    """

    statistic: float
    p_value: float
    common_effect: float
    assignments: int
    exact: bool


def segment_heterogeneity(
    segments: list[tuple[AccountArm, AccountArm]],
    weighting: str,
    strata: np.ndarray | None = None,
    max_exact: int = 200_000,
    draws: int = 10_000,
    seed: int = 0,
    gamma: float = 0.001,
    grid: int = 41,
) -> SegmentHeterogeneity:
    """Randomisation test that the effect is the same in every segment, when segments
    share accounts (roles within accounts), so that their estimates are correlated and
    Cochran's Q does not apply.

    Each segment's arms hold the same accounts in the same order (zeros where an account
    has none of the segment's users).  Under the sharp null "every user's outcome moves
    by δ per unit of the denominator, whatever the segment", every re-assignment of the
    accounts is equally likely, and each segment's effect under re-assignment a is
    affine in δ (:func:`affine_statistics`); the spread H = Σ_s w_s (Δ_s − Δ̄_w)² with
    w_s = 1/Var_a(Δ_s) is compared with its randomisation distribution.  δ is unknown,
    so the p-value is the largest over a (1 − γ) randomisation interval for the common
    effect, plus γ (Berger & Boos, JASA 1994; for effect heterogeneity, Ding, Feller &
    Miratrix, "Randomization inference for treatment effect variation", JRSS-B 2016).

    Parameters
    ----------
    segments : list of (AccountArm, AccountArm)
        (control, treatment) per segment, every segment over the same accounts in
        the same order.
    weighting : str
        "user" or "account".
    strata : numpy.ndarray or None
        The stratum of each account for a blocked randomisation.
    max_exact : int, default 200_000
        The most re-assignments enumerated.
    draws : int, default 10_000
        Random re-assignments otherwise.
    seed : int, default 0
        Seed of the random draws.
    gamma : float, default 0.001
        γ, 1 − the level of the interval for the common effect searched.
    grid : int, default 41
        Points of that interval at which the p-value is computed.

    Returns
    -------
    SegmentHeterogeneity
        NaN statistic and p-value when fewer than two segments vary or the
        interval for the common effect is unbounded (too few accounts for level
        1 − γ).

    References
    ----------
    .. [1] R. L. Berger and D. D. Boos, "P values maximised over a confidence set for
       the nuisance parameter", Journal of the American Statistical Association 89,
       1012–1016, 1994.
    .. [2] P. Ding, A. Feller and L. Miratrix, "Randomization inference for treatment
       effect variation", Journal of the Royal Statistical Society, Series B 78,
       655–671, 2016.

    Examples
    --------
    Two roles in the same 16 accounts, where only the first role gains:

    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> from abkit.stats.randomization import segment_heterogeneity
    >>> rng = np.random.default_rng(4)
    >>> seats = rng.integers(5, 30, size=(2, 16)).astype(float)  # users per role
    >>> x = rng.poisson(seats * rng.gamma(4.0, 0.25, 16)).astype(float)
    >>> x[0, 8:] += np.round(seats[0, 8:] * 0.5)  # accounts 8-15 are treated
    >>> segments = [
    ...     (AccountArm(x[s, :8], seats[s, :8]), AccountArm(x[s, 8:], seats[s, 8:]))
    ...     for s in (0, 1)
    ... ]
    >>> h = segment_heterogeneity(segments, "user")
    >>> h.assignments, round(float(h.p_value), 4), round(h.common_effect, 4)
    (12870, 0.0131, 0.2047)
    """
    control0, treatment0 = segments[0]
    treated = np.concatenate(
        [np.zeros(control0.accounts, bool), np.ones(treatment0.accounts, bool)]
    )
    labels = np.zeros(treated.size, dtype=int) if strata is None else np.asarray(strata)
    assign, exact = assignment_matrix(
        treated, labels, max_exact, draws, np.random.default_rng(seed)
    )
    stats = []
    for control, treatment in segments:
        x = np.concatenate([control.x, treatment.x]).astype(float)
        y = np.concatenate([control.y, treatment.y]).astype(float)
        stats.append(affine_statistics(assign, treated, x, y, weighting, exact)[0])
    pooled = (
        AccountArm(np.sum([c.x for c, _ in segments], 0), np.sum([c.y for c, _ in segments], 0)),
        AccountArm(np.sum([t.x for _, t in segments], 0), np.sum([t.y for _, t in segments], 0)),
    )
    overall = randomization_test(
        *pooled, weighting, gamma, strata, max_exact, draws, seed, invert=True
    )
    nan = math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.array([1.0 / np.nanvar(s.base) for s in stats])
    usable = np.isfinite(weights) & (weights > 0)
    low, high = overall.ci
    if usable.sum() < 2 or not (math.isfinite(low) and math.isfinite(high)):
        return SegmentHeterogeneity(nan, nan, overall.effect, int(assign.shape[0]), exact)
    w = weights[usable]
    kept = [s for s, ok in zip(stats, usable, strict=True) if ok]

    def spread(shift: float) -> tuple[np.ndarray, float]:
        effects = np.column_stack([s.statistics(shift, "additive")[0] for s in kept])
        observed = np.array([s.statistics(shift, "additive")[1] for s in kept])
        centre = effects @ w / w.sum()
        h = ((effects - centre[:, None]) ** 2) @ w
        h_obs = float(((observed - observed @ w / w.sum()) ** 2) @ w)
        return h, h_obs

    p_max = 0.0
    for shift in np.linspace(low, high, grid):
        h, h_obs = spread(float(shift))
        defined = h[np.isfinite(h)]
        extreme = np.count_nonzero(defined >= h_obs - 1e-12 * max(1.0, h_obs))
        n = defined.size
        p = extreme / n if exact else (1 + extreme) / (1 + n)
        p_max = max(p_max, p)
    h_hat = spread(overall.effect)[1]
    return SegmentHeterogeneity(
        h_hat, min(1.0, p_max + gamma), overall.effect, int(assign.shape[0]), exact
    )
