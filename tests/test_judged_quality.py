"""The judged_quality metric type end to end: configuration, the per-user sums the units
stage keeps, the PPI++ comparison and what every output shows beside it.

The expected values come from outside the pipeline: the per-output rows of the simulated
events, grouped per user here with Polars and handed to :mod:`abkit.stats.ppi` (tested
against ppi_py and statsmodels in tests/test_ppi.py), and the judge-only effect of the
existing event_mean type on the same judge column.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit import AnalysisResult
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError, ConfigError
from abkit.json_codec import to_jsonable
from abkit.report.format import audit_rows, judged_rows
from abkit.report.markdown import escape as md_escape
from abkit.stats.judged import judged_comparison
from abkit.stats.noninferiority import noninferiority_test
from abkit.stats.ppi import JudgeAgreement, JudgedArm, PassFail, ppi_test
from abkit_cli.main import cli
from tests.engines import required

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
    # the judge-only effect beside PPI++ is event_mean's on the same judge column
    judged = quality.judged
    assert judged is not None
    assert judged.judge.effect == pytest.approx(naive.effect, rel=1e-9)
    # its CR0 variance lacks the ratio test's u/(u − 1) (abkit.stats.ppi.judge_mean)
    assert judged.judge.ci == pytest.approx(naive.ci, rel=1e-4)
    assert judged.judge.control_value == pytest.approx(naive.control_value, rel=1e-9)
    assert any(w.startswith("the judge's bias differs between the arms") for w in quality.warnings)
    # the detail is not repeated as warnings: only failed checks are
    assert quality.warnings == (
        next(w for w in quality.warnings if w.startswith("the judge's bias differs")),
    )


def _numbers(value, path="$"):
    """Every number of a JSON value by its path (to compare two details leaf by leaf)."""
    if isinstance(value, dict):
        return {k: v for key, x in value.items() for k, v in _numbers(x, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, x in enumerate(value) for k, v in _numbers(x, f"{path}[{i}]").items()}
    return {path: value}


def test_the_detail_equals_the_ppi_functions_on_the_rows(export, result):
    quality = next(r for r in result.results if r.metric == "quality")
    arms = _arms_by_hand(export)
    _, expected = judged_comparison(arms["control"], arms["treatment"], 0.05)
    got, want = _numbers(to_jsonable(quality.judged)), _numbers(to_jsonable(expected))
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert got[key] == value, key
    # the counts by hand from the rows
    rows = export.events.filter(pl.col("event") == "judge_score").join(
        export.assignments.select("user_id", "variant"), on="user_id"
    )
    treated = rows.filter(pl.col("variant") == "treatment")
    arm = quality.judged.treatment
    assert arm.labelled == treated["human_score"].is_not_null().sum()
    assert arm.unlabelled == treated["human_score"].is_null().sum()
    assert arm.users == treated["user_id"].n_unique()


def test_every_output_shows_the_correction_the_naive_effect_and_the_audit(result):
    quality = next(r for r in result.results if r.metric == "quality")
    d = quality.judged
    outputs = {
        "text": result.to_text(width=400),
        "markdown": result.to_markdown().replace("\u00a0", " "),  # no-break spaces
        "html": result.to_html(),
    }
    # the same cells, from the same typed detail, in every output
    cells = [c for row in judged_rows(quality) + audit_rows(quality) for c in row]
    for name, text in outputs.items():
        for needle in ("LLM-judge quality", "judge only", "human labels only", "judge − human"):
            assert needle in text, (name, needle)
        assert "narrower than the human-only one" in text, name
        for cell in cells:
            assert cell in text or html.escape(cell) in text or md_escape(cell) in text, (
                name,
                cell,
            )
    assert f"{d.judge.effect:+.4g}" in outputs["text"]
    assert (
        f"{d.control.labelled:,} of {d.control.labelled + d.control.unlabelled:,}"
        in (outputs["html"])
    )
    assert json.loads(json.dumps(quality.to_dict()))["judged"]["width_ratio"] == d.width_ratio
    naive = next(r for r in result.results if r.metric == "judge_mean")
    assert "judged" not in naive.to_dict()  # no key for the other metrics


def test_results_json_reads_back_and_redraws_the_same_report(result, tmp_path):
    back = AnalysisResult.from_dict(json.loads(result.to_json()))
    quality = next(r for r in back.results if r.metric == "quality")
    assert quality.judged == next(r for r in result.results if r.metric == "quality").judged
    assert type(quality.judged.control.audit) is JudgeAgreement
    assert back.to_text() == result.to_text()
    assert back.to_markdown() == result.to_markdown()
    assert back.to_html() == result.to_html()
    first = result.save(tmp_path / "a")
    out = CliRunner().invoke(cli, ["report", str(first["results"]), "--out", str(tmp_path / "b")])
    assert out.exit_code == 0, out.output
    redrawn = (tmp_path / "b" / "report.md").read_text()
    assert redrawn == first["report"].read_text()
    assert "LLM-judge quality" in redrawn


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
    result = abkit.analyze(export.assignments, {"metrics": [JUDGED]}, events=events)
    (res,) = result.results
    assert res.decision.outcome == "not computable"
    assert np.isnan(res.p_value)
    assert "no human labels" in res.decision.reason
    # the detail keeps what could be computed (the judge alone) and says why not the rest
    assert res.judged.treatment.ppi.undefined and np.isnan(res.judged.human.effect)
    assert np.isfinite(res.judged.judge.effect)
    assert "n/a" in result.to_text(width=400) and result.to_markdown() and result.to_html()
    back = AnalysisResult.from_dict(json.loads(result.to_json()))
    assert back.to_text() == result.to_text()


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
    result = abkit.analyze(export.assignments, {"metrics": [JUDGED]}, events=events)
    (res,) = result.results
    labelled = events.filter(pl.col("human_score").is_not_null()).join(
        export.assignments.select("user_id", "variant"), on="user_id"
    )
    text = result.to_text(width=400)
    assert "pass/fail: both pass, judge only, human only, both fail" in text
    for variant in ("control", "treatment"):
        rows = labelled.filter(pl.col("variant") == variant)
        f, y = rows["value"].to_numpy(), rows["human_score"].to_numpy()
        counts = [int(((f == a) & (y == b)).sum()) for a, b in ((1, 1), (1, 0), (0, 1), (0, 0))]
        assert getattr(res.judged, variant).audit.confusion == PassFail(*counts)
        assert ", ".join(f"{c:,}" for c in counts) in text


def test_duckdb_gives_the_polars_numbers():
    required("duckdb")
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
    polars, duckdb = (_numbers(runs[e]["quality"]["judged"]) for e in ("polars", "duckdb"))
    assert polars.keys() == duckdb.keys()
    for key, value in polars.items():
        assert duckdb[key] == (
            pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
        )


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


def test_judged_tests_take_engines_from_required_so_they_fail_under_ci() -> None:
    """A judged-quality test that needs an engine or ppi_py imports it with
    ``tests.engines.required`` (fails under CI=true), never ``pytest.importorskip``."""
    here = Path(__file__).parent
    files = [
        *here.glob("test_judged*.py"),
        *here.glob("test_ppi*.py"),
        here / "test_optional_columns.py",
    ]
    call = "pytest." + "importorskip("  # split, so that this file does not match itself
    skipping = [f.name for f in files if call in f.read_text()]
    assert skipping == []
