"""A/A with 30 daily looks: each always-valid method keeps P(ever reject) at or below
alpha, and its intervals cover the true effect at every look; naive daily testing
does not.  CI runs ABKIT_MC_REPS (default 2,000) replications; docs use 20,000."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from abkit.dev.calibration import evaluate, simulate_looks
from tests.conftest import mc_reps

ALPHA = 0.05
pytestmark = pytest.mark.calibration
SAFE = ("msprt", "cs", "gst_obf", "gst_pocock")


def _upper(reps, rate):
    return st.binom.ppf(0.995, reps, rate) / reps


def _lower(reps, rate):
    return st.binom.ppf(0.005, reps, rate) / reps


@pytest.fixture(scope="module", params=[("normal", 1.0), ("bernoulli", 0.1)])
def aa(request):
    outcome, mean = request.param
    return simulate_looks(mc_reps(), looks=30, per_look=200, outcome=outcome, mean=mean, seed=3)


@pytest.mark.parametrize("method", SAFE)
def test_always_valid_methods_control_the_false_positive_rate(aa, method):
    out = evaluate(aa, method, ALPHA)
    reps = out.rejected.size
    print(
        f"\n{method}: P(ever reject) over 30 looks {out.rejected.mean():.4f}, "
        f"time-uniform coverage {out.covered.mean():.4f}"
    )
    assert out.rejected.mean() <= _upper(reps, ALPHA)
    assert out.covered.mean() >= _lower(reps, 1 - ALPHA)


def test_naive_daily_peeking_inflates_the_false_positive_rate(aa):
    out = evaluate(aa, "naive", ALPHA)
    print(f"\nnaive: P(ever reject) over 30 looks {out.rejected.mean():.4f}")
    assert 0.22 <= out.rejected.mean() <= 0.33  # theory: about 0.28 for 30 equal looks


@pytest.mark.parametrize("method", SAFE)
def test_coverage_holds_with_a_true_effect(method):
    paths = simulate_looks(mc_reps(), looks=30, per_look=200, effect=0.05, seed=4)
    out = evaluate(paths, method, ALPHA)
    assert out.covered.mean() >= _lower(out.covered.size, 1 - ALPHA)


def test_gst_spends_exactly_alpha_and_always_valid_methods_are_conservative(aa):
    reps = aa.estimate.shape[0]
    gst = evaluate(aa, "gst_obf", ALPHA).rejected.mean()
    assert _lower(reps, ALPHA) <= gst <= _upper(reps, ALPHA)
    for method in ("msprt", "cs"):
        assert evaluate(aa, method, ALPHA).rejected.mean() < ALPHA


def test_always_valid_methods_detect_a_real_effect_and_stop_early():
    paths = simulate_looks(mc_reps(1_000), looks=30, per_look=200, effect=0.08, seed=5)
    for method in SAFE:
        out = evaluate(paths, method, ALPHA)
        assert out.rejected.mean() > 0.8
        assert np.median(out.first_look[out.rejected]) < 30


@pytest.mark.parametrize("method", ["msprt", "cs"])
def test_sequential_guardrail_pass_rate_at_the_margin_is_at_most_alpha(method):
    """A lower-is-better guardrail whose true harm equals the margin (+0.05 sd): the
    sequential non-inferiority rule (the always-valid interval's harmful end below the
    margin at some look, i.e. p against the margin < alpha with the estimate on the safe
    side) passes at most alpha of the time over 30 looks."""
    from abkit.stats.always_valid import asymptotic_cs, msprt, planned_tau

    reps, margin = mc_reps(), 0.05
    paths = simulate_looks(reps, looks=30, per_look=200, effect=margin, seed=17)
    est, var, n = paths.estimate, paths.variance, paths.n
    target = float(n[0, -1])
    if method == "msprt":
        path = msprt(est, var, ALPHA, planned_tau(var[:, -1:], n[:, -1:], target, ALPHA))
    else:
        path = asymptotic_cs(est, var, n, ALPHA, target)
    passed = (path.p_value_at(margin) < ALPHA) & (est < margin)
    # the same rule read off the interval: its harmful (upper) end below the margin
    np.testing.assert_array_equal(passed, path.ci_high < margin)
    rate = passed.any(axis=1).mean()
    print(f"\n{method}: guardrail passes at the margin in {rate:.4f} of {reps} runs")
    assert rate <= _upper(reps, ALPHA)
