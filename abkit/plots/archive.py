"""The plot of ``abkit archive show``: a metric's past lifts, raw with their intervals
and shrunk toward the prior fitted to them (the prior's mean and spread as a band)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from abkit.stats.empirical_bayes import FittedPrior, shrink

if TYPE_CHECKING:
    import polars as pl

Z = 1.959963984540054


def past_lifts_figure(metric: str, history: pl.DataFrame, fitted: FittedPrior) -> Any:
    """A matplotlib Figure: one row per past result, the raw lift and its 95 % interval
    (grey) and the shrunk lift (dot), with the prior's mean ± its spread shaded.

    Parameters
    ----------
    metric : str
        The metric's name (the title).
    history : polars.DataFrame
        Its archive rows (``experiment``, ``variant``, ``log_ratio``, ``log_ratio_se``).
    fitted : FittedPrior
        The prior fitted to them.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import polars as pl
    >>> from abkit.plots.archive import past_lifts_figure
    >>> from abkit.stats.empirical_bayes import fit_prior
    >>> h = pl.DataFrame({"experiment": ["a", "b"], "variant": ["v2", "v2"],
    ...                   "log_ratio": [0.05, -0.01], "log_ratio_se": [0.02, 0.02]})
    >>> fig = past_lifts_figure("share_rate", h, fit_prior(h["log_ratio"], h["log_ratio_se"]))
    >>> len(fig.axes[0].get_yticklabels())
    2
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = history["log_ratio"].to_numpy().astype(float)
    s = history["log_ratio_se"].to_numpy().astype(float)
    shrunk = shrink(y, s, fitted).mean
    labels = [f"{e} / {v}" for e, v in zip(history["experiment"], history["variant"], strict=True)]
    rows = np.arange(len(y))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.32 * len(y)))
    if not fitted.fallback and math.isfinite(fitted.sd):
        lo, hi = math.expm1(fitted.mean - fitted.sd), math.expm1(fitted.mean + fitted.sd)
        ax.axvspan(lo * 100, hi * 100, color="#dde8f5", label="prior mean ± spread")
    ax.axvline(0, color="#888888", lw=0.8)
    ax.hlines(rows, np.expm1(y - Z * s) * 100, np.expm1(y + Z * s) * 100, color="#999999", lw=2)
    ax.plot(np.expm1(y) * 100, rows, "|", color="#555555", ms=10, label="raw lift, 95 % interval")
    ax.plot(np.expm1(shrunk) * 100, rows, "o", color="#1f5fa8", ms=5, label="shrunk lift")
    ax.set_yticks(rows, labels)
    ax.set_xlabel("lift (%)")
    ax.set_title(f"{metric}: past lifts — {fitted.note}", fontsize=8, loc="left")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
