"""Per-output quality and cost: means over the events that carry a value (judge score per
judged output, latency, tokens and cost per output), cost priced from tokens by
``[cost]``, sums of references (thumbs up per rated output), ``active`` (cost per
active user) and the built-in names that pick them up without a config."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.stats as st
import statsmodels.api as sm

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError, ConfigError
from tests.conftest import mc_reps

ACTIVE = "active"  # 1 for a unit with any valid event
PRICES = {"input_per_1k": 0.003, "output_per_1k": 0.015}


@pytest.fixture(scope="module")
def export():
    return simulate(
        users=3_000,
        days=8,
        enrol_days=3,
        seed=31,
        latency_user_sd=0.5,
        judge_rate=0.2,
        judge_lift=0.1,
        thumbs_rate=0.1,
        tokens_lift=0.2,
    )


def _result(res, name: str):
    (row,) = [r for r in res.results if r.metric == name]
    return row


def _outputs(export, event: str = "ai_output") -> pl.DataFrame:
    """The events of one name with their unit's variant (every simulated event is
    after its unit's assignment and valid)."""
    return export.events.filter(pl.col("event") == event).join(export.assignments, on="user_id")


def test_event_mean_equals_the_cluster_robust_mean_per_event(export):
    """Latency per output with 8 % of latencies missing: the mean over the outputs that
    have one, its se the cluster-robust (by user) variance of statsmodels."""
    rng = np.random.default_rng(3)
    events = export.events.with_columns(
        pl.when(pl.lit(rng.random(export.events.height) < 0.08))
        .then(None)
        .otherwise(pl.col("latency_ms"))
        .alias("latency_ms")
    )
    metric = {"name": "lat", "type": "event_mean", "column": "ai_output.latency_ms"}
    res = abkit.analyze(export.assignments, {"metrics": [metric]}, events=events)
    got = _result(res, "lat")
    rows = events.filter(pl.col("event") == "ai_output").join(export.assignments, on="user_id")
    means = rows.group_by("variant").agg(pl.col("latency_ms").mean())
    mean = dict(zip(means["variant"], means["latency_ms"], strict=True))
    assert got.control_value == pytest.approx(mean["control"], rel=1e-12)
    assert got.treatment_value == pytest.approx(mean["treatment"], rel=1e-12)
    units = export.assignments.group_by("variant").len()
    assigned = dict(zip(units["variant"], units["len"], strict=True))
    var = 0.0
    for variant in ("control", "treatment"):
        arm = rows.filter((pl.col("variant") == variant) & pl.col("latency_ms").is_not_null())
        fit = sm.OLS(arm["latency_ms"].to_numpy(), np.ones(arm.height)).fit(
            cov_type="cluster", cov_kwds={"groups": arm["user_id"].to_numpy()}
        )
        # statsmodels' small-sample factor G/(G - 1) counts users with a latency; the
        # delta method's n/(n - 1) all assigned users (zeros in both sums)
        g, n = arm["user_id"].n_unique(), assigned[variant]
        var += float(fit.bse[0] ** 2) / (g / (g - 1)) * (n / (n - 1))
    se = (got.ci[1] - got.ci[0]) / (2 * st.norm.ppf(0.975))
    assert se == pytest.approx(math.sqrt(var), rel=1e-9)
    z = (mean["treatment"] - mean["control"]) / math.sqrt(var)
    assert got.p_value == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-9)
    missing = events.filter(
        (pl.col("event") == "ai_output") & pl.col("latency_ms").is_null()
    ).height
    assert missing > 0 and got.metric_type == "event_mean"


