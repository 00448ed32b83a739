"""Viral coefficient: referral sign-ups per user (events logged under the referrer),
a built-in mean when the export has them; the simulator's referrals and true lift."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

import abkit
from abkit.dev.simulate import simulate


@pytest.fixture(scope="module")
def export():
    return simulate(
        users=6_000, days=10, enrol_days=3, seed=1, referral_rate=0.3, referral_lift=0.5
    )


def test_built_in_viral_coefficient_is_referrals_per_assigned_user(export):
    res = abkit.analyze(export.assignments, events=export.events)
    r = next(x for x in res.results if x.metric == "viral_coefficient")
    counts = export.assignments.join(
        export.events.filter(pl.col("event") == "referral_signup").group_by("user_id").len(),
        on="user_id",
        how="left",
    ).with_columns(pl.col("len").fill_null(0))
    c = counts.filter(pl.col("variant") == "control")["len"].to_numpy()
    t = counts.filter(pl.col("variant") == "treatment")["len"].to_numpy()
    assert (r.control_n, r.treatment_n) == (c.size, t.size)  # users without any count as 0
    assert r.treatment_value == pytest.approx(t.mean(), rel=1e-12)
    assert r.p_value == pytest.approx(st.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-9)
    assert r.decision.outcome == "better"  # referrals per share up 50 %


def test_no_referral_events_no_metric_and_no_note():
    sim = simulate(users=500, days=5, enrol_days=2, seed=3)
    res = abkit.analyze(sim.assignments, events=sim.events)
    assert "viral_coefficient" not in {r.metric for r in res.results}
    assert not any("referral" in n for notes in res.metric_notes.values() for n in notes)


def test_referrals_off_leave_the_simulated_export_unchanged():
    a = simulate(users=800, days=6, enrol_days=2, seed=4)
    b = simulate(users=800, days=6, enrol_days=2, seed=4, referral_rate=0.0, referral_lift=0.3)
    assert a.events.equals(b.events)


def test_simulated_referrals_follow_shares_at_the_stated_rate():
    sim = simulate(users=4_000, days=8, enrol_days=3, seed=5, referral_rate=0.2)
    events = sim.events["event"].value_counts()
    count = dict(zip(events["event"], events["count"], strict=True))
    share, referral = count["share"], count["referral_signup"]
    lo, hi = st.binom.ppf([0.0005, 0.9995], share, 0.2)
    assert lo <= referral <= hi
    assert np.isfinite(referral / share)


@pytest.mark.calibration
def test_aa_size_on_simulated_referral_counts():
    """Referral counts are mostly zeros with a long tail; random re-assignments of one
    simulated cohort's counts give Welch's test its nominal size."""
    from abkit.stats import ArmSummary, welch_test
    from tests.conftest import mc_reps

    sim = simulate(users=8_000, days=8, enrol_days=3, seed=23, referral_rate=0.2)
    counts = (
        sim.assignments.join(
            sim.events.filter(pl.col("event") == "referral_signup").group_by("user_id").len(),
            on="user_id",
            how="left",
        )["len"]
        .fill_null(0)
        .to_numpy()
        .astype(float)
    )
    reps, rng = mc_reps(1_000), np.random.default_rng(24)
    rejected = 0
    for _ in range(reps):
        treated = rng.random(counts.size) < 0.5
        aa = welch_test(
            ArmSummary.from_values(counts[~treated]), ArmSummary.from_values(counts[treated])
        )
        rejected += aa.p_value < 0.05
    print(f"\nviral coefficient: reps {reps}, A/A size {rejected / reps:.4f}")
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.05) / reps
    assert lo <= rejected / reps <= hi
