"""The Bayesian reading of a result as one line, the same in every renderer (text,
Markdown, HTML through :func:`abkit.report.format.detail_sections`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from abkit.wording import pct

if TYPE_CHECKING:
    import polars as pl

    from abkit.result import MetricResult
    from abkit.stats.empirical_bayes import FittedPrior


def _share(p: float) -> str:
    return "n/a" if not math.isfinite(p) else f"{p * 100:.1f} %"


def _loss(v: float) -> str:
    if math.isinf(v):
        return "unbounded"
    return "n/a" if not math.isfinite(v) else f"{v * 100:.2f} %"


def bayesian_line(r: MetricResult) -> str | None:
    """The posterior lift beside the raw one, the chance to win, the expected losses,
    the chance to be the best arm (several treatments), a guardrail's P(harm beyond the
    margin), the prior and the Bayesian decision with its rule; None without a reading.

    Examples
    --------
    >>> import numpy as np, polars as pl, abkit
    >>> from abkit.report.bayesian import bayesian_line
    >>> rng = np.random.default_rng(1)
    >>> variant = ["control", "treatment"] * 2000
    >>> rate = np.where(np.array(variant) == "treatment", 0.30, 0.22)
    >>> units = pl.DataFrame({"user_id": range(4000), "variant": variant,
    ...                       "converted": (rng.random(4000) < rate).astype(int)})
    >>> (r,) = abkit.analyze(units, bayesian=True).results
    >>> print(bayesian_line(r))  # doctest: +NORMALIZE_WHITESPACE
    posterior lift +37.75 % [+24.04 %, +52.54 %] (raw +38.96 %, pulled 3 % of the way to
    the prior); chance to win 100.0 %; expected loss if shipped 0.00 %, if not 37.75 %;
    default prior N(0, 0.3²) of log(T/C) → better (chance to win ≥ 0.95 and expected loss
    ≤ 0.25 % of control)
    """
    b = r.bayesian
    if b is None:
        return None
    rel = b.relative
    raw = f"raw {pct(b.raw)}"
    if math.isfinite(b.shrinkage) and b.shrinkage > 0:
        raw += f", pulled {b.shrinkage * 100:.0f} % of the way to the prior"
    parts = [
        f"posterior lift {pct(rel.mean)} [{pct(rel.interval[0])}, {pct(rel.interval[1])}] ({raw})"
    ]
    parts.append(f"chance to win {_share(rel.chance_to_win)}")
    parts.append(f"expected loss if shipped {_loss(rel.risk_ship)}, if not {_loss(rel.risk_keep)}")
    if b.chance_to_be_best is not None and b.loss_if_shipped is not None:
        parts.append(
            f"chance to be the best arm {_share(b.chance_to_be_best)} "
            f"(expected loss against the best {_loss(b.loss_if_shipped)})"
        )
    if b.harm is not None:
        unit = "" if b.harm.scale == "absolute" else " of control"
        margin = f"{b.harm.margin:g}" if b.harm.scale == "absolute" else pct(b.harm.margin)
        parts.append(f"P(harm beyond {margin.lstrip('+')}{unit}) {_share(b.harm.probability)}")
    model = b.model if b.prior.source == "none" else b.prior.note
    if b.prior.source == "none" and b.prior.note:
        model += f", {b.prior.note}"
    d = b.decision
    return "; ".join(parts) + f"; {model} → {d.outcome} ({d.method})"


def archive_lines(metric: str, history: pl.DataFrame, fitted: FittedPrior) -> list[str]:
    """``abkit archive show``: the prior fitted to a metric's past experiments (its fit,
    count or fallback) and each past lift raw and shrunk toward it, side by side.

    Parameters
    ----------
    metric : str
        The metric's name.
    history : polars.DataFrame
        Its rows of the archive (:meth:`abkit.archive.Archive.history`).
    fitted : FittedPrior
        The prior fitted to them (:meth:`abkit.archive.Archive.prior`).

    Returns
    -------
    list of str

    Examples
    --------
    >>> import polars as pl
    >>> from abkit.report.bayesian import archive_lines
    >>> from abkit.stats.empirical_bayes import fit_prior
    >>> history = pl.DataFrame({"experiment": ["a", "b"], "variant": ["v2", "v2"],
    ...     "log_ratio": [0.05, -0.01], "log_ratio_se": [0.02, 0.02],
    ...     "decision": ["better", "no significant difference"]})
    >>> fitted = fit_prior(history["log_ratio"], history["log_ratio_se"])
    >>> print("\\n".join(archive_lines("share_rate", history, fitted)))  # doctest: +ELLIPSIS
    share_rate: 2 past result(s) in 2 experiment(s)
    prior: only 2 past experiments (fewer than 10): the default prior N(0, 0.3²) is used
    experiment / variant      lift raw [95 % interval]       shrunk    decision
      a / v2                  +5.13 % [+1.09 %, +9.33 %]     +5.10 %   better
      b / v2                  -1.00 % [-4.80 %, +2.96 %]     -0.99 %   no significant difference
    """
    import numpy as np

    from abkit.stats.empirical_bayes import shrink

    y = history["log_ratio"].to_numpy().astype(float)
    s = history["log_ratio_se"].to_numpy().astype(float)
    shrunk = np.expm1(shrink(y, s, fitted).mean)
    lines = [
        f"{metric}: {history.height} past result(s) in "
        f"{history['experiment'].n_unique()} experiment(s)",
        f"prior: {fitted.note}",
    ]
    if not fitted.fallback:
        lines.append(
            f"  typical lift {pct(math.expm1(fitted.mean))} (standard error of the log "
            f"mean {fitted.mean_se:.3g}); spread of true log lifts between experiments "
            f"{fitted.sd:.3g}{f', t with {fitted.df:.3g} df' if fitted.family == 't' else ''}"
        )
    lines.append(
        f"{'experiment / variant':<25} {'lift raw [95 % interval]':<30} {'shrunk':<9} decision"
    )
    for i, row in enumerate(history.iter_rows(named=True)):
        lo, hi = y[i] - 1.959963984540054 * s[i], y[i] + 1.959963984540054 * s[i]
        raw = f"{pct(math.expm1(y[i]))} [{pct(math.expm1(lo))}, {pct(math.expm1(hi))}]"
        name = f"{row['experiment']} / {row['variant']}"
        lines.append(f"  {name:<23} {raw:<30} {pct(float(shrunk[i])):<9} {row['decision']}")
    return lines
