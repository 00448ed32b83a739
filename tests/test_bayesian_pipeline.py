"""The Bayesian reading through the pipeline: on by a [bayesian] section or
bayesian=True, its own decision beside the frequentist one, in every output; the exact
Beta-Binomial for small proportions, the Bayesian bootstrap in B2B mode, guardrails and
priors learnt from an archive."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.analysis.bayesian import log_ratio_and_se
from abkit.archive import Archive, rows_from_result
from abkit.dev.simulate import simulate
from abkit.stats.bayesian import NormalPrior, bayesian_comparison


def _units(n=3000, lift=0.2, seed=3, arms=("control", "treatment")):
    rng = np.random.default_rng(seed)
    variant = np.array(list(arms) * (n // len(arms)))
    rate = np.where(variant == "control", 0.22, 0.22 * (1 + lift))
    return pl.DataFrame(
        {
            "user_id": range(len(variant)),
            "variant": variant,
            "converted": (rng.random(len(variant)) < rate).astype(int),
            "revenue": rng.gamma(2.0, 5.0, len(variant)),
        }
    )


def test_off_by_default_and_on_by_section_or_flag():
    units = _units()
    assert all(r.bayesian is None for r in abkit.analyze(units).results)
    assert "bayesian" not in json.dumps(abkit.analyze(units).to_dict())
    by_section = abkit.analyze(units, {"bayesian": {"chance": 0.9}}).results
    by_flag = abkit.analyze(units, bayesian=True).results
    assert all(r.bayesian is not None for r in by_section + by_flag)
    assert by_section[0].bayesian.decision.method.startswith("chance to win ≥ 0.9 ")


def test_reading_equals_the_stats_layer_and_never_changes_the_decision():
    units = _units()
    plain = abkit.analyze(units).results
    read = abkit.analyze(units, bayesian=True).results
    for p, r in zip(plain, read, strict=True):
        assert r.decision == p.decision  # the frequentist decision is untouched
        b = r.bayesian
        assert b.decision.basis == "bayesian"
        est, se = log_ratio_and_se(r, 0.05)
        assert (b.data_estimate, b.data_se) == (est, se)
        # the same posterior as the stats layer with that estimate and standard error
        c = r.control_value
        direct = bayesian_comparison(c, c * math.exp(est), 0.0, (se * c * math.exp(est)) ** 2)
        assert b.relative.mean == pytest.approx(direct.relative.mean, rel=1e-9)
        assert b.relative.chance_to_win == pytest.approx(direct.relative.chance_to_win, rel=1e-9)
    converted = read[0].bayesian
    assert converted.decision.outcome == "better"
    assert converted.relative.chance_to_win > 0.95 and converted.relative.risk_ship < 0.0025


def test_every_output_shows_it_and_json_round_trips():
    res = abkit.analyze(_units(), bayesian=True)
    again = abkit.AnalysisResult.from_dict(json.loads(res.to_json()))
    assert again.to_json() == res.to_json()
    assert again.results[0].bayesian == res.results[0].bayesian
    title = "Bayesian reading (its own decision, beside the one above)"
    for text in (res.to_text(), res.to_markdown(), res.to_html()):
        assert title in text
        assert "chance to win" in text and "expected loss if shipped" in text


def test_several_treatments_get_chance_to_be_best():
    res = abkit.analyze(_units(n=4500, arms=("control", "a", "b")), bayesian=True)
    best = [r.bayesian.chance_to_be_best for r in res.results if r.metric == "converted"]
    assert all(b is not None for b in best)
    assert 0 < sum(best) <= 1.0 + 1e-12


def test_small_proportion_uses_the_exact_beta_binomial():
    res = abkit.analyze(_units(n=60), bayesian=True)
    converted = next(r for r in res.results if r.metric == "converted")
    assert converted.bayesian.model.startswith("exact Beta-Binomial")
    assert converted.bayesian.prior.source == "none"


def test_guardrail_reads_as_probability_of_harm():
    config = {
        "metrics": [
            {"name": "revenue", "type": "mean", "column": "revenue"},
            {
                "name": "converted",
                "type": "proportion",
                "column": "converted",
                "guardrail": True,
                "relative_margin": 0.05,
            },
        ],
        "bayesian": {},
    }
    res = abkit.analyze(_units(lift=0.0), config)
    g = next(r for r in res.results if r.metric == "converted").bayesian
    assert g.decision.basis == "bayesian guardrail"
    assert g.harm is not None and g.harm.margin == 0.05
    assert g.decision.outcome == f"guardrail {g.harm.verdict}"


def test_an_absolute_margin_is_read_on_the_absolute_posterior_shown():
    """P(harm > margin) for an absolute margin comes from the posterior of the difference
    that the reading shows (normal: its mean, and its sd from its interval), and the
    guardrail decision's interval is that posterior's."""
    from scipy import stats as st

    config = {
        "metrics": [
            {
                "name": "revenue",
                "type": "mean",
                "column": "revenue",
                "guardrail": True,
                "margin": 0.4,
            }
        ],
        "bayesian": {},
    }
    r = abkit.analyze(_units(lift=0.0), config).results[0].bayesian
    low, high = r.absolute.interval
    sd = (high - low) / (2 * st.norm.ppf(0.975))
    assert r.harm is not None and r.harm.scale == "absolute"
    assert r.harm.probability == pytest.approx(st.norm.cdf(-0.4, r.absolute.mean, sd), rel=1e-9)
    assert r.decision.ci == r.absolute.interval


def test_b2b_uses_the_bayesian_bootstrap():
    export = simulate(mode="b2b", users=3_000, accounts=16, days=6, enrol_days=2, seed=6)
    config = {"experiment": {"account": "account_id", "mode": "b2b"}, "bayesian": {"draws": 2000}}
    res = abkit.analyze(export.assignments, config, events=export.events)
    models = {r.metric: r.bayesian.model for r in res.results}
    summed = [r.metric for r in res.results if getattr(r.b2b, "weighting", None) == "user"]
    assert len(summed) >= 5
    assert all(models[m].startswith("Bayesian bootstrap over accounts") for m in summed)
    # a quantile of pooled events has no account sums to reweight: the normal reading
    assert models["latency_p95"] == "conjugate normal on the log ratio"


def test_priors_learnt_from_an_archive(tmp_path):
    archive = Archive(tmp_path / "archive")
    base = rows_from_result(abkit.analyze(_units()))
    rng = np.random.default_rng(2)
    for i in range(15):
        archive.append(
            base.with_columns(
                experiment=pl.lit(f"past-{i}"),
                log_ratio=pl.lit(float(rng.normal(0.0, 0.02) + rng.normal(0, 0.03))),
                log_ratio_se=pl.lit(0.03),
            )
        )
    res = abkit.analyze(_units(), archive=tmp_path / "archive")
    for r in res.results:
        p = r.bayesian.prior
        assert p.source == "archive" and p.experiments == 15
        assert "fitted to 15 past experiments" in p.note
        # the learnt prior is much tighter than N(0, 0.3²): the lift shrinks more
        default = abkit.analyze(_units(), bayesian=True).results[0].bayesian
        if r.metric == "converted":
            assert r.bayesian.shrinkage > default.shrinkage
            assert abs(r.bayesian.relative.mean) < abs(default.relative.mean)
    assert NormalPrior(res.results[0].bayesian.prior.mean, res.results[0].bayesian.prior.sd)


def test_forest_plot_draws_the_posterior_and_its_decision():
    from abkit.plots.figures import BAYES

    res = abkit.analyze(_units(), bayesian=True)
    fig = res.plot("forest")
    ax = fig.axes[0]
    purple = [line for line in ax.get_lines() if line.get_color() == BAYES]
    assert len(purple) == 2 * len(res.results)  # an interval and a diamond per result
    right = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert all("Bayes: " in t and "P(win)" in t for t in right)


def test_an_unbounded_relative_loss_is_said_as_such():
    """Few units, lower is better and a control rate that may be 0: the relative loss of
    shipping, E[(p_T − p_C)/p_C]⁺, is infinite, so there is no verdict, and the reason
    says why instead of "no posterior"."""
    n = 40
    units = pl.DataFrame(
        {
            "user_id": range(2 * n),
            "variant": ["control", "treatment"] * n,
            "err": [0, 1] * (n // 2) + [0, 0] * (n // 2),
        }
    )
    config = {
        "metrics": [
            {"name": "err", "type": "proportion", "column": "err", "direction": "decrease"}
        ],
        "bayesian": {},
    }
    reading = abkit.analyze(units, config).results[0].bayesian
    assert reading.model.startswith("exact Beta-Binomial")
    assert math.isinf(reading.relative.risk_ship)
    assert reading.decision.outcome == "not computable"
    assert "unbounded" in reading.decision.reason