def test_judge_score_counts_judged_outputs_only(export):
    """The denominator is judged outputs (20 % of outputs), not all outputs."""
    metric = {"name": "judge", "type": "event_mean", "column": "judge_score.value"}
    res = abkit.analyze(export.assignments, {"metrics": [metric]}, events=export.events)
    got = _result(res, "judge")
    judged = _outputs(export, "judge_score").group_by("variant").agg(pl.col("value").mean())
    rate = dict(zip(judged["variant"], judged["value"], strict=True))
    assert got.control_value == pytest.approx(rate["control"], rel=1e-12)
    assert got.treatment_value == pytest.approx(rate["treatment"], rel=1e-12)
    # the true lift of the pass probability is +10 % (Beta(6, 4) never reaches 1/1.1 often)
    assert got.relative_ci[0] < 0.1 < got.relative_ci[1]


def test_cost_is_priced_from_tokens_and_per_active_user(export):
    config = {
        "cost": PRICES,
        "metrics": [
            {"name": "cpo", "type": "event_mean", "column": "ai_output.cost"},
            {
                "name": "cpu",
                "type": "ratio",
                "numerator": "ai_output.cost",
                "denominator": ACTIVE,
            },
        ],
    }
    res = abkit.analyze(export.assignments, config, events=export.events)
    priced = _outputs(export).with_columns(
        (pl.col("input_tokens") * 0.003 / 1000 + pl.col("output_tokens") * 0.015 / 1000).alias(
            "usd"
        )
    )
    per_output = priced.group_by("variant").agg(pl.col("usd").mean())
    active = (
        export.events.join(export.assignments, on="user_id")
        .group_by("variant")
        .agg(pl.col("user_id").n_unique().alias("active"))
    )
    total = priced.group_by("variant").agg(pl.col("usd").sum()).join(active, on="variant")
    for variant, value in zip(per_output["variant"], per_output["usd"], strict=True):
        got = _result(res, "cpo")
        assert (got.control_value if variant == "control" else got.treatment_value) == (
            pytest.approx(value, rel=1e-9)
        )
    for row in total.iter_rows(named=True):
        got = _result(res, "cpu")
        value = got.control_value if row["variant"] == "control" else got.treatment_value
        assert value == pytest.approx(row["usd"] / row["active"], rel=1e-9)
    # output tokens +20 % in treatment: cost per output rises by more than 0
    assert _result(res, "cpo").relative_ci[0] > 0


def test_thumbs_up_rate_adds_references(export):
    metric = {
        "name": "thumbs",
        "type": "ratio",
        "numerator": "thumbs_up",
        "denominator": "thumbs_up + thumbs_down",
    }
    res = abkit.analyze(export.assignments, {"metrics": [metric]}, events=export.events)
    got = _result(res, "thumbs")
    rated = (
        export.events.filter(pl.col("event").is_in(["thumbs_up", "thumbs_down"]))
        .join(export.assignments, on="user_id")
        .group_by("variant")
        .agg((pl.col("event") == "thumbs_up").mean())
    )
    rate = dict(zip(rated["variant"], rated["event"], strict=True))
    assert got.control_value == pytest.approx(rate["control"], rel=1e-12)
    assert got.treatment_value == pytest.approx(rate["treatment"], rel=1e-12)


def test_the_default_set_picks_up_quality_speed_and_cost(export):
    res = abkit.analyze(export.assignments, {"cost": PRICES}, events=export.events)
    names = {r.metric for r in res.results}
    assert {
        "judge_score",
        "thumbs_up_rate",
        "latency_p95",
        "latency_mean",
        "ttft_mean",
        "input_tokens_per_output",
        "output_tokens_per_output",
        "cost_per_output",
        "cost_per_active_user",
    } <= names
    guards = {r.metric for r in res.results if r.guardrail is not None}
    assert {"latency_p95", "latency_mean", "ttft_mean", "cost_per_output"} <= guards
    # output tokens +20 %: the tokens and cost per output guardrail reads worse / fails
    assert _result(res, "output_tokens_per_output").decision.outcome == "worse"
    assert _result(res, "cost_per_output").decision.outcome == "guardrail fail"


