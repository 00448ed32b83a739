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


def _first_week(export) -> pl.DataFrame:
    """The events of days 0–7 after each user's assignment."""
    joined = export.events.join(export.assignments, on="user_id")
    return joined.filter(pl.col("timestamp") < pl.col("assigned_at") + pl.duration(days=8)).drop(
        "assigned_at", "variant"
    )


def test_week_one_model_keeps_the_first_week_and_moves_later_days():
    """A direct D30 lift changes days 8 and later only: the first week is the same
    events with the same seed, and later activity rises in the treatment arm."""
    from abkit.inputs.surrogate_units import week_one_units

    spec = {"users": 4_000, "days": 35, "enrol_days": 3, "seed": 2}
    plain = simulate(d30_from_week_one=True, **spec)
    direct = simulate(d30_direct_lift=1.0, **spec)
    assert _first_week(plain).equals(_first_week(direct))
    d30 = {
        name: dict(
            week_one_units(e.assignments, e.events)
            .group_by("variant")
            .agg(pl.col("d30").mean())
            .iter_rows()
        )
        for name, e in (("plain", plain), ("direct", direct))
    }
    assert d30["direct"]["control"] == pytest.approx(d30["plain"]["control"], abs=1e-12)
    assert d30["direct"]["treatment"] > d30["plain"]["treatment"] + 0.03


def test_realised_d30_matches_the_true_d30_of_the_week_one_model():
    from abkit.dev.simulate import true_d30_effects
    from abkit.inputs.surrogate_units import week_one_units

    export = simulate(
        users=20_000, days=36, enrol_days=4, d30_from_week_one=True, share_lift=0.5, seed=5
    )
    units = week_one_units(export.assignments, export.events).drop_nulls("d30")
    assert units.height > 19_000
    truth = true_d30_effects(export.spec)
    for variant, value in truth.values:
        realised = units.filter(pl.col("variant") == variant)["d30"]
        se = (value * (1 - value) / realised.len()) ** 0.5
        assert abs(realised.mean() - value) < 4 * se, variant
    assert truth.effect("treatment") > 0.01 and dict(truth.direct)["treatment"] == 0


def test_true_d30_effects_need_the_model_and_direct_lift_above_minus_one():
    from abkit.dev.simulate import SimulationSpec, true_d30_effects

    with pytest.raises(AbkitInputError, match="week-one retention model"):
        true_d30_effects(SimulationSpec())
    with pytest.raises(AbkitInputError, match="d30_direct_lift"):
        simulate(d30_direct_lift=-1.0)
