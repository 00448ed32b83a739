"""B2B calibration at 10 accounts per arm (reduced size; full table in docs/b2b.md)."""

from __future__ import annotations

import pytest
from scipy import stats as st

from abkit.dev.calibration import b2b_study
from tests.conftest import mc_reps

pytestmark = pytest.mark.calibration


def test_randomisation_test_holds_its_size_where_the_naive_cluster_z_does_not():
    reps = mc_reps(600)
    res = b2b_study(10, reps, seed=10)
    upper = st.binom.ppf(0.995, reps, 0.05) / reps
    print(
        f"\n10 accounts/arm, {reps} A/A runs: "
        + ", ".join(f"{m} {v['reject']:.3f}" for m, v in res.items())
    )
    assert res["permutation"]["reject"] <= upper
    assert res["cluster_z"]["reject"] > upper
    assert res["percentile"]["reject"] > res["permutation"]["reject"]


def test_default_interval_covers_at_least_093_at_ten_accounts_per_arm():
    reps = mc_reps(300)
    res = b2b_study(10, reps, effect=0.05, seed=20, invert=True)
    lower = st.binom.ppf(0.005, reps, 0.93) / reps
    print(
        f"\n10 accounts/arm, {reps} runs with effect +0.05: permutation-interval coverage "
        f"{res['permutation']['cover']:.3f}"
    )
    assert res["permutation"]["cover"] >= lower


def test_lift_interval_by_test_inversion_covers_where_the_bootstrap_does_not():
    from abkit.dev.calibration import b2b_lift_coverage

    reps = mc_reps(300)
    res = b2b_lift_coverage(10, reps, lift=0.2, seed=10)
    lower = st.binom.ppf(0.005, reps, 0.93) / reps
    print(f"\n10 accounts/arm, {reps} runs with lift +20 %: lift-interval coverage {res}")
    assert res["randomization"] >= lower
    assert res["bootstrap_percentile"] < res["randomization"]


@pytest.mark.parametrize("per_arm", [6, 10])
@pytest.mark.parametrize("relative", [True, False])
def test_b2b_guardrail_holds_its_size_at_the_margin(per_arm, relative):
    from abkit.dev.calibration import b2b_guardrail_size

    reps = mc_reps(400)
    size = b2b_guardrail_size(per_arm, reps, 0.1 if relative else 0.03, relative, seed=per_arm)
    upper = st.binom.ppf(0.995, reps, 0.05) / reps
    print(f"\n{per_arm} accounts/arm, {reps} runs at the margin: pass rate {size:.3f}")
    assert size <= upper
