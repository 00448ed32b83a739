"""Published figures of real experiments in ../shared/data, reproduced end to end."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import abkit
from abkit_cli.main import cli
from tests.conftest import shared_file

EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"


def _by_metric(result):
    return {(r.metric, r.variant): r for r in result.results}


def test_cookie_cats_published_retention_and_srm():
    path = shared_file("cookie_cats", "cookie_cats.csv")
    res = abkit.analyze(path, EXAMPLES / "cookie_cats.toml")
    rows = _by_metric(res)
    d1, d7 = rows[("d1_retention", "gate_40")], rows[("d7_retention", "gate_40")]
    assert (d1.control_n, d1.treatment_n) == (44_700, 45_489)
    assert round(d1.control_value * 100, 2) == 44.82
    assert round(d1.treatment_value * 100, 2) == 44.23
    assert round(d7.control_value * 100, 2) == 19.02
    assert round(d7.treatment_value * 100, 2) == 18.20
    # published 2x2 chi-square without correction: D7 X² = 10.013, p = 0.00155 (≈ 0.0016)
    assert d7.p_value == pytest.approx(0.00155, abs=0.000005)
    assert round(d7.p_value, 4) == 0.0016
    assert d1.p_value == pytest.approx(0.0744, abs=0.00005)
    assert d7.decision.outcome == "worse"
    assert res.srm.p_value == pytest.approx(0.0086, abs=0.00005)
    assert not res.srm.mismatch
    rounds = rows[("game_rounds", "gate_40")]
    assert rounds.control_value == pytest.approx(52.456, abs=0.0005)
    assert rounds.treatment_value == pytest.approx(51.299, abs=0.0005)
    assert any("heavy skew" in w for w in rounds.warnings)


def test_hillstrom_three_arms_published_rates():
    path = shared_file(
        "hillstrom_email",
        "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
    )
    res = abkit.analyze(path, EXAMPLES / "hillstrom.toml")
    rows = _by_metric(res)
    visit_m, visit_w = rows[("visit", "Mens E-Mail")], rows[("visit", "Womens E-Mail")]
    assert round(visit_m.control_value * 100, 2) == 10.62
    assert round(visit_m.treatment_value * 100, 2) == 18.28
    assert round(visit_w.treatment_value * 100, 2) == 15.14
    conv = rows[("conversion", "Mens E-Mail")]
    assert round(conv.treatment_value * 100, 2) == 1.25
    assert round(rows[("conversion", "Womens E-Mail")].treatment_value * 100, 2) == 0.88
    assert round(conv.control_value * 100, 2) == 0.57
    spend = rows[("spend", "Mens E-Mail")]
    assert spend.treatment_value == pytest.approx(1.423, abs=0.0005)
    assert spend.control_value == pytest.approx(0.653, abs=0.0005)
    assert res.srm.observed == {"No E-Mail": 21_306, "Mens E-Mail": 21_307, "Womens E-Mail": 21_387}
    assert not res.srm.mismatch
    # Holm over two treatments: the adjusted p is at least the raw p
    assert all(r.p_value_adjusted >= r.p_value for r in res.results)


def test_hillstrom_cuped_by_the_pre_period_columns():
    """Past-year spend, recency and purchase history adjust each metric: the published
    arm values are unchanged, the variance removed is reported, and the adjusted effect
    equals statsmodels OLS with the centred covariates."""
    import numpy as np
    import polars as pl
    import statsmodels.api as sm

    path = shared_file(
        "hillstrom_email",
        "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
    )
    res = abkit.analyze(path, EXAMPLES / "hillstrom_cuped.toml")
    rows = _by_metric(res)
    visit = rows[("visit", "Mens E-Mail")]
    assert round(visit.treatment_value * 100, 2) == 18.28
    assert visit.cuped is not None and 0.01 < visit.cuped.variance_reduction < 0.1
    assert "variance -2.5 % by history, recency, mens, womens, newbie" in res.to_text()
    frame = pl.read_csv(path, infer_schema_length=None).filter(
        pl.col("segment").is_in(["No E-Mail", "Mens E-Mail"])
    )
    x = frame.select("history", "recency", "mens", "womens", "newbie").to_numpy().astype(float)
    treated = (frame["segment"] == "Mens E-Mail").to_numpy().astype(float)
    design = np.column_stack([np.ones(len(x)), treated, x - x.mean(axis=0)])
    fit = sm.OLS(frame["visit"].to_numpy().astype(float), design).fit()
    assert visit.effect == pytest.approx(fit.params[1], rel=1e-9)


def test_cli_reproduces_cookie_cats_in_json():
    path = shared_file("cookie_cats", "cookie_cats.csv")
    out = CliRunner().invoke(
        cli, ["analyze", str(path), "-c", str(EXAMPLES / "cookie_cats.toml"), "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    import json

    d = json.loads(out.output)
    d7 = next(r for r in d["results"] if r["metric"] == "d7_retention")
    assert round(d7["control"]["value"], 4) == 0.1902
    assert round(d7["p_value"], 4) == 0.0016


def _example(name):
    """Load an example script as a module (its own code is what the test checks)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the example look themselves up there
    spec.loader.exec_module(module)
    return module


