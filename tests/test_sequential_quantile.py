"""Always-valid quantile sequences (abkit.stats.sequential_quantile) against an
independent implementation (Howard & Ramdas' package ``confseq``, skipped when it is
not installed, except under CI=true), the mixture's definition integrated
numerically, the normal-mixture closed form it tends to, and the fixed-horizon
clustered test it linearises."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy import stats as st

from abkit.stats.quantile import EventValues, Histogram, LogBins, quantile_estimate
from abkit.stats.sequential_quantile import (
    BetaBinomialMixture,
    clustered_quantile_cs,
    density_at_quantile,
    quantile_ab,
    quantile_ab_p_value,
    quantile_ab_path,
    quantile_cs,
    quantile_influence,
)
from tests.engines import required

ALPHA = 0.05
GRID = [(q, n, t) for q in (0.5, 0.95, 0.99) for n, t in ((100, 50), (1000, 500), (6000, 6000))]


def _confseq(module: str = "confseq") -> Any:
    """Howard & Ramdas' package; .ci/run builds it (it needs Boost's headers), so a
    missing one fails under CI=true instead of skipping."""
    return required(module)


# --- the boundary ---------------------------------------------------------------------


@pytest.mark.parametrize(("q", "n", "target"), [*GRID, (0.95, 50_000, 3000)])
def test_mixture_and_boundary_match_confseq(q, n, target):
    boundaries = _confseq("confseq.boundaries")
    mixture = BetaBinomialMixture.tuned(q, target, ALPHA)
    v, v_opt = q * (1 - q) * n, q * (1 - q) * target
    for s in (-0.3 * v**0.5, 0.0, 1.0, 2.5 * v**0.5):
        ref = boundaries.beta_binomial_log_mixture(s, v, v_opt, q, 1 - q, ALPHA, False)
        assert float(mixture.log_value(s, n)) == pytest.approx(ref, rel=1e-9, abs=1e-9)
    s_lo, s_hi = mixture.bounds(n, ALPHA)
    # confseq's bound for the lower side is the upper one of the mirrored increments
    ref_hi = boundaries.beta_binomial_mixture_bound(v, ALPHA, v_opt, q, 1 - q, ALPHA, False)
    ref_lo = boundaries.beta_binomial_mixture_bound(v, ALPHA, v_opt, 1 - q, q, ALPHA, False)
    assert -s_lo == pytest.approx(ref_lo, rel=1e-9)
    if ref_hi < v / q * (1 - 1e-9):  # confseq returns v/g when 1/alpha is out of reach
        assert s_hi == pytest.approx(ref_hi, rel=1e-9)
    else:
        assert s_hi == math.inf


@pytest.mark.parametrize(("q", "n", "k"), [(0.5, 40, 13), (0.95, 200, 196), (0.99, 300, 290)])
def test_mixture_is_the_beta_mixture_of_bernoulli_likelihood_ratios(q, n, k):
    """The closed form against its definition, ∫ (θ/q)^k ((1−θ)/(1−q))^(n−k) dBeta(θ;
    r/(1−q), r/q), integrated numerically (no confseq needed)."""
    mixture = BetaBinomialMixture.tuned(q, 100, ALPHA)
    a, b = mixture.r / (1 - q), mixture.r / q
    log_lr = lambda t: k * math.log(t / q) + (n - k) * math.log((1 - t) / (1 - q))  # noqa: E731
    mode = min(max(k / n, 1e-6), 1 - 1e-6)
    peak = log_lr(mode) + st.beta.logpdf(mode, a, b)

    def integrand(t: float) -> float:
        return math.exp(log_lr(t) + st.beta.logpdf(t, a, b) - peak)

    value, _ = integrate.quad(integrand, 0, 1, points=[mode], epsabs=0, epsrel=1e-12, limit=500)
    expected = math.log(value) + peak
    assert float(mixture.log_value(k - n * q, n)) == pytest.approx(expected, rel=1e-9)


def test_boundary_tends_to_the_normal_mixture_closed_form():
    """For n ≫ target the beta-binomial boundary approaches Robbins' normal-mixture
    boundary √((v + ρ)(log(1 + v/ρ) + 2 log(1/α))) with ρ = r + q(1 − q), so the
    sequence's half-width shrinks like √(log n / n); at n = target it is a modest
    multiple of the fixed-horizon z·√(q(1 − q)n)."""
    q, target = 0.95, 6000
    mixture = BetaBinomialMixture.tuned(q, target, ALPHA)
    rho = mixture.r + q * (1 - q)
    ratios = []
    for n in (10**4, 10**6, 10**8):
        v = q * (1 - q) * n
        normal = math.sqrt((v + rho) * (math.log(1 + v / rho) + 2 * math.log(1 / ALPHA)))
        ratios.append(mixture.bounds(n, ALPHA)[1] / normal)
    assert abs(ratios[-1] - 1) < 2e-3
    assert abs(ratios[-1] - 1) < abs(ratios[0] - 1)
    z_width = st.norm.ppf(1 - ALPHA / 2) * math.sqrt(q * (1 - q) * target)
    s_lo, s_hi = mixture.bounds(target, ALPHA)
    assert 1.0 < (s_hi - s_lo) / (2 * z_width) < 1.6


# --- one arm ---------------------------------------------------------------------------


def test_per_arm_sequence_matches_confseq_at_every_look():
    """confseq's fixed-quantile bounds (its demo/quantiles.py construction from
    ``beta_binomial_mixture_bound``) give the same order statistics at 30 looks."""
    boundaries = _confseq("confseq.boundaries")
    rng = np.random.default_rng(11)
    values = rng.lognormal(0.0, 0.5, 30 * 200)
    for q in (0.5, 0.95, 0.99):
        for look in range(1, 31):
            x = values[: 200 * look]
            t = x.size
            v, v_opt = q * (1 - q) * t, q * (1 - q) * 6000
            up = boundaries.beta_binomial_mixture_bound(v, ALPHA, v_opt, q, 1 - q, ALPHA, False)
            low = boundaries.beta_binomial_mixture_bound(v, ALPHA, v_opt, 1 - q, q, ALPHA, False)
            xs = np.sort(x)
            lower_index = math.floor(t * (q - low / t) + 1)
            upper_index = math.ceil(t * (q + up / t))
            cs = quantile_cs(x, q, ALPHA, target_n=6000)
            assert cs.lower_rank == lower_index
            assert cs.lower == (xs[lower_index - 1] if lower_index >= 1 else -math.inf)
            if up < v / q * (1 - 1e-9):
                assert cs.upper_rank == upper_index
                assert cs.upper == (xs[upper_index - 1] if upper_index <= t else math.inf)
            else:  # no upper end yet (confseq's demo would read X_(t) there)
                assert cs.upper == math.inf


def test_sequence_reads_order_statistics_and_is_open_ended_when_small():
    x = np.random.default_rng(1).lognormal(size=120)
    cs = quantile_cs(x, 0.99, target_n=1000)
    assert cs.upper == math.inf and cs.upper_rank == 121
    xs = np.sort(x)
    assert cs.lower == xs[cs.lower_rank - 1]
    assert cs.estimate == float(np.quantile(x, 0.99, method="inverted_cdf"))
    big = quantile_cs(np.random.default_rng(2).lognormal(size=20_000), 0.5, target_n=20_000)
    assert big.lower <= big.estimate <= big.upper
    assert big.lower < 1.0 < big.upper  # the true median of a standard lognormal


def test_histogram_route_reads_the_bins_of_the_raw_order_statistics():
    rng = np.random.default_rng(12)
    bins = LogBins(0.01)
    days = [rng.lognormal(0.0, 0.5, 300) for _ in range(7)]
    merged = sum((Histogram.of(d, bins) for d in days), Histogram.zero(bins))
    values = np.concatenate(days)
    assert quantile_cs(merged, 0.95, target_n=2100) == quantile_cs(
        Histogram.of(values, bins), 0.95, target_n=2100
    )
    raw = quantile_cs(values, 0.95, target_n=2100)
    binned = quantile_cs(merged, 0.95, target_n=2100)
    assert (binned.lower_rank, binned.upper_rank) == (raw.lower_rank, raw.upper_rank)
    for b, r in ((binned.lower, raw.lower), (binned.upper, raw.upper)):
        assert b == float(bins.values(bins.keys(np.array([r])))[0])
        assert abs(b / r - 1) <= bins.error


# --- two arms --------------------------------------------------------------------------


def _pairs():
    rng = np.random.default_rng(13)
    out = []
    for q, n1, n2, shift in [
        (0.5, 3000, 2500, 0.03),
        (0.5, 1500, 1500, 0.05),
        (0.95, 4000, 3500, 0.06),
        (0.95, 2000, 2600, 0.1),
        (0.99, 6000, 6000, 0.1),
        (0.99, 3000, 2000, 0.0),
    ]:
        out.append((q, rng.lognormal(0.0, 0.5, n1), rng.lognormal(shift, 0.5, n2)))
    return out


def test_two_sample_p_value_matches_confseq():
    quantiles = _confseq("confseq.quantiles")
    inside = 0
    for q, a, b in _pairs():
        for target in (500, 3000):
            ref = quantiles.quantile_ab_p_value(a, b, q, target, ALPHA)
            mine = quantile_ab_p_value(a, b, q, target_n=target)
            assert mine == pytest.approx(ref, rel=1e-9, abs=1e-12)
            inside += 1e-4 < ref < 0.999
    assert inside >= 4  # the comparison is not only of p-values pinned at 0 or 1


def test_two_sample_sequence_ends_are_where_confseq_rejects():
    """The sequence's ends for the difference (and ratio) are the θ0 at which
    confseq's p-value of arm T shifted by −θ0 (divided by θ0) crosses α."""
    quantiles = _confseq("confseq.quantiles")
    for q, a, b in _pairs()[:4]:
        r = quantile_ab(a, b, q, ALPHA, target_n=3000)
        for end, outside in ((r.ci_high, 1), (r.ci_low, -1)):
            step = 1e-7 * max(1.0, abs(end))
            assert quantiles.quantile_ab_p_value(a, b - end, q, 3000, ALPHA) > ALPHA
            assert (
                quantiles.quantile_ab_p_value(a, b - end - outside * step, q, 3000, ALPHA) <= ALPHA
            )
        ratio = quantile_ab(a, b, q, ALPHA, target_n=3000, scale="ratio")
        assert quantiles.quantile_ab_p_value(a, b / ratio.ci_high, q, 3000, ALPHA) > ALPHA
        above = ratio.ci_high * (1 + 1e-7)
        assert quantiles.quantile_ab_p_value(a, b / above, q, 3000, ALPHA) <= ALPHA


