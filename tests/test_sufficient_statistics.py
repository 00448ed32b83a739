"""Sufficient statistics merge with ``+``: the merged parts give what the whole gives.

Every reference here is computed from the raw values of the whole (NumPy, SciPy, exact
fractions), never from the merge being tested.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import operator
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats as st

from abkit.stats import delta_ratio_test, welch_test
from abkit.stats.account_quantile import AccountValues, account_quantile_test
from abkit.stats.arm import ArmSummary
from abkit.stats.cluster import AccountArm, cr2_adjusted, cr2_test
from abkit.stats.cuped import Moments, cuped_test
from abkit.stats.paired import PairedSums, paired_test
from abkit.stats.quantile import (
    EventValues,
    Histogram,
    LogBins,
    binned_quantile_key,
    quantile_estimates,
)
from abkit.stats.survival import EventTimes, kaplan_meier, logrank, rmst

RTOL = 1e-12
N = 300

# uneven splits of N values, with parts of size 0 and 1
SPLITS = {
    "2 parts": (1, N - 1),
    "3 parts": (0, 37, N - 37),
    "7 parts": (5, 0, 1, 113, 2, 40, N - 161),
    "7 singletons and a rest": (1, 1, 1, 1, 1, 1, N - 6),
}


def cut(a: np.ndarray, sizes: tuple[int, ...]) -> list[np.ndarray]:
    assert sum(sizes) == len(a)
    return np.split(a, np.cumsum(sizes)[:-1])


def data(seed: int = 20240523) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skewed numerators x, denominators y correlated with x, and a covariate."""
    rng = np.random.default_rng(seed)
    y = rng.poisson(3.0, N) + 1.0
    x = y * rng.lognormal(0.0, 0.8, N)
    pre = 0.6 * x + rng.normal(0.0, 1.0, N)
    return x, y, pre


def summary(x: np.ndarray, y: np.ndarray | None = None) -> ArmSummary:
    """A unit summary as the units stage gives it: moments and the skewness G₁
    (NaN below 3 units or without spread, as Polars' ``skew(bias=False)``)."""
    arm = ArmSummary.from_values(x, y)
    if arm.n == 0:
        return arm
    spread = arm.n >= 3 and np.ptp(x) > 0
    skew = float(st.skew(x, bias=False)) if spread else math.nan
    return dataclasses.replace(arm, skewness=skew)


def close(a: float | None, b: float, rtol: float = RTOL) -> bool:
    assert a is not None
    return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


def add_all(parts: list) -> object:
    return functools.reduce(operator.add, parts)


# ---------------------------------------------------------------- unit moments


@pytest.mark.parametrize("sizes", SPLITS.values(), ids=SPLITS.keys())
@pytest.mark.parametrize("merge", [sum, add_all], ids=["sum", "plus"])
def test_mean_summaries_merge_to_the_whole(sizes, merge):
    x, _, _ = data()
    merged = merge([summary(p) for p in cut(x, sizes)])
    assert merged.n == N and not merged.is_ratio
    assert close(merged.mean, float(np.mean(x)))
    assert close(merged.var, float(np.var(x, ddof=1)))
    assert close(merged.skewness, float(st.skew(x, bias=False)))


@pytest.mark.parametrize("sizes", SPLITS.values(), ids=SPLITS.keys())
@pytest.mark.parametrize("merge", [sum, add_all], ids=["sum", "plus"])
def test_ratio_summaries_merge_to_the_whole(sizes, merge):
    x, y, _ = data()
    merged = merge([summary(a, b) for a, b in zip(cut(x, sizes), cut(y, sizes), strict=True)])
    assert merged.n == N and merged.is_ratio
    assert close(merged.mean, float(np.mean(x)))
    assert close(merged.var, float(np.var(x, ddof=1)))
    assert close(merged.den_mean, float(np.mean(y)))
    assert close(merged.den_var, float(np.var(y, ddof=1)))
    assert close(merged.cov, float(np.cov(x, y, ddof=1)[0, 1]))
    assert close(merged.skewness, float(st.skew(x, bias=False)))
    assert close(merged.value, float(x.sum() / y.sum()))


