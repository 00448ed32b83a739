"""Prediction-powered inference (PPI++) for a mean quality scored by an LLM judge and,
on a random subset of outputs, by people; clustered by user.

In one arm, every judged output i carries a judge score fᵢ; a random subset L of them
(n outputs) also carries a human label Yᵢ, the other outputs U (N outputs) do not.
The PPI++ estimate of the arm's mean human quality is

    θ̂(λ) = λ·f̄_U + (Ȳ_L − λ·f̄_L),

the judge mean over the unlabelled outputs corrected by the mean (human − λ·judge) gap
on the labelled ones (Angelopoulos, Duchi & Zrnic 2023, "PPI++", eq. for the mean;
λ = 1 is classic PPI, Angelopoulos et al., *Science* 2023; λ = 0 is the human-only
mean).  It is unbiased for any λ when the labelled outputs are a random sample of the
arm's judged outputs, however biased or noisy the judge is.

**Clustering by user.**  Outputs of one user are not independent.  Per user u the
sums A_u = Σ_{U,u} f, N_u (its unlabelled outputs), C_u = Σ_{L,u} f, B_u = Σ_{L,u} Y and
n_u (its labelled outputs) are sufficient.  θ̂ is a smooth function of the means of
these sums over users, and its delta-method (influence-function) linearisation is

    ψ_u(λ) = (B_u − n_u·Ȳ_L)/n + λ·[(A_u − N_u·f̄_U)/N − (C_u − n_u·f̄_L)/n],

so Var(θ̂) = Σ_u ψ_u(λ)² (the cluster-robust sandwich, CR0).  With one output per user
this is exactly ppi_py's variance, λ²·s²_U(f)/N + s²_L(Y − λf)/n with ddof 0.

**Per-arm sums.**  Every clustered variance here (PPI++, judge only, human only, the
judge's bias, the labelled share, the labelled-against-unlabelled gap) and the terms of
λ̂ are Σ_u ψ_u·φ_u for residuals linear in v_u = (N_u, A_u, n_u, C_u, B_u) that sum to 0
over the users: quadratic forms aᵀMb in the co-moment matrix M of v_u.  So an arm
reduces to its user count, its totals (with Σf², ΣY², ΣfY, kept exact) and M, which
:class:`JudgedArm` keeps on a shifted basis that cancels no digits; parts of an arm
merge by ``+`` and an engine computes them by aggregate queries
(:func:`abkit.metrics.judged_quality.judged_sums`).  No step needs one user's values.

**Power tuning.**  λ minimises Var(θ̂(λ)):
λ̂ = Ĉov(Ȳ_L, f̄_L − f̄_U) / V̂ar(f̄_L − f̄_U), clipped to [0, 1] as ppi_py does (the
interval is then never wider than the human-only one, up to estimation of λ).  The
covariance is the clustered one; in the variance the judge scores' per-output variance
s²_f is pooled over labelled and unlabelled outputs (ppi_py's choice: with random
labels they share it) and scaled by each sample's design effect (its clustered over
its independent-output variance, Kish 1965):

    V̂ar(f̄_L − f̄_U) = s²_f·(deff_L/n + deff_U/N) − 2·Ĉov(f̄_L, f̄_U).

With one output per user deff = 1 and the cross-covariance is 0, so λ̂ is ppi_py's
``_calc_lam_glm``: Ĉov_n(Y, f)/((1 + n/N)·s²_f).

The arms are independent: the difference and its log-scale lift come from
:func:`abkit.stats.fixed_horizon.two_sided` (normal reference), guardrails from
:func:`abkit.stats.noninferiority.noninferiority_test` on that comparison.

**The judge mean is over the unlabelled outputs**, as in the paper and ppi_py (two
samples, labelled and not); averaging the judge over all judged outputs instead changes
θ̂ by λ·(n/(n + N))·(f̄_L − f̄_U), which is 0 in expectation and small when n ≪ N.

**Small samples.**  The interval is the paper's: the plain sandwich and a normal
reference.  In tests/test_ppi_calibration.py (about 205 labelled users per arm,
20,000 runs) the A/A size is 5.2 % with a useful judge and 5.5 % when the judge carries
no information (λ̂ → 0, the human-only test), slightly above the 99 % band [4.6 %,
5.4 %]: the labelled users are the effective sample, and a few hundred of them leave the
normal reference a little optimistic.

References
----------
.. [1] A. N. Angelopoulos, J. C. Duchi and T. Zrnic, "PPI++: Efficient
   prediction-powered inference", arXiv:2311.01453, 2023.
.. [2] A. N. Angelopoulos, S. Bates, C. Fannjiang, M. I. Jordan and T. Zrnic,
   "Prediction-powered inference", Science 382, 669–674, 2023.
.. [3] L. Kish, *Survey Sampling*, Wiley, 1965 (the design effect).
.. [4] E. Miller, "Adding error bars to evals: a statistical approach to language
   model evaluations", arXiv:2411.00640, 2024 (judge noise, clustered evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from abkit.errors import AbkitInputError
from abkit.stats.arm import Summable
from abkit.stats.distributions import norm_ppf, norm_sf
from abkit.stats.fixed_horizon import Comparison, two_sided, undefined_comparison

PPI_METHOD = "PPI++ (judge + human labels, clustered by user)"
JUDGE_METHOD = "judge only (clustered by user)"
HUMAN_METHOD = "human labels only (clustered by user)"


# the per-user vector whose co-moments the clustered variances are quadratic forms in:
# N_u, A_u − r_A·N_u, n_u, C_u − r_C·n_u, B_u − r_B·n_u (JudgedArm, "the shifted basis")
VECTOR = ("unlabelled", "judge", "labelled", "judge_labelled", "human")
# the arm totals a JudgedArm keeps, in the order of its fields
TOTALS = (
    "unlabelled",
    "judge",
    "judge_sq",
    "labelled",
    "judge_labelled",
    "judge_labelled_sq",
    "human",
    "human_sq",
    "judge_human",
    "not_pass_fail",
)
_N, _A, _SMALL_N, _C, _B = range(5)


@dataclass(frozen=True)
class JudgedArm(Summable):
    """One arm's judged outputs reduced to the sufficient statistic of PPI++, its
    judge-only and human-only estimates and the judge audit: counts, totals and the
    co-moments of a per-user vector.  Parts of an arm (disjoint sets of users) merge by
    ``+``.

    Per user u the sums N_u, A_u = Σ_{U,u} f, n_u, C_u = Σ_{L,u} f and B_u = Σ_{L,u} Y
    (module docstring) carry every clustered variance: each is Σ_u ψ_u·φ_u for
    residuals ψ_u = a·v_u, φ_u = b·v_u linear in v_u = (N_u, A_u, n_u, C_u, B_u) that
    sum to 0 over the users, so Σ_u ψ_uφ_u = aᵀ M b with M = Σ_u (v_u − v̄)(v_u − v̄)ᵀ.
    Rather than v_u the arm keeps the shifted vector

        w_u = (N_u, A_u − r_A·N_u, n_u, C_u − r_C·n_u, B_u − r_B·n_u),

    with reference ratios r close to the arm's f̄_U, f̄_L and Ȳ_L: the residuals are
    then combinations of w_u with coefficients of the order of the data's spread, not
    of its level (B_u − Ȳ_L·n_u = w_{B,u} − (Σw_B/n)·n_u), so the quadratic forms do
    not cancel digits when the scores sit far from 0 (labels near 100 with a spread of
    1 would lose four digits in the plain basis).  Two parts merge by Chan, Golub &
    LeVeque's update M = M₁ + M₂ + δδᵀ·u₁u₂/(u₁ + u₂), δ = w̄₂ − w̄₁, after the second
    part is moved to the first's reference ratios (a linear map of w).

    Parameters
    ----------
    users : int
        The users summed (those with no judged output included: they change nothing).
    judged_users : int
        Users with at least one judged output.
    labelled_users : int
        Users with at least one labelled output.
    unlabelled : float
        N = Σ_u N_u, the judged outputs without a human label.
    judge : float
        Σ_u A_u, the sum of their judge scores.
    judge_sq : float
        Σ f² over them.
    labelled : float
        n = Σ_u n_u, the judged outputs with a human label.
    judge_labelled : float
        Σ_u C_u, the sum of their judge scores.
    judge_labelled_sq : float
        Σ f² over them.
    human : float
        Σ_u B_u, the sum of their human labels.
    human_sq : float
        Σ Y² over them.
    judge_human : float
        Σ f·Y over them.
    not_pass_fail : float
        The labelled outputs whose judge score or human label is neither 0 nor 1 (none:
        a pass/fail judge and labels, whose confusion table the sums above give).
    reference : tuple of float
        (r_A, r_C, r_B), the reference ratios of the shifted vector w_u.
    shifted : tuple of float
        Σ_u w_u.
    comoments : tuple of tuple of float
        M_w = Σ_u (w_u − w̄)(w_u − w̄)ᵀ, 5 × 5.
    residues : tuple of float
        Per total of :data:`TOTALS`, the exact total minus its float: each total is
        kept to about 32 digits (a double-double), so that the per-output variances
        from raw sums of squares (Σf² − (Σf)²/M, in λ̂, the correlation and the noise
        split) are the same whether the users were summed in one part or many
        (:meth:`exact`).  On an engine the totals are fixed-point sums of the values
        cast to 18 decimals, exact sums of those casts: in this process and on an
        engine they agree to about 1e-16 relative, not to the bit.

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise
       algorithm for computing sample variances", Stanford CS report STAN-CS-79-773,
       1979.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm
    >>> arm = JudgedArm.from_outputs(
    ...     user=np.array([1, 1, 2, 3]),
    ...     judge=np.array([4.0, 3.0, 5.0, 2.0]),
    ...     human=np.array([4.0, np.nan, np.nan, 3.0]),
    ... )
    >>> arm.users, arm.n_labelled, arm.n_unlabelled
    (3, 2, 2)
    >>> (arm + arm).users
    6
    """

    users: int
    judged_users: int
    labelled_users: int
    unlabelled: float
    judge: float
    judge_sq: float
    labelled: float
    judge_labelled: float
    judge_labelled_sq: float
    human: float
    human_sq: float
    judge_human: float
    not_pass_fail: float
    reference: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shifted: tuple[float, ...] = (0.0,) * 5
    comoments: tuple[tuple[float, ...], ...] = ((0.0,) * 5,) * 5
    residues: tuple[float, ...] = (0.0,) * len(TOTALS)

    @classmethod
    def zero(cls) -> JudgedArm:
        """No users: the identity of ``+``.

        Examples
        --------
        >>> from abkit.stats.ppi import JudgedArm
        >>> sum([], JudgedArm.zero()).users
        0
        """
        return _arm(0, 0, 0, [Fraction(0)] * len(TOTALS))

    def __add__(self, other: object) -> JudgedArm:
        """The arm of the users of both parts (disjoint sets of users), at the reference
        ratios of the merged totals: both parts are moved there before Chan's update, so
        that a part without labelled (or unlabelled) outputs, whose ratio is 0, does not
        leave the merged arm on an unshifted basis that cancels digits."""
        if not isinstance(other, JudgedArm):
            return NotImplemented
        if other.users == 0:
            return self
        if self.users == 0:
            return other
        totals = [self.exact(name) + other.exact(name) for name in TOTALS]
        reference = _reference(totals)
        first, second = self.rebased(reference), other.rebased(reference)
        u1, u2 = self.users, other.users
        s1, s2 = np.array(first.shifted), np.array(second.shifted)
        delta = s2 / u2 - s1 / u1
        m = np.array(first.comoments) + np.array(second.comoments)
        m = m + np.outer(delta, delta) * (u1 * u2 / (u1 + u2))
        return _arm(
            u1 + u2,
            self.judged_users + other.judged_users,
            self.labelled_users + other.labelled_users,
            totals,
            reference,
            _tuple(s1 + s2),
            _matrix(m),
        )

    def exact(self, name: str) -> Fraction:
        """One of :data:`TOTALS` with its residue, as an exact fraction."""
        return Fraction(getattr(self, name)) + Fraction(self.residues[TOTALS.index(name)])

    @classmethod
    def from_totals(
        cls,
        users: int,
        judged_users: int,
        labelled_users: int,
        totals: Sequence[Fraction],
        reference: tuple[float, float, float],
        shifted: Sequence[float],
        comoments: np.ndarray,
    ) -> JudgedArm:
        """The arm from its counts, its exact totals in the order of :data:`TOTALS`,
        its reference ratios, Σ_u w_u and M_w (what an engine computes)."""
        return _arm(
            users,
            judged_users,
            labelled_users,
            totals,
            reference,
            tuple(float(x) for x in shifted),
            _matrix(np.asarray(comoments, dtype=float)),
        )

    def rebased(self, reference: tuple[float, float, float]) -> JudgedArm:
        """The same arm with its shifted vector at other reference ratios r′:
        w′ = T·w with T the identity but for T[A, N] = r_A − r′_A, T[C, n] = r_C − r′_C
        and T[B, n] = r_B − r′_B; Σw′ = T·Σw and M′ = T·M·Tᵀ."""
        if reference == self.reference:
            return self
        t = np.eye(5)
        t[_A, _N] = self.reference[0] - reference[0]
        t[_C, _SMALL_N] = self.reference[1] - reference[1]
        t[_B, _SMALL_N] = self.reference[2] - reference[2]
        return replace(
            self,
            reference=reference,
            shifted=_tuple(t @ np.array(self.shifted)),
            comoments=_matrix(t @ np.array(self.comoments) @ t.T),
        )

    @classmethod
    def from_users(
        cls,
        unlabelled: np.ndarray,
        judge: np.ndarray,
        judge_sq: np.ndarray,
        labelled: np.ndarray,
        judge_labelled: np.ndarray,
        judge_labelled_sq: np.ndarray,
        human: np.ndarray,
        human_sq: np.ndarray,
        judge_human: np.ndarray,
        not_pass_fail: np.ndarray,
    ) -> JudgedArm:
        """The arm from one entry per user of each per-user sum (N_u, A_u, Σ_{U,u} f²,
        n_u, C_u, Σ_{L,u} f², B_u, Σ_{L,u} Y², Σ_{L,u} fY and the labelled outputs that
        are not pass/fail).

        The totals are exact sums (:func:`math.fsum`, with residues); the reference ratios
        are the arm's f̄_U, f̄_L and Ȳ_L (0 where undefined) and M_w the centred
        products of w_u.

        Examples
        --------
        >>> import numpy as np
        >>> from abkit.stats.ppi import JudgedArm
        >>> ones, zeros = np.ones(3), np.zeros(3)
        >>> f = np.array([3.0, 4.0, 5.0])
        >>> arm = JudgedArm.from_users(zeros, zeros, zeros, ones, f, f**2, f, f**2, f**2, ones)
        >>> arm.users, arm.labelled_users, arm.judge_labelled
        (3, 3, 12.0)
        """
        columns = [
            np.asarray(c, dtype=float)
            for c in (
                unlabelled,
                judge,
                judge_sq,
                labelled,
                judge_labelled,
                judge_labelled_sq,
                human,
                human_sq,
                judge_human,
                not_pass_fail,
            )
        ]
        totals = [_exact_sum(c) for c in columns]
        users = columns[0].size
        reference = _reference(totals)
        w = shifted_vector(columns[0], columns[1], columns[3], columns[4], columns[6], reference)
        sums = np.array([math.fsum(c) for c in w])
        m = np.zeros((5, 5))
        if users:
            centred = [c - s / users for c, s in zip(w, sums, strict=True)]
            for i in range(5):
                for j in range(i, 5):
                    m[i, j] = m[j, i] = float(np.sum(centred[i] * centred[j]))
        outputs = columns[0] + columns[3]
        return _arm(
            users,
            int(np.count_nonzero(outputs)),
            int(np.count_nonzero(columns[3])),
            totals,
            reference,
            _tuple(sums),
            _matrix(m),
        )

    @classmethod
    def from_outputs(
        cls,
        user: np.ndarray,
        judge: np.ndarray,
        human: np.ndarray,
        source: str = "the judged outputs",
    ) -> JudgedArm:
        """One arm from one row per judged output (summed per user, then reduced by
        :meth:`from_users`).

        Parameters
        ----------
        user : numpy.ndarray
            The user of each output (any hashable values numpy can sort).
        judge : numpy.ndarray
            The judge score of each output (finite).
        human : numpy.ndarray
            The human label of each output, NaN where there is none.
        source : str, default "the judged outputs"
            Named in the error on bad input.

        Returns
        -------
        JudgedArm
            Of the distinct users of ``user``.

        Raises
        ------
        AbkitInputError
            When the arrays differ in length or a judge score is not finite or a human
            label is infinite.
        """
        user = np.asarray(user)
        judge = np.asarray(judge, dtype=float)
        human = np.asarray(human, dtype=float)
        if not user.shape == judge.shape == human.shape or user.ndim != 1:
            raise AbkitInputError(
                f"user, judge and human columns must be one value per output and of the "
                f"same length; got {user.shape}, {judge.shape} and {human.shape}.",
                source=source,
            )
        bad = ~np.isfinite(judge)
        if bad.any():
            raise AbkitInputError(
                f"judge score {plain(judge[bad][0])} at output {int(np.argmax(bad))} is not a "
                "finite number; leave outputs nobody judged out of the judged outputs.",
                source=source,
                column="judge",
            )
        if np.isinf(human).any():
            raise AbkitInputError(
                "a human label is infinite; an output without a label has a null (NaN) label.",
                source=source,
                column="human",
            )
        keys, index = np.unique(user, return_inverse=True)
        lab = ~np.isnan(human)
        y = np.where(lab, human, 0.0)

        def per_user(values: np.ndarray) -> np.ndarray:
            return np.bincount(index, weights=values, minlength=keys.size)

        return cls.from_users(
            unlabelled=per_user((~lab).astype(float)),
            judge=per_user(np.where(lab, 0.0, judge)),
            judge_sq=per_user(np.where(lab, 0.0, judge**2)),
            labelled=per_user(lab.astype(float)),
            judge_labelled=per_user(np.where(lab, judge, 0.0)),
            judge_labelled_sq=per_user(np.where(lab, judge**2, 0.0)),
            human=per_user(y),
            human_sq=per_user(y**2),
            judge_human=per_user(np.where(lab, judge * y, 0.0)),
            not_pass_fail=per_user(
                (lab & ~(np.isin(judge, (0.0, 1.0)) & np.isin(y, (0.0, 1.0)))).astype(float)
            ),
        )

    @property
    def n_labelled(self) -> int:
        """n, the labelled outputs."""
        return round(self.labelled)

    @property
    def n_unlabelled(self) -> int:
        """N, the judged outputs without a label."""
        return round(self.unlabelled)

    def form(self, a: np.ndarray, b: np.ndarray) -> float:
        """Σ_u (a·w_u)(b·w_u) = aᵀ·M_w·b for residuals a·w_u and b·w_u that sum to 0
        over the users."""
        return float(a @ np.array(self.comoments) @ b)

    def square(self, a: np.ndarray) -> float:
        """Σ_u (a·w_u)² (:meth:`form`), 0 when it is within rounding of 0: at most
        64·ε·|a|ᵀ|M_w||a| (ε the float spacing at 1), a residual that is 0 for every
        user up to the rounding of the sums."""
        m = np.array(self.comoments)
        value = float(a @ m @ a)
        bound = float(np.abs(a) @ np.abs(m) @ np.abs(a))
        return 0.0 if value <= 64 * np.finfo(float).eps * bound else value


def shifted_vector(
    unlabelled: np.ndarray,
    judge: np.ndarray,
    labelled: np.ndarray,
    judge_labelled: np.ndarray,
    human: np.ndarray,
    reference: tuple[float, float, float],
) -> list[np.ndarray]:
    """w_u = (N_u, A_u − r_A·N_u, n_u, C_u − r_C·n_u, B_u − r_B·n_u), the per-user vector
    whose co-moments :class:`JudgedArm` keeps (an engine computes the same expressions
    on its rows)."""
    r_a, r_c, r_b = reference
    return [
        unlabelled,
        judge - r_a * unlabelled,
        labelled,
        judge_labelled - r_c * labelled,
        human - r_b * labelled,
    ]


def _arm(
    users: int,
    judged_users: int,
    labelled_users: int,
    totals: Sequence[Fraction],
    reference: tuple[float, float, float] = (0.0, 0.0, 0.0),
    shifted: tuple[float, ...] = (0.0,) * 5,
    comoments: tuple[tuple[float, ...], ...] = ((0.0,) * 5,) * 5,
) -> JudgedArm:
    """A :class:`JudgedArm` from its exact totals in the order of :data:`TOTALS`."""
    rounded = [float(t) for t in totals]
    (
        unlabelled,
        judge,
        judge_sq,
        labelled,
        judge_labelled,
        judge_labelled_sq,
        human,
        human_sq,
        judge_human,
        not_pass_fail,
    ) = rounded
    return JudgedArm(
        users,
        judged_users,
        labelled_users,
        unlabelled,
        judge,
        judge_sq,
        labelled,
        judge_labelled,
        judge_labelled_sq,
        human,
        human_sq,
        judge_human,
        not_pass_fail,
        reference,
        shifted,
        comoments,
        tuple(float(t - Fraction(r)) for t, r in zip(totals, rounded, strict=True)),
    )


def _exact_sum(values: np.ndarray) -> Fraction:
    """Σ values exactly: its correctly rounded float (:func:`math.fsum`, exact until
    its last rounding) plus the rounded remainder, which leaves ~2⁻¹⁰⁶ of the sum."""
    high = math.fsum(values)
    low = math.fsum(np.append(values, -high)) if math.isfinite(high) else 0.0
    return Fraction(high) + Fraction(low) if math.isfinite(high) else Fraction(0)


def centred_squares(squares: Fraction, total: Fraction, count: Fraction) -> float:
    """Σ(x − x̄)² = Σx² − (Σx)²/M from exact totals, computed exactly then rounded (no
    digits lost however far the values sit from 0); NaN for M = 0."""
    if count == 0:
        return math.nan
    return float(squares - total * total / count)


def _reference(totals: Sequence[Fraction | float]) -> tuple[float, float, float]:
    """(r_A, r_C, r_B) = (ΣA/ΣN, ΣC/Σn, ΣB/Σn) from totals in the order of
    :data:`TOTALS` (0 where a count is 0): the arm's judge mean over unlabelled outputs
    and its judge and human means over labelled ones, near which the shifted vector's
    co-moments cancel no digits."""
    big_n, n = float(totals[0]), float(totals[3])
    return (
        float(totals[1]) / big_n if big_n > 0 else 0.0,
        float(totals[4]) / n if n > 0 else 0.0,
        float(totals[6]) / n if n > 0 else 0.0,
    )


def _tuple(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _matrix(values: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(_tuple(row) for row in values)


@dataclass(frozen=True)
class ArmEstimate:
    """One arm's mean quality with its clustered standard error.

    Parameters
    ----------
    method : str
        PPI++, judge only or human labels only.
    estimate : float
        θ̂ (NaN when not computable).
    se : float
        √Var(θ̂), clustered by user (NaN when not computable).
    ci : tuple of float
        θ̂ ± z_{1−α/2}·se.
    lam : float
        The λ used (1 for judge only, 0 for human labels only).
    undefined : tuple of str
        Why no estimate could be computed; empty when it was.
    """

    method: str
    estimate: float
    se: float
    ci: tuple[float, float]
    lam: float
    undefined: tuple[str, ...] = field(default_factory=tuple)

    @property
    def variance(self) -> float:
        """se²."""
        return self.se * self.se


def plain(value: object) -> str:
    """A value as an error message shows it: a numpy scalar as its Python value.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import plain
    >>> plain(np.int64(7)), plain(np.float64("nan")), plain("a")
    ('7', 'nan', "'a'")
    """
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def _not_computable(method: str, reasons: list[str]) -> ArmEstimate:
    return ArmEstimate(method, math.nan, math.nan, (math.nan, math.nan), math.nan, tuple(reasons))


def _with_ci(
    method: str, estimate: float, variance: float, lam: float, alpha: float
) -> ArmEstimate:
    se = math.sqrt(max(variance, 0.0))
    if not se > 0 or not math.isfinite(se):
        return _not_computable(
            method,
            [
                "no variation: the clustered standard error is 0 (every labelled output has "
                "the same human label and judge score pattern), so no interval can be computed"
            ],
        )
    half = float(norm_ppf(1 - alpha / 2)) * se
    return ArmEstimate(method, estimate, se, (estimate - half, estimate + half), lam)


def _labelled_problems(arm: JudgedArm) -> list[str]:
    """Why the labelled outputs cannot carry an estimate (empty: they can)."""
    if arm.n_labelled == 0:
        return ["no human labels in this arm: label a random sample of its judged outputs"]
    if arm.labelled_users < 2:
        return [
            "the human labels of this arm come from one user: a variance clustered by user "
            "needs labelled outputs of at least 2 users"
        ]
    return []


@dataclass(frozen=True)
class _Centred:
    """The per-user residuals the estimators are linear in, as coefficient vectors on
    the shifted vector w_u (:class:`JudgedArm`)."""

    y: np.ndarray  # B_u − n_u·Ȳ_L = w_B − (Σw_B/n)·n_u
    f_lab: np.ndarray  # C_u − n_u·f̄_L = w_C − (Σw_C/n)·n_u
    f_unlab: np.ndarray  # A_u − N_u·f̄_U = w_A − (Σw_A/N)·N_u (0 when N = 0)
    human_mean: float  # Ȳ_L
    judge_lab_mean: float  # f̄_L
    judge_unlab_mean: float  # f̄_U (NaN when N = 0)
    n: float
    big_n: float


def _unit(i: int, times: float = 1.0) -> np.ndarray:
    out = np.zeros(5)
    out[i] = times
    return out


def _centred(arm: JudgedArm) -> _Centred:
    n, big_n = arm.labelled, arm.unlabelled
    shifted = arm.shifted
    f_unlab = np.zeros(5)
    if big_n > 0:
        f_unlab = _unit(_A) - _unit(_N, shifted[_A] / big_n)
    return _Centred(
        y=_unit(_B) - _unit(_SMALL_N, shifted[_B] / n),
        f_lab=_unit(_C) - _unit(_SMALL_N, shifted[_C] / n),
        f_unlab=f_unlab,
        human_mean=arm.human / n,
        judge_lab_mean=arm.judge_labelled / n,
        judge_unlab_mean=arm.judge / big_n if big_n > 0 else math.nan,
        n=n,
        big_n=big_n,
    )


def power_tuning(arm: JudgedArm) -> float:
    """λ̂, the power-tuning parameter that minimises the clustered variance of θ̂(λ).

    λ̂ = Ĉov(Ȳ_L, f̄_L − f̄_U) / V̂ar(f̄_L − f̄_U), clipped to [0, 1], with
    Ĉov(Ȳ_L, f̄_L − f̄_U) = Σ_u (B_u − n_uȲ_L)·[(C_u − n_uf̄_L)/n − (A_u − N_uf̄_U)/N]/n
    and V̂ar(f̄_L − f̄_U) = s²_f·(deff_L/n + deff_U/N) − 2·Σ_u (C_u − n_uf̄_L)(A_u −
    N_uf̄_U)/(nN), where s²_f is the variance (ddof 1) of all judge scores of the arm and
    deff_S = Σ_u (Σ_{S,u}(f − f̄_S))² / Σ_{i∈S}(fᵢ − f̄_S)² (module docstring).

    Parameters
    ----------
    arm : JudgedArm
        With labelled outputs of at least 2 users.

    Returns
    -------
    float
        λ̂ in [0, 1]; 0 when the arm has no unlabelled output or the judge scores do not
        vary.

    References
    ----------
    .. [1] A. N. Angelopoulos, J. C. Duchi and T. Zrnic, "PPI++: Efficient
       prediction-powered inference", arXiv:2311.01453, 2023, Example 6.1.

    Examples
    --------
    With one output per user λ̂ = Ĉov_n(Y, f) / ((1 + n/N)·s²_f), ppi_py's:

    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, power_tuning
    >>> f = np.array([3.0, 4.0, 2.0, 5.0, 4.0, 3.0, 2.0, 4.0])
    >>> y = np.array([3.0, 5.0, 2.0, 4.0, np.nan, np.nan, np.nan, np.nan])
    >>> arm = JudgedArm.from_outputs(np.arange(8), f, y)
    >>> round(power_tuning(arm), 6)
    0.444444
    >>> cov = np.mean((y[:4] - y[:4].mean()) * (f[:4] - f[:4].mean()))
    >>> round(float(cov / ((1 + 4 / 4) * np.var(f, ddof=1))), 6)
    0.444444
    """
    c = _centred(arm)
    total = c.n + c.big_n
    if c.big_n == 0 or total < 2:
        return 0.0
    e = arm.exact
    judge_ss = centred_squares(
        e("judge_sq") + e("judge_labelled_sq"),
        e("judge") + e("judge_labelled"),
        e("unlabelled") + e("labelled"),
    )
    s2 = judge_ss / (total - 1)
    ss_lab = centred_squares(e("judge_labelled_sq"), e("judge_labelled"), e("labelled"))
    ss_unlab = centred_squares(e("judge_sq"), e("judge"), e("unlabelled"))
    clustered_lab = arm.square(c.f_lab)
    clustered_unlab = arm.square(c.f_unlab)
    deff_lab = clustered_lab / ss_lab if ss_lab > 0 else 0.0
    deff_unlab = clustered_unlab / ss_unlab if ss_unlab > 0 else 0.0
    cross = arm.form(c.f_lab, c.f_unlab) / (c.n * c.big_n)
    denominator = s2 * (deff_lab / c.n + deff_unlab / c.big_n) - 2 * cross
    numerator = arm.form(c.y, c.f_lab / c.n - c.f_unlab / c.big_n) / c.n
    if not denominator > 0:
        return 0.0
    return float(np.clip(numerator / denominator, 0.0, 1.0))


def ppi_mean(arm: JudgedArm, alpha: float = 0.05, lam: float | None = None) -> ArmEstimate:
    """The arm's PPI++ mean quality θ̂(λ) = λ·f̄_U + Ȳ_L − λ·f̄_L with its interval.

    Var(θ̂) = Σ_u ψ_u(λ)², ψ_u(λ) = (B_u − n_uȲ_L)/n + λ·[(A_u − N_uf̄_U)/N −
    (C_u − n_uf̄_L)/n]: the delta-method variance clustered by user (module docstring);
    the interval is θ̂ ± z_{1−α/2}·√Var(θ̂).

    Parameters
    ----------
    arm : JudgedArm
        The per-user sums of the arm.
    alpha : float, default 0.05
        1 − the confidence level.
    lam : float or None
        λ; None tunes it (:func:`power_tuning`).  0 gives the human-only mean, 1 the
        classic PPI estimate.

    Returns
    -------
    ArmEstimate
        Not computable (NaN, with the reason) when the arm has no human label, its labels
        come from one user, or nothing varies.  An arm whose outputs are all labelled
        has no f̄_U and is estimated with λ = 0.

    References
    ----------
    .. [1] A. N. Angelopoulos, J. C. Duchi and T. Zrnic, "PPI++: Efficient
       prediction-powered inference", arXiv:2311.01453, 2023.

    Examples
    --------
    A judge that scores every output 0.5 too high: the judge mean is biased, the PPI++
    mean is not, and its λ = 0 case is the human-only mean.

    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, ppi_mean
    >>> rng = np.random.default_rng(0)
    >>> quality = rng.normal(3.0, 1.0, 2000)
    >>> judge = quality + 0.5 + rng.normal(0.0, 0.5, 2000)
    >>> human = np.where(np.arange(2000) < 200, quality, np.nan)
    >>> arm = JudgedArm.from_outputs(np.arange(2000) // 4, judge, human)
    >>> est = ppi_mean(arm)
    >>> round(est.estimate, 3), round(est.lam, 3), round(float(judge.mean()), 3)
    (2.988, 0.687, 3.471)
    >>> ppi_mean(arm, lam=0.0).estimate == float(np.nanmean(human))
    True
    >>> est.se < ppi_mean(arm, lam=0.0).se
    True
    """
    method = PPI_METHOD if lam is None or lam > 0 else HUMAN_METHOD
    problems = _labelled_problems(arm)
    if problems:
        return _not_computable(method, problems)
    c = _centred(arm)
    if c.big_n == 0:
        lam = 0.0
    elif lam is None:
        lam = power_tuning(arm)
    estimate = c.human_mean
    psi = c.y / c.n
    if lam != 0:
        estimate += lam * (c.judge_unlab_mean - c.judge_lab_mean)
        psi = psi + lam * (c.f_unlab / c.big_n - c.f_lab / c.n)
    return _with_ci(method, estimate, arm.square(psi), lam, alpha)


def _bias(arm: JudgedArm) -> tuple[float, float]:
    """The judge's bias Σ_u (C_u − B_u) / n and its CR0 variance Σ_u (C_u − B_u −
    n_u·bias)² / n², the residual on w_u: w_C − w_B − ((Σw_C − Σw_B)/n)·n_u."""
    n = arm.labelled
    bias = (arm.judge_labelled - arm.human) / n
    excess = (arm.shifted[_C] - arm.shifted[_B]) / n
    residual = _unit(_C) - _unit(_B) - _unit(_SMALL_N, excess)
    return bias, arm.square(residual) / n**2


def _bias_estimate(arm: JudgedArm, alpha: float) -> ArmEstimate:
    """The judge's bias over the labelled outputs as an estimate, clustered by user."""
    method = "judge bias (judge − human)"
    problems = _labelled_problems(arm)
    if problems:
        return _not_computable(method, problems)
    bias, variance = _bias(arm)
    return _with_ci(method, bias, variance, 0.0, alpha)