@pytest.mark.parametrize("scale", ["difference", "ratio"])
def test_interval_and_p_values_agree_at_every_theta(scale):
    rng = np.random.default_rng(14)
    for q, a, b in _pairs():
        r = quantile_ab(a, b, q, ALPHA, target_n=3000, scale=scale)
        assert r.ci_low <= r.estimate <= r.ci_high
        width = r.ci_high - r.ci_low
        eps = 1e-9 * max(1.0, abs(r.ci_low), abs(r.ci_high))
        ends = [r.ci_low + eps, r.ci_high - eps, r.ci_low - eps, r.ci_high + eps]
        grid = np.concatenate([rng.uniform(r.ci_low - width, r.ci_high + width, 40), ends])
        if scale == "ratio":
            grid = grid[grid > 0]
        for theta in grid:
            p = quantile_ab_p_value(a, b, q, float(theta), scale, target_n=3000)
            assert (p > ALPHA) == (r.ci_low <= theta <= r.ci_high), (q, theta, p)
        assert (r.p_value > ALPHA) == (r.ci_low <= (1.0 if scale == "ratio" else 0.0) <= r.ci_high)


def test_guardrail_passes_exactly_when_the_upper_end_is_below_the_margin():
    for q, a, b in _pairs():
        base = quantile_ab(a, b, q, ALPHA, target_n=3000)
        for margin in np.linspace(base.ci_low, base.ci_high + 0.3, 25):
            r = quantile_ab(a, b, q, ALPHA, target_n=3000, margin=float(margin))
            assert r.ci_high == base.ci_high
            assert (r.p_value_margin < ALPHA) == (r.ci_high < margin)


