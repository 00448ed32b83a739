"""abkit against reference implementations of the same job, as ratios from one run.

Usage:
    python benchmarks/compare.py events  [--users 1000000] [--rounds 3]
    python benchmarks/compare.py looks   [--users 1000000] [--rounds 3]
    python benchmarks/compare.py units   [--users 1000000] [--rounds 3]
    python benchmarks/compare.py bootstrap [--rounds 5]
    python benchmarks/compare.py spark   [--users 1000000]
    python benchmarks/compare.py cuped   [--users 1000000] [--rounds 3]
    python benchmarks/compare.py ai      [--users 1000000] [--rounds 3]
    python benchmarks/compare.py paired  [--users 1000000] [--rounds 3]

* events: ``abkit analyze`` on a simulated export (the bundled example's 9 metrics)
  against a hand-written Polars streaming query computing the same per-unit aggregates
  (the floor: reading, joining and grouping the events once).
* looks: the same analysis with 30 daily sequential looks (mSPRT) against it without.
* units: ``abkit.analyze`` on a unit-level table (3 arms, 4 metrics) against
  tea-tasting's ``Experiment.analyze`` on the same frame (``pip install tea-tasting``).
* bootstrap: abkit's B2B account bootstrap (10,000 resamples, 60 accounts) against
  ``scipy.stats.bootstrap`` (BCa) on the same ratio of account sums.
* spark: the events analysis on a local Spark session; its numbers must equal Polars'.
* cuped: an export whose users have 14 days of history, analysed with CUPED pre-period
  covariates and the weekly novelty check against the plain analysis of the same files.
* ai: the built-in metric set on an export with judged outputs (20 %), thumbs, latency,
  time to first token and tokens, priced by ``[cost]`` (17 metrics: p95 latency with its
  quantile profile, event means, cost per output and per active user) against the
  bundled example's 9 metrics on the same files.
* paired: ``abkit analyze`` on a simulated shadow replay (about 7 inputs per user, both
  versions; judge score on half the inputs, latency, tokens) against a hand-written
  Polars query joining each input's two rows and summing the four columns per user
  (the floor of the paired reduction, without validation or exclusions).

Every command runs in a child process of its own, so each reports its own CPU time
(user + system) and peak RSS (``os.wait4``); the rounds alternate between the two
sides so that a noisy machine slows both alike.  Read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "examples" / "ai_summary_export" / "experiment.toml"

FLOOR_QUERY = """
import sys, polars as pl
a = pl.scan_parquet(sys.argv[1]).select("user_id", "variant", "assigned_at")
e = pl.scan_parquet(sys.argv[2])
day = ((pl.col("timestamp") - pl.col("assigned_at")).dt.total_microseconds()
       // 86_400_000_000)
ev = pl.col("event")
per_unit = (
    e.join(a, on="user_id")
    .filter(pl.col("timestamp") >= pl.col("assigned_at"))
    .unique()
    .with_columns(day.alias("day"))
    .group_by("user_id")
    .agg(
        *[(pl.col("day") == d).any().alias(f"d{d}") for d in (1, 7, 14)],
        *[(ev == n).sum().alias(n) for n in ("share", "ai_output", "regenerate", "error")],
        pl.col("latency_ms").filter(ev == "ai_output").sum().alias("latency"),
        pl.col("latency_ms").filter(ev == "ai_output").count().alias("latencies"),
        ((ev == "ai_output") & pl.col("session_id").is_not_null()).sum().alias("in_session"),
        pl.col("session_id").drop_nulls().n_unique().alias("sessions"),
    )
    .collect(engine="streaming")
)
units = a.collect().join(per_unit, on="user_id", how="left").fill_null(0)
print(units.height)
"""

UNITS_ABKIT = """
import sys, time, polars as pl, abkit
import abkit.run  # the lazily imported statistics, as tea-tasting imports its own
frame = pl.read_parquet(sys.argv[1])
config = {"metrics": [{"name": c, "type": "mean", "column": c} for c in ("a", "b")]
          + [{"name": c, "type": "proportion", "column": c} for c in ("c", "d")]}
start = time.process_time()
abkit.analyze(frame, config, kind="units")
print(time.process_time() - start)
"""

UNITS_TEA = """
import sys, time, polars as pl, tea_tasting as tt
frame = pl.read_parquet(sys.argv[1])
experiment = tt.Experiment(
    a=tt.Mean("a"), b=tt.Mean("b"), c=tt.Mean("c"), d=tt.Mean("d"), variant="variant")
start = time.process_time()
experiment.analyze(frame, control="control", all_variants=True)
print(time.process_time() - start)
"""

BOOTSTRAP = """
import sys, time, numpy as np
from scipy import stats
from abkit.stats.bootstrap import account_bootstrap
from abkit.stats.cluster import AccountArm
rng = np.random.default_rng(0)
size = rng.lognormal(3, 1.2, 60).round() + 1
x, y = rng.binomial(size.astype(int), 0.3).astype(float), size
c, t = slice(0, 30), slice(30, 60)
side = sys.argv[1]
start = time.process_time()
if side == "abkit":
    account_bootstrap(AccountArm(x[c], y[c]), AccountArm(x[t], y[t]), "user", seed=1)
else:
    # accounts are resampled by index, so each keeps its (x, y) pair
    def ratio_difference(ic, it, axis=-1):
        ic, it = ic.astype(int), it.astype(int)
        xc, yc, xt, yt = x[c][ic], y[c][ic], x[t][it], y[t][it]
        return xt.sum(axis) / yt.sum(axis) - xc.sum(axis) / yc.sum(axis)
    stats.bootstrap((np.arange(30.0), np.arange(30.0)), ratio_difference,
                    n_resamples=10_000, vectorized=True, method="BCa", random_state=1)
print(time.process_time() - start)
"""


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; its CPU seconds (user + system), peak RSS in MB and stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise SystemExit(f"failed ({status}): {' '.join(cmd)}\n" + "\n".join(tail))
        out.seek(0)
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read().decode()


def summary(label: str, values: list[float], unit: str) -> str:
    return f"{label}: min {min(values):.2f} {unit}, median {statistics.median(values):.2f} {unit}"


def compare(name_a: str, cmd_a: list[str], name_b: str, cmd_b: list[str], rounds: int) -> None:
    """Alternate the two commands; print CPU and RSS for each and their ratios."""
    cpu: dict[str, list[float]] = {name_a: [], name_b: []}
    rss: dict[str, list[float]] = {name_a: [], name_b: []}
    for _ in range(rounds):
        for name, cmd in ((name_a, cmd_a), (name_b, cmd_b)):
            seconds, mb, _ = run(cmd)
            cpu[name].append(seconds)
            rss[name].append(mb)
    for name in (name_a, name_b):
        print(f"  {summary(name, cpu[name], 's CPU')}; peak RSS {max(rss[name]):,.0f} MB")
    for stat in (min, statistics.median):
        print(
            f"  ratio {name_a} / {name_b} ({stat.__name__}): CPU "
            f"{stat(cpu[name_a]) / stat(cpu[name_b]):.2f}x, RSS "
            f"{max(rss[name_a]) / max(rss[name_b]):.2f}x"
        )


def inline(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


SIMULATE = """
import sys, time
from pathlib import Path
from abkit.dev.simulate import simulate, write_export
start = time.perf_counter()
export = simulate(users=int(sys.argv[1]), days=14, enrol_days=7, base_return=0.2,
                  extra_sessions=0.3, mean_depth=2.5, variants=("control", "summary_v2"),
                  share_lift=0.05, pre_days=int(sys.argv[3]), seed=1,
                  **({"judge_rate": 0.2, "thumbs_rate": 0.05, "latency_user_sd": 0.5,
                      "tokens_lift": 0.1} if sys.argv[4] == "ai" else {}))
write_export(export, Path(sys.argv[2]), "parquet")
print(f"export: {int(sys.argv[1]):,} users, {export.events.height:,} events "
      f"({time.perf_counter() - start:.0f} s to simulate and write)")
"""


AI_CONFIG = """
[experiment]
control = "control"

[cost]
input_per_1k = 0.003
output_per_1k = 0.015
"""


REPLAY = """
import sys, time
from abkit.dev.replay import simulate_replay
start = time.perf_counter()
frame = simulate_replay(users=int(sys.argv[1]), judge_rate=0.5, latency_lift=-0.1, seed=1)
frame.write_parquet(sys.argv[2])
print(f"replay: {int(sys.argv[1]):,} users, {frame.height:,} rows "
      f"({time.perf_counter() - start:.0f} s to simulate and write)")
"""

PAIRED_FLOOR = """
import sys, polars as pl
rows = pl.scan_parquet(sys.argv[1])
columns = ["judge_score", "latency_ms", "input_tokens", "output_tokens"]
live = rows.filter(pl.col("version") == "live").select(
    "input_id", *[pl.col(c).alias(c + "_live") for c in columns])
pairs = rows.filter(pl.col("version") == "candidate").join(live, on="input_id")
both = {c: pl.col(c).is_not_null() & pl.col(c + "_live").is_not_null() for c in columns}
per_user = pairs.group_by("user_id").agg(
    *[pl.col(c + "_live").filter(both[c]).sum().alias(c + "_l") for c in columns],
    *[pl.col(c).filter(both[c]).sum().alias(c + "_c") for c in columns],
    *[both[c].sum().alias(c + "_n") for c in columns],
).collect(engine="streaming")
print(per_user.height)
"""

PAIRED_CONFIG = """
[experiment]
control = "live"
variant = "version"
"""


def events_export(
    users: int, folder: Path, pre_days: int = 0, ai: bool = False
) -> tuple[Path, Path]:
    """Simulate and write the export in a child process: a forked child starts with
    its parent's resident memory, so a parent holding the export would inflate every
    peak RSS measured after it.  ``ai`` adds judged outputs and thumbs."""
    kind = "ai" if ai else "plain"
    print(run(inline(SIMULATE, str(users), str(folder), str(pre_days), kind))[2].strip())
    return folder / "assignments.parquet", folder / "events.parquet"


def analyze_cmd(assignments: Path, events: Path, *extra: str, config: Path = CONFIG) -> list[str]:
    cli = [sys.executable, "-m", "abkit_cli.main", "analyze", str(assignments), str(events)]
    return [*cli, "-c", str(config), "-f", "json", *extra]


def units_table(users: int, path: Path) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    pl.DataFrame(
        {
            "user_id": np.arange(users),
            "variant": rng.choice(["control", "t1", "t2"], users),
            "a": rng.lognormal(1, 1, users),
            "b": rng.poisson(3, users).astype(float),
            "c": rng.binomial(1, 0.3, users),
            "d": rng.binomial(1, 0.1, users),
        }
    ).write_parquet(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "workload",
        choices=["events", "looks", "units", "bootstrap", "spark", "cuped", "ai", "paired"],
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="abkit-bench-"))
    try:
        if args.workload in ("events", "looks", "spark"):
            assignments, events = events_export(args.users, folder)
            fixed = analyze_cmd(assignments, events)
            if args.workload == "events":
                floor = inline(FLOOR_QUERY, str(assignments), str(events))
                compare("abkit analyze", fixed, "Polars streaming query", floor, args.rounds)
            elif args.workload == "looks":
                looks = analyze_cmd(assignments, events, "--sequential", "msprt")
                compare("30 daily looks", looks, "fixed horizon", fixed, args.rounds)
            else:
                _, _, polars_json = run(fixed)
                start = time.perf_counter()
                _, _, spark_json = run([*fixed, "--engine", "spark"])
                wall = time.perf_counter() - start
                same = _same(json.loads(polars_json), json.loads(spark_json))
                print(f"  local Spark: {wall:.0f} s wall (JVM start included); numbers {same}")
        elif args.workload == "cuped":
            assignments, events = events_export(args.users, folder, pre_days=14)
            config = folder / "cuped.toml"
            extra = "\n[cuped]\npre_days = 14\n\n[novelty]\nperiod_days = 7\n"
            config.write_text(CONFIG.read_text() + extra)
            adjusted = analyze_cmd(assignments, events, config=config)
            plain = analyze_cmd(assignments, events)
            compare("CUPED + novelty", adjusted, "plain analysis", plain, args.rounds)
        elif args.workload == "ai":
            assignments, events = events_export(args.users, folder, ai=True)
            config = folder / "ai.toml"
            config.write_text(AI_CONFIG)
            pack = analyze_cmd(assignments, events, config=config)
            example = analyze_cmd(assignments, events)
            compare("AI metric pack", pack, "example's 9 metrics", example, args.rounds)
        elif args.workload == "paired":
            table = folder / "outputs.parquet"
            print(run(inline(REPLAY, str(args.users), str(table)))[2].strip())
            config = folder / "paired.toml"
            config.write_text(PAIRED_CONFIG)
            cli = [sys.executable, "-m", "abkit_cli.main", "analyze", str(table)]
            ours = [*cli, "-c", str(config), "-f", "json"]
            floor = inline(PAIRED_FLOOR, str(table))
            compare("abkit analyze", ours, "Polars paired query", floor, args.rounds)
        elif args.workload == "units":
            table = folder / "units.parquet"
            units_table(args.users, table)
            abkit_side, tea = inline(UNITS_ABKIT, str(table)), inline(UNITS_TEA, str(table))
            _in_process("abkit.analyze", abkit_side, "tea-tasting", tea, args.rounds)
        else:
            ours, scipy_side = inline(BOOTSTRAP, "abkit"), inline(BOOTSTRAP, "scipy")
            _in_process("abkit bootstrap", ours, "scipy.stats.bootstrap", scipy_side, args.rounds)
    finally:
        shutil.rmtree(folder)


def _in_process(name_a: str, cmd_a: list[str], name_b: str, cmd_b: list[str], rounds: int) -> None:
    """Alternate the two; each prints the CPU seconds of the timed call alone."""
    times: dict[str, list[float]] = {name_a: [], name_b: []}
    for _ in range(rounds):
        for name, cmd in ((name_a, cmd_a), (name_b, cmd_b)):
            times[name].append(float(run(cmd)[2].strip().splitlines()[-1]))
    for name in (name_a, name_b):
        print(f"  {summary(name, [t * 1000 for t in times[name]], 'ms CPU')}")
    for stat in (min, statistics.median):
        ratio = stat(times[name_a]) / stat(times[name_b])
        print(f"  ratio {name_a} / {name_b} ({stat.__name__}): {ratio:.2f}x")


def _same(a: object, b: object, rel: float = 1e-12) -> str:
    """'equal' when every number agrees to ``rel``, else where the first difference is."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            diff = _same(a[key], b.get(key), rel)
            if key not in ("source", "label") and diff != "equal":
                return f"{key}.{diff}"
        return "equal"
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (diff := _same(x, y, rel)) != "equal":
                return f"[{i}]{diff}"
        return "equal"
    if isinstance(a, float) and isinstance(b, float):
        close = a == b or abs(a - b) <= rel * max(abs(a), abs(b), 1.0) or (a != a and b != b)
        return "equal" if close else f" {a!r} vs {b!r}"
    return "equal" if a == b else f" {a!r} vs {b!r}"


if __name__ == "__main__":
    main()
