"""Shape of the session-depth distribution: the "power-user problem" made visible.

A mean of AI interactions per session hides whether most sessions have one
interaction and a minority twenty or more.  This module summarises the histogram
of interactions per session and flags bimodality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

POWER_DEPTH = 20
_MIN_PEAK_SHARE = 0.05
_DIP_RATIO = 0.5


@dataclass(frozen=True)
class DepthBin:
    """One log2 bin of session depth.

    Parameters
    ----------
    depth : str
        The bin's depths: "1", "2-3", "4-7", ...
    share : float
        Share of the sessions with at least one interaction that fall in it.
    """

    depth: str
    share: float


@dataclass(frozen=True)
class DepthHistogram:
    """Sessions by exact depth, as two parallel columns.

    Parameters
    ----------
    depth : tuple of int
        Interactions per session, ascending.
    sessions : tuple of int
        Sessions with that many interactions.
    """

    depth: tuple[int, ...] = ()
    sessions: tuple[int, ...] = ()


@dataclass(frozen=True)
class DepthShape:
    """Summary of one arm's sessions.

    Parameters
    ----------
    sessions : int
        Sessions of the arm.
    mean, median : float
        Mean and median interactions per session (NaN without sessions).
    share_zero, share_one : float
        Share of sessions with no interaction and with exactly one.
    share_power : float
        Share of sessions with ``POWER_DEPTH`` (20) interactions or more; written as
        ``share_20_plus``.
    bins : tuple of DepthBin
        Log2 bins of depth ≥ 1 (1, 2–3, 4–7, …) with the share of sessions with at
        least one interaction in each; written as ``log2_bins``.
    bimodal : bool
        Two peaks in the log2 bins (:func:`is_bimodal`): one-and-done sessions beside
        power users.
    histogram : DepthHistogram
        Sessions by exact depth.
    """

    sessions: int
    mean: float
    median: float
    share_zero: float
    share_one: float
    share_power: float = field(metadata={"json": f"share_{POWER_DEPTH}_plus"})
    bins: tuple[DepthBin, ...] = field(metadata={"json": "log2_bins"})
    bimodal: bool
    histogram: DepthHistogram = DepthHistogram()


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

    A peak is a bin with share ≥ 0.05 above its left neighbour and at least its
    right one; two consecutive peaks a < b make the shares bimodal when the lowest
    share between them is below 0.5·min(share_a, share_b).

    Parameters
    ----------
    shares : numpy.ndarray
        The share of sessions in each log2 bin of depth (1, 2–3, 4–7, …).

    Returns
    -------
    bool
        True for two such peaks; False with fewer than 3 bins.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.shape import is_bimodal
    >>> is_bimodal(np.array([0.45, 0.15, 0.05, 0.05, 0.30]))
    True
    >>> is_bimodal(np.array([0.5, 0.3, 0.15, 0.05]))
    False
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
    interactions.

    Parameters
    ----------
    depth : numpy.ndarray
        Interactions per session (distinct values, any order).
    sessions : numpy.ndarray
        The number of sessions with each depth.

    Returns
    -------
    DepthShape
        Mean and median depth, the shares with 0, 1 and ≥ 20 interactions, the
        log2 bins of depth ≥ 1, bimodality (:func:`is_bimodal`) and the histogram;
        NaN statistics and no bins without sessions.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.shape import depth_shape
    >>> shape = depth_shape(np.array([0, 1, 2, 3, 5, 24]), np.array([20, 40, 15, 10, 5, 10]))
    >>> shape.sessions, shape.mean, shape.median, shape.share_zero, shape.share_power
    (100, 3.65, 1.0, 0.2, 0.1)
    >>> [(b.depth, b.share) for b in shape.bins]
    [('1', 0.5), ('2-3', 0.3125), ('4-7', 0.0625), ('8-15', 0.0), ('16-31', 0.125)]
    >>> shape.bimodal
    True
    """
    depth = np.asarray(depth, dtype=float)
    count = np.asarray(sessions, dtype=float)
    total = count.sum()
    if total == 0:
        nan = float("nan")
        return DepthShape(0, nan, nan, nan, nan, nan, (), False, DepthHistogram())
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
        bins=tuple(DepthBin(label, s) for label, s in zip(labels, shares.tolist(), strict=True)),
        bimodal=is_bimodal(shares),
        histogram=DepthHistogram(
            tuple(depth.astype(int).tolist()), tuple(count.astype(int).tolist())
        ),
    )