def judge_mean(arm: JudgedArm, alpha: float = 0.05) -> ArmEstimate:
    """The naive judge-only mean over all the arm's judged outputs, clustered by user.

    f̄ = Σ_u (A_u + C_u) / Σ_u (N_u + n_u), Var = Σ_u (A_u + C_u − f̄·(N_u + n_u))² /
    (Σ_u (N_u + n_u))²: the delta method for a ratio of sums (Deng, Knoblich & Lu 2018)
    without the u/(u − 1) factor of :func:`abkit.stats.fixed_horizon.ratio_variance`, as
    in the PPI++ variance.  It estimates the judge's mean score, which is the human
    quality only for an unbiased judge.

    Parameters
    ----------
    arm : JudgedArm
        The per-user sums of the arm.
    alpha : float, default 0.05
        1 − the confidence level.

    Returns
    -------
    ArmEstimate
        λ = 1 by convention; not computable with fewer than 2 users.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, judge_mean
    >>> arm = JudgedArm.from_outputs(
    ...     np.array([1, 1, 2, 3]), np.array([4.0, 3.0, 5.0, 2.0]), np.array([4.0] + [np.nan] * 3)
    ... )
    >>> judge_mean(arm).estimate
    3.5
    """
    if arm.judged_users < 2:
        return _not_computable(
            JUDGE_METHOD, ["judged outputs of fewer than 2 users: no clustered variance"]
        )
    outputs = arm.unlabelled + arm.labelled
    estimate = (arm.judge + arm.judge_labelled) / outputs
    # the residual A_u + C_u − f̄·(N_u + n_u) on w_u: f̄ − r_A from the shifted sums
    r_a, r_c, _ = arm.reference
    excess = (arm.shifted[_A] + arm.shifted[_C] + (r_c - r_a) * arm.labelled) / outputs
    residual = np.array([-excess, 1.0, (r_c - r_a) - excess, 1.0, 0.0])
    return _with_ci(JUDGE_METHOD, estimate, arm.square(residual) / outputs**2, 1.0, alpha)


