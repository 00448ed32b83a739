"""Cell formatting shared by the text, Markdown and HTML reports and the plots.

Everything here reads the typed :class:`~abkit.result.MetricResult` and its
:class:`~abkit.analysis.decision.Decision`, so every output states the same decision with the
same method and p-value.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from abkit.metrics import metric_type as type_named
from abkit.result import AccountBootstrap, AccountDetail, QuantileArmFacts, TimeToValueDetail
from abkit.wording import (
    UNBOUNDED,
    bounded,
    interval_text,
    is_missing,
    number_text,
    p_phrase,
    pct,
    pval,
    rel_interval,
)

if TYPE_CHECKING:
    from abkit.analysis.segments import SegmentBreakdown
    from abkit.result import AnalysisResult, MetricResult


def inference_units(res: AnalysisResult) -> str | None:
    """'accounts (org_id)' when accounts, not users, were randomised and are the units
    of inference (B2B mode); None otherwise.  Every report states it the same way."""
    return f"accounts ({res.account})" if res.mode == "b2b" else None


def is_rate(metric_type: str) -> bool:
    """Whether values of this metric type are shares (shown in percent)."""
    return type_named(metric_type).is_rate


def num(value: float | None, metric_type: str = "mean", signed: bool = False) -> str:
    """A metric value: rates as percentages (percentage points when signed)."""
    return number_text(value, is_rate(metric_type), signed)


def interval(ci: tuple[float, float], metric_type: str = "mean") -> str:
    """An interval of a difference in the metric's units."""
    return interval_text(ci, is_rate(metric_type))


def report_title(res: AnalysisResult) -> str:
    """'A/B result: <name>', or 'A/B result' for an experiment without a name of its own
    (a frame analysed without one is named 'A/B result')."""
    return "A/B result" if res.name in ("", "A/B result") else f"A/B result: {res.name}"


def conf_label(alpha: float) -> str:
    return f"{1 - alpha:.0%}"


_SHORT_METHODS = (
    ("CUPED-adjusted Welch", "CUPED t"),
    ("CUPED-adjusted z", "CUPED z"),
    ("Welch", "Welch t"),
    ("two-proportion", "2-prop z"),
    ("delta-method", "delta z"),
    ("quantile z-test", "quantile z"),
    ("paired difference", "paired z"),
    ("account-level randomisation", "randomisation"),
    ("restricted mean", "RMST perm."),
    ("one-sided non-inferiority", "NI"),
    ("one-sided account randomisation", "NI"),
    ("mSPRT", "mSPRT"),
    ("asymptotic confidence sequence", "CS"),
    ("group-sequential", "GST"),
    ("PPI++", "PPI++"),
    ("surrogate index", "surrogate"),
)


def short_method(method: str) -> str:
    """A few words naming a test, for tables (the full names are in the legend)."""
    return next(
        (short for prefix, short in _SHORT_METHODS if method.startswith(prefix)), method[:14]
    )


def _family(name: str) -> tuple[str, str]:
    """A method's name split into its family and the detail in its outer parentheses:
    ('two-proportion z-test', 'pooled SE for p, unpooled Wald CI').  A CUPED method's
    covariates ('… by pre_spend') are left out: the CUPED section lists them."""
    if name.startswith("CUPED-adjusted"):
        name = name.split(" by ", 1)[0]
    base, sep, rest = name.partition(" (")
    if not sep or not rest.endswith(")"):
        return name, ""
    return base, rest[:-1]


def method_legend(result: AnalysisResult) -> list[str]:
    """'short = full name' for every method a table abbreviates, each family named once:
    'NI = one-sided non-inferiority (normal reference on log(treatment/control),
    delta-method SE; or normal reference)'."""
    names = {r.method for r in result.results} | {r.decision.method for r in result.results}
    by_short: dict[str, dict[str, list[str]]] = {}
    for name in sorted(names):  # sorted: the same legend in every process
        base, detail = _family(name)
        details = by_short.setdefault(short_method(name), {}).setdefault(base, [])
        if detail and detail not in details:
            details.append(detail)
    return [
        f"{short} = "
        + " or ".join(
            base + (f" ({'; or '.join(details)})" if details else "")
            for base, details in families.items()
        )
        for short, families in sorted(by_short.items())
    ]


