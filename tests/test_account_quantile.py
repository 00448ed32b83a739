"""B2B quantiles (abkit.stats.account_quantile): the weighted quantiles against numpy,
the randomisation test and its inverted interval against brute-force enumeration,
closed-form p-values, equivariance, and calibration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats as st

from abkit.dev.calibration import b2b_quantile_study
from abkit.stats.account_quantile import (
    AccountValues,
    account_quantile_noninferiority,
    account_quantile_test,
    weighted_quantiles,
)
from tests.conftest import mc_reps


def _numpy_quantile(values: np.ndarray, repeats: np.ndarray, q: float) -> float:
    """The independent reference: numpy's inverted-CDF quantile of the values repeated."""
    expanded = np.repeat(values, repeats.astype(int))
    return float(np.quantile(expanded, q, method="inverted_cdf")) if expanded.size else math.nan


@settings(max_examples=150, deadline=None)
@given(
    data=hs.lists(hs.tuples(hs.integers(0, 30), hs.integers(0, 4)), min_size=1, max_size=120),
    weights=hs.lists(hs.lists(hs.integers(0, 3), min_size=5, max_size=5), min_size=1, max_size=8),
    q=hs.sampled_from([0.01, 0.1, 0.5, 0.9, 0.95, 0.99]),
)
def test_weighted_quantiles_equal_numpys_on_the_repeated_values(data, weights, q):
    values = np.array([v for v, _ in data], dtype=float)  # small integers: many ties
    groups = np.array([g for _, g in data])
    order = np.argsort(values, kind="stable")
    w = np.array(weights, dtype=float)
    got = weighted_quantiles(values[order], groups[order], w, q)
    for row, expected in zip(got, (w[r][groups] for r in range(len(w))), strict=True):
        reference = _numpy_quantile(values, expected, q)
        assert (math.isnan(row) and math.isnan(reference)) or row == reference


def test_weighted_quantiles_switch_to_double_precision_for_large_counts():
    """Counts whose sums pass 2^24 are not exact in float32: the double path answers,
    checked against a plain cumulative-weight search."""
    rng = np.random.default_rng(3)
    values = np.sort(rng.normal(size=2_000))
    groups = rng.integers(0, 3, values.size)
    weights = np.array([[2**22, 1, 3], [5, 2**23, 2**21]], dtype=float)
    got = weighted_quantiles(values, groups, weights, 0.7)
    for row, w in zip(got, weights, strict=True):
        cumulative = np.cumsum(w[groups])
        rank = math.ceil(cumulative[-1] * 0.7 - 1e-9)
        assert row == values[np.searchsorted(cumulative, rank)]


def _arms(rng: np.random.Generator, sizes_c, sizes_t, shift: float = 0.0):
    def arm(sizes, add):
        account = np.repeat(np.arange(len(sizes)), sizes)
        scale = rng.lognormal(0, 0.4, len(sizes))[account]
        return AccountValues(rng.lognormal(3, 0.6, account.size) * scale + add, account, len(sizes))

    return arm(sizes_c, 0.0), arm(sizes_t, shift)


def _brute_force(control: AccountValues, treatment: AccountValues, q: float, shift: float = 0.0):
    """p-value of 'every treated value is larger by shift' by listing every
    re-assignment of the accounts, each arm's quantile from numpy."""
    per_account = [control.values[control.account == a] for a in range(control.accounts)] + [
        treatment.values[treatment.account == a] - shift for a in range(treatment.accounts)
    ]
    total = len(per_account)

    def difference(treated: set[int]) -> float:
        t = np.concatenate([per_account[i] for i in treated])
        c = np.concatenate([per_account[i] for i in range(total) if i not in treated])
        return float(
            np.quantile(t, q, method="inverted_cdf") - np.quantile(c, q, method="inverted_cdf")
        )

    observed = difference(set(range(control.accounts, total)))
    stats = np.array(
        [difference(set(c)) for c in itertools.combinations(range(total), treatment.accounts)]
    )
    return float(np.mean(np.abs(stats) >= abs(observed) - 1e-9))


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_p_value_equals_brute_force_enumeration(q):
    rng = np.random.default_rng(11)
    control, treatment = _arms(rng, [12, 30, 7, 18, 25], [9, 40, 14, 21], shift=8.0)
    res = account_quantile_test(control, treatment, q, resamples=200)
    assert res.exact and res.assignments == math.comb(9, 4)
    assert res.p_value == pytest.approx(_brute_force(control, treatment, q), abs=1e-12)


def test_interval_ends_are_where_the_brute_force_test_starts_to_reject():
    rng = np.random.default_rng(5)
    control, treatment = _arms(rng, [15, 30, 8, 22, 17, 11], [10, 35, 16, 25, 12, 19], shift=15.0)
    res = account_quantile_test(control, treatment, 0.5, resamples=200)
    low, high = res.ci
    step = 0.01 * res.null_sd
    assert _brute_force(control, treatment, 0.5, low + step) > 0.05
    assert _brute_force(control, treatment, 0.5, low - step) <= 0.05
    assert _brute_force(control, treatment, 0.5, high - step) > 0.05
    assert _brute_force(control, treatment, 0.5, high + step) <= 0.05


