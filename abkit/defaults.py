"""The built-in metric set of an event export analysed without ``[[metrics]]``.

What the export supports decides what is analysed: a metric whose events or columns
are absent is skipped with a note (optional ones, such as referrals, silently).  The
names and events are those of ``[events]`` and ``[input]`` (docs/reference/inputs.md,
"Built-in metrics"), so that an export that follows them needs no configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from abkit.config import ExperimentSpec, MetricSpec

# a guardrail may worsen by at most this fraction of the control value
DEFAULT_GUARDRAIL_MARGIN = 0.05


@dataclass(frozen=True)
class ExportShape:
    """What a default metric may need of the export: event names, columns."""

    events: set[str]
    columns: set[str]


@dataclass
class _DefaultSet:
    spec: ExperimentSpec
    shape: ExportShape
    refuse: Callable[[MetricSpec], str | None]
    metrics: list[MetricSpec] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def want(self, make: MetricSpec, events: list[str], columns: tuple[str, ...] = ()) -> None:
        """Add ``make`` if the export has its events and columns and the design can
        analyse it, else note why not."""
        missing = [f"'{e}' events" for e in events if e not in self.shape.events]
        missing += [f"'{c}' column" for c in columns if c not in self.shape.columns]
        refused = None if missing else self.refuse(make)
        if missing:
            self.skipped.append(f"default metric '{make.name}' skipped: no {missing[0]}")
        elif refused is not None:
            self.skipped.append(refused)
        else:
            self.metrics.append(make)


def _guardrail(metric: MetricSpec) -> MetricSpec:
    """``metric`` as a guardrail: it must not rise by more than
    :data:`DEFAULT_GUARDRAIL_MARGIN` of the control value."""
    return replace(
        metric, direction="decrease", guardrail=True, relative_margin=DEFAULT_GUARDRAIL_MARGIN
    )


def _per_output(name: str, column: str) -> MetricSpec:
    """The mean of an event column per output that carries it (:class:`EventMean`)."""
    return MetricSpec(name=name, type="event_mean", column=column)


def default_event_metrics(
    spec: ExperimentSpec,
    shape: ExportShape,
    refuse: Callable[[MetricSpec], str | None] = lambda metric: None,
) -> tuple[tuple[MetricSpec, ...], list[str]]:
    """The built-in B2C metric set, limited to what the export can support and
    ``refuse`` (the design: why it cannot analyse a metric, or None) lets through, and
    notes on the metrics it skipped."""
    ev, inp = spec.event_names, spec.input
    out = ev.output
    d = _DefaultSet(spec, shape, refuse)
    d.metrics += [MetricSpec(name=f"d{n}_retention", type="retention", day=n) for n in (1, 7, 30)]
    d.metrics.append(MetricSpec(name="active_days_7d", type="active_days", window=(0, 6)))
    share = MetricSpec(name="share_rate", type="ratio", numerator=ev.share, denominator=out)
    d.want(share, [out, ev.share])
    depth = MetricSpec(name="session_depth", type="session_depth")
    d.want(depth, [out], (inp.session,))
    if ev.referral in shape.events:  # optional: no note when the product has no referrals
        # new users brought per user: the viral coefficient's per-unit form
        d.metrics.append(MetricSpec(name="viral_coefficient", type="mean", column=ev.referral))
    _quality(d)
    for name, event in (("regenerate_rate", ev.regenerate), ("error_rate", ev.error)):
        rate = MetricSpec(name=name, type="ratio", numerator=event, denominator=out)
        d.want(_guardrail(rate), [out, event])
    _speed_and_cost(d)
    return tuple(d.metrics), d.skipped


def _quality(d: _DefaultSet) -> None:
    """Graded outputs (the judge's score per judged output) and thumbs up per rated
    output, when the export has them (optional: no note otherwise)."""
    ev, inp = d.spec.event_names, d.spec.input
    if ev.judge in d.shape.events:
        d.want(_per_output("judge_score", f"{ev.judge}.value"), [ev.judge], (inp.value,))
    if ev.thumbs_up in d.shape.events or ev.thumbs_down in d.shape.events:
        rated = f"{ev.thumbs_up} + {ev.thumbs_down}"
        d.metrics.append(
            MetricSpec(
                name="thumbs_up_rate", type="ratio", numerator=ev.thumbs_up, denominator=rated
            )
        )


def _speed_and_cost(d: _DefaultSet) -> None:
    """Latency, time to first token, tokens and cost per output, from the output
    events' columns (optional: absent columns add no note)."""
    spec, inp, out = d.spec, d.spec.input, d.spec.event_names.output
    columns = d.shape.columns
    if inp.latency in columns:
        latency = f"{out}.{inp.latency}"
        p95 = MetricSpec(name="latency_p95", type="quantile", column=latency, q=0.95)
        d.want(_guardrail(p95), [out])
        d.want(_guardrail(_per_output("latency_mean", latency)), [out])
    if inp.ttft in columns:
        d.want(_guardrail(_per_output("ttft_mean", f"{out}.{inp.ttft}")), [out])
    for column in (inp.input_tokens, inp.output_tokens):
        if column in columns:
            per_output = _per_output(f"{column}_per_output", f"{out}.{column}")
            d.want(replace(per_output, direction="decrease"), [out])
    # priced from every token column with a price, or read from the export's cost column
    priced_from = tuple(spec.cost.token_prices(inp))
    if spec.cost.priced or spec.cost.column in columns:
        cost = f"{out}.{spec.cost.column}"
        d.want(_guardrail(_per_output("cost_per_output", cost)), [out], priced_from)
        per_user = MetricSpec(
            name="cost_per_active_user",
            type="ratio",
            numerator=cost,
            denominator="active",
            direction="decrease",
        )
        d.want(per_user, [out], priced_from)


def default_paired_metrics(
    columns: tuple[MetricSpec, ...], spec: ExperimentSpec, available: set[str]
) -> tuple[MetricSpec, ...]:
    """The built-in metrics of a paired export: one per numeric column (``columns``,
    0/1 → proportion, else mean) with the directions of the event defaults — latency,
    time to first token and cost are guardrails, token counts should fall, any other
    column (a judge score) should rise — and with ``[cost]`` prices, the cost priced
    from the token columns when ``available`` has every priced one."""
    inp = spec.input
    guarded = {inp.latency, inp.ttft, spec.cost.column}
    fewer = {inp.input_tokens, inp.output_tokens}
    out = [
        _guardrail(m)
        if m.column in guarded
        else replace(m, direction="decrease")
        if m.column in fewer
        else m
        for m in columns
    ]
    prices = spec.cost.token_prices(inp)
    if spec.cost.priced and set(prices) <= available:
        column = spec.cost.column
        out.append(_guardrail(MetricSpec(name=column, type="mean", column=column)))
    return tuple(out)
