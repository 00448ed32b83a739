"""Sample-ratio mismatch (SRM) check.

Pearson's χ² goodness-of-fit of the observed unit counts per variant against the
expected allocation; a p-value below 0.001 is the conventional alarm (Fabijan et
al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from abkit.wording import p_phrase

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    observed: dict[str, int]
    expected_share: dict[str, float]
    statistic: float
    p_value: float
    threshold: float

    @property
    def mismatch(self) -> bool:
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
    """χ² = Σ (O_v − E_v)²/E_v with E_v = N·share_v, df = (variants − 1)."""
    names = list(expected_share)
    counts = np.array([observed.get(v, 0) for v in names], dtype=float)
    shares = np.array([expected_share[v] for v in names], dtype=float)
    shares = shares / shares.sum()
    total = counts.sum()
    if total == 0 or len(names) < 2:
        stat = p = math.nan
    else:
        stat, p = st.chisquare(counts, total * shares)
    return SrmResult(
        observed={v: int(observed.get(v, 0)) for v in names},
        expected_share=dict(zip(names, shares.tolist(), strict=True)),
        statistic=float(stat),
        p_value=float(p),
        threshold=threshold,
    )
