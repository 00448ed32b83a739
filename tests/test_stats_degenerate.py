"""Degenerate data gives NaN with a warning, never a crash or a confident number."""

from __future__ import annotations

import math

import numpy as np

from abkit.stats import ArmSummary, delta_ratio_test, two_proportion_ztest, welch_test
from abkit.stats.shape import depth_shape, is_bimodal


def test_zero_variance_in_both_arms_is_nan_with_a_reason():
    c = ArmSummary.from_values(np.full(50, 3.0))
    t = ArmSummary.from_values(np.full(60, 3.0))
    res = welch_test(c, t)
    assert math.isnan(res.p_value) and math.isnan(res.ci[0])
    assert any("no variation" in w for w in res.undefined)


def test_one_unit_in_an_arm_is_nan_with_a_reason():
    res = welch_test(ArmSummary.from_values(np.array([1.0])), ArmSummary.from_values(np.ones(9)))
    assert math.isnan(res.p_value)
    assert any("control arm has 1 unit" in w for w in res.undefined)


def test_empty_arm_is_nan_not_a_crash():
    empty = ArmSummary(n=0, mean=math.nan, var=math.nan)
    res = two_proportion_ztest(empty, ArmSummary(n=100, mean=0.2, var=0.16))
    assert math.isnan(res.p_value)


def test_all_zero_proportions_give_nan_p_value():
    zero = ArmSummary(n=100, mean=0.0, var=0.0)
    res = two_proportion_ztest(zero, zero)
    assert math.isnan(res.p_value)
    assert math.isnan(res.relative_effect)  # control rate 0: lift undefined


def test_ratio_with_zero_denominator_is_nan():
    zero = ArmSummary.from_values(np.zeros(10), np.zeros(10))
    res = delta_ratio_test(zero, ArmSummary.from_values(np.ones(10), np.full(10, 2.0)))
    assert math.isnan(res.p_value)
    assert any("denominator sums to 0" in w for w in res.undefined)


def test_depth_shape_closed_form():
    # 10 sessions: 2 with 0, 5 with 1, 1 with 3, 2 with 25 interactions
    shape = depth_shape(np.array([0, 1, 3, 25]), np.array([2, 5, 1, 2]))
    assert shape.sessions == 10
    assert shape.mean == (5 + 3 + 50) / 10
    assert shape.share_zero == 0.2 and shape.share_one == 0.5 and shape.share_power == 0.2
    assert shape.median == 1
    assert [b.depth for b in shape.bins] == ["1", "2-3", "4-7", "8-15", "16-31"]


def test_bimodality_flag_on_known_shapes():
    depth = np.arange(1, 200)
    geometric = (2 / 3) ** (depth - 1) / 3
    assert not depth_shape(depth, geometric * 1e6).bimodal
    lognormal = np.exp(-((np.log(depth) - 1.5) ** 2) / 0.5) / depth
    assert not depth_shape(depth, lognormal * 1e6).bimodal
    mixture = 0.6 * (depth == 1) + 0.4 * np.exp(-((depth - 25) ** 2) / 30)
    assert depth_shape(depth, mixture * 1e6).bimodal
    assert not is_bimodal(np.array([0.9, 0.1]))
