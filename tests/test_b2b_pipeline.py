"""B2B mode end to end: account roll-up, contamination, refusals, and the headline
claim that user-level tests are anti-conservative on account-randomised data."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit_cli.main import cli
from tests.conftest import write_cli_files

SHARE = {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
B2B = {
    "experiment": {"account": "account_id", "mode": "b2b"},
    "metrics": [SHARE],
    "b2b": {"resamples": 2_000},
}


@pytest.fixture(scope="module")
def export():
    return simulate(mode="b2b", users=6_000, accounts=24, days=10, enrol_days=3, seed=7)


def test_account_sums_reproduce_the_user_weighted_estimate(export):
    b2b = abkit.analyze(export.assignments, B2B, events=export.events).results[0]
    b2c = abkit.analyze(export.assignments, {"metrics": [SHARE]}, events=export.events).results[0]
    assert b2b.control_value == pytest.approx(b2c.control_value, rel=1e-12)
    assert b2b.effect == pytest.approx(b2c.effect, rel=1e-12)
    assert b2b.method.startswith("account-level randomisation test")
    assert b2b.b2b is not None
    assert sum(a.accounts for a in b2b.b2b.arms.values()) == 24


def test_account_weighting_is_the_mean_of_account_ratios(export):
    config = {**B2B, "b2b": {"weighting": "account", "resamples": 1_000}}
    r = abkit.analyze(export.assignments, config, events=export.events).results[0]
    users = export.events.join(export.assignments, on="user_id")
    per_account = users.group_by("account_id", "variant").agg(
        ((pl.col("event") == "share").sum() / (pl.col("event") == "ai_output").sum()).alias("r")
    )
    means = dict(per_account.group_by("variant").agg(pl.col("r").mean()).iter_rows())
    assert r.control_value == pytest.approx(means["control"], rel=1e-12)
    assert r.treatment_value == pytest.approx(means["treatment"], rel=1e-12)


def test_srm_counts_accounts_in_b2b_mode(export):
    res = abkit.analyze(export.assignments, B2B, events=export.events)
    assert sum(res.srm.observed.values()) == 24


def test_b2c_mode_suggests_b2b_when_accounts_are_randomised(export):
    res = abkit.analyze(
        export.assignments,
        {"experiment": {"account": "account_id"}, "metrics": [SHARE]},
        events=export.events,
    )
    assert any('mode = "b2b"' in w for w in res.warnings)


def test_contaminated_accounts_are_named_and_left_out(export):
    assignments = export.assignments.with_columns(
        pl.when((pl.col("account_id") == pl.col("account_id").min()) & (pl.col("user_id") % 2 == 0))
        .then(pl.lit("treatment"))
        .otherwise(pl.col("variant"))
        .alias("variant")
    )
    first = export.assignments["account_id"].min()
    if (export.assignments.filter(pl.col("account_id") == first)["variant"] == "treatment").all():
        assignments = assignments.with_columns(
            pl.when((pl.col("account_id") == first) & (pl.col("user_id") % 2 == 0))
            .then(pl.lit("control"))
            .otherwise(pl.col("variant"))
            .alias("variant")
        )
    res = abkit.analyze(assignments, B2B, events=export.events)
    warning = next(w for w in res.warnings if w.startswith("CONTAMINATION"))
    assert f"({first})" in warning
    detail = res.results[0].b2b
    assert detail is not None and sum(a.accounts for a in detail.arms.values()) == 23


def test_sequential_is_refused_in_b2b_mode_with_the_reason(export, tmp_path):
    files = write_cli_files(tmp_path, export, '[experiment]\naccount = "account_id"\n')
    out = CliRunner().invoke(cli, ["analyze", *files, "--mode", "b2b", "--sequential", "cs"])
    assert out.exit_code == 2
    assert "not offered in B2B mode" in out.output and "randomisation test" in out.output


def test_b2b_mode_takes_the_default_account_column_or_names_it(export, tmp_path):
    files = write_cli_files(tmp_path, export)
    out = CliRunner().invoke(cli, ["analyze", *files, "--mode", "b2b", "--format", "json"])
    assert out.exit_code == 0, out.output  # the simulated export has account_id
    assert json.loads(out.output)["experiment"]["account"] == "account_id"
    out = CliRunner().invoke(cli, ["analyze", *files, "--mode", "b2b", "--account", "org"])
    assert out.exit_code == 2 and "'org'" in out.output and "account" in out.output


def test_cli_json_has_the_b2b_block(export, tmp_path):
    files = write_cli_files(
        tmp_path,
        export,
        '[experiment]\naccount = "account_id"\nmode = "b2b"\n[b2b]\nresamples = 1000\n',
    )
    out = CliRunner().invoke(cli, ["analyze", *files, "--format", "json"])
    assert out.exit_code == 0, out.output
    block = json.loads(out.output)["results"][0]["b2b"]
    assert {"randomization", "bootstrap", "cr2", "arms", "weighting"} <= set(block)
    assert "B2B cross-checks" in CliRunner().invoke(cli, ["analyze", *files]).output


@pytest.mark.calibration
def test_user_level_tests_are_anti_conservative_where_b2b_mode_is_not():
    """A/A on simulated account-randomised exports: the B2C delta-method test rejects far
    more often than 5 %, the account randomisation test does not."""
    runs = 60
    naive = b2b = 0
    for seed in range(runs):
        e = simulate(mode="b2b", users=2_000, accounts=16, days=4, enrol_days=2, seed=100 + seed)
        naive += (
            abkit.analyze(e.assignments, {"metrics": [SHARE]}, events=e.events).results[0].p_value
            < 0.05
        )
        cfg = {**B2B, "b2b": {"resamples": 500}}
        b2b += abkit.analyze(e.assignments, cfg, events=e.events).results[0].p_value < 0.05
    print(
        f"\nA/A over {runs} simulated B2B exports: user-level delta method rejects "
        f"{naive / runs:.2f}, account randomisation test {b2b / runs:.2f}"
    )
    assert naive / runs > 0.2
    assert b2b / runs <= 0.15  # 5 % nominal; 60 runs: 99 % binomial upper bound 0.133
