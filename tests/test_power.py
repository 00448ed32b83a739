"""Power and sample size: Monte Carlo check, closed-form relations, CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as st

from abkit.designs.accounts import account_sd
from abkit.dev.simulate import simulate
from abkit.stats.cluster import AccountArm
from abkit.stats.power import detectable_effect, power_at, units_needed
from abkit_cli.main import cli
from tests.conftest import write_cli_files


def test_recommended_accounts_reach_the_target_power_by_simulation():
    effect, sd = 0.05, 0.08
    k = units_needed(effect, sd, 0.05, 0.8)
    assert power_at(k, effect, sd) >= 0.8 > power_at(k - 1, effect, sd)
    rng = np.random.default_rng(3)
    c = rng.normal(0.0, sd, (20_000, k))
    t = rng.normal(effect, sd, (20_000, k))
    p = st.ttest_ind(t, c, axis=1).pvalue
    assert (p < 0.05).mean() == pytest.approx(power_at(k, effect, sd), abs=0.01)


def test_large_samples_approach_the_normal_formula():
    effect, sd = 0.01, 0.3
    normal = 2 * (st.norm.ppf(0.975) + st.norm.ppf(0.8)) ** 2 * sd**2 / effect**2
    assert units_needed(effect, sd) == pytest.approx(normal, rel=0.002)
    assert detectable_effect(units_needed(effect, sd), sd) == pytest.approx(effect, rel=1e-3)


def test_between_account_sd_matches_the_cluster_variance():
    """CR0 variance of the user-weighted ratio = sd² (k − 1)/k² with the linearised sd."""
    rng = np.random.default_rng(1)
    y = rng.integers(5, 200, 12).astype(float)
    x = rng.binomial(y.astype(int), 0.3).astype(float)
    arm = AccountArm(x, y)
    sd, _ = account_sd([arm], "user")
    r = x.sum() / y.sum()
    cr0 = ((x - r * y) ** 2).sum() / y.sum() ** 2
    assert cr0 == pytest.approx(sd**2 * 11 / 144, rel=1e-12)


def test_cli_power_from_a_b2b_export(tmp_path):
    e = simulate(mode="b2b", users=4_000, accounts=20, days=6, enrol_days=2, seed=3)
    files = write_cli_files(
        tmp_path,
        e,
        '[experiment]\naccount = "account_id"\n[[metrics]]\n'
        'name = "share"\ntype = "ratio"\nnumerator = "share"\n'
        'denominator = "ai_output"\n',
    )
    out = CliRunner().invoke(
        cli, ["power", *files, "--mode", "b2b", "--effect", "0.2", "--relative", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    import json

    d = json.loads(out.output)
    assert d["unit"] == "accounts" and d["current_per_arm"] == 10
    assert d["needed_per_arm"] == units_needed(d["effect"], d["sd"])
    assert math.isfinite(d["power_now"])


def test_cli_power_with_a_given_sd_needs_no_data():
    out = CliRunner().invoke(
        cli,
        [
            "power",
            "--mode",
            "b2b",
            "--sd",
            "0.03",
            "--baseline",
            "0.1",
            "--effect",
            "0.1",
            "--relative",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "accounts per arm" in out.output


def test_b2b_power_refuses_a_metric_without_an_account_spread():
    """A time to value (or a quantile) has no spread of account values to size from: a
    clear refusal, where the spread came out NaN and failed inside the sizing."""
    import abkit

    e = simulate(mode="b2b", users=3_000, accounts=16, days=6, enrol_days=2, seed=4)
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "metrics": [{"name": "ttv", "type": "time_to_value", "event": "error"}],
    }
    with pytest.raises(abkit.AbkitInputError, match="B2B power analysis sizes"):
        abkit.power_analysis(e.assignments, config, events=e.events, effect=1.0)
