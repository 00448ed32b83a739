"""CUPED's per-arm moments computed where the unit table is (abkit.inputs.comoments,
abkit.inputs.covariates): the same numbers as NumPy on fixed data (a ratio metric,
missing covariates), exact rational references for values of very different sizes, the
same bits on Polars and DuckDB through abkit.analyze, and on DuckDB only aggregates come
back, however many units there are."""

from __future__ import annotations

import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl
import pytest
from engines import assert_same_numbers, required

import abkit
from abkit.config import MetricSpec
from abkit.dev.simulate import simulate
from abkit.engine.backend import crossing
from abkit.inputs.comoments import grouped_comoments
from abkit.inputs.covariates import covariate_moments
from abkit.inputs.unit_table import UnitTable
from abkit.metrics.base import denominator_column, value_column
from abkit.names import VARIANT

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ai_summary_export"
RATIO = MetricSpec(name="latency", type="ratio", numerator="latency", denominator="outputs")
MEAN = MetricSpec(name="spend", type="mean", column="spend")
VARIANTS = ("a", "b", "c")  # no unit is in arm c
COVARIATES = {"pre": "pre spend", "active": "was active", "never": "never seen"}


def _units(n: int = 3000, seed: int = 5) -> pl.DataFrame:
    """Units of arms a and b: a ratio metric undefined for some units (no output), a
    mean metric, a covariate missing for a fifth of the units, a complete one and one
    missing for every unit."""
    rng = np.random.default_rng(seed)
    outputs = rng.poisson(3, n).astype(float)
    pre = rng.gamma(2.0, 50.0, n)
    latency = outputs * (800 + pre) + rng.normal(0, 200, n) * np.sqrt(outputs)
    return pl.DataFrame(
        {
            VARIANT: rng.choice(["a", "b"], n),
            value_column(RATIO): np.where(outputs > 0, latency, np.nan),
            denominator_column(RATIO): np.where(outputs > 0, outputs, np.nan),
            value_column(MEAN): 0.3 * pre + rng.gamma(1.0, 20.0, n),
            "pre": np.where(rng.random(n) < 0.2, np.nan, pre),
            "active": (rng.random(n) < 0.4).astype(float),
            "never": np.full(n, np.nan),
        }
    ).fill_nan(None)


def _duckdb(frame: pl.DataFrame) -> nw.LazyFrame[Any]:
    duckdb = required("duckdb")
    return nw.from_native(duckdb.connect().from_arrow(frame.to_arrow()))


