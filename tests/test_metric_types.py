"""Metric types are classes in a registry, and the config schema is the dataclasses.

A new metric type is one class: registering it (here for the test's duration) is all
the pipeline needs, from config validation to the report.  The options the CLI offers
are the schema's ``Literal`` values, and no module outside ``abkit.metrics`` decides
anything by comparing a metric's type name.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import ClassVar, Literal, get_args, get_origin, get_type_hints

import polars as pl
import pytest
from scipy import stats

import abkit
from abkit import config as cfg
from abkit.errors import ConfigError
from abkit.metrics import REGISTRY, MetricType, metric_type
from abkit.metrics.mean import Mean
from abkit.options import InputKind, Mode, SequentialMethod, choices
from tests.conftest import EXAMPLE

PACKAGE = Path(abkit.__file__).resolve().parent


class ActiveDays(Mean):
    """Days with any event per unit: a new type written against the base class only."""

    name: ClassVar[str] = "active_days_per_user"
    required_keys: ClassVar[tuple[str, ...]] = ()

    def references(self, metric, output_event):
        return ("active_days",)


def test_every_registered_type_is_found_by_its_name():
    assert set(REGISTRY) == {
        "retention",
        "ratio",
        "proportion",
        "mean",
        "session_depth",
        "time_to_value",
        "nrr",
        "adoption",
        "quantile",
        "active_days",
        "event_mean",
        "judged_quality",
    }
    for name, kind in REGISTRY.items():
        assert isinstance(kind, MetricType) and kind.name == name and metric_type(name) is kind
    with pytest.raises(KeyError, match="known: retention"):
        metric_type("retension")


def test_a_new_type_is_one_class(monkeypatch):
    """Registered, the class is analysed end to end; its numbers match an independent
    computation (days with an event after assignment, per assigned unit; Welch's t)."""
    monkeypatch.setitem(REGISTRY, ActiveDays.name, ActiveDays())
    config = {"metrics": [{"name": "days", "type": ActiveDays.name}]}
    result = abkit.analyze(
        EXAMPLE / "assignments.parquet", config, events=EXAMPLE / "events.parquet"
    )
    (row,) = result.results
    assign = pl.read_parquet(EXAMPLE / "assignments.parquet")
    events = pl.read_parquet(EXAMPLE / "events.parquet")
    days = (
        events.join(assign, on="user_id")
        .filter(pl.col("timestamp") >= pl.col("assigned_at"))
        .with_columns(
            (
                (pl.col("timestamp") - pl.col("assigned_at")).dt.total_microseconds() // 86_400e6
            ).alias("day")
        )
        .group_by("user_id")
        .agg(pl.col("day").n_unique().alias("days"))
    )
    per_unit = assign.join(days, on="user_id", how="left").with_columns(pl.col("days").fill_null(0))
    arm = {
        v: per_unit.filter(pl.col("variant") == v)["days"].to_numpy().astype(float)
        for v in ("control", row.variant)
    }
    welch = stats.ttest_ind(arm[row.variant], arm["control"], equal_var=False)
    assert row.metric_type == ActiveDays.name
    assert row.control_value == pytest.approx(arm["control"].mean(), rel=1e-12)
    assert row.effect == pytest.approx(arm[row.variant].mean() - arm["control"].mean(), rel=1e-9)
    assert row.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    assert "Welch" in row.method and row.metric in abkit.AnalysisResult.to_text(result)


def test_unknown_type_lists_the_registry():
    with pytest.raises(ConfigError, match="allowed values: retention, ratio") as err:
        cfg.parse_config({"metrics": [{"name": "m", "type": "proportoin", "column": "x"}]})
    assert "Did you mean 'proportion'" in str(err.value)


def test_cli_choices_are_the_schema_literals():
    from click.testing import CliRunner

    from abkit_cli.main import cli

    hints = {
        ("analyze", "--kind"): InputKind,
        ("analyze", "--mode"): Mode,
        ("analyze", "--sequential"): SequentialMethod,
    }
    for (command, flag), option in hints.items():
        params = {p.opts[0]: p for p in cli.commands[command].params if p.opts}
        assert tuple(params[flag].type.choices) == choices(option)
    help_text = CliRunner().invoke(cli, ["analyze", "--help"]).output
    assert "msprt|cs|gst" in help_text


def test_schema_types_and_defaults_come_from_the_dataclasses():
    """Each field's default is what an empty config gives, and each Literal-typed key
    refuses other values naming the allowed ones."""
    spec = cfg.parse_config({})
    assert spec == cfg.ExperimentSpec()
    for section, cls, attr in (
        ("sequential", cfg.SequentialSpec, "sequential"),
        ("b2b", cfg.B2BSpec, "b2b"),
        ("input", cfg.InputSpec, "input"),
    ):
        for f in dataclasses.fields(cls):
            assert getattr(getattr(spec, attr), f.name) == f.default
        hints = get_type_hints(cls)
        literal_keys = [
            name
            for name, hint in hints.items()
            if Literal in {get_origin(hint), *map(get_origin, get_args(hint))}
        ]
        assert literal_keys, cls  # every section here has a closed-set option
        for key in literal_keys:
            with pytest.raises(ConfigError, match=f"key '{section}.{key}' is 'nope'; allowed"):
                cfg.parse_config({section: {key: "nope"}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"experiment": {"alpha": 0.7}}, "'experiment.alpha' must be between 0 and 0.5"),
        ({"b2b": {"resamples": 10}}, "'b2b.resamples' must be at least 100"),
        ({"sequential": {"looks": [7, 3]}}, "'sequential.looks' must be increasing"),
        ({"sequential": {"looks": [7, "x"]}}, "'sequential.looks' must be of type int"),
        ({"experiment": {"expected_split": {"a": -1}}}, "map each variant to a positive share"),
        ({"experiment": {"alpha": float("nan")}}, "must be a finite number"),
        ({"experiment": {"alpha": True}}, "must be of type float"),
        (
            {"metrics": [{"name": "r", "type": "retention", "window": [3, 1]}]},
            "two whole days [a, b] with 0 <= a <= b",
        ),
        (
            {"metrics": [{"name": "r", "type": "retention", "window": [1, 2, 3]}]},
            "'metrics[0].window' must be of type list",
        ),
        (
            {"metrics": [{"name": "t", "type": "time_to_value"}]},
            "needs the key 'event'",
        ),
    ],
)
def test_schema_checks_name_the_key(raw, message):
    with pytest.raises(ConfigError) as err:
        cfg.parse_config(raw)
    assert message in str(err.value)


