"""Property-based tests: generated malformed exports, configs and summary tables.

The contract for every input: either abkit raises :class:`AbkitInputError` with a
non-empty one-paragraph message, or it returns an analysis whose row accounting holds
(read = used + excluded for every table), every reported number that is not finite
comes with a warning, and every renderer works.  Any other exception is a crash.

CI runs a reduced number of examples per category; the long run is behind the
``fuzz`` marker: ``ABKIT_FUZZ_EXAMPLES=1500 python -m pytest -m fuzz -p no:cacheprovider``
(7 categories, so 10,500 generated inputs).
"""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import abkit
from abkit.errors import AbkitInputError

EXAMPLES = int(os.environ.get("ABKIT_FUZZ_EXAMPLES", 40))
# CI runs the same examples every time; a long run (ABKIT_FUZZ_EXAMPLES set) explores
LONG_RUN = "ABKIT_FUZZ_EXAMPLES" in os.environ
OUTCOMES: Counter[str] = Counter()
# a long run reports a failing input as found: shrinking a slow export can take an hour
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] if LONG_RUN else list(Phase)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=PHASES,
    derandomize=not LONG_RUN,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
pytestmark = pytest.mark.fuzz

# --- pieces of hostile input ----------------------------------------------------------

NAMES = st.sampled_from(
    [
        "control",
        "treatment",
        "t2",
        "contrôle",
        "控制",
        "[x](http://evil.example)",
        "<script>alert(1)</script>",
        "a|b",
        "\x1b[2J",
        "",
        " ",
        "treatm",
        "null",
        "NaN",
        "1e308",
        "@here",
        "**bold**",
    ]
)
NUMBERS = st.one_of(
    st.integers(-5, 50).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["1e308", "-1e308", "1e-320", "0", "-0.0", "nan", "inf", "many", "", " ", "1,5", "true"]
    ),
)
TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            "2024-01-01T00:00:00Z",
            "2024-01-02 13:45:00",
            "2024-01-03",
            "9999-12-31T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "not a time",
            "",
            "1704067200",
            "1704067200000",
            "2024-02-30",
            "2024-01-05T25:00:00",
            # beyond the years abkit computes with, and a US-format time (issue 22)
            "0000-01-01T00:00:00",
            "0000-06-01",
            "-0001-03-01T10:00:00",
            "+10000-01-01T00:00:00",
            "99999999999999999999",
            "-62135596800",
            "1e30",
            "03/01/2024 00:09",
        ]
    ),
    st.datetimes(
        min_value=__import__("datetime").datetime(2023, 12, 1),
        max_value=__import__("datetime").datetime(2024, 3, 1),
    ).map(lambda d: d.isoformat()),
)
CELLS = st.one_of(NAMES, NUMBERS, TIMESTAMPS, st.text(max_size=6))
GOOD_TIMES = st.datetimes(
    min_value=__import__("datetime").datetime(2024, 1, 1),
    max_value=__import__("datetime").datetime(2024, 1, 20),
).map(lambda d: d.isoformat() + "Z")


def _csv_line(cells: list[str], quote: bool) -> str:
    if quote:
        return ",".join('"' + c.replace('"', '""') + '"' for c in cells)
    return ",".join(cells)


