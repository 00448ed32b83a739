"""The simulator: determinism, B2B structure, and that analysis recovers its truth."""

from __future__ import annotations

import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError

DEPTH = {"metrics": [{"name": "depth", "type": "session_depth"}]}


def test_same_seed_same_export_and_same_result():
    a, b = (
        simulate(users=1_500, days=10, enrol_days=4, seed=9),
        simulate(users=1_500, days=10, enrol_days=4, seed=9),
    )
    assert a.events.equals(b.events) and a.assignments.equals(b.assignments)
    ra = abkit.analyze(a.assignments, None, events=a.events).to_dict()
    rb = abkit.analyze(b.assignments, None, events=b.events).to_dict()
    assert ra == rb
    assert not simulate(users=1_500, days=10, enrol_days=4, seed=10).events.equals(a.events)


def test_bimodal_option_is_flagged_and_plain_depth_is_not():
    plain = simulate(users=3_000, days=8, enrol_days=3, seed=1)
    bimodal = simulate(users=3_000, days=8, enrol_days=3, bimodal=True, seed=1)
    shape = lambda e: abkit.analyze(e.assignments, DEPTH, events=e.events).session_depth  # noqa: E731
    for variant_shape in shape(plain)["depth"].values():
        assert not variant_shape.bimodal
    for variant_shape in shape(bimodal)["depth"].values():
        assert variant_shape.bimodal
        assert variant_shape.share_power > 0.05


def test_b2b_accounts_are_randomised_whole_with_heavy_tailed_sizes():
    export = simulate(mode="b2b", users=20_000, accounts=40, seed=3)
    per_account = export.assignments.group_by("account_id").agg(
        pl.col("variant").n_unique().alias("variants"), pl.len().alias("seats")
    )
    assert per_account["variants"].max() == 1
    seats = per_account["seats"].sort(descending=True)
    assert seats[0] > 5 * seats.median()  # heavy tail: the largest dwarfs the typical account


def test_events_never_precede_assignment_or_pass_the_export_end():
    export = simulate(users=2_000, days=9, enrol_days=3, seed=4)
    joined = export.events.join(export.assignments, on="user_id")
    assert (joined["timestamp"] >= joined["assigned_at"]).all()
    res = abkit.analyze(export.assignments, None, events=export.events)
    assert res.exclusions == []


def test_true_share_lift_is_recovered():
    export = simulate(users=20_000, days=8, enrol_days=3, share_lift=0.25, seed=8)
    config = {
        "metrics": [
            {"name": "share", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
        ]
    }
    row = abkit.analyze(export.assignments, config, events=export.events).results[0]
    assert row.relative_ci[0] < 0.25 < row.relative_ci[1]
    assert row.decision.outcome == "better"


def test_bad_simulation_parameters_are_user_errors():
    with pytest.raises(AbkitInputError, match="at least two distinct variant"):
        simulate(variants=("control",))
    with pytest.raises(AbkitInputError, match="enrol-days"):
        simulate(days=5, enrol_days=9)


def test_abkit_simulate_stays_callable():
    """abkit.simulate is the function (the module is abkit.dev.simulate): it used to work
    once and then fail with 'module object is not callable' (the first call imported the
    module, which took the package attribute's place)."""
    import subprocess
    import sys

    code = (
        "import abkit\n"
        "a = abkit.simulate(users=40, days=3, enrol_days=1, seed=1)\n"
        "b = abkit.simulate(users=40, days=3, enrol_days=1, seed=1)\n"
        "import abkit.dev.simulate\n"
        "from abkit.dev.simulate import SimulationSpec\n"
        "c = abkit.simulate(SimulationSpec(users=40, days=3, enrol_days=1, seed=1))\n"
        "assert a.events.equals(b.events) and a.events.equals(c.events)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