def test_single_units_merge_without_nan():
    """A part of one unit has a NaN variance (ddof = 1) but adds M₂ = 0."""
    x, y, _ = data()
    singles = [summary(x[i : i + 1], y[i : i + 1]) for i in range(10)]
    assert all(math.isnan(s.var) and math.isnan(s.cov) for s in singles)
    merged = sum(singles)
    assert close(merged.var, float(np.var(x[:10], ddof=1)))
    assert close(merged.cov, float(np.cov(x[:10], y[:10])[0, 1]))
    assert close(merged.skewness, float(st.skew(x[:10], bias=False)))
    pair = singles[0] + singles[1]
    assert close(pair.var, float(np.var(x[:2], ddof=1)))
    assert math.isnan(pair.skewness)  # as Polars gives it below 3 units


def test_empty_parts_are_the_identity():
    x, y, _ = data()
    ratio = summary(x, y)
    # the units stage gives an empty arm of a ratio metric without denominator moments
    empty = ArmSummary(n=0, mean=math.nan, var=math.nan)
    assert ratio + empty == ratio and empty + ratio == ratio
    assert ArmSummary.zero() + ratio == ratio
    assert sum([ratio], ArmSummary.zero()) == ratio
    assert sum([], ArmSummary.zero()).n == 0
    assert (ArmSummary.zero() + ArmSummary.zero()).n == 0


def test_one_unit_in_all():
    merged = ArmSummary.from_values(np.array([]), np.array([])) + ArmSummary.from_values(
        np.array([4.0]), np.array([2.0])
    )
    assert merged.n == 1 and merged.mean == 4.0 and math.isnan(merged.var)


def test_constant_values_have_no_skewness():
    parts = [summary(np.full(k, 7.0)) for k in (3, 1, 4)]
    merged = sum(parts)
    assert merged.var == 0.0 and math.isnan(merged.skewness)


def test_skewness_unknown_in_a_part_is_unknown_after_the_merge():
    """Summaries without skewness (from sums, from_values) merge to None, not to a
    number that ignores a part's third moment."""
    x, _, _ = data()
    known, unknown = summary(x[:100]), ArmSummary.from_values(x[100:])
    assert unknown.skewness is None
    assert (known + unknown).skewness is None
    assert (unknown + known).skewness is None
    assert close((known + unknown).var, float(np.var(x, ddof=1)))


def test_unknown_variance_stays_unknown():
    """A part whose variance is not known (NaN from n ≥ 2 units) makes the merged
    variance NaN, never a number."""
    part = ArmSummary(n=5, mean=1.0, var=math.nan)
    assert math.isnan((part + ArmSummary.from_values(np.array([1.0, 2.0]))).var)


# ------------------------------------------------------------- order of merging


FIELDS = ("n", "mean", "var", "den_mean", "den_var", "cov", "skewness")


def same_summary(a: ArmSummary, b: ArmSummary) -> bool:
    return a.n == b.n and all(close(getattr(a, f), getattr(b, f)) for f in FIELDS[1:])


def test_order_and_grouping_do_not_matter():
    x, y, _ = data()
    sizes = SPLITS["7 parts"]
    parts = [summary(a, b) for a, b in zip(cut(x, sizes), cut(y, sizes), strict=True)]
    reference = sum(parts)
    rng = np.random.default_rng(7)
    candidates = [sum(parts[i] for i in rng.permutation(len(parts))) for _ in range(20)]

    def tree(items: list[ArmSummary]) -> ArmSummary:  # pairwise, as Chan et al. propose
        if len(items) == 1:
            return items[0]
        half = len(items) // 2
        return tree(items[:half]) + tree(items[half:])

    candidates += [tree(parts), tree(parts[::-1])]
    assert all(same_summary(merged, reference) for merged in candidates)
    for a, b, c in itertools.permutations([parts[0], parts[3], parts[5]]):
        assert same_summary((a + b) + c, a + (b + c))
        assert same_summary(a + b, b + a)