@st.composite
def csv_files(draw, header: list[str], columns: dict[str, Cell]) -> bytes:
    """A CSV file: the header and rows drawn per column.  About a quarter of the files also
    get structural mischief: a duplicate header name, blank lines, ragged or quoted rows,
    an unbalanced quote, a cut-off last line, CRLF, a BOM, a non-UTF-8 byte or a
    semicolon separator; the rest exercise the analysis itself."""
    header = list(header)
    broken = draw(st.integers(0, 3)) == 0
    noisy = draw(st.integers(0, 2)) == 0  # hostile values mixed into the cells
    if broken and draw(st.integers(0, 5)) == 0:
        header.append(draw(st.sampled_from(header)))  # duplicate column name
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        row = [draw(columns[h].draw_from(noisy) if h in columns else CELLS) for h in header]
        shape = draw(st.integers(0, 25)) if broken else 99
        if shape == 0:
            row = row[:-1]  # ragged: one field short
        elif shape == 1:
            row = [*row, "extra"]
        elif shape == 2:
            rows.append("")  # blank line
        elif shape == 3:
            row[0] = '"' + row[0]  # unbalanced quote
        rows.append(_csv_line(row, quote=shape == 4))
    text = "\n".join([_csv_line(header, False), *rows]) + ("\n" if draw(st.booleans()) else "")
    mischief = draw(st.integers(0, 6)) if broken else 99
    if mischief == 0:
        text = text.replace(",", ";")
    elif mischief == 1:
        text = text.replace("\n", "\r\n")
    elif mischief == 2 and len(text) > 10:
        text = text[: draw(st.integers(5, len(text) - 1))]  # cut off
    data = text.encode("utf-8")
    if mischief == 3:
        data = "\ufeff".encode() + data  # BOM
    elif mischief == 4:
        data = data.replace(b"o", b"\xf4", 1)  # latin-1 byte
    return data


@dataclass(frozen=True)
class Cell:
    """A column's plausible values and its hostile ones; a noisy file mixes one hostile
    value in four, a clean file (two in three) uses plausible values only, so that the
    analysis itself is reached."""

    good: st.SearchStrategy
    bad: st.SearchStrategy

    def draw_from(self, noisy: bool) -> st.SearchStrategy:
        if not noisy:
            return self.good
        return st.integers(0, 3).flatmap(lambda k: self.bad if k == 0 else self.good)


GOOD_NUMBERS = st.one_of(
    st.integers(-5, 50).map(str), st.floats(-1e6, 1e6, allow_nan=False).map(repr)
)


VARIANTS = Cell(st.sampled_from(["control", "treatment", "treatment", "control", "t2"]), NAMES)
IDS = Cell(st.integers(0, 40).map(str), st.sampled_from(["", "x", "1.5", " "]))


UNIT_TABLES = csv_files(
    ["user_id", "variant", "x", "flag"],
    {
        "user_id": IDS,
        "variant": VARIANTS,
        "x": Cell(GOOD_NUMBERS, NUMBERS),
        "flag": Cell(st.sampled_from(["0", "1", "true", "false"]), st.sampled_from(["", "2"])),
    },
)
SUMMARY_TABLES = csv_files(
    ["variant", "metric", "n", "mean", "variance", "day"],
    {
        "variant": VARIANTS,
        "metric": Cell(st.sampled_from(["m", "r"]), st.sampled_from(["", "m "])),
        "n": Cell(st.integers(0, 5_000).map(str), NUMBERS),
        "mean": Cell(st.floats(0, 1).map(repr), NUMBERS),
        "variance": Cell(st.floats(0, 10).map(repr), NUMBERS),
        "day": Cell(st.sampled_from(["1", "2", "3"]), st.sampled_from(["", "x", "1.5"])),
    },
)
ASSIGNMENTS = csv_files(
    ["user_id", "variant", "assigned_at", "account_id"],
    {
        "user_id": IDS,
        "variant": VARIANTS,
        "assigned_at": Cell(GOOD_TIMES, TIMESTAMPS),
        "account_id": Cell(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.just("")),
    },
)
EVENTS = csv_files(
    ["user_id", "timestamp", "event", "session_id", "value"],
    {
        "user_id": IDS,
        "timestamp": Cell(GOOD_TIMES, TIMESTAMPS),
        "event": Cell(
            st.sampled_from(["ai_output", "share", "regenerate", "error"]),
            st.sampled_from(["", "x"]),
        ),
        "session_id": Cell(st.sampled_from(["1", "2", "3"]), st.just("")),
        "value": Cell(GOOD_NUMBERS, NUMBERS),
    },
)
CONFIG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(0, 30), max_size=3),
    st.dictionaries(st.sampled_from(["control", "treatment"]), st.floats(), max_size=2),
)
CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "experiment": st.dictionaries(
            st.sampled_from(
                [
                    "control",
                    "alpha",
                    "expected_split",
                    "variants",
                    "correction",
                    "mode",
                    "unit",
                    "bogus",
                ]
            ),
            CONFIG_VALUES,
            max_size=3,
        ),
        "metrics": st.lists(
            st.dictionaries(
                st.sampled_from(
                    [
                        "name",
                        "type",
                        "column",
                        "numerator",
                        "denominator",
                        "margin",
                        "guardrail",
                        "day",
                    ]
                ),
                st.one_of(
                    st.sampled_from(
                        ["x", "m", "flag", "mean", "ratio", "retention", "user_id", "variant"]
                    ),
                    CONFIG_VALUES,
                ),
                max_size=5,
            ),
            max_size=2,
        ),
        "sequential": st.dictionaries(
            st.sampled_from(["method", "looks", "target_units", "tau"]),
            st.one_of(st.sampled_from(["cs", "msprt", "gst"]), CONFIG_VALUES),
            max_size=2,
        ),
    },
)


