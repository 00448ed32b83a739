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

    Holm: p̃_(i) = max_{j ≤ i} min(1, (m − j + 1)·p_(j)).
    BH:   p̃_(i) = min_{j ≥ i} min(1, m·p_(j)/j).
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
