"""Inference when whole accounts (clusters) are randomised: estimators and CR2.

Each account g contributes its numerator sum X_g and denominator sum Y_g (users for
a per-user mean, outputs for a share rate, seats for adoption).  Two estimands:

* **user-weighted**: R_a = Σ_g X_g / Σ_g Y_g per arm — the ratio of sums, every user
  (or output) counts once;
* **account-weighted**: M_a = mean_g (X_g / Y_g) — every account counts once.

Both are weighted means of account values r_g = X_g / Y_g (weights Y_g or 1), so one
weighted least-squares view covers them: regress r_g on an intercept and a
treatment dummy with weights w_g.  The CR2 variance of Bell & McCaffrey (2002) for
the treatment coefficient, with accounts as clusters, is

    V = Σ_arms Σ_{g ∈ arm} w_g² (r_g − m_arm)² / (1 − h_g) / W_arm²,  h_g = w_g / W_arm,

(the leverage of an account in this two-group design is its weight share), and the
Bell–McCaffrey degrees of freedom under the working model Var(r_g) ∝ 1/w_g are
(Σλ)²/Σλ² over the eigenvalues λ of G'G, G_g = (I − H)_{·g} (1 − h_g)^{−1/2} ·
x̃_g'(X̃'X̃)^{−1}c (Imbens & Kolesár, "Robust standard errors in small samples",
REStat 2016, eq. 11).  With equal weights this is Welch's variance of account means
(tested), and the df equal Welch's formula with a common variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abkit.options import Weighting
from abkit.stats.arm import Summable
from abkit.stats.distributions import norm_ppf, norm_sf, t_ppf, t_sf

USER_WEIGHTED: Weighting = "user"


@dataclass(frozen=True)
class AccountArm(Summable):
    """Per-account sums of one arm: numerator X, denominator Y (both ≥ 0), the
    stratum of each account when the randomisation was blocked, and the sums of
    pre-experiment covariates Z (accounts × k, named by ``covariates``) for CUPED.

    Parameters
    ----------
    x, y : numpy.ndarray
        X_g and Y_g, one per account.
    strata : numpy.ndarray or None
        The stratum of each account, when the randomisation was blocked.
    z : numpy.ndarray or None
        Covariate sums, accounts × k.
    covariates : tuple of str
        The names of z's columns.

    Notes
    -----
    The arm holds no account ids, so it cannot tell whether two parts share an
    account: ``+`` concatenates, which is the arm of the union only when the parts
    hold disjoint sets of accounts (an export split by account).  Parts that hold
    the same accounts (segments of users within accounts, aligned account by
    account) combine by adding x, y and z element-wise instead, as
    :func:`abkit.stats.randomization.segment_heterogeneity` pools segments.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> a = AccountArm(np.array([3.0, 5.0]), np.array([2.0, 4.0]))
    >>> b = AccountArm(np.array([1.0]), np.array([1.0]))
    >>> (a + b).accounts, (a + b).estimate("user")
    (3, 1.2857142857142858)
    """

    x: np.ndarray
    y: np.ndarray
    strata: np.ndarray | None = None
    z: np.ndarray | None = None
    covariates: tuple[str, ...] = ()

    @classmethod
    def zero(cls) -> AccountArm:
        """No accounts: the identity of ``+`` and a start for ``sum``.

        Examples
        --------
        >>> from abkit.stats.cluster import AccountArm
        >>> sum([], AccountArm.zero()).accounts
        0
        """
        return cls(np.empty(0), np.empty(0))

    def __add__(self, other: object) -> AccountArm:
        """The arm of the accounts of both parts, which must be disjoint.

        Parameters
        ----------
        other : AccountArm
            The sums of other accounts of the same arm and metric: with strata when
            this part has them, and covariate sums of the same covariates.

        Returns
        -------
        AccountArm
            x, y, strata and z concatenated, this part's accounts first.  Every
            estimator and test here depends on the set of accounts, not their order.

        Raises
        ------
        ValueError
            When one part has strata or covariate sums and the other does not, or
            their covariates differ.

        Notes
        -----
        An empty part (no accounts) is the identity.  An account that appears in
        both parts counts as two accounts (the arm has no ids to match them by), so
        split an export by account before adding its parts.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.cluster import AccountArm
        >>> a = AccountArm(np.array([3.0]), np.array([2.0]), strata=np.array(["eu"]))
        >>> (a + AccountArm(np.array([1.0]), np.array([1.0]), strata=np.array(["us"]))).strata
        array(['eu', 'us'], dtype='<U2')
        >>> a + AccountArm(np.array([1.0]), np.array([1.0]))
        Traceback (most recent call last):
        ...
        ValueError: cannot add account sums with strata and without: ...
        """
        if not isinstance(other, AccountArm):
            return NotImplemented
        if other.accounts == 0:
            return self
        if self.accounts == 0:
            return other
        if (self.strata is None) != (other.strata is None):
            raise ValueError(
                "cannot add account sums with strata and without: both parts must come "
                "from the same (blocked or unblocked) randomisation"
            )
        if (self.z is None) != (other.z is None) or self.covariates != other.covariates:
            raise ValueError(
                f"cannot add account sums of covariates {list(self.covariates)} and "
                f"{list(other.covariates)}: both parts need the same covariate sums"
            )
        strata = None
        if self.strata is not None and other.strata is not None:
            strata = np.concatenate([self.strata, other.strata])
        z = None
        if self.z is not None and other.z is not None:
            z = np.concatenate([self.z, other.z])
        return AccountArm(
            np.concatenate([self.x, other.x]),
            np.concatenate([self.y, other.y]),
            strata,
            z,
            self.covariates,
        )

    @property
    def accounts(self) -> int:
        """The number of accounts."""
        return int(self.x.size)

    def estimate(self, weighting: str) -> float:
        """The arm's value: R = ΣX/ΣY ("user") or M = mean_g X_g/Y_g ("account").

        Parameters
        ----------
        weighting : str
            "user" (every user or output counts once) or "account" (every account
            with a positive denominator counts once).

        Returns
        -------
        float
            NaN when no account has a positive denominator.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.cluster import AccountArm
        >>> arm = AccountArm(np.array([3.0, 1.0]), np.array([2.0, 2.0]))
        >>> arm.estimate("user"), arm.estimate("account")
        (1.0, 1.0)
        >>> AccountArm(np.array([3.0, 1.0]), np.array([1.0, 3.0])).estimate("account")
        1.6666666666666667
        """
        if weighting == USER_WEIGHTED:
            total = self.y.sum()
            return float(self.x.sum() / total) if total > 0 else math.nan
        ok = self.y > 0
        return float(np.mean(self.x[ok] / self.y[ok])) if ok.any() else math.nan

    def weights(self, weighting: str) -> tuple[np.ndarray, np.ndarray]:
        """(account values r_g, weights w_g) over accounts with a positive denominator.

        Parameters
        ----------
        weighting : str
            "user" (w_g = Y_g) or "account" (w_g = 1).

        Returns
        -------
        r : numpy.ndarray
            r_g = X_g / Y_g.
        w : numpy.ndarray
            w_g.
        """
        ok = self.y > 0
        r = self.x[ok] / self.y[ok]
        w = self.y[ok].astype(float) if weighting == USER_WEIGHTED else np.ones(ok.sum())
        return r, w


@dataclass(frozen=True)
class ClusterTest:
    """A test of the difference between two arms of randomised accounts.

    Parameters
    ----------
    method : str
        The variance and reference used.
    effect : float
        Treatment − control estimate.
    se : float
        Its standard error (0 when nothing varies; NaN when undefined).
    df : float
        Degrees of freedom of the t reference (inf for the normal; NaN when
        undefined).
    p_value : float
        Two-sided p-value of no difference.
    ci : tuple of float
        The two-sided (1 − α) interval.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.cluster import cr2_test
    >>> cr2_test(control, treatment, "user").method
    'CR2 + Bell-McCaffrey df'
    """

    method: str
    effect: float
    se: float
    df: float
    p_value: float
    ci: tuple[float, float]


def _cr2_parts(arm: AccountArm, weighting: str) -> tuple[float, float, np.ndarray]:
    r, w = arm.weights(weighting)
    total = w.sum()
    m = float((w * r).sum() / total)
    h = w / total
    with np.errstate(divide="ignore", invalid="ignore"):
        var = float(np.sum(w**2 * (r - m) ** 2 / (1.0 - h)) / total**2)
    return m, var, w


def bell_mccaffrey_df(
    w_control: np.ndarray, w_treatment: np.ndarray, covariates: np.ndarray | None = None
) -> float:
    """BM degrees of freedom for the treatment coefficient of the two-group WLS design
    (with centred covariate columns, when given).

    ν = (Σλ)²/Σλ² over the eigenvalues λ of G'G, G_g = (I − H)_{·g} (1 − h_g)^{−1/2}
    · x̃_g'(X̃'X̃)^{−1}c, X̃ = W^{1/2}X the weighted design (intercept, treatment
    dummy, covariates), H its hat matrix and c selecting the treatment coefficient.

    Parameters
    ----------
    w_control, w_treatment : numpy.ndarray
        The accounts' weights w_g in each arm (Y_g, or 1).
    covariates : numpy.ndarray or None
        Centred covariate columns, accounts × k, control accounts first.

    Returns
    -------
    float
        ν.

    References
    ----------
    .. [1] R. M. Bell and D. F. McCaffrey, "Bias reduction in standard errors for
       linear regression with multi-stage samples", Survey Methodology 28, 169–181,
       2002.
    .. [2] G. W. Imbens and M. Kolesár, "Robust standard errors in small samples:
       some practical advice", Review of Economics and Statistics 98, 701–712,
       2016, eq. 11.

    Examples
    --------
    With equal weights and no covariates, Welch's df for a common variance:

    >>> import numpy as np
    >>> from abkit.stats.cluster import bell_mccaffrey_df
    >>> round(bell_mccaffrey_df(np.ones(5), np.ones(6)), 3)
    8.643
    >>> round((1 / 5 + 1 / 6) ** 2 / ((1 / 5) ** 2 / 4 + (1 / 6) ** 2 / 5), 3)
    8.643
    """
    w = np.concatenate([w_control, w_treatment])
    xt = np.sqrt(w)[:, None] * _design(w_control.size, w_treatment.size, covariates)
    bread = np.linalg.inv(xt.T @ xt)
    hat = xt @ bread @ xt.T
    lever = np.clip(np.diag(hat), None, 1 - 1e-12)
    c = np.zeros(xt.shape[1])
    c[1] = 1.0
    g = (np.eye(w.size) - hat) * ((1.0 - lever) ** -0.5 * (xt @ bread @ c))[None, :]
    eig = np.linalg.eigvalsh(g.T @ g)
    return float(eig.sum() ** 2 / (eig**2).sum())


def _design(n_control: int, n_treatment: int, covariates: np.ndarray | None) -> np.ndarray:
    """Intercept, treatment dummy and (optionally) covariate columns, control first."""
    d = np.concatenate([np.zeros(n_control), np.ones(n_treatment)])
    columns = [np.ones_like(d), d]
    if covariates is not None:
        columns += list(np.atleast_2d(covariates.T))
    return np.column_stack(columns)


def cr2_adjusted(
    control: AccountArm, treatment: AccountArm, weighting: str, alpha: float = 0.05
) -> ClusterTest:
    """CR2 test of the treatment coefficient of the WLS regression of account values
    r_g on an intercept, the treatment dummy and the covariates per unit of size
    v_g = Z_g/Y_g, weights w_g (Y_g or 1): regression adjustment with accounts as the
    clusters (Lin, "Agnostic notes on regression adjustments to experimental data",
    Ann. Appl. Stat. 2013, with the CR2 variance and BM df above).

    V = B Σ_g w_g² e_g² x_g x_g' / (1 − h_g) B, B = (X'WX)⁻¹, h_g = w_g x_g'B x_g: the
    HC2 sandwich of the weighted fit (statsmodels' WLS ``cov_type="HC2"``).

    Parameters
    ----------
    control, treatment : AccountArm
        Per-account sums with covariate sums ``z`` (both arms).
    weighting : str
        "user" (w_g = Y_g) or "account" (w_g = 1).
    alpha : float, default 0.05
        1 − the confidence level of the interval.

    Returns
    -------
    ClusterTest
        The adjusted effect (the treatment coefficient) with its CR2 standard error
        and a t(BM df) reference; NaN when an arm has fewer than 2 accounts or
        there are fewer than 3 + k accounts.

    References
    ----------
    .. [1] W. Lin, "Agnostic notes on regression adjustments to experimental data:
       Reexamining Freedman's critique", Annals of Applied Statistics 7, 295–318,
       2013.
    .. [2] R. M. Bell and D. F. McCaffrey, "Bias reduction in standard errors for
       linear regression with multi-stage samples", Survey Methodology 28, 169–181,
       2002.
    .. [3] G. W. Imbens and M. Kolesár, "Robust standard errors in small samples:
       some practical advice", Review of Economics and Statistics 98, 701–712,
       2016.

    Examples
    --------
    The effect and standard error are statsmodels' WLS fit with HC2:

    >>> import numpy as np
    >>> import statsmodels.api as sm
    >>> from abkit.stats.cluster import AccountArm, cr2_adjusted
    >>> xc, yc = np.array([12.0, 30.0, 8.0, 21.0, 15.0]), np.array([10.0, 25.0, 5.0, 20.0, 12.0])
    >>> xt = np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0])
    >>> yt = np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0])
    >>> zc = np.array([[9.0], [22.0], [6.0], [18.0], [10.0]])  # pre-period sums
    >>> zt = np.array([[10.0], [25.0], [6.0], [20.0], [7.0], [15.0]])
    >>> r = cr2_adjusted(
    ...     AccountArm(xc, yc, z=zc, covariates=("pre",)),
    ...     AccountArm(xt, yt, z=zt, covariates=("pre",)),
    ...     "user",
    ... )
    >>> round(r.effect, 4), round(r.se, 4), round(r.df, 3), round(r.p_value, 4)
    (0.2549, 0.0659, 6.019, 0.0082)
    >>> w = np.r_[yc, yt]
    >>> v = np.r_[zc[:, 0] / yc, zt[:, 0] / yt]
    >>> design = np.column_stack([np.ones(11), np.r_[np.zeros(5), np.ones(6)], v - w @ v / w.sum()])
    >>> fit = sm.WLS(np.r_[xc / yc, xt / yt], design, weights=w).fit(cov_type="HC2")
    >>> round(float(fit.params[1]), 4), round(float(fit.bse[1]), 4)
    (0.2549, 0.0659)
    """
    parts = []
    for arm in (control, treatment):
        assert arm.z is not None, "no covariates"
        ok = arm.y > 0
        r, w = arm.weights(weighting)
        parts.append((r, w, arm.z[ok] / arm.y[ok][:, None]))
    (rc, wc, vc), (rt, wt, vt) = parts
    method = "CR2 + Bell-McCaffrey df, regression-adjusted"
    k = vc.shape[1]
    if wc.size + wt.size < 3 + k or wc.size < 2 or wt.size < 2:
        return ClusterTest(method, math.nan, math.nan, math.nan, math.nan, (math.nan, math.nan))
    r, w = np.concatenate([rc, rt]), np.concatenate([wc, wt])
    v = np.vstack([vc, vt])
    v = v - (w[:, None] * v).sum(axis=0) / w.sum()
    x = _design(wc.size, wt.size, v)
    bread = np.linalg.pinv(x.T @ (w[:, None] * x))
    beta = bread @ (x.T @ (w * r))
    e = r - x @ beta
    lever = np.clip(w * np.einsum("ij,jk,ik->i", x, bread, x), None, 1 - 1e-12)
    meat = x.T @ ((w**2 * e**2 / (1.0 - lever))[:, None] * x)
    se = math.sqrt(max((bread @ meat @ bread)[1, 1], 0.0))
    effect = float(beta[1])
    if not se > 0:  # se 0 says: no variation (the decision's shared check reads it)
        return ClusterTest(method, effect, se, math.nan, math.nan, (math.nan, math.nan))
    df = bell_mccaffrey_df(wc, wt, v)
    half = t_ppf(1 - alpha / 2, df) * se
    p = float(2 * t_sf(abs(effect / se), df))
    return ClusterTest(method, effect, se, df, p, (effect - half, effect + half))


def cr2_test(
    control: AccountArm, treatment: AccountArm, weighting: str, alpha: float = 0.05
) -> ClusterTest:
    """Difference of arm estimates with the CR2 SE and a t(BM df) reference.

    Δ = m_T − m_C with m = Σ w_g r_g / W per arm and
    V = Σ_arms Σ_g w_g² (r_g − m)² / (1 − h_g) / W², h_g = w_g / W (module
    docstring); t = Δ/√V against t(ν) with the Bell–McCaffrey ν.

    Parameters
    ----------
    control, treatment : AccountArm
        Per-account numerator and denominator sums.
    weighting : str
        "user" (the ratio of sums, w_g = Y_g) or "account" (the mean of account
        values, w_g = 1).
    alpha : float, default 0.05
        1 − the confidence level of the interval.

    Returns
    -------
    ClusterTest
        NaN df, p-value and interval when an arm has fewer than 2 accounts with a
        positive denominator or nothing varies (se then 0).

    References
    ----------
    .. [1] R. M. Bell and D. F. McCaffrey, "Bias reduction in standard errors for
       linear regression with multi-stage samples", Survey Methodology 28, 169–181,
       2002.
    .. [2] G. W. Imbens and M. Kolesár, "Robust standard errors in small samples:
       some practical advice", Review of Economics and Statistics 98, 701–712,
       2016, eq. 11.

    Examples
    --------
    With accounts weighted equally the standard error is Welch's on the account
    values:

    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.cluster import cr2_test
    >>> r = cr2_test(control, treatment, "account")
    >>> round(r.effect, 4), round(r.se, 4), round(r.df, 3), round(r.p_value, 4)
    (0.1894, 0.0958, 8.643, 0.0807)
    >>> rc, rt = control.x / control.y, treatment.x / treatment.y
    >>> round(float(np.sqrt(rc.var(ddof=1) / 5 + rt.var(ddof=1) / 6)), 4)
    0.0958
    >>> r = cr2_test(control, treatment, "user")
    >>> round(r.effect, 4), round(r.se, 4), round(r.df, 3), round(r.p_value, 4)
    (0.2464, 0.0639, 6.525, 0.0072)
    """
    mc, vc, wc = _cr2_parts(control, weighting)
    mt, vt, wt = _cr2_parts(treatment, weighting)
    effect = mt - mc
    se = math.sqrt(vc + vt) if np.isfinite(vc + vt) else math.nan
    if wc.size < 2 or wt.size < 2 or not se > 0:
        # se 0 (no variation) is kept for the decision's shared check; else undefined
        known = se if wc.size >= 2 and wt.size >= 2 else math.nan
        return ClusterTest(
            "CR2 + Bell-McCaffrey df", effect, known, math.nan, math.nan, (math.nan, math.nan)
        )
    df = bell_mccaffrey_df(wc, wt)
    t = effect / se
    half = t_ppf(1 - alpha / 2, df) * se
    return ClusterTest(
        "CR2 + Bell-McCaffrey df",
        effect,
        se,
        df,
        float(2 * t_sf(abs(t), df)),
        (effect - half, effect + half),
    )


def naive_cluster_z(
    control: AccountArm, treatment: AccountArm, weighting: str, alpha: float = 0.05
) -> ClusterTest:
    """The cluster-robust sandwich with no small-sample correction (CR0) and a normal
    reference: what a generic tool reports, and too liberal with few accounts.

    V = Σ_arms Σ_g w_g² (r_g − m)² / W² (no 1/(1 − h_g) leverage factor), z = Δ/√V
    against N(0, 1).

    Parameters
    ----------
    control, treatment : AccountArm
        Per-account numerator and denominator sums.
    weighting : str
        "user" (w_g = Y_g) or "account" (w_g = 1).
    alpha : float, default 0.05
        1 − the confidence level of the interval.

    Returns
    -------
    ClusterTest
        df = inf.

    References
    ----------
    .. [1] G. W. Imbens and M. Kolesár, "Robust standard errors in small samples:
       some practical advice", Review of Economics and Statistics 98, 701–712,
       2016.

    Examples
    --------
    Narrower than CR2 on the same accounts:

    >>> import numpy as np
    >>> from abkit.stats.cluster import AccountArm
    >>> control = AccountArm(np.array([12.0, 30.0, 8.0, 21.0, 15.0]),
    ...                      np.array([10.0, 25.0, 5.0, 20.0, 12.0]))
    >>> treatment = AccountArm(np.array([18.0, 40.0, 9.0, 30.0, 11.0, 26.0]),
    ...                        np.array([12.0, 28.0, 6.0, 22.0, 8.0, 17.0]))
    >>> from abkit.stats.cluster import cr2_test, naive_cluster_z
    >>> round(naive_cluster_z(control, treatment, "account").se, 4)
    0.0858
    >>> round(cr2_test(control, treatment, "account").se, 4)
    0.0958
    """
    parts = []
    for arm in (control, treatment):
        r, w = arm.weights(weighting)
        m = float((w * r).sum() / w.sum())
        parts.append((m, float(np.sum(w**2 * (r - m) ** 2) / w.sum() ** 2)))
    effect = parts[1][0] - parts[0][0]
    se = math.sqrt(parts[0][1] + parts[1][1])
    z = effect / se if se > 0 else math.nan
    half = norm_ppf(1 - alpha / 2) * se
    return ClusterTest(
        "cluster z (CR0, no small-sample correction)",
        effect,
        se,
        math.inf,
        float(2 * norm_sf(abs(z))),
        (effect - half, effect + half),
    )
