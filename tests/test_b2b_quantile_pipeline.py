"""B2B quantiles through abkit.analyze: the same numbers as the statistics on values
joined by hand, contaminated accounts left out, guardrails, the profile, defaults and
every output."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.api import AnalysisResult
from abkit.dev.simulate import simulate
from abkit.result import AccountQuantileDetail
from abkit.stats.account_quantile import AccountValues, account_quantile_test

RESAMPLES = 800
LATENCY = {"type": "quantile", "column": "ai_output.latency_ms", "direction": "decrease"}
CONFIG = {
    "experiment": {"name": "b2b p95", "account": "account_id", "mode": "b2b"},
    "b2b": {"resamples": RESAMPLES, "seed": 3},
    "metrics": [
        {"name": "p95", "q": 0.95, **LATENCY},
        {"name": "p95_guard", "q": 0.95, "guardrail": True, "relative_margin": 0.3, **LATENCY},
    ],
}


@pytest.fixture(scope="module")
def export():
    return simulate(
        mode="b2b",
        users=2_500,
        accounts=14,
        days=5,
        enrol_days=2,
        seed=12,
        latency_lift=0.15,
        latency_user_sd=0.4,
    )


@pytest.fixture(scope="module")
def result(export) -> AnalysisResult:
    return abkit.analyze(export.assignments, CONFIG, events=export.events)


def _by_hand(assignments: pl.DataFrame, events: pl.DataFrame) -> dict[str, AccountValues]:
    """Each arm's latencies with account codes, by a plain join of the raw export."""
    rows = events.filter(pl.col("event") == "ai_output").join(
        assignments.select("user_id", "variant", "account_id"), on="user_id"
    )
    out = {}
    for variant in ("control", "treatment"):
        accounts = sorted(
            assignments.filter(pl.col("variant") == variant)["account_id"].unique().to_list()
        )
        code = {a: i for i, a in enumerate(accounts)}
        arm = rows.filter(pl.col("variant") == variant)
        out[variant] = AccountValues(
            arm["latency_ms"].to_numpy(),
            np.array([code[a] for a in arm["account_id"].to_list()]),
            len(accounts),
        )
    return out


def test_result_equals_the_statistics_on_values_joined_by_hand(export, result):
    arms = _by_hand(export.assignments, export.events)
    direct = account_quantile_test(
        arms["control"], arms["treatment"], 0.95, 0.05, RESAMPLES, RESAMPLES, RESAMPLES, seed=3
    )
    r = next(r for r in result.results if r.metric == "p95")
    assert r.control_value == direct.control and r.treatment_value == direct.treatment
    assert r.p_value == pytest.approx(direct.p_value)
    assert r.ci == pytest.approx(direct.ci)
    assert r.relative_ci == pytest.approx(direct.relative_ci)
    assert isinstance(r.b2b, AccountQuantileDetail) and r.b2b.bootstrap is not None
    assert r.b2b.bootstrap.percentile == pytest.approx(direct.percentile)
    assert r.method.startswith("account-level randomisation test of the quantile difference")
    assert r.decision.p_value == r.p_value
    # the profile: the account randomisation p and the bootstrap interval at each level
    point = next(p for p in r.quantiles if p.q == 0.5)
    median = account_quantile_test(
        arms["control"],
        arms["treatment"],
        0.5,
        0.05,
        RESAMPLES,
        RESAMPLES,
        RESAMPLES,
        seed=3,
        invert=False,
    )
    assert point.p_value == pytest.approx(median.p_value)
    assert point.ci == pytest.approx(median.percentile)
    assert [p.q for p in r.quantiles] == [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]


def test_guardrail_is_the_shifted_randomisation_test(result):
    r = next(r for r in result.results if r.metric == "p95_guard")
    assert r.guardrail is not None
    assert r.guardrail.test.startswith("one-sided account randomisation test, treated values")
    assert r.guardrail.scale == "relative" and r.guardrail.margin == 0.3
    verdict = r.guardrail.verdict
    assert r.decision.outcome == f"guardrail {verdict}"
    # the one-sided bound and the two-sided lift interval tell the same story
    assert (r.guardrail.bound < 0.3) == (verdict == "pass")