def margin_text(r: MetricResult) -> str:
    """A guardrail's margin: '5 % relative' or '+0.01 absolute' (harmful direction)."""
    g = r.guardrail
    assert g is not None
    if g.scale == "relative":
        return f"{g.margin * 100:g} % relative"
    return f"{num(g.margin, r.metric_type).lstrip('+')} absolute"


def decided_by(r: MetricResult) -> str:
    """The method and p-value the decision rests on, in a few words:
    'delta z, p 0.0012', 'NI (5 % relative), p 0.0153', 'mSPRT at day 12, p 0.0031'."""
    d = r.decision
    name = short_method(d.method)
    if r.guardrail is not None:
        name = f"NI ({margin_text(r)})" + (
            f" via {name}" if d.basis.startswith("sequential") else ""
        )
    if d.at_look:
        name += " " + d.at_look
    return f"{name}, {p_phrase(d.p_value)}"


def fixed_p(r: MetricResult) -> str:
    """The fixed-horizon p-value, daggered when repeated looks invalidate it."""
    return pval(r.p_value) + ("" if r.fixed_horizon_valid else " †")


TABLE_HEADER = (
    "metric",
    "variant",
    "control",
    "treatment",
    "effect",
    "CI",
    "lift",
    "lift CI",
    "p",
    "decided by",
    "decision",
)


def result_cells(r: MetricResult) -> list[str]:
    """The cells every table shows for a result, in the order of ``TABLE_HEADER``."""
    t = r.metric_type
    return [
        r.metric,
        r.variant,
        num(r.control_value, t),
        num(r.treatment_value, t),
        num(r.effect, t, True),
        interval(r.ci, t),
        pct(r.relative_effect),
        rel_interval(r.relative_ci),
        fixed_p(r),
        decided_by(r),
        r.decision.label,
    ]


def _with_interval(value: str, ci: tuple[float, float], bound: str) -> str:
    """'+6.06 % [-3.61, +16.70]': a value and its interval, the bounds in the value's
    unit without repeating it (``bound``: '{:+.2f}'-style format of a bound)."""

    def side(v: float) -> str:
        return "n/a" if is_missing(v) else (UNBOUNDED if math.isinf(v) else bound.format(v))

    return f"{value} {bounded(side(ci[0]), side(ci[1]), ci)}"


def lift_cell(r: MetricResult) -> str:
    """The lift with its interval in one short cell: '+6.06 % [-3.61, +16.70]'."""
    ci = (r.relative_ci[0] * 100, r.relative_ci[1] * 100)
    return _with_interval(pct(r.relative_effect), ci, "{:+.2f}")


def effect_cell(r: MetricResult) -> str:
    """The effect in metric units with its interval: '+1.74 pp [-1.09, +4.57]' or
    '+0.1577 [+0.04337, +0.272]'."""
    t = r.metric_type
    if is_rate(t):
        ci = (r.ci[0] * 100, r.ci[1] * 100)
        return _with_interval(num(r.effect, t, True), ci, "{:+.2f}")
    return _with_interval(num(r.effect, t, True), r.ci, "{:+.4g}")


def arms_cell(r: MetricResult) -> str:
    """'28.73 % → 30.47 %': the control's value, then the treatment's."""
    t = r.metric_type
    return f"{num(r.control_value, t)} → {num(r.treatment_value, t)}"


VERDICT_HEADER = ("metric", "arm", "control → treatment", "lift", "decision")
DETAIL_HEADER = ("metric", "arm", "effect", "test", "p", "decided by")


def verdict_cells(r: MetricResult) -> list[str]:
    """The compact verdict row (``VERDICT_HEADER``): what a reviewer reads first."""
    return [r.metric, r.variant, arms_cell(r), lift_cell(r), r.decision.label]


