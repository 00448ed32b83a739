"""CSV benchmark: an analysis from CSV against the same analysis from Parquet plus
Polars' own parse of the CSV.

Usage: python benchmarks/bench_csv.py [--users N] [--repeats R] [--keep DIR]

Builds an event export with :func:`abkit.simulate` (the default 30,000 users give
about 600k events in four columns, user_id, timestamp, event and session_id, as in
the export of issue 22), writes it as CSV and as Parquet, and times in one run (so
that a busy machine slows all three alike), best of R:

* (a) ``abkit.analyze`` from the CSV files;
* (b) ``abkit.analyze`` from the Parquet files;
* (c) ``pl.read_csv`` of the two CSV files (Polars' own parse, the floor for any
  CSV reader).

The ratio a / (b + c) is the overhead of abkit's CSV reading beyond parsing; the
target is at most 1.5 (the row-by-row checks in Python made it about 3).  The two
analyses must give the same numbers.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
from timing import best_of

import abkit

COLUMNS = ("user_id", "timestamp", "event", "session_id")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the export here and keep it")
    args = parser.parse_args()
    export = abkit.simulate(users=args.users, seed=1)
    events = export.events.select(COLUMNS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for fmt in ("csv", "parquet"):
            a, e = folder / f"assignments.{fmt}", folder / f"events.{fmt}"
            write = (lambda f, p: f.write_csv(p)) if fmt == "csv" else pl.DataFrame.write_parquet
            write(export.assignments, a)
            write(events, e)
            files[fmt] = (a, e)
        size = files["csv"][1].stat().st_size / 1e6
        print(f"export: {args.users:,} users, {events.height:,} events, events.csv {size:.0f} MB")

        def from_csv() -> dict[str, Any]:
            return abkit.analyze(files["csv"][0], events=files["csv"][1]).to_dict()

        def from_parquet() -> dict[str, Any]:
            return abkit.analyze(files["parquet"][0], events=files["parquet"][1]).to_dict()

        def polars_parse() -> int:
            return sum(pl.read_csv(p, infer_schema_length=10_000).height for p in files["csv"])

        csv_result, a = best_of("(a) analysis from CSV", from_csv, args.repeats)
        parquet_result, b = best_of("(b) analysis from Parquet", from_parquet, args.repeats)
        _, c = best_of("(c) pl.read_csv of the CSV files", polars_parse, args.repeats)
    same = [r["p_value"] for r in csv_result["results"]] == [
        r["p_value"] for r in parquet_result["results"]
    ]
    print(f"same p-values from CSV and Parquet: {same}")
    print(f"ratio a / (b + c) = {a:.2f} / ({b:.2f} + {c:.2f}) = {a / (b + c):.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
