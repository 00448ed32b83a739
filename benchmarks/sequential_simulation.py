"""Numbers for docs/sequential.md: calibration and the power price of peeking safely.

Usage: python benchmarks/sequential_simulation.py [--reps 20000]

Thirty equally spaced looks with 200 new units per arm at each (6,000 per arm at
the end).  A/A: P(ever reject) and time-uniform coverage.  A/B with the effect a
fixed-horizon test detects with 80 % power at the last look: power, median stopping
look, and the average share of the fixed-horizon sample used.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy import stats as st

from abkit.dev.calibration import METHODS, evaluate, simulate_looks

LOOKS, PER_LOOK, ALPHA = 30, 200, 0.05
LABELS = {
    "naive": "fixed-horizon test repeated daily (naive)",
    "msprt": "mSPRT, tau from the planned sample",
    "cs": "asymptotic CS, tuned to the final n",
    "gst_obf": "GST, O'Brien-Fleming-type spending, 30 looks",
    "gst_pocock": "GST, Pocock-type spending, 30 looks",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20_000)
    reps = parser.parse_args().reps
    print(f"A/A, {LOOKS} looks, {PER_LOOK} units per arm per look, {reps:,} replications\n")
    print("| method | outcome | P(ever reject) | time-uniform coverage |")
    print("|---|---|---|---|")
    for outcome, mean in (("normal", 1.0), ("bernoulli", 0.1)):
        paths = simulate_looks(reps, LOOKS, PER_LOOK, outcome, mean=mean, seed=11)
        for m in METHODS:
            out = evaluate(paths, m, ALPHA)
            print(
                f"| {LABELS[m]} | {outcome} | {out.rejected.mean():.4f} | "
                f"{out.covered.mean():.4f} |"
            )
    n_final = LOOKS * PER_LOOK
    effect = (st.norm.ppf(1 - ALPHA / 2) + st.norm.ppf(0.8)) * math.sqrt(2.0 / n_final)
    paths = simulate_looks(reps, LOOKS, PER_LOOK, "normal", mean=1.0, effect=effect, seed=12)
    print(
        f"\nA/B, true effect {effect:.4f} sd (80 % power for a fixed-horizon test at the "
        f"last look)\n"
    )
    print(
        "| method | power by the last look | median stopping look (of rejections) | "
        "average sample used vs fixed horizon |"
    )
    print("|---|---|---|---|")
    fixed_power = float(
        np.mean(
            np.abs(paths.estimate[:, -1]) / np.sqrt(paths.variance[:, -1])
            >= st.norm.ppf(1 - ALPHA / 2)
        )
    )
    print(f"| fixed horizon, one look at the end | {fixed_power:.3f} | {LOOKS} | 100 % |")
    for m in METHODS[1:]:
        out = evaluate(paths, m, ALPHA)
        stop = np.where(out.rejected, out.first_look, LOOKS)
        print(
            f"| {LABELS[m]} | {out.rejected.mean():.3f} | "
            f"{np.median(out.first_look[out.rejected]):.0f} | {stop.mean() / LOOKS:.0%} |"
        )


if __name__ == "__main__":
    main()