PLAUSIBLE_CONFIGS = st.fixed_dictionaries(
    {
        "experiment": st.fixed_dictionaries(
            {},
            optional={
                "alpha": st.sampled_from([0.05, 0.1, 0.01]),
                "correction": st.sampled_from(["holm", "bh", "none"]),
                "expected_split": st.just({"control": 1, "treatment": 1}),
            },
        ),
        "metrics": st.lists(
            st.sampled_from(
                [
                    {"name": "x", "type": "mean", "column": "x"},
                    {"name": "flag", "type": "proportion", "column": "flag"},
                    {
                        "name": "g",
                        "type": "mean",
                        "column": "x",
                        "guardrail": True,
                        "direction": "decrease",
                        "relative_margin": 0.1,
                    },
                    {"name": "r", "type": "ratio", "numerator": "x", "denominator": "flag"},
                ]
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda m: m["name"],
        ),
    }
)


# --- the contract ----------------------------------------------------------------------


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def check_contract(call) -> str:
    """'error' for a clean user error, 'analysed' for an analysis that keeps the promises;
    anything else fails the test."""
    try:
        res = call()
    except AbkitInputError as exc:
        message = str(exc).strip()
        assert message, "empty error message"
        assert "\n" not in message, f"error message is not one paragraph: {message!r}"
        assert "Traceback" not in message
        OUTCOMES["user error"] += 1
        return "error"
    for table, counts in res.rows.items():
        assert counts.read == counts.used + counts.excluded, (table, counts)
    for r in res.results:
        # no verdict without data, and never without saying why
        if r.decision.outcome == "not computable":
            assert r.decision.reason, f"'not computable' without a reason: {r}"
        numbers = [r.effect, r.p_value, *r.ci, r.control_value, r.treatment_value]
        if not all(_finite(v) for v in numbers):
            explained = r.warnings or res.warnings or r.decision.reason
            assert explained, f"non-finite result without a warning or a reason: {r}"
    res.to_text(80)
    res.to_markdown()
    res.to_html()
    assert abkit.AnalysisResult.from_dict(res.to_dict()).to_json() == res.to_json()
    OUTCOMES["analysed"] += 1
    return "analysed"


@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    yield
    total = sum(OUTCOMES.values())
    print(f"\ngenerated inputs checked: {total:,} ({dict(OUTCOMES)})")


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@SETTINGS
@given(data=UNIT_TABLES, config=st.none() | CONFIGS)
def test_unit_tables(tmp_path_factory, data, config):
    path = _write(tmp_path_factory.mktemp("u"), "units.csv", data)
    check_contract(lambda: abkit.analyze(path, config))


@SETTINGS
@given(data=SUMMARY_TABLES, cumulative=st.booleans())
def test_summary_tables(tmp_path_factory, data, cumulative):
    path = _write(tmp_path_factory.mktemp("s"), "summary.csv", data)
    config = {"input": {"kind": "summary", "cumulative": cumulative}}
    check_contract(lambda: abkit.analyze(path, config))


@SETTINGS
@given(
    assignments=ASSIGNMENTS,
    events=EVENTS,
    sequential=st.sampled_from([None, "cs", "gst"]),
    gzipped=st.booleans(),
)
def test_event_exports(tmp_path_factory, assignments, events, sequential, gzipped):
    folder = tmp_path_factory.mktemp("e")
    a = _write(folder, "assignments.csv", assignments)
    if gzipped:  # the usual shape of an export; the diagnosis reads it decompressed
        e = _write(folder, "events.csv.gz", gzip.compress(events))
    else:
        e = _write(folder, "events.csv", events)
    check_contract(lambda: abkit.analyze(a, None, events=e, sequential=sequential))


@SETTINGS
@given(assignments=ASSIGNMENTS, events=EVENTS, weighting=st.sampled_from(["user", "account"]))
def test_b2b_exports(tmp_path_factory, assignments, events, weighting):
    folder = tmp_path_factory.mktemp("b")
    a = _write(folder, "assignments.csv", assignments)
    e = _write(folder, "events.csv", events)
    config = {"experiment": {"mode": "b2b"}, "b2b": {"weighting": weighting, "resamples": 200}}
    check_contract(lambda: abkit.analyze(a, config, events=e))


@SETTINGS
@given(config=st.one_of(PLAUSIBLE_CONFIGS, CONFIGS))
def test_configs_on_a_valid_table(tmp_path_factory, config):
    rows = "\n".join(
        f"{i},{'control' if i % 2 else 'treatment'},{i % 7},{i % 2}" for i in range(40)
    )
    path = _write(
        tmp_path_factory.mktemp("c"), "u.csv", ("user_id,variant,x,flag\n" + rows).encode()
    )
    check_contract(lambda: abkit.analyze(path, config))


@SETTINGS
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.sampled_from([1e-300, 1e150, -1e150, 0.0]),
        ),
        min_size=0,
        max_size=12,
    ),
    split=st.integers(0, 12),
)
def test_extreme_but_valid_numbers(tmp_path_factory, values, split):
    rows = [f"{i},{'control' if i < split else 'treatment'},{v!r}" for i, v in enumerate(values)]
    path = _write(
        tmp_path_factory.mktemp("x"), "u.csv", ("user_id,variant,x\n" + "\n".join(rows)).encode()
    )
    check_contract(lambda: abkit.analyze(path))


