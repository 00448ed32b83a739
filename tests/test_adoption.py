"""Adoption: rates, depth, frequency and segment breakdown against direct computation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate


def test_adoption_block_matches_a_direct_computation():
    e = simulate(mode="b2b", users=2_500, accounts=14, days=6, enrol_days=2, seed=8)
    rng = np.random.default_rng(2)
    assignments = e.assignments.with_columns(
        pl.Series("role", rng.choice(["analyst", "engineer"], e.assignments.height))
    )
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 500},
        "metrics": [{"name": "adopt", "type": "adoption", "event": "share"}],
    }
    res = abkit.analyze(assignments, config, events=e.events)
    shares = e.events.filter(pl.col("event") == "share").with_columns(
        pl.col("timestamp").dt.date().alias("d")
    )
    per_user = shares.group_by("user_id").agg(pl.len().alias("n"))
    users = assignments.join(per_user, on="user_id", how="left").with_columns(
        pl.col("n").fill_null(0)
    )
    by_variant = {r.variant: r for r in res.adoption["adopt"].by_variant}
    for variant, rows in users.group_by("variant"):
        adopters = rows.filter(pl.col("n") > 0)
        row = by_variant[variant[0]]
        assert row.users == rows.height
        assert row.adopters == adopters.height
        assert row.events_per_adopter == pytest.approx(adopters["n"].mean(), rel=1e-12)
    roles = res.adoption["adopt"].segments["role"]
    assert sum(r.users for r in roles) == assignments.height
    direct = users.filter(pl.col("role") == "analyst", pl.col("variant") == "control")
    row = next(r for r in roles if r.segment["role"] == "analyst" and r.variant == "control")
    assert row.rate == pytest.approx((direct["n"] > 0).mean(), rel=1e-12)
    main = res.results[0]
    assert main.control_value == pytest.approx(by_variant["control"].rate, rel=1e-12)


def test_adoption_as_a_share_of_licensed_seats():
    e = simulate(mode="b2b", users=2_500, accounts=14, days=6, enrol_days=2, seed=8)
    users = e.assignments.group_by("account_id").agg(
        pl.len().alias("users"), pl.col("variant").first()
    )
    seats = users.with_columns((pl.col("users") * 2).cast(pl.Int64).alias("seats")).select(
        "account_id", "seats"
    )
    seats = pl.concat([seats, pl.DataFrame({"account_id": [999], "seats": [10]})])
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 500},
        "metrics": [{"name": "adopt", "type": "adoption", "event": "share"}],
    }
    res = abkit.analyze(e.assignments, config, events=e.events, accounts=seats)
    r = res.results[0]
    adopters = (
        e.events.filter(pl.col("event") == "share")
        .select("user_id")
        .unique()
        .join(e.assignments, on="user_id")
        .group_by("variant")
        .len()
    )
    total_seats = dict(users.group_by("variant").agg((2 * pl.col("users")).sum()).iter_rows())
    expected = {v: n / total_seats[v] for v, n in adopters.iter_rows()}
    assert r.control_value == pytest.approx(expected["control"], rel=1e-12)
    assert r.treatment_value == pytest.approx(expected["treatment"], rel=1e-12)
    assert res.rows["accounts"].excluded == 1  # account 999 is not in the experiment
    assert any("licensed seats" in n for n in res.notes)
