"""Monte Carlo calibration of CUPED: A/A size, CI and lift-CI coverage under a true
effect, and the power gain over the unadjusted test.  CI runs ABKIT_MC_REPS (default
2,000) replications; the README's numbers come from ABKIT_MC_REPS=20000."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from abkit.stats import ArmSummary, delta_ratio_test, two_proportion_ztest, welch_test
from abkit.stats.cuped import Moments, cuped_test
from tests.conftest import mc_reps

ALPHA = 0.05
pytestmark = pytest.mark.calibration


def _band(reps: int, rate: float) -> tuple[float, float]:
    return st.binom.ppf(0.005, reps, rate) / reps, st.binom.ppf(0.995, reps, rate) / reps


def _mean(rng, n, effect):
    """Skewed spend with a pre-period spend correlated about 0.7."""
    pre = rng.lognormal(0.0, 0.75, n)
    return np.column_stack([pre + rng.lognormal(-0.5, 0.75, n) + effect, pre])


def _proportion(rng, n, effect):
    """Retention with a pre-period activity flag (a returning user retains more)."""
    pre = (rng.random(n) < 0.4).astype(float)
    return np.column_stack([(rng.random(n) < 0.15 + 0.5 * pre + effect).astype(float), pre])


def _ratio(rng, n, effect):
    """Shares per output with the user's pre-period shares and outputs."""
    pre_den = rng.poisson(rng.gamma(2.0, 3.0, n)) + 1
    propensity = rng.beta(0.5, 4, n)
    pre_num = rng.binomial(pre_den, propensity)
    den = rng.poisson(pre_den * 0.8) + 1
    num = rng.binomial(den, np.minimum(propensity * (1 + effect), 1))
    return np.column_stack([num, den, pre_num, pre_den]).astype(float)


CASES = {
    # data, metric term, covariate terms, Welch df, unadjusted test, effect, true lift
    "mean": (_mean, (0,), [(1,)], True, welch_test, 0.1),
    "proportion": (_proportion, (0,), [(1,)], False, two_proportion_ztest, 0.03),
    "ratio": (_ratio, (0, 1), [(2, 3)], False, delta_ratio_test, 0.1),
}


def _unadjusted(z, ratio):
    return ArmSummary.from_values(z[:, 0], z[:, 1] if ratio else None)


def _true_values(kind, effect):
    """Population control and treatment values by a very large draw (exact for the
    proportion; a known closed form for the others is not needed for coverage of Δ)."""
    data, metric, *_ = CASES[kind]
    rng = np.random.default_rng(99)
    big = [data(rng, 2_000_000, e) for e in (0.0, effect)]
    if len(metric) == 1:
        return [z[:, 0].mean() for z in big]
    return [z[:, 0].sum() / z[:, 1].sum() for z in big]


@pytest.mark.parametrize("kind", list(CASES))
def test_aa_size_and_coverage_under_an_effect(kind):
    data, metric, covs, welch_df, _, effect = CASES[kind]
    reps = mc_reps()
    rng = np.random.default_rng({"mean": 21, "proportion": 22, "ratio": 23}[kind])
    true_c, true_t = _true_values(kind, effect)
    true_effect, true_lift = true_t - true_c, true_t / true_c - 1
    rejections = covered = lift_covered = 0
    for _ in range(reps):
        aa, _ = cuped_test(
            Moments.from_values(data(rng, 400, 0.0)),
            Moments.from_values(data(rng, 500, 0.0)),
            metric,
            covs,
            ["pre"],
            ALPHA,
            welch_df,
        )
        rejections += aa.p_value < ALPHA
        ab, _ = cuped_test(
            Moments.from_values(data(rng, 400, 0.0)),
            Moments.from_values(data(rng, 500, effect)),
            metric,
            covs,
            ["pre"],
            ALPHA,
            welch_df,
        )
        covered += ab.ci[0] <= true_effect <= ab.ci[1]
        lift_covered += ab.relative_ci[0] <= true_lift <= ab.relative_ci[1]
    print(
        f"\nCUPED {kind}: reps {reps}, A/A FPR {rejections / reps:.4f}, CI coverage "
        f"{covered / reps:.4f}, lift CI coverage {lift_covered / reps:.4f}"
    )
    lo, hi = _band(reps, ALPHA)
    assert lo <= rejections / reps <= hi
    lo, hi = _band(reps, 1 - ALPHA)
    assert lo <= covered / reps <= hi
    assert lo <= lift_covered / reps <= hi


@pytest.mark.parametrize("kind", list(CASES))
def test_power_gain_over_the_unadjusted_test(kind):
    """The adjusted test rejects more often under the same effect, and by about what
    its variance reduction promises."""
    data, metric, covs, welch_df, unadjusted, effect = CASES[kind]
    reps = max(mc_reps() // 4, 300)
    rng = np.random.default_rng({"mean": 31, "proportion": 32, "ratio": 33}[kind])
    hits_cuped = hits_plain = 0
    reductions = []
    for _ in range(reps):
        zc, zt = data(rng, 400, 0.0), data(rng, 500, effect)
        comp, adj = cuped_test(
            Moments.from_values(zc),
            Moments.from_values(zt),
            metric,
            covs,
            ["pre"],
            ALPHA,
            welch_df,
        )
        assert adj is not None
        reductions.append(adj.variance_reduction)
        hits_cuped += comp.p_value < ALPHA
        plain = unadjusted(_unadjusted(zc, len(metric) == 2), _unadjusted(zt, len(metric) == 2))
        hits_plain += plain.p_value < ALPHA
    power_cuped, power_plain = hits_cuped / reps, hits_plain / reps
    # the power the unadjusted test would have with the variance CUPED removes
    z = st.norm.ppf(1 - ALPHA / 2)
    z_plain = st.norm.ppf(power_plain) + z
    expected = st.norm.cdf(z_plain / np.sqrt(1 - np.mean(reductions)) - z)
    print(
        f"\nCUPED {kind}: power {power_cuped:.3f} vs unadjusted {power_plain:.3f}, "
        f"variance reduction {np.mean(reductions):.1%}, predicted power {expected:.3f}"
    )
    assert power_cuped > power_plain
    assert abs(power_cuped - expected) < 4 * np.sqrt(expected * (1 - expected) / reps) + 0.02