def test_moments_order_does_not_matter():
    x, y, pre = data()
    z = np.column_stack([x, y, pre])
    parts = [Moments.from_values(p) for p in cut(z, (40, 1, 100, 159))]
    forward = parts[0] + parts[1] + parts[2] + parts[3]
    backward = parts[3] + (parts[2] + (parts[1] + parts[0]))
    for p in itertools.permutations(parts):
        merged = sum(p)
        np.testing.assert_allclose(merged.mean, forward.mean, rtol=RTOL)
        np.testing.assert_allclose(merged.cov, forward.cov, rtol=RTOL)
    np.testing.assert_allclose(backward.cov, forward.cov, rtol=RTOL)


# -------------------------------------------------------------- CUPED moments


def moments(z: np.ndarray) -> Moments:
    return Moments.zero(z.shape[1]) if len(z) == 0 else Moments.from_values(z)


@pytest.mark.parametrize("sizes", SPLITS.values(), ids=SPLITS.keys())
def test_moments_merge_to_the_whole(sizes):
    x, y, pre = data()
    z = np.column_stack([x, y, pre])
    for merged in (
        sum(moments(p) for p in cut(z, sizes)),
        add_all(list(map(moments, cut(z, sizes)))),
    ):
        assert merged.n == N
        np.testing.assert_allclose(merged.mean, z.mean(axis=0), rtol=RTOL)
        np.testing.assert_allclose(merged.cov, np.cov(z, rowvar=False, ddof=1), rtol=RTOL)


def test_moments_of_single_units_and_empty_parts():
    x, y, pre = data()
    z = np.column_stack([x, y, pre])[:6]
    singles = [Moments.from_values(z[i : i + 1]) for i in range(6)]
    assert np.isnan(singles[0].cov).all()
    merged = sum(singles, Moments.zero(3))
    np.testing.assert_allclose(merged.cov, np.cov(z, rowvar=False), rtol=RTOL)
    assert np.isnan((Moments.zero(3) + singles[0]).cov).all()
    assert sum([], Moments.zero(3)).n == 0


def test_cuped_test_on_merged_moments_is_the_whole_test():
    x, _, pre = data()
    rng = np.random.default_rng(3)
    treated = rng.random(N) < 0.5
    z = np.column_stack([x + 0.3 * treated, pre])
    arms = []
    for mask in (~treated, treated):
        zi = z[mask]
        arms.append(
            (Moments.from_values(zi), sum(moments(p) for p in cut(zi, (1, 0, 50, len(zi) - 51))))
        )
    (whole_c, parts_c), (whole_t, parts_t) = arms
    whole, _ = cuped_test(whole_c, whole_t, (0,), [(1,)], ["pre"], 0.05)
    merged, _ = cuped_test(parts_c, parts_t, (0,), [(1,)], ["pre"], 0.05)
    assert 1e-4 < whole.p_value < 0.9
    assert close(merged.p_value, whole.p_value)
    assert close(merged.se, whole.se)


# ------------------------------------------------------------ numerical safety


def exact_variance(values: np.ndarray) -> float:
    """The sample variance of the floats as given, in exact rational arithmetic."""
    q = [Fraction(float(v)) for v in values]
    mean = sum(q) / len(q)
    return float(sum((v - mean) ** 2 for v in q) / (len(q) - 1))


def exact_covariance(a: np.ndarray, b: np.ndarray) -> float:
    qa, qb = [Fraction(float(v)) for v in a], [Fraction(float(v)) for v in b]
    ma, mb = sum(qa) / len(qa), sum(qb) / len(qb)
    return float(sum((u - ma) * (v - mb) for u, v in zip(qa, qb, strict=True)) / (len(qa) - 1))


def digits(estimate: float, exact: float) -> float:
    """Significant decimal digits of ``estimate`` (∞ when exact)."""
    error = abs(estimate - exact) / abs(exact)
    return math.inf if error == 0 else -math.log10(error)


