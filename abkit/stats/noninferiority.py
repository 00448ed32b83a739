"""One-sided non-inferiority test for guardrail metrics.

A guardrail passes when the data rule out harm larger than the margin δ.  With
"higher is better" the hypotheses are H0: Δ ≤ −δ vs H1: Δ > −δ, tested with
T = (Δ̂ + δ)/SE; with "lower is better" they are H0: Δ ≥ δ vs H1: Δ < δ, with
T = (δ − Δ̂)/SE; p = P(T_ref ≥ T), T_ref ~ t(ν) or N(0, 1)
(Schuirmann 1987; Wellek, Testing Statistical Hypotheses of Equivalence and
Noninferiority, 2nd ed., ch. 2).  A relative margin is tested on the lift scale
with the lift's delta-method SE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abkit.stats.distributions import Reference

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class NonInferiority:
    """Outcome of a guardrail check.

    ``bound`` is the one-sided (1 − α) confidence bound on the harmful side: the
    guardrail passes when it lies on the safe side of the margin, fails when even
    the opposite one-sided bound lies beyond the margin (harm larger than δ is
    established), and is inconclusive otherwise.

    Parameters
    ----------
    margin : float
        δ > 0, the largest harm accepted.
    scale : str
        "absolute" (metric units) or "relative" (a lift).
    statistic : float
        T = (Δ̂ + δ)/SE, or (δ − Δ̂)/SE when lower is better: the distance from the
        harmful margin in standard errors, positive on the safe side.
    p_value : float
        P(T_ref ≥ T), the one-sided p-value of H0 "harm at least δ".
    bound : float
        The one-sided (1 − α) confidence bound on the harmful side.
    verdict : str
        "pass", "fail" or "inconclusive".

    Examples
    --------
    >>> from abkit.stats.noninferiority import noninferiority_test
    >>> noninferiority_test(2.0, 0.4, margin=1.0, higher_is_better=False, alpha=0.05).verdict
    'fail'
    """

    margin: float
    scale: str  # "absolute" or "relative"
    statistic: float
    p_value: float
    bound: float
    verdict: str


def noninferiority_test(
    estimate: float,
    se: float,
    margin: float,
    higher_is_better: bool,
    alpha: float,
    df: float = math.inf,
    scale: str = "absolute",
) -> NonInferiority:
    """Test that the effect is not worse than ``margin`` (a positive number).

    Higher is better: H0 Δ ≤ −δ against H1 Δ > −δ, T = (Δ̂ + δ)/SE; lower is better:
    H0 Δ ≥ δ against H1 Δ < δ, T = (δ − Δ̂)/SE; p = P(T_ref ≥ T) with T_ref ~ t(df)
    or N(0, 1).  The guardrail passes when p < α, which is when the one-sided
    (1 − α) bound Δ̂ ∓ q_{1−α}·SE lies on the safe side of the margin; it fails when
    the opposite bound Δ̂ ± q_{1−α}·SE lies beyond it; otherwise it is inconclusive.

    Parameters
    ----------
    estimate : float
        Δ̂, the estimated effect (treatment − control, or the lift for a relative
        margin).
    se : float
        Its standard error.
    margin : float
        δ > 0, on the scale of ``estimate``.
    higher_is_better : bool
        The direction in which the metric improves.
    alpha : float
        The one-sided level.
    df : float, default inf
        Degrees of freedom of the t reference; inf for the normal.
    scale : str, default "absolute"
        Recorded in the result: "absolute" or "relative".

    Returns
    -------
    NonInferiority
        Inconclusive with NaN numbers when ``se`` is not positive or the estimate
        is not finite.

    Raises
    ------
    ValueError
        When ``margin`` is not positive.

    References
    ----------
    .. [1] D. J. Schuirmann, "A comparison of the two one-sided tests procedure and
       the power approach for assessing the equivalence of average
       bioavailability", Journal of Pharmacokinetics and Biopharmaceutics 15,
       657–680, 1987.
    .. [2] S. Wellek, *Testing Statistical Hypotheses of Equivalence and
       Noninferiority*, 2nd ed., Chapman & Hall/CRC, 2010, ch. 2.

    Examples
    --------
    A harm of 0.2 ± 0.5 (SE) against a margin of 1.5: p = P(Z ≥ (−0.2 + 1.5)/0.5).

    >>> from scipy import stats
    >>> from abkit.stats.noninferiority import noninferiority_test
    >>> r = noninferiority_test(-0.2, 0.5, margin=1.5, higher_is_better=True, alpha=0.05)
    >>> r.verdict, round(r.statistic, 4), round(r.p_value, 4), round(r.bound, 4)
    ('pass', 2.6, 0.0047, -1.0224)
    >>> round(float(stats.norm.sf((-0.2 + 1.5) / 0.5)), 4)
    0.0047
    >>> noninferiority_test(0.5, 0.6, margin=1.0, higher_is_better=False, alpha=0.05).verdict
    'inconclusive'
    """
    if margin <= 0:
        raise ValueError("a non-inferiority margin must be positive")
    if not (se > 0) or not math.isfinite(estimate):
        return NonInferiority(margin, scale, math.nan, math.nan, math.nan, INCONCLUSIVE)
    ref = Reference(df)
    q = float(ref.ppf(1.0 - alpha))
    sign = 1.0 if higher_is_better else -1.0
    # distance of the estimate from the harmful margin, positive on the safe side
    statistic = sign * (estimate + sign * margin) / se
    p_value = float(ref.sf(statistic))
    harmful_bound = estimate - sign * q * se
    safe_bound = estimate + sign * q * se
    if p_value < alpha:
        verdict = PASS
    elif sign * (safe_bound + sign * margin) < 0:
        verdict = FAIL
    else:
        verdict = INCONCLUSIVE
    return NonInferiority(margin, scale, statistic, p_value, harmful_bound, verdict)
