"""Capping heavy tails: the capped values against numpy's clip at the pooled quantile,
the tests on them against scipy and statsmodels, refusals, and by Monte Carlo the size
of the capped test and the variance it removes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from scipy import stats as st

import abkit
from abkit.errors import AbkitInputError, ConfigError
from tests.conftest import mc_reps


def _units(n=4_000, seed=1, lift=0.0):
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    pre = rng.lognormal(0.0, 1.5, n)
    spend = pre * rng.lognormal(0.0, 0.5, n) * np.where(treated, 1 + lift, 1.0)
    return pl.DataFrame(
        {
            "user_id": np.arange(n),
            "variant": np.where(treated, "treatment", "control"),
            "spend": spend,
            "pre": pre,
            "outputs": rng.poisson(5, n) + 1,
        }
    )


def _config(cap, **extra):
    return {"metrics": [{"name": "spend", "type": "mean", "column": "spend", "cap": cap}], **extra}


def test_quantile_cap_equals_numpy_clip_and_welch_on_it():
    frame = _units()
    res = abkit.analyze(frame, _config({"quantile": 0.99}))
    spend = frame["spend"].to_numpy()
    threshold = np.quantile(spend, 0.99)  # numpy's default is linear interpolation
    capped = np.minimum(spend, threshold)
    treated = (frame["variant"] == "treatment").to_numpy()
    ref = st.ttest_ind(capped[treated], capped[~treated], equal_var=False)
    r = res.results[0]
    assert r.effect == pytest.approx(capped[treated].mean() - capped[~treated].mean(), rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    above_c, above_t = (
        int((spend[~treated] > threshold).sum()),
        int((spend[treated] > threshold).sum()),
    )
    note = res.metric_notes["spend"][0]
    assert f"control {above_c:,}, treatment {above_t:,}" in note and f"{threshold:.6g}" in note


def test_value_cap_with_cuped_equals_ols_on_the_capped_outcome():
    frame = _units()
    res = abkit.analyze(frame, _config({"value": 20.0}, cuped={"covariates": ["pre"]}))
    y = np.minimum(frame["spend"].to_numpy(), 20.0)
    treated = (frame["variant"] == "treatment").to_numpy().astype(float)
    pre = frame["pre"].to_numpy()
    fit = sm.OLS(y, np.column_stack([np.ones(y.size), treated, pre - pre.mean()])).fit()
    assert res.results[0].effect == pytest.approx(fit.params[1], rel=1e-9)
    assert res.results[0].cuped is not None


def test_ratio_caps_the_numerator():
    frame = _units()
    config = {
        "metrics": [
            {
                "name": "per_output",
                "type": "ratio",
                "numerator": "spend",
                "denominator": "outputs",
                "cap": {"value": 10.0},
            }
        ]
    }
    r = abkit.analyze(frame, config).results[0]
    x = np.minimum(frame["spend"].to_numpy(), 10.0)
    y = frame["outputs"].to_numpy()
    t = (frame["variant"] == "treatment").to_numpy()
    assert r.treatment_value == pytest.approx(x[t].sum() / y[t].sum(), rel=1e-12)


def test_cap_refusals():
    frame = _units().with_columns((pl.col("spend") > 1).cast(pl.Int8).alias("bought"))
    bad = {
        "metrics": [{"name": "b", "type": "proportion", "column": "bought", "cap": {"value": 1.0}}]
    }
    with pytest.raises(ConfigError, match="cannot be capped"):
        abkit.analyze(frame, bad)
    with pytest.raises(ConfigError, match="cap"):
        abkit.analyze(frame, _config({"quantile": 0.3}))
    with pytest.raises(ConfigError, match="one of"):
        abkit.analyze(frame, _config({"quantile": 0.99, "value": 3.0}))
    from abkit.dev.simulate import simulate

    export = simulate(users=500, days=4, enrol_days=2, seed=1)
    seq = {
        "sequential": {"method": "msprt"},
        "metrics": [{"name": "o", "type": "mean", "column": "ai_output", "cap": {"value": 5.0}}],
    }
    with pytest.raises(AbkitInputError, match="not offered with sequential"):
        abkit.analyze(export.assignments, seq, events=export.events)


@pytest.mark.calibration
def test_capped_test_keeps_its_size_and_narrows_the_interval():
    reps = max(mc_reps() // 2, 500)
    rng = np.random.default_rng(7)
    rejected, widths = 0, []
    from abkit.stats import ArmSummary, welch_test

    for _ in range(reps):
        x = rng.lognormal(0.0, 2.0, 800)  # very heavy tail
        t = rng.random(800) < 0.5
        threshold = np.quantile(x, 0.99)
        capped = np.minimum(x, threshold)
        comp = welch_test(ArmSummary.from_values(capped[~t]), ArmSummary.from_values(capped[t]))
        plain = welch_test(ArmSummary.from_values(x[~t]), ArmSummary.from_values(x[t]))
        rejected += comp.p_value < 0.05
        widths.append((comp.ci[1] - comp.ci[0]) / (plain.ci[1] - plain.ci[0]))
    rate = rejected / reps
    ratio = np.median(widths)
    print(f"\ncapped at the pooled 0.99 quantile: A/A {rate:.4f}, CI width ratio {ratio:.2f}")
    assert st.binom.ppf(0.005, reps, 0.05) / reps <= rate <= st.binom.ppf(0.995, reps, 0.05) / reps
    assert np.median(widths) < 0.6
