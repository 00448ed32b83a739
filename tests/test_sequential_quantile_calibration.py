"""Monte Carlo calibration of the always-valid quantile sequences over 30 daily looks.

* independent log-normal latencies: time-uniform coverage of an arm's p50/p95/p99
  sequence; A/A size of the two-sample p95 test (and coverage of its sequence under
  an effect), against the fixed-horizon p95 test peeked at every look;
* events clustered by user (1–20 log-normal latencies per user, a log-normal user
  effect): A/A size of the asymptotic sequence on the user-level linearisation,
  against the fixed-horizon clustered test peeked daily and the independent-events
  sequence applied to clustered data.

CI runs ABKIT_MC_REPS-scaled reduced sizes; ``ABKIT_MC_REPS=20000 python -m pytest
-m calibration -s tests/test_sequential_quantile_calibration.py`` runs the full size
and prints the rates.  Every simulation takes a seed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from abkit.stats.quantile import EventValues, quantile_estimate, quantile_test
from abkit.stats.sequential_quantile import (
    clustered_quantile_cs,
    quantile_ab,
    quantile_ab_p_value,
    quantile_cs,
)
from tests.conftest import mc_reps

ALPHA = 0.05
LOOKS = 30
PER_LOOK = 200  # new observations per arm at each daily look
pytestmark = pytest.mark.calibration


def _upper(reps: int, rate: float) -> float:
    return float(st.binom.ppf(0.995, reps, rate) / reps)


def _lower(reps: int, rate: float) -> float:
    return float(st.binom.ppf(0.005, reps, rate) / reps)


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_arm_sequence_covers_at_every_look_on_counts(q):
    """The sequence's ranks depend only on n, so coverage of Q at every look is the
    event l_k ≤ K_k ≤ u_k − 1 for K_k = #{X ≤ Q} after look k, a binomial walk: many
    replications cost nothing."""
    reps = mc_reps() * 10
    rng = np.random.default_rng(21)
    counts = rng.binomial(PER_LOOK, q, size=(reps, LOOKS)).cumsum(axis=1)
    target = LOOKS * PER_LOOK
    ranks = [
        quantile_cs(np.arange(float(PER_LOOK * (k + 1))), q, ALPHA, target) for k in range(LOOKS)
    ]
    low = np.array([r.lower_rank for r in ranks])
    high = np.array([r.upper_rank for r in ranks])
    covered = ((counts >= low) & (counts <= high - 1)).all(axis=1).mean()
    print(f"\nq = {q}: time-uniform coverage over {LOOKS} looks {covered:.4f} ({reps} runs)")
    assert covered >= _lower(reps, 1 - ALPHA)


def test_arm_sequence_covers_lognormal_p95_at_every_look():
    reps = mc_reps(400)
    rng = np.random.default_rng(22)
    true = math.exp(0.5 * st.norm.ppf(0.95))
    covered = 0
    for _ in range(reps):
        x = rng.lognormal(0.0, 0.5, LOOKS * PER_LOOK)
        ok = True
        for k in range(1, LOOKS + 1):
            cs = quantile_cs(x[: k * PER_LOOK], 0.95, ALPHA, LOOKS * PER_LOOK)
            if not cs.lower <= true <= cs.upper:
                ok = False
                break
        covered += ok
    rate = covered / reps
    print(f"\nlog-normal p95: time-uniform coverage {rate:.4f} ({reps} runs)")
    assert rate >= _lower(reps, 1 - ALPHA)


def test_two_sample_p95_keeps_its_size_when_peeked_daily_and_the_naive_test_does_not():
    reps = mc_reps(300)
    rng = np.random.default_rng(23)
    target = LOOKS * PER_LOOK
    safe = naive = 0
    for _ in range(reps):
        a = rng.lognormal(0.0, 0.5, target)
        b = rng.lognormal(0.0, 0.5, target)
        rejected_safe = rejected_naive = False
        for k in range(1, LOOKS + 1):
            xa, xb = a[: k * PER_LOOK], b[: k * PER_LOOK]
            if not rejected_safe:
                rejected_safe = quantile_ab_p_value(xa, xb, 0.95, target_n=target) < ALPHA
            if not rejected_naive:
                units = np.arange(xa.size)
                fixed = quantile_test(
                    quantile_estimate(xa, units, 0.95, clustered=False),
                    quantile_estimate(xb, units, 0.95, clustered=False),
                    ALPHA,
                )
                rejected_naive = fixed.p_value < ALPHA
        safe += rejected_safe
        naive += rejected_naive
    print(
        f"\nA/A p95, {LOOKS} daily looks, {reps} runs: always-valid P(ever reject) "
        f"{safe / reps:.4f}; fixed-horizon test peeked daily {naive / reps:.4f}"
    )
    assert safe / reps <= _upper(reps, ALPHA)
    assert naive / reps > _upper(reps, ALPHA)


@pytest.mark.parametrize("scale", ["difference", "ratio"])
def test_two_sample_sequence_covers_a_true_effect_at_every_look(scale):
    """Treatment latencies ×1.1: the true p95 difference is 0.1·Q, the ratio 1.1."""
    reps = mc_reps(150)
    rng = np.random.default_rng(24)
    q_true = math.exp(0.5 * st.norm.ppf(0.95))
    truth = 1.1 if scale == "ratio" else 0.1 * q_true
    target = LOOKS * PER_LOOK
    covered = 0
    for _ in range(reps):
        a = rng.lognormal(0.0, 0.5, target)
        b = 1.1 * rng.lognormal(0.0, 0.5, target)
        ok = True
        for k in range(1, LOOKS + 1):
            r = quantile_ab(a[: k * PER_LOOK], b[: k * PER_LOOK], 0.95, ALPHA, target, scale)
            if not r.ci_low <= truth <= r.ci_high:
                ok = False
                break
        covered += ok
    print(f"\n{scale} ×1.1: time-uniform coverage {covered / reps:.4f} ({reps} runs)")
    assert covered / reps >= _lower(reps, 1 - ALPHA)


def _users(rng: np.random.Generator, users: int, first: int) -> EventValues:
    n = rng.integers(1, 21, users)
    slow = rng.lognormal(0.0, 0.5, users)  # the user's device / prompt length effect
    values = rng.lognormal(0.0, 0.5, int(n.sum())) * np.repeat(slow, n)
    return EventValues(values, np.repeat(np.arange(first, first + users), n))


def test_clustered_p95_keeps_its_size_when_peeked_daily():
    """100 new users per arm at each of 30 looks, each with 1–20 latencies and a
    log-normal user effect (design effect about 4 at the p95)."""
    reps = mc_reps(150)
    users = 100
    rng = np.random.default_rng(25)
    safe = naive = iid = 0
    for _ in range(reps):
        c = t = EventValues.zero()
        looks_c, looks_t = [], []
        rejected_naive = rejected_iid = False
        for k in range(LOOKS):
            c = c + _users(rng, users, users * k)
            t = t + _users(rng, users, users * k)
            ec = quantile_estimate(c.values, c.units, 0.95)
            et = quantile_estimate(t.values, t.units, 0.95)
            looks_c.append(ec)
            looks_t.append(et)
            rejected_naive = rejected_naive or quantile_test(ec, et, ALPHA).p_value < ALPHA
            if not rejected_iid:
                target = 10.5 * users * LOOKS
                rejected_iid = (
                    quantile_ab_p_value(c.values, t.values, 0.95, target_n=target) < ALPHA
                )
        path = clustered_quantile_cs(looks_c, looks_t, ALPHA, target_n=2 * users * LOOKS)
        safe += bool(np.any(path.p_value < ALPHA))
        naive += rejected_naive
        iid += rejected_iid
    print(
        f"\nclustered A/A p95, {LOOKS} daily looks, {reps} runs: asymptotic CS on the "
        f"linearisation {safe / reps:.4f}; fixed-horizon clustered test peeked daily "
        f"{naive / reps:.4f}; independent-events sequence ignoring users {iid / reps:.4f}"
    )
    assert safe / reps <= _upper(reps, ALPHA)
    assert naive / reps > _upper(reps, ALPHA)
    assert iid / reps > _upper(reps, ALPHA)


def test_power_against_the_fixed_horizon_test():
    """p95 latency ×1.06 (6,000 requests per arm by the last look): the always-valid
    test's P(reject by the last look) and median stopping look, beside the
    fixed-horizon test's power with one look at the end (the price of peeking
    safely)."""
    reps = mc_reps(150)
    rng = np.random.default_rng(26)
    target = LOOKS * PER_LOOK
    stops, fixed = [], 0
    for _ in range(reps):
        a = rng.lognormal(0.0, 0.5, target)
        b = 1.06 * rng.lognormal(0.0, 0.5, target)
        for k in range(1, LOOKS + 1):
            if (
                quantile_ab_p_value(
                    a[: k * PER_LOOK], b[: k * PER_LOOK], 0.95, None, target_n=target
                )
                < ALPHA
            ):
                stops.append(k)
                break
        units = np.arange(target)
        end = quantile_test(
            quantile_estimate(a, units, 0.95, clustered=False),
            quantile_estimate(b, units, 0.95, clustered=False),
            ALPHA,
        )
        fixed += end.p_value < ALPHA
    power = len(stops) / reps
    median = float(np.median(stops)) if stops else math.nan
    print(
        f"\np95 ×1.06, {reps} runs: always-valid power by look {LOOKS} {power:.4f} "
        f"(median stopping look {median:g}); fixed horizon at the last look {fixed / reps:.4f}"
    )
    assert fixed / reps > 0.7
    assert 0.2 < power < fixed / reps
    assert median < LOOKS


def test_clustered_p95_covers_an_effect_at_every_look_and_its_power():
    """Treatment latencies ×1.05 (every event): the pooled p95 ratio is exactly 1.05.
    The clustered sequence covers log 1.05 at every look; its power by the last look is
    shown beside the fixed-horizon clustered test's with one look at the end."""
    reps = mc_reps(100)
    users = 100
    rng = np.random.default_rng(27)
    covered = rejected = fixed = 0
    for _ in range(reps):
        c = t = EventValues.zero()
        looks_c, looks_t = [], []
        for k in range(LOOKS):
            c = c + _users(rng, users, users * k)
            arm = _users(rng, users, users * k)
            t = t + EventValues(1.05 * arm.values, arm.units)
            looks_c.append(quantile_estimate(c.values, c.units, 0.95))
            looks_t.append(quantile_estimate(t.values, t.units, 0.95))
        path = clustered_quantile_cs(looks_c, looks_t, ALPHA, 2 * users * LOOKS, "ratio")
        covered += bool(np.all((path.ci_low <= math.log(1.05)) & (math.log(1.05) <= path.ci_high)))
        rejected += bool(np.any(path.p_value < ALPHA))
        fixed += quantile_test(looks_c[-1], looks_t[-1], ALPHA).p_value < ALPHA
    print(
        f"\nclustered p95 ×1.05, {reps} runs: time-uniform coverage {covered / reps:.4f}; "
        f"always-valid power by look {LOOKS} {rejected / reps:.4f}; fixed horizon at the "
        f"last look {fixed / reps:.4f}"
    )
    assert covered / reps >= _lower(reps, 1 - ALPHA)
    assert rejected / reps < fixed / reps
