"""Repeated judgements of one output in the pipeline (judged_quality with ``output``):
the repeats are averaged per (user, output id) on the events' engine before the per-user
sums, and the report carries the judge-noise split.

The expected values come from outside the pipeline: the judge_score rows grouped per
output here with Polars and handed to :func:`abkit.stats.ppi.ppi_test`, and the rows
themselves handed to :func:`abkit.stats.judge_noise.judge_noise` (tested against
statsmodels and a simulation in tests/test_ppi_judge_noise.py).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl
import pytest

import abkit
from abkit import AnalysisResult
from abkit.dev.simulate import simulate
from abkit.errors import ConfigError
from abkit.json_codec import to_jsonable
from abkit.metrics.judged_quality import UNMATCHED_LABEL
from abkit.stats.judge_noise import judge_noise
from abkit.stats.ppi import JudgedArm, ppi_test
from tests.engines import assert_same_numbers, required, to_duckdb, to_ibis

JUDGED = {
    "name": "quality",
    "type": "judged_quality",
    "column": "judge_score.value",
    "human": "judge_score.human_score",
    "output": "judge_score.output_id",
}


@pytest.fixture(scope="module")
def export() -> Any:
    """Three noisy runs per output, about 40 % of the second and third runs dropped:
    outputs judged once, twice or three times."""
    sim = simulate(
        users=1500, judge_rate=0.5, human_share=0.2, judge_noise=0.5, judge_runs=3, seed=2
    )
    rng = np.random.default_rng(1)
    dropped = pl.Series(rng.random(sim.events.height) < 0.4)
    drop = (pl.col("event") == "judge_score") & (pl.col("judge_run") > 0) & dropped
    return sim.assignments, sim.events.filter(~drop)


@pytest.fixture(scope="module")
def result(export) -> Any:
    assignments, events = export
    return abkit.analyze(assignments, {"metrics": [JUDGED]}, events=events)


def _judgements(export, variant: str) -> pl.DataFrame:
    assignments, events = export
    rows = events.filter(pl.col("event") == "judge_score").join(
        assignments.select("user_id", "variant"), on="user_id"
    )
    return rows.filter(pl.col("variant") == variant)


def _outputs_by_hand(rows: pl.DataFrame) -> JudgedArm:
    """One row per output: its judge scores averaged, its label."""
    outputs = rows.group_by("user_id", "output_id").agg(
        pl.col("value").mean(), pl.col("human_score").drop_nulls().mean()
    )
    return JudgedArm.from_outputs(
        outputs["user_id"].to_numpy(),
        outputs["value"].to_numpy(),
        outputs["human_score"].fill_null(np.nan).to_numpy(),
    )


def test_the_repeats_are_unequal(export):
    runs = _judgements(export, "control").group_by("output_id").len()["len"]
    assert set(runs.unique().to_list()) == {1, 2, 3}


def test_ppi_is_computed_on_the_outputs_averaged_repeats(export, result):
    (quality,) = result.results
    arms = {v: _outputs_by_hand(_judgements(export, v)) for v in ("control", "treatment")}
    expected = ppi_test(arms["control"], arms["treatment"], 0.05)
    assert quality.effect == pytest.approx(expected.ppi.effect, rel=1e-9)
    assert quality.ci == pytest.approx(expected.ppi.ci, rel=1e-9)
    assert quality.p_value == pytest.approx(expected.ppi.p_value, rel=1e-9)
    assert not any("different human labels" in w for w in quality.warnings)
    assert quality.judged.judge.effect == pytest.approx(expected.judge.effect, rel=1e-9)
    for v in ("control", "treatment"):
        arm = getattr(quality.judged, v)
        assert arm.labelled == arms[v].n_labelled and arm.unlabelled == arms[v].n_unlabelled
    # not the rows as outputs: the averaging changes the answer
    rows = {
        v: JudgedArm.from_outputs(
            r["user_id"].to_numpy(), r["value"].to_numpy(), r["human_score"].fill_null(np.nan)
        )
        for v in ("control", "treatment")
        if (r := _judgements(export, v)).height
    }
    naive = ppi_test(rows["control"], rows["treatment"], 0.05).ppi
    assert naive.effect != pytest.approx(quality.effect, rel=1e-3)


def test_the_noise_split_equals_judge_noise_on_the_rows(export, result):
    (quality,) = result.results
    for v in ("control", "treatment"):
        rows = _judgements(export, v)
        expected = judge_noise(
            rows["user_id"].to_numpy(),
            rows["output_id"].to_numpy(),
            rows["value"].to_numpy(),
            rows["human_score"].fill_null(np.nan).to_numpy(),
        )
        got = getattr(quality.judged, v).noise
        assert got is not None and got.more == expected.more == (1, 2, 4)
        for name in ("outputs", "mean_runs", "noise_variance", "between_variance", "variance"):
            assert getattr(got, name) == pytest.approx(getattr(expected, name), rel=1e-9), name
        assert got.noise_share == pytest.approx(expected.noise_share, rel=1e-9)
        assert got.widths == pytest.approx(expected.widths, rel=1e-9)
    # the simulated noise sd is 0.5
    assert quality.judged.control.noise.noise_variance == pytest.approx(0.25, rel=0.05)


def test_duckdb_gives_the_polars_numbers(export, result):
    connection = required("duckdb").connect()
    connection.execute("SET TimeZone = 'UTC'")
    assignments, events = export
    on_duckdb = abkit.analyze(
        to_duckdb(assignments, connection),
        {"metrics": [JUDGED]},
        events=to_duckdb(events, connection),
    )
    assert on_duckdb.results[0].judged.control.noise is not None
    assert_same_numbers(result.to_dict(), on_duckdb.to_dict())


def test_ibis_gives_the_polars_numbers_with_nan_labels(export, result):
    """The window averages and the NaN labels of an optional column (written as NaN
    here) through Ibis (DuckDB backend), as on Polars with null labels.  (SQLFrame gives
    them too, checked by hand: it spends about 45 s generating SQL for this analysis.)"""
    assignments, events = export
    events = events.with_columns(pl.col("human_score").fill_null(float("nan")))
    backend = required("ibis").duckdb.connect()
    other = abkit.analyze(
        to_ibis(assignments, backend, "a"),
        {"metrics": [JUDGED]},
        events=to_ibis(events, backend, "e"),
    )
    assert_same_numbers(result.to_dict(), other.to_dict())


def test_text_ids_and_outputs_without_an_id(export, result):
    """An output id of any type; a judgement without one is an output of its own."""
    assignments, events = export
    as_text = events.with_columns(pl.col("output_id").cast(pl.String))
    text_ids = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=as_text)
    assert_same_numbers(result.to_dict(), text_ids.to_dict(), rel=0.0)
    # single judgements lose their id: still one output each (a unique id by hand)
    runs = events.group_by("output_id").len().rename({"len": "runs"})
    with_runs = events.join(runs, on="output_id", how="left")
    single = (pl.col("runs") == 1) & (pl.col("event") == "judge_score")
    unique_ids = with_runs.with_columns(
        output_id=pl.when(single).then(-pl.int_range(1, pl.len() + 1)).otherwise("output_id")
    ).drop("runs")
    no_ids = with_runs.with_columns(
        output_id=pl.when(single).then(None).otherwise("output_id")
    ).drop("runs")
    assert no_ids["output_id"].null_count() > 100
    by_hand = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=unique_ids)
    without = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=no_ids)
    assert_same_numbers(by_hand.to_dict()["results"], without.to_dict()["results"])


def test_every_output_shows_the_noise_split_and_json_reads_it_back(result):
    (quality,) = result.results
    noise = quality.judged.treatment.noise
    cells = [f"{noise.widths[0]:.3f}", "noise share of the PPI++ variance", "width, 4 more"]
    for text in (result.to_text(), result.to_markdown(), result.to_html()):
        assert all(c in text for c in cells)
    back = AnalysisResult.from_dict(json.loads(result.to_json()))
    assert back.results[0].judged == quality.judged
    assert back.to_text() == result.to_text() and back.to_html() == result.to_html()


def test_without_an_output_id_there_is_no_noise_split(export):
    assignments, events = export
    metric = {k: v for k, v in JUDGED.items() if k != "output"}
    (res,) = abkit.analyze(assignments, {"metrics": [metric]}, events=events).results
    assert res.judged.control.noise is None
    assert (
        "noise share"
        not in abkit.analyze(assignments, {"metrics": [metric]}, events=events).to_text()
    )


@pytest.mark.parametrize(
    "output", ["ai_output.output_id", "judge_score", "judge_score.value", "judge_score.human_score"]
)
def test_an_output_id_not_of_the_judge_event_is_refused(export, output):
    assignments, events = export
    with pytest.raises(ConfigError, match="the id of the judged output"):
        abkit.analyze(assignments, {"metrics": [{**JUDGED, "output": output}]}, events=events)


def test_the_judged_tables_fit_where_people_read_them(result, tmp_path):
    """report.md at GitHub's 880 px and report.html at 880 px, in headless Chromium:
    every column of the estimates, audit and judge-noise tables visible."""
    from tests.browser import WIDTH, assert_nothing_cut_off, github_page, look

    page = github_page(result.to_markdown(), tmp_path, "judged-md")
    assert_nothing_cut_off(look(page, tmp_path, "judged-md"), "report.md")
    html = tmp_path / "judged.html"
    html.write_text(result.to_html_page(plots=False), encoding="utf-8")
    measured = look(html, tmp_path, "judged-html")
    assert_nothing_cut_off(measured, "report.html")
    assert measured["page"] <= WIDTH, "the page scrolls sideways"


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_an_output_with_two_labels_is_averaged_and_warned_about(export, engine):
    assignments, events = export
    judged = events.filter(pl.col("event") == "judge_score")
    twice = judged.filter(pl.col("human_score").is_not_null()).group_by("output_id").len()
    changed = twice.filter(pl.col("len") > 1)["output_id"].head(3).implode()
    rerun = (pl.col("output_id").is_in(changed)) & (pl.col("judge_run") > 0)
    conflicting = events.with_columns(
        human_score=pl.when(rerun).then(pl.col("human_score") + 1).otherwise("human_score")
    )
    expected = {
        v: _outputs_by_hand(_judgements((assignments, conflicting), v))
        for v in ("control", "treatment")
    }
    want = ppi_test(expected["control"], expected["treatment"], 0.05).ppi
    if engine == "duckdb":
        connection = required("duckdb").connect()
        connection.execute("SET TimeZone = 'UTC'")
        assignments, conflicting = (to_duckdb(f, connection) for f in (assignments, conflicting))
    (res,) = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=conflicting).results
    assert res.effect == pytest.approx(want.effect, rel=1e-9)
    assert any(
        w.startswith("3 judged output(s) carry different human labels") for w in res.warnings
    )


def test_a_noise_larger_than_the_outputs_spread_is_not_identifiable():
    """Two runs per output at its judge score ± 3 (repeats that are not independent): the
    repeats' noise exceeds the output means' whole spread, so the raw between-output
    variance is negative. It is clamped at 0, the noise share is at most 100 %, no width
    is floored to 0, and every renderer says the split is not identifiable."""
    sim = simulate(users=600, judge_rate=0.5, human_share=0.3, judge_runs=2, seed=4)
    rng = np.random.default_rng(0)
    judge = pl.col("event") == "judge_score"
    sign = pl.when(pl.col("judge_run") == 0).then(3.0).otherwise(-3.0)
    tiny = pl.Series(rng.normal(0.0, 0.01, sim.events.height))
    events = sim.events.with_columns(
        value=pl.when(judge).then(pl.col("value") + sign + tiny).otherwise(pl.col("value"))
    )
    rows = events.filter(judge)
    raw = judge_noise(
        rows["user_id"].to_numpy(),
        rows["output_id"].to_numpy(),
        rows["value"].to_numpy(),
        rows["human_score"].to_numpy(),
    )
    (res,) = (
        result := abkit.analyze(sim.assignments, {"metrics": [JUDGED]}, events=events)
    ).results
    for noise in (raw, res.judged.control.noise, res.judged.treatment.noise):
        assert noise is not None and not noise.identifiable
        assert noise.between_variance == 0.0
        assert 0.0 < noise.noise_share <= 1.0
        assert all(w > 0.0 for w in noise.widths)
    for text in (result.to_text(width=400), result.to_markdown(), result.to_html()):
        assert "not identifiable" in text
        assert "0.000" not in text.split("noise share")[-1].split("judge bias")[0]
    back = AnalysisResult.from_dict(json.loads(result.to_json()))
    assert back.results[0].judged == res.judged


def _same_time_pass_fail(seed: int = 2) -> Any:
    """A pass/fail judge whose three runs carry the output's time: most repeats of an
    output are identical events but for their run (the third run flips about half)."""
    sim = simulate(users=800, judge_rate=0.5, human_share=0.3, judge_runs=3, seed=seed)
    rng = np.random.default_rng(seed)
    judge = pl.col("event") == "judge_score"
    flip = pl.Series(rng.random(sim.events.height) < 0.5)
    first = pl.col("timestamp").min().over("user_id", "output_id")
    passed = (pl.col("value") >= pl.col("value").median().over("event")).cast(pl.Float64)
    base = passed.first().over("user_id", "output_id", order_by="judge_run")
    events = sim.events.with_columns(
        timestamp=pl.when(judge).then(first).otherwise(pl.col("timestamp")),
        value=pl.when(judge & (pl.col("judge_run") == 2) & flip)
        .then(1.0 - base)
        .when(judge)
        .then(base)
        .otherwise(pl.col("value")),
        human_score=pl.when(judge).then(pl.col("human_score").round().clip(0, 1)),
    )
    return sim.assignments, events


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_identical_repeats_are_kept_with_a_run_column(engine):
    """Repeats with the same time and score differ only in their run: with run =
    'judge_score.judge_run' none is dropped as a duplicate and each output's judge mean
    is that of its three runs; without it a note says duplicates were dropped and asks
    for the run column."""
    assignments, events = _same_time_pass_fail()
    given = events
    if engine == "duckdb":
        connection = required("duckdb").connect()
        connection.execute("SET TimeZone = 'UTC'")
        given = to_duckdb(events, connection)
    with_run = abkit.analyze(
        assignments, {"metrics": [{**JUDGED, "run": "judge_score.judge_run"}]}, events=given
    )
    without = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=given)
    (res,) = with_run.results
    for variant in ("control", "treatment"):
        rows = _judgements((assignments, events), variant)
        by_hand = judge_noise(
            rows["user_id"].to_numpy(),
            rows["output_id"].to_numpy(),
            rows["value"].to_numpy(),
            rows["human_score"].fill_null(np.nan).to_numpy(),
        )
        noise = getattr(res.judged, variant).noise
        assert noise.mean_runs == pytest.approx(3.0) == by_hand.mean_runs
        assert noise.noise_variance == pytest.approx(by_hand.noise_variance, rel=1e-9)
    assert "duplicate" not in json.dumps(with_run.to_dict()["exclusions"])
    assert not any("run column" in n for n in with_run.notes)
    (bad,) = without.results
    assert bad.judged.control.noise.mean_runs < 2.0
    assert any(
        "need a run column" in n and "run = 'judge_score.<column>'" in n for n in without.notes
    )


def _labels_on_rows_of_their_own(seed: int = 5) -> Any:
    """Each label moved from the judgements to a judge row of its own, with no score, an
    hour later (as an export that appends the people's labels writes it)."""
    sim = simulate(
        users=1000, judge_rate=0.5, human_share=0.2, judge_noise=0.3, judge_runs=2, seed=seed
    )
    events = sim.events
    judge = pl.col("event") == "judge_score"
    labels = events.filter(
        judge & (pl.col("judge_run") == 0) & pl.col("human_score").is_not_null()
    ).with_columns(
        value=pl.lit(None, pl.Float64), timestamp=pl.col("timestamp") + pl.duration(hours=1)
    )
    moved = events.with_columns(human_score=pl.when(~judge).then(pl.col("human_score")))
    return sim.assignments, events, pl.concat([moved, labels]), labels.height


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_a_label_on_a_row_without_a_score_is_its_outputs_label(engine):
    """With an output id, an output's label is taken from any of its judge rows: labels
    written on rows of their own give the numbers of labels on the judgements."""
    assignments, events, moved, _ = _labels_on_rows_of_their_own()
    if engine == "duckdb":
        connection = required("duckdb").connect()
        connection.execute("SET TimeZone = 'UTC'")
        moved = to_duckdb(moved, connection)
    (on_judgements,) = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=events).results
    (on_own_rows,) = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=moved).results
    assert on_own_rows.judged.control.labelled > 1000
    assert_same_numbers(to_jsonable(on_judgements.judged), to_jsonable(on_own_rows.judged))
    assert on_own_rows.effect == pytest.approx(on_judgements.effect, rel=1e-12)


