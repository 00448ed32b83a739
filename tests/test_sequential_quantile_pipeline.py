"""Quantile metrics and guardrails under --sequential, end to end: the looks rebuilt
from the raw export by hand give the same sequence as the pipeline (so the calibration
of the statistics layer, tests/test_sequential_quantile_calibration.py, is the
pipeline's); the last look is the fixed-horizon analysis on both routes; one value per
unit takes Howard & Ramdas' exact sequence; every output shows the result."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.analysis.quantile_monitoring import CLUSTERED, INDEPENDENT
from abkit.dev.simulate import simulate
from abkit.stats.quantile import LogBins, quantile_estimate
from abkit.stats.sequential_quantile import clustered_quantile_cs, quantile_ab_path
from abkit_cli.main import cli
from tests.conftest import write_cli_files

P95 = {
    "name": "p95",
    "type": "quantile",
    "column": "ai_output.latency_ms",
    "q": 0.95,
    "direction": "decrease",
}
GUARD = {**P95, "name": "p95_guard", "guardrail": True, "margin": 40.0}


@pytest.fixture(scope="module")
def export():
    """Latency clustered by user (a per-user log-normal scale), 25 % slower treatment."""
    return simulate(
        users=3_000, days=12, enrol_days=5, seed=21, latency_user_sd=0.5, latency_lift=0.25
    )


def _analyze(export, method: str, route: str = "exact", **sequential):
    config = {
        "metrics": [P95, GUARD],
        "sequential": {"method": method, **sequential},
        "quantiles": {"method": route},
    }
    return abkit.analyze(export.assignments, config, events=export.events)


def _looks_by_hand(export, q: float) -> tuple[list, list, list[dt.datetime]]:
    """Each arm's clustered estimate at every daily look, from the raw export with
    Polars and the fixed-horizon estimator: events up to min(origin + k days, end)."""
    events = export.events.filter(
        (pl.col("event") == "ai_output") & pl.col("latency_ms").is_not_null()
    ).join(export.assignments.select("user_id", "variant"), on="user_id")
    origin = export.assignments["assigned_at"].min().replace(hour=0, minute=0, second=0)
    origin = origin.replace(microsecond=0)
    end = export.events["timestamp"].max()
    count = math.ceil((end - origin) / dt.timedelta(days=1))
    times = [min(origin + dt.timedelta(days=k + 1), end) for k in range(count)]
    per_arm: dict[str, list] = {"control": [], "treatment": []}
    for k in range(count):
        # an event is in look k when floor((ts − origin)/day) ≤ k (the last look: all)
        upto = origin + dt.timedelta(days=k + 1) if k < count - 1 else end + dt.timedelta(1)
        seen = events.filter(pl.col("timestamp") < upto)
        for arm in per_arm:
            rows = seen.filter(pl.col("variant") == arm)
            per_arm[arm].append(
                quantile_estimate(rows["latency_ms"].to_numpy(), rows["user_id"].to_numpy(), q)
            )
    return per_arm["control"], per_arm["treatment"], times


@pytest.mark.parametrize("route", ["exact", "histogram"])
def test_the_last_look_is_the_fixed_horizon_analysis(export, route):
    res = _analyze(export, "cs", route)
    for r in res.results:
        last = r.sequential.looks[-1]
        assert last.estimate == pytest.approx(r.effect, rel=1e-12)
        assert last.relative_estimate == pytest.approx(r.relative_effect, rel=1e-9)
        lo, hi = last.ci
        assert lo <= r.effect <= hi
        assert hi - lo > r.ci[1] - r.ci[0]  # always-valid: wider than the fixed interval
        assert r.sequential.method.endswith(CLUSTERED)


def test_the_pipeline_sequence_is_the_stats_layer_on_looks_rebuilt_by_hand(export):
    """The looks rebuilt from the raw export (Polars filters by time, then the fixed-
    horizon estimator) through :func:`clustered_quantile_cs` give the pipeline's
    interval and p-value at every look: the pipeline adds nothing of its own."""
    res = _analyze(export, "cs", target_units=3_000)
    control, treatment, times = _looks_by_hand(export, 0.95)
    path = clustered_quantile_cs(control, treatment, 0.05, target_n=3_000)
    looks = res.results[0].sequential.looks
    assert [lk.at for lk in looks] == [t.isoformat() for t in times]
    for k, lk in enumerate(looks):
        assert (lk.n_control, lk.n_treatment) == (control[k].units, treatment[k].units)
        assert lk.estimate == pytest.approx(treatment[k].estimate - control[k].estimate)
        assert lk.ci == pytest.approx((path.ci_low[k], path.ci_high[k]), rel=1e-9)
        assert lk.p_value == pytest.approx(path.p_value[k], rel=1e-9, abs=1e-12)
    ratio = clustered_quantile_cs(control, treatment, 0.05, target_n=3_000, scale="ratio")
    for k, lk in enumerate(looks):
        assert lk.relative_ci == pytest.approx(
            (math.expm1(ratio.ci_low[k]), math.expm1(ratio.ci_high[k])), rel=1e-9
        )


def test_a_slower_treatment_is_found_and_the_guardrail_fails(export):
    """25 % slower (about +650 ms at a p95 near 4 s): the metric is decided worse and
    the guardrail "must not rise by more than 40 ms" fails, at some look."""
    for method in ("cs", "msprt"):
        res = _analyze(export, method)
        p95, guard = res.results
        assert p95.sequential.decision.outcome == "worse", method
        assert guard.sequential.decision.outcome == "guardrail fail", method
        assert guard.decision.outcome == "guardrail fail"
        # decided where the whole always-valid interval lies beyond the margin
        assert guard.sequential.decision.ci[0] > GUARD["margin"]


def test_an_aa_export_decides_nothing_and_the_guardrail_passes():
    aa = simulate(users=3_000, days=12, enrol_days=5, seed=22, latency_user_sd=0.5)
    config = {"metrics": [P95, {**GUARD, "margin": 1_000.0}], "sequential": {"method": "cs"}}
    res = abkit.analyze(aa.assignments, config, events=aa.events)
    p95, guard = res.results
    assert p95.sequential.decision.outcome == "continue"
    assert all(lk.p_value > 0.05 for lk in p95.sequential.looks)
    assert guard.sequential.decision.outcome == "guardrail pass"


def test_histogram_looks_are_the_exact_looks_within_the_bins_error(export):
    """On the histogram route each look adds a histogram of its values; every look's
    arm quantiles are within the bins' relative error of the exact route's, and the
    last look's are the fixed-horizon binned ones."""
    binned = _analyze(export, "msprt", "histogram").results[0]
    exact = _analyze(export, "msprt", "exact").results[0]
    control, treatment, _ = _looks_by_hand(export, 0.95)
    error = LogBins(0.001).error
    for k, (lb, le) in enumerate(zip(binned.sequential.looks, exact.sequential.looks, strict=True)):
        assert (lb.n_control, lb.n_treatment) == (le.n_control, le.n_treatment)
        # the difference of two values each within ±error of the exact one
        bound = error * (control[k].estimate + treatment[k].estimate)
        assert abs(lb.estimate - le.estimate) <= bound + 1e-9
    assert binned.sequential.looks[-1].estimate == pytest.approx(binned.effect, rel=1e-12)
    assert binned.treatment_value - binned.control_value == pytest.approx(binned.effect)


