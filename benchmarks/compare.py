"""abkit against reference implementations of the same job, as ratios from one run.

Usage:
    python benchmarks/compare.py events  [--users 1000000] [--rounds 3] [--data DIR]
    python benchmarks/compare.py looks   [--users 1000000] [--rounds 3] [--data DIR]
    python benchmarks/compare.py units   [--users 1000000] [--rounds 3]
    python benchmarks/compare.py bootstrap [--rounds 5]
    python benchmarks/compare.py duckdb  [--users 200000] [--large-users 2000000] [--rounds 3]
                                         [--data DIR] [--large-data DIR]
                                         [--duckdb-memory-limit 500MB]
    python benchmarks/compare.py spark   [--users 1000000] [--rounds 3] [--data DIR]
    python benchmarks/compare.py cuped   [--users 1000000] [--rounds 3]
    python benchmarks/compare.py ai      [--users 1000000] [--rounds 3]
    python benchmarks/compare.py paired  [--users 1000000] [--rounds 3]

* events: ``abkit analyze`` on a simulated export (the bundled example's 9 metrics)
  against hand-written Polars computing the same aggregates as its report
  (``FLOOR_SAME``: exclusions by reason, daily counts, the retention curve, the
  session-depth histogram, the per-unit aggregates and their per-arm means and
  variances, in one ``pl.collect_all`` on the streaming engine), and against the
  narrower streaming query of the per-unit aggregates alone (``FLOOR_QUERY``: reading,
  joining and grouping the events once).
* looks: the same analysis with 30 daily sequential looks (mSPRT) against it without.
* units: ``abkit.analyze`` on a unit-level table (3 arms, 4 metrics) against
  tea-tasting's ``Experiment.analyze`` on the same frame (``pip install tea-tasting``):
  each side's CPU from the definition of its metrics (abkit parses its config in the
  call) to the results of every treatment against the control, in a fresh process
  after the imports and the read of the table (the first call, as a script makes it).
* bootstrap: abkit's B2B account bootstrap (10,000 resamples, 60 accounts) against
  ``scipy.stats.bootstrap`` (BCa) on the same ratio of account sums.
* duckdb: ``abkit.analyze`` with the events as a DuckDB relation (``read_parquet`` on a
  new connection in UTC) against hand-written DuckDB SQL over the same files computing
  the same aggregates as abkit's report (:func:`duckdb_hand_script`: exclusions by
  reason, daily counts, the retention curve, the session-depth histogram and the
  per-arm sums), and against the narrower single query of the per-arm sums alone
  (:func:`duckdb_hand_query`: the example's metrics per unit and then per arm,
  :data:`HAND_METRICS`: d1/d7/d14 retention over the units whose day has passed, and
  Σx, Σy, Σx², Σy², Σxy of the share, regenerate and error rates per output, the
  session depth and the latency per output).  All run at ``--users`` and at
  ``--large-users``; besides the CPU ratio
  and the peak RSS at each size it prints each side's RSS growth, RSS(large) /
  RSS(small): the per-unit rows should stay on the engine, so abkit's growth should be
  close to the query's.
* spark: the events analysis on a local Spark session (``abkit.analyze`` with
  ``spark.read.parquet``) against the same aggregates as its report written with the
  PySpark DataFrame API (:func:`spark_hand_script`, as the duckdb workload's script),
  and against the narrower per-unit and per-arm query (:func:`spark_hand_query`), all in
  the same session settings (those of
  ``abkit.io.engines.local_spark``).  The CPU of each side is that of its whole process
  tree: the child stops Spark and waits for its JVM, whose time ``os.wait4`` then
  includes.  abkit's numbers on Spark must equal its numbers on Polars.
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
(user + system, with that of the child's own children it waited for) and peak RSS
(``os.wait4``); the rounds alternate between the two sides so that a noisy machine slows
both alike.  Each side's CPU is printed as the minimum and the median over the rounds
(with the median wall time), and the ratios of both.  Read the ratios.

``--data DIR`` (and ``--large-data DIR``) reuse an export made before (a folder with
assignments.parquet and events.parquet, as ``abkit simulate`` or this script writes
them) instead of simulating one.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

# the floor of the whole report: what abkit's report on the example's config holds,
# from one streaming read (pl.collect_all shares the scan, join and de-duplication)
FLOOR_SAME = """
import sys, polars as pl
a = pl.scan_parquet(sys.argv[1]).select("user_id", "variant", "assigned_at")
e = pl.scan_parquet(sys.argv[2])
ts, ev = pl.col("timestamp"), pl.col("event")
annotated = e.join(a, on="user_id", how="left").with_columns(
    pl.when(pl.col("user_id").is_null()).then(pl.lit("no unit"))
    .when(ev.is_null()).then(pl.lit("no event"))
    .when(ts.is_null()).then(pl.lit("no time"))
    .when(pl.col("variant").is_null()).then(pl.lit("not assigned"))
    .when(ts < pl.col("assigned_at")).then(pl.lit("before assignment"))
    .alias("reason")
)
undeduplicated = annotated.filter(pl.col("reason").is_null())
day = ((ts - pl.col("assigned_at")).dt.total_microseconds() // 86_400_000_000).alias("day")
valid = undeduplicated.drop("reason").unique().with_columns(day)
output = ev == "ai_output"
per_unit = valid.group_by("user_id").agg(
    *[(pl.col("day") == d).any().alias(f"d{d}") for d in (1, 7, 14)],
    *[(ev == n).sum().alias(n) for n in ("share", "ai_output", "regenerate", "error")],
    pl.col("latency_ms").filter(output).sum().alias("latency"),
    pl.col("latency_ms").filter(output).count().alias("latencies"),
    (output & pl.col("session_id").is_not_null()).sum().alias("in_session"),
    pl.col("session_id").drop_nulls().n_unique().alias("sessions"),
)
done = pl.collect_all(
    [
        annotated.group_by("reason", "event").len(),
        undeduplicated.group_by(ts.dt.date()).agg(pl.len(), ts.max().alias("end")),
        valid.filter(pl.col("day") <= 60).select("user_id", "variant", "day").unique()
        .group_by("variant", "day").len(),
        valid.filter(pl.col("session_id").is_not_null())
        .group_by("user_id", "session_id")
        .agg(pl.col("variant").first(), output.sum().alias("depth"))
        .group_by("variant", "depth").len(),
        per_unit,
    ],
    engine="streaming",
)
units = a.collect().join(done[-1], on="user_id", how="left").fill_null(0)
floats = pl.selectors.numeric() - pl.selectors.by_name("user_id")
moments = [floats.mean().name.suffix("_mean"), floats.var().name.suffix("_var")]
print(units.group_by("variant").agg(pl.len(), *moments).height)
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
start = time.process_time()  # the metrics defined in the timed region, as abkit's config
experiment = tt.Experiment(
    a=tt.Mean("a"), b=tt.Mean("b"), c=tt.Mean("c"), d=tt.Mean("d"), variant="variant")
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


@dataclass(frozen=True)
class Usage:
    """What one child process used: CPU seconds (user + system, its waited-for
    children's included), wall seconds and peak RSS in MB; and what it printed."""

    cpu: float
    wall: float
    rss: float
    stdout: str


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``; its CPU seconds (user + system), peak RSS in MB and stdout."""
    usage = measure(cmd)
    return usage.cpu, usage.rss, usage.stdout


def measure(cmd: list[str]) -> Usage:
    """Run ``cmd`` in a child process and measure it (:class:`Usage`)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise SystemExit(f"failed ({status}): {' '.join(cmd)}\n" + "\n".join(tail))
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Usage(cpu, wall, usage.ru_maxrss / 1024, out.read().decode())


def summary(label: str, values: list[float], unit: str) -> str:
    return f"{label}: min {min(values):.2f} {unit}, median {statistics.median(values):.2f} {unit}"


def compare(
    name_a: str,
    cmd_a: list[str],
    name_b: str,
    cmd_b: list[str],
    rounds: int,
    also: tuple[tuple[str, list[str]], ...] = (),
) -> dict[str, list[Usage]]:
    """Alternate the commands (``name_a`` against the floor ``name_b`` and any others in
    ``also``); print CPU, wall and peak RSS for each and the ratios of ``name_a`` to each
    other; return every round's :class:`Usage` by name."""
    sides = ((name_a, cmd_a), (name_b, cmd_b), *also)
    runs: dict[str, list[Usage]] = {name: [] for name, _ in sides}
    for _ in range(rounds):
        for name, cmd in sides:
            runs[name].append(measure(cmd))
    for name, _ in sides:
        wall = statistics.median(u.wall for u in runs[name])
        print(
            f"  {summary(name, [u.cpu for u in runs[name]], 's CPU')} "
            f"(median wall {wall:.2f} s); peak RSS {peak(runs[name]):,.0f} MB"
        )
    for floor, _ in sides[1:]:
        for stat in (min, statistics.median):
            cpu = stat(u.cpu for u in runs[name_a]) / stat(u.cpu for u in runs[floor])
            wall = stat(u.wall for u in runs[name_a]) / stat(u.wall for u in runs[floor])
            rss = peak(runs[name_a]) / peak(runs[floor])
            print(
                f"  ratio {name_a} / {floor} ({stat.__name__}): CPU {cpu:.2f}x, "
                f"wall {wall:.2f}x, RSS {rss:.2f}x"
            )
    return runs


def peak(runs: list[Usage]) -> float:
    """The highest peak RSS of the rounds, in MB."""
    return max(u.rss for u in runs)


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


# The example config's metrics (examples/ai_summary_export/experiment.toml) as the hand
# queries of the duckdb and spark workloads compute them: retention on these days after
# assignment, and per ratio metric its per-unit numerator and denominator.
HAND_DAYS = (1, 7, 14)
HAND_METRICS = {
    "share_rate": ("share", "outputs"),
    "session_depth": ("in_session", "sessions"),
    "regenerate_rate": ("regenerate", "outputs"),
    "error_rate": ("error", "outputs"),
    "latency_ms": ("latency", "latencies"),
}


# the hand queries' per-unit numerators and denominators of the ratio metrics
_PER_UNIT_COUNTS = """count(*) FILTER (event = 'share') AS share,
        count(*) FILTER (event = 'ai_output') AS outputs,
        count(*) FILTER (event = 'regenerate') AS regenerate,
        count(*) FILTER (event = 'error') AS error,
        count(*) FILTER (event = 'ai_output' AND session_id IS NOT NULL) AS in_session,
        count(DISTINCT session_id) AS sessions,
        sum(latency_ms) FILTER (event = 'ai_output') AS latency,
        count(latency_ms) FILTER (event = 'ai_output') AS latencies"""


def _hand_parts() -> tuple[str, str, str, str]:
    """SQL pieces of the hand queries: the per-arm retention aggregates, the ratio
    metrics' sums, the per-unit retention days and the matured-window flags."""
    retention = ",\n    ".join(
        f"count(*) FILTER (m{d}) AS d{d}_n, avg(d{d}) FILTER (m{d}) AS d{d}_mean, "
        f"var_samp(d{d}) FILTER (m{d}) AS d{d}_var"
        for d in HAND_DAYS
    )
    sums = ",\n    ".join(
        f"sum({x}) AS {m}_sx, sum({y}) AS {m}_sy, sum({x} * {x}) AS {m}_sxx, "
        f"sum({y} * {y}) AS {m}_syy, sum({x} * {y}) AS {m}_sxy"
        for m, (x, y) in HAND_METRICS.items()
    )
    days = ", ".join(f"max((day = {d})::INT) AS d{d}" for d in HAND_DAYS)
    matured = ", ".join(
        f"a.assigned_at + INTERVAL {d + 1} DAY <= export_end.t AS m{d}" for d in HAND_DAYS
    )
    return retention, sums, days, matured


def duckdb_hand_query(assignments: str, events: str) -> str:
    """One DuckDB SQL query: the valid events (joined to the assignments, not before
    assignment, exact repeats dropped), the example's metrics per unit (units without
    events count zeros), then per arm the unit count, each retention's eligible units
    (day passed by the latest event), mean and variance, and Σx, Σy, Σx², Σy², Σxy of
    each ratio metric (what the delta method needs)."""
    retention, sums, days, matured = _hand_parts()
    return f"""
WITH a AS (SELECT user_id, variant, assigned_at FROM read_parquet('{assignments}')),
valid AS (
    SELECT DISTINCT e.user_id, e.timestamp, e.event, e.session_id, e.latency_ms, a.assigned_at
    FROM read_parquet('{events}') e JOIN a USING (user_id)
    WHERE e.timestamp >= a.assigned_at
),
per_unit AS (
    SELECT user_id, {days}, {_PER_UNIT_COUNTS}
    FROM (SELECT *, (epoch_us(timestamp) - epoch_us(assigned_at)) // 86400000000 AS day
          FROM valid)
    GROUP BY user_id
),
export_end AS (SELECT max(timestamp) AS t FROM valid),
units AS (
    SELECT a.variant, {matured}, coalesce(COLUMNS(per_unit.* EXCLUDE (user_id)), 0)
    FROM a LEFT JOIN per_unit USING (user_id), export_end
)
SELECT variant, count(*) AS n,
    {retention},
    {sums}
FROM units GROUP BY variant ORDER BY variant
"""


def duckdb_hand_script(assignments: str, events: str) -> list[str]:
    """What abkit's report on the example's config holds, as hand-written DuckDB SQL
    statements sharing one table, the floor of the whole job rather than of its per-arm
    sums alone (:func:`duckdb_hand_query`):

    * the events joined to the assignments, each with its exclusion reason (no unit,
      event name or time; not assigned; before assignment), exact repeats collapsed to
      one row with their count, kept as a temporary table;
    * rows per reason and event name (the exclusions table);
    * valid events and the latest time per UTC day (the export end);
    * units active on each day 0-60 after assignment, per arm (the retention curve);
    * sessions per arm by their number of AI outputs (the session-depth histogram);
    * the per-arm retention and Σx, Σy, Σx², Σy², Σxy of :func:`duckdb_hand_query`.
    """
    retention, sums, days, matured = _hand_parts()
    valid = (
        "(SELECT *, (epoch_us(timestamp) - epoch_us(assigned_at)) // 86400000000 AS day "
        "FROM ev WHERE reason IS NULL)"
    )
    return [
        f"""
CREATE TEMPORARY TABLE ev AS
SELECT e.user_id, e.timestamp, e.event, e.session_id, e.latency_ms, a.variant, a.assigned_at,
    CASE WHEN e.user_id IS NULL THEN 'no unit' WHEN e.event IS NULL THEN 'no event'
         WHEN e.timestamp IS NULL THEN 'no time' WHEN a.user_id IS NULL THEN 'not assigned'
         WHEN e.timestamp < a.assigned_at THEN 'before assignment' END AS reason,
    count(*) AS copies
FROM read_parquet('{events}') e
LEFT JOIN (SELECT user_id, variant, assigned_at FROM read_parquet('{assignments}')) a
USING (user_id)
GROUP BY ALL""",
        "SELECT reason, event, sum(copies) FROM ev GROUP BY ALL",
        "SELECT timestamp::DATE, sum(copies), max(timestamp) FROM ev WHERE reason IS NULL "
        "GROUP BY ALL",
        f"""
SELECT variant, day, count(*) FROM (SELECT DISTINCT user_id, variant, day FROM {valid}
WHERE day <= 60) GROUP BY ALL""",
        f"""
SELECT variant, depth, count(*) FROM (
    SELECT user_id, session_id, min(variant) AS variant,
        count(*) FILTER (event = 'ai_output') AS depth
    FROM {valid} WHERE session_id IS NOT NULL GROUP BY ALL
) GROUP BY ALL""",
        f"""
WITH a AS (SELECT user_id, variant, assigned_at FROM read_parquet('{assignments}')),
per_unit AS (
    SELECT user_id, {days}, {_PER_UNIT_COUNTS}
    FROM {valid} GROUP BY user_id
),
export_end AS (SELECT max(timestamp) AS t FROM ev WHERE reason IS NULL),
units AS (
    SELECT a.variant, {matured}, coalesce(COLUMNS(per_unit.* EXCLUDE (user_id)), 0)
    FROM a LEFT JOIN per_unit USING (user_id), export_end
)
SELECT variant, count(*) AS n, {retention}, {sums}
FROM units GROUP BY variant ORDER BY variant""",
    ]


def duckdb_connection() -> Any:
    """The duckdb workload's connection on every side: a new one in UTC, held to
    ``--duckdb-memory-limit`` (spilling to the run's folder) when it is given."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    if "BENCH_DUCKDB_MEMORY" in os.environ:
        connection.execute(f"SET memory_limit = '{os.environ['BENCH_DUCKDB_MEMORY']}'")
        connection.execute(f"SET temp_directory = '{os.environ['BENCH_DUCKDB_SPILL']}'")
    return connection


def spark_hand_query(spark: Any, assignments: str, events: str) -> list[Any]:
    """The query of :func:`duckdb_hand_query` written with the PySpark DataFrame API."""
    from pyspark.sql import functions as F

    a = spark.read.parquet(assignments).select("user_id", "variant", "assigned_at")
    e = spark.read.parquet(events)
    e = e.select("user_id", "timestamp", "event", "session_id", "latency_ms")
    valid = e.join(a, "user_id").where(F.col("timestamp") >= F.col("assigned_at")).distinct()
    return _spark_per_arm(a, valid)


def spark_hand_script(spark: Any, assignments: str, events: str) -> list[Any]:
    """:func:`duckdb_hand_script` with the PySpark DataFrame API: the annotated events
    collapsed to distinct rows with their count and kept (a local checkpoint), then the
    exclusions, daily counts, retention curve, session-depth histogram and per-arm sums
    read from them."""
    from pyspark.sql import functions as F

    a = spark.read.parquet(assignments).select("user_id", "variant", "assigned_at")
    e = spark.read.parquet(events)
    e = e.select("user_id", "timestamp", "event", "session_id", "latency_ms")
    ts, assigned = F.col("timestamp"), F.col("assigned_at")
    reason = (
        F.when(F.col("user_id").isNull(), "no unit")
        .when(F.col("event").isNull(), "no event")
        .when(ts.isNull(), "no time")
        .when(F.col("variant").isNull(), "not assigned")
        .when(ts < assigned, "before assignment")
    )
    annotated = e.join(a, "user_id", "left").withColumn("reason", reason)
    ev = annotated.groupBy(*annotated.columns).count().localCheckpoint(eager=True)
    valid = ev.where(F.col("reason").isNull())
    day = F.expr("(unix_micros(timestamp) - unix_micros(assigned_at)) div 86400000000")
    with_day = valid.withColumn("day", day)
    output = (F.col("event") == "ai_output").cast("int")
    depth = (
        with_day.where(F.col("session_id").isNotNull())
        .groupBy("user_id", "session_id")
        .agg(F.min("variant").alias("variant"), F.sum(output).alias("depth"))
    )
    rows: list[Any] = []
    for query in (
        ev.groupBy("reason", "event").agg(F.sum("count")),
        valid.groupBy(F.to_date(ts)).agg(F.sum("count"), F.max(ts)),
        with_day.where(F.col("day") <= 60)
        .select("user_id", "variant", "day")
        .distinct()
        .groupBy("variant", "day")
        .count(),
        depth.groupBy("variant", "depth").count(),
    ):
        rows += query.collect()
    return rows + _spark_per_arm(a, valid)


def _spark_per_arm(a: Any, valid: Any) -> list[Any]:
    """The per-unit and then per-arm aggregates of :func:`duckdb_hand_query` from the
    valid, de-duplicated events (PySpark)."""
    from pyspark.sql import functions as F

    day = F.expr("(unix_micros(timestamp) - unix_micros(assigned_at)) div 86400000000")
    event, session, latency = F.col("event"), F.col("session_id"), F.col("latency_ms")
    output = event == "ai_output"

    def count(condition: Any) -> Any:
        return F.count(F.when(condition, 1))

    per_unit = (
        valid.withColumn("day", day)
        .groupBy("user_id")
        .agg(
            *(F.max((F.col("day") == d).cast("int")).alias(f"d{d}") for d in HAND_DAYS),
            count(event == "share").alias("share"),
            count(output).alias("outputs"),
            count(event == "regenerate").alias("regenerate"),
            count(event == "error").alias("error"),
            count(output & session.isNotNull()).alias("in_session"),
            F.countDistinct(session).alias("sessions"),
            F.sum(F.when(output, latency)).alias("latency"),
            F.count(F.when(output, latency)).alias("latencies"),
        )
    )
    export_end = valid.agg(F.max("timestamp").alias("_end"))
    units = a.join(per_unit, "user_id", "left").fillna(0).crossJoin(export_end)
    aggregates = [F.count(F.lit(1)).alias("n")]
    for d in HAND_DAYS:
        matured = F.col("assigned_at") + F.expr(f"INTERVAL {d + 1} DAYS") <= F.col("_end")
        kept = F.when(matured, F.col(f"d{d}"))
        aggregates += [F.count(kept), F.avg(kept), F.var_samp(kept)]
    for x, y in HAND_METRICS.values():
        cx, cy = F.col(x), F.col(y)
        aggregates += [F.sum(cx), F.sum(cy), F.sum(cx * cx), F.sum(cy * cy), F.sum(cx * cy)]
    rows: list[Any] = units.groupBy("variant").agg(*aggregates).orderBy("variant").collect()
    return rows


def spark_session() -> Any:
    """A local Spark session with the settings of ``abkit.io.engines.local_spark``."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName("abkit-bench")
        .master("local[*]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stop_spark(spark: Any) -> None:
    """Stop Spark and wait for its JVM to exit, so that the JVM's CPU time is counted
    in this process's children's (and so in what ``os.wait4`` reports for it)."""
    from pyspark import SparkContext

    jvm = SparkContext._gateway.proc  # type: ignore[union-attr]
    spark.stop()
    jvm.stdin.close()  # the JVM exits when its standard input closes
    jvm.wait()


DUCKDB_ABKIT = """
import sys, abkit
sys.path.insert(0, sys.argv[4])
from compare import duckdb_connection
events = duckdb_connection().read_parquet(sys.argv[2])
print(len(abkit.analyze(sys.argv[1], sys.argv[3], events=events).results))
"""

DUCKDB_HAND = """
import sys
sys.path.insert(0, sys.argv[1])
from compare import duckdb_connection, duckdb_hand_query
connection = duckdb_connection()
print(len(connection.sql(duckdb_hand_query(sys.argv[2], sys.argv[3])).fetchall()))
"""

DUCKDB_HAND_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from compare import duckdb_connection, duckdb_hand_script
connection = duckdb_connection()
rows = 0
for statement in duckdb_hand_script(sys.argv[2], sys.argv[3]):
    result = connection.sql(statement)  # None for CREATE
    rows += 0 if result is None else len(result.fetchall())
print(rows)
"""

# abkit's per-metric results as JSON, events read by Polars or on the local Spark session
ABKIT_RESULTS = """
import sys, json
sys.path.insert(0, sys.argv[1])
from compare import spark_session, stop_spark
spark = spark_session() if sys.argv[5] == "spark" else None
import abkit
events = spark.read.parquet(sys.argv[3]) if spark is not None else sys.argv[3]
result = abkit.analyze(sys.argv[2], sys.argv[4], events=events)
results = result.to_dict()["results"]
# the surrogate forecast is made on Polars, and on another engine only when [surrogate]
# metrics names its metrics (it reads every unit's signals): left out of the comparison
for metric in results:
    metric.pop("surrogate", None)
    metric["warnings"] = [
        w for w in metric.get("warnings", []) if not w.startswith("surrogate forecast of")
    ]
print(json.dumps(results))
if spark is not None:
    stop_spark(spark)
"""

SPARK_HAND = """
import sys
sys.path.insert(0, sys.argv[1])
import compare
from compare import spark_session, stop_spark
spark = spark_session()
print(len(getattr(compare, sys.argv[4])(spark, sys.argv[2], sys.argv[3])))
stop_spark(spark)
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


def export_at(users: int, data: Path | None, folder: Path) -> tuple[Path, Path]:
    """The export in ``data`` (``--data``), or a simulated one of ``users`` in ``folder``."""
    if data is not None:
        return data / "assignments.parquet", data / "events.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    return events_export(users, folder)


def unit_count(assignments: Path) -> int:
    """Rows of the assignments, counted in a child process (see :func:`events_export`)."""
    rows = "pl.scan_parquet(sys.argv[1]).select(pl.len()).collect().item()"
    code = f"import sys, polars as pl\nprint({rows})"
    return int(run(inline(code, str(assignments)))[2])


def _spark(assignments: Path, events: Path, rounds: int) -> None:
    """abkit on the local Spark session against PySpark computing the same aggregates
    (and the narrower per-arm query); abkit's numbers on Spark against its numbers on
    Polars."""
    ours = inline(ABKIT_RESULTS, str(HERE), str(assignments), str(events), str(CONFIG), "spark")
    hand = inline(SPARK_HAND, str(HERE), str(assignments), str(events), "spark_hand_query")
    script = inline(SPARK_HAND, str(HERE), str(assignments), str(events), "spark_hand_script")
    runs = compare(
        "abkit on local Spark",
        ours,
        "PySpark, same aggregates",
        script,
        rounds,
        also=(("PySpark DataFrame query, per-arm sums only", hand),),
    )
    polars = measure(
        inline(ABKIT_RESULTS, str(HERE), str(assignments), str(events), str(CONFIG), "polars")
    )
    spark = runs["abkit on local Spark"][0]
    same = _same(json.loads(polars.stdout), json.loads(spark.stdout))
    print(f"  CPU of the whole process tree (Python and the JVM); numbers against Polars: {same}")


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
        choices=[
            "events",
            "looks",
            "units",
            "bootstrap",
            "duckdb",
            "spark",
            "cuped",
            "ai",
            "paired",
        ],
    )
    parser.add_argument(
        "--users", type=int, default=None, help="default 1,000,000 (duckdb: 200,000)"
    )
    parser.add_argument("--large-users", type=int, default=2_000_000, help="duckdb only")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, help="an export to read instead of simulating")
    parser.add_argument("--large-data", type=Path, help="duckdb: the larger export to read")
    parser.add_argument(
        "--duckdb-memory-limit",
        help="duckdb: DuckDB's memory_limit on every side (e.g. 500MB), spilling to a "
        "temporary folder, so that the RSS growth shows what is not DuckDB's working memory",
    )
    args = parser.parse_args()
    users = args.users or (200_000 if args.workload == "duckdb" else 1_000_000)
    folder = Path(tempfile.mkdtemp(prefix="abkit-bench-"))
    if args.duckdb_memory_limit:
        os.environ["BENCH_DUCKDB_MEMORY"] = args.duckdb_memory_limit
        os.environ["BENCH_DUCKDB_SPILL"] = str(folder / "spill")
    try:
        if args.workload in ("events", "looks", "spark"):
            assignments, events = export_at(users, args.data, folder)
            fixed = analyze_cmd(assignments, events)
            if args.workload == "events":
                floor = inline(FLOOR_QUERY, str(assignments), str(events))
                same = inline(FLOOR_SAME, str(assignments), str(events))
                compare(
                    "abkit analyze",
                    fixed,
                    "Polars, same aggregates",
                    same,
                    args.rounds,
                    also=(("Polars streaming query, per-unit only", floor),),
                )
            elif args.workload == "looks":
                looks = analyze_cmd(assignments, events, "--sequential", "msprt")
                compare("30 daily looks", looks, "fixed horizon", fixed, args.rounds)
            else:
                _spark(assignments, events, args.rounds)
        elif args.workload == "duckdb":
            sizes = [(users, args.data, "small"), (args.large_users, args.large_data, "large")]
            runs = {}
            for n, data, label in sizes:
                assignments, events = export_at(n, data, folder / label)
                print(f"{label}: {unit_count(assignments):,} units")
                files = (str(assignments), str(events))
                ours = inline(DUCKDB_ABKIT, *files, str(CONFIG), str(HERE))
                script = inline(DUCKDB_HAND_SCRIPT, str(HERE), *files)
                hand = inline(DUCKDB_HAND, str(HERE), *files)
                runs[label] = compare(
                    "abkit on DuckDB",
                    ours,
                    "DuckDB SQL, same aggregates",
                    script,
                    args.rounds,
                    also=(("DuckDB SQL, per-arm sums only", hand),),
                )
            print(
                "  RSS growth, large / small: "
                + ", ".join(
                    f"{name} {peak(runs['large'][name]) / peak(runs['small'][name]):.2f}x"
                    for name in runs["small"]
                )
            )
        elif args.workload == "cuped":
            assignments, events = events_export(users, folder, pre_days=14)
            config = folder / "cuped.toml"
            extra = "\n[cuped]\npre_days = 14\n\n[novelty]\nperiod_days = 7\n"
            config.write_text(CONFIG.read_text() + extra)
            adjusted = analyze_cmd(assignments, events, config=config)
            plain = analyze_cmd(assignments, events)
            compare("CUPED + novelty", adjusted, "plain analysis", plain, args.rounds)
        elif args.workload == "ai":
            assignments, events = events_export(users, folder, ai=True)
            config = folder / "ai.toml"
            config.write_text(AI_CONFIG)
            pack = analyze_cmd(assignments, events, config=config)
            example = analyze_cmd(assignments, events)
            compare("AI metric pack", pack, "example's 9 metrics", example, args.rounds)
        elif args.workload == "paired":
            table = folder / "outputs.parquet"
            print(run(inline(REPLAY, str(users), str(table)))[2].strip())
            config = folder / "paired.toml"
            config.write_text(PAIRED_CONFIG)
            cli = [sys.executable, "-m", "abkit_cli.main", "analyze", str(table)]
            ours = [*cli, "-c", str(config), "-f", "json"]
            floor = inline(PAIRED_FLOOR, str(table))
            compare("abkit analyze", ours, "Polars paired query", floor, args.rounds)
        elif args.workload == "units":
            table = folder / "units.parquet"
            units_table(users, table)
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
