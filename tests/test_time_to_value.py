"""Time-to-value: Kaplan-Meier, RMST and their account-level comparison."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

import abkit
from abkit.dev.simulate import simulate
from abkit.result import TimeToValueDetail
from abkit.stats.survival import (
    kaplan_meier,
    logrank,
    median_time,
    rmst,
    rmst_difference_test,
)
from abkit_cli.main import cli
from tests.conftest import write_cli_files


def _data(seed=0, n=40):
    rng = np.random.default_rng(seed)
    t = np.round(rng.exponential(10, n), 1)
    return t, rng.random(n) < 0.7


def test_kaplan_meier_matches_statsmodels():
    t, e = _data()
    km = kaplan_meier(t, e)
    ref = SurvfuncRight(t, e.astype(int))
    np.testing.assert_allclose(km.times, ref.surv_times)
    np.testing.assert_allclose(km.survival, ref.surv_prob, rtol=1e-12)
    assert median_time(km) == pytest.approx(ref.quantile(0.5))


def test_rmst_without_censoring_is_the_mean_time():
    t = np.array([1.0, 2.0, 2.0, 5.0, 7.5])
    assert rmst(kaplan_meier(t, np.ones(5, bool)), tau=10.0) == pytest.approx(t.mean())
    # truncated at tau: mean of min(t, tau)
    assert rmst(kaplan_meier(t, np.ones(5, bool)), tau=3.0) == pytest.approx(
        np.minimum(t, 3.0).mean()
    )


def test_weighted_curves_equal_curves_of_replicated_subjects():
    t, e = _data(seed=2, n=12)
    w = np.random.default_rng(3).integers(0, 4, (5, 12)).astype(float)
    batch = kaplan_meier(t, e, w)
    for row in range(5):
        rep = kaplan_meier(np.repeat(t, w[row].astype(int)), np.repeat(e, w[row].astype(int)))
        assert rmst(rep, 8.0) == pytest.approx(rmst(batch, 8.0)[row], rel=1e-12)


def test_logrank_is_statsmodels_survdiff():
    t, e = _data(seed=4)
    stat, p = logrank(t[:20], e[:20], t[20:], e[20:])
    ref = survdiff(t, e.astype(int), np.r_[np.zeros(20), np.ones(20)])
    assert (stat, p) == pytest.approx(ref)


def test_rmst_permutation_p_value_closed_form():
    # 3 vs 3 accounts, all treated accounts reach value before all control ones:
    # only this split and its mirror are as extreme -> p = 2 / C(6, 3) = 0.1
    res = rmst_difference_test(
        np.array([8.0, 9.0, 10.0]),
        np.ones(3, bool),
        np.array([1.0, 2.0, 3.0]),
        np.ones(3, bool),
        tau=12.0,
        resamples=2_000,
    )
    assert res.exact and res.assignments == 20
    assert res.p_value == pytest.approx(0.1)
    assert res.effect == pytest.approx(2.0 - 9.0)


def test_time_to_value_in_b2b_mode_end_to_end(tmp_path):
    e = simulate(mode="b2b", users=3_000, accounts=16, days=8, enrol_days=2, seed=9)
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 1_000},
        "metrics": [{"name": "ttv", "type": "time_to_value", "event": "error"}],
    }
    r = abkit.analyze(e.assignments, config, events=e.events).results[0]
    assert isinstance(r.b2b, TimeToValueDetail) and r.b2b.time_to_value is not None
    block = r.b2b.time_to_value
    assert r.direction == "decrease"
    assert set(block.kaplan_meier) == {"control", "treatment"}
    assert sum(a.accounts for a in r.b2b.arms.values()) == 16
    assert r.effect == pytest.approx(r.treatment_value - r.control_value)
    # B2C mode refuses the account-level metric with an explanation
    files = write_cli_files(
        tmp_path, e, '[[metrics]]\nname = "ttv"\ntype = "time_to_value"\nevent = "error"\n'
    )
    out = CliRunner().invoke(cli, ["analyze", *files])
    assert out.exit_code == 2 and "account-level metric" in out.output
