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

from abkit.stats.distributions import chi2_sf

METHOD = "Cochran's Q test of a common effect across segments (chi-square, S - 1 df)"


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q test of a common effect across segments (:func:`cochran_q`).

    Parameters
    ----------
    method : str
        The test's name.
    q : float
        Q = Σ_s w_s (Δ_s − Δ̄)².
    df : int
        S − 1 for the S segments used.
    p_value : float
        P(χ²_df ≥ Q).
    i2 : float
        I² = max(0, (Q − df)/Q), the share of the spread beyond chance.
    common_effect : float
        The inverse-variance weighted effect Δ̄.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.heterogeneity import cochran_q
    >>> cochran_q(np.array([0.10, 0.02]), np.array([0.0009, 0.0016])).df
    1
    """

    method: str
    q: float
    df: int
    p_value: float
    i2: float
    common_effect: float  # the inverse-variance weighted effect Δ̄


def cochran_q(effects: np.ndarray, variances: np.ndarray) -> Heterogeneity:
    """Q, its χ² p-value and I² over the segments with a finite effect and a positive
    variance (NaN when fewer than two remain).

    Q = Σ_s w_s (Δ_s − Δ̄)² with w_s = 1/v_s and Δ̄ = Σ w_s Δ_s / Σ w_s, referred to
    χ² with S − 1 degrees of freedom; I² = max(0, (Q − df)/Q).

    Parameters
    ----------
    effects : numpy.ndarray
        Δ_s, the effect estimate of each segment (disjoint sets of units).
    variances : numpy.ndarray
        v_s, the sampling variance (squared standard error) of each.

    Returns
    -------
    Heterogeneity
        Q, df, the p-value, I² and Δ̄.

    References
    ----------
    .. [1] W. G. Cochran, "The combination of estimates from different experiments",
       Biometrics 10, 101–129, 1954.
    .. [2] J. P. T. Higgins and S. G. Thompson, "Quantifying heterogeneity in a
       meta-analysis", Statistics in Medicine 21, 1539–1558, 2002.

    Examples
    --------
    Q, I² and Δ̄ are the fixed-effect meta-analysis of statsmodels'
    ``combine_effects``:

    >>> import numpy as np
    >>> from statsmodels.stats.meta_analysis import combine_effects
    >>> from abkit.stats.heterogeneity import cochran_q
    >>> effects = np.array([0.10, 0.02, 0.07])
    >>> variances = np.array([0.0009, 0.0016, 0.0025])
    >>> h = cochran_q(effects, variances)
    >>> round(h.q, 4), h.df, round(h.p_value, 4), round(h.i2, 4), round(h.common_effect, 4)
    (2.5605, 2, 0.278, 0.2189, 0.071)
    >>> meta = combine_effects(effects, variances)
    >>> round(float(meta.q), 4), round(float(meta.i2), 4)
    (2.5605, 0.2189)
    """
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
    return Heterogeneity(METHOD, q, df, float(chi2_sf(q, df)), i2, common)