def human_mean(arm: JudgedArm, alpha: float = 0.05) -> ArmEstimate:
    """The human-only mean Ȳ_L over the labelled outputs, clustered by user: θ̂(0).

    Parameters
    ----------
    arm : JudgedArm
        The per-user sums of the arm.
    alpha : float, default 0.05
        1 − the confidence level.

    Returns
    -------
    ArmEstimate
        :func:`ppi_mean` with λ = 0.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, human_mean
    >>> arm = JudgedArm.from_outputs(
    ...     np.array([1, 1, 2, 3]), np.array([4.0, 3.0, 5.0, 2.0]),
    ...     np.array([4.0, np.nan, 2.0, 3.0]),
    ... )
    >>> human_mean(arm).estimate
    3.0
    """
    return ppi_mean(arm, alpha, lam=0.0)


def arm_difference(control: ArmEstimate, treatment: ArmEstimate, alpha: float) -> Comparison:
    """Treatment − control of two independent arm estimates, its interval, p-value and
    log-scale lift (:func:`abkit.stats.fixed_horizon.two_sided`, normal reference).

    Parameters
    ----------
    control, treatment : ArmEstimate
        The arms' estimates by the same method.
    alpha : float
        1 − the confidence level.

    Returns
    -------
    Comparison
        Not computable (:attr:`Comparison.undefined` naming the arm) when either arm is.

    Examples
    --------
    >>> from abkit.stats.ppi import ArmEstimate, arm_difference
    >>> c = ArmEstimate("PPI++", 3.0, 0.1, (2.8, 3.2), 0.8)
    >>> t = ArmEstimate("PPI++", 3.3, 0.1, (3.1, 3.5), 0.8)
    >>> d = arm_difference(c, t, 0.05)
    >>> round(d.effect, 3), round(d.relative_effect, 3), round(d.p_value, 4)
    (0.3, 0.1, 0.0339)
    """
    reasons = [
        f"{name}: {why}"
        for name, arm in (("control", control), ("treatment", treatment))
        for why in arm.undefined
    ]
    if reasons:
        return undefined_comparison(treatment.method, control.estimate, treatment.estimate, reasons)
    return two_sided(
        treatment.method,
        control.estimate,
        treatment.estimate,
        control.variance,
        treatment.variance,
        alpha,
    )