def test_without_prices_the_default_set_has_no_cost(export):
    res = abkit.analyze(export.assignments, events=export.events)
    assert not {"cost_per_output", "cost_per_active_user"} & {r.metric for r in res.results}


def test_sequential_defaults_monitor_the_p95_latency_guardrail(export):
    res = abkit.analyze(export.assignments, events=export.events, sequential="msprt")
    p95 = _result(res, "latency_p95")
    assert p95.sequential is not None and p95.guardrail is not None
    assert p95.decision.basis == "sequential non-inferiority"
    assert "latency_mean" in {r.metric for r in res.results}
    assert not any("'latency_p95' skipped" in note for note in res.notes)


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ({"type": "event_mean", "column": "ai_output"}, "column = '<event>.<column>'"),
        ({"type": "event_mean", "column": ".value"}, "column = '<event>.<column>'"),
        (
            {"type": "ratio", "numerator": "share", "denominator": "sessions + ai_output"},
            "adds references that are not events or event columns",
        ),
    ],
)
def test_badly_configured_references_are_refused(metric, message):
    with pytest.raises(ConfigError, match=message):
        abkit.analyze(pl.DataFrame({"user_id": [1]}), {"metrics": [{"name": "m", **metric}]})


def test_a_missing_or_text_column_names_the_metric(export):
    missing = {"name": "m", "type": "event_mean", "column": "ai_output.nope"}
    with pytest.raises(AbkitInputError, match=r"nope.*read by metric 'm'"):
        abkit.analyze(export.assignments, {"metrics": [missing]}, events=export.events)
    text = export.events.with_columns(pl.col("ttft_ms").cast(pl.String))
    ttft = {"name": "t", "type": "event_mean", "column": "ai_output.ttft_ms"}
    with pytest.raises(AbkitInputError, match=r"'ttft_ms' must be numeric.*metric 't'"):
        abkit.analyze(export.assignments, {"metrics": [ttft]}, events=text)


def test_prices_and_a_cost_column_of_the_same_name_are_refused(export):
    events = export.events.with_columns(pl.lit(0.01).alias("cost"))
    metric = {"name": "c", "type": "event_mean", "column": "ai_output.cost"}
    with pytest.raises(AbkitInputError, match=r"\[cost\] column"):
        abkit.analyze(export.assignments, {"cost": PRICES, "metrics": [metric]}, events=events)
    # without prices the table's own cost column is read
    res = abkit.analyze(export.assignments, {"metrics": [metric]}, events=events)
    assert _result(res, "c").control_value == pytest.approx(0.01)


def test_simulated_judging_samples_the_stated_share_of_outputs(export):
    outputs = _outputs(export).height
    judged = _outputs(export, "judge_score").height
    lo, hi = st.binom.ppf([0.0005, 0.9995], outputs, 0.2)
    assert lo <= judged <= hi
    assert set(_outputs(export, "judge_score")["value"].unique()) == {0.0, 1.0}


def _per_unit(events: pl.DataFrame, units: pl.DataFrame, event: str, column: str):
    """Per assigned unit: Σ values and the number of events with a value (zeros for
    units without any)."""
    sums = (
        events.filter((pl.col("event") == event) & pl.col(column).is_not_null())
        .group_by("user_id")
        .agg(pl.col(column).sum().alias("x"), pl.len().alias("y"))
    )
    table = units.join(sums, on="user_id", how="left").fill_null(0)
    return table["x"].to_numpy().astype(float), table["y"].to_numpy().astype(float)