def test_type_defaults_direction():
    ttv = cfg.MetricSpec(name="t", type="time_to_value", event="value")
    assert not ttv.higher_is_better
    assert cfg.MetricSpec(name="m", type="mean", column="x").higher_is_better
    assert not cfg.MetricSpec(
        name="m", type="mean", column="x", direction="decrease"
    ).higher_is_better


def test_no_type_name_dispatch_outside_the_metric_modules():
    """Comparing a metric's type name (``m.type == "ratio"``, ``.type in (...)``) is how
    the old string dispatch looked; only abkit.metrics and the schema know type names."""
    pattern = re.compile(r"\.(type|metric_type)\s*(==|!=|\bin\b|\bnot in\b)")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        if "metrics" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_summary_rates_and_means_read_by_their_types():
    """Summary rows go through the type's own reader: a proportion's variance is
    p(1 − p)·n/(n − 1); a mean keeps the given variance."""
    table = pl.DataFrame(
        {
            "variant": ["control", "t", "control", "t"],
            "metric": ["conv", "conv", "rev", "rev"],
            "n": [1000, 1000, 1000, 1000],
            "mean": [0.10, 0.12, 5.0, 5.5],
            "variance": [None, None, 4.0, 4.0],
        }
    )
    result = abkit.analyze(table, kind="summary")
    by = {r.metric: r for r in result.results}
    pearson = stats.chi2_contingency([[100, 900], [120, 880]], correction=False)
    assert by["conv"].metric_type == "proportion"
    assert by["rev"].metric_type == "mean"
    assert by["rev"].p_value == pytest.approx(
        stats.ttest_ind_from_stats(5.5, 2.0, 1000, 5.0, 2.0, 1000, equal_var=False).pvalue,
        rel=1e-9,
    )
    assert by["conv"].effect == pytest.approx(0.02)
    assert by["conv"].p_value == pytest.approx(pearson.pvalue, rel=1e-9)
