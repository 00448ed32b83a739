"""No verdict without data: every method and design says 'not computable', with the
reason, for a metric that has none, and a default metric that cannot mature in the
export is left out with one note.

Two metrics without data stand beside one with data:

* ``d30``: D30 retention in a 12-day export, so no unit has a complete window and
  both arms are empty (the group-sequential design used to read 'no significant
  difference' here);
* ``ghost``: the share of units with an event that never occurs, so both arms are
  all zeros and there is no variation.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.analysis.decision import Decision, Evidence, checked, data_gap
from abkit.dev.simulate import simulate
from abkit.json_codec import from_jsonable, to_jsonable

METRICS = [
    {"name": "d1", "type": "retention", "day": 1},
    {"name": "d30", "type": "retention", "day": 30},
    {"name": "ghost", "type": "proportion", "column": "never_logged"},
]
EMPTY = ("d30", "ghost")
METHODS = [None, "msprt", "cs", "gst"]


@pytest.fixture(scope="module")
def b2c():
    return simulate(users=3_000, days=12, enrol_days=4, seed=11, pre_days=7)


@pytest.fixture(scope="module")
def b2b():
    return simulate(mode="b2b", users=2_000, accounts=16, days=12, enrol_days=4, seed=12)


def _assert_no_verdict(result: abkit.AnalysisResult) -> None:
    by_name = {r.metric: r for r in result.results}
    assert set(by_name) == {"d1", *EMPTY}, "a configured metric keeps its row"
    for name in EMPTY:
        d = by_name[name].decision
        assert d.outcome == "not computable", (name, d)
        assert d.reason, name
        seq = by_name[name].sequential
        if seq is not None:  # the sequential detail states the same decision
            assert seq.decision == d
    assert by_name["d1"].decision.outcome != "not computable"
    d30, ghost = by_name["d30"].decision.reason, by_name["ghost"].decision.reason
    assert d30 is not None and "no units" in d30
    assert ghost is not None and "no variation" in ghost
    # every output says so, with the reason
    payload = json.loads(result.to_json())
    outcomes = {r["metric"]: r["decision"] for r in payload["results"]}
    for name in EMPTY:
        assert outcomes[name]["outcome"] == "not computable"
        assert outcomes[name]["reason"] == by_name[name].decision.reason
    text, md = result.to_text(), result.to_markdown().replace("\\", "")
    for reason in (d30, ghost):
        assert reason in text and reason in md


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cuped", [False, True], ids=["plain", "cuped"])
def test_every_method_says_not_computable_without_data(b2c, method, cuped):
    config: dict = {"metrics": METRICS}
    if cuped:
        config["cuped"] = {"pre_days": 7}
    if method:
        config["sequential"] = {"method": method}
    result = abkit.analyze(b2c.assignments, config, events=b2c.events)
    if cuped:
        assert any(r.cuped is not None for r in result.results if r.metric == "d1")
    _assert_no_verdict(result)


def test_b2b_says_not_computable_without_data(b2b):
    config = {"experiment": {"account": "account_id", "mode": "b2b"}, "metrics": METRICS}
    result = abkit.analyze(b2b.assignments, config, events=b2b.events)
    assert result.mode == "b2b"
    _assert_no_verdict(result)


def test_a_default_metric_that_cannot_mature_is_left_out_with_one_note(b2c):
    result = abkit.analyze(b2c.assignments, events=b2c.events)
    names = {r.metric for r in result.results}
    assert "d1_retention" in names and "d30_retention" not in names
    notes = [n for n in result.notes if "d30_retention" in n]  # an experiment-wide note
    assert not [n for lines in result.metric_notes.values() for n in lines if "d30" in n]
    assert len(notes) == 1 and "left out" in notes[0] and "day 30" in notes[0]
    text = result.to_text()
    assert text.count("d30_retention") == 1, "one note, no row, no health band"
    assert "D30 bar" not in text


def test_the_shared_check_on_its_own():
    ok = Decision("better", "fixed-horizon", "Welch t", 0.01, (0.1, 0.3))
    assert checked(ok, Evidence(50, 60, 0.2, 0.05)) is ok
    # each gap, in the order the check looks for them
    assert data_gap(Evidence(0, 60, 0.2, 0.05), ok) == "the control arm has no units with data"
    assert data_gap(Evidence(50, 0, 0.2, 0.05), ok) == "the treatment arm has no units with data"
    assert "no variation" in (data_gap(Evidence(50, 60, 0.0, 0.0), ok) or "")
    # constant but unequal arms (0 of 50 against 60 of 60) differ: no gap in the data
    assert data_gap(Evidence(50, 60, 1.0, 0.0), ok) is None
    assert data_gap(Evidence(50, 60, 0.2, 0.05, looks_with_data=0), ok) == (
        "no look has data in both arms yet"
    )
    nan = float("nan")
    silent = Decision("no significant difference", "sequential", "GST", nan, (nan, nan))
    assert "neither a p-value nor an interval" in (
        data_gap(Evidence(50, 60, 0.2, 0.05), silent) or ""
    )
    # before a group-sequential design's first planned look: 'continue', no interval yet
    waiting = Decision("continue", "sequential", "GST", nan, (nan, nan))
    assert data_gap(Evidence(50, 60, 0.2, 0.05, looks_with_data=5), waiting) is None
    # an unbounded side (B2B test inversion) is an answer, not a gap
    unbounded = Decision("better", "fixed-horizon", "RI", 0.02, (0.1, float("inf")))
    assert checked(unbounded, Evidence(5, 5, 0.3, 0.1)) is unbounded
    out = checked(ok, Evidence(0, 0, nan, nan))
    assert out.outcome == "not computable" and out.reason == "no units with data in either arm"
    assert out.basis == ok.basis and out.method == ok.method
    assert from_jsonable(Decision, to_jsonable(out)) == out  # the JSON round trip


@pytest.mark.parametrize("method", ["msprt", "gst"])
def test_plots_draw_what_decides_and_nothing_blank(b2c, method):
    from abkit.plots import plan

    config = {"metrics": METRICS, "sequential": {"method": method}}
    result = abkit.analyze(b2c.assignments, config, events=b2c.events)
    stems = [stem for stem, _, _ in plan(result)]
    # a metric without data gets no figure of its own (an empty axis said nothing)
    assert not [s for s in stems if "d30" in s or "ghost" in s]
    assert any(s.startswith("sequential_d1_treatment") for s in stems), stems
    fig = result.plot("forest")
    ax, right = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels and all("†" in label for label in labels), labels
    # the fixed-horizon interval is drawn dotted, never as the solid deciding bar
    bars = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_marker() == "None"]
    horizontal = [ln for ln in bars if ln.get_ydata()[0] == ln.get_ydata()[1]]
    assert horizontal and all(ln.get_linestyle() == ":" for ln in horizontal)
    # the interval the decision rests on is written at right, named
    d1 = next(r for r in result.results if r.metric == "d1")
    assert d1.sequential is not None
    decisions = [t.get_text() for t in right.get_yticklabels()]
    assert any(d1.sequential.interval in text for text in decisions), decisions
    assert "not valid under repeated looks" in fig.get_supxlabel()


def test_arm_colours_never_mean_a_decision():
    from abkit.plots.style import BETTER, NEUTRAL, WORSE, variant_colours

    arms = variant_colours(["control", *(f"t{i}" for i in range(10))], "control")
    assert not set(arms.values()) & {BETTER, WORSE, NEUTRAL}


def test_a_result_without_data_says_it_once(b2c):
    result = abkit.analyze(b2c.assignments, {"metrics": METRICS}, events=b2c.events)
    d30 = next(r for r in result.results if r.metric == "d30")
    # the reason says the arms are empty: the test's own 'has 0 unit(s)' lines go
    assert not [w for w in d30.warnings if "0 unit(s)" in w or w == "reported as NaN"]
    # and why they are empty stays, with numbers formatted as everywhere else
    assert any("3,000 of 3,000 units have not completed" in n for n in result.metric_notes["d30"])
    # no health band without a value to hold against the bar
    assert d30.health is None
    assert "D30 bar" not in result.to_text()


def test_a_guardrail_within_its_margin_but_significantly_worse_is_flagged():
    """The issue's example: regenerate rate +1.98 % [+0.61 %, +3.37 %], two-sided
    p 0.0044, passes a 5 % non-inferiority margin; every output must also flag it."""
    export = simulate(users=30_000, seed=1)
    result = abkit.analyze(export.assignments, events=export.events)
    by_name = {r.metric: r for r in result.results}
    regen = by_name["regenerate_rate"]
    assert regen.decision.outcome == "guardrail pass"
    assert regen.p_value < 0.05 and regen.relative_ci[0] > 0  # harm, significant
    assert regen.decision.caution == "significantly worse, within the margin"
    # a pass whose harm is not significant carries no flag
    error = by_name["error_rate"]
    assert error.decision.outcome == "guardrail pass" and error.p_value > 0.05
    assert error.decision.caution is None
    flag = "significantly worse, within the margin"
    assert (
        json.loads(result.to_json())["results"][list(by_name).index("regenerate_rate")]["decision"][
            "caution"
        ]
        == flag
    )
    for output in (result.to_text(), result.to_markdown(), result.to_html()):
        assert flag in output
    assert any(flag in t.get_text() for t in result.plot("forest").axes[1].get_yticklabels())


@pytest.mark.parametrize(
    ("days", "plan"),
    [
        (5, {}),  # weekly looks by default: a 5-day export has reached none yet
        # day 7 of 365: so little alpha is spent that the boundary is infinite
        (8, {"looks": [7, 14, 365], "duration_days": 365}),
    ],
    ids=["before-the-first-look", "infinite-first-boundary"],
)
def test_gst_without_a_usable_look_yet_says_continue(days, plan):
    """Data in both arms and no planned look reached (or one whose boundary is still
    infinite) is 'continue', not 'not computable'."""
    export = simulate(users=2_000, days=days, enrol_days=2, seed=13)
    config = {"metrics": METRICS[:1], "sequential": {"method": "gst", **plan}}
    result = abkit.analyze(export.assignments, config, events=export.events)
    (d1,) = result.results
    assert d1.sequential is not None and d1.sequential.looks_with_data > 0
    if days == 8:  # the look was taken: its repeated interval is unbounded
        assert d1.sequential.looks and not np.isfinite(d1.sequential.looks[0].ci).all()
    assert d1.decision.outcome == "continue", d1.decision
    assert d1.decision.reason is None


def _summary(control: float, treatment: float, n: int, days: int = 4) -> pl.DataFrame:
    """Cumulative checkpoints of a proportion, the arms' means fixed, n growing."""
    return pl.DataFrame(
        {
            "variant": ["control", "t"] * days,
            "day": [d for d in range(1, days + 1) for _ in range(2)],
            "n": [n * d for d in range(1, days + 1) for _ in range(2)],
            "mean": [control, treatment] * days,
        }
    )


