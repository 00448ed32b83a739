"""The judged_quality metric type end to end: configuration, the per-user sums the units
stage keeps, the PPI++ comparison and what every output shows beside it.

The expected values come from outside the pipeline: the per-output rows of the simulated
events, grouped per user here with Polars and handed to :mod:`abkit.stats.ppi` (tested
against ppi_py and statsmodels in tests/test_ppi.py), and the judge-only effect of the
existing event_mean type on the same judge column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError, ConfigError
from abkit.stats.noninferiority import noninferiority_test
from abkit.stats.ppi import JudgedArm, ppi_test
from abkit_cli.main import cli

JUDGED = {
    "name": "quality",
    "type": "judged_quality",
    "column": "judge_score.value",
    "human": "judge_score.human_score",
}
JUDGE_ONLY = {"name": "judge_mean", "type": "event_mean", "column": "judge_score.value"}


@pytest.fixture(scope="module")
def export():
    """A judge that favours the treatment's style by +0.15 and does not change quality."""
    return simulate(
        users=3000, judge_rate=0.5, human_share=0.1, judge_bias=0.15, judge_noise=0.3, seed=3
    )


@pytest.fixture(scope="module")
def result(export):
    return abkit.analyze(
        export.assignments, {"metrics": [JUDGED, JUDGE_ONLY]}, events=export.events
    )


def _arms_by_hand(export) -> dict[str, JudgedArm]:
    """Per variant, the arm's sums from the judge_score rows (every event is after its
    user's assignment and within the export in the simulator)."""
    rows = export.events.filter(pl.col("event") == "judge_score").join(
        export.assignments.select("user_id", "variant"), on="user_id"
    )
    return {
        v: JudgedArm.from_outputs(
            part["user_id"].to_numpy(),
            part["value"].to_numpy(),
            part["human_score"].fill_null(np.nan).to_numpy(),
        )
        for v in ("control", "treatment")
        if (part := rows.filter(pl.col("variant") == v)).height
    }


def test_the_pipeline_equals_ppi_on_the_rows(export, result):
    quality = next(r for r in result.results if r.metric == "quality")
    arms = _arms_by_hand(export)
    expected = ppi_test(arms["control"], arms["treatment"], 0.05)
    assert quality.method == expected.ppi.method
    assert quality.control_value == pytest.approx(expected.ppi.control_value, rel=1e-9)
    assert quality.effect == pytest.approx(expected.ppi.effect, rel=1e-9)
    assert quality.ci == pytest.approx(expected.ppi.ci, rel=1e-9)
    assert quality.relative_ci == pytest.approx(expected.ppi.relative_ci, rel=1e-9)
    assert quality.p_value == pytest.approx(expected.ppi.p_value, rel=1e-9)


def test_the_naive_judge_says_better_and_ppi_does_not(result):
    quality = next(r for r in result.results if r.metric == "quality")
    naive = next(r for r in result.results if r.metric == "judge_mean")
    assert naive.decision.outcome == "better"
    assert quality.decision.outcome == "no significant difference"
    # the judge-only effect quoted beside PPI++ is event_mean's on the same column
    line = next(w for w in quality.warnings if w.startswith("compared with the judge alone"))
    assert f"judge-only effect {naive.effect:+.4g} [{naive.ci[0]:+.4g}" in line
    assert any(w.startswith("the judge's bias differs between the arms") for w in quality.warnings)


def test_every_output_shows_the_correction_the_naive_effect_and_the_audit(result):
    quality = next(r for r in result.results if r.metric == "quality")
    outputs = {
        "text": result.to_text(width=400),
        "markdown": result.to_markdown(),
        "html": result.to_html(),
        "json": json.dumps(quality.to_dict(), ensure_ascii=False),
    }
    for name, text in outputs.items():
        for needle in ("PPI++", "judge-only effect", "human labels only", "judge audit"):
            assert needle in text, (name, needle)
        assert "narrower than the human-only one" in text, name


