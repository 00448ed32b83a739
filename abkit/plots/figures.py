"""The figures, each drawn from an :class:`AnalysisResult` alone (a saved results.json
read back with ``AnalysisResult.from_dict`` redraws them without the export).  Every
function returns a matplotlib Figure; colours and fills come from each result's
:class:`~abkit.analysis.decision.Decision`, as in the tables."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from abkit.plots.style import (
    BETTER,
    CONTROL,
    NEUTRAL,
    WIDTH,
    WORSE,
    new_figure,
    styled,
    variant_colours,
)
from abkit.report.format import conf_label, interval, is_rate, num, period_name
from abkit.result import AccountDetail, AccountQuantileDetail, TimeToValueDetail
from abkit.stats.binomial import wilson_interval
from abkit.wording import pval

if TYPE_CHECKING:
    from abkit.result import AnalysisResult as Result
    from abkit.result import MetricResult

_TONE_COLOURS = {"good": BETTER, "bad": WORSE, "neutral": NEUTRAL}


def _arr(values: Sequence[float]) -> np.ndarray:
    """A float array of a result's numbers (NaN where one is undefined)."""
    return np.array(values, dtype=float)


def _log_ticks(ax: Any, which: str, fmt: str) -> None:
    """Log scale labelled 1, 2, 5, 10, 20, 50 … in plain numbers (not 10^k)."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(StrMethodFormatter(fmt))
    axis.set_minor_formatter(NullFormatter())


def _title(d: Result, what: str) -> str:
    return f"{d.name}: {what}"


def _colours(d: Result) -> dict[str, str]:
    return variant_colours(list(d.variants), d.control)


BAYES = "#7b3fa0"  # the Bayesian reading, beside the frequentist interval


@styled
def forest(d: Result) -> Any:
    """Relative effect (lift) with CI for every metric × treatment, zero line, guardrail
    margins.  Colour and fill show each result's decision: filled blue better (or
    guardrail pass), filled orange worse (or guardrail fail), hollow grey anything
    undecided; the decision is written beside each row with the absolute effect."""
    rows = forest_rows(d)
    if not rows:
        raise ValueError("no result has a lift to draw (every metric is not computable)")
    fig, ax = new_figure(height=max(2.5, 0.45 * len(rows) + 1.4))
    labels, decisions = [], []
    for i, r in enumerate(reversed(rows)):
        lo, hi = (100 * v for v in r.relative_ci)
        est = 100 * r.relative_effect
        colour = _TONE_COLOURS[r.decision.tone]
        filled = r.decision.decided
        # under sequential monitoring the fixed-horizon interval is not what decides:
        # drawn thin and dotted, marked †; the deciding interval is written at right
        dagger = not r.fixed_horizon_valid
        style = {"lw": 1.2, "ls": ":"} if dagger else {"lw": 2}
        ax.plot([lo, hi], [i, i], color=colour, solid_capstyle="butt", **style)
        ax.plot(est, i, "o", ms=7, color=colour, mfc=colour if filled else "white", mew=1.5)
        g = r.guardrail
        if g:
            control = r.control_value
            margin = (
                g.margin * 100
                if g.scale == "relative"
                else (100 * g.margin / abs(control) if control else np.nan)
            )
            side = -1 if r.direction == "increase" else 1
            ax.plot([side * margin] * 2, [i - 0.35, i + 0.35], color=WORSE, ls="--", lw=1.2)
        b = r.bayesian
        label = _abs_label(r)
        if b is not None:  # the posterior lift below the row, its own decision at right
            blo, bhi = (100 * v for v in b.relative.interval)
            ax.plot([blo, bhi], [i - 0.22, i - 0.22], color=BAYES, lw=1.2)
            ax.plot(100 * b.relative.mean, i - 0.22, "D", ms=4, color=BAYES)
            label += (
                f"\nBayes: {b.decision.outcome}, P(win) {b.relative.chance_to_win:.1%}, "
                f"loss {b.relative.risk_ship:.2%}"
            )
        decisions.append(label)
        guard = " (guardrail)" if g else ""
        labels.append(f"{r.metric}{guard}{' †' if dagger else ''}\n{r.variant}")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    # the decision and absolute effect as right-hand tick labels: the layout makes room
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(range(len(rows)), decisions, fontsize=8, color="#333333")
    right.tick_params(length=0)
    right.grid(False)
    right.spines["right"].set_visible(False)
    fig.get_layout_engine().set(w_pad=0.12)  # room for the last character of the labels
    ax.set_xlabel("relative effect vs control (%), with confidence interval")
    conf = f"{1 - d.alpha:.0%}"
    ax.set_title(_title(d, f"effects with {conf} confidence intervals"), loc="left")
    legend = (
        "filled blue: better or guardrail pass · filled orange: worse or guardrail fail · "
        "hollow: undecided\ndashed: guardrail margin · right: decision, absolute effect [CI]"
    )
    if any(r.bayesian is not None for r in rows):
        legend += (
            "\npurple diamond: Bayesian posterior lift and credible interval; its own "
            "decision, chance to win and expected loss if shipped at right"
        )
    if any(not r.fixed_horizon_valid for r in rows):
        legend += (
            "\n† dotted: fixed-horizon interval, not valid under repeated looks; the decision "
            "rests on the sequential interval written at right"
        )
    fig.supxlabel(legend, fontsize=7, color="#555555")
    return fig


def forest_rows(d: Result) -> list[MetricResult]:
    """The results a forest plot can draw: those with a finite lift."""
    return [r for r in d.results if math.isfinite(r.relative_effect)]


def _abs_label(r: MetricResult) -> str:
    """'better: +0.012 [+0.004, +0.020]': the decision with the interval it rests on
    (a sequential decision's own interval, named, in place of the fixed-horizon one)."""
    t, d = r.metric_type, r.decision
    if r.sequential is not None and d.basis.startswith("sequential"):
        return f"{d.label}: {num(r.effect, t, True)}, {r.sequential.interval} {interval(d.ci, t)}"
    return f"{d.label}: {num(r.effect, t, True)} {interval(r.ci, t)}"


@styled
def retention(d: Result, max_day: int = 30) -> Any:
    """Share of eligible units active on each day after assignment, with 95 % Wilson
    bands (Wilson 1927)."""
    curve = d.retention_curve
    fig, ax = new_figure()
    colours = _colours(d)
    for variant, c in curve.items():
        day = np.array(c.day)
        keep = day <= max_day
        n = np.array(c.eligible, dtype=float)[keep]
        k = np.array(c.active, dtype=float)[keep]
        p = k / n
        low, high = wilson_interval(k, n)
        ax.plot(
            day[keep],
            100 * p,
            marker="o",
            ms=3,
            color=colours.get(variant, CONTROL),
            label=f"{variant} (n = {int(n[0]):,} on day 0)",
        )
        ax.fill_between(
            day[keep],
            100 * low,
            100 * high,
            color=colours.get(variant, CONTROL),
            alpha=0.2,
            lw=0,
        )
    _log_ticks(ax, "y", "{x:g} %")
    ax.set_xlabel("days after assignment")
    ax.set_ylabel("units active that day (% of eligible, log scale)")
    ax.set_title(_title(d, "retention curve with 95 % bands (eligible units only)"), loc="left")
    ax.legend()
    return fig


@styled
def session_depth(d: Result, metric: str | None = None) -> Any:
    """Distribution of AI interactions per session by variant (log-scaled shares), with
    the one-interaction share and the 20+ power-user share marked."""
    metric = metric or next(iter(d.session_depth))
    shapes = d.session_depth[metric]
    fig, ax = new_figure()
    colours = _colours(d)
    for variant, s in shapes.items():
        depth = np.array(s.histogram.depth)
        sessions = np.array(s.histogram.sessions, dtype=float)
        keep = depth >= 1
        share = sessions[keep] / sessions.sum()
        label = (
            f"{variant}: 1 interaction {100 * s.share_one:.1f} %, 20+ "
            f"{100 * s.share_power:.1f} %" + (" - bimodal" if s.bimodal else "")
        )
        ax.plot(
            depth[keep],
            100 * share,
            drawstyle="steps-mid",
            color=colours.get(variant, CONTROL),
            label=label,
        )
    ax.axvline(20, color=WORSE, ls="--", lw=1)
    ax.annotate(
        "20+ power users",
        xy=(20, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -12),
        textcoords="offset points",
        color=WORSE,
        fontsize=8,
    )
    _log_ticks(ax, "x", "{x:g}")
    _log_ticks(ax, "y", "{x:g} %")
    ax.set_xlabel("AI interactions per session (log scale)")
    ax.set_ylabel("share of sessions (log scale)")
    ax.set_title(_title(d, f"{metric}: interactions per session"), loc="left")
    ax.legend(fontsize=8)
    return fig


def _result(d: Result, metric: str, variant: str | None) -> MetricResult:
    rows = [
        r for r in d.results if r.metric == metric and (variant is None or r.variant == variant)
    ]
    if not rows:
        raise ValueError(
            f"no result for metric '{metric}'" + (f" and variant '{variant}'" if variant else "")
        )
    return rows[0]


@styled
def sequential(d: Result, metric: str, variant: str | None = None) -> Any:
    """Estimate and interval at each look, the fixed-horizon CI at the end for contrast,
    and the look where the decision was taken.  Always-valid intervals (mSPRT, CS) are
    drawn as a band over daily looks; a group-sequential design's repeated intervals
    exist only at its planned looks, so they are drawn as separate bars, unjoined."""
    r = _result(d, metric, variant)
    seq = r.sequential
    assert seq is not None
    looks = seq.looks
    x = np.array([lk.day for lk in looks], dtype=float)
    est = _arr([lk.estimate for lk in looks])
    lo = _arr([lk.ci[0] for lk in looks])
    hi = _arr([lk.ci[1] for lk in looks])
    scale = 100 if is_rate(r.metric_type) else 1
    fig, ax = new_figure()
    colour = _colours(d).get(r.variant, BETTER)
    if seq.interval == "repeated confidence interval":
        ax.errorbar(
            x,
            scale * est,
            yerr=[scale * (est - lo), scale * (hi - est)],
            fmt="o",
            color=colour,
            capsize=4,
            label="estimate and repeated CI at each planned look",
        )
        # the efficacy boundary on the estimate's scale: reject when the estimate is
        # beyond ±c_k·se_k, which is the repeated CI's half-width
        half = (hi - lo) / 2
        for sign in (1, -1):
            ax.plot(
                x,
                sign * scale * half,
                ls="none",
                marker="_",
                ms=14,
                mew=2,
                color=WORSE,
                label="efficacy boundary (±c_k·se_k)" if sign == 1 else None,
            )
    else:
        ax.fill_between(
            x,
            scale * lo,
            scale * hi,
            color=colour,
            alpha=0.2,
            lw=0,
            step="mid" if x.size < 3 else None,
            label=seq.interval,
        )
        ax.plot(x, scale * est, color=colour, marker="o", ms=3, label="estimate")
    if math.isfinite(r.ci[0]):
        ax.errorbar(
            x[-1] + 0.4,
            scale * r.effect,
            yerr=[[scale * (r.effect - r.ci[0])], [scale * (r.ci[1] - r.effect)]],
            fmt="s",
            color="black",
            capsize=4,
            label="fixed-horizon CI (not valid under repeated looks)",
        )
    ax.axhline(0, color="black", lw=0.8)
    check = r.guardrail
    if check is not None and check.scale == "absolute":  # the harmful margin the band is held to
        harmful = check.margin if r.direction == "decrease" else -check.margin
        ax.axhline(scale * harmful, color=WORSE, ls=":", lw=1.2, label="guardrail margin")
    decision = seq.decision
    if decision.outcome != "continue" and decision.look is not None:
        day = next(lk.day for lk in looks if lk.look == decision.look)
        ax.axvline(day, color=_TONE_COLOURS[decision.tone], ls="--", lw=1.2)
        ax.annotate(
            f"{decision.outcome} {decision.at_look}",
            xy=(day, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
        )
    unit = " (percentage points)" if scale == 100 else ""
    ax.set_xlabel("look (day)" if decision.look_unit != "checkpoint" else "checkpoint")
    ax.set_ylabel(f"effect, treatment − control{unit}")
    # a quantile's construction is named at length: wrapped, not cut at the edge
    title = _title(d, f"{metric}, {r.variant}: {seq.method} — {decision.outcome}")
    ax.set_title(textwrap.fill(title, 110), loc="left", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return fig


@styled
def bootstrap(d: Result, metric: str, variant: str | None = None) -> Any:
    """B2B: the account bootstrap distribution of the effect, with the observed effect,
    the randomisation-test interval and zero."""
    r = _result(d, metric, variant)
    b = r.b2b
    assert isinstance(b, AccountDetail | AccountQuantileDetail), f"no bootstrap for '{metric}'"
    assert b.distribution and b.bootstrap and b.randomization, f"no test for '{metric}'"
    edges = np.array(b.distribution.edges)
    counts = np.array(b.distribution.counts, dtype=float)
    scale = 100 if is_rate(r.metric_type) else 1
    fig, ax = new_figure()
    ax.stairs(
        counts / counts.sum(),
        scale * edges,
        fill=True,
        color=NEUTRAL,
        alpha=0.5,
        label=f"bootstrap ({b.bootstrap.resamples:,} account resamples)",
    )
    lo, hi = _arr(b.randomization.ci)
    if math.isfinite(lo) or math.isfinite(hi):
        left, right = ax.get_xlim()
        ax.axvspan(
            scale * lo if math.isfinite(lo) else left,
            scale * hi if math.isfinite(hi) else right,
            color=BETTER,
            alpha=0.12,
            label="randomisation-test interval"
            + ("" if math.isfinite(lo) and math.isfinite(hi) else " (one side unbounded)"),
        )
    ax.axvline(scale * r.effect, color=BETTER, lw=2, label="observed effect")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("effect, treatment − control" + (" (percentage points)" if scale == 100 else ""))
    ax.set_ylabel("share of resamples")
    ax.set_title(_title(d, f"{metric}, {r.variant}: account bootstrap"), loc="left")
    ax.legend(fontsize=8)
    return fig


@styled
def accounts(d: Result, metric: str, variant: str | None = None) -> Any:
    """B2B: one dot per account by arm, area proportional to its size (the metric's
    denominator), with each arm's user-weighted value."""
    r = _result(d, metric, variant)
    b = r.b2b
    assert isinstance(b, AccountDetail | AccountQuantileDetail), f"no accounts for '{metric}'"
    assert b.accounts is not None, f"no test for '{metric}'"
    per = b.accounts
    scale = 100 if is_rate(r.metric_type) else 1
    fig, ax = new_figure()
    colours = _colours(d)
    rng = np.random.default_rng(0)  # fixed jitter: same input, same picture
    names = list(per)
    for i, name in enumerate(names):
        values = _arr(per[name].value)
        sizes = np.array(per[name].size, dtype=float)
        area = 400 * sizes / max(1.0, max(np.nanmax(np.array(per[n].size, float)) for n in names))
        ax.scatter(
            i + rng.uniform(-0.15, 0.15, values.size),
            scale * values,
            s=area + 8,
            color=colours.get(name, CONTROL),
            alpha=0.6,
            edgecolor="white",
        )
        value = r.control_value if name == d.control else r.treatment_value
        ax.plot([i - 0.3, i + 0.3], [scale * value] * 2, color="black", lw=2)
    ax.set_xticks(range(len(names)), [f"{n}\n({len(per[n].value)} accounts)" for n in names])
    ax.set_ylabel(f"{metric} per account" + (" (%)" if scale == 100 else ""))
    ax.set_title(
        _title(d, f"{metric}: accounts by arm (dot area: size; bar: arm value)"), loc="left"
    )
    return fig


@styled
def time_to_value(d: Result, metric: str, variant: str | None = None) -> Any:
    """B2B: Kaplan–Meier curves of the share of accounts that reached value, per arm."""
    r = _result(d, metric, variant)
    assert isinstance(r.b2b, TimeToValueDetail), f"'{metric}' is not a time-to-value metric"
    ttv = r.b2b.time_to_value
    assert ttv is not None, f"no test for '{metric}'"
    fig, ax = new_figure()
    colours = _colours(d)
    for name, curve in ttv.kaplan_meier.items():
        times = np.concatenate([[0.0], curve.times])
        reached = 1 - np.concatenate([[1.0], curve.survival])
        median = ttv.median_days.get(name)
        label = name + (
            f" (median {median:.1f} days)"
            if median is not None and math.isfinite(median)
            else " (median not reached)"
        )
        ax.step(times, 100 * reached, where="post", color=colours.get(name, CONTROL), label=label)
    ax.axvline(
        ttv.horizon_days,
        color=NEUTRAL,
        ls=":",
        lw=1,
        label=f"restricted-mean horizon ({ttv.horizon_days:.1f} days)",
    )
    ax.set_xlabel("days since the account's first assignment")
    ax.set_ylabel("accounts that reached value (%)")
    ax.set_title(
        _title(
            d, f"{metric}: time to value (Kaplan-Meier; log-rank p = {ttv.logrank_p_value:.3f})"
        ),
        loc="left",
    )
    ax.legend(fontsize=8)
    return fig


@styled
def novelty(d: Result, metric: str, variant: str | None = None) -> Any:
    """The lift in each period since assignment with its interval (log scale), and the
    verdict of the trend test: a fading lift is a novelty effect."""
    r = _result(d, metric, variant)
    n = r.novelty
    assert n is not None
    x = np.arange(1, len(n.lift) + 1)
    lift = 100 * _arr(n.lift)
    lo = 100 * _arr([ci[0] for ci in n.lift_ci])
    hi = 100 * _arr([ci[1] for ci in n.lift_ci])
    fig, ax = new_figure()
    colour = _colours(d).get(r.variant, BETTER)
    ax.errorbar(x, lift, yerr=[lift - lo, hi - lift], fmt="o-", color=colour, capsize=4)
    ax.axhline(0, color="black", lw=0.8)
    unit = period_name(n.period_days)
    ax.set_xticks(x)
    ax.set_xlabel(f"{unit} since assignment")
    ax.set_ylabel("lift, treatment / control − 1 (%)")
    ax.set_title(
        _title(
            d, f"{metric}, {r.variant}: lift by {unit} — trend p = {pval(n.p_value)}, {n.verdict}"
        ),
        loc="left",
        fontsize=9,
    )
    return fig


@styled
def segments(d: Result, metric: str, variant: str | None = None) -> Any:
    """Small multiples: for each segment column, the effect in every segment with its
    interval (holding the column's common effect and zero for reference), titled with
    the heterogeneity test."""
    from matplotlib.figure import Figure

    r = _result(d, metric, variant)
    panels = r.segments
    assert panels, f"no segments for metric '{metric}'"
    scale = 100 if is_rate(r.metric_type) else 1
    rows = sum(len(b.effects) for b in panels)
    fig = Figure(
        figsize=(WIDTH, 1.0 + 0.35 * rows + 0.6 * len(panels)), dpi=100, layout="constrained"
    )
    axes = fig.subplots(
        len(panels), 1, squeeze=False, height_ratios=[len(b.effects) + 1 for b in panels]
    )
    colour = _colours(d).get(r.variant, BETTER)
    for ax, b in zip(axes[:, 0], panels, strict=True):
        y = np.arange(len(b.effects))[::-1]
        est = scale * _arr([e.effect for e in b.effects])
        lo = scale * _arr([e.ci[0] for e in b.effects])
        hi = scale * _arr([e.ci[1] for e in b.effects])
        ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=colour, capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        common = b.heterogeneity.common_effect
        if math.isfinite(common):
            ax.axvline(
                scale * common,
                color=colour,
                ls=":",
                lw=1,
                label="common effect across segments (inverse-variance weighted)",
            )
            ax.legend(fontsize=7, loc="best")
        ax.set_yticks(y, [f"{e.value} (n = {e.control_n + e.treatment_n:,})" for e in b.effects])
        ax.set_title(
            f"{b.column}: heterogeneity p = {pval(b.heterogeneity.p_value)}", loc="left", fontsize=9
        )
    unit = " (percentage points)" if scale == 100 else ""
    axes[-1, 0].set_xlabel(f"effect, treatment − control{unit}")
    fig.suptitle(
        _title(d, f"{metric}, {r.variant}: effect by segment"), x=0.01, ha="left", fontsize=9
    )
    return fig


@styled
def quantiles(d: Result, metric: str, variant: str | None = None) -> Any:
    """Where in the distribution the change lies: the relative difference of the arms'
    quantiles at each level with its pointwise interval (log scale), the metric's own
    level marked."""
    r = _result(d, metric, variant)
    points = [p for p in r.quantiles if math.isfinite(p.relative_effect)]
    assert points, f"no quantile profile for metric '{metric}'"
    x = _arr([p.q for p in points])
    lift = 100 * _arr([p.relative_effect for p in points])
    lo = 100 * _arr([p.relative_ci[0] for p in points])
    hi = 100 * _arr([p.relative_ci[1] for p in points])
    fig, ax = new_figure()
    colour = _colours(d).get(r.variant, BETTER)
    ax.errorbar(x, lift, yerr=[lift - lo, hi - lift], fmt="o-", color=colour, capsize=4)
    ax.axhline(0, color="black", lw=0.8)
    # the metric's own level is the point whose values the result reports
    own = next(
        (
            p.q
            for p in r.quantiles
            if (p.control_value, p.treatment_value) == (r.control_value, r.treatment_value)
        ),
        None,
    )
    if own is not None:
        ax.axvline(own, color=colour, ls=":", lw=1, label=f"the metric's level, q = {own:g}")
        ax.legend(fontsize=8, loc="best")
    ax.set_xscale("logit")
    ax.set_xticks(x, [f"{q:g}" for q in x])
    ax.minorticks_off()
    ax.set_xlabel("quantile level q (events)")
    ax.set_ylabel("treatment / control − 1 (%)")
    ax.set_title(
        _title(
            d,
            f"{metric}, {r.variant}: quantiles of treatment vs control "
            f"({conf_label(d.alpha)} pointwise)",
        ),
        loc="left",
        fontsize=9,
    )
    return fig
