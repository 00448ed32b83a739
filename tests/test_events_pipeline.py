"""Event-level exports: metric definitions, exclusions and the row-accounting invariant."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

import abkit
from abkit.dev.simulate import simulate
from abkit.engine.events import DUPLICATE_EVENT
from abkit.errors import AbkitInputError
from abkit.io.exclusions import RowCount
from abkit.names import ROW

ASSIGN = pl.DataFrame(
    {
        "user_id": [1, 2, 3, 4, 4, 5, 6, 7],
        "variant": ["control", "v2", "v2", "control", "v2", None, "control", "v2"],
        "assigned_at": [
            "2024-01-01T00:00:00Z",
            "2024-01-01T12:00:00Z",
            "2024-01-02 00:00:00",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
            "2024-01-08T00:00:00Z",
        ],
    }
)
EVENTS = pl.DataFrame(
    {
        "user_id": [1, 1, 1, 1, 1, 3, 3, 4, 99, 6, 6, 7, None, 6],
        "timestamp": [
            "2024-01-01T01:00:00Z",  # u1 day 0, s1: output
            "2024-01-01T01:01:00Z",  # u1 day 0, s1: share
            "2024-01-02T02:00:00Z",  # u1 day 1, s2: output -> D1
            "2024-01-02T02:00:00Z",  # exact duplicate of the previous row
            "2024-01-08T05:00:00Z",  # u1 day 7, s3: output -> D7
            "2024-01-01T23:00:00Z",  # u3 before assignment
            "2024-01-02T02:00:00Z",  # u3 day 0
            "2024-01-02T00:00:00Z",  # u4: unit in two variants
            "2024-01-02T00:00:00Z",  # u99: never assigned
            "not a time",  # unparseable
            "2024-01-02T10:00:00Z",  # u6 day 1
            "2024-01-09T12:00:00Z",  # u7 day 1: export end
            "2024-01-03T00:00:00Z",  # null unit id
            "2024-01-06T00:00:00Z",  # u6 day 5
        ],
        "event": [
            "ai_output",
            "share",
            "ai_output",
            "ai_output",
            "ai_output",
            "ai_output",
            "ai_output",
            "ai_output",
            "ai_output",
            "ai_output",
            "share",
            "ai_output",
            "ai_output",
            "ai_output",
        ],
        "session_id": [
            "s1",
            "s1",
            "s2",
            "s2",
            "s3",
            "s0",
            "s4",
            "s5",
            "s6",
            "s7",
            "s8",
            "s9",
            "s10",
            "s11",
        ],
    }
)
CONFIG = {
    "experiment": {"name": "unit-test", "variants": ["control", "v2"]},
    "metrics": [
        {"name": "d1", "type": "retention", "day": 1},
        {"name": "d7", "type": "retention", "day": 7},
        {"name": "d1_7", "type": "retention", "window": [1, 7]},
        {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"},
        {"name": "outputs", "type": "mean", "column": "ai_output"},
        {"name": "depth", "type": "session_depth"},
    ],
}


@pytest.fixture(scope="module")
def result():
    return abkit.analyze(ASSIGN, CONFIG, events=EVENTS)


def _reasons(result, table):
    return {e.reason: e.rows for e in result.exclusions if e.table == table}


def test_every_row_is_used_or_excluded_with_a_reason(result):
    assert _reasons(result, "assignments") == {
        "null variant": 1,
        "unit assigned to more than one variant (all its rows excluded)": 2,
    }
    assert _reasons(result, "events") == {
        DUPLICATE_EVENT: 1,
        "event before assignment (ignored for outcomes)": 1,
        "event of a unit excluded from the assignments": 1,
        "event of a unit that is not in the assignments": 1,
        "event with null unit id": 1,
        "event with unparseable timestamp": 1,
    }
    assert result.rows["assignments"] == RowCount(read=8, used=5, excluded=3)
    assert result.rows["events"] == RowCount(read=14, used=8, excluded=6)


def test_srm_counts_valid_units_including_inactive_ones(result):
    assert result.srm.observed == {"control": 2, "v2": 3}  # u1, u6 | u2, u3, u7


def _row(result, metric):
    return next(r for r in result.results if r.metric == metric)


def test_retention_uses_24h_windows_and_only_mature_units(result):
    # export end 2024-01-09T12:00. D1 needs assigned_at + 48 h <= end: all 5 units but u7
    # (assigned 01-08). D1 active: u1 (day 1), u6 (day 1); u2, u3 inactive.
    d1 = _row(result, "d1")
    assert (d1.control_n, d1.treatment_n) == (2, 2)
    assert d1.control_value == 1.0 and d1.treatment_value == 0.0
    # D7 needs assigned_at + 8 d <= 01-09T12:00: u1, u6 (01-01 00:00); u2 at 01-01T12:00 ok
    d7 = _row(result, "d7")
    assert (d7.control_n, d7.treatment_n) == (2, 1)
    assert d7.control_value == 0.5  # u1 active on day 7, u6 not
    # why units are left out is a note on the data, not a warning about the result
    assert any("have not completed the window" in n for n in result.metric_notes["d7"])
    assert not any("have not completed the window" in w for w in d7.warnings)
    d17 = _row(result, "d1_7")
    assert d17.control_value == 1.0  # u1 (days 1, 7) and u6 (days 1, 5)


def test_ratio_and_mean_count_inactive_units_as_zero(result):
    share = _row(result, "share_rate")
    # control: u1 outputs 3 (dup dropped), shares 1; u6 outputs 1 (day 5), shares 1 -> 2/4
    assert share.control_value == pytest.approx(2 / 4)
    # v2: u2 none, u3 one output (the pre-assignment one is ignored), u7 one -> 0/2
    assert share.treatment_value == 0.0
    outputs = _row(result, "outputs")
    assert outputs.control_value == pytest.approx(2.0)  # (3 + 1) / 2
    assert outputs.treatment_value == pytest.approx(2 / 3)  # (0 + 1 + 1) / 3


def test_session_depth_and_shape(result):
    depth = _row(result, "depth")
    # control sessions: u1 s1 (1 output), s2 (1), s3 (1); u6 s8 (0 outputs), s11 (1)
    assert depth.control_value == pytest.approx(4 / 5)
    shape = result.session_depth["depth"]["control"]
    assert shape.sessions == 5
    assert shape.share_zero == pytest.approx(0.2)
    assert shape.share_one == pytest.approx(0.8)


def test_to_dict_has_the_documented_json_shape(result):
    d = result.to_dict()
    assert set(d["experiment"]) >= {"name", "control", "variants", "alpha", "unit"}
    assert set(d["srm"]) >= {"p_value", "observed", "expected_share", "mismatch"}
    assert all(set(e) >= {"reason", "rows"} for e in d["exclusions"])
    keys = {
        "metric",
        "variant",
        "method",
        "control",
        "treatment",
        "effect",
        "ci",
        "relative_effect",
        "relative_ci",
        "p_value",
        "p_value_adjusted",
        "significant",
        "warnings",
    }
    for r in d["results"]:
        assert keys <= set(r)
        assert set(r["control"]) == {"n", "value"}


def test_table_is_a_polars_frame(result):
    table = result.table
    assert isinstance(table, pl.DataFrame)
    assert table.height == len(CONFIG["metrics"])
    assert {"metric", "variant", "effect", "ci_low", "ci_high", "p_value"} <= set(table.columns)


def test_event_before_assignment_window_is_relative_to_each_unit():
    # one unit assigned late: its earlier event must not count as day 0
    assign = pl.DataFrame(
        {
            "user_id": [1, 2],
            "variant": ["control", "t"],
            "assigned_at": ["2024-01-05", "2024-01-01"],
        }
    )
    events = pl.DataFrame(
        {
            "user_id": [1, 2, 2],
            "event": ["x", "x", "x"],
            "timestamp": ["2024-01-04", "2024-01-02T01:00", "2024-01-20"],
        }
    )
    res = abkit.analyze(
        assign, {"metrics": [{"name": "d1", "type": "retention", "day": 1}]}, events=events
    )
    assert res.rows["events"] == RowCount(read=3, used=2, excluded=1)
    row = res.results[0]
    assert (row.control_value, row.treatment_value) == (0.0, 1.0)


def test_every_text_row_names_the_test_behind_its_p_value(result):
    lines = result.to_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("metric "))
    rows = lines[header + 2 : header + 2 + len(result.results)]
    expected = {
        "d1": "2-prop z",
        "share_rate": "delta z",
        "outputs": "Welch t",
        "depth": "delta z",
    }
    for row in rows:
        name = row.split()[0]
        if name in expected:
            assert expected[name] in row, row


def test_exclusions_table_is_a_polars_frame_of_every_reason(result):
    table = result.exclusions_table
    assert table.columns == ["table", "reason", "rows"]
    assert table["rows"].sum() == sum(c.excluded for c in result.rows.values())


def _straggler_export(gap: dt.timedelta) -> tuple[pl.DataFrame, pl.DataFrame, dt.datetime]:
    """2,001 events: 1,999 in the first five days (the last of them, the 0.999 lower
    quantile, at noon of day 5) and two stragglers ``gap`` after that quantile."""
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    bulk = t0 + dt.timedelta(days=5, hours=12)
    times = [t0 + dt.timedelta(minutes=3 * i) for i in range(1998)] + [bulk]
    times += [bulk + gap, bulk + gap]
    units = [i % 100 for i in range(len(times))]
    assignments = pl.DataFrame(
        {"user_id": range(100), "variant": ["control", "b"] * 50, "assigned_at": [t0] * 100}
    )
    events = pl.DataFrame({"user_id": units, "timestamp": times, "event": ["ai_output"] * 2001})
    return assignments, events, bulk


@pytest.mark.parametrize("hours", [-1, 1, 30])
def test_the_straggler_rule_is_the_lower_quantile_rule_exactly(hours):
    """The end is refused when the latest event lies more than 30 days after the lower
    0.999 quantile of the event times (numpy's 'lower' quantile as the reference); the
    ±1 h cases put the limit on the quantile's own day, where an exact count decides."""
    gap = dt.timedelta(days=30, hours=hours)
    assignments, events, bulk = _straggler_export(gap)
    stamps = events["timestamp"].dt.timestamp("us").to_numpy()
    reference = np.quantile(stamps, 0.999, method="lower")
    assert reference == int(bulk.timestamp() * 1e6)
    config = {"metrics": [{"name": "outputs", "type": "mean", "column": "ai_output"}]}
    if hours < 0:
        result = abkit.analyze(assignments, config, events=events)
        assert result.to_dict()["experiment"]["export_end"] == (bulk + gap).isoformat()
    else:
        with pytest.raises(AbkitInputError, match=r"2 event\(s\) are stamped over 30 days"):
            abkit.analyze(assignments, config, events=events)


def test_the_retention_curve_matches_a_unit_by_unit_count():
    """Eligible on day k: assigned at least k + 1 whole days before the export end;
    active: eligible with an event in [assigned + k days, assigned + k + 1 days).  Units
    assigned in the export's last days (unfinished days with events) are included."""
    sim = simulate(users=1500, days=9, enrol_days=8, seed=21)
    result = abkit.analyze(sim.assignments, events=sim.events).to_dict()
    end = dt.datetime.fromisoformat(result["experiment"]["export_end"])
    day_us = 86_400_000_000
    units = sim.assignments.with_columns(
        ((pl.lit(end) - pl.col("assigned_at")).dt.total_microseconds() // day_us).alias("days")
    )
    events = sim.events.join(units, on="user_id").with_columns(
        ((pl.col("timestamp") - pl.col("assigned_at")).dt.total_microseconds() // day_us).alias("k")
    )
    events = events.filter(pl.col("k") >= 0)
    for variant, curve in result["retention_curve"].items():
        for k, eligible, active in zip(
            curve["day"], curve["eligible"], curve["active"], strict=True
        ):
            mature = units.filter((pl.col("variant") == variant) & (pl.col("days") >= k + 1))
            on_day = events.filter((pl.col("variant") == variant) & (pl.col("k") == k))
            assert eligible == mature.height
            assert active == on_day.join(mature, on="user_id", how="semi")["user_id"].n_unique()


@pytest.mark.parametrize("sequential", [None, "msprt"])
def test_an_export_reduced_in_parts_gives_the_same_result(monkeypatch, sequential):
    """Large Polars exports are reduced in parts split by a hash of the unit id; the
    parts' counts, histograms, curve and per-unit rows combine to the one-part result
    (duplicates and rows of every exclusion reason included)."""
    from abkit.engine import backend as engine
    from tests.engines import assert_same_numbers
    from tests.test_engines import METRICS, PRICES, _hostile

    assignments, events = _hostile(users=900, seed=3)
    metrics = METRICS
    sequential_spec = {"method": sequential} if sequential else {}
    config = {"metrics": metrics, "sequential": sequential_spec, "cost": PRICES}
    whole = abkit.analyze(assignments, config, events=events).to_dict()
    monkeypatch.setattr(engine, "EVENTS_PER_PART", events.height // 4)
    parts = abkit.analyze(assignments, config, events=events).to_dict()
    assert_same_numbers(whole, parts)


def test_one_unreadable_timestamp_among_readable_ones_is_excluded_not_fatal():
    """Only an export whose every timestamp is unreadable is a format error; a few bad
    rows are excluded and counted."""
    sim = simulate(users=200, days=5, enrol_days=2, seed=1)
    events = sim.events.with_columns(pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
    bad = events.head(1).with_columns(pl.lit("not a time").alias("timestamp"))
    result = abkit.analyze(sim.assignments, events=pl.concat([events, bad])).to_dict()
    rows = {e["reason"]: e["rows"] for e in result["exclusions"]}
    assert rows["event with unparseable timestamp"] == 1
    assert result["rows"]["events"]["used"] == events.height - rows.get(
        "event before assignment (ignored for outcomes)", 0
    ) - rows.get(DUPLICATE_EVENT, 0)


def _events_with_empty_rows() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A simulated export whose events hold two blank rows (every cell empty) and three
    rows without a unit id but with the other cells."""
    sim = simulate(users=300, days=7, enrol_days=2, seed=8)
    events = sim.events
    blank = pl.DataFrame([[None] * events.width] * 2, schema=events.schema, orient="row")
    no_unit = events.head(3).with_columns(pl.lit(None, events.schema["user_id"]).alias("user_id"))
    return sim.assignments, pl.concat(
        [events.head(50), blank, events[50:400], no_unit, events[400:]]
    )


def _event_reasons(result: abkit.AnalysisResult) -> dict[str, int]:
    return {e.reason: e.rows for e in result.exclusions if e.table == "events"}


@pytest.mark.parametrize("parts", [1, 4])
def test_blank_event_rows_are_told_apart_from_rows_without_a_unit(
    tmp_path, monkeypatch: pytest.MonkeyPatch, parts: int
) -> None:
    """The pass reads only the columns it uses, so it counts blank rows with the rows
    without a unit id; they are told apart afterwards, from Parquet, CSV and a frame
    alike, whether the export is reduced in one part or several."""
    from abkit.engine import backend as engine

    assignments, events = _events_with_empty_rows()
    monkeypatch.setattr(engine, "EVENTS_PER_PART", -(-events.height // parts))
    events.write_parquet(tmp_path / "events.parquet")
    text = events.with_columns(pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
    text.write_csv(tmp_path / "events.csv")
    for source in (events, tmp_path / "events.parquet", tmp_path / "events.csv"):
        reasons = _event_reasons(abkit.analyze(assignments, events=source))
        assert reasons["blank line (every cell empty)"] == 2, source
        assert reasons["event with null unit id"] == 3, source
    # only blank rows: no row is left without a unit id for another reason
    only_blank = events.filter(pl.col("user_id").is_not_null())
    only_blank = pl.concat(
        [only_blank, pl.DataFrame([[None] * events.width], schema=events.schema, orient="row")]
    )
    reasons = _event_reasons(abkit.analyze(assignments, events=only_blank))
    assert reasons["blank line (every cell empty)"] == 1
    assert "event with null unit id" not in reasons


def test_a_part_of_a_large_parquet_export_reads_only_the_used_columns(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part of a large export reads the whole file again: it reads only the
    columns the analysis uses (an unused column is not decoded) and does not number the
    rows, which is what keeps that cost low."""
    import re

    import narwhals as nw

    import abkit.engine.events as events_module
    from abkit.engine import backend as engine

    sim = simulate(users=300, days=7, enrol_days=2, seed=8)
    events = sim.events.with_columns(pl.lit("not read").alias("unused_payload"))
    events.write_parquet(tmp_path / "events.parquet")
    monkeypatch.setattr(engine, "EVENTS_PER_PART", events.height // 3)
    plans: list[str] = []

    def parts(frame, unit, data):  # type: ignore[no-untyped-def]
        out = engine.partitions(frame, unit, data)
        plans.extend(nw.to_native(p).explain() for p in out)
        return out

    monkeypatch.setattr(events_module, "partitions", parts)
    abkit.analyze(sim.assignments, events=tmp_path / "events.parquet")
    assert len(plans) >= 3
    for plan in plans:
        assert ROW not in plan, plan  # no row index, as a node or inside the scan
        projected = re.search(r"PROJECT (\d+)/(\d+) COLUMNS", plan)
        assert projected is not None, plan  # "PROJECT */N": every column is read
        read, found = map(int, projected.groups())
        assert read < found, plan


def test_timestamps_unreadable_on_every_row_with_a_unit_name_the_first_such_row() -> None:
    """Every row with a unit id has an unreadable time (a row without one, whose time
    reads, let the format check pass): a format error naming the first row that has a
    unit id and its value, not a run with every event excluded."""
    events = pl.DataFrame(
        {
            "user_id": [None, 1, 2],
            "timestamp": ["2024-01-02T00:00:00Z", "later", "never"],
            "event": ["ai_output"] * 3,
        }
    )
    assignments = pl.DataFrame(
        {"user_id": [1, 2], "variant": ["control", "v2"], "assigned_at": ["2024-01-01"] * 2}
    )
    with pytest.raises(AbkitInputError, match=r"could be parsed \(first at data row 2: 'later'\)"):
        abkit.analyze(assignments, events=events)
    # a blank line (no unit id either) does not hide it
    blank = pl.DataFrame([[None] * 3], schema=events.schema, orient="row")
    with pytest.raises(AbkitInputError, match=r"first at data row 2: 'later'"):
        abkit.analyze(assignments, events=pl.concat([events, blank]))