@dataclass(frozen=True)
class JudgedComparison:
    """The arms compared three ways: PPI++ (the answer), judge only and human only.

    Parameters
    ----------
    ppi, judge, human : Comparison
        Treatment − control by each estimator.
    arms : dict of str to tuple of ArmEstimate
        Per arm ("control", "treatment"): the (PPI++, judge-only, human-only) estimates.
    width_ratio : float
        The PPI++ interval's width over the human-only one (below 1: narrower).
    """

    ppi: Comparison
    judge: Comparison
    human: Comparison
    arms: dict[str, tuple[ArmEstimate, ArmEstimate, ArmEstimate]]
    width_ratio: float


def ppi_test(
    control: JudgedArm, treatment: JudgedArm, alpha: float = 0.05, lam: float | None = None
) -> JudgedComparison:
    """Compare two arms' mean quality by PPI++, beside the judge-only and human-only
    estimates.

    Each arm gets its own λ̂ (:func:`power_tuning`); Δ = θ̂_T − θ̂_C with
    Var(Δ) = Var(θ̂_T) + Var(θ̂_C) (independent arms), the lift T/C − 1 on the log scale.

    Parameters
    ----------
    control, treatment : JudgedArm
        The arms' per-user sums.
    alpha : float, default 0.05
        1 − the confidence level.
    lam : float or None
        A fixed λ for both arms; None tunes each.

    Returns
    -------
    JudgedComparison

    Examples
    --------
    The judge flatters the treatment's style by +0.4; the human quality is the same.
    The judge-only test sees a large effect, PPI++ does not:

    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, ppi_test
    >>> rng = np.random.default_rng(3)
    >>> def arm(bias):
    ...     quality = rng.normal(3.0, 1.0, 4000)
    ...     judge = quality + bias + rng.normal(0.0, 0.5, 4000)
    ...     human = np.where(rng.random(4000) < 0.1, quality, np.nan)
    ...     return JudgedArm.from_outputs(np.arange(4000) // 4, judge, human)
    >>> r = ppi_test(arm(0.0), arm(0.4))
    >>> r.judge.p_value < 1e-6, r.ppi.p_value > 0.05
    (True, True)
    >>> bool(r.width_ratio < 1)
    True
    """
    by_arm = {
        name: (ppi_mean(arm, alpha, lam), judge_mean(arm, alpha), human_mean(arm, alpha))
        for name, arm in (("control", control), ("treatment", treatment))
    }
    (pc, jc, hc), (pt, jt, ht) = by_arm["control"], by_arm["treatment"]
    ppi = arm_difference(pc, pt, alpha)
    human = arm_difference(hc, ht, alpha)
    ratio = ppi.se / human.se if human.se > 0 and math.isfinite(ppi.se) else math.nan
    return JudgedComparison(
        ppi=ppi,
        judge=arm_difference(jc, jt, alpha),
        human=human,
        arms=by_arm,
        width_ratio=ratio,
    )


