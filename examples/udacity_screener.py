"""Udacity "Free Trial Screener" (A/B Testing course final project) as a summary input.

Usage: python examples/udacity_screener.py [FOLDER]
(FOLDER defaults to ../shared/data/udacity_free_trial_screener)

The course's daily exports per arm (Pageviews, Clicks, Enrollments, Payments) are
turned into abkit's summary format: one row per arm, metric and day with ``n`` =
clicks and ``mean`` = enrolments (or payments) per click.  The last 14 days have no
enrolments yet (the 14-day trial had not ended); abkit counts those rows as excluded,
like an immature retention window.  Published (course solution): gross conversion
−0.0206 [−0.0291, −0.0120], net conversion −0.0049 [−0.0116, 0.0019].

The data has no stated licence: it is read from ../shared/data, never copied here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

import abkit

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "udacity_free_trial_screener"
CONFIG = {
    "experiment": {
        "name": "udacity-free-trial-screener",
        "control": "control",
        "variants": ["control", "experiment"],
    },
    "metrics": [
        {
            "name": "gross_conversion",
            "type": "proportion",
            "column": "gross_conversion",
            "direction": "decrease",
        },
        {"name": "net_conversion", "type": "proportion", "column": "net_conversion"},
    ],
}


def summary_table(folder: Path = DATA) -> pl.DataFrame:
    """Long summary rows (variant, metric, day, n, mean) from the two daily CSVs."""
    parts = []
    for variant in ("control", "experiment"):
        daily = pl.read_csv(folder / f"final_project_results_{variant}.csv")
        for metric, numerator in (
            ("gross_conversion", "Enrollments"),
            ("net_conversion", "Payments"),
        ):
            parts.append(
                daily.select(
                    pl.lit(variant).alias("variant"),
                    pl.lit(metric).alias("metric"),
                    pl.col("Date").alias("day"),
                    pl.col("Clicks").alias("n"),
                    (pl.col(numerator) / pl.col("Clicks")).alias("mean"),
                )
            )
    return pl.concat(parts)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    if not (folder / "final_project_results_control.csv").is_file():
        raise SystemExit(
            f"{folder} holds no final_project_results_*.csv: this example reads the Udacity "
            "free-trial screener data from ../shared/data, which is not part of abkit; "
            "download it or pass its folder as the first argument."
        )
    print(abkit.analyze(summary_table(folder), CONFIG).to_text())


if __name__ == "__main__":
    main()
