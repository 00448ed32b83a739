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

from scipy import stats as st

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
    """Test that the effect is not worse than ``margin`` (a positive number)."""
    if margin <= 0:
        raise ValueError("a non-inferiority margin must be positive")
    if not (se > 0) or not math.isfinite(estimate):
        return NonInferiority(margin, scale, math.nan, math.nan, math.nan, INCONCLUSIVE)
    ref = st.norm if math.isinf(df) else st.t(df)
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