def _tables(units: pl.DataFrame) -> dict[str, UnitTable]:
    return {"polars": UnitTable.of(units), "duckdb": UnitTable.on_engine(_duckdb(units))}


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
@pytest.mark.parametrize("metric", [RATIO, MEAN], ids=["ratio", "mean"])
def test_moments_equal_numpy_with_missing_covariates(engine: str, metric: MetricSpec) -> None:
    """Each arm's n, mean vector and covariance of z = (x[, y], pre with 0 for missing,
    its missing indicator, active) equal np.mean and np.cov over the units where the
    metric is defined; the covariate missing for every unit is left out, with notes."""
    units = _units()
    got = covariate_moments(_tables(units)[engine], metric, COVARIATES, VARIANTS)
    assert got is not None
    assert got.names == ("pre spend", "pre spend missing", "was active")
    components = [value_column(metric)]
    if metric.kind.is_ratio:
        components.append(denominator_column(metric))
    defined = units.drop_nulls(components)
    missing = defined["pre"].null_count()
    assert got.notes == (
        "CUPED: covariate 'pre spend' is missing for "
        f"{missing:,} of {defined.height:,} units; they are adjusted with 0 and a "
        "missing-value indicator",
        "CUPED: covariate 'never seen' is missing for every unit and is not used",
    )
    assert got.metric == ((0, 1) if metric.kind.is_ratio else (0,))
    first = len(components)
    assert got.terms == tuple((i,) for i in range(first, first + 3))
    for v in ("a", "b"):
        arm = defined.filter(pl.col(VARIANT) == v)
        z = np.column_stack(
            [
                *(arm[c].to_numpy() for c in components),
                arm["pre"].fill_null(0.0).to_numpy(),
                arm["pre"].is_null().cast(pl.Float64).to_numpy(),
                arm["active"].to_numpy(),
            ]
        )
        moments = got.arms[v]
        assert moments.n == arm.height
        np.testing.assert_allclose(moments.mean, z.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(moments.cov, np.cov(z, rowvar=False, ddof=1), rtol=1e-12)
    assert got.arms["c"].n == 0 and np.isnan(got.arms["c"].cov).all()


def test_no_usable_covariate_is_none() -> None:
    units = _units(n=200)
    for table in _tables(units).values():
        assert covariate_moments(table, MEAN, {"never": "never seen"}, VARIANTS) is None


def _exact_cov(z: np.ndarray) -> np.ndarray:
    """The sample covariance (ddof = 1) in exact rational arithmetic on the doubles."""
    n, p = z.shape
    rows = [[Fraction(float(v)) for v in row] for row in z]
    means = [sum(r[i] for r in rows) / n for i in range(p)]
    cov = np.empty((p, p))
    for i in range(p):
        for j in range(i, p):
            total = sum((r[i] - means[i]) * (r[j] - means[j]) for r in rows)
            cov[i, j] = cov[j, i] = float(total / (n - 1))
    return cov


def test_values_of_very_different_sizes_keep_their_covariance() -> None:
    """z = (1e-6-sized, 1e9 + spread 10, 1e9-sized, 1-sized) with a shared factor:
    each variable is scaled by its own power of two, so the covariances equal the exact
    rational ones to 1e-12 (raw sums of products would keep no digit of the second
    variable's variance), on Polars and DuckDB, with the same bits."""
    rng = np.random.default_rng(8)
    n = 400
    f = rng.normal(0, 1, n)
    z = np.column_stack(
        [
            1e-6 * (f + rng.normal(0, 1, n)),
            1e9 + 10 * (f + rng.normal(0, 1, n)),
            1e9 * np.exp(0.5 * f + rng.normal(0, 0.3, n)),
            f + rng.normal(0, 1, n),
        ]
    )
    frame = pl.DataFrame({"g": np.repeat(["u", "v"], n // 2)}).with_columns(
        pl.Series(f"z{i}", z[:, i]) for i in range(4)
    )
    values = [nw.col(f"z{i}") for i in range(4)]
    found = {
        engine: grouped_comoments(lazy, ["g"], values)
        for engine, lazy in (("polars", nw.from_native(frame.lazy())), ("duckdb", _duckdb(frame)))
    }
    for k, group in enumerate(("u", "v")):
        part = z[k * n // 2 : (k + 1) * n // 2]
        exact = _exact_cov(part)
        exact_means = [float(sum(map(Fraction, part[:, i])) / len(part)) for i in range(4)]
        for moments in found.values():
            got = moments[(group,)]
            assert got.n == n // 2
            np.testing.assert_allclose(got.cov, exact, rtol=1e-12)
            np.testing.assert_allclose(got.mean, exact_means, rtol=1e-15)
        a, b = found["polars"][(group,)], found["duckdb"][(group,)]
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.cov, b.cov)
    # the covariance NumPy takes from raw sums of products loses the large-mean variable
    raw = (z.T @ z - n * np.outer(z.mean(0), z.mean(0))) / (n - 1)
    assert abs(raw[1, 1] / _exact_cov(z)[1, 1] - 1) > 1e-3


def test_groups_of_very_different_spreads_keep_their_covariance() -> None:
    """Group u's covariate varies by 1e3, group v's by 1e-7 around 1e-2 (magnitudes
    within the shared-scale limit, spreads 1e10 apart): under the deviation scale of u,
    v's centred products sat near 1e-12 in fixed point and its variance kept about six
    digits (6e-10 relative error); the variable's products are now summed in floating
    point, and every group's covariance equals the exact rational one to 1e-12."""
    rng = np.random.default_rng(3)
    n = 2000
    group = np.repeat(["u", "v"], n // 2)
    c = np.where(group == "u", rng.normal(0, 1e3, n), 1e-2 + rng.normal(0, 1e-7, n))
    x = 1e9 + rng.normal(0, 10, n) + 1e3 * c * (group == "v")
    frame = pl.DataFrame({"g": group, "x": x, "c": c})
    for lazy in (nw.from_native(frame.lazy()), _duckdb(frame)):
        found = grouped_comoments(lazy, ["g"], [nw.col("x"), nw.col("c")])
        for k, name in enumerate(("u", "v")):
            part = np.column_stack([x, c])[k * n // 2 : (k + 1) * n // 2]
            np.testing.assert_allclose(found[(name,)].cov, _exact_cov(part), rtol=1e-12)


def test_subnormal_values_are_summed_without_error() -> None:
    """Values near 1e-306 (whose scale 2^k would overflow a double) give their mean and
    a zero-or-tiny variance instead of an OverflowError."""
    frame = pl.LazyFrame({"g": ["a"] * 3, "x": [1e-306, 2e-306, 4e-306]})
    (moments,) = grouped_comoments(nw.from_native(frame), ["g"], [nw.col("x")]).values()
    assert moments.mean[0] == pytest.approx(7e-306 / 3, rel=1e-12)
    assert 0 <= moments.cov[0, 0] < 1e-300


def test_a_group_of_one_unit_has_no_covariance() -> None:
    frame = pl.DataFrame({"g": ["a", "a", "a", "b"], "x": [1.0, 2.0, 4.0, 3.0]})
    for lazy in (nw.from_native(frame.lazy()), _duckdb(frame)):
        out = grouped_comoments(lazy, ["g"], [nw.col("x"), 2 * nw.col("x")])
        assert out[("b",)].n == 1 and out[("b",)].mean.tolist() == [3.0, 6.0]
        assert np.isnan(out[("b",)].cov).all()
        assert out[("a",)].cov.tolist() == [[7 / 3, 14 / 3], [14 / 3, 28 / 3]]


def _example_with_covariates() -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """The bundled example with two covariates on the assignments (one missing for a
    fifth of the users, one text holding numbers) and its metrics' own 7 days before
    assignment."""
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    rng = np.random.default_rng(7)
    n = assignments.height
    score = np.where(rng.random(n) < 0.2, np.nan, rng.gamma(2.0, 5.0, n))
    assignments = assignments.with_columns(
        pl.Series("pre_score", score).fill_nan(None),
        pl.Series("tier", [str(v) for v in rng.integers(0, 4, n)]),
    )
    config = tomllib.loads((EXAMPLE / "experiment.toml").read_text())
    config["cuped"] = {"covariates": ["pre_score", "tier"], "pre_days": 7}
    return assignments, events, config


def test_the_bundled_example_with_cuped_is_the_same_bits_on_duckdb() -> None:
    duckdb = required("duckdb")
    assignments, events, config = _example_with_covariates()
    reference = abkit.analyze(assignments, config, events=events)
    connection = duckdb.connect()
    other = abkit.analyze(
        connection.from_arrow(assignments.to_arrow()),
        config,
        events=connection.from_arrow(events.to_arrow()),
    )
    assert_same_numbers(reference.to_dict(), other.to_dict(), rel=0.0)
    adjusted = [r for r in reference.results if r.cuped is not None]
    assert len(adjusted) == len(reference.results)
    share = next(r for r in reference.results if r.metric == "share_rate")
    assert share.cuped is not None and share.cuped.covariates[:3] == (
        "pre_score",
        "pre_score missing",
        "tier",
    )
    assert "came back" not in other.to_text()


def test_covariate_moments_on_duckdb_bring_back_only_aggregates() -> None:
    """The rows that come back for one metric's CUPED moments: one row of missing-value
    counts and three queries of a row per arm, for 500 units as for 5,000."""
    crossed = []
    for n in (500, 5000):
        table = UnitTable.on_engine(_duckdb(_units(n=n)))
        with crossing() as seen:
            got = covariate_moments(table, RATIO, COVARIATES, VARIANTS)
        assert got is not None and got.arms["a"].n > n // 3
        crossed.append((seen.rows, seen.frames))
        assert table.crossed == [] and table.crossing_note() is None
    assert crossed[0] == crossed[1] == (1 + 3 * 2, 4), crossed


def test_an_analysis_with_cuped_on_duckdb_brings_back_no_unit_row() -> None:
    """The bundled example's metrics with CUPED on 2,000 and on 8,000 simulated users:
    no result frame has a row per unit and what comes back does not grow with the
    units (per-day counts and histograms aside, as in tests/test_pushdown.py)."""
    duckdb = required("duckdb")
    config = tomllib.loads((EXAMPLE / "experiment.toml").read_text())
    del config["experiment"]["expected_split"]  # the simulation's arms have other names
    config["surrogate"] = {"metrics": []}  # it reads every unit's first week
    config["cuped"] = {"covariates": ["pre_score"], "pre_days": 7}
    crossed = {}
    for users in (2000, 8000):
        sim = simulate(users=users, days=21, enrol_days=7, seed=5, pre_days=7)
        rng = np.random.default_rng(users)
        score = np.where(rng.random(users) < 0.1, np.nan, rng.gamma(2.0, 5.0, users))
        assignments = sim.assignments.with_columns(pl.Series("pre_score", score).fill_nan(None))
        connection = duckdb.connect()
        with crossing() as seen:
            result = abkit.analyze(
                assignments, config, events=connection.from_arrow(sim.events.to_arrow())
            )
        assert all(r.cuped is not None for r in result.results)
        assert "came back" not in result.to_text()
        crossed[users] = seen.rows
    assert crossed[8000] <= 1.25 * crossed[2000] < 2000, crossed
