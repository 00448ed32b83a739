"""Active days per user in a window after assignment (the per-user form of DAU):
against a direct computation on the raw export, eligibility, the default metric set,
daily looks and configuration errors."""

from __future__ import annotations

import polars as pl
import pytest
from scipy import stats as st

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import ConfigError

ACTIVE = {"name": "active_days_7d", "type": "active_days", "window": [0, 6]}
_DAY_US = 86_400_000_000


@pytest.fixture(scope="module")
def export():
    return simulate(users=2_500, days=16, enrol_days=12, seed=3, retention_lift=0.15)


def _by_hand(export, first, last):
    """Distinct days d in [first, last] after assignment with any event, for the units
    whose window has fully elapsed by the last event."""
    end = export.events["timestamp"].max()
    rows = export.events.join(export.assignments, on="user_id").with_columns(
        ((pl.col("timestamp") - pl.col("assigned_at")).dt.total_microseconds() // _DAY_US).alias(
            "d"
        )
    )
    days = (
        rows.filter(pl.col("d").is_between(first, last))
        .group_by("user_id")
        .agg(pl.col("d").n_unique().alias("k"))
    )
    mature = export.assignments.filter(pl.col("assigned_at") + pl.duration(days=last + 1) <= end)
    return mature.join(days, on="user_id", how="left").with_columns(pl.col("k").fill_null(0))


def test_active_days_equal_a_direct_count_and_welch_on_it(export):
    res = abkit.analyze(export.assignments, {"metrics": [ACTIVE]}, events=export.events)
    (r,) = res.results
    units = _by_hand(export, 0, 6)
    c = units.filter(pl.col("variant") == "control")["k"].to_numpy()
    t = units.filter(pl.col("variant") == "treatment")["k"].to_numpy()
    assert (r.control_n, r.treatment_n) == (c.size, t.size)
    assert r.control_value == pytest.approx(c.mean(), rel=1e-12)
    assert r.p_value == pytest.approx(st.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-9)
    waiting = export.assignments.height - units.height
    assert waiting > 0  # late enrolments have not completed the week
    assert any(
        f"{waiting:,} of 2,500 units have not completed" in n
        for n in res.metric_notes[ACTIVE["name"]]
    )


def test_a_window_later_after_assignment_and_restricted_events(export):
    metric = {**ACTIVE, "name": "ai_days", "window": [1, 3], "events": ["ai_output"]}
    (r,) = abkit.analyze(export.assignments, {"metrics": [metric]}, events=export.events).results
    ai = export.events.filter(pl.col("event") == "ai_output")
    units = _by_hand(type(export)(export.assignments, ai, export.spec), 1, 3)
    # the export end is the last event of any kind, so maturity is judged on all events
    end = export.events["timestamp"].max()
    units = units.filter(pl.col("assigned_at") + pl.duration(days=4) <= end)
    assert r.control_value == pytest.approx(
        units.filter(pl.col("variant") == "control")["k"].mean(), rel=1e-12
    )


def test_active_days_are_in_the_default_metric_set(export):
    res = abkit.analyze(export.assignments, events=export.events)
    assert "active_days_7d" in {r.metric for r in res.results}


def test_daily_looks_end_at_the_fixed_horizon_moments(export):
    """A unit enters the looks once its window has matured; at the last look each arm's
    n, mean and variance (the sum of squares of non-0/1 values) are the fixed-horizon
    ones."""
    from abkit.designs import Users
    from abkit.inputs.prepare import prepare
    from abkit.io.exclusions import Ledger

    spec = abkit.load_config({"metrics": [ACTIVE], "sequential": {"method": "cs"}})
    prepared = prepare(export.assignments, spec, Ledger(), Users(), events=export.events)
    last = prepared.looks[ACTIVE["name"]].arms[-1]
    for variant, arm in prepared.arms[ACTIVE["name"]].items():
        assert (last[variant].n, last[variant].mean, last[variant].var) == pytest.approx(
            (arm.n, arm.mean, arm.var), rel=1e-9
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [({"window": None}, "give exactly one of"), ({"window": [3, 1]}, "0 <= a <= b")],
)
def test_bad_windows_are_refused(change, message):
    metric = {k: v for k, v in {**ACTIVE, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        abkit.load_config({"metrics": [metric]})


@pytest.mark.calibration
def test_aa_size_and_coverage_on_simulated_active_days():
    """Random re-assignments of one simulated cohort's per-unit active days (A/A: the
    size of Welch's test), and the same with a known shift of one day for a random
    tenth of the treated units (coverage of the true mean difference)."""
    import numpy as np

    from abkit.stats import ArmSummary, welch_test
    from tests.conftest import mc_reps

    sim = simulate(users=8_000, days=12, enrol_days=4, seed=21)
    k = _by_hand(sim, 0, 6)["k"].to_numpy().astype(float)
    reps, rng = mc_reps(1_000), np.random.default_rng(22)
    rejected = covered = 0
    for _ in range(reps):
        treated = rng.random(k.size) < 0.5
        aa = welch_test(ArmSummary.from_values(k[~treated]), ArmSummary.from_values(k[treated]))
        rejected += aa.p_value < 0.05
        bump = treated & (rng.random(k.size) < 0.1)
        shifted = k + bump
        ab = welch_test(
            ArmSummary.from_values(shifted[~treated]), ArmSummary.from_values(shifted[treated])
        )
        covered += ab.ci[0] <= 0.1 <= ab.ci[1]
    print(
        f"\nactive days: reps {reps}, A/A size {rejected / reps:.4f}, coverage {covered / reps:.4f}"
    )
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.05) / reps
    assert lo <= rejected / reps <= hi
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.95) / reps
    assert lo <= covered / reps <= hi