def test_without_an_output_id_a_label_without_a_score_is_excluded_and_counted():
    """Without an output id a label on a row without a score belongs to no judged output:
    the row is excluded with a reason saying so, and the events' ledger adds up."""
    assignments, _, moved, labels = _labels_on_rows_of_their_own()
    metric = {k: v for k, v in JUDGED.items() if k != "output"}
    result = abkit.analyze(assignments, {"metrics": [metric]}, events=moved)
    rows = result.rows["events"]
    assert rows.read == moved.height == rows.used + rows.excluded
    reasons = {e.reason: e.rows for e in result.exclusions if e.table == "events"}
    assert reasons[UNMATCHED_LABEL] == labels
    assert sum(reasons.values()) == rows.excluded
    assert result.results[0].judged.control.labelled == 0


def test_a_label_whose_output_has_no_judgement_is_warned_about():
    """A label row (no score) whose output id no judgement of the user carries cannot
    be used: a warning counts such labels, and the numbers are those without them."""
    assignments, _, moved, _ = _labels_on_rows_of_their_own()
    judge = pl.col("event") == "judge_score"
    stray = moved.filter(judge & pl.col("value").is_null()).head(25)
    stray = stray.with_columns(output_id=pl.col("output_id") + 10_000_000)
    (clean,) = abkit.analyze(assignments, {"metrics": [JUDGED]}, events=moved).results
    (res,) = abkit.analyze(
        assignments, {"metrics": [JUDGED]}, events=pl.concat([moved, stray])
    ).results
    assert any(
        w.startswith("25 human label(s) on judge rows without a score") for w in res.warnings
    )
    assert not any("without a score" in w for w in clean.warnings)
    assert_same_numbers(to_jsonable(clean.judged), to_jsonable(res.judged))
