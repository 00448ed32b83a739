"""Paired exports through abkit.analyze and the CLI: one row per input and version
(a shadow or replay run), exclusions, defaults, refusals, every output format, and
the pipeline's A/A size and coverage."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import scipy.stats as st
import statsmodels.api as sm
from click.testing import CliRunner

import abkit
from abkit.api import AnalysisResult
from abkit.dev.replay import simulate_replay
from abkit.errors import AbkitInputError
from abkit.io.exclusions import RowCount
from abkit_cli.main import cli
from tests.conftest import mc_reps

CONFIG = {"experiment": {"control": "live", "variant": "version"}}


def _result(res: AnalysisResult, metric: str):
    return next(r for r in res.results if r.metric == metric)


def test_matches_statsmodels_on_the_per_input_differences():
    """The effect and standard error are those of an OLS of each input's candidate −
    live difference on an intercept with user-clustered errors (statsmodels), computed
    here straight from the rows."""
    df = simulate_replay(users=250, latency_lift=-0.1, judge_rate=0.4, judge_lift=0.1, seed=3)
    res = abkit.analyze(df, CONFIG)
    for column in ("latency_ms", "judge_score"):
        wide = (
            df.pivot(on="version", index=["input_id", "user_id"], values=column)
            .drop_nulls()
            .sort("input_id")
        )
        d = (wide["candidate"] - wide["live"]).to_numpy()
        fit = sm.OLS(d, np.ones(d.size)).fit(
            cov_type="cluster", cov_kwds={"groups": wide["user_id"].to_numpy()}
        )
        got = _result(res, column)
        assert got.effect == pytest.approx(d.mean(), rel=1e-10)
        assert got.control_value == pytest.approx(wide["live"].mean(), rel=1e-12)
        se = (got.ci[1] - got.ci[0]) / (2 * st.norm.ppf(0.975))
        assert se == pytest.approx(fit.bse[0], rel=1e-9)
        assert got.p_value == pytest.approx(2 * st.norm.sf(abs(fit.tvalues[0])), rel=1e-8)
        assert got.paired is not None and got.paired.pairs == d.size
        assert got.control_n == got.paired.users == np.unique(wide["user_id"]).size
        assert not got.warnings  # inputs judged in neither version are no cause for alarm


def _messy() -> pl.DataFrame:
    """Inputs 1-4 are clean; every other input has one kind of problem."""
    rows = [
        # input, user, version, score
        (1, "a", "live", 1.0),
        (1, "a", "new", 0.0),
        (2, "a", "live", 0.0),
        (2, "a", "new", 1.0),
        (3, "b", "live", 1.0),
        (3, "b", "new", 1.0),
        (3, "b", "new", 1.0),  # identical repeat: first kept
        (4, "c", "live", 0.0),
        (4, "c", "new", None),  # no value: paired, but left out of the score
        (5, "c", "live", 1.0),  # live only
        (6, "d", "new", 1.0),  # candidate only
        (7, "d", "live", 1.0),
        (7, "d", "new", 0.0),
        (7, "d", "new", 1.0),  # one version twice with different values
        (8, "e", "live", 1.0),
        (8, "f", "new", 1.0),  # the user differs between versions
        (None, "g", "live", 1.0),
        (9, None, "live", 1.0),
        (10, "h", None, 1.0),
    ]
    return pl.DataFrame(
        rows, schema=["input_id", "user_id", "version", "score"], orient="row", strict=False
    )


def test_every_row_is_used_or_excluded_with_its_reason():
    res = abkit.analyze(
        _messy(), {"experiment": {"control": "live", "variant": "version"}}, kind="paired"
    )
    reasons = {e.reason: e.rows for e in res.exclusions}
    assert reasons == {
        "null input id": 1,
        "null user id": 1,
        "null version": 1,
        "repeated identical row (first kept)": 1,
        "input answered more than once by one version with different values (all its rows)": 3,
        "input whose user differs between its rows (all its rows)": 2,
        "input not answered by both the live version ('live') and a candidate": 2,
    }
    assert res.rows["outputs"] == RowCount(read=19, used=8, excluded=11)
    r = _result(res, "score")
    assert r.paired is not None and r.paired.pairs == 3  # inputs 1, 2, 3 (4 has no value)
    assert (r.control_value, r.treatment_value) == pytest.approx((2 / 3, 2 / 3))
    assert any("1 input(s) have a score value from only one of" in w for w in r.warnings)


def test_declared_versions_exclude_the_others():
    df = simulate_replay(users=20, seed=1)
    extra = df.filter(pl.col("version") == "candidate").with_columns(version=pl.lit("beta"))
    spec = {"experiment": {"control": "live", "variant": "version"}}
    declared = {"experiment": {**spec["experiment"], "variants": ["live", "candidate"]}}
    res = abkit.analyze(pl.concat([df, extra]), declared)
    assert {e.reason: e.rows for e in res.exclusions} == {
        "unknown version (not declared)": extra.height
    }
    both = abkit.analyze(pl.concat([df, extra]), spec)
    assert {r.variant for r in both.results} == {"candidate", "beta"}
    assert both.results[0].p_value_adjusted >= both.results[0].p_value  # Holm across two


def test_priced_cost_is_the_direct_computation():
    df = simulate_replay(users=50, seed=2)
    spec = {**CONFIG, "cost": {"input_per_1k": 0.003, "output_per_1k": 0.015}}
    r = _result(abkit.analyze(df, spec), "cost")
    cost = df["input_tokens"] * 0.003 / 1000 + df["output_tokens"] * 0.015 / 1000
    live = cost.filter(df["version"] == "live").mean()
    assert r.control_value == pytest.approx(live, rel=1e-12)
    assert r.guardrail is not None and r.direction == "decrease"


def test_defaults_have_the_directions_of_the_event_defaults():
    res = abkit.analyze(simulate_replay(users=60, seed=4), CONFIG)
    by_name = {r.metric: r for r in res.results}
    assert set(by_name) == {"judge_score", "latency_ms", "input_tokens", "output_tokens"}
    assert by_name["judge_score"].metric_type == "proportion"
    assert by_name["judge_score"].direction == "increase"
    assert by_name["latency_ms"].guardrail is not None
    assert by_name["output_tokens"].direction == "decrease"
    assert by_name["output_tokens"].guardrail is None
    assert res.input_kind == "paired" and res.srm is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sequential": {"method": "msprt"}}, "analysed once"),
        ({"experiment": {"mode": "b2b", "account": "user_id"}}, "users are the clusters"),
        ({"segments": {"columns": ["user_id"]}}, "by segment"),
        ({"cuped": {"covariates": ["latency_ms"]}}, "pairing already removes"),
        (
            {
                "metrics": [
                    {"name": "x", "type": "mean", "column": "latency_ms", "cap": {"value": 1}}
                ]
            },
            "capped",
        ),
        ({"metrics": [{"name": "r", "type": "retention", "day": 1}]}, "'mean' or 'proportion'"),
        ({"metrics": [{"name": "u", "type": "mean", "column": "user_id"}]}, "user id column"),
        ({"metrics": [{"name": "m", "type": "mean", "column": "nope"}]}, "'nope'"),
        ({"experiment": {"control": "gpt-4"}}, "'gpt-4' does not occur"),
        (
            {
                "cost": {"output_per_1k": 0.01},
                "metrics": [{"name": "c", "type": "mean", "column": "cost"}],
            },
            "same name",
        ),
    ],
)
def test_settings_it_cannot_honour_are_refused_with_what_to_do(extra, message):
    df = simulate_replay(users=10, seed=5)
    if "same name" in message:
        df = df.with_columns(cost=pl.lit(1.0))
    spec = {
        **CONFIG,
        **extra,
        "experiment": {**CONFIG["experiment"], **extra.get("experiment", {})},
    }
    with pytest.raises(AbkitInputError, match=message):
        abkit.analyze(df, spec)


def test_nothing_pairs_is_a_clear_error():
    df = simulate_replay(users=10, seed=6).with_columns(input_id=pl.int_range(pl.len()))
    with pytest.raises(AbkitInputError, match="no input was answered by both"):
        abkit.analyze(df, CONFIG)


def test_every_output_says_the_same(tmp_path):
    """Text, Markdown, HTML and JSON carry the paired design line, the same decisions
    and the pairing detail; the JSON reads back to the same report."""
    res = abkit.analyze(simulate_replay(users=120, latency_lift=-0.1, seed=7), CONFIG)
    text, md, html = res.to_text(), res.to_markdown(), res.to_html()
    for out in (text, md, html):
        assert "Paired run" in out and "Sample ratio" not in out
        assert "paired inputs from 120 users" in out
    d = json.loads(res.to_json())
    assert d["srm"] is None and d["experiment"]["input"] == "paired"
    latency = next(r for r in d["results"] if r["metric"] == "latency_ms")
    assert latency["paired"]["users"] == 120
    assert latency["decision"]["outcome"] == _result(res, "latency_ms").decision.outcome
    back = AnalysisResult.from_dict(d)
    assert back.to_text() == text
    assert res.table["paired_variance_removed"].drop_nulls().len() == len(res.results)
    written = res.save(tmp_path / "out")
    assert written["plots"]


def test_the_cli_reads_a_paired_export(tmp_path):
    path = tmp_path / "outputs.csv"
    simulate_replay(users=40, seed=8).write_csv(path)
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["analyze", str(path), "--control", "live", "--variant", "version", "-f", "json"]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["experiment"]["input"] == "paired"
    bad = runner.invoke(cli, ["analyze", str(path), "--variant", "version", "--kind", "paired"])
    assert bad.exit_code == 2 and "'control' does not occur" in bad.output


@pytest.mark.calibration
def test_pipeline_aa_size_and_coverage():
    """Simulated replays through abkit.analyze: with no true difference the judge's pass
    rate and latency are called different at the nominal rate, and with latency 10 %
    lower the interval of the lift covers −10 %."""
    reps = mc_reps(400)
    rejected = {"judge_score": 0, "latency_ms": 0}
    covered = 0
    spec = {
        **CONFIG,
        "metrics": [
            {"name": "judge_score", "type": "proportion", "column": "judge_score"},
            {"name": "latency_ms", "type": "mean", "column": "latency_ms"},
        ],
    }
    for seed in range(reps):
        aa = abkit.analyze(simulate_replay(users=150, judge_rate=0.5, seed=seed), spec)
        for r in aa.results:
            rejected[r.metric] += r.p_value < 0.05
        ab = abkit.analyze(simulate_replay(users=150, latency_lift=-0.1, seed=10_000 + seed), spec)
        lift = _result(ab, "latency_ms").relative_ci
        covered += lift[0] <= -0.1 <= lift[1]
    print(f"\npaired pipeline: reps {reps}, A/A size {rejected}, lift coverage {covered / reps}")
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.05) / reps
    for count in rejected.values():
        assert lo <= count / reps <= hi
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.95) / reps
    assert lo <= covered / reps <= hi


def test_simulate_replay_writes_an_export_the_analysis_reads(tmp_path):
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "simulate-replay",
            str(tmp_path),
            "--users",
            "30",
            "--latency-lift",
            "-0.2",
            "--format",
            "csv",
        ],
    )
    assert made.exit_code == 0, made.output
    df = pl.read_csv(tmp_path / "outputs.csv")
    assert df.height == 2 * df["input_id"].n_unique()
    live, candidate = (
        df.filter(pl.col("version") == v)["latency_ms"].mean() for v in ("live", "candidate")
    )
    assert candidate < live
    bad = runner.invoke(cli, ["simulate-replay", str(tmp_path), "--versions", "a"])
    assert bad.exit_code == 2 and "two names" in bad.output
    with pytest.raises(AbkitInputError, match="above -1"):
        simulate_replay(judge_lift=-1.0)


def test_the_row_accounting_is_the_same_with_and_without_repeats():
    """Without repeats the exclusions come from per-input counts, with them from per-row
    windows: an identical repeated row must change nothing but its own exclusion."""
    df = simulate_replay(users=40, seed=11)
    df = df.filter(~((pl.col("version") == "candidate") & (pl.col("input_id") % 5 == 0)))
    clean = abkit.analyze(df, CONFIG)
    repeated = abkit.analyze(pl.concat([df, df.head(1)]), CONFIG)
    unpaired = "input not answered by both the live version ('live') and a candidate"
    assert {e.reason: e.rows for e in clean.exclusions} == {
        unpaired: df.filter(pl.col("input_id") % 5 == 0).height
    }
    assert {e.reason: e.rows for e in repeated.exclusions} == {
        unpaired: df.filter(pl.col("input_id") % 5 == 0).height,
        "repeated identical row (first kept)": 1,
    }
    assert repeated.rows["outputs"].used == clean.rows["outputs"].used
    assert [r.effect for r in repeated.results] == [r.effect for r in clean.results]