def test_complete_separation_has_the_smallest_exact_p_value():
    """4 + 4 accounts of one value each, 1 … 4 in control and 5 … 8 in treatment, and
    the arm minimum (q = 0.1: rank 1 of 4): min T − min C = 4 only when treatment holds
    5 … 8, and −4 only for the mirror split, so p = 2 / C(8, 4) = 2/70."""
    one_each = np.arange(4)
    control = AccountValues(np.array([1.0, 2, 3, 4]), one_each, 4)
    treatment = AccountValues(np.array([5.0, 6, 7, 8]), one_each, 4)
    res = account_quantile_test(control, treatment, 0.1, resamples=200, invert=False)
    assert res.exact and res.assignments == 70
    assert res.effect == 4.0
    assert res.p_value == pytest.approx(2 / 70)


def test_stratified_reassignments_keep_each_strata_counts():
    rng = np.random.default_rng(2)
    control, treatment = _arms(rng, [10, 20, 30, 40], [15, 25, 35, 45])
    strata = np.array(["s", "s", "l", "l"])
    res = account_quantile_test(
        AccountValues(control.values, control.account, 4, strata),
        AccountValues(treatment.values, treatment.account, 4, strata),
        0.9,
        resamples=100,
        invert=False,
    )
    assert res.exact and res.assignments == math.comb(4, 2) ** 2


def test_shifting_and_scaling_the_treated_values_moves_the_intervals_alike():
    rng = np.random.default_rng(8)
    control, treatment = _arms(rng, [40, 15, 60, 22, 31, 18, 27], [35, 50, 12, 44, 20, 26, 30])
    base = account_quantile_test(control, treatment, 0.9, draws=800, resamples=200)
    moved = AccountValues(treatment.values + 25.0, treatment.account, treatment.accounts)
    shifted = account_quantile_test(control, moved, 0.9, draws=800, resamples=200)
    tolerance = 2e-3 * base.null_sd
    assert shifted.effect == pytest.approx(base.effect + 25.0)
    assert shifted.ci[0] == pytest.approx(base.ci[0] + 25.0, abs=tolerance)
    assert shifted.ci[1] == pytest.approx(base.ci[1] + 25.0, abs=tolerance)
    scaled = AccountValues(treatment.values * 1.5, treatment.account, treatment.accounts)
    grown = account_quantile_test(control, scaled, 0.9, draws=800, resamples=200)
    for before, after in zip(base.relative_ci, grown.relative_ci, strict=True):
        assert 1 + after == pytest.approx(1.5 * (1 + before), rel=5e-3)


def test_bootstrap_equals_a_loop_over_the_same_account_draws():
    from abkit.stats.bootstrap import resample_counts

    rng = np.random.default_rng(4)
    control, treatment = _arms(rng, [9, 14, 30, 11, 6], [20, 8, 17, 25])
    res = account_quantile_test(control, treatment, 0.75, resamples=60, seed=9, invert=False)
    draws = np.random.default_rng([9, 1])
    counts = [resample_counts(draws, arm.accounts, 60) for arm in (control, treatment)]
    for r in range(60):
        c = _numpy_quantile(control.values, counts[0][r][control.account], 0.75)
        t = _numpy_quantile(treatment.values, counts[1][r][treatment.account], 0.75)
        assert res.effects[r] == pytest.approx(t - c)


def test_guardrail_passes_and_fails_with_the_margin():
    rng = np.random.default_rng(6)
    control, treatment = _arms(rng, [30] * 8, [30] * 8)
    loose = account_quantile_noninferiority(
        control, treatment, 0.95, 0.5, True, higher_is_better=False, draws=500
    )
    assert loose.p_value < 0.05 and loose.bound < 0.5
    slower = AccountValues(treatment.values * 3.0, treatment.account, treatment.accounts)
    strict = account_quantile_noninferiority(
        control, slower, 0.95, 0.1, True, higher_is_better=False, draws=500
    )
    assert strict.p_value > 0.05 and strict.p_harm < 0.05 and strict.bound > 0.1


@pytest.mark.calibration
@pytest.mark.parametrize("per_arm", [6, 10])
def test_randomisation_test_holds_its_size_where_delta_methods_do_not(per_arm):
    reps = mc_reps(1_000)
    res = b2b_quantile_study(per_arm, reps, draws=500, seed=per_arm)
    upper = st.binom.ppf(0.995, reps, 0.05) / reps
    print(f"\n{per_arm} accounts/arm, {reps} A/A runs, p95: {res}")
    assert res["randomization"] <= upper
    assert res["account_delta"] > upper
    assert res["independent"] > 0.3


@pytest.mark.calibration
@pytest.mark.parametrize(("shift", "lift"), [(150.0, 0.0), (0.0, 0.2)])
def test_inverted_intervals_cover_the_true_shift_and_lift(shift, lift):
    reps = mc_reps(200)
    res = b2b_quantile_study(10, reps, shift=shift, lift=lift, draws=400, seed=7, invert=True)
    lower = st.binom.ppf(0.005, reps, 0.95) / reps
    covered = res["cover_shift"] if shift else res["cover_lift"]
    print(f"\n10 accounts/arm, {reps} runs, shift {shift}, lift {lift}: {res}")
    assert covered >= lower