def test_constant_but_unequal_arms_are_a_difference_not_a_gap():
    """0 of 400 against 400 of 400: the unpooled se is 0, the pooled test rejects."""
    rows = _summary(0.0, 1.0, 400, days=1).drop("day")
    config = {"metrics": [{"name": "metric", "type": "proportion", "column": "metric"}]}
    (r,) = abkit.analyze(rows, config).results
    assert r.decision.outcome == "better", r.decision


@pytest.mark.parametrize("method", [None, "msprt", "cs"])
def test_the_caution_of_a_guardrail_that_should_increase(method):
    """A rate that should rise falls 6 % (significant) within a 20 % margin: a pass,
    flagged, at a fixed horizon and under always-valid monitoring alike."""
    rows = _summary(0.50, 0.47, 100_000)
    guard = {"guardrail": True, "relative_margin": 0.2}
    config: dict = {
        "input": {"cumulative": True},
        "metrics": [{"name": "metric", "type": "proportion", "column": "metric", **guard}],
    }
    if method:
        config["sequential"] = {"method": method, "target_units": 800_000}
    else:
        rows = rows.filter(pl.col("day") == 4)
    (r,) = abkit.analyze(rows, config).results
    assert r.direction == "increase" and r.effect < 0
    assert r.decision.outcome == "guardrail pass", r.decision
    assert r.decision.caution == "significantly worse, within the margin"
    # the same fall in a metric that should fall is no harm at all
    down = {**config["metrics"][0], "direction": "decrease"}
    (good,) = abkit.analyze(rows, {**config, "metrics": [down]}).results
    assert good.decision.caution is None
