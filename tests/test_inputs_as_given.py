"""Exports read as users hand them over: their own column names mapped by flags,
compressed and streamed files, foreign timestamp formats, misspelt event names and
the API called in the CLI's shape."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest
from click.testing import CliRunner

import abkit
from abkit.config import INPUT_FLAGS, InputSpec, flag_of
from abkit.dev.simulate import simulate
from abkit_cli.main import cli

RENAMED_ASSIGNMENTS = {"user_id": "user", "variant": "group", "assigned_at": "assigned"}
RENAMED_EVENTS = {"user_id": "user", "timestamp": "ts", "event": "event_type"}
FLAGS = ["--unit", "user", "--variant", "group", "--event", "event_type", "--timestamp", "ts"]


@pytest.fixture(scope="module")
def export():
    return simulate(users=600, days=10, enrol_days=4, share_lift=0.3, seed=3)


@pytest.fixture(scope="module")
def own_names(export, tmp_path_factory):
    """The export with its own column names: user, group, ts, event_type (+ assigned)."""
    tmp = tmp_path_factory.mktemp("own")
    a = export.assignments.rename(RENAMED_ASSIGNMENTS)
    e = export.events.select("user_id", "timestamp", "event").rename(RENAMED_EVENTS)
    a.write_csv(tmp / "assignments.csv")
    e.write_csv(tmp / "events.csv")
    single = e.join(a.select("user", "group"), on="user").select(
        "user", "group", "ts", "event_type"
    )
    single.write_csv(tmp / "single.csv")
    return tmp


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def _numbers(d):
    return [(r["metric"], r["control"]["n"], r["effect"], r["p_value"]) for r in d["results"]]


def test_every_input_key_of_an_event_export_has_a_flag():
    params = {p.opts[0] for p in cli.commands["analyze"].params if p.opts}
    for key in INPUT_FLAGS:
        assert key in {f.name for f in InputSpec.__dataclass_fields__.values()}
        assert flag_of(key) in params, key
    for flag in ("--event", "--timestamp", "--assigned-at", "--session", "--value"):
        assert flag in params
    for flag in ("--exposure-event", "--export-end", "--input-id", "--latency", "--ttft"):
        assert flag in params


def test_own_column_names_analyse_with_flags_only(export, own_names):
    events = export.events.select("user_id", "timestamp", "event")
    reference = abkit.analyze(export.assignments, events=events).to_dict()
    out = run(
        "analyze",
        own_names / "assignments.csv",
        own_names / "events.csv",
        *FLAGS,
        "--assigned-at",
        "assigned",
        "-f",
        "json",
    )
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert [r[:2] for r in _numbers(got)] == [r[:2] for r in _numbers(reference)]
    for (_, _, e1, p1), (_, _, e2, p2) in zip(_numbers(got), _numbers(reference), strict=True):
        assert (e1, p1) == (None, None) if e2 is None else (e1 == pytest.approx(e2, rel=1e-9))
        assert p2 is None or p1 == pytest.approx(p2, rel=1e-9)


def test_single_table_with_own_names_analyses_with_flags_only(own_names):
    out = run("analyze", own_names / "single.csv", *FLAGS, "-f", "json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["experiment"]["input"] == "events (single table)"


def test_the_api_takes_the_same_keywords(own_names):
    result = abkit.analyze(
        own_names / "assignments.csv",
        events=own_names / "events.csv",
        unit="user",
        variant="group",
        event="event_type",
        timestamp="ts",
        assigned_at="assigned",
    )
    assert result.to_dict()["results"]


def test_unmapped_event_columns_name_the_flags_not_metrics(own_names):
    out = run("analyze", own_names / "single.csv", "--unit", "user", "--variant", "group")
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "numeric metric column" not in text and "[[metrics]]" not in text
    assert "'timestamp'" in text and "'event'" in text  # both at once
    assert "--timestamp ts" in text and "--event event_type" in text
    assert "[input] timestamp = 'ts'" in text


def test_every_missing_column_is_named_at_once_with_flag_and_key(own_names):
    out = run("analyze", own_names / "assignments.csv", own_names / "events.csv")
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    for column in ("'user_id'", "'variant'", "'assigned_at'"):
        assert column in text
    assert "--unit user" in text and "--variant group" in text
    assert "--assigned-at assigned" in text
    assert "[experiment] unit = 'user'" in text
    # the events table's missing columns in the same message
    assert "In " in text and "events.csv" in text
    assert "--timestamp ts" in text and "--event event_type" in text


def test_a_unit_column_named_differently_in_each_table_is_pointed_out(own_names, tmp_path):
    events = pl.read_csv(own_names / "events.csv").rename({"user": "uid"})
    events.write_csv(tmp_path / "events.csv")
    out = run("analyze", own_names / "assignments.csv", tmp_path / "events.csv")
    text = " ".join(out.output.split())
    assert out.exit_code == 2
    assert "another name in each table (user, uid)" in text
    assert "--unit user" not in text and "--unit uid" not in text


def test_a_missing_column_without_a_look_alike_points_to_flag_and_key(tmp_path):
    pl.DataFrame({"user_id": [1, 2], "variant": ["control", "t"], "when": ["x", "y"]}).write_csv(
        tmp_path / "a.csv"
    )
    pl.DataFrame({"user_id": [1], "event": ["x"], "timestamp": ["2024-01-02"]}).write_csv(
        tmp_path / "e.csv"
    )
    out = run("analyze", tmp_path / "a.csv", tmp_path / "e.csv")
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "'assigned_at' with --assigned-at or [input] assigned_at" in text


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--event", " ", "--event needs a non-empty value"),
        ("--timestamp-format", "mdY", "strptime"),
    ],
)
def test_bad_flag_values_are_user_errors(own_names, flag, value, message):
    out = run("analyze", own_names / "single.csv", "--unit", "user", flag, value)
    assert out.exit_code == 2
    assert message in out.output


def test_timestamp_format_reads_us_times(export, tmp_path):
    us = "%m/%d/%Y %H:%M:%S%.f"
    a = export.assignments.with_columns(pl.col("assigned_at").dt.strftime(us))
    e = export.events.select("user_id", "event", pl.col("timestamp").dt.strftime(us))
    a.write_csv(tmp_path / "a.csv")
    e.write_csv(tmp_path / "e.csv")
    reference = abkit.analyze(
        export.assignments,
        events=e.with_columns(pl.col("timestamp").str.to_datetime(us, time_zone="UTC")),
    )
    got = abkit.analyze(tmp_path / "a.csv", events=tmp_path / "e.csv", timestamp_format=us)
    assert got.rows == reference.rows
    assert _numbers(got.to_dict()) == _numbers(reference.to_dict())


# --- compressed, streamed and misnamed files --------------------------------------------


def _compressed(path, data: bytes, how: str) -> None:
    import gzip

    if how == "gz":
        path.write_bytes(gzip.compress(data))
    else:
        pa = pytest.importorskip("pyarrow")
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(data)


@pytest.fixture(scope="module")
def reference(export):
    return _numbers(abkit.analyze(export.assignments, events=export.events).to_dict())


@pytest.mark.parametrize(
    ("suffix", "how"),
    [(".csv.gz", "gz"), (".csv.zst", "zst"), (".ndjson.gz", "gz"), (".ndjson.zst", "zst")],
)
def test_compressed_exports_are_read_directly(export, reference, tmp_path, suffix, how):
    for name, frame in (("a", export.assignments), ("e", export.events)):
        buffer = io.BytesIO()
        if suffix.startswith(".csv"):
            frame.write_csv(buffer)
        else:
            frame.write_ndjson(buffer)
        _compressed(tmp_path / f"{name}{suffix}", buffer.getvalue(), how)
    out = run("analyze", tmp_path / f"a{suffix}", tmp_path / f"e{suffix}", "-f", "json")
    assert out.exit_code == 0, out.output
    assert _numbers(json.loads(out.stdout)) == reference


def test_a_folder_of_gzipped_parts_is_one_export(export, reference, tmp_path):
    export.assignments.write_csv(tmp_path / "a.csv")
    (tmp_path / "events").mkdir()
    half = export.events.height // 2
    for i, part in enumerate((export.events.head(half), export.events.tail(-half))):
        _compressed(tmp_path / "events" / f"part{i}.csv.gz", part.write_csv().encode(), "gz")
    result = abkit.analyze(tmp_path / "a.csv", events=tmp_path / "events")
    assert _numbers(result.to_dict()) == reference


@pytest.mark.parametrize("shape", ["csv", "parquet", "ndjson.gz", "tsv"])
def test_dash_reads_standard_input_sniffing_the_format(export, reference, tmp_path, shape):
    import gzip

    export.assignments.write_parquet(tmp_path / "a.parquet")
    buffer = io.BytesIO()
    if shape == "csv":
        export.events.write_csv(buffer)
    elif shape == "tsv":
        export.events.write_csv(buffer, separator="\t")
    elif shape == "parquet":
        export.events.write_parquet(buffer)
    else:
        export.events.write_ndjson(buffer)
    data = gzip.compress(buffer.getvalue()) if shape.endswith(".gz") else buffer.getvalue()
    result = CliRunner().invoke(
        cli, ["analyze", str(tmp_path / "a.parquet"), "-", "-f", "json"], input=data
    )
    assert result.exit_code == 0, result.output
    assert _numbers(json.loads(result.stdout)) == reference


def test_empty_standard_input_is_a_user_error(tmp_path):
    pl.DataFrame({"user_id": [1], "variant": ["control"]}).write_csv(tmp_path / "a.csv")
    result = CliRunner().invoke(cli, ["analyze", str(tmp_path / "a.csv"), "-"], input=b"")
    assert result.exit_code == 2 and "standard input is empty" in result.output


@pytest.mark.parametrize("name", ["events.xlsx", "events.csv", "events.xls"])
def test_a_spreadsheet_gets_one_paragraph_saying_how_to_export_it(tmp_path, name):
    import zipfile

    pl.DataFrame({"user_id": [1], "variant": ["control"]}).write_csv(tmp_path / "a.csv")
    with zipfile.ZipFile(tmp_path / name, "w") as book:  # the shape of an .xlsx
        book.writestr("xl/workbook.xml", "<workbook/>")
    out = run("analyze", tmp_path / "a.csv", tmp_path / name)
    assert out.exit_code == 2
    message = out.output.strip()
    assert "\n" not in message and "spreadsheet" in message
    assert "CSV" in message and "Parquet" in message and "not UTF-8" not in message


def test_a_parquet_file_named_csv_is_read_as_parquet(export, reference, tmp_path):
    export.assignments.write_parquet(tmp_path / "a.csv")
    export.events.write_parquet(tmp_path / "e.csv")
    out = run("analyze", tmp_path / "a.csv", tmp_path / "e.csv", "-f", "json")
    assert out.exit_code == 0, out.output
    assert _numbers(json.loads(out.stdout)) == reference


def test_a_file_named_parquet_that_is_not_says_so(tmp_path):
    (tmp_path / "a.parquet").write_text("user_id,variant\n1,control\n")
    out = run("analyze", tmp_path / "a.parquet")
    assert out.exit_code == 2 and "not Parquet" in out.output and "PAR1" in out.output


# --- the line-locating diagnosis runs when Polars fails or a row looks malformed ---------


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        # a short row in the middle, the last column null elsewhere too (Polars fills nulls)
        ("user_id,variant,x\n1,control,\n2,control\n3,t,3\n4,t,4\n", ["line 3", "2 fields"]),
        # a quote closed lines later: Polars reads one value spanning lines
        ('user_id,variant,x\n1,control,"a\n2,control,2\n3,t,3"\n4,t,4\n', ["line 2", "quoted"]),
        ("user_id,variant,variant\n1,control,1\n", ["'variant'", "twice"]),
        ("user_id\tvariant\tx\n1\tcontrol\t1\n", ["tab-separated"]),
        ("user_id,variant,x\n1,control,1,7\n", ["line 2", "4 fields"]),
    ],
)
def test_malformed_rows_are_located_in_plain_and_gzipped_files(tmp_path, content, needles):
    import gzip

    (tmp_path / "u.csv").write_text(content)
    (tmp_path / "u.csv.gz").write_bytes(gzip.compress(content.encode()))
    for name in ("u.csv", "u.csv.gz"):
        out = run("analyze", tmp_path / name)
        assert out.exit_code == 2, out.output
        message = " ".join(out.output.split())
        for needle in [name, *needles]:
            assert needle in message, (needle, message)


def test_non_utf8_in_a_gzipped_file_names_the_line(tmp_path):
    import gzip

    text = "user_id,variant,x\n1,control,1\n2,contrôle,2\n".encode("latin-1")
    (tmp_path / "u.csv.gz").write_bytes(gzip.compress(text))
    out = run("analyze", tmp_path / "u.csv.gz")
    assert out.exit_code == 2 and "not UTF-8" in out.output and "line 3" in out.output


def test_a_valid_csv_is_not_read_row_by_row(tmp_path, monkeypatch):
    """The Python diagnosis runs only when Polars fails or a row looks malformed."""
    from abkit.io import readers

    calls = []
    monkeypatch.setattr(readers, "_diagnose", lambda source: calls.append(source.label))
    frame = pl.DataFrame({"user_id": range(6), "variant": ["control", "t"] * 3, "x": range(6)})
    frame.write_csv(tmp_path / "u.csv")
    abkit.analyze(tmp_path / "u.csv")
    assert calls == []
    (tmp_path / "v.csv").write_text("user_id,variant,x\n1,control,1\n2,control\n3,t,3\n")
    abkit.analyze(tmp_path / "v.csv")  # the diagnosis (stubbed) found nothing
    assert calls == [str(tmp_path / "v.csv")]


# --- internal errors a user can reach -----------------------------------------------------


@pytest.mark.parametrize("single", ["parquet", "csv"])
def test_b2b_on_a_single_events_table_without_accounts_is_a_user_error(export, tmp_path, single):
    table = export.events.join(export.assignments, on="user_id")
    path = tmp_path / f"events.{single}"
    table.write_parquet(path) if single == "parquet" else table.write_csv(path)
    (tmp_path / "exp.toml").write_text('[experiment]\nname = "x"\n')
    out = run("analyze", path, "-c", tmp_path / "exp.toml", "--mode", "b2b")
    assert out.exit_code == 2, out.output
    message = " ".join(out.output.split())
    assert "internal error" not in message and "ColumnNotFoundError" not in message
    assert "'account_id'" in message and "B2B mode" in message and "--account" in message


# --- an event name no event has --------------------------------------------------------


@pytest.mark.parametrize(("typo", "meant"), [("shares", "share"), ("AI_Output", "ai_output")])
def test_an_event_name_no_event_has_is_the_first_warning_with_near_matches(export, typo, meant):
    config = {
        "metrics": [
            {"name": "d1", "type": "retention", "day": 1},
            {"name": "rate", "type": "ratio", "numerator": typo, "denominator": "session_start"},
        ]
    }
    result = abkit.analyze(export.assignments, config, events=export.events)
    first = result.warnings[0]
    assert "metric 'rate'" in first and f"'{typo}'" in first
    assert f"did you mean '{meant}'" in first
    assert "'regenerate'" in first  # the events that do exist
    assert sum(typo in w for w in result.warnings) == 1
    correct = {"metrics": [config["metrics"][0]]}
    assert not any(
        "EVENT NOT FOUND" in w
        for w in abkit.analyze(export.assignments, correct, events=export.events).warnings
    )


# --- the API called in the CLI's shape -------------------------------------------------


@pytest.mark.parametrize("name", ["events.parquet", "events.csv", "events.bin"])
def test_a_data_file_passed_as_the_config_says_to_pass_it_as_events(export, tmp_path, name):
    export.assignments.write_parquet(tmp_path / "assignments.parquet")
    export.events.write_parquet(tmp_path / name)  # .bin: told by its first bytes
    with pytest.raises(abkit.ConfigError, match=r"data file.*events='"):
        abkit.analyze(tmp_path / "assignments.parquet", tmp_path / name)
    out = run("analyze", tmp_path / "assignments.parquet", "-c", tmp_path / name)
    assert out.exit_code == 2 and "second argument" in out.output


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path):
    (tmp_path / "exp.toml").write_bytes(b"[experiment]\nname = 'contr\xf4le'\n")
    with pytest.raises(abkit.ConfigError, match="not UTF-8"):
        abkit.load_config(tmp_path / "exp.toml")


def test_a_pandas_frame_without_pyarrow_is_a_clear_error(export, monkeypatch):
    pd = pytest.importorskip("pandas")
    frame = export.assignments.to_pandas()
    assert isinstance(frame, pd.DataFrame)

    def no_pyarrow(*args, **kwargs):
        raise ImportError("pyarrow is required for converting a pandas dataframe to Polars")

    monkeypatch.setattr(pl, "from_pandas", no_pyarrow)
    with pytest.raises(abkit.AbkitInputError, match=r"needs PyArrow.*pip install pyarrow"):
        abkit.analyze(frame, events=export.events)


@pytest.mark.parametrize(
    "args", [["asos_sequential.py", "--data", "absent.parquet"], ["udacity_screener.py", "absent"]]
)
def test_the_example_scripts_explain_missing_data_in_one_line(tmp_path, args):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / args[0]
    done = subprocess.run(
        [sys.executable, str(script), *args[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "../shared/data" in done.stderr


# --- timestamps in a format abkit does not read by default -------------------------------


@pytest.mark.parametrize("where", ["single table", "assignments", "events"])
def test_us_format_times_name_the_column_an_example_and_the_format(export, tmp_path, where):
    us = "%m/%d/%Y %H:%M"
    a = export.assignments
    e = export.events.select("user_id", "timestamp", "event")
    if where == "assignments":
        a = a.with_columns(pl.col("assigned_at").dt.strftime(us))
    else:
        e = e.with_columns(pl.col("timestamp").dt.strftime(us))
    a.write_csv(tmp_path / "a.csv")
    e.write_csv(tmp_path / "e.csv")
    if where == "single table":
        e.join(a.select("user_id", "variant"), on="user_id").write_csv(tmp_path / "s.csv")
        args = [tmp_path / "s.csv"]
    else:
        args = [tmp_path / "a.csv", tmp_path / "e.csv"]
    out = run("analyze", *args)
    assert out.exit_code == 2
    message = " ".join(out.output.split())
    column = "assigned_at" if where == "assignments" else "timestamp"
    assert f"column '{column}'" in message and "missing assignment timestamp" not in message
    # the format that reads them (with few distinct days, month-first and day-first both)
    assert "'%m/%d/%Y %H:%M'" in message and "--timestamp-format" in message
    assert "ISO 8601" in message
    first = (a if where == "assignments" else e).get_column(column).drop_nulls()[0]
    assert repr(first) in message
    fixed = run("analyze", *args, "--timestamp-format", us)
    assert fixed.exit_code == 0, fixed.output


def test_standard_input_on_another_engine_is_a_user_error(tmp_path):
    pl.DataFrame({"user_id": [1], "variant": ["control"]}).write_csv(tmp_path / "a.csv")
    result = CliRunner().invoke(
        cli, ["analyze", str(tmp_path / "a.csv"), "-", "--engine", "duckdb"], input=b"x"
    )
    assert result.exit_code == 2 and "Polars engine only" in result.output


def test_first_hour_input_side_gzipped_own_names_flags_only_out(tmp_path):
    """The input half of the first hour: the user's own column names, exported as
    .csv.gz, analysed with flags only (no TOML) into a report folder."""
    out = CliRunner().invoke(
        cli, ["simulate", str(tmp_path / "sim"), "--users", "800", "--share-lift", "0.2"]
    )
    assert out.exit_code == 0, out.output
    a = pl.read_parquet(tmp_path / "sim" / "assignments.parquet").rename(RENAMED_ASSIGNMENTS)
    e = pl.read_parquet(tmp_path / "sim" / "events.parquet").rename(RENAMED_EVENTS)
    _compressed(tmp_path / "assignments.csv.gz", a.write_csv().encode(), "gz")
    _compressed(tmp_path / "events.csv.gz", e.write_csv().encode(), "gz")
    result = run(
        "analyze",
        tmp_path / "assignments.csv.gz",
        tmp_path / "events.csv.gz",
        *FLAGS,
        "--assigned-at",
        "assigned",
        "--session",
        "session_id",
        "--out",
        tmp_path / "report",
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert {r["metric"] for r in saved["results"]} >= {"d1_retention", "share_rate"}
    assert saved["rows"]["events"]["read"] == e.height


def test_dash_without_a_pipe_says_so_instead_of_waiting(monkeypatch):
    import sys

    class Terminal:
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal())
    with pytest.raises(abkit.AbkitInputError, match="nothing is piped"):
        abkit.analyze("-")


def test_an_exposure_event_no_event_has_is_named_with_near_matches(export, tmp_path):
    table = export.events.join(export.assignments.select("user_id", "variant"), on="user_id")
    table.write_parquet(tmp_path / "single.parquet")
    out = run("analyze", tmp_path / "single.parquet", "--exposure-event", "ai_outputs")
    assert out.exit_code == 2
    message = " ".join(out.output.split())
    assert "'ai_outputs'" in message and "Did you mean 'ai_output'?" in message
    assert "'session_start'" in message and "[input] exposure_event" in message
    assert (
        run("analyze", tmp_path / "single.parquet", "--exposure-event", "ai_output").exit_code == 0
    )


def test_an_event_column_without_any_default_event_name_is_warned_first(export):
    renamed = export.events.with_columns(
        pl.col("event").replace({"ai_output": "generate_answer", "share": "copy_link"})
    )
    result = abkit.analyze(export.assignments, events=renamed)
    first = result.warnings[0]
    assert first.startswith("NO OUTPUT EVENTS") and "'generate_answer'" in first
    assert "[events]" in first and "--event" in first
    wrong_column = abkit.analyze(export.assignments, events=export.events, event="session_id")
    assert wrong_column.warnings[0].startswith("NO OUTPUT EVENTS")
    usual = abkit.analyze(export.assignments, events=export.events)
    assert not any("NO OUTPUT EVENTS" in w for w in usual.warnings)


def test_ai_output_columns_map_with_flags(export, tmp_path):
    renamed = {"latency_ms": "lat", "input_tokens": "tok_in", "output_tokens": "tok_out"}
    events = export.events.rename(renamed)
    reference = abkit.analyze(export.assignments, events=export.events).to_dict()
    plain = abkit.analyze(export.assignments, events=events).to_dict()
    assert {r["metric"] for r in plain["results"]} < {r["metric"] for r in reference["results"]}
    mapped = abkit.analyze(
        export.assignments,
        events=events,
        latency="lat",
        input_tokens="tok_in",
        output_tokens="tok_out",
    ).to_dict()
    # the same numbers (the token metrics are named after the mapped columns)
    assert [r[1:] for r in _numbers(mapped)] == [r[1:] for r in _numbers(reference)]


def test_a_column_whose_type_changes_after_10000_rows_is_read_whole(tmp_path):
    rows = [f"{i},{'control' if i % 2 else 't'},{i % 7}" for i in range(12_000)]
    (tmp_path / "u.csv").write_text("user_id,variant,x\n" + "\n".join([*rows, "12000,t,1.5"]))
    result = abkit.analyze(tmp_path / "u.csv")
    assert result.rows["units"].used == 12_001
    assert [r.metric for r in result.results] == ["x"]


def test_a_reader_error_is_one_paragraph_said_once(tmp_path):
    (tmp_path / "u.ndjson").write_text('{"user_id": 1, "variant": "control"}\n{"user_id": \n')
    out = run("analyze", tmp_path / "u.ndjson")
    assert out.exit_code == 2
    assert out.output.count("could not read the table") == 1


def test_a_cut_off_gzip_file_is_a_user_error(export, tmp_path):
    import gzip

    data = gzip.compress(export.events.write_csv().encode())
    export.assignments.write_parquet(tmp_path / "a.parquet")
    (tmp_path / "e.csv.gz").write_bytes(data[: len(data) // 2])
    out = run("analyze", tmp_path / "a.parquet", tmp_path / "e.csv.gz")
    assert out.exit_code == 2, out.output
    assert "internal error" not in out.output and "e.csv.gz" in out.output


def test_an_unmapped_event_export_with_a_numeric_column_is_not_read_as_units(own_names, tmp_path):
    table = pl.read_csv(own_names / "single.csv").with_columns(
        (pl.int_range(pl.len()) % 7).alias("latency_ms")
    )
    table.write_csv(tmp_path / "single.csv")
    out = run("analyze", tmp_path / "single.csv", "--unit", "user", "--variant", "group")
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "--timestamp ts --event event_type" in text and "repeat" in text
    assert "no usable rows" not in text


def test_a_unit_table_with_an_events_count_column_is_still_a_unit_table(tmp_path):
    n = 40
    pl.DataFrame(
        {"user_id": range(n), "variant": ["control", "t"] * (n // 2), "events": range(n)}
    ).write_csv(tmp_path / "u.csv")
    result = abkit.analyze(tmp_path / "u.csv")
    assert result.to_dict()["experiment"]["input"] == "units"


def test_a_json_array_says_to_convert_it_to_one_object_per_line(tmp_path):
    (tmp_path / "u.json").write_text('[{"user_id": 1, "variant": "control", "x": 1}]')
    out = run("analyze", tmp_path / "u.json")
    assert out.exit_code == 2 and "JSON array" in out.output and "jq -c" in out.output


@pytest.mark.parametrize("name", ["book.xls", "book.ods", "events.csv.zst", "events.tsv"])
def test_every_export_the_readers_know_is_refused_as_a_config(tmp_path, name):
    """The config loader and the readers share one table of formats (it had drifted:
    .xls, .ods and .tsv were read as TOML)."""
    from abkit.errors import ConfigError

    path = tmp_path / name
    path.write_bytes(b"\xd0\xcf\x11\xe0 not toml" if name.endswith("xls") else b"a,b\n1,2\n")
    with pytest.raises(ConfigError, match="it is a data file"):
        abkit.analyze(tmp_path / "assignments.parquet", str(path))