# --- the judge audit -------------------------------------------------------------------


@dataclass(frozen=True)
class PassFail:
    """The confusion table of a pass/fail judge against pass/fail labels (1 pass, 0
    fail), over one arm's labelled outputs.

    Parameters
    ----------
    both_pass : int
        The judge and the human pass the output.
    judge_only : int
        The judge passes it, the human fails it.
    human_only : int
        The judge fails it, the human passes it.
    both_fail : int
        Both fail it.
    """

    both_pass: int
    judge_only: int
    human_only: int
    both_fail: int


@dataclass(frozen=True)
class JudgeAgreement:
    """How one arm's judge agrees with its human labels, on the labelled outputs.

    Parameters
    ----------
    correlation : float
        Pearson's r between judge scores and human labels over the labelled outputs.
    bias : float
        f̄_L − Ȳ_L, the judge's mean excess over the human label.
    bias_se : float
        Its standard error, clustered by user.
    labelled_share : float
        n / (n + N).
    labelled_minus_unlabelled : float
        f̄_L − f̄_U: judge scores of labelled outputs against the others (0 expected
        when labels are a random sample).
    labelled_minus_unlabelled_p : float
        Its two-sided p-value (clustered by user, normal reference).
    confusion : PassFail or None
        For a pass/fail judge and pass/fail labels (every score and label 0 or 1), the
        confusion table of the labelled outputs; None otherwise.
    """

    correlation: float
    bias: float
    bias_se: float
    labelled_share: float
    labelled_minus_unlabelled: float
    labelled_minus_unlabelled_p: float
    confusion: PassFail | None = None


