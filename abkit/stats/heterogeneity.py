"""Does the effect differ between segments? Cochran's Q test of homogeneity.

Segments are disjoint sets of randomised units, so their effect estimates Δ_s are
independent, each with a sampling variance v_s.  Under a common effect

    Q = Σ_s w_s (Δ_s − Δ̄)²,  w_s = 1/v_s,  Δ̄ = Σ w_s Δ_s / Σ w_s,

is χ² with S − 1 degrees of freedom (Cochran, "The combination of estimates from
different experiments", Biometrics 10, 1954), the interaction test of a
treatment × segment model with segment-specific variances.  I² = max(0, (Q − df)/Q)
is the share of the spread beyond chance (Higgins & Thompson, Stat. Med. 21, 2002).
A small p says the effect differs between segments; a large one says the differences
seen are what noise alone produces — the reading a per-segment table invites.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

METHOD = "Cochran's Q test of a common effect across segments (chi-square, S - 1 df)"


@dataclass(frozen=True)
class Heterogeneity:
    method: str
    q: float
    df: int
    p_value: float
    i2: float
    common_effect: float  # the inverse-variance weighted effect Δ̄


def cochran_q(effects: np.ndarray, variances: np.ndarray) -> Heterogeneity:
    """Q, its χ² p-value and I² over the segments with a finite effect and a positive
    variance (NaN when fewer than two remain)."""
    effects = np.asarray(effects, dtype=float)
    variances = np.asarray(variances, dtype=float)
    ok = np.isfinite(effects) & np.isfinite(variances) & (variances > 0)
    if ok.sum() < 2:
        return Heterogeneity(METHOD, math.nan, 0, math.nan, math.nan, math.nan)
    w = 1.0 / variances[ok]
    common = float((w * effects[ok]).sum() / w.sum())
    q = float((w * (effects[ok] - common) ** 2).sum())
    df = int(ok.sum() - 1)
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return Heterogeneity(METHOD, q, df, float(st.chi2.sf(q, df)), i2, common)
