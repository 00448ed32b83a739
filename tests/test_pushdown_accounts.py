"""B2B account sums and adoption by cohort computed where the unit table is: the same
bits on DuckDB as on Polars, rows back that grow with accounts and not with users, and
sums equal to a hand-written group-by of the raw export."""

from __future__ import annotations

import math
import re
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl
import pytest

import abkit
from abkit.config import parse_config
from abkit.dev.simulate import simulate
from abkit.engine.backend import crossing
from abkit.inputs.account_sums import clean_units, engine_account_sums
from abkit.inputs.unit_table import UnitTable
from abkit.names import ACCOUNT, ORDER, UNIT, VARIANT
from tests.engines import assert_same_numbers, required, to_duckdb, to_ibis

SHARE = {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
CONFIG: dict[str, Any] = {
    "experiment": {"account": "account_id", "mode": "b2b"},
    "b2b": {"resamples": 400, "seed": 1, "strata": "tier"},
    "cuped": {"pre_days": 7},
    "segments": {"columns": ["role"]},
    "metrics": [
        {"name": "outputs", "type": "mean", "column": "ai_output"},
        SHARE,
        {"name": "latency", "type": "mean", "column": "ai_output.latency_ms"},
        {"name": "adopt", "type": "adoption", "event": "share", "segments": ["role", "level"]},
        {"name": "nrr", "type": "nrr"},
        {"name": "ttv", "type": "time_to_value", "event": "share"},
        {"name": "p90", "type": "quantile", "column": "ai_output.latency_ms", "q": 0.9},
    ],
}
# the rows an engine sends back, by reason, as the run's note says them
_CROSSED = re.compile(r"([\d,]+) rows for ([^;]+?)(?:;|$)")


def _export(users: int, accounts: int = 12, seed: int = 5) -> tuple[pl.DataFrame, ...]:
    """A B2B export with an account-level stratum ``tier``, user-level segments ``role``
    (text, some missing) and ``level`` (integer, some missing), a mixed account and an
    accounts table with ARR and seats (some missing)."""
    sim = simulate(
        mode="b2b", users=users, accounts=accounts, days=6, enrol_days=2, seed=seed, pre_days=7
    )
    rng = np.random.default_rng(1)
    n = sim.assignments.height
    assignments = sim.assignments.with_columns(
        pl.Series("role", rng.choice(np.array(["admin", "member", None]), n)),
        pl.Series("level", rng.choice(np.array([1, 2, 3, -1]), n)).replace(-1, None),
        pl.when(pl.col("account_id") % 2 == 0)
        .then(pl.lit("small"))
        .otherwise(pl.lit("large"))
        .alias("tier"),
    )
    # one account's first user switched to the other arm: contaminated, left out
    first = assignments["account_id"].min()
    user = assignments.filter(pl.col("account_id") == first)["user_id"][0]
    switched = pl.when(pl.col("variant") == "control").then(pl.lit("treatment"))
    switched = switched.otherwise(pl.lit("control"))
    assignments = assignments.with_columns(
        pl.when(pl.col("user_id") == user)
        .then(switched)
        .otherwise(pl.col("variant"))
        .alias("variant")
    )
    ids = assignments["account_id"].unique().sort()
    start = rng.lognormal(10, 1, ids.len())
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "arr_start": start,
            "arr_end": start * rng.normal(1.05, 0.1, ids.len()),
            "seats": pl.Series([None if i % 4 == 0 else 400 for i in range(ids.len())]),
        }
    )
    return assignments, sim.events, accounts


@pytest.fixture(scope="module")
def duckdb_connection() -> Any:
    return required("duckdb").connect()


@pytest.fixture(scope="module")
def runs(duckdb_connection: Any) -> tuple[abkit.AnalysisResult, abkit.AnalysisResult]:
    assignments, events, accounts = _export(2_000)
    reference = abkit.analyze(assignments, CONFIG, events=events, accounts=accounts)
    on_engine = abkit.analyze(
        to_duckdb(assignments, duckdb_connection),
        CONFIG,
        events=to_duckdb(events, duckdb_connection),
        accounts=accounts,
    )
    return reference, on_engine


