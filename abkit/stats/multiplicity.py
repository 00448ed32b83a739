"""Multiple-comparison adjustment of p-values across treatments.

Holm (1979) step-down controls the family-wise error rate; Benjamini & Hochberg
(1995) step-up controls the false discovery rate.  NaN p-values are left NaN and
do not count towards the family size.
"""

from __future__ import annotations

import numpy as np

from abkit.options import Correction, choices

METHODS = choices(Correction)


def adjust_pvalues(p_values: list[float] | np.ndarray, method: Correction = "holm") -> np.ndarray:
    """Adjusted p-values in the input order.

    With p_(1) ≤ … ≤ p_(m) the m non-NaN p-values sorted:

    Holm: p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)).
    BH:   p̃_(i) = min_{j ≥ i} min(1, m·p_(j)/j).

    Rejecting where p̃ ≤ α controls the family-wise error rate (Holm) or the false
    discovery rate (Benjamini–Hochberg, for independent or positively dependent
    tests) at α.

    Parameters
    ----------
    p_values : list of float or numpy.ndarray
        One p-value per comparison; NaN is left NaN and not counted in m.
    method : {"holm", "bh", "none"}, default "holm"
        The correction; "none" returns the p-values unchanged.

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the order of ``p_values``.

    Raises
    ------
    ValueError
        For an unknown ``method``.

    References
    ----------
    .. [1] S. Holm, "A simple sequentially rejective multiple test procedure",
       Scandinavian Journal of Statistics 6, 65–70, 1979.
    .. [2] Y. Benjamini and Y. Hochberg, "Controlling the false discovery rate: a
       practical and powerful approach to multiple testing", Journal of the Royal
       Statistical Society, Series B 57, 289–300, 1995.

    Examples
    --------
    The same values as statsmodels' ``multipletests`` (``"holm"``, ``"fdr_bh"``) on
    the non-NaN p-values:

    >>> from statsmodels.stats.multitest import multipletests
    >>> from abkit.stats.multiplicity import adjust_pvalues
    >>> p = [0.01, 0.04, 0.03, float("nan"), 0.005]
    >>> adjust_pvalues(p, "holm").round(4).tolist()
    [0.03, 0.06, 0.06, nan, 0.02]
    >>> adjust_pvalues(p, "bh").round(4).tolist()
    [0.02, 0.04, 0.04, nan, 0.02]
    >>> multipletests([0.01, 0.04, 0.03, 0.005], method="holm")[1].round(4).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    if method not in METHODS:
        raise ValueError(f"unknown correction '{method}'; use one of {', '.join(METHODS)}")
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0 or method == "none":
        out[ok] = q
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    ranks = np.arange(1, m + 1)
    if method == "holm":
        adjusted = np.maximum.accumulate(np.minimum(1.0, (m - ranks + 1) * ranked))
    else:
        adjusted = np.minimum.accumulate(np.minimum(1.0, m * ranked / ranks)[::-1])[::-1]
    back = np.empty_like(adjusted)
    back[order] = adjusted
    out[ok] = back
    return out