def detail_cells(r: MetricResult) -> list[str]:
    """The row under the verdict (``DETAIL_HEADER``): the effect in metric units, the
    fixed-horizon test and its p-value, and what the decision rests on."""
    return [r.metric, r.variant, effect_cell(r), short_method(r.method), fixed_p(r), decided_by(r)]


def table_notes(result: AnalysisResult) -> list[str]:
    """The sentences under every results table: what 'p', '†' and 'decided by' mean."""
    notes = [
        f"p: the fixed-horizon test's two-sided p-value; effect and lift with "
        f"{conf_label(result.alpha)} CIs (lift interval on the log scale)."
    ]
    if any(not r.fixed_horizon_valid for r in result.results):
        notes.append(
            "†: fixed-horizon p-value and CIs, not valid under repeated looks; the decision "
            "comes from the sequential method."
        )
    notes.append(
        "decided by: the test and p-value the decision rests on"
        + (
            f" ({result.correction}-adjusted across treatments for primary metrics)"
            if len(result.variants) > 2 and result.correction != "none"
            else ""
        )
        + "; NI = one-sided non-inferiority test against the guardrail's margin."
    )
    return notes


def grouped_warnings(result: AnalysisResult) -> list[tuple[str, str]]:
    """(where, warning) pairs, each warning once, with every 'metric / variant' it
    concerns (account-level warnings repeat for every metric otherwise)."""
    where: dict[str, list[str]] = {}
    for r in result.results:
        for w in r.warnings:
            where.setdefault(w, []).append(f"{r.metric} / {r.variant}")
    return [(", ".join(labels), w) for w, labels in where.items()]


def data_notes(result: AnalysisResult) -> list[tuple[str, str]]:
    """(metric or 'all metrics', note) pairs: the notes on the data, which describe (a
    design effect, capped units, windows not yet ended) and are kept apart from the
    warnings of the results."""
    return [
        *((metric, note) for metric, notes in result.metric_notes.items() for note in notes),
        *(("all metrics", note) for note in result.notes),
    ]


def sequential_methods(result: AnalysisResult) -> str:
    """The sequential methods of a result's metrics, each once, in order ("; " between:
    a quantile metric's construction differs from a mean's)."""
    methods = [r.sequential.method for r in result.results if r.sequential is not None]
    return "; ".join(dict.fromkeys(methods))


def sequential_line(r: MetricResult) -> str | None:
    """A result's sequential state: decision, where, and the latest look's numbers."""
    seq = r.sequential
    if seq is None or not seq.looks:
        return None
    d, t = seq.decision, r.metric_type
    last = seq.looks[-1]
    unit = d.look_unit or "look"
    if d.outcome == "not computable":  # no interval to show: the reason is the news
        return f"{d.outcome}: {d.reason}" if d.reason else d.outcome
    state = f"{d.outcome}"
    if d.outcome != "continue":
        state += (
            f" {d.where}: {seq.interval} {interval(d.ci, t)}, {p_phrase(d.p_value)} — {d.meaning}"
        )
    state += (
        f"; latest {unit} {last.look}: estimate {num(last.estimate, t, True)}, "
        f"{seq.interval} {interval(last.ci, t)}, {p_phrase(last.p_value)}"
    )
    if last.relative_estimate is not None and last.relative_ci is not None:
        low, high = last.relative_ci
        state += f"; ratio − 1 {pct(last.relative_estimate)} [{pct(low)}, {pct(high)}]"
    return state


def cuped_line(r: MetricResult) -> str | None:
    """One line on a result's regression adjustment, or None:
    'variance −38.2 % by pre_spend; unadjusted effect +0.12 (SE 0.05)'."""
    a = r.cuped
    if a is None:
        return None
    t = r.metric_type
    return (
        f"variance {-a.variance_reduction * 100:+.1f} % by {', '.join(a.covariates)}; "
        f"unadjusted effect {num(a.unadjusted_effect, t, True)} "
        f"(SE {num(a.unadjusted_se, t, True).lstrip('+')})"
    )