def _crossed(result: abkit.AnalysisResult) -> dict[str, int]:
    """Reason → rows that came back from the engine, read from the run's note."""
    (note,) = [n for n in result.notes if "came back from the" in n]
    body = note.split(": ", 1)[1].split("; the other results")[0]
    return {m[2]: int(m[1].replace(",", "")) for m in _CROSSED.finditer(body)}


def test_a_b2b_analysis_on_duckdb_has_the_polars_bits(runs):
    reference, on_engine = runs
    by_name = {r.metric: r for r in reference.results}
    # every design feature is exercised: strata, CUPED, segments, seats, NRR, contamination
    assert by_name["outputs"].cuped is not None
    detail = by_name["outputs"].b2b
    assert detail is not None and detail.randomization is not None
    assert detail.randomization.stratified
    assert by_name["outputs"].segments and by_name["share_rate"].segments
    assert by_name["nrr"].b2b is not None
    assert any("licensed seats" in n for n in reference.notes)
    assert any("CONTAMINATION" in w for w in reference.warnings)
    assert_same_numbers(reference.to_dict(), on_engine.to_dict(), rel=0.0)


def test_only_the_accounts_of_quantile_values_come_back_per_unit(runs):
    _, on_engine = runs
    crossed = _crossed(on_engine)
    accounts = 12 - 1  # one contaminated
    assert crossed["the account sums"] <= 2 * 2 * accounts  # two queries, ≤ 2 strata each
    assert crossed["the account sums by role"] <= accounts * 3
    # the quantile metric needs each value's account: the units of the clean accounts
    assert 0 < crossed["the accounts of exact quantile values"] < 2_000
    assert set(crossed) <= {
        "the account sums",
        "the account sums by role",
        "the accounts of exact quantile values",
        "adoption by cohort",
        "exact quantiles (events)",
        "CUPED",  # the covariate moments, a step of its own, not the account sums
    }


def test_rows_for_the_account_sums_grow_with_accounts_not_users(duckdb_connection):
    config = {
        **CONFIG,
        "cuped": {},
        "metrics": [m for m in CONFIG["metrics"] if m["type"] not in ("quantile",)],
    }
    seen: dict[tuple[int, int], tuple[int, dict[str, int]]] = {}
    for accounts in (8, 16):
        for users in (2_000, 8_000):
            assignments, events, table = _export(users, accounts=accounts, seed=9)
            with crossing() as rows:
                res = abkit.analyze(
                    to_duckdb(assignments, duckdb_connection),
                    config,
                    events=to_duckdb(events, duckdb_connection),
                    accounts=table,
                )
            seen[accounts, users] = rows.rows, _crossed(res)
    for accounts in (8, 16):
        small, large = seen[accounts, 2_000], seen[accounts, 8_000]
        # the same rows for the same accounts, two queries of one row per clean account
        assert small[1]["the account sums"] == large[1]["the account sums"] == 2 * (accounts - 1)
        # by role: one row per account and role the account has (a few more users may
        # fill a role an account lacked), never more than accounts × 3 roles
        by_role = small[1]["the account sums by role"], large[1]["the account sums by role"]
        assert by_role[0] <= by_role[1] <= 3 * (accounts - 1)
        assert small[1]["adoption by cohort"] == large[1]["adoption by cohort"]
        # and no step sends unit rows: every query of the run (per-arm and per-day
        # aggregates too) brings back a few hundred rows at most, for 2,000 or 8,000 users
        assert small[0] < 500 and large[0] < 500, (small, large)


