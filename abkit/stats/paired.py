"""Paired comparison of two versions on the same inputs (a shadow or replay run),
clustered by user.

When the live and the candidate version both answered the same inputs, the per-input
difference removes the variation between inputs (an easy question scores high for
both) that a comparison of two independent arms carries in full: the interval is
narrower by the share of the variance the two versions' scores have in common
(Miller 2024, "Adding Error Bars to Evals", arXiv 2411.00640, section 4, paired
differences).  The inputs of one user are correlated (the same person asks similar
questions), so the user is the independent observation (Miller section 3, clustered
standard errors).

Per user i with nᵢ paired inputs, lᵢ and cᵢ sum the live and the candidate values.
The means are L = Σlᵢ/Σnᵢ and C = Σcᵢ/Σnᵢ, the difference D = C − L = Σdᵢ/Σnᵢ with
dᵢ = cᵢ − lᵢ, and Var(D) is the delta-method variance of that ratio of per-user sums
(Deng, Knoblich & Lu 2018; :func:`~abkit.stats.fixed_horizon.ratio_variance`), which
is the cluster-robust variance of the mean difference with the G/(G − 1) small-sample
factor.  The lift C/L − 1 has its interval on the log scale, from the variance of the
ratio of per-user sums Σcᵢ/Σlᵢ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abkit.stats.arm import ArmSummary, Summable
from abkit.stats.distributions import norm_ppf, norm_sf
from abkit.stats.fixed_horizon import Comparison, ratio_variance, undefined_comparison

PAIRED = "paired difference z-test, user-clustered delta-method variance (Miller 2024)"


@dataclass(frozen=True)
class PairedSums(Summable):
    """Per user, over the inputs both versions answered with a value: the sum of the
    live values, of the candidate values, and the number of pairs (the inputs of
    :func:`paired_test`; the units stage gives the users sorted by id).

    Parameters
    ----------
    live, candidate : numpy.ndarray
        lᵢ and cᵢ, one per user.
    pairs : numpy.ndarray
        nᵢ, the user's paired inputs.

    Notes
    -----
    Sums of disjoint sets of users add with ``+`` (and ``sum``); see :meth:`__add__`.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.paired import PairedSums
    >>> a = PairedSums(np.array([1.0, 2.0]), np.array([2.0, 2.0]), np.array([2, 3]))
    >>> b = PairedSums(np.array([0.5]), np.array([1.5]), np.array([1]))
    >>> (a + b).pairs.tolist()
    [2, 3, 1]
    """

    live: np.ndarray
    candidate: np.ndarray
    pairs: np.ndarray

    @classmethod
    def zero(cls) -> PairedSums:
        """No users: the identity of ``+`` and a start for ``sum``.

        Examples
        --------
        >>> from abkit.stats.paired import PairedSums
        >>> sum([], PairedSums.zero()).users
        0
        """
        return cls(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))

    @property
    def users(self) -> int:
        """The number of users (clusters)."""
        return int(np.size(self.live))

    def __add__(self, other: object) -> PairedSums:
        """The per-user sums of the users of both parts, which must be disjoint.

        Parameters
        ----------
        other : PairedSums
            The sums of other users for the same metric and candidate.

        Returns
        -------
        PairedSums
            live, candidate and pairs concatenated, this part's users first.
            :func:`paired_test` depends on the set of users, not their order.

        Notes
        -----
        An empty part is the identity.  The sums carry no user ids, so a user in
        both parts would count as two clusters and understate the clustering: split
        an export by user before adding its parts.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.paired import PairedSums, paired_test
        >>> rng = np.random.default_rng(1)
        >>> pairs = rng.integers(1, 5, 40)
        >>> live = rng.normal(size=40) * pairs
        >>> cand = live + rng.normal(0.2, 1.0, 40) * pairs
        >>> whole = PairedSums(live, cand, pairs)
        >>> parts = PairedSums(live[:15], cand[:15], pairs[:15]) + PairedSums(
        ...     live[15:], cand[15:], pairs[15:]
        ... )
        >>> bool(np.isclose(
        ...     paired_test(parts.live, parts.candidate, parts.pairs)[0].p_value,
        ...     paired_test(whole.live, whole.candidate, whole.pairs)[0].p_value,
        ...     rtol=1e-12,
        ... ))
        True
        """
        if not isinstance(other, PairedSums):
            return NotImplemented
        if other.users == 0:
            return self
        if self.users == 0:
            return other
        return PairedSums(
            np.concatenate([self.live, other.live]),
            np.concatenate([self.candidate, other.candidate]),
            np.concatenate([self.pairs, other.pairs]),
        )


@dataclass(frozen=True)
class Pairing:
    """What a paired comparison rests on: ``pairs`` inputs answered by both versions,
    from ``users`` users, and the standard error ``se`` of the paired difference beside
    the one two independent arms of the same outputs would have had (``unpaired_se``):
    the pairing removes the share 1 − se² / unpaired_se² of the variance.

    Parameters
    ----------
    pairs : int
        Σnᵢ, the inputs answered by both versions.
    users : int
        G, the users they come from (the clusters).
    se : float
        Standard error of the paired difference D.
    unpaired_se : float
        √(Var(L) + Var(C)), the standard error had the two versions' outputs been
        two independent arms.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.paired import paired_test
    >>> live = np.array([3.0, 5.0, 2.0, 6.0, 4.0])  # per user: sum of live scores
    >>> candidate = np.array([4.0, 5.5, 3.0, 7.5, 4.0])  # sum of the candidate's scores
    >>> pairs = np.array([4, 5, 3, 6, 4])  # inputs both answered
    >>> comparison, pairing = paired_test(live, candidate, pairs)
    >>> pairing.pairs, pairing.users, round(pairing.variance_removed, 4)
    (22, 5, 0.5944)
    """

    pairs: int
    users: int
    se: float
    unpaired_se: float

    @property
    def variance_removed(self) -> float:
        """1 − se²/unpaired_se², the share of the variance the pairing removes (NaN
        when either is undefined)."""
        if not (self.unpaired_se > 0 and math.isfinite(self.se)):
            return math.nan
        return 1.0 - self.se * self.se / (self.unpaired_se * self.unpaired_se)


def paired_test(
    live: np.ndarray, candidate: np.ndarray, pairs: np.ndarray, alpha: float = 0.05
) -> tuple[Comparison, Pairing]:
    """Candidate − live on paired inputs, from per-user sums: ``live`` and
    ``candidate`` sum each user's values over their ``pairs`` paired inputs (users
    are the clusters, so at least two are needed).  Normal reference (the delta
    method's), as the two-arm ratio test.

    D = Σdᵢ/Σnᵢ with dᵢ = cᵢ − lᵢ, and Var(D) is the delta-method variance of that
    ratio of per-user sums, G/(G − 1)·Σ(dᵢ − D·nᵢ)²/(Σnᵢ)²: the cluster-robust
    variance of the mean difference.  The lift C/L − 1 has the log-scale interval
    exp(log(C/L) ± z·se) − 1, se the delta-method standard error of log(Σcᵢ/Σlᵢ).

    Parameters
    ----------
    live, candidate : numpy.ndarray
        lᵢ and cᵢ, per user the sums of the live and the candidate values.
    pairs : numpy.ndarray
        nᵢ, per user the number of paired inputs.
    alpha : float, default 0.05
        1 − the confidence level of the intervals.

    Returns
    -------
    comparison : Comparison
        Candidate (treatment) − live (control), normal reference; undefined with
        fewer than 2 users or no variation of the differences between users.
    pairing : Pairing
        Pairs, users and the paired and unpaired standard errors.

    References
    ----------
    .. [1] E. Miller, "Adding Error Bars to Evals: A Statistical Approach to Language
       Model Evaluations", arXiv:2411.00640, 2024, sections 3 and 4.
    .. [2] A. Deng, U. Knoblich and J. Lu, "Applying the Delta Method in Metric
       Analytics: A Practical Guide with Novel Ideas", KDD 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.paired import paired_test
    >>> live = np.array([3.0, 5.0, 2.0, 6.0, 4.0])  # per user: sum of live scores
    >>> candidate = np.array([4.0, 5.5, 3.0, 7.5, 4.0])  # sum of the candidate's scores
    >>> pairs = np.array([4, 5, 3, 6, 4])  # inputs both answered
    >>> comparison, pairing = paired_test(live, candidate, pairs)
    >>> round(float(comparison.effect), 4), round(comparison.se, 4), round(comparison.p_value, 4)
    (0.1818, 0.0544, 0.0008)
    >>> [round(float(v), 4) for v in comparison.ci], round(float(comparison.relative_effect), 4)
    ([0.0753, 0.2884], 0.2)

    The standard error is the cluster-robust one of the mean difference:

    >>> d, g = candidate - live, live.size
    >>> mean_d = d.sum() / pairs.sum()
    >>> cr = np.sqrt(g / (g - 1) * ((d - mean_d * pairs) ** 2).sum() / pairs.sum() ** 2)
    >>> round(float(cr), 4)
    0.0544
    """
    live, candidate = np.asarray(live, float), np.asarray(candidate, float)
    pairs = np.asarray(pairs, float)
    n_pairs, users = int(pairs.sum()), int(live.size)
    live_mean = live.sum() / n_pairs if n_pairs else math.nan
    cand_mean = candidate.sum() / n_pairs if n_pairs else math.nan
    if users < 2:
        why = f"{users} user(s) with paired inputs; at least 2 are needed (users are the clusters)"
        comparison = undefined_comparison(PAIRED, live_mean, cand_mean, [why])
        return comparison, Pairing(n_pairs, users, math.nan, math.nan)
    var = ratio_variance(ArmSummary.from_values(candidate - live, pairs))
    unpaired = ratio_variance(ArmSummary.from_values(live, pairs)) + ratio_variance(
        ArmSummary.from_values(candidate, pairs)
    )
    effect, se = cand_mean - live_mean, math.sqrt(var)
    z = float(norm_ppf(1 - alpha / 2))
    warnings: list[str] = []
    undefined: list[str] = []
    if se > 0 and math.isfinite(se):
        statistic = effect / se
        p_value = float(2 * norm_sf(abs(statistic)))
        ci = (effect - z * se, effect + z * se)
    else:
        undefined.append(
            "the paired differences do not vary between users: no standard error, "
            "p-value or interval"
        )
        statistic = p_value = math.nan
        ci = (math.nan, math.nan)
    ratio = cand_mean / live_mean if live_mean else math.nan
    if ratio > 0 and math.isfinite(ratio):
        log_se = math.sqrt(ratio_variance(ArmSummary.from_values(candidate, live))) / ratio
        relative_ci = (
            math.exp(math.log(ratio) - z * log_se) - 1,
            math.exp(math.log(ratio) + z * log_se) - 1,
        )
    else:
        log_se, relative_ci = math.nan, (math.nan, math.nan)
        warnings.append("the live mean is 0 or the means differ in sign: no relative effect")
    comparison = Comparison(
        method=PAIRED,
        control_value=live_mean,
        treatment_value=cand_mean,
        effect=effect,
        se=se,
        df=math.inf,
        statistic=statistic,
        p_value=p_value,
        ci=ci,
        relative_effect=ratio - 1,
        log_ratio_se=log_se,
        relative_ci=relative_ci,
        warnings=tuple(warnings),
        undefined=tuple(undefined),
    )
    return comparison, Pairing(n_pairs, users, se, math.sqrt(unpaired))