def _asos_stream(experiment, variant, metric):
    """Rows of one ASOS stream and its abkit summary table, converted by the example."""
    import polars as pl

    path = shared_file("asos_digital_experiments", "asos_digital_experiments_dataset.parquet")
    rows = (
        pl.read_parquet(path)
        .filter(
            (pl.col("experiment_id") == experiment)
            & (pl.col("variant_id") == variant)
            & (pl.col("metric_id") == metric)
        )
        .sort("time_since_start")
    )
    return rows, _example("asos_sequential").stream_table(rows)


def test_udacity_screener_published_intervals_from_summary_input():
    shared_file("udacity_free_trial_screener", "final_project_results_control.csv")
    example = _example("udacity_screener")
    res = abkit.analyze(example.summary_table(), example.CONFIG)
    rows = {r.metric: r for r in res.results}
    gross, net = rows["gross_conversion"], rows["net_conversion"]
    assert round(gross.effect, 4) == -0.0206
    assert [round(v, 4) for v in gross.ci] == [-0.0291, -0.0120]
    assert round(net.effect, 4) == -0.0049
    assert [round(v, 4) for v in net.ci] == [-0.0116, 0.0019]
    assert (gross.control_n, gross.treatment_n) == (17_293, 17_260)
    # the 14 days without enrolments yet: 14 days x 2 arms x 2 metrics, counted
    assert {e.reason: e.rows for e in res.exclusions} == {
        "row without a value (mean, sum or num_sum is empty)": 56
    }


@pytest.mark.parametrize("stream", [("036afc", 2, 2), ("036afc", 2, 3)])
def test_asos_last_checkpoint_matches_scipy_welch_from_stats(stream):
    from scipy import stats as st

    rows, table = _asos_stream(*stream)
    config = {
        "experiment": {"control": "control"},
        "input": {"cumulative": True},
        "metrics": [{"name": "m", "type": "mean", "column": "m"}],
        "sequential": {"method": "cs"},
    }
    r = abkit.analyze(table, config).results[0]
    last = rows.row(-1, named=True)
    ref = st.ttest_ind_from_stats(
        last["mean_t"],
        last["variance_t"] ** 0.5,
        last["count_t"],
        last["mean_c"],
        last["variance_c"] ** 0.5,
        last["count_c"],
        equal_var=False,
    )
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.effect == pytest.approx(last["mean_t"] - last["mean_c"], rel=1e-12)
    looks = r.sequential.looks
    assert len(looks) == rows.height
    assert [lk.n_control for lk in looks] == [int(c) for c in rows["count_c"]]
    assert looks[-1].estimate == pytest.approx(r.effect, rel=1e-12)


def test_asos_binary_metric_as_proportion_summary():
    rows, table = _asos_stream("036afc", 2, 1)
    config = {
        "experiment": {"control": "control"},
        "input": {"cumulative": True},
        "metrics": [{"name": "m", "type": "proportion", "column": "m"}],
    }
    r = abkit.analyze(table.drop("variance"), config).results[0]
    last = rows.row(-1, named=True)
    # metric 1's variance in the file is mean·(1 − mean): the proportion path agrees
    assert last["variance_c"] == pytest.approx(last["mean_c"] * (1 - last["mean_c"]), rel=1e-9)
    assert r.control_value == pytest.approx(last["mean_c"], rel=1e-12)
    assert r.control_n == int(last["count_c"])


@pytest.mark.parametrize("method", ["msprt", "cs", "gst"])
def test_asos_every_look_of_every_stream_has_agreeing_p_and_interval(method):
    """At every look of every ASOS stream, 0 lies outside the reported interval exactly
    when the look's p-value is below alpha, and the decision, once taken, stays with the
    look and interval it was taken at."""
    import numpy as np
    import polars as pl

    example = _example("asos_sequential")
    path = shared_file("asos_digital_experiments", "asos_digital_experiments_dataset.parquet")
    streams = pl.read_parquet(path).partition_by(
        ["experiment_id", "variant_id", "metric_id"], as_dict=True, maintain_order=True
    )
    looks_checked = streams_checked = 0
    for key, rows in sorted(streams.items()):
        rows = rows.sort("time_since_start")
        if key[2] != 1:
            rows = rows.filter(
                pl.col("variance_c").is_not_null() & pl.col("variance_t").is_not_null()
            )
        if rows.height == 0:
            continue
        table = example.stream_table(rows)
        if key[2] == 1:
            table = table.drop("variance")
        seq = (
            {"method": method}
            if method != "gst"
            else example.gst_plan(rows["time_since_start"].max())
        )
        config = {
            "experiment": {"control": "control"},
            "input": {"cumulative": True},
            "metrics": [
                {"name": "m", "type": "proportion" if key[2] == 1 else "mean", "column": "m"}
            ],
            "sequential": seq,
        }
        r = abkit.analyze(table, config).results[0]
        decided = None
        for lk in r.sequential.looks:
            lo, hi = lk.ci
            if not (np.isfinite(lo) and np.isfinite(hi)):
                continue
            assert (lo > 0 or hi < 0) == (lk.p_value < 0.05), (key, lk)
            looks_checked += 1
            if decided is None and lk.decision != "continue":
                decided = lk
        d = r.decision
        if d.outcome in ("better", "worse"):
            assert decided is not None and decided.look == d.look
            assert d.ci == decided.ci and d.p_value == decided.p_value
            assert (d.ci[0] > 0) == (d.outcome == "better")  # direction of the stop
        streams_checked += 1
    assert streams_checked > 350  # 381 streams with a variance
    assert looks_checked > (1_500 if method == "gst" else 5_000)