def _units() -> pl.DataFrame:
    """A hand-made unit table: float values with nulls, a ratio, a covariate with nulls,
    units without an account, and an account whose stratum changes after its first
    eligible unit (the first unit's stratum is the account's)."""
    rng = np.random.default_rng(4)
    n = 600
    drawn = rng.integers(0, 9, n)
    account = [None if r < 0.05 else int(a) for a, r in zip(drawn, rng.random(n), strict=True)]
    value = rng.lognormal(3, 2, n) * rng.choice([1, -1], n)
    value[rng.random(n) < 0.1] = np.nan
    pre = rng.normal(100, 30, n)
    pre[rng.random(n) < 0.2] = np.nan
    tier = np.where(rng.random(n) < 0.1, "b", "a")
    return pl.DataFrame(
        {
            ORDER: np.arange(n),
            UNIT: np.arange(n) * 7,
            VARIANT: np.where([a is not None and a % 2 == 0 for a in account], "t", "c"),
            ACCOUNT: pl.Series(account, dtype=pl.Int64),
            "tier": tier,
            "m:rev": pl.Series(value).fill_nan(None),
            "m:sr": rng.poisson(3, n).astype(float),
            "m:sr:den": pl.Series(rng.poisson(6, n).astype(float)).scatter([3, 9], None),
            "pre:rev": pl.Series(pre).fill_nan(None),
        }
    )


