"""The experiment archive: rows of an analysis, appends from two processes at once, and
a clear error for a corrupt or foreign file."""

from __future__ import annotations

import functools
import http.server
import math
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.archive import SCHEMA, Archive, rows_from_result
from abkit.errors import AbkitInputError


@functools.cache
def _result():
    rng = np.random.default_rng(7)
    units = pl.DataFrame(
        {
            "user_id": range(2000),
            "variant": ["control", "v2"] * 1000,
            "converted": (rng.random(2000) < 0.3).astype(int),
            "revenue": rng.gamma(2.0, 5.0, 2000),
        }
    )
    return abkit.analyze(units, title="signup-flow")


def test_rows_of_an_analysis():
    result = _result()
    rows = rows_from_result(result)
    assert dict(rows.schema) == SCHEMA
    assert rows["metric"].to_list() == [r.metric for r in result.results]
    r = result.results[0]
    row = rows.row(0, named=True)
    # the standard errors read back from the intervals
    z = 1.959963984540054
    assert row["effect_se"] == pytest.approx((r.ci[1] - r.ci[0]) / (2 * z), rel=1e-12)
    assert row["log_ratio"] == pytest.approx(math.log1p(r.relative_effect), rel=1e-12)
    assert row["decision"] == r.decision.outcome
    assert len(row["config_hash"]) == 16


def test_add_read_latest_and_prior(tmp_path):
    archive = Archive(tmp_path / "archive")
    result = _result()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    archive.add(result, added_at=t0)
    archive.add(result, added_at=t0 + timedelta(days=1))  # the same experiment again
    assert archive.read().height == 2 * len(result.results)
    assert archive.latest().height == len(result.results)
    assert archive.experiments().height == 1
    # twelve past experiments of one metric: a prior is fitted; five: the default
    rng = np.random.default_rng(1)
    base = rows_from_result(result).filter(pl.col("metric") == "revenue")
    for i in range(12):
        se = float(rng.uniform(0.02, 0.05))
        archive.append(
            base.with_columns(
                experiment=pl.lit(f"past-{i}"),
                log_ratio=pl.lit(float(rng.normal(0.01, 0.03) + rng.normal(0, se))),
                log_ratio_se=pl.lit(se),
            )
        )
    fitted = archive.prior("revenue")
    assert not fitted.fallback and fitted.experiments == 13
    assert archive.prior("revenue", exclude="signup-flow").experiments == 12
    fallback = archive.prior("converted")
    assert fallback.fallback and "fewer than 10" in fallback.note
    assert not list((tmp_path / "archive").glob(".*"))  # no temporary file left


def _append_many(location, rows, times):
    archive = Archive(location)
    for _ in range(times):
        archive.append(rows)


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    rows = rows_from_result(_result())
    location = str(tmp_path / "archive")
    times = 60
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(location, rows, times)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    archive = Archive(location)
    assert len(archive.files()) == 2 * times
    assert archive.read().height == 2 * times * rows.height


def test_corrupt_file_is_named(tmp_path):
    archive = Archive(tmp_path)
    archive.add(_result())
    bad = tmp_path / "part-20260101T000000000000Z-1-deadbeef.parquet"
    good = archive.files()[0].read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # a truncated write
    with pytest.raises(AbkitInputError) as err:
        archive.read()
    message = str(err.value)
    assert str(bad) in message and "not a readable Parquet file" in message
    assert "move this file out of the archive folder" in message


def test_foreign_files_are_named(tmp_path):
    archive = Archive(tmp_path)
    archive.add(_result())
    other = tmp_path / "someone-elses.parquet"
    pl.DataFrame({"user_id": [1, 2], "score": [0.5, 0.7]}).write_parquet(other)
    with pytest.raises(AbkitInputError, match="not written by abkit's archive: it lacks"):
        archive.read()
    # the right columns without the archive's marker are foreign too
    rows_from_result(_result()).write_parquet(other)
    with pytest.raises(AbkitInputError, match="carries no abkit archive marker") as err:
        archive.read()
    assert str(other) in str(err.value)
    other.unlink()
    # a temporary file of an append in progress is not read
    (tmp_path / ".part-x.parquet.tmp").write_bytes(b"half")
    assert archive.read().height == len(_result().results)


def test_missing_folder_and_url_append(tmp_path):
    with pytest.raises(AbkitInputError, match="no archive folder"):
        Archive(tmp_path / "nowhere").read()
    with pytest.raises(AbkitInputError, match="read but not appended"):
        Archive("s3://bucket/archive").add(_result())


def test_read_from_a_url(tmp_path):
    archive = Archive(tmp_path)
    path = archive.add(_result())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{path.name}"
        assert Archive(url).read().equals(archive.read())
    finally:
        server.shutdown()


def test_an_unnamed_analysis_is_refused_and_experiments_count_once(tmp_path):
    """Every unnamed analysis is called "A/B result", so the archive, which tells
    experiments apart by name, refuses it instead of merging them; and an experiment
    with several treatments counts once in a prior (its lifts share one control)."""
    archive = Archive(tmp_path / "archive")
    result = _result()
    unnamed = abkit.analyze(
        pl.DataFrame({"user_id": range(40), "variant": ["control", "b"] * 20, "x": range(40)})
    )
    with pytest.raises(abkit.AbkitInputError, match="no name of its own"):
        archive.add(unnamed)
    rng = np.random.default_rng(4)
    for i in range(12):
        rows = rows_from_result(result).with_columns(
            experiment=pl.lit(f"past-{i}"), log_ratio=pl.lit(float(rng.normal(0.01, 0.02)))
        )
        second = rows.with_columns(variant=pl.lit("v3"))  # another treatment, same control
        archive.append(pl.concat([rows, second]))
    assert archive.prior("revenue").experiments == 12