def paired_design(res: AnalysisResult) -> str:
    """The line that stands where the sample-ratio check stands for a paired export."""
    return (
        f"Paired run: each input was answered by the live version ({res.control}) and a "
        f"candidate, compared within input, clustered by {res.unit}; no sample ratio to check"
    )


def paired_line(r: MetricResult) -> str | None:
    """One line on what a paired comparison rests on, or None: '1,204 paired inputs
    from 180 users; the pairing removed 84.1 % of the variance of two independent arms
    (SE 0.012 against 0.030)'."""
    p = r.paired
    if p is None:
        return None
    t = r.metric_type
    removed = p.variance_removed
    share = f"{removed * 100:.1f} %" if math.isfinite(removed) else "n/a"
    return (
        f"{p.pairs:,} paired inputs from {p.users:,} users; the pairing removed {share} of "
        f"the variance of two independent arms (SE {num(p.se, t, True).lstrip('+')} "
        f"against {num(p.unpaired_se, t, True).lstrip('+')})"
    )


def period_name(days: int) -> str:
    """'week', 'day' or 'N-day period'."""
    return {7: "week", 1: "day"}.get(days, f"{days}-day period")


def novelty_line(r: MetricResult) -> str | None:
    """One line on how the lift moves with time since assignment, or None:
    'fades from +6.1 % in week 1 to +1.0 % in week 4 (trend p = 0.003)'."""
    n = r.novelty
    if n is None:
        return None
    if n.verdict == "not computable":
        return "the lift by period since assignment is not computable (a period without activity)"
    unit = period_name(n.period_days)
    last = len(n.lift)
    path = f"{n.lift[0] * 100:+.1f} % in {unit} 1 to {n.lift[-1] * 100:+.1f} % in {unit} {last}"
    units = f"{n.units[0]:,} + {n.units[1]:,} units that completed {last} {unit}s"
    trend = p_phrase(n.p_value, "trend p")
    if n.verdict == "stable":
        return f"no significant trend: {path} ({trend}; {units})"
    return f"the effect {n.verdict} from {path} ({trend}; {units})"


def quantile_line(r: MetricResult) -> str | None:
    """The quantile profile in one line, or None: 'q 0.5: +4.1 % [+1.0, +7.3]; …'."""
    if not r.quantiles:
        return None
    parts = [
        f"q {p.q:g}: {pct(p.relative_effect)} [{pct(p.relative_ci[0])}, {pct(p.relative_ci[1])}]"
        for p in r.quantiles
    ]
    return "; ".join(parts)


def no_verdict_line(r: MetricResult) -> str | None:
    """Why a result has no verdict ('not computable'), or None."""
    return r.decision.reason if r.decision.outcome == "not computable" else None


def caution_line(r: MetricResult) -> str | None:
    """A guardrail that its two-sided test finds significantly worse, or None:
    'guardrail pass, but significantly worse, within the margin (two-sided p 0.0044)'."""
    d = r.decision
    if d.caution is None:
        return None
    if d.basis == "sequential non-inferiority" and r.sequential is not None:
        looks = [look for look in r.sequential.looks if look.look == d.look]
        p = looks[0].p_value if looks else math.nan
        source = f"{r.sequential.method}, {p_phrase(p)} for no effect {d.at_look}"
    else:
        source = p_phrase(r.p_value, "two-sided p")
    return f"{d.outcome}, but {d.caution}: lift {pct(r.relative_effect)} ({source})"