def test_one_value_per_unit_takes_the_exact_sequence_for_independent_observations():
    """When no unit has two values the observations are independent, and ``cs`` uses
    Howard & Ramdas' two-sample sequence: the pipeline's looks equal
    :func:`quantile_ab_path` on the cumulative raw values, tuned to target_units / 2."""
    rng = np.random.default_rng(3)
    users = 2_400
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assigned = [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 8, users)]
    variant = np.where(np.arange(users) % 2 == 0, "control", "treatment")
    latency = rng.lognormal(6.0, 0.5, users) * np.where(variant == "treatment", 1.4, 1.0)
    assignments = pl.DataFrame(
        {"user_id": np.arange(users), "variant": variant, "assigned_at": assigned}
    )
    events = pl.DataFrame(
        {
            "user_id": np.arange(users),
            "timestamp": [a + dt.timedelta(minutes=30) for a in assigned],
            "event": ["ai_output"] * users,
            "latency_ms": latency,
        }
    )
    config = {"metrics": [P95], "sequential": {"method": "cs", "target_units": users}}
    res = abkit.analyze(assignments, config, events=events)
    seq = res.results[0].sequential
    assert seq.method == INDEPENDENT
    joined = events.join(assignments, on="user_id")
    end = events["timestamp"].max()
    samples: dict[str, list[np.ndarray]] = {"control": [], "treatment": []}
    for lk in seq.looks:
        upto = dt.datetime.fromisoformat(lk.at)
        upto = upto if upto < end else end + dt.timedelta(seconds=1)
        seen = joined.filter(pl.col("timestamp") < upto)
        for arm in samples:
            samples[arm].append(seen.filter(pl.col("variant") == arm)["latency_ms"].to_numpy())
    usable = [k for k, lk in enumerate(seq.looks) if lk.n_control and lk.n_treatment]
    path = quantile_ab_path(
        [samples["control"][k] for k in usable],
        [samples["treatment"][k] for k in usable],
        0.95,
        target_n=users / 2,
    )
    for k, found in zip(usable, path, strict=True):
        assert seq.looks[k].ci == pytest.approx((found.ci_low, found.ci_high))
        assert seq.looks[k].p_value == pytest.approx(found.p_value, abs=1e-12)
    assert seq.decision.outcome == "worse"
    # msprt on the same data takes the clustered (here: binomial) normal route
    res = abkit.analyze(assignments, {**config, "sequential": {"method": "msprt"}}, events=events)
    assert res.results[0].sequential.method.endswith(CLUSTERED)


