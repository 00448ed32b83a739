"""Segments in B2B mode: per-segment account-level randomisation tests, and the
randomisation test of a common effect across segments that share accounts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

import abkit
from abkit.dev.simulate import simulate
from abkit.stats.cluster import AccountArm
from abkit.stats.randomization import randomization_test, segment_heterogeneity
from tests.conftest import mc_reps


def _accounts(rng, g, effects):
    """Per account and role: users and their summed outcome, the role's additive effect."""
    size = np.round(rng.lognormal(2.5, 0.8, g)) + 2
    admins = np.round(size * rng.beta(2, 2, g))
    level = rng.normal(1.0, 0.3, g)
    out = []
    for role, users in enumerate((admins, size - admins)):
        x = rng.normal((level + 0.5 * role + effects[role]) * users, np.sqrt(users + 1))
        out.append((x, users))
    return out


def _pairs(rng, g, effects):
    c, t = _accounts(rng, g, (0.0, 0.0)), _accounts(rng, g, effects)
    return [(AccountArm(*c[s]), AccountArm(*t[s])) for s in range(2)]


@pytest.mark.calibration
@pytest.mark.parametrize("accounts", [6, 10])
def test_common_effect_is_not_called_heterogeneous(accounts):
    reps = max(mc_reps() // 5, 200)
    rng = np.random.default_rng(accounts)
    p = np.array(
        [
            segment_heterogeneity(
                _pairs(rng, accounts, (0.3, 0.3)),
                "user",
                max_exact=0,
                draws=1_000,
                seed=r,
                gamma=0.005,
            ).p_value
            for r in range(reps)
        ]
    )
    rate = float(np.mean(p < 0.05))
    print(f"\nB2B heterogeneity, {accounts} accounts per arm, common effect: {rate:.3f} ({reps})")
    assert rate <= st.binom.ppf(0.995, reps, 0.05) / reps


@pytest.mark.calibration
def test_a_role_specific_effect_is_found_with_ten_accounts_per_arm():
    reps = max(mc_reps() // 10, 100)
    rng = np.random.default_rng(3)
    p = [
        segment_heterogeneity(
            _pairs(rng, 10, (0.0, 0.8)), "user", max_exact=0, draws=1_000, seed=r
        ).p_value
        for r in range(reps)
    ]
    power = float(np.mean(np.array(p) < 0.05))
    print(f"\nB2B heterogeneity, effect 0 vs +0.8 by role: detected in {power:.2f} of runs")
    assert power > 0.4


def test_pipeline_segment_tests_equal_randomisation_tests_on_hand_built_sums():
    export = simulate(mode="b2b", users=3_000, accounts=14, days=6, enrol_days=2, seed=6)
    rng = np.random.default_rng(0)
    role = rng.choice(["admin", "member"], export.assignments.height)
    assignments = export.assignments.with_columns(pl.Series("role", role))
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 1_000},
        "segments": {"columns": ["role"]},
        "metrics": [{"name": "outputs", "type": "mean", "column": "ai_output"}],
    }
    res = abkit.analyze(assignments, config, events=export.events)
    (b,) = res.results[0].segments
    assert b.heterogeneity.method.startswith("randomisation test of a common effect")
    outputs = (
        export.events.filter(pl.col("event") == "ai_output")
        .join(assignments, on="user_id")
        .filter(pl.col("timestamp") >= pl.col("assigned_at"))
        .group_by("user_id")
        .len()
    )
    units = assignments.join(outputs, on="user_id", how="left").fill_null(0)
    accounts = units.select("variant", "account_id").unique().sort("variant", "account_id")
    for e in b.effects:
        sums = (
            units.filter(pl.col("role") == e.value)
            .group_by("variant", "account_id")
            .agg(pl.col("len").sum().alias("x"), pl.len().alias("y"))
        )
        full = accounts.join(sums, on=["variant", "account_id"], how="left").fill_null(0)
        arms = {
            v: AccountArm(
                full.filter(pl.col("variant") == v)["x"].to_numpy().astype(float),
                full.filter(pl.col("variant") == v)["y"].to_numpy().astype(float),
            )
            for v in ("control", "treatment")
        }
        ref = randomization_test(arms["control"], arms["treatment"], "user", draws=1_000)
        assert e.p_value == pytest.approx(ref.p_value, rel=1e-12)
        assert e.effect == pytest.approx(ref.effect, rel=1e-12)
    assert "by role" in res.to_markdown()