def surrogate_line(r: MetricResult) -> str | None:
    """A long-run retention metric's forecast from the first week, labelled as such,
    with its training, its fit and its validation, or None: 'forecast +1.85 pp
    [+1.06, +2.64] …; validation on the 850 + 842 matured units: forecast +0.69 pp,
    realised +2.83 pp, agree (gap p = 0.2061); assumes …'."""
    f = r.surrogate
    if f is None:
        return None
    t = r.metric_type
    trained = (
        f"the control arm's {f.fit.training_units:,} matured units"
        if f.training == "control"
        else f"{f.fit.training_units:,} units of the training table"
    )
    text = (
        f"FORECAST, not the decision: {num(f.estimate, t, True)} {interval(f.ci, t)} "
        f"(lift {pct(f.relative)}) from the first week of {f.control_n:,} + "
        f"{f.treatment_n:,} units; model trained on {trained} (out-of-fold AUC "
        f"{f.fit.auc:.2f}; model uncertainty {f.model_share:.0%} of the variance)"
    )
    v = f.validation
    if v is None:
        text += "; no validation yet (fewer than 10 matured units in an arm)"
    else:
        verdict = "DISAGREE: the surrogacy assumption is in doubt" if v.disagree else "agree"
        text += (
            f"; validation on the {v.control_n:,} + {v.treatment_n:,} matured units: "
            f"forecast {num(v.surrogate_effect, t, True)}, realised "
            f"{num(v.realised_effect, t, True)} {interval(v.realised_ci, t)}, {verdict} "
            f"(gap {p_phrase(v.p_value)})"
        )
    return text + "; assumes " + "; ".join(f.assumptions)


def health_line(r: MetricResult) -> str | None:
    """'D7 bar 20 %: control 18.2 % (below), treatment 21.0 %', or None."""
    h = r.health
    if h is None:
        return None
    arms = ", ".join(
        f"{name} {pct(value).lstrip('+')}" + (" (below)" if below else "")
        for name, value, below in (
            ("control", h.control_value, h.control_below),
            ("treatment", h.treatment_value, h.treatment_below),
        )
    )
    return f"D{h.day} bar {h.bar * 100:g} %: {arms}"


SEGMENT_HEADER = ("segment", "control n", "treatment n", "effect", "CI", "lift", "p", "p adj.")


def segment_title(r: MetricResult, b: SegmentBreakdown, alpha: float) -> str:
    """'share_rate / v2 by country: the effect differs between segments (Cochran's Q =
    14.2, 3 df, p = 0.0027)' or '… no evidence that the effect differs …'."""
    h = b.heterogeneity
    if not math.isfinite(h.p_value):
        verdict = "fewer than two segments with an estimate; no heterogeneity test"
    else:
        p_text = p_phrase(h.p_value)
        stat = (
            f"Cochran's Q = {h.q:.2f}, {h.df} df, {p_text}"
            if h.method.startswith("Cochran")
            else f"randomisation test of a common effect, {p_text}"
        )
        verdict = (
            f"the effect differs between segments ({stat})"
            if h.p_value < alpha
            else f"no evidence that the effect differs between segments ({stat})"
        )
    return f"{r.metric} / {r.variant} by {b.column}: {verdict}"


def segment_rows(r: MetricResult, b: SegmentBreakdown) -> list[list[str]]:
    """Cells of a segment table (see ``SEGMENT_HEADER``)."""
    t = r.metric_type
    return [
        [
            e.value,
            f"{e.control_n:,}",
            f"{e.treatment_n:,}",
            num(e.effect, t, True),
            interval(e.ci, t),
            pct(e.relative_effect),
            pval(e.p_value),
            pval(e.p_value_adjusted),
        ]
        for e in b.effects
    ]


JUDGED_SECTION = "LLM-judge quality (PPI++ beside the judge alone and the human labels alone)"
JUDGED_HEADER = ("estimate", "control", "treatment", "effect", "CI", "lift", "p")
_PASS_FAIL = "pass/fail: both pass, judge only, human only, both fail"


