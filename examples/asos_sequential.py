"""Sequential analysis of the 78 real ASOS experiments (Liu et al., NeurIPS 2021).

Usage: python examples/asos_sequential.py [--data PATH] [--limit N]

Each (experiment, treatment, metric) stream of daily cumulative checkpoints is turned
into abkit's summary format (one row per arm and checkpoint: n, mean, variance) and
analysed with ``abkit.analyze(..., sequential=method)`` for mSPRT, the asymptotic
confidence sequence and a weekly group-sequential design; the fixed-horizon test at
the last checkpoint is the reference.  Metric 1 is binary (analysed as a
proportion), metrics 2-4 continuous (Welch).  Checkpoints without a variance are left
out and counted; streams with none are skipped.

The data (CC BY 4.0, Liu, Cardoso, Couturier & McCoy 2021, OSF 64jsb) is read from
../shared/data; it is not copied here.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

import abkit

DEFAULT = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "asos_digital_experiments"
    / "asos_digital_experiments_dataset.parquet"
)
METHODS = ("msprt", "cs", "gst")


@dataclass
class StreamResult:
    stream: str
    last_day: float
    fixed_significant: bool
    decisions: dict[str, tuple[str, float | None]]


def stream_table(rows: pl.DataFrame) -> pl.DataFrame:
    """Checkpoint rows of one stream → abkit summary rows (control and treatment)."""
    arm = lambda s, name: rows.select(  # noqa: E731
        pl.lit(name).alias("variant"),
        pl.lit("m").alias("metric"),
        pl.col("time_since_start").alias("day"),
        pl.col(f"count_{s}").alias("n"),
        pl.col(f"mean_{s}").alias("mean"),
        pl.col(f"variance_{s}").alias("variance"),
    )
    return pl.concat([arm("c", "control"), arm("t", "treatment")])


def gst_plan(last_day: float) -> dict[str, object]:
    end = max(1, round(last_day))
    looks = [d for d in range(7, end, 7)] + [end]
    return {"method": "gst", "looks": looks, "duration_days": end}


def analyse_stream(key: tuple, rows: pl.DataFrame) -> StreamResult | None:
    metric_id = key[2]
    rows = rows.sort("time_since_start")
    if metric_id != 1:
        rows = rows.filter(pl.col("variance_c").is_not_null() & pl.col("variance_t").is_not_null())
    if rows.height == 0:
        return None
    table = stream_table(rows)
    if metric_id == 1:
        table = table.drop("variance")
    last_day = float(rows["time_since_start"].max())
    base = {
        "experiment": {"name": "/".join(map(str, key)), "control": "control"},
        "input": {"cumulative": True, "day": "day"},
        "metrics": [
            {"name": "m", "type": "proportion" if metric_id == 1 else "mean", "column": "m"}
        ],
    }
    decisions = {}
    fixed = None
    for method in METHODS:
        seq = {"method": method} if method != "gst" else gst_plan(last_day)
        r = abkit.analyze(table, {**base, "sequential": seq}).results[0]
        fixed = r
        d = r.decision
        day = next((lk.day for lk in r.sequential.looks if lk.look == d.look), None)
        decisions[method] = (d.outcome, day)
    return StreamResult(
        "/".join(map(str, key)),
        last_day,
        bool(fixed.p_value is not None and fixed.p_value < 0.05),
        decisions,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int, default=None, help="analyse the first N streams")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(
            f"{args.data} is not there: this example reads the ASOS dataset (OSF 64jsb) from "
            "../shared/data, which is not part of abkit; download it or pass --data PATH."
        )
    data = pl.read_parquet(args.data)
    keys = ["experiment_id", "variant_id", "metric_id"]
    streams = data.partition_by(keys, as_dict=True, maintain_order=True)
    items = sorted(streams.items())[: args.limit]
    results, skipped = [], 0
    for key, rows in items:
        res = analyse_stream(key, rows)
        if res is None:
            skipped += 1
        else:
            results.append(res)
    print(report(results, skipped))


def report(results: list[StreamResult], skipped: int) -> str:
    n = len(results)
    fixed = sum(r.fixed_significant for r in results)
    lines = [
        f"{n} treatment × metric streams analysed ({skipped} skipped: no variance); "
        f"fixed-horizon test at the last checkpoint significant at 0.05 in {fixed}.",
        "",
        "| method | streams stopped | treatment higher / lower | also significant at "
        "the fixed horizon | fixed-horizon significant not detected | median decision day "
        "| median share of the experiment's duration |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        stopped = [r for r in results if r.decisions[method][0] in ("better", "worse")]
        kinds = Counter(r.decisions[method][0] for r in stopped)
        both = sum(r.fixed_significant for r in stopped)
        missed = fixed - both
        days = sorted(r.decisions[method][1] for r in stopped)
        shares = sorted(r.decisions[method][1] / r.last_day for r in stopped)
        median = lambda v: v[len(v) // 2] if v else math.nan  # noqa: E731
        lines.append(
            f"| {method} | {len(stopped)} | {kinds['better']} / {kinds['worse']} | "
            f"{both} | {missed} | {median(days):.1f} | {median(shares):.0%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
