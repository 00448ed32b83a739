"""Regression tests for hostile and broken input (issue 9): every case is a user error
with a one-paragraph message naming the file and column (exit code 2 at the CLI), never
a traceback and never a silently wrong number."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import abkit
from abkit.errors import AbkitInputError
from abkit.stats.arm import ArmSummary
from abkit.stats.fixed_horizon import delta_ratio_test, ratio_variance
from abkit_cli.main import cli

SUMMARY_HEADER = "variant,metric,n,mean,variance\n"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(out, *needles):
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and "internal error" not in out.output
    message = out.output.strip()
    assert "\n" not in message, message  # one paragraph
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize(
    ("rows", "needles"),
    [
        ("control,r,600,7.5,4\ntreatment,r,600,7.9,-1\n", ["'variance'", "negative", "row 2"]),
        ("control,r,many,7.5,4\ntreatment,r,600,7.9,1\n", ["'n'", "'many'", "row 1"]),
        ("control,r,100.5,5,1\ntreatment,r,100,5,1\n", ["'n'", "whole number", "row 1"]),
        ("control,r,-3,5,1\ntreatment,r,100,5,1\n", ["'n'", "whole number", "row 1"]),
        ("control,r,100,inf,1\ntreatment,r,100,5,1\n", ["'mean'", "finite", "row 1"]),
        ("control,r,100,nan,1\ntreatment,r,100,5,1\n", ["'mean'", "finite", "row 1"]),
        ("control,r,100,1e308,1\ntreatment,r,100,5,1\n", ["'mean'", "too large", "row 1"]),
        ("control,r,100,5,-1e300\ntreatment,r,100,5,1\n", ["'variance'", "row 1"]),
    ],
)
def test_impossible_summary_rows_are_errors_naming_column_and_row(tmp_path, rows, needles):
    path = tmp_path / "s.csv"
    path.write_text(SUMMARY_HEADER + rows)
    assert_user_error(run("analyze", path), "s.csv", *needles)


def test_summary_sums_implying_a_negative_variance_are_an_error(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "variant,metric,n,sum,sum_sq\ncontrol,x,100,1000,50\ntreatment,x,100,1000,20000\n"
    )
    assert_user_error(run("analyze", path), "negative variance", "'control'")


@pytest.mark.parametrize("mean", ["1.5", "-0.2"])
def test_a_proportion_outside_zero_one_is_an_error(tmp_path, mean):
    (tmp_path / "s.csv").write_text(
        f"variant,metric,n,mean\ncontrol,r,100,{mean}\ntreatment,r,100,0.5\n"
    )
    (tmp_path / "c.toml").write_text('[[metrics]]\nname = "r"\ntype = "proportion"\ncolumn = "r"\n')
    out = run("analyze", tmp_path / "s.csv", "-c", tmp_path / "c.toml")
    assert_user_error(out, "proportion", mean, "outside [0, 1]")


@pytest.mark.parametrize("value", ["1e308", "-1e308", "inf"])
def test_extreme_unit_values_are_an_error_naming_the_unit(tmp_path, value):
    path = tmp_path / "u.csv"
    path.write_text(
        f"user_id,variant,x\n1,control,{value}\n2,control,3\n3,treatment,1\n4,treatment,2\n"
    )
    assert_user_error(run("analyze", path), "u.csv", "'x'", "unit 1")


@pytest.mark.parametrize("column", ["user_id", "variant"])
def test_a_metric_reading_an_id_column_is_an_error(tmp_path, column):
    (tmp_path / "u.csv").write_text("user_id,variant,x\n1,control,1\n2,treatment,2\n")
    (tmp_path / "c.toml").write_text(
        f'[[metrics]]\nname = "m"\ntype = "mean"\ncolumn = "{column}"\n'
    )
    out = run("analyze", tmp_path / "u.csv", "-c", tmp_path / "c.toml")
    assert_user_error(out, f"'{column}'", "id column")


def test_output_paths_that_cannot_be_written_are_user_errors(tmp_path):
    (tmp_path / "u.csv").write_text("user_id,variant,x\n1,control,1\n2,control,2\n3,t,2\n4,t,3\n")
    out = run("analyze", tmp_path / "u.csv", "-o", tmp_path / "no" / "such" / "r.json")
    assert_user_error(out, "cannot write the report", "No such file")
    (tmp_path / "existing.txt").write_text("x")
    out = run("analyze", tmp_path / "u.csv", "--out", tmp_path / "existing.txt" / "sub")
    assert_user_error(out, "cannot create the output folder")


def test_delta_method_round_off_below_zero_is_clamped_not_a_crash():
    """Seven users with tiny values: the three delta-method terms cancel to a round-off
    negative, which is a variance of 0 (not a math domain error)."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        y = rng.integers(1, 4, 7).astype(float) * 1e-9
        arm = ArmSummary.from_values(y * 0.5, y)
        assert ratio_variance(arm) >= 0
        delta_ratio_test(arm, arm)


