"""Bad input and configuration: a clear message naming the problem, exit code 2, no
traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest
from click.testing import CliRunner

from abkit_cli.main import cli


@pytest.fixture
def export(tmp_path):
    assign = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "variant": ["control", "t", "control", "t"],
            "assigned_at": ["2024-01-01"] * 4,
        }
    )
    events = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "event": ["ai_output"] * 4,
            "timestamp": ["2024-01-02T10:00:00"] * 4,
            "session_id": ["a"] * 4,
        }
    )
    a, e = tmp_path / "assignments.csv", tmp_path / "events.csv"
    assign.write_csv(a)
    events.write_csv(e)
    return tmp_path, a, e


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_missing_column_names_it_and_lists_those_found(export):
    tmp, a, _ = export
    events = pl.DataFrame({"uid": [1], "event": ["x"], "timestamp": ["2024-01-02"]})
    events.write_csv(tmp / "bad.csv")
    out = run("analyze", a, tmp / "bad.csv")
    assert out.exit_code == 2
    assert "bad.csv" in out.output and "'user_id'" in out.output
    assert "Columns found: uid, event, timestamp" in out.output


def test_all_timestamps_unparseable_is_an_error_with_an_example(export):
    tmp, a, _ = export
    pl.DataFrame(
        {"user_id": [1, 2], "event": ["x", "x"], "timestamp": ["01/02/2024 10am", "yesterday"]}
    ).write_csv(tmp / "e.csv")
    out = run("analyze", a, tmp / "e.csv")
    assert out.exit_code == 2
    assert "column 'timestamp'" in out.output and "01/02/2024 10am" in out.output


def test_unparseable_assignment_timestamps(export):
    tmp, _, e = export
    pl.DataFrame(
        {"user_id": [1, 2], "variant": ["control", "t"], "assigned_at": ["soon", "later"]}
    ).write_csv(tmp / "a.csv")
    out = run("analyze", tmp / "a.csv", e)
    assert out.exit_code == 2
    assert "assigned_at" in out.output and "'soon'" in out.output and "data row 1" in out.output


def test_missing_file(export):
    tmp, a, _ = export
    out = run("analyze", a, tmp / "nope.parquet")
    assert out.exit_code == 2 and "does not exist" in out.output


def test_unknown_extension(export):
    tmp, a, _ = export
    (tmp / "events.dat").write_text("x")
    out = run("analyze", a, tmp / "events.dat")
    assert out.exit_code == 2 and "cannot tell the format" in out.output


def test_control_variant_absent(export):
    tmp, a, e = export
    (tmp / "c.toml").write_text('[experiment]\ncontrol = "baseline"\n')
    out = run("analyze", a, e, "-c", tmp / "c.toml")
    assert out.exit_code == 2
    assert "'baseline' does not occur" in out.output and "control, t" in out.output


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[experiment]\nalpah = 0.05\n", "unknown key 'experiment.alpah'. Did you mean 'alpha'?"),
        ('[experiment]\nalpha = "0.05"\n', "key 'experiment.alpha' must be of type float"),
        ('[[metrics]]\nname = "m"\ntype = "retension"\nday = 1\n', "Did you mean 'retention'"),
        (
            '[[metrics]]\nname = "m"\ntype = "ratio"\nnumerator = "a"\n',
            "needs the key 'denominator'",
        ),
        (
            '[[metrics]]\nname = "m"\ntype = "mean"\ncolumn = "a"\nguardrail = true\n',
            "give exactly one of 'margin'",
        ),
        ('[[metrics]]\nname = "m"\ntype = "retention"\n', "give exactly one of 'day = N'"),
        ("[experimnt]\n", "unknown section 'experimnt'"),
        ("[experiment\n", "not valid TOML"),
    ],
)
def test_config_errors_name_the_key(export, toml, expected):
    tmp, a, e = export
    (tmp / "c.toml").write_text(toml)
    out = run("analyze", a, e, "-c", tmp / "c.toml")
    assert out.exit_code == 2
    assert expected in out.output
    assert "c.toml" in out.output


def test_proportion_column_with_other_values(tmp_path):
    pl.DataFrame({"user_id": [1, 2], "variant": ["control", "t"], "x": [0, 2]}).write_csv(
        tmp_path / "u.csv"
    )
    (tmp_path / "c.toml").write_text('[[metrics]]\nname = "x"\ntype = "proportion"\ncolumn = "x"\n')
    out = run("analyze", tmp_path / "u.csv", "-c", tmp_path / "c.toml")
    assert out.exit_code == 2 and "column 'x'" in out.output and "0/1" in out.output


def test_text_in_a_numeric_metric_column_names_row_and_value(tmp_path):
    pl.DataFrame(
        {"user_id": [1, 2, 3], "variant": ["control", "t", "t"], "revenue": ["1.5", "2", "n/a"]}
    ).write_csv(tmp_path / "u.csv")
    (tmp_path / "c.toml").write_text(
        '[[metrics]]\nname = "revenue"\ntype = "mean"\ncolumn = "revenue"\n'
    )
    out = run("analyze", tmp_path / "u.csv", "-c", tmp_path / "c.toml")
    assert out.exit_code == 2
    assert "'n/a'" in out.output and "data row 3" in out.output


def test_only_one_variant(tmp_path):
    pl.DataFrame({"user_id": [1, 2], "variant": ["control", "control"], "x": [1.0, 2.0]}).write_csv(
        tmp_path / "u.csv"
    )
    out = run("analyze", tmp_path / "u.csv")
    assert out.exit_code == 2 and "needs a treatment" in out.output


def test_unknown_and_null_variants_and_duplicates_are_counted_not_fatal(tmp_path):
    units = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5, 5, None],
            "variant": ["control", "t", "zzz", None, "t", "control", "t"],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    units.write_csv(tmp_path / "u.csv")
    (tmp_path / "c.toml").write_text('[experiment]\nvariants = ["control", "t"]\n')
    out = run("analyze", tmp_path / "u.csv", "-c", tmp_path / "c.toml", "--format", "json")
    assert out.exit_code == 0, out.output
    reasons = {e["reason"]: e["rows"] for e in json.loads(out.output)["exclusions"]}
    assert reasons == {
        "null unit id": 1,
        "null variant": 1,
        "unknown variant (not declared in the config)": 1,
        "unit assigned to more than one variant (all its rows excluded)": 2,
    }


def test_degenerate_data_is_reported_not_crashed(tmp_path):
    pl.DataFrame(
        {"user_id": [1, 2, 3], "variant": ["control", "t", "t"], "x": [1.0, 2.0, 2.0]}
    ).write_csv(tmp_path / "u.csv")
    out = run("analyze", tmp_path / "u.csv", "--format", "json")
    assert out.exit_code == 0
    r = json.loads(out.output)["results"][0]
    assert r["p_value"] is None
    # the reason is the decision's, in the test's own words, and said once
    assert r["decision"]["outcome"] == "not computable"
    assert "control arm has 1 unit" in r["decision"]["reason"]


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from abkit_cli.main import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('matplotlib', 'statsmodels', 'scipy', 'polars') "
        "if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_markdown_escapes_names_from_the_data(tmp_path):
    evil = "[click](http://evil.example) <img src=x onerror=alert(1)> **bold** | pipe"
    pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "variant": ["control", evil, "control", evil],
            "x": [1.0, 2.0, 3.0, 5.0],
        }
    ).write_csv(tmp_path / "u.csv")
    out = run("analyze", tmp_path / "u.csv", "--format", "markdown")
    assert out.exit_code == 0
    from markdown_it import MarkdownIt

    html = MarkdownIt("gfm-like", {"linkify": True}).render(out.output)
    assert "<a " not in html and "<img" not in html and "<strong>bold" not in html
    assert "[click](http://evil.example) &lt;img src=x onerror=alert(1)&gt;" in html
    result_row = html.split("<tbody>")[1].split("</tr>")[0]
    assert result_row.count("<td>") == 5  # the pipe in the name did not add a cell


def test_a_typo_in_an_event_name_is_pointed_out(export):
    tmp, a, e = export
    (tmp / "c.toml").write_text(
        '[[metrics]]\nname = "outputs"\ntype = "mean"\ncolumn = "ai_ouptut"\n'
    )
    out = run("analyze", a, e, "-c", tmp / "c.toml", "--format", "json")
    assert out.exit_code == 0
    d = json.loads(out.output)
    # said once, first among the experiment's warnings, with the near match
    first = d["warnings"][0]
    assert first.startswith("EVENT NOT FOUND: metric 'outputs' counts 'ai_ouptut'")
    assert "did you mean 'ai_output'?" in first
    assert not [w for w in d["results"][0]["warnings"] if "ai_ouptut" in w]
