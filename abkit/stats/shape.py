"""Shape of the session-depth distribution: the "power-user problem" made visible.

A mean of AI interactions per session hides whether most sessions have one
interaction and a minority twenty or more.  This module summarises the histogram
of interactions per session and flags bimodality.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

POWER_DEPTH = 20
_MIN_PEAK_SHARE = 0.05
_DIP_RATIO = 0.5


@dataclass(frozen=True)
class DepthShape:
    """Summary of one arm's sessions.

    ``bins`` are log2 bins of depth ≥ 1 (1, 2–3, 4–7, …) with the share of
    sessions with at least one interaction in each; ``share_zero`` is the share of
    sessions with none.
    """

    sessions: int
    mean: float
    median: float
    share_zero: float
    share_one: float
    share_power: float
    bins: tuple[tuple[str, float], ...]
    bimodal: bool
    histogram: tuple[tuple[int, int], ...] = ()  # (depth, sessions)

    def to_dict(self) -> dict[str, object]:
        return {
            "sessions": self.sessions,
            "mean": self.mean,
            "median": self.median,
            "share_zero": self.share_zero,
            "share_one": self.share_one,
            f"share_{POWER_DEPTH}_plus": self.share_power,
            "log2_bins": [{"depth": label, "share": share} for label, share in self.bins],
            "bimodal": self.bimodal,
            "histogram": {
                "depth": [d for d, _ in self.histogram],
                "sessions": [s for _, s in self.histogram],
            },
        }


def _log2_bins(depth: np.ndarray, count: np.ndarray) -> tuple[list[str], np.ndarray]:
    positive = depth >= 1
    if not positive.any():
        return [], np.zeros(0)
    index = np.floor(np.log2(depth[positive])).astype(int)
    totals = np.bincount(index, weights=count[positive])
    labels = ["1" if k == 0 else f"{2**k}-{2 ** (k + 1) - 1}" for k in range(totals.size)]
    return labels, totals / totals.sum()


def is_bimodal(shares: np.ndarray) -> bool:
    """Two peaks, each ≥ 5 % of sessions, with a trough below half the smaller peak.

    Applied to log2-binned depths, where a unimodal (geometric, log-normal) depth
    distribution has a single peak; a "one-and-done plus power users" mixture
    shows a peak at 1 and a second one at high depth.
    """
    n = shares.size
    if n < 3:
        return False
    padded = np.concatenate(([-np.inf], shares, [-np.inf]))
    peaks = [
        i
        for i in range(n)
        if padded[i + 1] >= _MIN_PEAK_SHARE
        and padded[i + 1] > padded[i]
        and padded[i + 1] >= padded[i + 2]
    ]
    for a, b in pairwise(peaks):
        trough = shares[a + 1 : b].min() if b > a + 1 else np.inf
        if trough < _DIP_RATIO * min(shares[a], shares[b]):
            return True
    return False


def depth_shape(depth: np.ndarray, sessions: np.ndarray) -> DepthShape:
    """Shape statistics from a histogram: ``sessions[i]`` sessions had ``depth[i]``
    interactions."""
    depth = np.asarray(depth, dtype=float)
    count = np.asarray(sessions, dtype=float)
    total = count.sum()
    if total == 0:
        nan = float("nan")
        return DepthShape(0, nan, nan, nan, nan, nan, (), False)
    order = np.argsort(depth)
    depth, count = depth[order], count[order]
    cumulative = np.cumsum(count)
    median = float(depth[np.searchsorted(cumulative, total / 2.0)])
    labels, shares = _log2_bins(depth, count)
    return DepthShape(
        sessions=int(total),
        mean=float((depth * count).sum() / total),
        median=median,
        share_zero=float(count[depth == 0].sum() / total),
        share_one=float(count[depth == 1].sum() / total),
        share_power=float(count[depth >= POWER_DEPTH].sum() / total),
        bins=tuple(zip(labels, shares.tolist(), strict=True)),
        bimodal=is_bimodal(shares),
        histogram=tuple(zip(depth.astype(int).tolist(), count.astype(int).tolist(), strict=True)),
    )
