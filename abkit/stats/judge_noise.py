"""Judge noise: how much of an arm's interval comes from the judge re-scoring the same
output differently, and how much narrower it gets with more judgements per output.

Output o of user u is judged r_o times, s_{o,1} … s_{o,r_o}; the repeats are averaged,
m_o = mean_k s_{o,k}.  In the nested model s_{o,k} = μ + a_u + b_o + e_{o,k} (a user, an
output within the user, a judgement of the output; Miller 2024, section 3 on clustered
and resampled evaluations) the judge noise variance σ²_e is estimated from the repeats,
pooled over the outputs judged at least twice,

    σ̂²_e = Σ_o Σ_k (s_{o,k} − m_o)² / Σ_o (r_o − 1),

and the between-output variance of the averaged scores is split as
Var(m_o) = σ²_between + mean_o(σ²_e / r_o).

An estimate linear in the output means, θ̂ = Σ_o w_o·m_o + (terms without the judge),
has a variance clustered by user whose judge-noise part is σ²_e·Σ_o w_o²/r_o (the
judgements are independent given the outputs).  The judge-only mean has w_o = 1/M; the
PPI++ mean (:mod:`abkit.stats.ppi`) has w_o = λ/N on unlabelled and −λ/n on labelled
outputs.  With k more judgements of every output the noise part becomes
σ²_e·Σ_o w_o²/(r_o + k), so the predicted interval width is

    width_k / width = √(1 − σ²_e·Σ_o w_o²·(1/r_o − 1/(r_o + k)) / Var(θ̂))

at the same λ (re-tuning λ to the less noisy judge can only narrow it further).  That
tells a team whether to buy more judging (a ratio well below 1) or more traffic.

References
----------
.. [1] E. Miller, "Adding error bars to evals: a statistical approach to language model
   evaluations", arXiv:2411.00640, 2024.
.. [2] A. N. Angelopoulos, J. C. Duchi and T. Zrnic, "PPI++: Efficient
   prediction-powered inference", arXiv:2311.01453, 2023.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from abkit.errors import AbkitInputError
from abkit.stats.arm import Summable
from abkit.stats.ppi import JudgedArm, centred_squares, judge_mean, plain, ppi_mean


@dataclass(frozen=True)
class JudgeNoise:
    """The judge-noise decomposition of one arm's estimate.

    Parameters
    ----------
    method : str
        "judge only" or "PPI++".
    outputs : int
        M, the judged outputs (repeats averaged).
    mean_runs : float
        The mean number of judgements per output.
    noise_variance : float
        σ̂²_e, the variance of one judgement around its output's mean (NaN when no
        output was judged twice).
    between_variance : float
        σ̂²_between, the variance of the outputs' true (noise-free) judge scores.
    variance : float
        Var(θ̂), clustered by user, with the repeats averaged.
    noise_share : float
        The share of Var(θ̂) that is judge noise.
    more : tuple of int
        The numbers k of extra judgements per output predicted for.
    widths : tuple of float
        Per k of ``more``, the predicted interval width with k more judgements per
        output over the present width.
    identifiable : bool, default True
        False when the raw between-output estimate s²(m_o) − σ̂²_e·mean_o(1/r_o) was
        negative: the repeats' noise then exceeds the outputs' whole spread (too few
        repeats, or repeats that are not independent), ``between_variance`` is clamped
        to 0 and the split is reported as not identifiable.
    """

    method: str
    outputs: int
    mean_runs: float
    noise_variance: float
    between_variance: float
    variance: float
    noise_share: float
    more: tuple[int, ...]
    widths: tuple[float, ...]
    identifiable: bool = True

    @property
    def width_ratios(self) -> dict[int, float]:
        """k → the predicted width ratio with k more judgements per output."""
        return dict(zip(self.more, self.widths, strict=True))


@dataclass(frozen=True)
class Repeats(Summable):
    """One arm's repeated judgements reduced to totals: with :class:`JudgedArm` of the
    outputs' averaged scores, the sufficient statistic of the judge-noise split (which
    reads only sums over the arm's outputs).  Parts (disjoint sets of users) add.

    Parameters
    ----------
    more : tuple of int
        The numbers k of extra judgements per output the sums below serve.
    judgements : float
        Σ_o r_o, the judgements.
    residual : float
        Σ_o Σ_k (s_{o,k} − m_o)², the spread of repeats around their output's mean.
    inverse_unlabelled, inverse_labelled : tuple of float
        Σ_o 1/(r_o + k) over the unlabelled (labelled) outputs, for k = 0 and each k of
        ``more``.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.judge_noise import Repeats
    >>> part = Repeats.from_users((1,), np.array([2.0, 3.0]), np.array([0.5, 1.0]),
    ...                           np.array([[0.5, 1 / 3], [0.0, 0.0]]),
    ...                           np.array([[0.0, 0.0], [1 / 3, 0.25]]))
    >>> (part + part).judgements, part.inverse_labelled
    (10.0, (0.3333333333333333, 0.25))
    """

    more: tuple[int, ...]
    judgements: float
    residual: float
    inverse_unlabelled: tuple[float, ...]
    inverse_labelled: tuple[float, ...]

    @classmethod
    def zero(cls, more: tuple[int, ...]) -> Repeats:
        """No judgements: the identity of ``+``."""
        return cls(more, 0.0, 0.0, (0.0,) * (1 + len(more)), (0.0,) * (1 + len(more)))

    @classmethod
    def from_users(
        cls,
        more: tuple[int, ...],
        judgements: np.ndarray,
        residual: np.ndarray,
        inverse_unlabelled: np.ndarray,
        inverse_labelled: np.ndarray,
    ) -> Repeats:
        """The totals of per-user sums (``inverse_*`` users × (1 + len(more))),
        correctly rounded (:func:`math.fsum`)."""

        def columns(values: np.ndarray) -> tuple[float, ...]:
            table = np.asarray(values, dtype=float).reshape(-1, 1 + len(more))
            return tuple(math.fsum(table[:, j]) for j in range(1 + len(more)))

        return cls(
            tuple(more),
            math.fsum(np.asarray(judgements, dtype=float)),
            math.fsum(np.asarray(residual, dtype=float)),
            columns(inverse_unlabelled),
            columns(inverse_labelled),
        )

    def __add__(self, other: object) -> Repeats:
        """The repeats of the users of both parts (disjoint sets of users)."""
        if not isinstance(other, Repeats) or other.more != self.more:
            return NotImplemented
        return Repeats(
            self.more,
            self.judgements + other.judgements,
            self.residual + other.residual,
            _added(self.inverse_unlabelled, other.inverse_unlabelled),
            _added(self.inverse_labelled, other.inverse_labelled),
        )


def _added(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def noise_split(arm: JudgedArm, repeats: Repeats, ppi: bool = True) -> JudgeNoise:
    """The judge-noise decomposition of an arm from its per-user sums.

    σ̂²_e = Σ residual / Σ (r_o − 1); σ̂²_between = s²(m_o) − σ̂²_e·mean_o(1/r_o), s²
    with ddof 1 over all outputs, clamped at 0 (negative: ``identifiable`` False); the
    noise part of Var(θ̂) is P = σ̂²_e·Σ_o w_o²/r_o, its share P/max(Var(θ̂), P) (at
    most 1), and the width with k more judgements
    √(1 − σ̂²_e·Σ_o w_o²·(1/r_o − 1/(r_o + k))/max(Var(θ̂), P)), with w_o = 1/M (judge
    only) or λ/N unlabelled and −λ/n labelled (PPI++, at its tuned λ) (module
    docstring).

    Parameters
    ----------
    arm : JudgedArm
        The arm's sums of its outputs' averaged judge scores.
    repeats : Repeats
        The same users' totals of the repeats.
    ppi : bool, default True
        The decomposition of the PPI++ mean; False: of the judge-only mean.

    Returns
    -------
    JudgeNoise
        NaN where undefined (no output judged twice, no estimate).
    """
    outputs = arm.n_labelled + arm.n_unlabelled
    inv_u, inv_l = repeats.inverse_unlabelled, repeats.inverse_labelled
    ks = len(repeats.more)
    repeated = repeats.judgements - outputs
    noise = repeats.residual / repeated if repeated > 0 else math.nan
    if ppi:
        method, est = "PPI++", ppi_mean(arm)
        n, big_n = max(arm.n_labelled, 1), max(arm.n_unlabelled, 1)
        lam = est.lam

        def weighted(j: int) -> float:
            return float((lam / big_n) ** 2 * inv_u[j] + (lam / n) ** 2 * inv_l[j])
    else:
        method, est = "judge only", judge_mean(arm)

        def weighted(j: int) -> float:
            return float((inv_u[j] + inv_l[j]) / max(outputs, 1) ** 2)

    e = arm.exact
    spread = math.nan
    if outputs > 1:
        squares = e("judge_sq") + e("judge_labelled_sq")
        total = e("judge") + e("judge_labelled")
        spread = centred_squares(squares, total, Fraction(outputs)) / (outputs - 1)
    mean_inverse = float(inv_u[0] + inv_l[0]) / outputs if outputs else math.nan
    variance = est.variance
    # the noise part can exceed Var(θ̂) in a sample (the two are estimated apart): the
    # share is then capped at 1 and the widths are taken over the larger of the two, so
    # that a width is never floored to 0 by a noise part larger than the variance
    part = noise * weighted(0)
    whole = max(variance, part)
    widths = tuple(
        math.sqrt(max(1.0 - noise * (weighted(0) - weighted(j + 1)) / whole, 0.0))
        for j in range(ks)
    )
    between = spread - noise * mean_inverse
    return JudgeNoise(
        method=method,
        outputs=outputs,
        mean_runs=repeats.judgements / outputs if outputs else math.nan,
        noise_variance=noise,
        between_variance=max(between, 0.0) if not math.isnan(between) else between,
        variance=variance,
        noise_share=part / whole if whole > 0 else math.nan,
        more=repeats.more,
        widths=widths,
        identifiable=not between < 0,
    )


def _outputs(user: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Each judgement's output, 0 … M − 1: outputs are keyed by (user, output id), as in
    the pipeline, and a judgement whose id is missing (None or NaN) is an output of its
    own."""
    if output.dtype == object:
        missing = np.array(
            [v is None or (isinstance(v, float) and math.isnan(v)) for v in output], dtype=bool
        )
    elif output.dtype.kind == "f":
        missing = np.isnan(output)
    else:
        missing = np.zeros(output.shape, dtype=bool)
    _, users = np.unique(user, return_inverse=True)
    ids = np.zeros(output.shape, dtype=np.int64)
    if (~missing).any():
        _, ids[~missing] = np.unique(output[~missing], return_inverse=True)
    width = int(ids.max(initial=0)) + 2
    code = users.astype(np.int64) * width + ids
    # a missing id: an output of its own, past every (user, id) code
    if missing.any():
        code[missing] = code.max() + 1 + np.arange(int(missing.sum()))
    index: np.ndarray = np.unique(code, return_inverse=True)[1].astype(np.intp)
    return index