def judged_title(r: MetricResult) -> str:
    """'quality / model_b: the PPI++ interval is 38 % narrower than the human-only one
    (λ 0.649 control, 0.666 treatment)'."""
    d = r.judged
    assert d is not None
    ratio = d.width_ratio
    if is_missing(ratio):
        width = "no width comparison with the human-only interval"
    elif ratio <= 1:
        width = f"the PPI++ interval is {(1 - ratio) * 100:.0f} % narrower than the human-only one"
    else:
        width = f"the PPI++ interval is {(ratio - 1) * 100:.0f} % wider than the human-only one"
    lams = ", ".join(
        f"{'n/a' if is_missing(a.ppi.lam) else f'{a.ppi.lam:.3g}'} {name}"
        for name, a in (("control", d.control), ("treatment", d.treatment))
    )
    lams = f"λ {lams}"
    return f"{r.metric} / {r.variant}: {width} ({lams})"


def judged_rows(r: MetricResult) -> list[list[str]]:
    """Cells of the estimates table (``JUDGED_HEADER``): PPI++ (the result's own
    effect), the judge alone and the human labels alone."""
    d = r.judged
    assert d is not None
    t = r.metric_type
    rows = []
    for name, e in (
        ("PPI++ (reported)", r),
        ("judge only", d.judge),
        ("human labels only", d.human),
    ):
        rows.append(
            [
                name,
                num(e.control_value, t),
                num(e.treatment_value, t),
                num(e.effect, t, True),
                interval(e.ci, t),
                pct(e.relative_effect),
                pval(e.p_value),
            ]
        )
    return rows


def audit_header(r: MetricResult) -> tuple[str, ...]:
    """The judge audit table's columns; the confusion table's only for a pass/fail
    judge."""
    d = r.judged
    assert d is not None
    header = (
        "arm",
        "labelled outputs",
        "judge–human r",
        "judge − human (SE)",
        "labelled − other judge scores",
    )
    pass_fail = d.control.audit.confusion is not None or d.treatment.audit.confusion is not None
    return (*header, _PASS_FAIL) if pass_fail else header


def audit_rows(r: MetricResult) -> list[list[str]]:
    """Cells of the judge audit table (:func:`audit_header`), one row per arm."""
    d = r.judged
    assert d is not None
    pass_fail = len(audit_header(r)) > 5
    rows = []
    for name, arm in (("control", d.control), ("treatment", d.treatment)):
        a = arm.audit
        share = pct(a.labelled_share).lstrip("+")
        row = [
            name,
            f"{arm.labelled:,} of {arm.labelled + arm.unlabelled:,} ({share})",
            "n/a" if is_missing(a.correlation) else f"{a.correlation:.3g}",
            f"{num(a.bias, signed=True)} ({num(a.bias_se)})",
            f"{num(a.labelled_minus_unlabelled, signed=True)}, "
            f"{p_phrase(a.labelled_minus_unlabelled_p)}",
        ]
        if pass_fail:
            c = a.confusion
            row.append(
                "n/a"
                if c is None
                else f"{c.both_pass:,}, {c.judge_only:,}, {c.human_only:,}, {c.both_fail:,}"
            )
        rows.append(row)
    return rows


# the judge-noise cells of an arm whose between-output variance came out negative
NOT_IDENTIFIABLE = "not identifiable"


def noise_header(r: MetricResult) -> tuple[str, ...]:
    """The judge-noise table's columns (none without repeated judgements): 'width, k
    more' is the predicted interval width with k more judgements per output, over the
    present width."""
    d = r.judged
    assert d is not None
    noise = d.control.noise or d.treatment.noise
    if noise is None:
        return ()
    widths = tuple(f"width, {k} more" for k in noise.more)
    return (
        "arm",
        "judgements per output",
        "noise variance",
        "between outputs",
        "noise share of the PPI++ variance",
        *widths,
    )