def judge_agreement(arm: JudgedArm) -> JudgeAgreement:
    """The judge audit of one arm: correlation, mean bias and whether the labelled
    outputs look like the others.

    bias = f̄_L − Ȳ_L with Var = Σ_u (C_u − B_u − n_u·bias)²/n² (clustered by user);
    f̄_L − f̄_U with Var = Σ_u [(C_u − n_uf̄_L)/n − (A_u − N_uf̄_U)/N]².

    Parameters
    ----------
    arm : JudgedArm
        The per-user sums of the arm.

    Returns
    -------
    JudgeAgreement
        NaN where a quantity is undefined (no labels, no unlabelled outputs, no
        variation).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, judge_agreement
    >>> f = np.array([3.0, 4.0, 2.0, 5.0, 4.0, 3.0])
    >>> y = np.array([2.0, 4.0, 1.0, 4.0, np.nan, np.nan])
    >>> a = judge_agreement(JudgedArm.from_outputs(np.arange(6), f, y))
    >>> round(a.correlation, 4), a.bias, round(a.labelled_share, 4)
    (0.9467, 0.75, 0.6667)
    >>> round(float(np.corrcoef(f[:4], y[:4])[0, 1]), 4)
    0.9467

    A pass/fail judge (1 pass, 0 fail) against pass/fail labels: the confusion table
    (both pass, judge only, human only, both fail).

    >>> f = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    >>> y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, np.nan])
    >>> judge_agreement(JudgedArm.from_outputs(np.arange(6), f, y)).confusion
    PassFail(both_pass=2, judge_only=1, human_only=1, both_fail=1)
    """
    nan = math.nan
    n, big_n = arm.labelled, arm.unlabelled
    share = n / (n + big_n) if n + big_n > 0 else nan
    if n == 0:
        return JudgeAgreement(nan, nan, nan, share, nan, nan)
    c = _centred(arm)
    e = arm.exact
    products = e("judge_human") - e("judge_labelled") * e("human") / e("labelled")
    cov = float(products) / n
    var_f = centred_squares(e("judge_labelled_sq"), e("judge_labelled"), e("labelled")) / n
    var_y = centred_squares(e("human_sq"), e("human"), e("labelled")) / n
    corr = cov / math.sqrt(var_f * var_y) if var_f > 0 and var_y > 0 else nan
    bias, bias_var = _bias(arm)
    gap, gap_p = nan, nan
    if big_n > 0:
        gap = c.judge_lab_mean - c.judge_unlab_mean
        gap_se = math.sqrt(arm.square(c.f_lab / n - c.f_unlab / big_n))
        gap_p = float(2 * norm_sf(abs(gap) / gap_se)) if gap_se > 0 else nan
    confusion = None
    if arm.not_pass_fail == 0:
        both = round(arm.judge_human)
        judge_pass, human_pass = round(c.judge_lab_mean * n), round(c.human_mean * n)
        confusion = PassFail(
            both,
            judge_pass - both,
            human_pass - both,
            round(n) - judge_pass - human_pass + both,
        )
    return JudgeAgreement(corr, bias, math.sqrt(bias_var), share, gap, gap_p, confusion)