def large_values(seed: int, n: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """x, y = 10⁹ + noise of standard deviation 10, correlated."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 10.0, n)
    return 1e9 + noise, 1e9 + 0.5 * noise + rng.normal(0.0, 10.0, n)


def test_merge_keeps_the_digits_that_sums_of_squares_lose():
    """Values 10⁹ + N(0, 10²): Σx² ≈ 10²² carries a rounding error near ε·n·x̄² ≈ 10⁶,
    the size of M₂ = n·σ² itself, so Σx² − n·x̄² (from_sums, and any merge that adds
    sums of squares) keeps no digit.  The merge of central moments is exact up to the
    rounding of the parts' means, a relative error near ε·x̄/(σ·√n) ≈ 10⁻¹⁰ per merge."""
    x, y = large_values(11)
    n = x.size
    sizes = (1, 0, 2000, 7, 3333, 59, n - 5400)
    parts = [
        ArmSummary.from_values(a, b) for a, b in zip(cut(x, sizes), cut(y, sizes), strict=True)
    ]
    merged = sum(parts)
    var, cov = exact_variance(x), exact_covariance(x, y)
    assert digits(merged.var, var) >= 9
    assert digits(merged.den_var, exact_variance(y)) >= 9
    assert digits(merged.cov, cov) >= 9

    # the naive merge: add each part's n, Σx, Σx², Σy, Σy², Σxy, then centre once
    sums = [
        (a.size, a.sum(), (a * a).sum(), b.sum(), (b * b).sum(), (a * b).sum())
        for a, b in zip(cut(x, sizes), cut(y, sizes), strict=True)
    ]
    naive = ArmSummary.from_sums(*(math.fsum(column) for column in zip(*sums, strict=True)))
    assert digits(naive.var, var) < 2
    assert digits(naive.cov, cov) < 2
    whole = ArmSummary.from_sums(n, x.sum(), (x * x).sum(), y.sum(), (y * y).sum(), (x * y).sum())
    assert digits(whole.var, var) < 2


def test_moments_merge_keeps_digits_at_large_means():
    """The parts' means are correctly rounded sums (``Moments.from_values`` averages
    along axis 0, which NumPy sums without pairwise summation, so its means carry
    an error near √n·ε·x̄ that no merge can remove)."""
    x, y = large_values(12)
    z = np.column_stack([x, y])

    def part(p: np.ndarray) -> Moments:
        mean = np.array([math.fsum(column) / len(p) for column in p.T])
        return Moments(len(p), mean, Moments.from_values(p).cov)

    merged = sum(part(p) for p in cut(z, (1, 999, 3000, 6000)))
    assert digits(float(merged.cov[0, 0]), exact_variance(x)) >= 9
    assert digits(float(merged.cov[1, 1]), exact_variance(y)) >= 9
    assert digits(float(merged.cov[0, 1]), exact_covariance(x, y)) >= 9


# ------------------------------------------------------- tests on merged parts


def test_welch_test_on_merged_parts_is_the_whole_test():
    rng = np.random.default_rng(5)
    control = rng.lognormal(0.0, 1.0, 400)
    treatment = rng.lognormal(0.15, 1.0, 350)
    whole = welch_test(summary(control), summary(treatment))
    merged = welch_test(
        sum(summary(p) for p in cut(control, (1, 0, 150, 249))),
        sum(summary(p) for p in cut(treatment, (100, 2, 0, 248))),
    )
    assert 1e-4 < whole.p_value < 0.9
    assert close(merged.p_value, whole.p_value)
    assert close(merged.se, whole.se)
    assert close(merged.df, whole.df)
    assert all(close(a, b) for a, b in zip(merged.ci, whole.ci, strict=True))


def test_ratio_test_on_merged_parts_is_the_whole_test():
    rng = np.random.default_rng(6)
    yc, yt = rng.poisson(3.0, 500) + 1.0, rng.poisson(3.0, 450) + 1.0
    xc, xt = rng.binomial(yc.astype(int), 0.3), rng.binomial(yt.astype(int), 0.33)
    whole = delta_ratio_test(summary(xc, yc), summary(xt, yt))
    sizes_c, sizes_t = (1, 249, 0, 250), (7, 1, 1, 441)
    merged = delta_ratio_test(
        sum(summary(a, b) for a, b in zip(cut(xc, sizes_c), cut(yc, sizes_c), strict=True)),
        sum(summary(a, b) for a, b in zip(cut(xt, sizes_t), cut(yt, sizes_t), strict=True)),
    )
    assert 1e-4 < whole.p_value < 0.9
    assert close(merged.p_value, whole.p_value)
    assert close(merged.se, whole.se)


# ------------------------------------------------------------------ quantiles


def events(seed: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event values with the unit (id) and the day of each; a unit's events span days."""
    rng = np.random.default_rng(seed)
    units = rng.integers(1000, 1200, 3000)
    values = rng.lognormal(5.0, 0.7, units.size) * (1 + (units % 7) / 10)
    day = rng.integers(0, 5, units.size)
    return values, units, day


def test_event_values_by_day_merge_to_the_whole():
    """Parts split by day hold events of the same units: concatenation still clusters
    each unit's events together, because the ids are shared."""
    values, units, day = events()
    parts = [EventValues(values[day == d], units[day == d]) for d in range(5)]
    levels = (0.5, 0.9, 0.99)
    whole = quantile_estimates(values, units, levels)
    for merged in (sum(parts), add_all(parts[::-1]), sum(parts, EventValues.zero())):
        assert merged.events == values.size
        got = merged.estimates(levels)
        for q in levels:
            assert got[q].estimate == whole[q].estimate
            assert got[q].units == whole[q].units
            assert close(got[q].se, whole[q].se)
            assert close(got[q].design_effect, whole[q].design_effect)


def test_histograms_on_the_same_bins_add_counts():
    values, units, day = events()
    bins = LogBins(0.01)
    parts = [Histogram.of(values[day == d], bins) for d in range(5)]
    whole = Histogram.of(values, bins)
    for merged in (sum(parts), add_all(parts[::-1]), sum(parts, Histogram.zero(bins))):
        np.testing.assert_array_equal(merged.keys, whole.keys)
        np.testing.assert_array_equal(merged.counts, whole.counts)
    merged = sum(parts)
    assert merged.events == values.size
    # the clustered standard error: per-unit counts below the quantile's bin, from
    # parts split by unit, merge as ratio summaries
    q = 0.9
    key = binned_quantile_key(whole.keys, whole.counts, q)
    below_event = (bins.keys(values) <= key).astype(float)
    codes, unit_index = np.unique(units, return_inverse=True)
    c = np.bincount(unit_index, below_event, codes.size)
    n = np.bincount(unit_index, minlength=codes.size).astype(float)
    below = ArmSummary.from_values(c, n)
    below_parts = sum(
        ArmSummary.from_values(a, b)
        for a, b in zip(cut(c, (1, 50, 0, 149)), cut(n, (1, 50, 0, 149)), strict=True)
    )
    exact, from_parts = whole.estimate(q, below), merged.estimate(q, below_parts)
    assert from_parts.estimate == exact.estimate
    assert close(from_parts.se, exact.se)


def test_histograms_on_different_bins_do_not_add():
    values, _, _ = events()
    with pytest.raises(ValueError, match="different bins"):
        Histogram.of(values, LogBins(0.01)) + Histogram.of(values, LogBins(0.001))


# ----------------------------------------------------------- account sums


def account_data(seed: int = 9) -> tuple[AccountArm, AccountArm]:
    rng = np.random.default_rng(seed)
    arms = []
    for lift, size in ((0.0, 40), (0.2, 35)):
        y = rng.integers(1, 60, size).astype(float)
        x = rng.binomial(y.astype(int), 0.3 + lift * 0.3).astype(float)
        strata = rng.choice(np.array(["eu", "us"]), size)
        z = np.column_stack([y * rng.uniform(0.2, 0.4, size)])
        arms.append(AccountArm(x, y, strata, z, ("pre",)))
    return arms[0], arms[1]


def split_accounts(arm: AccountArm, sizes: tuple[int, ...]) -> list[AccountArm]:
    assert arm.strata is not None and arm.z is not None
    return [
        AccountArm(x, y, s, z, arm.covariates)
        for x, y, s, z in zip(
            cut(arm.x, sizes),
            cut(arm.y, sizes),
            cut(arm.strata, sizes),
            cut(arm.z, sizes),
            strict=True,
        )
    ]


def test_accounts_split_by_account_merge_to_the_whole():
    control, treatment = account_data()
    merged_c = sum(split_accounts(control, (1, 0, 20, 19)))
    merged_t = sum(split_accounts(treatment, (17, 1, 17)), AccountArm.zero())
    for merged, whole in ((merged_c, control), (merged_t, treatment)):
        assert merged.accounts == whole.accounts
        np.testing.assert_array_equal(merged.x, whole.x)
        np.testing.assert_array_equal(merged.strata, whole.strata)
        np.testing.assert_array_equal(merged.z, whole.z)
    for weighting in ("user", "account"):
        a, b = cr2_test(merged_c, merged_t, weighting), cr2_test(control, treatment, weighting)
        assert close(a.p_value, b.p_value) and close(a.se, b.se) and close(a.df, b.df)
    a, b = cr2_adjusted(merged_c, merged_t, "user"), cr2_adjusted(control, treatment, "user")
    assert close(a.p_value, b.p_value)


def test_accounts_in_reversed_parts_give_the_same_test():
    control, treatment = account_data()
    parts = split_accounts(control, (10, 10, 20))
    reversed_order = parts[2] + parts[1] + parts[0]
    a, b = cr2_test(reversed_order, treatment, "user"), cr2_test(control, treatment, "user")
    assert close(a.p_value, b.p_value) and close(a.se, b.se) and close(a.df, b.df)


def test_accounts_have_no_ids_so_a_shared_account_counts_twice():
    """Documented: ``+`` is for disjoint account sets; the same account in both parts
    is two accounts, not one account with the summed sums."""
    control, _ = account_data()
    doubled = control + control
    assert doubled.accounts == 2 * control.accounts
    np.testing.assert_array_equal(doubled.x, np.concatenate([control.x, control.x]))


def test_account_sums_of_different_designs_do_not_add():
    control, _ = account_data()
    bare = AccountArm(control.x, control.y)
    with pytest.raises(ValueError, match="strata"):
        control + bare
    with pytest.raises(ValueError, match="covariates"):
        control + dataclasses.replace(control, covariates=("other",))
    with pytest.raises(ValueError, match="covariates"):
        dataclasses.replace(control, z=None, covariates=()) + control


# --------------------------------------------------------- paired and survival


def test_paired_sums_of_disjoint_users_merge_to_the_whole():
    rng = np.random.default_rng(10)
    pairs = rng.integers(1, 6, 120)
    live = rng.normal(0.5, 1.0, 120) * pairs
    candidate = live + rng.normal(0.1, 1.0, 120) * pairs
    whole = paired_test(live, candidate, pairs)[0]
    sizes = (1, 0, 60, 59)
    parts = [
        PairedSums(a, b, c)
        for a, b, c in zip(cut(live, sizes), cut(candidate, sizes), cut(pairs, sizes), strict=True)
    ]
    for merged in (sum(parts), add_all(parts[::-1]), sum(parts, PairedSums.zero())):
        got = paired_test(merged.live, merged.candidate, merged.pairs)[0]
        assert close(got.p_value, whole.p_value) and close(got.se, whole.se)


def test_paired_sums_are_what_the_paired_input_builds():
    from abkit.inputs import paired

    assert paired.PairedSums is PairedSums


def test_event_times_of_disjoint_accounts_merge_to_the_whole():
    rng = np.random.default_rng(13)
    time = np.round(rng.exponential(10.0, 200), 1)
    event = rng.random(200) < 0.7
    other_time, other_event = np.round(rng.exponential(12.0, 180), 1), rng.random(180) < 0.7
    sizes = (1, 0, 99, 100)
    parts = [EventTimes(t, e) for t, e in zip(cut(time, sizes), cut(event, sizes), strict=True)]
    merged = sum(parts[::-1])
    assert merged.subjects == 200
    km_whole, km_merged = kaplan_meier(time, event), merged.curve()
    np.testing.assert_array_equal(km_merged.times, km_whole.times)
    np.testing.assert_allclose(km_merged.survival, km_whole.survival, rtol=RTOL)
    assert close(float(rmst(km_merged, 20.0)), float(rmst(km_whole, 20.0)))
    stat_merged = logrank(merged.time, merged.event, other_time, other_event)
    stat_whole = logrank(time, event, other_time, other_event)
    assert close(stat_merged[1], stat_whole[1])
    assert sum([], EventTimes.zero()).subjects == 0


# -------------------------------------------------------------------- errors


def test_a_ratio_and_a_mean_summary_do_not_add():
    x, y, _ = data()
    with pytest.raises(ValueError, match="a mean summary and a ratio summary"):
        summary(x) + summary(x, y)
    with pytest.raises(ValueError, match="a ratio summary and a mean summary"):
        summary(x, y) + summary(x)


def test_moments_of_different_columns_do_not_add():
    x, y, _ = data()
    with pytest.raises(ValueError, match="3 columns and of 2 columns"):
        Moments.from_values(np.column_stack([x, y, x])) + Moments.from_values(
            np.column_stack([x, y])
        )
    with pytest.raises(ValueError, match="columns"):
        Moments.zero(2) + Moments.from_values(np.column_stack([x, y, x]))


@pytest.mark.parametrize(
    "part",
    [
        ArmSummary.zero(),
        Moments.zero(2),
        EventValues.zero(),
        Histogram.zero(LogBins()),
        AccountArm.zero(),
        PairedSums.zero(),
        EventTimes.zero(),
    ],
    ids=lambda p: type(p).__name__,
)
def test_different_kinds_do_not_add(part):
    other = ArmSummary.zero() if not isinstance(part, ArmSummary) else Moments.zero(2)
    with pytest.raises(TypeError):
        part + other
    with pytest.raises(TypeError):
        part + 1.5
    with pytest.raises(TypeError):
        1 + part
    assert 0 + part is part


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        EventValues(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="differ in length"):
        Histogram(LogBins(), np.zeros(3, dtype=np.int64), np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="differ in length"):
        EventTimes(np.zeros(3), np.zeros(2, dtype=bool))


def _account_values(rng: np.random.Generator, accounts: int) -> AccountValues:
    sizes = rng.integers(1, 30, accounts)
    account = np.repeat(np.arange(accounts), sizes)
    scale = np.exp(0.3 * rng.standard_normal(accounts))[account]
    return AccountValues(rng.lognormal(7.0, 0.5, account.size) * scale, account, accounts)


def _split_by_account(arm: AccountValues, cut: int) -> tuple[AccountValues, AccountValues]:
    first = arm.account < cut
    return (
        AccountValues(arm.values[first], arm.account[first], cut),
        AccountValues(arm.values[~first], arm.account[~first] - cut, arm.accounts - cut),
    )


def test_account_values_split_by_account_merge_to_the_whole():
    """Parts of an arm split by account add to an arm whose account quantile test (exact
    re-assignments, bootstrap) equals the whole's: same values, same accounts."""
    rng = np.random.default_rng(31)
    control, treatment = _account_values(rng, 6), _account_values(rng, 5)
    merged_c = sum(_split_by_account(control, 2), AccountValues.zero())
    merged_t = sum(_split_by_account(treatment, 4), AccountValues.zero())
    assert (merged_c.accounts, merged_c.events) == (control.accounts, control.events)
    whole = account_quantile_test(control, treatment, 0.9, resamples=500, seed=3)
    parts = account_quantile_test(merged_c, merged_t, 0.9, resamples=500, seed=3)
    assert parts.exact and whole.exact
    assert parts.p_value == pytest.approx(whole.p_value, abs=1e-12)
    assert parts.ci == pytest.approx(whole.ci, rel=1e-12)
    with pytest.raises(ValueError, match="strata"):
        control + dataclasses.replace(treatment, strata=np.zeros(treatment.accounts))