def test_contaminated_accounts_are_left_out_of_the_quantile(export):
    assignments = export.assignments
    account = assignments["account_id"][0]
    variant = assignments["variant"][0]
    other = "treatment" if variant == "control" else "control"
    moved = assignments["user_id"].filter(assignments["account_id"] == account)[0]
    mixed = assignments.with_columns(
        pl.when(pl.col("user_id") == moved)
        .then(pl.lit(other))
        .otherwise(pl.col("variant"))
        .alias("variant")
    )
    res = abkit.analyze(mixed, CONFIG, events=export.events)
    clean = mixed.filter(pl.col("account_id") != account)
    arms = _by_hand(clean, export.events)
    r = next(r for r in res.results if r.metric == "p95")
    assert isinstance(r.b2b, AccountQuantileDetail)
    facts = r.b2b.arms
    assert {v: facts[v].events for v in facts} == {v: a.events for v, a in arms.items()}
    assert {v: facts[v].accounts for v in facts} == {v: a.accounts for v, a in arms.items()}
    assert any(w.startswith("CONTAMINATION") for w in res.warnings)


def test_outputs_and_a_saved_result_agree(result, tmp_path):
    d = json.loads(result.to_json())
    back = AnalysisResult.from_dict(d)
    assert back.to_text() == result.to_text()
    text = result.to_text(width=200)
    assert "events, treatment" in text and "randomisation p = " in text
    assert "CR2" not in text.split("B2B cross-checks")[1]
    result.save(tmp_path)
    plots = {p.name.split("_")[0] for p in (tmp_path / "plots").iterdir()}
    assert {"bootstrap", "accounts", "quantiles"} <= plots


def test_default_metrics_in_b2b_mode_guard_p95_latency(export):
    res = abkit.analyze(
        export.assignments,
        {"experiment": {"account": "account_id", "mode": "b2b"}, "b2b": {"resamples": 300}},
        events=export.events,
    )
    p95 = next(r for r in res.results if r.metric == "latency_p95")
    assert p95.guardrail is not None and p95.b2b is not None
    assert "randomisation" in p95.guardrail.test


def test_an_arm_with_one_account_gives_nan_and_says_why(export):
    assignments = export.assignments
    first = assignments.filter(pl.col("variant") == "treatment")["account_id"][0]
    kept = assignments.filter((pl.col("variant") == "control") | (pl.col("account_id") == first))
    res = abkit.analyze(kept, CONFIG, events=export.events)
    r = next(r for r in res.results if r.metric == "p95")
    assert np.isnan(r.p_value) and r.decision.outcome == "not computable"
    assert "fewer than 2 accounts" in (r.decision.reason or "")


def test_too_few_accounts_to_bound_the_interval_say_so():
    """2 + 2 accounts: 6 re-assignments, the smallest attainable p is 1/3, so no
    effect is rejected and both intervals are unbounded, with a warning."""
    from abkit.config import B2BSpec
    from abkit.designs.account_tests import compare_account_quantiles

    rng = np.random.default_rng(1)
    account = np.repeat(np.arange(2), 50)
    control = AccountValues(rng.lognormal(7, 0.5, 100), account, 2)
    treatment = AccountValues(rng.lognormal(7.2, 0.5, 100), account, 2)
    comp, detail = compare_account_quantiles(
        control, treatment, "control", "treatment", B2BSpec(resamples=200), 0.05, 0.95
    )
    assert detail.randomization is not None
    assert detail.randomization.exact and detail.randomization.assignments == 6
    assert comp.ci == (-np.inf, np.inf) and comp.relative_ci == (-1.0, np.inf)  # e^-inf - 1
    assert any("rejects no effect however large" in w for w in comp.warnings)