def test_every_output_shows_the_quantile_path(export, tmp_path):
    toml = """
[sequential]
method = "cs"

[[metrics]]
name = "p95"
type = "quantile"
column = "ai_output.latency_ms"
q = 0.95

[[metrics]]
name = "p95_guard"
type = "quantile"
column = "ai_output.latency_ms"
q = 0.95
guardrail = true
direction = "decrease"
margin = 40.0

"""
    args = write_cli_files(tmp_path, export, toml)
    out = tmp_path / "out"
    run = CliRunner().invoke(cli, ["analyze", *args, "--out", str(out), "-q"])
    assert run.exit_code == 0, run.output
    assert "Sequential monitoring" in run.output and "ratio − 1" in run.output
    data = json.loads((out / "results.json").read_text())
    looks = data["results"][0]["sequential"]["looks"]
    assert {"relative_estimate", "relative_ci"} <= set(looks[-1])
    assert CLUSTERED in data["results"][0]["sequential"]["method"]
    for name in ("report.md", "report.html"):
        text = (out / name).read_text()
        assert "Sequential monitoring" in text and "ratio − 1" in text, name
    plots = {p.name for p in (out / "plots").iterdir()}
    assert any("p95" in p and "sequential" in p for p in plots), plots
    # the JSON reads back into the same typed result
    again = abkit.AnalysisResult.from_dict(data)
    assert again.results[0].sequential.looks[-1].relative_ci == pytest.approx(
        tuple(looks[-1]["relative_ci"])
    )


@pytest.mark.parametrize("route", ["exact", "histogram"])
@pytest.mark.parametrize("method", ["cs", "msprt"])
def test_a_relative_margin_is_decided_on_the_ratio_of_quantiles(route, method):
    """ "p95 must not rise by more than 5 %": the guardrail passes at the first look whose
    always-valid ratio interval lies below +5 % and not before, so the decision never
    contradicts the ratio interval printed beside it (a margin of 5 % times the
    estimated control quantile, on the difference scale, would treat that quantile as
    known and could pass while the ratio interval still reaches past the margin)."""
    sim = simulate(users=1_500, days=8, enrol_days=4, seed=21)
    guard = {**P95, "name": "p95_guard", "guardrail": True, "relative_margin": 0.05}
    config = {"metrics": [guard], "sequential": {"method": method}, "quantiles": {"method": route}}
    seq = abkit.analyze(sim.assignments, config, events=sim.events).results[0].sequential
    assert "ratio of quantiles" in seq.method
    passed = [lk.look for lk in seq.looks if lk.relative_ci and lk.relative_ci[1] < 0.05]
    expected = passed[0] if passed else None
    decided = seq.decision.look if seq.decision.outcome == "guardrail pass" else None
    assert decided == expected
    for lk in seq.looks:  # the margin p-value is below alpha exactly where it passes
        if lk.p_value_margin is not None and lk.relative_ci is not None:
            below = lk.relative_ci[1] < 0.05
            assert (lk.p_value_margin < 0.05) == below, lk
