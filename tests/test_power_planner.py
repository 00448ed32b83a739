"""The power planner: proportions from a baseline, several arms, CUPED, sequential
designs and duration, each checked by simulating the planned experiment."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from scipy import stats as st

import abkit
from abkit.dev.calibration import evaluate, simulate_looks
from abkit.dev.simulate import simulate
from abkit.stats import two_proportion_ztest
from abkit.stats.arm import ArmSummary
from abkit.stats.group_sequential import crossing_probability, efficacy_bounds, pocock_constant
from abkit.stats.power import sequential_bounds, sequential_power, units_needed
from abkit_cli.main import cli
from tests.conftest import mc_reps


def _band(reps: int, p: float) -> float:
    """Three Monte Carlo standard errors of a rate p estimated from reps runs."""
    return 3 * math.sqrt(p * (1 - p) / reps)


def test_crossing_probability_equals_a_simulated_brownian_motion():
    """The recursion against brute force: Brownian paths observed at 5 looks."""
    rng = np.random.default_rng(0)
    t = np.arange(1, 6) / 5
    c = np.full(5, pocock_constant(5, 0.05))
    drift = 2.5
    steps = rng.normal(size=(400_000, 5)) * np.sqrt(np.diff(t, prepend=0)) + drift * np.diff(
        t, prepend=0
    )
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    simulated = (np.abs(z) >= c).any(axis=1).mean()
    assert crossing_probability(t, c, drift) == pytest.approx(simulated, abs=0.003)
    assert crossing_probability(t, c, 0.0) == pytest.approx(0.05, abs=1e-6)


@pytest.mark.calibration
@pytest.mark.parametrize("method, looks", [("gst", 5), ("msprt", 30), ("cs", 30)])
def test_sequential_plans_reach_their_power_in_simulated_experiments(method, looks):
    """Plan n per arm for 80 % power, then run abkit's own monitoring on simulated
    experiments of that size: the share that rejects is 80 % within Monte Carlo error."""
    effect, sd = 0.1, 1.0
    res = abkit.power_analysis(sd=sd, effect=effect, sequential=method, looks=looks)
    n = res.needed_per_arm
    assert res.fixed_per_arm == units_needed(effect, sd) < n
    assert sequential_power(method, n, effect, sd, looks=looks) >= 0.8
    reps = mc_reps()
    per_look = n // looks
    paths = simulate_looks(reps, looks=looks, per_look=per_look, effect=effect, sd=sd, seed=9)
    achieved = evaluate(paths, "gst_obf" if method == "gst" else method, 0.05).rejected.mean()
    planned = sequential_power(method, per_look * looks, effect, sd, looks=looks)
    print(f"\n{method}: n {n} per arm, planned power {planned:.3f}, achieved {achieved:.3f}")
    assert abs(achieved - planned) < _band(reps, planned) + 0.01


@pytest.mark.calibration
def test_a_proportion_plan_with_three_arms_reaches_its_power():
    """--proportion --baseline 0.1 --arms 3: each treatment at alpha/2 has 80 % power."""
    res = abkit.power_analysis(proportion=True, baseline=0.1, effect=0.2, relative=True, arms=3)
    assert res.alpha_per_comparison == pytest.approx(0.025)
    n = res.needed_per_arm
    reps = mc_reps()
    rng = np.random.default_rng(3)
    c = rng.binomial(n, 0.10, reps)
    t = rng.binomial(n, 0.12, reps)
    p = [
        two_proportion_ztest(ArmSummary.from_sums(n, a, a), ArmSummary.from_sums(n, b, b)).p_value
        for a, b in zip(c, t, strict=True)
    ]
    achieved = float(np.mean(np.array(p) < 0.025))
    print(f"\nproportion, 3 arms: {n} per arm, achieved power {achieved:.3f}")
    assert abs(achieved - 0.8) < _band(reps, 0.8) + 0.01


@pytest.mark.calibration
def test_a_cuped_plan_reaches_its_power_with_the_adjusted_test():
    """The planner shrinks sigma by the variance reduction measured on pilot data; an
    experiment of the planned size analysed with CUPED has 80 % power."""
    from abkit.stats.cuped import Moments, cuped_test

    rng = np.random.default_rng(4)
    n_pilot = 4_000
    pre = rng.gamma(2.0, 1.0, n_pilot)

    y = pre + rng.gamma(2.0, 0.5, n_pilot)
    table = pl.DataFrame(
        {
            "user_id": np.arange(n_pilot),
            "variant": np.where(np.arange(n_pilot) % 2 == 0, "control", "treatment"),
            "y": y,
            "pre": pre,
        }
    )
    config = {
        "cuped": {"covariates": ["pre"]},
        "metrics": [{"name": "y", "type": "mean", "column": "y"}],
    }
    plan = abkit.power_analysis(table, config, effect=0.1)
    assert plan.cuped_variance_reduction is not None and plan.cuped_variance_reduction > 0.5
    n = plan.needed_per_arm
    assert n < units_needed(0.1, plan.sd)
    reps = max(mc_reps() // 2, 500)
    hits = 0
    for _ in range(reps):
        arms = []
        for shift in (0.0, 0.1):
            x = rng.gamma(2.0, 1.0, n)
            arms.append(
                Moments.from_values(np.column_stack([x + rng.gamma(2.0, 0.5, n) + shift, x]))
            )
        comp, _ = cuped_test(*arms, (0,), [(1,)], ["pre"], 0.05, welch_df=True)
        hits += comp.p_value < 0.05
    achieved = hits / reps
    print(f"\nCUPED plan: {n} per arm, achieved power {achieved:.3f}")
    assert abs(achieved - 0.8) < _band(reps, 0.8) + 0.01


def test_duration_counts_the_arrivals_and_the_metric_window():
    export = simulate(users=4_000, days=40, enrol_days=10, seed=2)
    config = {"metrics": [{"name": "d7", "type": "retention", "day": 7}]}
    res = abkit.power_analysis(export.assignments, config, events=export.events, effect=0.02)
    assert res.daily_arrivals == pytest.approx(400, rel=0.02)  # 4,000 users over 10 days
    assert res.window_days == 8  # day 7 is known 8 days after assignment
    assert res.days_needed == math.ceil(res.needed_per_arm * 2 / res.daily_arrivals) + 8
    assert "Duration:" in res.to_text() and "8 days for the metric's window" in res.to_text()


def test_cli_plans_a_sequential_proportion_without_data():
    run = CliRunner().invoke(
        cli,
        [
            "power",
            "--proportion",
            "--baseline",
            "0.12",
            "--effect",
            "0.05",
            "--relative",
            "--arms",
            "3",
            "--sequential",
            "gst",
            "--looks",
            "4",
            "--arrivals",
            "5000",
            "--format",
            "json",
        ],
    )
    assert run.exit_code == 0, run.output
    import json

    d = json.loads(run.output)
    assert d["sequential"] == "gst" and d["looks"] == 4 and d["arms"] == 3
    assert d["needed_per_arm"] > d["fixed_per_arm"]
    assert d["days_needed"] == math.ceil(d["needed_per_arm"] * 3 / 5000)
    bad = CliRunner().invoke(cli, ["power", "--proportion", "--effect", "0.01"])
    assert bad.exit_code == 2 and "baseline" in bad.output


def test_sequential_bounds_are_the_monitoring_boundaries():
    """GST bounds are abkit's efficacy bounds; the always-valid ones fall with n toward
    a constant above the fixed-horizon 1.96 (the price of looking)."""
    t = np.arange(1, 6) / 5
    assert sequential_bounds("gst", 5, 1000, 1.0, 0.05) == pytest.approx(efficacy_bounds(t, 0.05))
    c = sequential_bounds("msprt", 30, 1000, 1.0, 0.05)
    assert np.all(c > st.norm.ppf(0.975))


def test_the_window_of_a_day_0_metric_is_one_day():
    """D0 retention is known once day 0 has ended (a falsy last day of 0 read as 'none')."""
    from abkit.power import power_analysis

    def window(day: int) -> int:
        config = {"metrics": [{"name": "r", "type": "retention", "day": day}]}
        plan = power_analysis(
            None, config, effect=0.02, proportion=True, baseline=0.3, daily_arrivals=1_000
        )
        return plan.to_dict()["window_days"]

    assert (window(0), window(1), window(7)) == (1, 2, 8)