def judge_noise(
    user: np.ndarray,
    output: np.ndarray,
    score: np.ndarray,
    human: np.ndarray | None = None,
    more: tuple[int, ...] = (1, 2, 4),
    source: str = "the judgements",
) -> JudgeNoise:
    """Split one arm's judge-score variance into between-output and judge-noise parts
    and predict the interval width with more judgements per output.

    Parameters
    ----------
    user : numpy.ndarray
        The user of each judgement's output.
    output : numpy.ndarray
        The output id of each judgement (repeats share it).  Outputs are keyed by
        (user, id), as in the pipeline: the same id under two users is two outputs, and
        a judgement whose id is missing (None or NaN) is an output of its own.
    score : numpy.ndarray
        The judge's score of each judgement (finite).
    human : numpy.ndarray or None
        The human label of each judgement's output (NaN where none).  An output's label
        is the mean of the labels its judgements carry; when they differ, a
        ``UserWarning`` counts such outputs.  Given: the decomposition is of the PPI++
        mean, at its tuned λ; None: of the judge-only mean.
    more : tuple of int, default (1, 2, 4)
        The numbers k of extra judgements per output to predict the width for.
    source : str
        Named in the error on bad input.

    Returns
    -------
    JudgeNoise

    Raises
    ------
    AbkitInputError
        When the arrays differ in length or a score is not finite.

    References
    ----------
    .. [1] E. Miller, "Adding error bars to evals", arXiv:2411.00640, 2024.

    Examples
    --------
    300 users with 4 outputs each, every output judged twice with noise sd 1 around a
    true score of sd 0.5 (σ²_e = 1, σ²_between = 0.25; the noise is 2/3 of the variance of
    the mean in expectation, and a third judgement would narrow the interval to
    √(1 − (1/2 − 1/3)/0.75) = 0.88 of its width):

    >>> import numpy as np
    >>> from abkit.stats.judge_noise import judge_noise
    >>> rng = np.random.default_rng(0)
    >>> output = np.repeat(np.arange(1200), 2)
    >>> true = rng.normal(3.0, 0.5, 1200)
    >>> score = true[output] + rng.normal(0.0, 1.0, 2400)
    >>> r = judge_noise(output // 4, output, score, more=(1,))
    >>> round(r.noise_variance, 2), round(r.between_variance, 2), round(r.noise_share, 2)
    (1.09, 0.16, 0.75)
    >>> round(r.width_ratios[1], 3)
    0.867
    """
    user, output = np.asarray(user), np.asarray(output)
    score = np.asarray(score, dtype=float)
    hum = np.full(score.shape, np.nan) if human is None else np.asarray(human, dtype=float)
    if not user.shape == output.shape == score.shape == hum.shape or score.ndim != 1:
        raise AbkitInputError(
            "user, output, score (and human) must be one value per judgement and of the "
            f"same length; got {user.shape}, {output.shape}, {score.shape}, {hum.shape}.",
            source=source,
        )
    if not np.isfinite(score).all():
        bad = int(np.argmax(~np.isfinite(score)))
        raise AbkitInputError(
            f"judge score {plain(score[bad])} of output {plain(output[bad])} is not a finite "
            "number.",
            source=source,
            column="score",
        )
    index = _outputs(user, output)
    count = int(index.max()) + 1 if index.size else 0
    runs = np.bincount(index, minlength=count).astype(float)
    mean = np.bincount(index, weights=score, minlength=count) / runs
    first = np.zeros(count, dtype=np.intp)
    first[index[::-1]] = np.arange(index.size)[::-1]
    owner = user[first]
    labelled = ~np.isnan(hum)
    labels = np.bincount(index, weights=labelled, minlength=count)
    total = np.bincount(index, weights=np.where(labelled, hum, 0.0), minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        label = np.where(labels > 0, total / np.maximum(labels, 1), np.nan)
    high = np.full(count, -np.inf)
    low = np.full(count, np.inf)
    np.maximum.at(high, index[labelled], hum[labelled])
    np.minimum.at(low, index[labelled], hum[labelled])
    conflicts = int(np.sum((labels > 0) & (high > low)))
    if conflicts:
        warnings.warn(
            f"{conflicts:,} judged output(s) carry different human labels on their "
            "judgements (same user and output id); each output's labels were averaged. "
            "Give an output's label on every judgement of it, or on none",
            UserWarning,
            stacklevel=2,
        )
    arm = JudgedArm.from_outputs(owner, mean, label, source)
    users, per_user = np.unique(owner, return_inverse=True)
    lab = ~np.isnan(label)
    inverse = 1.0 / (runs[:, None] + np.array((0, *more))[None, :])

    def by_user(values: np.ndarray) -> np.ndarray:
        out = np.zeros((users.size, *values.shape[1:]))
        np.add.at(out, per_user, values)
        return out

    repeats = Repeats.from_users(
        more=tuple(more),
        judgements=by_user(runs),
        residual=by_user(np.bincount(index, weights=(score - mean[index]) ** 2)),
        inverse_unlabelled=by_user(np.where(lab[:, None], 0.0, inverse)),
        inverse_labelled=by_user(np.where(lab[:, None], inverse, 0.0)),
    )
    return noise_split(arm, repeats, ppi=human is not None)
