"""CUPED under daily looks: each look's adjusted estimate equals a fixed-horizon
analysis of the export cut at that look, and the always-valid methods keep their
false-positive rate with the adjusted estimates (Monte Carlo)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats as st

import abkit
from abkit.dev.calibration import LookPaths, evaluate
from abkit.dev.simulate import simulate
from abkit.stats.cuped import Moments, cuped_test
from tests.conftest import mc_reps

METRICS = [
    {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
    {"name": "d1", "type": "retention", "day": 1},
    {"name": "outputs", "type": "mean", "column": "ai_output"},
    {"name": "shared", "type": "proportion", "column": "share"},
]


@pytest.fixture(scope="module")
def export():
    return simulate(users=5_000, days=9, enrol_days=4, seed=5, pre_days=7, share_lift=0.1)


def _analyze(export, method=None, end=None):
    config = {"metrics": METRICS, "cuped": {"pre_days": 7}}
    if method:
        config["sequential"] = {"method": method}
    if end is not None:
        config["input"] = {"export_end": end.isoformat()}
        assignments = export.assignments.filter(export.assignments["assigned_at"] <= end)
    else:
        assignments = export.assignments
    return abkit.analyze(assignments, config, events=export.events)


def test_every_look_equals_the_fixed_analysis_of_the_export_cut_there(export):
    daily = _analyze(export, "msprt")
    for look in (2, 5, -1):
        labels = {r.metric: r.sequential.looks[look] for r in daily.results}
        end = dt.datetime.fromisoformat(next(iter(labels.values())).at)
        cut = _analyze(export, end=end)
        for r in cut.results:
            assert r.cuped is not None, r.metric
            got = labels[r.metric]
            assert got.estimate == pytest.approx(r.effect, rel=1e-9, abs=1e-15), (look, r.metric)
    for r in daily.results:
        assert r.cuped is not None and r.method.startswith("CUPED-adjusted")


def _cuped_paths(reps, looks, per_look, rho, effect, seed):
    """Per replication and look: the CUPED estimate and variance from cumulative sums of
    (y, x) with corr(y, x) = rho, unit variances, treatment mean shifted by ``effect``."""
    rng = np.random.default_rng(seed)
    est = np.empty((reps, looks))
    var = np.empty((reps, looks))
    n = per_look * np.arange(1, looks + 1)
    for r in range(reps):
        sums = []
        for shift in (0.0, effect):
            x = rng.normal(size=(looks, per_look))
            y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(looks, per_look)) + shift
            s1 = np.cumsum(np.stack([y.sum(1), x.sum(1)], 1), 0)
            s2 = np.cumsum(np.einsum("lui,luj->lij", *(np.stack([y, x], 2),) * 2), 0)
            sums.append((s1, s2))
        for k in range(looks):
            arms = []
            for s1, s2 in sums:
                mean = s1[k] / n[k]
                arms.append(
                    Moments(int(n[k]), mean, (s2[k] - n[k] * np.outer(mean, mean)) / (n[k] - 1))
                )
            comp, _ = cuped_test(*arms, (0,), [(1,)], ["x"], 0.05)
            est[r, k], var[r, k] = comp.effect, comp.se**2
    return LookPaths(est, var, np.broadcast_to(2.0 * n, est.shape), est * 0 + 1, effect)


@pytest.mark.calibration
@pytest.mark.parametrize("method", ["msprt", "cs", "gst_obf"])
def test_always_valid_methods_keep_their_size_with_cuped_estimates(method):
    reps = max(mc_reps() // 4, 300)
    aa = _cuped_paths(reps, looks=20, per_look=100, rho=0.7, effect=0.0, seed=7)
    out = evaluate(aa, method, 0.05)
    upper = st.binom.ppf(0.995, reps, 0.05) / reps
    print(f"\nCUPED {method}, 20 looks, {reps} reps: P(ever reject) {out.rejected.mean():.4f}")
    assert out.rejected.mean() <= upper
    effect = _cuped_paths(reps, looks=20, per_look=100, rho=0.7, effect=0.1, seed=8)
    covered = evaluate(effect, method, 0.05).covered.mean()
    assert covered >= st.binom.ppf(0.005, reps, 0.95) / reps
