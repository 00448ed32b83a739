"""Net revenue retention from an accounts table, analysed at account level."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.dev.simulate import simulate
from abkit.io.exclusions import RowCount
from abkit.result import AccountDetail
from abkit_cli.main import cli
from tests.conftest import write_cli_files

CONFIG = {
    "experiment": {"account": "account_id", "mode": "b2b"},
    "b2b": {"resamples": 1_000},
    "metrics": [{"name": "nrr", "type": "nrr"}],
}


@pytest.fixture(scope="module")
def export():
    return simulate(mode="b2b", users=3_000, accounts=20, days=5, enrol_days=2, seed=13)


def _accounts(export, extra_rows=True):
    ids = export.assignments["account_id"].unique().sort()
    rng = np.random.default_rng(1)
    start = rng.lognormal(10, 1, ids.len())
    table = pl.DataFrame(
        {"account_id": ids, "arr_start": start, "arr_end": start * rng.normal(1.05, 0.1, ids.len())}
    )
    if extra_rows:
        table = pl.concat(
            [
                table,
                pl.DataFrame(
                    {"account_id": [999, 1000], "arr_start": [1e4, 0.0], "arr_end": [1e4, 5e3]}
                ),
            ]
        )
    return table


def test_nrr_is_arr_weighted_and_counts_unusable_rows(export):
    accounts = _accounts(export)
    res = abkit.analyze(export.assignments, CONFIG, events=export.events, accounts=accounts)
    r = res.results[0]
    joined = accounts.join(
        export.assignments.group_by("account_id").agg(pl.col("variant").first()), on="account_id"
    )
    by = dict(
        joined.group_by("variant")
        .agg(pl.col("arr_end").sum() / pl.col("arr_start").sum())
        .iter_rows()
    )
    assert r.control_value == pytest.approx(by["control"], rel=1e-12)
    assert r.treatment_value == pytest.approx(by["treatment"], rel=1e-12)
    reasons = {e.reason: e.rows for e in res.exclusions if e.table == "accounts"}
    assert reasons == {"account not in the experiment (or contaminated)": 2}
    real = export.assignments["account_id"].n_unique()
    assert res.rows["accounts"] == RowCount(read=real + 2, used=real, excluded=2)
    assert isinstance(r.b2b, AccountDetail) and r.b2b.randomization is not None
    assert r.b2b.randomization.p_value == r.p_value


def test_nrr_needs_the_accounts_table_and_b2b_mode(export, tmp_path):
    with pytest.raises(abkit.AbkitInputError, match="needs an accounts table"):
        abkit.analyze(export.assignments, CONFIG, events=export.events)
    _accounts(export, extra_rows=False).write_csv(tmp_path / "accounts.csv")
    files = write_cli_files(
        tmp_path,
        export,
        '[experiment]\naccount = "account_id"\n[[metrics]]\nname = "nrr"\ntype = "nrr"\n',
    )
    args = ["analyze", *files, "--accounts", str(tmp_path / "accounts.csv")]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 2 and "account-level metric" in out.output
    out = CliRunner().invoke(cli, [*args, "--mode", "b2b"])
    assert out.exit_code == 0, out.output
    assert "nrr" in out.output