def _hand_sums(units: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The per-account sums written by hand: x by math.fsum (correctly rounded) and by
    Polars' own sum, the
    stratum of the first eligible unit, covariate sums with nulls as 0 and their count."""
    out = {}
    for name, den in (("rev", None), ("sr", "m:sr:den")):
        x = f"m:{name}"
        eligible = units.filter(pl.col(x).is_not_null(), pl.col(ACCOUNT).is_not_null())
        if den:
            eligible = eligible.filter(pl.col(den).is_not_null())
        per = (
            eligible.sort(ORDER)
            .group_by(VARIANT, ACCOUNT)
            .agg(
                pl.col(x).alias("xs"),
                (pl.col(den) if den else pl.col(x).is_not_null().cast(pl.Float64)).alias("ys"),
                pl.col("tier").first().alias("stratum"),
                pl.col("pre:rev").fill_null(0).sum().alias("z0"),
                pl.col("pre:rev").is_null().sum().cast(pl.Float64).alias("z1"),
                pl.col(x).sum().alias("polars_x"),
                pl.col(x).abs().sum().alias("abs_x"),
            )
            .sort(VARIANT, ACCOUNT)
        )
        per = per.with_columns(
            pl.Series("x", [math.fsum(v) for v in per["xs"].to_list()]),
            pl.Series("y", [math.fsum(v) for v in per["ys"].to_list()]),
        )
        out[name] = per
    return out


def test_account_sums_equal_a_hand_written_group_by_on_both_engines(duckdb_connection):
    units = _units()
    spec = parse_config(
        {
            "metrics": [
                {"name": "rev", "type": "mean", "column": "ai_output"},
                {"name": "sr", "type": "ratio", "numerator": "share", "denominator": "x"},
            ]
        }
    )
    covariates = {"rev": {"pre:rev": "rev before"}, "sr": {"pre:rev": "rev before"}}
    hand = _hand_sums(units)
    mixed = [units.filter(pl.col(ACCOUNT).is_not_null())[ACCOUNT][0]]
    found = {}
    for engine, table in (
        ("polars", UnitTable.of(units.drop(ORDER))),
        ("duckdb", UnitTable.on_engine(nw.from_native(to_duckdb(units, duckdb_connection)))),
    ):
        with crossing() as seen:
            sums = engine_account_sums(
                table, clean_units(table, []), spec.metrics, "tier", covariates
            )
        assert seen.rows <= 2 * 2 * 9 + 2 * 2  # per account × stratum, and the null account
        found[engine] = sums
        for name, expected in hand.items():
            got = sums.sums[name]
            assert got.select(VARIANT, ACCOUNT, "stratum").equals(
                expected.select(VARIANT, ACCOUNT, "stratum")
            )
            # each value enters the fixed-point sum as the engine's cast of it, within
            # about 1.1e-16 of it relatively: within 4e-16·Σ|v| of the exact (fsum) sum
            bound = 4e-16 * expected["abs_x"].to_numpy()
            assert (abs(got["x"] - expected["x"]).to_numpy() <= bound).all()
            assert (abs(got["x"] - expected["polars_x"]).to_numpy() <= 2 * bound).all()
            assert got["y"].to_list() == expected["y"].to_list()
            assert sums.names[name] == ["rev before", "rev before missing"]
            np.testing.assert_allclose(got["z0"], expected["z0"], rtol=1e-12)
            assert got["z1"].to_list() == expected["z1"].to_list()
        # the mixed account's units are left out where the table is
        clean = engine_account_sums(
            table, clean_units(table, mixed), spec.metrics, "tier", covariates
        )
        assert mixed[0] not in clean.sums["rev"][ACCOUNT].to_list()
    for name in hand:
        assert found["polars"].sums[name].equals(found["duckdb"].sums[name])
    assert found["polars"].accounts.equals(found["duckdb"].accounts)


def test_account_sums_on_duckdb_equal_the_raw_export_grouped_by_hand(runs):
    """The accounts' values and sizes of the share rate on DuckDB against Σ shares and
    Σ outputs per account of the raw events after each user's assignment."""
    assignments, events, _ = _export(2_000)
    _, on_engine = runs
    r = next(r for r in on_engine.results if r.metric == "share_rate")
    assert r.b2b is not None and r.b2b.accounts is not None
    mixed = (
        (assignments.group_by("account_id").agg(pl.col("variant").n_unique().alias("v")))
        .filter(pl.col("v") > 1)["account_id"]
        .to_list()
    )
    joined = events.join(assignments, on="user_id").filter(
        pl.col("timestamp") >= pl.col("assigned_at"), ~pl.col("account_id").is_in(mixed)
    )
    per_account = (
        joined.group_by("variant", "account_id")
        .agg(
            (pl.col("event") == "share").sum().cast(pl.Float64).alias("x"),
            (pl.col("event") == "ai_output").sum().cast(pl.Float64).alias("y"),
        )
        .sort("variant", "account_id")
    )
    for variant, points in r.b2b.accounts.items():
        rows = per_account.filter(pl.col("variant") == variant, pl.col("y") > 0)
        assert sorted(points.size) == sorted(rows["y"].to_list())
        expected = sorted((rows["x"] / rows["y"]).to_list())
        np.testing.assert_allclose(sorted(points.value), expected, rtol=1e-12)


def test_adoption_by_cohort_on_duckdb_equals_polars_without_unit_rows(runs):
    reference, on_engine = runs
    assert_same_numbers(reference.to_dict()["adoption"], on_engine.to_dict()["adoption"], rel=0.0)
    summary = on_engine.adoption["adopt"]
    # a row per variant, per role (two values and the missing ones) and per level
    assert len(summary.segments["role"]) == 6 and len(summary.segments["level"]) == 8
    assert {r.segment["level"] for r in summary.segments["level"]} == {"1", "2", "3", "(missing)"}
    crossed = _crossed(on_engine)
    assert crossed["adoption by cohort"] == 2 + 6 + 8  # one row per group, no unit rows
    # the counts against the raw export: adopters are users with a share after assignment
    assignments, events, _ = _export(2_000)
    shares = (
        events.filter(pl.col("event") == "share")
        .join(assignments, on="user_id")
        .filter(pl.col("timestamp") >= pl.col("assigned_at"))
        .group_by("user_id")
        .len()
    )
    users = assignments.join(shares, on="user_id", how="left")
    for row in summary.segments["level"]:
        level = row.segment["level"]
        group = users.filter(
            pl.col("variant") == row.variant,
            pl.col("level").is_null() if level == "(missing)" else pl.col("level") == int(level),
        )
        adopters = group.filter(pl.col("len").is_not_null())
        assert (row.users, row.adopters) == (group.height, adopters.height)
        assert row.accounts == group["account_id"].n_unique()
        assert row.events_per_adopter == pytest.approx(adopters["len"].mean(), rel=1e-15)


def test_a_b2b_analysis_on_ibis_has_the_polars_bits():
    """The same queries through Ibis (over DuckDB): no expression outside what every
    engine offers."""
    backend = required("ibis").duckdb.connect()
    assignments, events, accounts = _export(1_200, accounts=8, seed=2)
    reference = abkit.analyze(assignments, CONFIG, events=events, accounts=accounts)
    on_ibis = abkit.analyze(
        to_ibis(assignments, backend, "assignments"),
        CONFIG,
        events=to_ibis(events, backend, "events"),
        accounts=accounts,
    )
    assert_same_numbers(reference.to_dict(), on_ibis.to_dict(), rel=0.0)