def test_an_equal_labelled_share_and_random_labels_raise_no_warning(result):
    quality = next(r for r in result.results if r.metric == "quality")
    assert not any("labelled share differs" in w for w in quality.warnings)
    assert not any("labelled outputs' judge scores differ" in w for w in quality.warnings)


def test_labels_on_outputs_the_judge_liked_are_warned_about(export):
    events = export.events.with_columns(
        human_score=pl.when(pl.col("value") > 0.8).then(pl.col("human_score"))
    )
    res = abkit.analyze(export.assignments, {"metrics": [JUDGED]}, events=events)
    assert any("labelled outputs' judge scores differ" in w for w in res.results[0].warnings)


def test_an_arm_without_labels_is_not_computable(export):
    treated = export.assignments.filter(pl.col("variant") == "treatment")["user_id"]
    events = export.events.with_columns(
        human_score=pl.when(~pl.col("user_id").is_in(treated.implode())).then(pl.col("human_score"))
    )
    (res,) = abkit.analyze(export.assignments, {"metrics": [JUDGED]}, events=events).results
    assert res.decision.outcome == "not computable"
    assert np.isnan(res.p_value)
    assert "no human labels" in res.decision.reason


def test_repeated_judgements_are_analysed():
    """Three noisy runs per output: each run is a row with the output's label, so with
    equal runs per output the arm mean is the mean of the outputs' averaged scores."""
    export = simulate(users=1500, judge_rate=0.5, human_share=0.2, judge_noise=0.5, judge_runs=3)
    (res,) = abkit.analyze(export.assignments, {"metrics": [JUDGED]}, events=export.events).results
    arms = _arms_by_hand(export)
    expected = ppi_test(arms["control"], arms["treatment"], 0.05)
    assert res.effect == pytest.approx(expected.ppi.effect, rel=1e-9)
    judged = export.events.filter(pl.col("event") == "judge_score")
    assert judged.group_by("output_id").len()["len"].unique().to_list() == [3]


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ({**JUDGED, "human": None}, "needs the key 'human'"),
        ({**JUDGED, "human": "thumbs_up.value"}, "column of the same event"),
        ({**JUDGED, "human": "judge_score"}, "column of the same event"),
        ({**JUDGED, "human": "judge_score.value"}, "column of its own"),
    ],
)
def test_bad_configuration_is_refused(export, metric, message):
    metric = {k: v for k, v in metric.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        abkit.analyze(export.assignments, {"metrics": [metric]}, events=export.events)


def test_a_unit_level_table_is_refused():
    units = pl.DataFrame({"user_id": [1, 2], "variant": ["control", "treatment"], "x": [1.0, 2]})
    metric = {**JUDGED, "column": "x.value", "human": "x.human"}
    with pytest.raises(AbkitInputError, match=r"judged_quality.*event-level input"):
        abkit.analyze(units, {"metrics": [metric]})


def test_the_bundled_example_judge_says_better_and_the_correction_does_not():
    """examples/llm_judge: the same quality in both arms, a judge 0.15 kinder to model_b
    (its experiment.toml says how it was simulated)."""
    example = Path(__file__).parent.parent / "examples" / "llm_judge"
    args = [str(example / "assignments.parquet"), str(example / "events.parquet")]
    out = CliRunner().invoke(
        cli, ["analyze", *args, "-c", str(example / "experiment.toml"), "-f", "json"]
    )
    assert out.exit_code == 0, out.output
    rows = {r["metric"]: r for r in json.loads(out.stdout)["results"]}
    assert rows["judge_score"]["decision"]["outcome"] == "better"
    assert rows["quality"]["decision"]["outcome"] == "no significant difference"
    low, high = rows["quality"]["ci"]
    assert low < 0 < high
    assert any(w.startswith("the judge's bias differs") for w in rows["quality"]["warnings"])


def test_a_judged_quality_guardrail_is_a_noninferiority_test_on_the_ppi_effect(export):
    guard = {**JUDGED, "guardrail": True, "margin": 0.1}
    (res,) = abkit.analyze(export.assignments, {"metrics": [guard]}, events=export.events).results
    arms = _arms_by_hand(export)
    comp = ppi_test(arms["control"], arms["treatment"], 0.05).ppi
    expected = noninferiority_test(comp.effect, comp.se, 0.1, True, 0.05)
    assert res.guardrail is not None
    assert res.guardrail.p_value == pytest.approx(expected.p_value, rel=1e-9)
    assert res.guardrail.bound == pytest.approx(expected.bound, rel=1e-9)
    assert res.decision.outcome == f"guardrail {expected.verdict}" == "guardrail pass"


def test_a_pass_fail_judge_gets_its_confusion_table():
    export = simulate(users=1500, judge_rate=0.5, human_share=0.3, seed=5)
    rng = np.random.default_rng(5)
    flip = pl.Series(rng.random(export.events.height) < 0.2)
    events = export.events.with_columns(
        value=pl.when(flip & (pl.col("event") == "judge_score"))
        .then(1 - pl.col("value"))
        .otherwise(pl.col("value"))
    )
    (res,) = abkit.analyze(export.assignments, {"metrics": [JUDGED]}, events=events).results
    audit = next(w for w in res.warnings if w.startswith("judge audit"))
    labelled = events.filter(pl.col("human_score").is_not_null()).join(
        export.assignments.select("user_id", "variant"), on="user_id"
    )
    for variant, name in (("control", "control"), ("treatment", "treatment")):
        rows = labelled.filter(pl.col("variant") == variant)
        f, y = rows["value"].to_numpy(), rows["human_score"].to_numpy()
        counts = [((f == a) & (y == b)).sum() for a, b in ((1, 1), (1, 0), (0, 1), (0, 0))]
        assert (
            f"{name} " in audit
            and f"(pass/fail: both pass {counts[0]:,}, judge only {counts[1]:,}, human only "
            f"{counts[2]:,}, both fail {counts[3]:,})"
            in audit
        )


def test_duckdb_gives_the_polars_numbers():
    pytest.importorskip("duckdb")
    example = Path(__file__).parent.parent / "examples" / "llm_judge"
    args = [str(example / "assignments.parquet"), str(example / "events.parquet")]
    runs = {}
    for engine in ("polars", "duckdb"):
        config = ["-c", str(example / "experiment.toml")]
        out = CliRunner().invoke(cli, ["analyze", *args, *config, "-f", "json", "--engine", engine])
        assert out.exit_code == 0, out.output
        runs[engine] = {r["metric"]: r for r in json.loads(out.stdout)["results"]}
    for key in ("effect", "ci", "p_value", "warnings"):
        assert runs["duckdb"]["quality"][key] == pytest.approx(runs["polars"]["quality"][key])


def test_the_simulated_judge_has_the_bias_noise_and_labels_asked_for():
    export = simulate(
        users=3000,
        judge_rate=0.5,
        human_share=0.2,
        judge_bias=0.3,
        judge_noise=0.4,
        judge_runs=2,
        seed=6,
    )
    judged = export.events.filter(pl.col("event") == "judge_score").join(
        export.assignments.select("user_id", "variant"), on="user_id"
    )
    outputs = judged.group_by("output_id").agg(
        pl.col("variant").first(),
        pl.col("human_score").first(),
        pl.col("value").mean().alias("mean"),
        (pl.col("value").first() - pl.col("value").last()).alias("gap"),
    )
    assert outputs["human_score"].is_not_null().mean() == pytest.approx(0.2, abs=0.01)
    # two runs: Var(run 1 − run 2) = 2σ²
    assert outputs["gap"].var() / 2 == pytest.approx(0.4**2, rel=0.05)
    labelled = outputs.filter(pl.col("human_score").is_not_null())
    bias = labelled.group_by("variant").agg((pl.col("mean") - pl.col("human_score")).mean())
    by_arm = dict(bias.iter_rows())
    assert by_arm["control"] == pytest.approx(0.0, abs=0.03)
    assert by_arm["treatment"] == pytest.approx(0.3, abs=0.03)
