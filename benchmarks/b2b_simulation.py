"""Numbers for docs/b2b.md: size and coverage of B2B methods with few accounts.

Usage: python benchmarks/b2b_simulation.py [--reps 5000] [--coverage-reps 1000]

Log-normal account sizes (sdlog 1.2, 60 users on average), account adoption rates
N(0.3, 0.08), binomial users; user-weighted difference in adoption.  Size: A/A, share
of runs rejecting at 0.05.  Coverage: a true effect of +0.05 on every treated
account's rate; share of intervals holding it (the permutation interval inverts the
randomisation test).  Bootstrap and permutation use 2,000 resamples per run.
"""

from __future__ import annotations

import argparse

from abkit.dev.calibration import B2B_METHODS, b2b_study

SIZES = (6, 10, 20, 40)
LABELS = {
    "cluster_z": "z-test, unadjusted cluster SE (CR0)",
    "cr2": "CR2 + Bell-McCaffrey df",
    "percentile": "account bootstrap, percentile",
    "bca": "account bootstrap, BCa",
    "studentized": "account bootstrap-t",
    "permutation": "account randomisation test (interval: test inversion)",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5_000)
    parser.add_argument("--coverage-reps", type=int, default=1_000)
    args = parser.parse_args()
    size = {k: b2b_study(k, args.reps, seed=k) for k in SIZES}
    cover = {
        k: b2b_study(k, args.coverage_reps, effect=0.05, seed=1000 + k, invert=True) for k in SIZES
    }
    head = " | ".join(f"{k} accounts/arm" for k in SIZES)
    print(f"Size (A/A, nominal 0.05), {args.reps:,} runs per column\n")
    print(f"| method | {head} |\n|---|" + "---|" * len(SIZES))
    for m in B2B_METHODS:
        print(f"| {LABELS[m]} | " + " | ".join(f"{size[k][m]['reject']:.3f}" for k in SIZES) + " |")
    print(
        f"\nCoverage of the true effect (+0.05; nominal 0.95), {args.coverage_reps:,} runs "
        "per column\n"
    )
    print(f"| method | {head} |\n|---|" + "---|" * len(SIZES))
    for m in B2B_METHODS:
        print(f"| {LABELS[m]} | " + " | ".join(f"{cover[k][m]['cover']:.3f}" for k in SIZES) + " |")


if __name__ == "__main__":
    main()
