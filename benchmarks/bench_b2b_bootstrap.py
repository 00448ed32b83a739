"""B2B benchmark: 1M user rows in 60 accounts → account sums → 10,000-resample bootstrap.

Usage: python benchmarks/bench_b2b_bootstrap.py

Times the Polars roll-up of user rows to account sums, then (after aggregation) the
stratified bootstrap with 10,000 resamples, the randomisation test (10,000 Monte
Carlo re-assignments plus test inversion) and the CR2 cross-check.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from timing import best_of

from abkit.stats.bootstrap import account_bootstrap
from abkit.stats.cluster import AccountArm, cr2_test
from abkit.stats.randomization import randomization_test


def main() -> None:
    rng = np.random.default_rng(0)
    accounts, users = 60, 1_000_000
    seats = rng.lognormal(0, 1.2, accounts)
    account = rng.choice(accounts, users, p=seats / seats.sum())
    arm = rng.permutation(np.arange(accounts) % 2)
    rows = pl.DataFrame(
        {
            "account_id": account,
            "variant": np.where(arm[account] == 1, "treatment", "control"),
            "shares": rng.poisson(0.8, users),
            "outputs": rng.poisson(8.0, users),
        }
    )
    sums, _ = best_of(
        "roll-up of 1M user rows to 60 account sums (Polars)",
        lambda: rows.group_by("variant", "account_id").agg(
            pl.col("shares").sum(), pl.col("outputs").sum()
        ),
        repeats=5,
        unit="ms",
    )
    arms = {
        v: AccountArm(g["shares"].to_numpy().astype(float), g["outputs"].to_numpy().astype(float))
        for (v,), g in sums.sort("account_id").group_by("variant")
    }
    c, t = arms["control"], arms["treatment"]
    best_of(
        "bootstrap, 10,000 resamples (percentile, BCa, bootstrap-t)",
        lambda: account_bootstrap(c, t, "user", 10_000, seed=1),
        repeats=5,
        unit="ms",
    )
    best_of(
        "randomisation test, 10,000 re-assignments + interval inversion",
        lambda: randomization_test(c, t, "user", seed=1),
        repeats=3,
        unit="ms",
    )
    best_of("CR2 + Bell-McCaffrey", lambda: cr2_test(c, t, "user"), repeats=5, unit="ms")


if __name__ == "__main__":
    main()