@pytest.mark.parametrize(
    "experiment",
    [
        {"expected_split": {"control": float("nan"), "treatment": 0.5}},
        {"expected_split": {"control": float("inf"), "treatment": 0.5}},
        {"alpha": float("nan")},
        {"srm_threshold": float("nan")},
    ],
)
def test_non_finite_config_numbers_are_refused(experiment):
    with pytest.raises(AbkitInputError, match=r"finite|positive|alpha|srm"):
        abkit.load_config({"experiment": experiment})


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        (
            "dup.csv",
            "user_id,variant,variant,x\n1,control,t,1\n2,t,control,2\n",
            ["'variant'", "twice"],
        ),
        ("dup2.csv", "user_id,variant,x,x\n1,control,1,5\n2,t,2,6\n", ["'x'", "twice"]),
        (
            "ragged.csv",
            "user_id,variant,x\n1,control,1\n2,control,2,9\n3,t,3\n",
            ["line 3", "4 fields"],
        ),
        (
            "quote.csv",
            'user_id,variant,x\n1,control,"1\n2,control,2\n3,t,3\n',
            ["line 2", "quoted"],
        ),
        ("semi.csv", "user_id;variant;x\n1;control;1\n2;t;2\n", ["semicolon"]),
        ("empty.csv", "", ["empty"]),
        ("nest.ndjson", '{"user_id":1,"variant":"control","x":{"a":1}}\n', ["'x'", "nested"]),
    ],
)
def test_malformed_files_are_one_paragraph_naming_file_and_line(tmp_path, name, content, needles):
    (tmp_path / name).write_text(content)
    assert_user_error(run("analyze", tmp_path / name), name, *needles)


def test_non_utf8_text_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user_id,variant,x\n1,contrôle,1\n2,t,2\n".encode("latin-1"))
    assert_user_error(run("analyze", path), "not UTF-8", "line 2", "iconv")