def noise_rows(r: MetricResult) -> list[list[str]]:
    """Cells of the judge-noise table (:func:`noise_header`): per arm, the judge's
    noise variance from the repeats, the between-output variance, the noise's share of
    the PPI++ variance and the predicted width with k more judgements per output; "not
    identifiable" in the split's cells when the between-output estimate was negative
    (:attr:`~abkit.stats.judge_noise.JudgeNoise.identifiable`)."""
    d = r.judged
    assert d is not None
    rows = []
    for name, arm in (("control", d.control), ("treatment", d.treatment)):
        n = arm.noise
        if n is None:
            continue
        if not n.identifiable:
            # the repeats' noise exceeds the outputs' whole spread: no split to show
            rows.append(
                [name, num(n.mean_runs), num(n.noise_variance), *[NOT_IDENTIFIABLE] * 2]
                + [NOT_IDENTIFIABLE] * len(n.widths)
            )
            continue
        rows.append(
            [
                name,
                num(n.mean_runs),
                num(n.noise_variance),
                num(n.between_variance),
                pct(n.noise_share).lstrip("+"),
                *("n/a" if is_missing(w) else f"{w:.3f}" for w in n.widths),
            ]
        )
    return rows


def judged_footer(r: MetricResult) -> str:
    """The audit's tests between the arms: 'judge bias difference (treatment −
    control) +0.1457 [+0.1188, +0.1726], p < 0.0001; labelled share difference −0.18
    pp, p = 0.7'."""
    d = r.judged
    assert d is not None
    bias, share = d.bias_difference, d.labelled_share_difference
    return (
        f"judge bias difference (treatment − control) {num(bias.effect, signed=True)} "
        f"{interval(bias.ci)}, {p_phrase(bias.p_value)}; labelled share difference "
        f"{num(share.effect, 'proportion', True)}, {p_phrase(share.p_value)}"
    )


def b2b_line(r: MetricResult) -> str | None:
    """One line summarising a result's B2B cross-checks, or None."""
    b = r.b2b
    if b is None or isinstance(b, TimeToValueDetail):
        return None
    if b.randomization is None or b.bootstrap is None:
        return None
    t = r.metric_type

    def ci(values: tuple[float, float]) -> str:
        return interval(values, t)

    arms = ", ".join(
        f"{v}: {a.accounts:,} accounts"
        + (f", {a.events:,} events" if isinstance(a, QuantileArmFacts) else "")
        for v, a in b.arms.items()
    )
    boot = b.bootstrap
    line = (
        f"{arms}; {b.weighting}-weighted; "
        f"{p_phrase(b.randomization.p_value, 'randomisation p')}, "
        f"CI {ci(b.randomization.ci)}; "
        f"bootstrap ({boot.resamples:,}) percentile {ci(boot.percentile)}"
    )
    if isinstance(boot, AccountBootstrap):
        line += f", bootstrap-t {ci(boot.studentized)}"
    cr2 = b.cr2 if isinstance(b, AccountDetail) else None
    if cr2 is not None:
        line += (
            f"; CR2 + Bell-McCaffrey (df {num(cr2.df)}) {p_phrase(cr2.p_value)}, CI {ci(cr2.ci)}"
        )
    return line


def detail_sections(res: AnalysisResult) -> list[tuple[str, list[tuple[MetricResult, str]]]]:
    """The per-result detail lines every renderer shows, by section: (title, [(result,
    line)]) for CUPED, novelty and the B2B cross-checks, sections without a line left out."""
    from abkit.report.bayesian import bayesian_line

    sections = (
        ("Not computable (no verdict without data)", no_verdict_line),
        ("Bayesian reading (its own decision, beside the one above)", bayesian_line),
        ("Guardrail regressions (significantly worse, though not failed)", caution_line),
        ("CUPED regression adjustment (effects above are adjusted)", cuped_line),
        ("Paired inputs (candidate − live on the same inputs)", paired_line),
        ("Novelty check (lift by time since assignment, log scale)", novelty_line),
        ("Quantile profile (treatment / control − 1, pointwise)", quantile_line),
        ("Health bands (usual retention bars of AI consumer products, not tests)", health_line),
        ("Surrogate forecast of long-run retention from the first week", surrogate_line),
        ("B2B cross-checks (accounts are the units of inference)", b2b_line),
    )
    out = []
    for title, line_of in sections:
        lines = [(r, line) for r in res.results if (line := line_of(r))]
        if lines:
            out.append((title, lines))
    return out
