"""End-to-end benchmark: generate 1M users / ~10M events, time `abkit analyze`.

Usage:  python benchmarks/bench_analyze.py [--users 1000000] [--keep]

Writes the export as Parquet under benchmarks/data/ (git-ignored), then runs the
installed `abkit analyze` CLI in a child process, so the timing covers start-up,
reading, validation, per-unit roll-up, statistics and rendering, and reports the
child's wall time and peak resident memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "examples" / "ai_summary_export" / "experiment.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated export")
    args = parser.parse_args()

    from abkit.simulate import simulate, write_export

    out = HERE / "data" / f"b2c_{args.users}"
    t0 = time.perf_counter()
    export = simulate(
        users=args.users,
        days=14,
        enrol_days=7,
        base_return=0.2,
        extra_sessions=0.3,
        mean_depth=2.5,
        variants=("control", "summary_v2"),
        share_lift=0.05,
        seed=1,
    )
    n_events = export.events.height
    assignments, events = write_export(export, out, "parquet")
    del export
    generated = time.perf_counter() - t0
    print(
        f"generated {args.users:,} users, {n_events:,} events in {generated:.1f} s "
        f"({sum(p.stat().st_size for p in (assignments, events)) / 1e6:.0f} MB parquet)"
    )

    cmd = [
        sys.executable,
        "-m",
        "abkit_cli.main",
        "analyze",
        str(assignments),
        str(events),
        "-c",
        str(CONFIG),
        "--format",
        "json",
        "-o",
        str(out / "result.json"),
    ]
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    times.sort()
    print(
        f"abkit analyze (8 metrics, end to end): median {times[len(times) // 2]:.2f} s, "
        f"min {times[0]:.2f} s over {args.repeats} runs; peak RSS {peak_mb:,.0f} MB"
    )
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
