"""Sequential monitoring end to end: daily looks from one pass, last look = fixed
horizon, decisions, retention maturity, summary input and the CLI."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit.stats.always_valid import asymptotic_cs
from abkit_cli.main import cli
from tests.conftest import write_cli_files

CONFIG = {
    "metrics": [
        {"name": "d1", "type": "retention", "day": 1},
        {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "outputs", "type": "mean", "column": "ai_output"},
        {"name": "any_share", "type": "proportion", "column": "share"},
        {"name": "depth", "type": "session_depth"},
    ]
}


@pytest.fixture(scope="module")
def export():
    return simulate(users=4_000, days=14, enrol_days=6, share_lift=0.4, seed=12)


@pytest.fixture(scope="module", params=["msprt", "cs", "gst"])
def result(request, export):
    config = {**CONFIG, "sequential": {"method": request.param}}
    if request.param == "gst":
        config["sequential"].update(looks=[4, 8, 12, 14], duration_days=14)
    return abkit.analyze(export.assignments, config, events=export.events)


def test_last_daily_look_reproduces_the_fixed_horizon_estimate(export):
    res = abkit.analyze(
        export.assignments, {**CONFIG, "sequential": {"method": "cs"}}, events=export.events
    )
    for r in res.results:
        last = r.sequential.looks[-1]
        assert last.estimate == pytest.approx(r.effect, rel=1e-9, abs=1e-12)
        assert (last.n_control, last.n_treatment) == (r.control_n, r.treatment_n)
        # the always-valid interval is wider than the fixed one and holds the estimate
        lo, hi = last.ci
        assert lo <= r.effect <= hi
        assert hi - lo > r.ci[1] - r.ci[0]


def test_one_look_per_day_until_the_export_end(export):
    res = abkit.analyze(
        export.assignments, {**CONFIG, "sequential": {"method": "msprt"}}, events=export.events
    )
    looks = res.results[0].sequential.looks
    assert [lk.look for lk in looks] == list(range(1, len(looks) + 1))
    assert looks[-1].at == res.export_end
    first = export.assignments["assigned_at"].min()
    origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
    end = export.events["timestamp"].max()
    assert len(looks) == int(np.ceil((end - origin).total_seconds() / 86_400))


def test_retention_looks_count_only_matured_units(export):
    res = abkit.analyze(
        export.assignments, {**CONFIG, "sequential": {"method": "cs"}}, events=export.events
    )
    looks = next(r for r in res.results if r.metric == "d1").sequential.looks
    first_day = export.assignments["assigned_at"].min()
    origin = first_day.replace(hour=0, minute=0, second=0, microsecond=0)
    for lk in looks[:-1]:
        at = pl.datetime(origin.year, origin.month, origin.day, time_zone="UTC") + pl.duration(
            days=int(lk.day)
        )
        matured = export.assignments.filter(
            pl.col("assigned_at") + pl.duration(days=2) <= at
        ).height
        assert lk.n_control + lk.n_treatment == matured


def test_decisions_are_sticky_and_name_their_look(result):
    for r in result.results:
        seq = r.sequential
        states = [lk.decision for lk in seq.looks]
        assert r.decision == seq.decision  # the sequential decision governs the result
        if seq.decision.outcome == "continue":
            assert set(states) == {"continue"}
            continue
        first = seq.decision.look
        stop_index = next(i for i, lk in enumerate(seq.looks) if lk.look == first)
        assert all(s == "continue" for s in states[:stop_index])
        assert all(s == seq.decision.outcome for s in states[stop_index:])
        # the stop is reported with the interval and p-value of the look it happened at
        at_stop = seq.looks[stop_index]
        assert seq.decision.ci == at_stop.ci


def test_a_large_true_effect_is_detected(result):
    share = next(r for r in result.results if r.metric == "share_rate")
    assert share.sequential.decision.outcome == "better"
    assert share.decision.basis == "sequential"


def test_each_looks_p_value_and_interval_agree(export):
    for method in ("msprt", "cs", "gst"):
        res = abkit.analyze(
            export.assignments, {**CONFIG, "sequential": {"method": method}}, events=export.events
        )
        for r in res.results:
            for lk in r.sequential.looks:
                lo, hi = lk.ci
                if np.isfinite(lo):
                    assert (lo > 0 or hi < 0) == (lk.p_value < 0.05), (method, r.metric, lk)


def test_gst_uses_only_planned_looks_and_reports_boundaries(export):
    config = {
        **CONFIG,
        "sequential": {"method": "gst", "looks": [4, 8, 12, 14], "duration_days": 14},
    }
    r = abkit.analyze(export.assignments, config, events=export.events).results[0]
    assert [lk.day for lk in r.sequential.looks] == [4.0, 8.0, 12.0, 14.0]
    assert len(r.sequential.tuning["boundaries"]) == 4
    assert r.decision.outcome != "continue"  # the final planned look was reached


def test_summary_table_with_cumulative_checkpoints():
    rows = pl.DataFrame(
        {
            "variant": ["control", "t"] * 4,
            "day": [7, 7, 14, 14, 21, 21, 28, 28],
            "n": [500, 500, 1_000, 1_000, 1_500, 1_500, 2_000, 2_000],
            "mean": [0.10, 0.15, 0.10, 0.15, 0.10, 0.15, 0.10, 0.15],
        }
    )
    config = {
        "input": {"cumulative": True},
        "sequential": {"method": "cs"},
        "metrics": [{"name": "metric", "type": "proportion", "column": "metric"}],
    }
    r = abkit.analyze(rows, config).results[0]
    assert [lk.n_control for lk in r.sequential.looks] == [500, 1_000, 1_500, 2_000]
    assert r.sequential.looks[-1].estimate == pytest.approx(0.05)
    assert r.decision.outcome == "better"
    # the checkpoint's own label (its day) leads; its rank follows (ASOS read 'checkpoint 67'
    # where the day was 91)
    day = r.sequential.looks[r.decision.look - 1].day
    assert r.decision.look_unit == "checkpoint"
    assert r.decision.where == f"at day {day:g} (checkpoint {r.decision.look})"
    assert f"at day {day:g} (checkpoint" in r.decision.at_look


def test_unit_table_cannot_be_monitored(tmp_path):
    pl.DataFrame({"user_id": [1, 2], "variant": ["control", "t"], "x": [1.0, 2.0]}).write_csv(
        tmp_path / "u.csv"
    )
    out = CliRunner().invoke(cli, ["analyze", str(tmp_path / "u.csv"), "--sequential", "cs"])
    assert out.exit_code == 2 and "needs to know when each outcome happened" in out.output


def test_cli_json_has_a_sequential_block_per_result(tmp_path, export):
    files = write_cli_files(tmp_path, export)
    out = CliRunner().invoke(cli, ["analyze", *files, "--sequential", "msprt", "--format", "json"])
    assert out.exit_code == 0, out.output
    for r in json.loads(out.output)["results"]:
        seq = r["sequential"]
        assert seq["method"].startswith("mSPRT")
        assert {"look", "at", "estimate", "ci", "p_value", "decision"} <= set(seq["looks"][0])
    text = CliRunner().invoke(cli, ["analyze", *files, "--sequential", "cs"]).output
    assert "Sequential monitoring (asymptotic confidence sequence" in text


def test_bad_sequential_config_names_the_key(tmp_path, export):
    files = write_cli_files(tmp_path, export, '[sequential]\nmethod = "msprtt"\n')
    out = CliRunner().invoke(cli, ["analyze", *files])
    assert out.exit_code == 2 and "sequential.method" in out.output and "msprt" in out.output


def test_gst_futility_stops_an_aa_test_early():
    export = simulate(users=6_000, days=28, enrol_days=7, seed=21)
    config = {
        "metrics": [
            {
                "name": "share_rate",
                "type": "ratio",
                "numerator": "share",
                "denominator": "ai_output",
            }
        ],
        "sequential": {
            "method": "gst",
            "looks": [7, 14, 21, 28],
            "duration_days": 28,
            "futility_effect": 0.3,
            "beta": 0.2,
        },
    }
    seq = abkit.analyze(export.assignments, config, events=export.events).results[0].sequential
    assert len(seq.tuning["futility_bounds"]) == len(seq.looks)
    assert seq.decision.outcome in ("futility stop", "no significant difference")
    if seq.decision.outcome == "futility stop":
        assert seq.decision.look < seq.looks[-1].look


def test_adoption_is_monitored_as_an_indicator(export):
    config = {
        "metrics": [{"name": "adopt", "type": "adoption", "event": "share"}],
        "sequential": {"method": "cs"},
    }
    r = abkit.analyze(export.assignments, config, events=export.events).results[0]
    last = r.sequential.looks[-1]
    assert last.estimate == pytest.approx(r.effect, rel=1e-9)
    assert (last.n_control, last.n_treatment) == (r.control_n, r.treatment_n)


def test_every_look_equals_a_fixed_horizon_analysis_of_the_truncated_export(export):
    """Independent path: cut the export at a look's time (units assigned by then, their
    events up to then, export end = look time) and run the fixed-horizon analysis; the
    one-pass per-look statistics must agree."""
    config = {**CONFIG, "sequential": {"method": "cs"}}
    res = abkit.analyze(export.assignments, config, events=export.events)
    looks = res.results[0].sequential.looks
    checked = 0
    for lk in (looks[2], looks[6], looks[10]):
        at = pl.lit(lk.at).str.to_datetime(time_zone="UTC")
        assignments = export.assignments.filter(pl.col("assigned_at") <= at)
        events = export.events.filter(pl.col("timestamp") <= at)
        cut = {**CONFIG, "input": {"export_end": lk.at}}
        fixed = abkit.analyze(assignments, cut, events=events)
        for r, ref in zip(res.results, fixed.results, strict=True):
            seq = next(x for x in r.sequential.looks if x.look == lk.look)
            assert (seq.n_control, seq.n_treatment) == (ref.control_n, ref.treatment_n)
            assert seq.estimate == pytest.approx(ref.effect, rel=1e-9, abs=1e-12), r.metric
            # the variance too: rebuild the look's CS bound from the truncated analysis' SE
            # (z-based CIs; Welch rows use a t quantile whose df the result does not carry)
            if r.method.startswith("Welch"):
                continue
            checked += 1
            se = (ref.ci[1] - ref.ci[0]) / 2 / 1.959963984540054
            n_total = np.array([ref.control_n + ref.treatment_n], dtype=float)
            rebuilt = asymptotic_cs(
                np.array([ref.effect]),
                np.array([se**2]),
                n_total,
                0.05,
                r.sequential.tuning["target_n"],
            )
            assert seq.ci[1] == pytest.approx(rebuilt.ci_high[0], rel=1e-7), r.metric
    assert checked == 3 * 4  # d1, share_rate, any_share, depth at three looks


def test_identical_input_gives_byte_identical_json_with_float_values():
    """Float per-look sums (a '.value' metric) used to be added in a varying parallel
    order on large exports, so repeated runs differed around 1e-15."""
    big = simulate(users=200_000, days=10, enrol_days=5, seed=3)
    config = {
        "metrics": [
            {
                "name": "latency",
                "type": "ratio",
                "numerator": "ai_output.latency_ms",
                "denominator": "ai_output",
            }
        ],
        "sequential": {"method": "msprt"},
    }
    runs = {abkit.analyze(big.assignments, config, events=big.events).to_json() for _ in range(3)}
    assert len(runs) == 1
