"""The typed detail of a judged-quality comparison: what every report shows beside the
PPI++ effect (:mod:`abkit.stats.ppi`).

Per arm the PPI++, judge-only and human-only estimates, the judge audit and, when outputs
were judged several times, the judge-noise split (:mod:`abkit.stats.judge_noise`);
between the arms the judge-only and human-only effects, how much narrower PPI++ is than
the human labels alone and the tests of the judge's bias and of the labelled share.
"""

from __future__ import annotations

from dataclasses import dataclass

from abkit.stats.fixed_horizon import Comparison, EffectSummary
from abkit.stats.judge_noise import JudgeNoise, Repeats, noise_split
from abkit.stats.ppi import (
    ArmEstimate,
    JudgeAgreement,
    JudgedArm,
    bias_difference,
    judge_agreement,
    labelled_share_difference,
    ppi_test,
)


@dataclass(frozen=True)
class Difference:
    """Treatment − control of one audit quantity (the judge's bias, the labelled share),
    tested against no difference.

    Parameters
    ----------
    control, treatment : float
        The quantity in each arm.
    effect : float
        Treatment − control.
    ci : tuple of float
        Its two-sided interval (normal reference, clustered by user).
    p_value : float
        The two-sided p-value of no difference (NaN when not computable).
    """

    control: float
    treatment: float
    effect: float
    ci: tuple[float, float]
    p_value: float

    @classmethod
    def of(cls, comparison: Comparison) -> Difference:
        """The difference a comparison of the arms found (its lift is left out: a bias
        near 0 has no meaningful ratio)."""
        c = comparison
        return cls(c.control_value, c.treatment_value, c.effect, c.ci, c.p_value)


@dataclass(frozen=True)
class JudgedArmDetail:
    """One arm of a judged-quality comparison: its outputs, its three estimates and the
    judge audit.

    Parameters
    ----------
    users : int
        Users with at least one judged output.
    labelled : int
        Judged outputs with a human label (n).
    unlabelled : int
        Judged outputs without one (N).
    ppi, judge, human : ArmEstimate
        The arm's mean quality by PPI++ (with its λ), the judge alone and the human
        labels alone.
    audit : JudgeAgreement
        Judge–human agreement on the labelled outputs.
    noise : JudgeNoise or None
        When outputs were judged several times (an output id given): the judge-noise
        split of the PPI++ variance and the width with more judgements per output.
    """

    users: int
    labelled: int
    unlabelled: int
    ppi: ArmEstimate
    judge: ArmEstimate
    human: ArmEstimate
    audit: JudgeAgreement
    noise: JudgeNoise | None = None


@dataclass(frozen=True)
class JudgedDetail:
    """What a judged-quality comparison shows beside its PPI++ effect.

    Parameters
    ----------
    control, treatment : JudgedArmDetail
        Each arm's outputs, estimates and audit.
    judge : EffectSummary
        Treatment − control by the judge alone (the naive effect).
    human : EffectSummary
        Treatment − control by the human labels alone.
    width_ratio : float
        The PPI++ interval's width over the human-only one (below 1: narrower).
    bias_difference : Difference
        The judge's bias (judge − human) in each arm and its difference
        (:func:`bias_difference`).
    labelled_share_difference : Difference
        The labelled share in each arm and its difference
        (:func:`labelled_share_difference`).
    """

    control: JudgedArmDetail
    treatment: JudgedArmDetail
    judge: EffectSummary
    human: EffectSummary
    width_ratio: float
    bias_difference: Difference
    labelled_share_difference: Difference


def judged_comparison(
    control: JudgedArm,
    treatment: JudgedArm,
    alpha: float = 0.05,
    repeats: tuple[Repeats, Repeats] | None = None,
) -> tuple[Comparison, JudgedDetail]:
    """The PPI++ comparison of two arms with its typed detail: the judge-only and
    human-only effects, the width gained and the judge audit of each arm.

    Parameters
    ----------
    control, treatment : JudgedArm
        The arms' sums (of the outputs' averaged judge scores when outputs were
        judged several times).
    alpha : float, default 0.05
        1 − the confidence level (of the effects and of the audit's tests).
    repeats : tuple of Repeats, optional
        The control's and the treatment's repeated judgements: each arm's detail then
        carries its judge-noise split (:func:`abkit.stats.judge_noise.noise_split`).

    Returns
    -------
    tuple of (Comparison, JudgedDetail)
        :func:`ppi_test`'s PPI++ comparison and what is shown beside it.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.judged import judged_comparison
    >>> from abkit.stats.ppi import JudgedArm
    >>> rng = np.random.default_rng(3)
    >>> def arm(bias):
    ...     quality = rng.normal(3.0, 1.0, 4000)
    ...     judge = quality + bias + rng.normal(0.0, 0.5, 4000)
    ...     human = np.where(rng.random(4000) < 0.1, quality, np.nan)
    ...     return JudgedArm.from_outputs(np.arange(4000) // 4, judge, human)
    >>> ppi, detail = judged_comparison(arm(0.0), arm(0.4))
    >>> bool(detail.judge.p_value < 1e-6), bool(ppi.p_value > 0.05)
    (True, True)
    >>> bool(abs(detail.bias_difference.effect - 0.4) < 0.2), detail.treatment.users
    (True, 1000)
    """
    r = ppi_test(control, treatment, alpha)

    def arm_detail(name: str, arm: JudgedArm) -> JudgedArmDetail:
        ppi, judge, human = r.arms[name]
        runs = None if repeats is None else repeats[name == "treatment"]
        return JudgedArmDetail(
            users=arm.judged_users,
            labelled=arm.n_labelled,
            unlabelled=arm.n_unlabelled,
            ppi=ppi,
            judge=judge,
            human=human,
            audit=judge_agreement(arm),
            noise=None if runs is None else noise_split(arm, runs),
        )

    detail = JudgedDetail(
        control=arm_detail("control", control),
        treatment=arm_detail("treatment", treatment),
        judge=EffectSummary(**r.judge.effect_fields()),
        human=EffectSummary(**r.human.effect_fields()),
        width_ratio=r.width_ratio,
        bias_difference=Difference.of(bias_difference(control, treatment, alpha)),
        labelled_share_difference=Difference.of(
            labelled_share_difference(control, treatment, alpha)
        ),
    )
    return r.ppi, detail