def bias_difference(control: JudgedArm, treatment: JudgedArm, alpha: float = 0.05) -> Comparison:
    """Test whether the judge's bias (judge − human) differs between the arms.

    bias_a = Σ_u (C_u − B_u) / Σ_u n_u per arm, the mean (judge − human) gap over the
    labelled outputs, with its clustered (CR0) variance Σ_u (C_u − B_u − n_u·bias_a)² /
    (Σ_u n_u)²; Δ = bias_T − bias_C against N(0, Var_T + Var_C).  When the bias differs,
    the naive judge-only effect is biased by Δ; PPI++ is not.  (abkit's CR2 test,
    :func:`abkit.stats.cluster.cr2_test`, is built for tens of accounts: its degrees of
    freedom need a users × users matrix.)

    Parameters
    ----------
    control, treatment : JudgedArm
        The arms' per-user sums.
    alpha : float, default 0.05
        1 − the confidence level.

    Returns
    -------
    Comparison
        Not computable when an arm has labels of fewer than 2 users.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, bias_difference
    >>> rng = np.random.default_rng(1)
    >>> def arm(bias):
    ...     y = rng.normal(3.0, 1.0, 600)
    ...     return JudgedArm.from_outputs(np.arange(600), y + bias + rng.normal(0, 0.3, 600), y)
    >>> bias_difference(arm(0.0), arm(0.5)).p_value < 1e-6
    True
    """
    estimates = [_bias_estimate(arm, alpha) for arm in (control, treatment)]
    return arm_difference(estimates[0], estimates[1], alpha)