@SETTINGS
@given(
    out=st.sampled_from(["-o", "--out"]),
    target=st.sampled_from(
        ["r.json", "no/such/dir/r.json", "existing.txt/sub", "existing.txt", "d/", ".", "x" * 300]
    ),
)
def test_output_paths(tmp_path_factory, out, target):
    from click.testing import CliRunner

    from abkit_cli.main import cli

    folder = tmp_path_factory.mktemp("o")
    (folder / "existing.txt").write_text("x")
    rows = "\n".join(f"{i},{'control' if i % 2 else 'treatment'},{i % 5}" for i in range(20))
    table = _write(folder, "u.csv", ("user_id,variant,x\n" + rows).encode())
    result = CliRunner().invoke(cli, ["analyze", str(table), out, str(folder / target)])
    OUTCOMES["output path"] += 1
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


# --- a sample through the real CLI ---------------------------------------------------------


@settings(
    max_examples=max(3, EXAMPLES // 10),
    deadline=None,
    phases=PHASES,
    derandomize=not LONG_RUN,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(data=st.one_of(UNIT_TABLES, SUMMARY_TABLES))
def test_cli_subprocess_never_shows_a_traceback(tmp_path_factory, data):
    path = _write(tmp_path_factory.mktemp("cli"), "input.csv", data)
    proc = subprocess.run(
        [sys.executable, "-m", "abkit_cli.main", "analyze", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    OUTCOMES["CLI subprocess"] += 1
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode == 2:
        assert proc.stderr.startswith("abkit: error: ") and proc.stderr.strip().count("\n") == 0