def test_path_uses_one_tuning_and_histograms_add_per_look():
    rng = np.random.default_rng(15)
    bins = LogBins(0.001)
    days_c = [rng.lognormal(0.0, 0.5, 400) for _ in range(4)]
    days_t = [rng.lognormal(0.1, 0.5, 400) for _ in range(4)]
    hist_c = [Histogram.of(d, bins) for d in days_c]
    hist_t = [Histogram.of(d, bins) for d in days_t]
    looks_c = [sum(hist_c[: k + 1], Histogram.zero(bins)) for k in range(4)]
    looks_t = [sum(hist_t[: k + 1], Histogram.zero(bins)) for k in range(4)]
    path = quantile_ab_path(looks_c, looks_t, 0.5, target_n=1600, margin=0.2)
    raw_c = [np.concatenate(days_c[: k + 1]) for k in range(4)]
    raw_t = [np.concatenate(days_t[: k + 1]) for k in range(4)]
    for look, r in enumerate(path):
        one = quantile_ab(
            Histogram.of(raw_c[look], bins),
            Histogram.of(raw_t[look], bins),
            0.5,
            ALPHA,
            1600,
            margin=0.2,
        )
        assert r == one
        exact = quantile_ab(raw_c[look], raw_t[look], 0.5, ALPHA, 1600)
        tol = 2 * bins.error * 3.0  # values near the median ~1, binned within bins.error
        assert abs(r.ci_high - exact.ci_high) < tol and abs(r.ci_low - exact.ci_low) < tol