def labelled_share_difference(
    control: JudgedArm, treatment: JudgedArm, alpha: float = 0.05
) -> Comparison:
    """Test whether the share of judged outputs that carry a human label differs
    between the arms.

    share_a = Σ_u n_u / Σ_u (n_u + N_u) per arm with its clustered (CR0) variance
    Σ_u (n_u − share·(n_u + N_u))² / (Σ_u (n_u + N_u))²; Δ = share_T − share_C against
    N(0, Var_T + Var_C).  PPI++ stays valid when the shares differ (each arm is
    corrected by its own labels), but a difference says the labels were not drawn the
    same way in both arms.

    Parameters
    ----------
    control, treatment : JudgedArm
        The arms' per-user sums.
    alpha : float, default 0.05
        1 − the confidence level.

    Returns
    -------
    Comparison
        Not computable when an arm has judged outputs of fewer than 2 users.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, labelled_share_difference
    >>> rng = np.random.default_rng(2)
    >>> def arm(share):
    ...     f = rng.normal(3.0, 1.0, 3000)
    ...     y = np.where(rng.random(3000) < share, f, np.nan)
    ...     return JudgedArm.from_outputs(np.arange(3000) // 3, f, y)
    >>> labelled_share_difference(arm(0.1), arm(0.2)).p_value < 1e-6
    True
    """
    estimates = []
    for arm in (control, treatment):
        if arm.judged_users < 2:
            reason = "judged outputs of fewer than 2 users"
            estimates.append(_not_computable("labelled share", [reason]))
            continue
        outputs = arm.labelled + arm.unlabelled
        share = arm.labelled / outputs
        # the residual n_u − share·(n_u + N_u)
        residual = _unit(_SMALL_N, 1.0 - share) - _unit(_N, share)
        variance = arm.square(residual) / outputs**2
        estimates.append(_with_ci("labelled share", share, variance, 1.0, alpha))
    return arm_difference(estimates[0], estimates[1], alpha)
