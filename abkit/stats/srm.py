"""Sample-ratio mismatch (SRM) check.

Pearson's χ² goodness-of-fit of the observed unit counts per variant against the
expected allocation; a p-value below 0.001 is the conventional alarm (Fabijan et
al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abkit.stats.distributions import chisquare
from abkit.wording import p_phrase

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """The outcome of the sample-ratio check (:func:`srm_test`).

    Parameters
    ----------
    observed : dict of str to int
        Units counted per variant.
    expected_share : dict of str to float
        The planned allocation, normalised to sum to 1.
    statistic : float
        Pearson's χ² = Σ (O_v − E_v)²/E_v.
    p_value : float
        P(χ²_{V−1} ≥ statistic); NaN without units or with fewer than two variants.
    threshold : float
        The alarm level (0.001 by default).

    Examples
    --------
    >>> from abkit.stats.srm import srm_test
    >>> srm_test({"control": 5050, "treatment": 4800}, {"control": 0.5, "treatment": 0.5})
    Sample ratio ok: chi-square 6.35, p = 0.0118 (alarm below 0.001)
      control: 5,050 units (51.3 % observed, 50.0 % expected)
      treatment: 4,800 units (48.7 % observed, 50.0 % expected)
    """

    observed: dict[str, int]
    expected_share: dict[str, float]
    statistic: float
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
        """Whether the p-value is below the alarm threshold."""
        return bool(self.p_value < self.threshold)

    def _lines(self) -> tuple[str, list[str]]:
        total = sum(self.observed.values())
        head = (
            f"Sample ratio {'MISMATCH' if self.mismatch else 'ok'}: chi-square "
            f"{self.statistic:.3g}, {p_phrase(self.p_value)} (alarm below {self.threshold:g})"
        )
        arms = [
            f"{v}: {n:,} units ({n / total * 100:.1f} % observed, "
            f"{self.expected_share.get(v, math.nan) * 100:.1f} % expected)"
            if total
            else f"{v}: {n:,} units"
            for v, n in self.observed.items()
        ]
        return head, arms

    def __repr__(self) -> str:
        head, arms = self._lines()
        return "\n".join([head, *(f"  {a}" for a in arms)])

    def _repr_html_(self) -> str:
        from html import escape

        head, arms = self._lines()
        items = "".join(f"<li>{escape(a)}</li>" for a in arms)
        return f"<p><b>{escape(head)}</b></p><ul>{items}</ul>"


def srm_test(
    observed: dict[str, int],
    expected_share: dict[str, float],
    threshold: float = SRM_THRESHOLD,
) -> SrmResult:
    """Pearson's χ² test of the observed unit counts against the planned allocation.

    χ² = Σ (O_v − E_v)²/E_v with E_v = N·share_v, df = (variants − 1).  A p-value
    below ``threshold`` (0.001) raises the alarm: the assignment or the logging lost
    or added units unevenly, and the effect estimates cannot be trusted.

    Parameters
    ----------
    observed : dict of str to int
        Units counted per variant; a variant missing here counts 0.
    expected_share : dict of str to float
        The planned share (or weight) of each variant; normalised to sum to 1.
    threshold : float, default 0.001
        The p-value below which the result is a mismatch.

    Returns
    -------
    SrmResult
        χ², its p-value and the verdict (:attr:`SrmResult.mismatch`).

    References
    ----------
    .. [1] A. Fabijan, J. Gupchup, S. Gupta, J. Omhover, W. Qin, L. Vermeer and
       P. Dmitriev, "Diagnosing Sample Ratio Mismatch in Online Controlled
       Experiments: A Taxonomy and Rules of Thumb for Practitioners", KDD 2019.

    Examples
    --------
    The statistic and p-value are SciPy's ``chisquare``:

    >>> from scipy import stats
    >>> from abkit.stats.srm import srm_test
    >>> r = srm_test({"control": 5050, "treatment": 4800}, {"control": 0.5, "treatment": 0.5})
    >>> r.mismatch, round(r.statistic, 4), round(r.p_value, 5)
    (False, 6.3452, 0.01177)
    >>> round(float(stats.chisquare([5050, 4800]).pvalue), 5)
    0.01177
    """
    names = list(expected_share)
    counts = np.array([observed.get(v, 0) for v in names], dtype=float)
    shares = np.array([expected_share[v] for v in names], dtype=float)
    shares = shares / shares.sum()
    total = counts.sum()
    if total == 0 or len(names) < 2:
        stat = p = math.nan
    else:
        stat, p = chisquare(counts, total * shares)
    return SrmResult(
        observed={v: int(observed.get(v, 0)) for v in names},
        expected_share=dict(zip(names, shares.tolist(), strict=True)),
        statistic=float(stat),
        p_value=float(p),
        threshold=threshold,
    )
