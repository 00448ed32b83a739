"""B2B quantile benchmark: p95 of 300k latencies in 40 accounts, account randomisation.

Usage: python benchmarks/bench_b2b_quantile.py [--events N] [--accounts K]

Times, in one run (so that a busy machine slows both alike):

* the statistic of 1,000 re-assignments (both arms' p95 for each) by abkit's one
  vectorised pass, against numpy's ``np.quantile(method="inverted_cdf")`` called per
  re-assignment and arm — the reference, whose answers must be identical;
* the whole B2B test as ``abkit analyze`` runs it per metric and treatment: 10,000
  re-assignments, the effect's and the lift's intervals by test inversion, and a
  10,000-resample account bootstrap.
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import best_of

from abkit.stats.account_quantile import AccountValues, account_quantile_test, quantile_shifts


def _arm(rng: np.random.Generator, accounts: int, events: int) -> AccountValues:
    weights = rng.lognormal(0, 1.2, accounts)
    account = rng.choice(accounts, events, p=weights / weights.sum())
    scale = rng.lognormal(0, 0.3, accounts)[account]
    return AccountValues(rng.lognormal(np.log(1200), 0.5, events) * scale, account, accounts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    half = args.accounts // 2
    control, treatment = _arm(rng, half, args.events // 2), _arm(rng, half, args.events // 2)
    shifts = quantile_shifts(control, treatment, 0.95, max_exact=0, draws=1_000, seed=1)

    def vectorised() -> np.ndarray:
        treated_q, control_q = shifts.quantiles(0.0, "additive")
        return (treated_q - control_q)[:-1]  # the last row is the observed assignment

    values = np.concatenate([control.values, treatment.values])
    account = np.concatenate([control.account, treatment.account + half])

    def per_reassignment() -> np.ndarray:
        out = np.empty(shifts.assign.shape[0])
        for r, treated in enumerate(shifts.assign):
            in_treatment = treated[account]
            out[r] = np.quantile(values[in_treatment], 0.95, method="inverted_cdf") - np.quantile(
                values[~in_treatment], 0.95, method="inverted_cdf"
            )
        return out

    print(f"{args.events:,} events in {args.accounts} accounts, q = 0.95")
    ours, fast = best_of("abkit, 1,000 re-assignments in one pass", vectorised)
    reference, slow = best_of("numpy np.quantile per re-assignment and arm", per_reassignment, 1)
    assert np.array_equal(ours, reference), "the two computations disagree"
    print(f"identical statistics; abkit takes {fast / slow:.3f}x the reference's time")
    best_of(
        "whole test: 10,000 re-assignments, both intervals, 10,000-resample bootstrap",
        lambda: account_quantile_test(control, treatment, 0.95, seed=1),
        1,
    )


if __name__ == "__main__":
    main()
