"""B2B benchmark: the whole analysis of one metric at 6-20 accounts per arm.

Usage: python benchmarks/bench_b2b_accounts.py [--repeats 3]

For each size, a simulated B2B export (abkit.simulate, 60 users per account on average)
is analysed end to end in process with ``abkit.analyze`` in B2B mode: one ratio
metric, 10,000 bootstrap resamples, the exact randomisation test (all re-assignments
up to [b2b] exact_limit = 200,000, else 10,000 Monte Carlo ones) with both interval
inversions, and CR2.  A guardrail variant of the metric adds the margin-shifted
one-sided test.  Prints min and median wall time per size, and as a reference measured
in the same run the time of ``abkit.analyze`` on the same export in B2C mode (no
account-level inference), so the ratio shows what account-level inference costs.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time

import abkit
from abkit.dev.simulate import simulate

METRIC = {"name": "share", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
GUARDRAIL = {
    "name": "errors",
    "type": "ratio",
    "numerator": "error",
    "denominator": "ai_output",
    "direction": "decrease",
    "guardrail": True,
    "relative_margin": 0.1,
}


def _times(fn, repeats: int) -> tuple[float, float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return min(out), statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        "| accounts/arm | re-assignments | one metric (min / median s) | "
        "with guardrail (min / median s) | B2C reference (s) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for per_arm in (6, 8, 10, 12, 15, 20):
        export = simulate(
            mode="b2b", users=120 * per_arm, accounts=2 * per_arm, days=14, enrol_days=7, seed=1
        )
        base = {"experiment": {"account": "account_id", "mode": "b2b"}}
        one = {**base, "metrics": [METRIC]}
        both = {**base, "metrics": [METRIC, GUARDRAIL]}
        b2c = {"experiment": {"account": "account_id"}, "metrics": [METRIC]}
        run = functools.partial(abkit.analyze, export.assignments, events=export.events)
        run(one)  # warm imports
        t1 = _times(functools.partial(run, one), args.repeats)
        t2 = _times(functools.partial(run, both), args.repeats)
        ref = _times(functools.partial(run, b2c), args.repeats)
        n = math.comb(2 * per_arm, per_arm)
        count = f"{n:,} exact" if n <= 200_000 else "10,000 Monte Carlo"
        print(
            f"| {per_arm} | {count} | {t1[0]:.2f} / {t1[1]:.2f} | {t2[0]:.2f} / {t2[1]:.2f} | "
            f"{ref[0]:.2f} | {t1[0] / ref[0]:.1f}x |"
        )


if __name__ == "__main__":
    main()
