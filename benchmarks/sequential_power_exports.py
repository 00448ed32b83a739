"""Power of the sequential methods on simulated event exports (docs/sequential.md).

Usage: python benchmarks/sequential_power_exports.py [--runs 100] [--users 20000]

Each run simulates an export with ``abkit simulate`` (35 days, 14 days of enrolment)
in which the treatment multiplies AI interactions per session by 1.15, and monitors
AI outputs per user (a per-unit count that accumulates over the experiment) over
daily looks with mSPRT (old default: τ = 5 % of the first look's control value; new
default: τ from the planned sample), the asymptotic confidence sequence and a weekly
group-sequential design.  Reports the share of runs that stop with a difference (power;
with ``--lift 0``, the false-positive rate), the median stopping day, and the
fixed-horizon test at the last look for reference.
"""

from __future__ import annotations

import argparse
import statistics

import abkit
from abkit.dev.simulate import simulate

METRIC = {"name": "outputs", "type": "mean", "column": "ai_output"}
METHODS = {
    "mSPRT, tau = 5 % of first-look control (old default)": {
        "method": "msprt",
        "relative_tau": 0.05,
    },
    "mSPRT, tau from the planned sample (new default)": {"method": "msprt"},
    "asymptotic CS": {"method": "cs"},
    "GST, weekly looks, O'Brien-Fleming": {"method": "gst"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--lift", type=float, default=0.15)
    args = parser.parse_args()
    stops = {m: [] for m in METHODS}
    fixed = 0
    for run in range(args.runs):
        export = simulate(users=args.users, depth_lift=args.lift, seed=1_000 + run)
        target = export.assignments.height
        for label, sequential in METHODS.items():
            config = {"metrics": [METRIC], "sequential": {**sequential, "target_units": target}}
            r = abkit.analyze(export.assignments, config, events=export.events).results[0]
            d = r.decision
            stops[label].append(d.look if d.outcome in ("better", "worse") else None)
        base = abkit.analyze(export.assignments, {"metrics": [METRIC]}, events=export.events)
        fixed += base.results[0].decision.outcome in ("better", "worse")
    print(f"{args.runs} runs, {args.users:,} users, interactions per session x{1 + args.lift}")
    print("| method | stopped (better or worse) | median stopping day |")
    print("|---|---|---|")
    for label, days in stops.items():
        hit = [d for d in days if d is not None]
        median = f"{statistics.median(hit):.0f}" if hit else "-"
        print(f"| {label} | {len(hit) / args.runs:.2f} | {median} |")
    print(f"| fixed horizon at the last look (reference) | {fixed / args.runs:.2f} | 35 |")


if __name__ == "__main__":
    main()