def test_invalid_inputs_are_refused():
    x = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="no values"):
        quantile_cs(np.array([]), 0.5)
    with pytest.raises(ValueError, match="finite"):
        quantile_cs(np.array([1.0, np.nan]), 0.5)
    with pytest.raises(ValueError, match="strictly between"):
        quantile_cs(x, 1.0)
    with pytest.raises(ValueError, match="positive values"):
        quantile_ab(np.array([0.0, 1.0]), x, 0.5, scale="ratio")
    with pytest.raises(ValueError, match="different numbers of looks"):
        quantile_ab_path([x], [x, x], 0.5)


# --- clustered events -----------------------------------------------------------------


def _clustered(rng, users, shift=0.0, first=0):
    n = rng.integers(1, 21, users)
    ids = np.repeat(np.arange(first, first + users), n)
    slow = rng.lognormal(0.0, 0.5, users)
    return EventValues(rng.lognormal(shift, 0.5, n.sum()) * np.repeat(slow, n), ids)


def test_influence_variance_is_the_fixed_horizon_clustered_variance():
    rng = np.random.default_rng(16)
    arm = _clustered(rng, 800)
    for q in (0.5, 0.95):
        e = quantile_estimate(arm.values, arm.units, q)
        _, psi = quantile_influence(arm.values, arm.units, e)
        k = psi.size
        assert abs(psi.sum()) < 1e-9 * np.abs(psi).sum()
        assert math.sqrt(k / (k - 1) * np.sum(psi**2) / k**2) == pytest.approx(e.se, rel=1e-12)


def test_density_at_the_quantile_is_consistent():
    """Woodruff's density, implied by the fixed-horizon standard error, against the
    lognormal's own density at its p50 and p95."""
    x = np.random.default_rng(17).lognormal(0.0, 0.5, 400_000)
    dist = st.lognorm(0.5)
    for q in (0.5, 0.95):
        e = quantile_estimate(x, np.arange(x.size), q, clustered=False)
        assert density_at_quantile(e) == pytest.approx(dist.pdf(dist.ppf(q)), rel=0.03)


