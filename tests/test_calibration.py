"""Monte Carlo calibration: A/A false-positive rates and CI coverage at alpha.

Each check passes when the observed rate lies in the binomial 99 % band around the
nominal rate.  CI runs ABKIT_MC_REPS (default 2,000) replications; the numbers in
the docs come from ABKIT_MC_REPS=20000.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from abkit.stats import ArmSummary, delta_ratio_test, two_proportion_ztest, welch_test
from tests.conftest import mc_reps

ALPHA = 0.05
pytestmark = pytest.mark.calibration


def _band(reps: int, rate: float) -> tuple[float, float]:
    return st.binom.ppf(0.005, reps, rate) / reps, st.binom.ppf(0.995, reps, rate) / reps


def _mean_data(rng, n):
    return rng.lognormal(0.0, 0.75, n)  # skewed, as revenue or latency


def _prop_data(rng, n):
    return (rng.random(n) < 0.08).astype(float)


def _ratio_data(rng, n):
    y = rng.poisson(rng.gamma(2.0, 3.0, n)) + 1  # heterogeneous outputs per user
    x = rng.binomial(y, rng.beta(2, 20, n))  # user-level share propensity
    return x.astype(float), y.astype(float)


def _arm(kind, rng, n):
    if kind == "delta":
        return ArmSummary.from_values(*_ratio_data(rng, n))
    return ArmSummary.from_values({"welch": _mean_data, "z": _prop_data}[kind](rng, n))


@pytest.mark.parametrize("kind", ["welch", "z", "delta"])
def test_aa_false_positive_rate_and_coverage(kind):
    reps = mc_reps()
    rng = np.random.default_rng({"welch": 11, "z": 12, "delta": 13}[kind])
    test = {"welch": welch_test, "z": two_proportion_ztest, "delta": delta_ratio_test}[kind]
    rejections = covered = rel_covered = 0
    for _ in range(reps):
        res = test(_arm(kind, rng, 400), _arm(kind, rng, 500), ALPHA)
        rejections += res.p_value < ALPHA
        covered += res.ci[0] <= 0.0 <= res.ci[1]
        rel_covered += res.relative_ci[0] <= 0.0 <= res.relative_ci[1]
    print(
        f"\n{kind}: reps {reps}, A/A FPR {rejections / reps:.4f}, CI coverage "
        f"{covered / reps:.4f}, lift CI coverage {rel_covered / reps:.4f}"
    )
    lo, hi = _band(reps, ALPHA)
    assert lo <= rejections / reps <= hi, f"{kind}: FPR {rejections / reps:.4f}"
    clo, chi = _band(reps, 1 - ALPHA)
    assert clo <= covered / reps <= chi, f"{kind}: coverage {covered / reps:.4f}"
    assert clo <= rel_covered / reps <= chi, f"{kind}: lift coverage {rel_covered / reps:.4f}"


def test_coverage_with_a_true_effect():
    """With a real difference the CI must still cover the true difference at 1 − α."""
    reps = mc_reps()
    rng = np.random.default_rng(21)
    true_c, true_t = 0.10, 0.12
    covered = 0
    for _ in range(reps):
        c = ArmSummary.from_values((rng.random(2_000) < true_c).astype(float))
        t = ArmSummary.from_values((rng.random(2_000) < true_t).astype(float))
        res = two_proportion_ztest(c, t, ALPHA)
        covered += res.ci[0] <= true_t - true_c <= res.ci[1]
    lo, hi = _band(reps, 1 - ALPHA)
    assert lo <= covered / reps <= hi


def test_naive_event_level_test_is_anti_conservative_where_delta_is_not():
    """Treating outputs as independent (a z-test on events) inflates the A/A rate for a
    ratio metric with user-level correlation; the delta method does not."""
    reps = mc_reps(1_000)
    rng = np.random.default_rng(31)
    naive = delta = 0
    for _ in range(reps):
        xc, yc = _ratio_data(rng, 400)
        xt, yt = _ratio_data(rng, 400)
        c = ArmSummary(n=int(yc.sum()), mean=xc.sum() / yc.sum(), var=0.0)
        t = ArmSummary(n=int(yt.sum()), mean=xt.sum() / yt.sum(), var=0.0)
        naive += two_proportion_ztest(c, t).p_value < ALPHA
        delta += (
            delta_ratio_test(ArmSummary.from_values(xc, yc), ArmSummary.from_values(xt, yt)).p_value
            < ALPHA
        )
    print(
        f"\nA/A on a clustered ratio: naive event-level FPR {naive / reps:.4f}, "
        f"delta method {delta / reps:.4f} (reps {reps})"
    )
    assert naive / reps > _band(reps, ALPHA)[1]
    assert delta / reps <= _band(reps, ALPHA)[1]
