"""The surrogate index (abkit.stats.surrogate): hand computations and statsmodels
references on fixed data, its bootstrap and validation, and the per-unit signals built
from a simulated export (abkit.inputs.surrogate_units) against the simulator's own and
against abkit's retention metrics."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.discrete.discrete_model import Logit

import abkit
from abkit.dev.simulate import _generate, simulate
from abkit.errors import AbkitInputError
from abkit.inputs.surrogate_units import SIGNALS, forecast_from_units, week_one_units
from abkit.json_codec import from_jsonable, to_jsonable
from abkit.stats.surrogate import (
    SurrogateForecast,
    fit_logistic,
    refit_logistic,
    surrogate_index,
)


def _cells(n_c1: int, n_t1: int, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """One binary signal: n control units (n_c1 with it), n treated (n_t1 with it)."""
    s = np.r_[np.zeros(n - n_c1), np.ones(n_c1), np.zeros(n - n_t1), np.ones(n_t1)]
    return s, np.arange(2 * n) >= n


def test_saturated_model_predicts_cell_means_and_the_index_is_their_difference():
    """One binary surrogate: the logistic MLE is saturated, so ĥ(0), ĥ(1) are the
    training units' D30 rates in the two cells and τ̂ = (ĥ(1) − ĥ(0))·(q_T − q_C), q the
    share of units with the signal (Athey et al. 2019, the index with a discrete S)."""
    s, treated = _cells(n_c1=45, n_t1=62)
    rng = np.random.default_rng(3)
    y = np.full(s.size, np.nan)
    control = ~treated
    y[control] = (rng.random(control.sum()) < np.where(s[control] == 1, 0.5, 0.15)) * 1.0
    h0, h1 = y[control & (s == 0)].mean(), y[control & (s == 1)].mean()
    res = surrogate_index(s, treated, y, resamples=30)
    assert res.control_value == pytest.approx(h1 * 0.45 + h0 * 0.55, abs=1e-10)
    assert res.treatment_value == pytest.approx(h1 * 0.62 + h0 * 0.38, abs=1e-10)
    assert res.estimate == pytest.approx((h1 - h0) * (0.62 - 0.45), abs=1e-10)
    assert res.relative == pytest.approx(res.treatment_value / res.control_value - 1, abs=1e-12)
    intercept, slope = res.fit.coefficients
    assert intercept == pytest.approx(np.log(h0 / (1 - h0)), abs=1e-8)
    assert slope == pytest.approx(np.log(h1 / (1 - h1)) - np.log(h0 / (1 - h0)), abs=1e-8)
    assert res.fit.training_units == 100 and res.fit.training_rate == pytest.approx(y[:100].mean())


def _signals_data(n: int = 3_000, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    x = np.column_stack(
        [
            rng.random(n) < 0.3 + 0.05 * treated,
            rng.poisson(2.0 + 0.3 * treated, n),
            rng.beta(1, 10, n),
        ]
    ).astype(float)
    eta = -3.0 + 0.8 * x[:, 0] + 0.4 * x[:, 1] + 3.0 * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))) * 1.0
    y[rng.random(n) < 0.6] = np.nan  # immature units
    return x, treated, y


def test_index_equals_statsmodels_logit_fit_and_predictions():
    """Several signals: the model is statsmodels' Logit on [1, signals] fitted to the
    control's matured units, and τ̂ the difference of the arms' mean predictions."""
    x, treated, y = _signals_data()
    train = ~treated & ~np.isnan(y)
    design = np.column_stack([np.ones(len(y)), x])
    ref = Logit(y[train], design[train]).fit(disp=0)
    p = ref.predict(design)
    res = surrogate_index(x, treated, y, names=["d1", "days", "share"], resamples=30)
    assert res.estimate == pytest.approx(p[treated].mean() - p[~treated].mean(), abs=1e-9)
    np.testing.assert_allclose(res.fit.coefficients, ref.params, atol=1e-8)
    assert res.fit.signals == ("d1", "days", "share")
    assert res.control_n + res.treatment_n == len(y) and res.without_signals == 0


def test_numpy_refit_is_statsmodels_maximum():
    """The bootstrap replicates' Newton iterations reach statsmodels' maximum."""
    x, _, y = _signals_data()
    keep = ~np.isnan(y)
    full = fit_logistic(x[keep], y[keep])
    rows = np.random.default_rng(1).choice(np.flatnonzero(keep), keep.sum())
    ours = refit_logistic(x[rows], y[rows], full)
    theirs = fit_logistic(x[rows], y[rows])
    np.testing.assert_allclose(ours.logit(x), theirs.logit(x), atol=1e-9)


def test_separate_training_table_is_the_model_and_the_controls_are_not():
    x, treated, y = _signals_data()
    tx, _, ty = _signals_data(seed=9)
    keep = ~np.isnan(ty)
    design = np.column_stack([np.ones(keep.sum()), tx[keep]])
    ref = Logit(ty[keep], design).fit(disp=0)
    p = ref.predict(np.column_stack([np.ones(len(y)), x]))
    res = surrogate_index(x, treated, y, training=(tx, ty), resamples=30)
    assert res.training == "separate" and res.fit.training_units == keep.sum()
    assert res.estimate == pytest.approx(p[treated].mean() - p[~treated].mean(), abs=1e-9)


def test_units_without_a_complete_first_week_are_left_out_and_counted():
    x, treated, y = _signals_data()
    x[:7, 1] = np.nan
    res = surrogate_index(x, treated, y, resamples=30)
    whole = surrogate_index(x[7:], treated[7:], y[7:], resamples=30)
    assert res.without_signals == 7 and res.estimate == pytest.approx(whole.estimate, abs=1e-12)


def test_same_seed_same_forecast_and_json_round_trip():
    x, treated, y = _signals_data()
    a, b = (surrogate_index(x, treated, y, resamples=40, seed=4) for _ in range(2))
    assert a == b
    assert surrogate_index(x, treated, y, resamples=40, seed=5).se != a.se
    assert from_jsonable(SurrogateForecast, to_jsonable(a)) == a


def test_interval_widens_with_the_models_uncertainty():
    """Fewer training units: the same experiment, a wider interval, a larger model share."""
    x, treated, y = _signals_data(n=6_000)
    few = y.copy()
    few[np.random.default_rng(2).random(y.size) < 0.8] = np.nan
    wide, narrow = (surrogate_index(x, treated, v, resamples=100) for v in (few, y))
    assert wide.se > narrow.se and wide.model_share > narrow.model_share
    assert 0 < narrow.model_share < 1
    assert wide.fit.training_units < narrow.fit.training_units


def test_validation_sets_surrogate_and_realised_effects_of_the_matured_units_side_by_side():
    x, treated, y = _signals_data()
    res = surrogate_index(x, treated, y, resamples=60)
    v = res.validation
    assert v is not None
    matured = ~np.isnan(y)
    yc, yt = y[matured & ~treated], y[matured & treated]
    assert (v.control_n, v.treatment_n) == (yc.size, yt.size)
    assert v.realised_effect == pytest.approx(yt.mean() - yc.mean(), abs=1e-12)
    assert v.gap == pytest.approx(v.realised_effect - v.surrogate_effect, abs=1e-12)
    se = np.sqrt(yc.var() / yc.size + yt.var() / yt.size)
    assert v.realised_ci[1] - v.realised_ci[0] == pytest.approx(2 * 1.959963984540054 * se)
    assert v.disagree == (v.p_value < 0.05)
    # the treated arm's D30 moved directly (not through the signals): flagged
    shifted = y.copy()
    hit = matured & treated & (y == 0)
    shifted[np.flatnonzero(hit)[: hit.sum() // 3]] = 1.0
    moved = surrogate_index(x, treated, shifted, resamples=60).validation
    assert moved is not None and moved.disagree and moved.gap > 0


def test_no_validation_without_matured_treated_units():
    x, treated, y = _signals_data()
    y[treated] = np.nan
    assert surrogate_index(x, treated, y, resamples=30).validation is None


def test_bad_inputs_are_user_errors():
    x, treated, y = _signals_data()
    with pytest.raises(AbkitInputError, match="boolean"):
        surrogate_index(x, treated * 1, y)
    with pytest.raises(AbkitInputError, match="0, 1 or NaN"):
        surrogate_index(x, treated, np.where(np.isnan(y), np.nan, 2.0))
    with pytest.raises(AbkitInputError, match="one row of signals"):
        surrogate_index(x[:-1], treated, y)
    few = np.full(y.size, np.nan)
    few[:30] = y[:30]
    with pytest.raises(AbkitInputError, match="training units retained"):
        surrogate_index(x, treated, few)
    with pytest.raises(AbkitInputError, match="resamples"):
        surrogate_index(x, treated, y, resamples=5)


@pytest.fixture(scope="module")
def export():
    return simulate(users=3_000, days=35, enrol_days=6, d30_from_week_one=True, seed=7)


def test_week_one_units_are_the_simulators_own_signals(export):
    units = week_one_units(export.assignments, export.events)
    generated = _generate(export.spec)
    assert generated.week_one is not None
    full = units.filter(pl.col("d1").is_not_null())
    assert full.height == 3_000  # every unit's first week is complete by day 35
    users = full["user_id"].to_numpy()
    for name in SIGNALS:
        np.testing.assert_array_equal(
            full[name].to_numpy(), getattr(generated.week_one, name)[users], err_msg=name
        )


def test_week_one_units_agree_with_abkits_retention_metrics(export):
    """D1, D7 and D30 of the eligible units, per arm, are abkit analyze's retention."""
    units = week_one_units(export.assignments, export.events)
    result = abkit.analyze(export.assignments, None, events=export.events)
    column = {"d1_retention": "d1", "d7_retention": "d7", "d30_retention": "d30"}
    checked = 0
    for row in result.results:
        if row.metric in column:
            checked += 1
            values = units.group_by("variant").agg(pl.col(column[row.metric]).mean())
            mean = dict(values.iter_rows())
            assert mean["control"] == pytest.approx(row.control_value, abs=1e-12)
            assert mean["treatment"] == pytest.approx(row.treatment_value, abs=1e-12)
            eligible = units[column[row.metric]].is_not_null().sum()
            assert row.control_n + row.treatment_n == eligible
    assert checked == 3