def test_blank_lines_have_their_own_exclusion_reason(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("user_id,variant,x\n1,control,1\n\n2,control,2\n3,t,3\n\n4,t,4\n")
    res = abkit.analyze(path)
    assert {e.reason: e.rows for e in res.exclusions} == {"blank line (every cell empty)": 2}


def test_a_stray_tiny_arm_beside_large_ones_is_pointed_out(tmp_path):
    rng = np.random.default_rng(0)
    variants = np.where(rng.random(2_000) < 0.5, "control", "treatment").astype(object)
    variants[-1] = "treatm"  # the last line of a truncated file
    rows = "\n".join(
        f"{i},{v},{x:.3f}" for i, (v, x) in enumerate(zip(variants, rng.random(2_000), strict=True))
    )
    path = tmp_path / "cut.csv"
    path.write_text("user_id,variant,x\n" + rows + "\n")
    res = abkit.analyze(path)
    assert any("'treatm' has only 1 unit" in w for w in res.warnings)


def _example_frames():
    import polars as pl

    from tests.conftest import EXAMPLE

    return (
        pl.read_parquet(EXAMPLE / "assignments.parquet"),
        pl.read_parquet(EXAMPLE / "events.parquet"),
    )


def test_an_event_stamped_in_the_far_future_is_refused_not_used_as_export_end():
    import datetime as dt

    import polars as pl

    from tests.conftest import EXAMPLE

    a, e = _example_frames()
    late = e.head(1).with_columns(
        pl.lit(dt.datetime(9999, 12, 31, tzinfo=dt.UTC)).alias("timestamp")
    )
    with pytest.raises(AbkitInputError, match=r"in the future.*export_end"):
        abkit.analyze(a, EXAMPLE / "experiment.toml", events=pl.concat([e, late]))


def test_an_explicit_export_end_cuts_units_and_events_like_a_truncated_export():
    import datetime as dt
    import tomllib

    import polars as pl

    from tests.conftest import EXAMPLE

    a, e = _example_frames()
    cut = a["assigned_at"].min() + dt.timedelta(days=5)
    config = tomllib.loads((EXAMPLE / "experiment.toml").read_text())
    config["input"] = {"export_end": cut.isoformat()}
    res = abkit.analyze(a, config, events=e)
    ref = abkit.analyze(
        a.filter(pl.col("assigned_at") <= cut), config, events=e.filter(pl.col("timestamp") <= cut)
    )
    assert res.srm.observed == ref.srm.observed
    for r, x in zip(res.results, ref.results, strict=True):
        assert (r.control_n, r.treatment_n) == (x.control_n, x.treatment_n)
        assert r.effect == pytest.approx(x.effect, nan_ok=True, rel=1e-12)
    reasons = {x.reason for x in res.exclusions}
    assert "assigned after the export end ([input] export_end)" in reasons
    assert "event after the export end ([input] export_end)" in reasons


def test_b2b_users_without_an_account_are_excluded_with_a_reason():
    import polars as pl

    from abkit.dev.simulate import simulate

    e = simulate(mode="b2b", users=2_000, accounts=20, days=6, enrol_days=2, seed=1)
    a = (
        e.assignments.with_row_index("i")
        .with_columns(
            pl.when(pl.col("i") % 10 == 0)
            .then(None)
            .otherwise(pl.col("account_id"))
            .alias("account_id")
        )
        .drop("i")
    )
    metric = {"name": "s", "type": "ratio", "numerator": "share", "denominator": "ai_output"}
    res = abkit.analyze(a, {"experiment": {"mode": "b2b"}, "metrics": [metric]}, events=e.events)
    assert {x.reason: x.rows for x in res.exclusions}["null account id (B2B mode)"] == 200
    assert res.rows["assignments"].used == 1_800


def test_control_characters_from_names_never_reach_a_report(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("user_id,variant,x\n1,control,1\n2,control,2\n3,t\x1b[2J,3\n4,t\x1b[2J,4\n")
    res = abkit.analyze(path)
    assert "\x1b" not in res.to_text() and "\\x1b" in res.to_text()
    assert "\x1b" not in res.to_markdown() and "\x1b" not in res.to_html()


def test_an_event_table_with_another_event_column_name_says_which_key_to_set(tmp_path):
    path = tmp_path / "ev.csv"
    path.write_text(
        "user_id,variant,timestamp,event_name\n1,control,2024-01-01,a\n2,t,2024-01-01,b\n"
    )
    assert_user_error(run("analyze", path), "event_name", "[input] event")


def test_a_decades_old_assignment_stamp_does_not_make_sequential_hang(tmp_path):
    """One unit stamped 1970 made daily monitoring compute ~20,000 looks (GST: minutes)."""
    (tmp_path / "a.csv").write_text(
        "user_id,variant,assigned_at\n1,control,1970-01-01T00:00:00Z\n"
        "2,treatment,2024-01-01T00:00:00Z\n3,control,2024-01-01T00:00:00Z\n"
        "4,treatment,2024-01-02T00:00:00Z\n"
    )
    (tmp_path / "e.csv").write_text(
        "user_id,timestamp,event\n1,2024-01-03T00:00:00Z,ai_output\n"
        "2,2024-01-03T00:00:00Z,ai_output\n3,2024-01-04T00:00:00Z,share\n"
    )
    out = run("analyze", tmp_path / "a.csv", tmp_path / "e.csv", "--sequential", "gst")
    assert_user_error(out, "19,726 looks", "1970-01-01")


def test_a_file_cut_off_mid_line_says_so(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_text("user_id,variant,x\n1,control,1\n2,treatment,2\n3,treat")
    assert_user_error(run("analyze", path), "line 4", "cut off")


# --- timestamps beyond the years abkit computes with (issue 22) ---------------------------

_YEAR_0_US = -62_167_219_200_000_000 - 86_400_000_000 * 366  # 0000-01-01 in µs since 1970


def _ledger(result, table):
    rows = result.rows[table]
    assert rows.read == rows.used + rows.excluded
    return {e.reason: e.rows for e in result.exclusions if e.table == table}


@pytest.mark.parametrize(
    "stamp",
    [
        "0000-06-01T00:00:00",
        "0000-01-01",
        "-0001-03-01T10:00:00",
        "0999-12-31T23:59:59",
        "+10000-01-01T00:00:00",
        1e30,
        -1e30,
        float("inf"),
        -9e15 * 1_000,  # -9e18 µs: about year -283,000
    ],
)
def test_event_times_beyond_the_years_1000_9999_are_excluded_and_counted(tmp_path, stamp):
    import polars as pl

    a, e = _example_frames()
    as_text = not isinstance(stamp, float)
    events = e.with_columns(
        pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        if as_text
        else (pl.col("timestamp").dt.epoch("us") / 1e6)
    )
    bad = events.head(3).with_columns(pl.lit(stamp).alias("timestamp"))
    events = pl.concat([events, bad.cast(events.schema)])
    events.write_csv(tmp_path / "e.csv")
    a.write_csv(tmp_path / "a.csv")
    out = run("analyze", tmp_path / "a.csv", tmp_path / "e.csv", "-f", "json")
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output
    result = abkit.analyze(tmp_path / "a.csv", events=tmp_path / "e.csv")
    reasons = _ledger(result, "events")
    excluded = sum(n for r, n in reasons.items() if "timestamp" in r)
    assert excluded >= 3, reasons


def test_an_assignment_stamped_in_year_0_is_excluded_with_its_reason(tmp_path):
    import polars as pl

    a, e = _example_frames()
    stamps = pl.Series([_YEAR_0_US], dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    first = a.head(1).with_columns(stamps.alias("assigned_at"))
    assignments = pl.concat([first, a.tail(-1)])
    assignments.write_parquet(tmp_path / "a.parquet")  # a native Datetime of year 0
    e.write_parquet(tmp_path / "e.parquet")
    result = abkit.analyze(tmp_path / "a.parquet", events=tmp_path / "e.parquet")
    reasons = _ledger(result, "assignments")
    assert reasons["assignment timestamp outside the years 1000-9999"] == 1
    (tmp_path / "a.csv").write_text(
        assignments.with_columns(pl.col("assigned_at").cast(pl.String))
        .with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.lit("0000-01-01T00:00:00"))
            .otherwise(pl.col("assigned_at"))
            .alias("assigned_at")
        )
        .write_csv()
    )
    result = abkit.analyze(tmp_path / "a.csv", events=tmp_path / "e.parquet")
    assert sum(n for r, n in _ledger(result, "assignments").items() if "timestamp" in r) == 1


def test_a_single_table_of_year_0_events_is_a_clear_error_not_a_crash(tmp_path):
    (tmp_path / "s.csv").write_text(
        "user_id,variant,timestamp,event\n1,control,0000-01-01T00:00:00,ai_output\n"
        "2,t,0000-01-02T00:00:00,ai_output\n"
    )
    out = run("analyze", tmp_path / "s.csv")
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert "1000-9999" in out.output


@pytest.mark.parametrize("micros", [_YEAR_0_US, 253_402_300_800_000_000 + 86_400_000_000 * 400])
def test_native_event_times_beyond_the_years_1000_9999_are_excluded(tmp_path, micros):
    """Datetime values of a Parquet export that Python's datetime cannot hold (year 0,
    year 10000): exclusions with their reason, not 'year 0 is out of range'."""
    import polars as pl

    a, e = _example_frames()
    far = pl.Series([micros] * 2, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    bad = e.head(2).with_columns(far.alias("timestamp"))
    pl.concat([e, bad]).write_parquet(tmp_path / "e.parquet")
    result = abkit.analyze(a, events=tmp_path / "e.parquet")
    assert _ledger(result, "events")["event with a timestamp outside the years 1000-9999"] == 2
