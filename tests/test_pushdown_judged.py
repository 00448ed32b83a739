"""judged_quality reduced where the unit table is: per arm, counts, totals and the
co-moments of the users' sums (abkit.stats.ppi.JudgedArm), computed by aggregate
queries, so that on DuckDB only a few rows per variant come back; the same numbers as
Polars and as PPI++ written out per user here; parts of an arm add up by ``+``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl
import pytest
import scipy.stats as st
from engines import assert_same_numbers, required, to_duckdb

import abkit
from abkit.config import MetricSpec
from abkit.dev.simulate import simulate
from abkit.engine.backend import crossing
from abkit.inputs.unit_table import UnitTable
from abkit.json_codec import to_jsonable
from abkit.metrics.judged_quality import JudgedQuality, part_column
from abkit.names import VARIANT
from abkit.stats.judge_noise import Repeats, judge_noise, noise_split
from abkit.stats.judged import judged_comparison
from abkit.stats.ppi import TOTALS, JudgedArm, bias_difference, judge_mean, ppi_mean

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "llm_judge"
JUDGED = {
    "name": "quality",
    "type": "judged_quality",
    "column": "judge_score.value",
    "human": "judge_score.human_score",
}
REPEATED = JUDGED | {"output": "judge_score.output_id"}
PARTS = TOTALS  # the per-user sums, as the metric names its columns


def _on_duckdb(assignments: pl.DataFrame, events: pl.DataFrame, config: Any) -> Any:
    connection = required("duckdb").connect()
    connection.execute("SET TimeZone = 'UTC'")
    return abkit.analyze(
        to_duckdb(assignments, connection), config, events=to_duckdb(events, connection)
    )


def _judge_rows(assignments: pl.DataFrame, events: pl.DataFrame, variant: str) -> pl.DataFrame:
    rows = events.filter(pl.col("event") == "judge_score").join(
        assignments.select("user_id", "variant"), on="user_id"
    )
    return rows.filter(pl.col("variant") == variant)


def _engine_note(result: Any) -> list[str]:
    return [n for n in result.notes if "came back from the" in n]


# what crosses for judged_quality: three aggregate queries, a row per variant each
PER_ARM = "6 rows for metric type 'judged_quality' (per-arm sums);"


def _only_per_arm_sums(result: Any) -> None:
    (note,) = _engine_note(result)
    assert PER_ARM in note and note.count(" rows for ") == 1, note


# --- (a) DuckDB equals Polars, and both equal PPI++ on the rows -------------------------


def test_the_example_on_duckdb_equals_polars_and_the_rows() -> None:
    """examples/llm_judge: every number of the result (estimate, interval, p-value,
    λ, audit) the same on DuckDB as on Polars to 1e-12, only judged_quality's per-arm
    sums coming back, and the detail equal to PPI++ of the judge rows read by
    hand (one output per judgement)."""
    config = abkit.load_config(EXAMPLE / "experiment.toml")
    assignments = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    on_polars = abkit.analyze(assignments, config, events=events)
    on_duckdb = _on_duckdb(assignments, events, config)
    assert_same_numbers(on_polars.to_dict(), on_duckdb.to_dict())
    _only_per_arm_sums(on_duckdb)
    (quality,) = [r for r in on_duckdb.results if r.metric == "quality"]
    arms = {
        v: JudgedArm.from_outputs(
            rows["user_id"].to_numpy(),
            rows["value"].to_numpy(),
            rows["human_score"].fill_null(np.nan).to_numpy(),
        )
        for v in ("control", "model_b")
        for rows in [_judge_rows(assignments, events, v)]
    }
    ppi, detail = judged_comparison(arms["control"], arms["model_b"])
    assert_same_numbers(to_jsonable(detail), to_jsonable(quality.judged))
    assert quality.effect == pytest.approx(ppi.effect, rel=1e-12)
    assert quality.p_value == pytest.approx(ppi.p_value, rel=1e-12)


def test_a_simulated_export_with_repeats_on_duckdb_equals_polars_and_the_rows() -> None:
    """Biased, noisy judge, a fifth of outputs labelled, three runs per output: the
    result and the noise split the same on DuckDB and Polars; the noise split equal to
    judge_noise on the judgements read by hand."""
    sim = simulate(
        users=1500,
        judge_rate=0.5,
        human_share=0.2,
        judge_bias=0.2,
        judge_noise=0.5,
        judge_runs=3,
        seed=8,
    )
    config = {"metrics": [REPEATED]}
    on_polars = abkit.analyze(sim.assignments, config, events=sim.events)
    on_duckdb = _on_duckdb(sim.assignments, sim.events, config)
    assert_same_numbers(on_polars.to_dict(), on_duckdb.to_dict())
    _only_per_arm_sums(on_duckdb)
    detail = on_duckdb.results[0].judged
    for v, arm in (("control", detail.control), ("treatment", detail.treatment)):
        rows = _judge_rows(sim.assignments, sim.events, v)
        noise = judge_noise(
            rows["user_id"].to_numpy(),
            rows["output_id"].to_numpy(),
            rows["value"].to_numpy(),
            rows["human_score"].fill_null(np.nan).to_numpy(),
        )
        assert arm.noise is not None
        assert_same_numbers(to_jsonable(noise), to_jsonable(arm.noise))


def _unit_rows(seed: int, users: int, level: float, spread: float) -> pl.DataFrame:
    """A unit table of per-user sums (as the events stage writes them) whose judge
    scores and labels sit at ``level`` with sd ``spread``; a quarter of the users have
    no judged output (nulls)."""
    rng = np.random.default_rng(seed)
    outputs = rng.integers(1, 6, users)
    user = np.repeat(np.arange(users), outputs)
    quality = level + spread * rng.normal(size=user.size)
    judge = quality + 0.3 * spread + 0.5 * spread * rng.normal(size=user.size)
    human = np.where(rng.random(user.size) < 0.2, quality, np.nan)
    frame = pl.DataFrame({"user": user, "f": judge, "y": human}).with_columns(
        lab=pl.col("y").is_not_nan()
    )
    lab, unlab = pl.col("lab"), ~pl.col("lab")
    f, y = pl.col("f"), pl.col("y")
    sums = {
        "unlabelled": unlab.cast(pl.Float64),
        "judge": pl.when(unlab).then(f).otherwise(0.0),
        "judge_sq": pl.when(unlab).then(f * f).otherwise(0.0),
        "labelled": lab.cast(pl.Float64),
        "judge_labelled": pl.when(lab).then(f).otherwise(0.0),
        "judge_labelled_sq": pl.when(lab).then(f * f).otherwise(0.0),
        "human": pl.when(lab).then(y).otherwise(0.0),
        "human_sq": pl.when(lab).then(y * y).otherwise(0.0),
        "judge_human": pl.when(lab).then(f * y).otherwise(0.0),
        "not_pass_fail": lab.cast(pl.Float64),
    }
    per_user = frame.group_by("user").agg(
        *(e.sum().alias(part_column(_METRIC, p)) for p, e in sums.items())
    )
    silent = pl.DataFrame({"user": np.arange(users, users + users // 4)})
    table = pl.concat([per_user, silent], how="diagonal")
    variant = np.where(rng.random(table.height) < 0.5, "control", "treatment")
    return table.with_columns(pl.Series(VARIANT, variant)).sort("user")


_METRIC = MetricSpec(name="quality", **{k: v for k, v in JUDGED.items() if k != "name"})


def _by_hand(rows: pl.DataFrame) -> dict[str, float]:
    """PPI++ of one arm written out per user (module docstring of abkit.stats.ppi), at
    the λ abkit tunes: θ̂, Var(θ̂) = Σψ²; the judge mean and the bias with their CR0
    variances."""
    c = {p: rows[part_column(_METRIC, p)].fill_null(0.0).to_numpy() for p in PARTS}
    big_n_u, a, n_u, cc, b = (
        c[p] for p in ("unlabelled", "judge", "labelled", "judge_labelled", "human")
    )
    n, big_n = n_u.sum(), big_n_u.sum()
    y_bar, f_l, f_u = b.sum() / n, cc.sum() / n, a.sum() / big_n
    y, fl, fu = b - n_u * y_bar, cc - n_u * f_l, a - big_n_u * f_u
    lam = ppi_mean(JudgedArm.from_users(*c.values())).lam
    psi = y / n + lam * (fu / big_n - fl / n)
    judge = (a.sum() + cc.sum()) / (n + big_n)
    bias = (cc.sum() - b.sum()) / n
    return {
        "estimate": y_bar + lam * (f_u - f_l),
        "variance": float(np.sum(psi**2)),
        "judge": judge,
        "judge_variance": float(np.sum((a + cc - judge * (n_u + big_n_u)) ** 2)) / (n + big_n) ** 2,
        "bias_variance": float(np.sum((cc - b - bias * n_u) ** 2)) / n**2,
    }


@pytest.mark.parametrize(("level", "spread"), [(3.0, 1.0), (100.0, 1.0), (1e4, 3.0)])
def test_the_engine_sums_give_ppi_written_out_per_user(level: float, spread: float) -> None:
    """The sums computed by aggregate queries on Polars and on DuckDB give the PPI++
    estimate and variance, the judge mean's and the bias's variances of the per-user
    formulas to 1e-12, also for scores far from 0 (labels at 100 with sd 1, at 10⁴
    with sd 3), where a variance from raw sums would lose four to seven digits."""
    duckdb = required("duckdb")
    units = _unit_rows(5, 3000, level, spread)
    variants = ("control", "treatment")
    tables = {
        "polars": UnitTable.of(units),
        "duckdb": UnitTable.on_engine(
            nw.from_native(duckdb.connect().from_arrow(units.to_arrow()))
        ),
    }
    kind = JudgedQuality()
    got = {e: kind.table_statistic(_METRIC, t, variants) for e, t in tables.items()}
    # the sums of the units in this process (unit_statistic), for a type's own callers
    got["in process"] = kind.unit_statistic(_METRIC, units, variants)
    for v in variants:
        want = _by_hand(units.filter(pl.col(VARIANT) == v))
        for engine in got:
            arm = got[engine][v].arm
            est = ppi_mean(arm)
            judge = judge_mean(arm)
            assert est.estimate == pytest.approx(want["estimate"], rel=1e-12)
            assert est.variance == pytest.approx(want["variance"], rel=1e-12)
            assert judge.estimate == pytest.approx(want["judge"], rel=1e-12)
            assert judge.variance == pytest.approx(want["judge_variance"], rel=1e-12)
            bias_var = bias_difference(arm, arm).se ** 2 / 2
            assert bias_var == pytest.approx(want["bias_variance"], rel=1e-12)
        want_all = to_jsonable(
            judged_comparison(got["polars"]["control"].arm, got["polars"][v].arm)
        )
        assert_same_numbers(
            want_all,
            to_jsonable(judged_comparison(got["duckdb"]["control"].arm, got["duckdb"][v].arm)),
        )
        # the engine sums each total exactly of the values cast to 18 decimals (about
        # 22 significant digits), the process of the floats themselves: the totals
        # differ by ~1e-18, which the per-output variance in λ̂ (Σf² − (Σf)²/M, a
        # condition of (level/spread)² ≈ 10⁷ at 10⁴ ± 3) makes ~1e-11
        rel = 1e-12 if level / spread <= 100 else 1e-10
        arms = got["in process"]["control"].arm, got["in process"][v].arm
        assert_same_numbers(want_all, to_jsonable(judged_comparison(*arms)), rel=rel)


# --- (b) on DuckDB the rows that come back do not grow with the users ---------------------


def test_on_duckdb_only_aggregates_of_judged_quality_come_back() -> None:
    """The judged metric with repeats on 1,000 and on 4,000 simulated users: the rows
    that cross from DuckDB are the same few (a row per variant and query, the rest
    per day or per exclusion reason), and the result says only the per-arm sums of
    judged_quality came back."""
    seen = {}
    for users in (1000, 4000):
        sim = simulate(
            users=users, judge_rate=0.5, human_share=0.2, judge_noise=0.5, judge_runs=2, seed=3
        )
        with crossing() as crossed:
            result = _on_duckdb(sim.assignments, sim.events, {"metrics": [REPEATED]})
        _only_per_arm_sums(result)
        assert result.results[0].judged.control.noise is not None
        seen[users] = crossed.rows
    assert seen[4000] <= seen[1000] + 10, seen
    assert max(seen.values()) < 200, seen


# --- (c) the sums built from per-user arrays: parts add up -------------------------------


def _outputs(seed: int, users: int, level: float = 3.0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, 6 * users)
    quality = level + rng.normal(size=user.size) + rng.normal(size=users)[user]
    judge = quality + 0.4 + 0.5 * rng.normal(size=user.size)
    human = np.where(rng.random(user.size) < 0.15, quality, np.nan)
    return user, judge, human


@pytest.mark.parametrize("level", [3.0, 100.0])
def test_two_halves_of_the_users_add_up_to_the_whole(level: float) -> None:
    """JudgedArm of the users split in two (each half with reference ratios of its own)
    merged by ``+``: the whole comparison (PPI++, judge only, human only, λ, audit)
    equal to the arm of all users to 1e-12, whichever half comes first."""
    arms = []
    for seed in (1, 2):
        user, judge, human = _outputs(seed, 2000, level)
        whole = JudgedArm.from_outputs(user, judge, human)
        half = user < 700
        first = JudgedArm.from_outputs(user[half], judge[half], human[half])
        second = JudgedArm.from_outputs(user[~half], judge[~half], human[~half])
        assert first.reference != second.reference
        arms.append((whole, first + second, second + first))
    (c, c1, c2), (t, t1, t2) = arms
    want = to_jsonable(judged_comparison(c, t))
    assert_same_numbers(want, to_jsonable(judged_comparison(c1, t1)))
    assert_same_numbers(want, to_jsonable(judged_comparison(c2, t2)))
    assert (c1.users, c1.judged_users, c1.labelled_users) == (
        c.users,
        c.judged_users,
        c.labelled_users,
    )
    assert sum([c1], JudgedArm.zero()) == c1


def test_the_zero_arm_and_an_empty_variant_are_identities() -> None:
    user, judge, human = _outputs(4, 300)
    arm = JudgedArm.from_outputs(user, judge, human)
    assert JudgedArm.zero() + arm == arm and arm + JudgedArm.zero() == arm
    repeats = Repeats.from_users((1, 2), np.ones(3), np.ones(3), np.ones((3, 3)), np.zeros((3, 3)))
    assert Repeats.zero((1, 2)) + repeats == repeats
    assert noise_split(arm, repeats + repeats).mean_runs == pytest.approx(
        6 / (arm.n_labelled + arm.n_unlabelled)
    )


def test_the_bias_test_equals_a_normal_test_written_out() -> None:
    """The bias difference from the sums: Δ = bias_T − bias_C against N(0, Var_T +
    Var_C), each Var the CR0 sum over users (SciPy's normal for the p-value)."""
    ref = {}
    arms = []
    for seed in (5, 6):
        user, judge, human = _outputs(seed, 800, 50.0)
        if seed == 6:
            judge = judge + 0.1
        arms.append(JudgedArm.from_outputs(user, judge, human))
        lab = ~np.isnan(human)
        keys, index = np.unique(user, return_inverse=True)
        n_u = np.bincount(index, weights=lab, minlength=keys.size)
        gap = np.bincount(index, weights=np.where(lab, judge - human, 0.0), minlength=keys.size)
        bias = gap.sum() / n_u.sum()
        ref[seed] = (bias, float(np.sum((gap - bias * n_u) ** 2)) / n_u.sum() ** 2)
    comp = bias_difference(*arms)
    effect = ref[6][0] - ref[5][0]
    se = math.sqrt(ref[5][1] + ref[6][1])
    assert comp.effect == pytest.approx(effect, rel=1e-12)
    assert comp.se == pytest.approx(se, rel=1e-12)
    assert comp.p_value == pytest.approx(2 * st.norm.sf(abs(effect) / se), rel=1e-9)


@pytest.mark.parametrize("level", [1e4, 1e7])
@pytest.mark.parametrize("part", ["without labels", "only labelled"])
def test_a_part_without_labels_or_without_unlabelled_outputs_merges_without_loss(
    level: float, part: str
) -> None:
    """A part whose users have no labelled outputs (or only labelled ones) has a reference
    ratio of 0; merged first, it must not leave the whole on an unshifted basis, where
    the clustered variance of scores near 10⁷ with a spread of 1 cancels every digit
    (it came out 0, "no variation", while the whole arm's SE is about 0.02)."""
    rng = np.random.default_rng(2)
    users = np.repeat(np.arange(4000), rng.integers(1, 8, 4000))
    quality = level + rng.normal(size=users.size) + rng.normal(size=4000)[users]
    judge = quality + 0.3 + 0.5 * rng.normal(size=users.size)
    labelled = rng.random(users.size) < 0.2
    small = users < 500
    if part == "without labels":
        labelled &= ~small
    else:
        labelled |= small
    human = np.where(labelled, quality, np.nan)
    whole = JudgedArm.from_outputs(users, judge, human)
    first = JudgedArm.from_outputs(users[small], judge[small], human[small])
    rest = JudgedArm.from_outputs(users[~small], judge[~small], human[~small])
    for merged in (first + rest, rest + first):
        got, want = ppi_mean(merged), ppi_mean(whole)
        assert not got.undefined
        assert got.se == pytest.approx(want.se, rel=1e-10)
        assert got.estimate == pytest.approx(want.estimate, rel=1e-12)
        assert got.lam == pytest.approx(want.lam, rel=1e-9)