def test_forecast_from_units_and_a_separate_training_export(export):
    units = week_one_units(export.assignments, export.events)
    res = forecast_from_units(units, "control", "treatment", resamples=40)
    assert res.fit.signals == ("d1", "d7", "active_days_7d", "share_rate", "log(1 + session_depth)")
    assert res.validation is not None and res.training == "control"
    past = simulate(users=3_000, days=40, enrol_days=6, d30_from_week_one=True, seed=8)
    training = week_one_units(past.assignments, past.events)
    other = forecast_from_units(units, "control", "treatment", training=training, resamples=40)
    assert other.training == "separate" and other.fit.training_units == 3_000
    with pytest.raises(AbkitInputError, match="no column 'd30'"):
        forecast_from_units(units.drop("d30"), "control", "treatment")


def test_delta_method_variance_is_the_closed_form_of_a_saturated_model():
    """One binary signal and a separate training table: ĥ(0) = r₀, ĥ(1) = r₁ are the
    table's cell rates (m₀, m₁ units) and τ̂ = (r₁ − r₀)(q_T − q_C), so to first order

        Var τ̂ = (r₁ − r₀)²·[q_T(1 − q_T)/n_T + q_C(1 − q_C)/n_C]
               + (q_T − q_C)²·[r₁(1 − r₁)/m₁ + r₀(1 − r₀)/m₀],

    the experiment's sampling of q and the model's of r, independent."""
    s, treated = _cells(n_c1=45, n_t1=62)
    y = np.full(s.size, np.nan)
    ts = np.r_[np.zeros(300), np.ones(200)]
    ty = np.r_[np.ones(45), np.zeros(255), np.ones(100), np.zeros(100)]
    r0, r1, q_c, q_t = 45 / 300, 100 / 200, 0.45, 0.62
    res = surrogate_index(s, treated, y, training=(ts, ty), interval="delta")
    variance = (r1 - r0) ** 2 * (q_t * (1 - q_t) / 100 + q_c * (1 - q_c) / 100) + (
        q_t - q_c
    ) ** 2 * (r1 * (1 - r1) / 200 + r0 * (1 - r0) / 300)
    assert res.estimate == pytest.approx((r1 - r0) * (q_t - q_c), abs=1e-10)
    assert res.se == pytest.approx(np.sqrt(variance), rel=1e-9)
    assert res.resamples == 0 and "delta method" in res.method