@pytest.mark.calibration
@pytest.mark.parametrize(
    ("event", "column"), [("judge_score", "value"), ("ai_output", "latency_ms")]
)
def test_aa_size_and_coverage_of_event_means(event, column):
    """Random re-assignments of one simulated cohort (8,000 users): the size of the
    delta-method test of a per-event mean (judged outputs' pass rate, sampled at 20 %;
    latency with a per-user scale), its coverage of a known +10 % shift of the treated
    units' values, and the size of a naive test that treats events as independent."""
    from abkit.stats import ArmSummary, delta_ratio_test

    sim = simulate(users=8_000, days=8, enrol_days=3, seed=33, judge_rate=0.2, latency_user_sd=0.6)
    x, y = _per_unit(sim.events, sim.assignments, event, column)
    reps, rng = mc_reps(1_000), np.random.default_rng(34)

    values = sim.events.filter((pl.col("event") == event) & pl.col(column).is_not_null())
    values = values.join(sim.assignments.with_row_index("unit"), on="user_id")
    per_event, unit_of = values[column].to_numpy(), values["unit"].to_numpy()
    rejected = covered = naive = 0
    for _ in range(reps):
        treated = rng.random(x.size) < 0.5
        aa = delta_ratio_test(
            ArmSummary.from_values(x[~treated], y[~treated]),
            ArmSummary.from_values(x[treated], y[treated]),
        )
        rejected += aa.p_value < 0.05
        shifted = np.where(treated, 1.1 * x, x)
        ab = delta_ratio_test(
            ArmSummary.from_values(shifted[~treated], y[~treated]),
            ArmSummary.from_values(shifted[treated], y[treated]),
        )
        covered += ab.relative_ci[0] <= 0.1 <= ab.relative_ci[1]
        on = treated[unit_of]
        naive += st.ttest_ind(per_event[on], per_event[~on], equal_var=False).pvalue < 0.05
    print(
        f"\n{event}.{column}: reps {reps}, A/A size {rejected / reps:.4f}, coverage "
        f"{covered / reps:.4f}, naive i.i.d. size {naive / reps:.4f}"
    )
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.05) / reps
    assert lo <= rejected / reps <= hi
    assert naive / reps > hi  # events of one user are correlated: the naive test is not
    lo, hi = st.binom.ppf([0.005, 0.995], reps, 0.95) / reps
    assert lo <= covered / reps <= hi


def test_daily_looks_end_at_the_fixed_horizon_moments(export):
    """Event means (a count of events with a value as denominator), priced cost, sums
    of references and ``active`` (counted once, at the unit's first look) accumulate
    over daily looks to the fixed-horizon per-arm moments."""
    from abkit.designs import Users
    from abkit.inputs.prepare import prepare
    from abkit.io.exclusions import Ledger

    metrics = [
        {"name": "judge", "type": "event_mean", "column": "judge_score.value"},
        {"name": "cpu", "type": "ratio", "numerator": "ai_output.cost", "denominator": ACTIVE},
        {
            "name": "thumbs",
            "type": "ratio",
            "numerator": "thumbs_up",
            "denominator": "thumbs_up + thumbs_down",
        },
    ]
    config = {"metrics": metrics, "sequential": {"method": "cs"}, "cost": PRICES}
    spec = abkit.load_config(config)
    prepared = prepare(export.assignments, spec, Ledger(), Users(), events=export.events)
    for metric in metrics:
        last = prepared.looks[metric["name"]].arms[-1]
        for variant, arm in prepared.arms[metric["name"]].items():
            got = last[variant]
            assert (got.n, got.mean, got.var, got.den_mean, got.den_var, got.cov) == (
                pytest.approx((arm.n, arm.mean, arm.var, arm.den_mean, arm.den_var, arm.cov))
            ), (metric["name"], variant)


def test_prices_without_their_token_column_skip_the_cost_defaults_with_a_note(export):
    events = export.events.drop("input_tokens")
    res = abkit.analyze(export.assignments, {"cost": PRICES}, events=events)
    assert not {"cost_per_output", "cost_per_active_user"} & {r.metric for r in res.results}
    notes = res.notes
    assert any("'cost_per_output' skipped: no 'input_tokens' column" in n for n in notes)
    # with the output price alone, the output tokens suffice
    res = abkit.analyze(export.assignments, {"cost": {"output_per_1k": 0.015}}, events=events)
    assert "cost_per_output" in {r.metric for r in res.results}
