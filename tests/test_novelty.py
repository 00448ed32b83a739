"""Novelty: the trend of the lift over periods since assignment, against explicit
per-unit linearisation and closed forms, and by Monte Carlo (no false trend alarms
above alpha in A/A and with a stable effect; a fading effect is found)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from abkit.stats.cuped import Moments
from abkit.stats.novelty import novelty_test
from tests.conftest import mc_reps

BASELINE = np.array([1.0, 0.8, 0.65, 0.55])  # usage decays with time since assignment


def _units(rng, n, lift, ratio=False):
    """Per-unit counts in 4 periods: a unit's own activity level, decaying usage, the
    treatment's lift per period; for a ratio, shares (x) out of outputs (y)."""
    level = rng.gamma(1.5, 2.0, n)[:, None]
    outputs = rng.poisson(level * BASELINE * (1 if ratio else np.asarray(lift)))
    if not ratio:
        return outputs.astype(float)
    propensity = rng.beta(2, 8, n)[:, None]
    shares = rng.binomial(outputs, np.minimum(propensity * np.asarray(lift), 1))
    return np.hstack([shares, outputs]).astype(float)


def _test(zc, zt, ratio=False):
    return novelty_test(Moments.from_values(zc), Moments.from_values(zt), 4, ratio, 7, 0.05)


def test_slope_and_se_equal_an_explicit_per_unit_linearisation():
    rng = np.random.default_rng(1)
    zc, zt = _units(rng, 3_000, 1.0, ratio=True), _units(rng, 2_500, 1.2, ratio=True)
    res = _test(zc, zt, ratio=True)
    w = np.arange(4.0)
    c = (w - w.mean()) / ((w - w.mean()) ** 2).sum()
    infl_var, logs = 0.0, []
    for z in (zc, zt):
        x, y = z[:, :4], z[:, 4:]
        g = x.mean(0) / y.mean(0)
        # each unit's influence on log g_w: (x_w − g_w y_w) / (ȳ_w g_w), then on the slope
        infl = ((x - g * y) / (y.mean(0) * g)) @ c
        infl_var += infl.var(ddof=1) / len(z)
        logs.append(np.log(g))
    assert res.slope == pytest.approx(c @ (logs[1] - logs[0]), rel=1e-12)
    assert res.slope_se == pytest.approx(math.sqrt(infl_var), rel=1e-9)


def test_two_periods_is_the_difference_of_the_log_lifts():
    rng = np.random.default_rng(2)
    zc, zt = _units(rng, 2_000, 1.0)[:, :2], _units(rng, 2_000, [1.3, 1.1, 1, 1])[:, :2]
    res = novelty_test(Moments.from_values(zc), Moments.from_values(zt), 2, False, 7, 0.05)
    lift = zt.mean(0) / zc.mean(0) - 1
    assert res.lift == pytest.approx(tuple(lift), rel=1e-12)
    assert res.slope == pytest.approx(math.log1p(lift[1]) - math.log1p(lift[0]), rel=1e-12)
    assert res.change == pytest.approx((1 + lift[1]) / (1 + lift[0]) - 1, rel=1e-12)
    # Var(l1 − l0) from the per-unit log-scale influences of both periods
    var = sum(
        np.var(z[:, 1] / z[:, 1].mean() - z[:, 0] / z[:, 0].mean(), ddof=1) / len(z)
        for z in (zc, zt)
    )
    assert res.slope_se == pytest.approx(math.sqrt(var), rel=1e-9)


def test_degenerate_input_is_not_computable():
    zero = Moments.from_values(np.zeros((10, 4)))
    res = novelty_test(zero, zero, 4, False, 7, 0.05)
    assert res.verdict == "not computable" and math.isnan(res.p_value)


@pytest.mark.calibration
@pytest.mark.parametrize(
    "lift, ratio",
    [(1.0, False), (1.15, False), (1.0, True), (1.2, True)],
    ids=["aa-count", "stable-count", "aa-ratio", "stable-ratio"],
)
def test_no_false_trend_alarms_without_a_trend(lift, ratio):
    reps = max(mc_reps() // 2, 500)
    rng = np.random.default_rng(3)
    p = np.array(
        [
            _test(_units(rng, 400, 1.0, ratio), _units(rng, 500, lift, ratio), ratio).p_value
            for _ in range(reps)
        ]
    )
    rate = float(np.mean(p < 0.05))
    print(f"\nnovelty trend, lift {lift}, ratio {ratio}: false alarm rate {rate:.4f} ({reps})")
    assert st.binom.ppf(0.005, reps, 0.05) / reps <= rate <= st.binom.ppf(0.995, reps, 0.05) / reps


@pytest.mark.calibration
def test_a_fading_effect_is_found_and_called_fading():
    reps = max(mc_reps() // 10, 200)
    rng = np.random.default_rng(4)
    fading = [1.3, 1.15, 1.05, 1.0]
    verdicts = [
        _test(_units(rng, 2_000, 1.0), _units(rng, 2_000, fading)).verdict for _ in range(reps)
    ]
    share = verdicts.count("fades") / reps
    print(f"\nnovelty: a lift fading from +30 % to 0 is called 'fades' in {share:.2f} of runs")
    assert share > 0.9 and "grows" not in verdicts