@pytest.mark.parametrize("separate", [False, True])
def test_delta_method_and_bootstrap_agree(separate):
    """The delta method is the bootstrap's first-order limit: on 3,000 units their
    standard errors agree within the bootstrap's own error (2,000 replicates: ±1.6 %)
    plus the second-order terms, for the forecast, the log ratio and the validation's
    gap, with the training units the control's own (their two terms covary) or a
    separate table."""
    x, treated, y = _signals_data()
    training = None
    if separate:
        tx, _, ty = _signals_data(seed=9)
        keep = ~np.isnan(ty)
        training = (tx[keep], ty[keep])
    boot = surrogate_index(x, treated, y, training=training, resamples=2_000, seed=2)
    delta = surrogate_index(x, treated, y, training=training, interval="delta")
    assert delta.estimate == boot.estimate
    assert delta.se == pytest.approx(boot.se, rel=0.08)
    width = (delta.relative_ci[1] - delta.relative_ci[0], boot.relative_ci[1] - boot.relative_ci[0])
    assert width[0] == pytest.approx(width[1], rel=0.08)
    gaps = [r.validation for r in (delta, boot)]
    assert gaps[0] is not None and gaps[1] is not None
    assert gaps[0].gap_ci[1] - gaps[0].gap_ci[0] == pytest.approx(
        gaps[1].gap_ci[1] - gaps[1].gap_ci[0], rel=0.08
    )