@pytest.mark.parametrize("scale", ["difference", "ratio"])
def test_clustered_sequence_is_the_asymptotic_cs_of_the_linearisation(scale):
    """The half-width is Waudby-Smith et al.'s σ̂√(2(nρ²+1)/(n²ρ²)·log(√(nρ²+1)/α)),
    with ρ² from u − log u = 1 − 2 log α solved here by root finding (not Lambert W)
    and σ̂² = n·V from the arms' clustered standard errors."""
    rng = np.random.default_rng(18)
    c = t = EventValues.zero()
    looks_c, looks_t = [], []
    for k in range(5):
        c = c + _clustered(rng, 150, 0.0, 150 * k)
        t = t + _clustered(rng, 150, 0.1, 150 * k)
        looks_c.append(quantile_estimate(c.values, c.units, 0.95))
        looks_t.append(quantile_estimate(t.values, t.units, 0.95))
    path = clustered_quantile_cs(looks_c, looks_t, ALPHA, target_n=1500, scale=scale)
    u = optimize.brentq(lambda u: u - math.log(u) - (1 - 2 * math.log(ALPHA)), 1.0001, 100)
    rho2 = (u - 1) / 1500
    for k, (ec, et) in enumerate(zip(looks_c, looks_t, strict=True)):
        if scale == "ratio":
            est = math.log(et.estimate / ec.estimate)
            var = (ec.se / ec.estimate) ** 2 + (et.se / et.estimate) ** 2
        else:
            est, var = et.estimate - ec.estimate, ec.se**2 + et.se**2
        n = ec.units + et.units
        half = math.sqrt(n * var) * math.sqrt(
            2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / ALPHA)
        )
        assert path.estimate[k] == pytest.approx(est, rel=1e-12)
        assert path.ci_high[k] - est == pytest.approx(half, rel=1e-9)
    assert "linearisation" in path.method


def test_clustered_histogram_route_is_within_the_bins():
    from abkit.stats.arm import ArmSummary
    from abkit.stats.quantile import binned_quantile_key

    rng = np.random.default_rng(19)
    bins = LogBins(0.001)

    def binned(arm, q):
        h = Histogram.of(arm.values, bins)
        key = binned_quantile_key(h.keys, h.counts, q)
        codes = np.unique(arm.units, return_inverse=True)[1]
        below = np.bincount(codes[bins.keys(arm.values) <= key]).astype(float)
        per_unit = np.bincount(codes).astype(float)
        below = np.pad(below, (0, per_unit.size - below.size))
        return h.estimate(q, ArmSummary.from_values(below, per_unit))

    c = t = EventValues.zero()
    exact_c, exact_t, hist_c, hist_t = [], [], [], []
    for k in range(4):
        c = c + _clustered(rng, 200, 0.0, 200 * k)
        t = t + _clustered(rng, 200, 0.0, 200 * k)
        exact_c.append(quantile_estimate(c.values, c.units, 0.95))
        exact_t.append(quantile_estimate(t.values, t.units, 0.95))
        hist_c.append(binned(c, 0.95))
        hist_t.append(binned(t, 0.95))
    exact = clustered_quantile_cs(exact_c, exact_t, ALPHA, 1600)
    hist = clustered_quantile_cs(hist_c, hist_t, ALPHA, 1600)
    scale = max(e.estimate for e in exact_c)
    np.testing.assert_allclose(hist.ci_high, exact.ci_high, atol=0.05 * scale)
    np.testing.assert_allclose(hist.estimate, exact.estimate, atol=2 * bins.error * scale)


def test_clustered_sequence_is_nan_where_an_arm_has_no_standard_error():
    few = quantile_estimate(np.arange(10.0), np.arange(10), 0.99)
    ok = quantile_estimate(np.arange(1000.0), np.arange(1000) % 50, 0.99)
    path = clustered_quantile_cs([few, ok], [ok, ok], ALPHA, 200)
    assert math.isnan(path.ci_low[0]) and math.isnan(path.p_value[0])
    assert np.isfinite(path.ci_low[1])
