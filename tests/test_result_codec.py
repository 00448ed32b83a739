"""The results are typed to their leaves and written by one codec: JSON round trips
(NaN, infinities, None, unions of dataclasses), the documented shape of results.json,
and results.json files written before the typed results still read."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

import abkit
from abkit.analysis.sequential import Look
from abkit.api import AnalysisResult, MetricResult
from abkit.dev.simulate import simulate
from abkit.inputs.adoption import AdoptionSummary
from abkit.io.exclusions import Exclusion, RowCount
from abkit.json_codec import JsonShapeError, from_jsonable, json_form, to_jsonable
from abkit.result import AccountDetail, AccountQuantileDetail, RetentionCurve, TimeToValueDetail
from abkit.stats.shape import DepthShape

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ai_summary_export"
BEFORE = Path(__file__).parent / "data" / "results_before_typing.json"
SHARE = {"name": "share_rate", "type": "ratio", "numerator": "share", "denominator": "ai_output"}


def same(a: Any, b: Any, where: str = "$") -> None:
    """Equal field by field and of the same types, NaN equal to NaN; an infinite number
    reads back as NaN (JSON writes both as null)."""
    a = a.item() if isinstance(a, np.generic) else a
    b = b.item() if isinstance(b, np.generic) else b
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if is_dataclass(a):
        for f in fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not math.isfinite(a):
        assert math.isnan(b), f"{where}: {a} read back as {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def round_trip(res: AnalysisResult) -> AnalysisResult:
    text = res.to_json()
    back = AnalysisResult.from_dict(json.loads(text))
    same(res, back)
    assert back.to_json() == text
    return back


# --- the codec on its own -----------------------------------------------------------


@dataclass(frozen=True)
class _Point:
    kind: Literal["point"]
    at: tuple[float, float]


@dataclass(frozen=True)
class _Band:
    kind: Literal["band"]
    low: tuple[float, ...]
    high: tuple[float, ...]
    label: str | None = field(default=None, metadata={"json_omit_none": True})


@dataclass(frozen=True, kw_only=True)
class _Row:
    extra: dict[str, str] = field(default_factory=dict, metadata={"json_flatten": True})
    name: str = field(metadata={"json": ("id", "name")})
    n: int = field(metadata={"json": ("id", "n")})
    shape: _Point | _Band | None = None
    weights: dict[str, float] = field(default_factory=dict)
    total: float = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", math.fsum(self.weights.values()))


def test_round_trip_of_nan_infinities_none_and_unions():
    row = _Row(
        extra={"role": "admin"},
        name="a",
        n=3,
        shape=_Band("band", (math.nan, 1.0), (math.inf, 2), label=None),
        weights={"x": -math.inf, "y": 0.5},
    )
    d = to_jsonable(row)
    assert d == {
        "role": "admin",
        "id": {"name": "a", "n": 3},
        "shape": {"kind": "band", "low": [None, 1.0], "high": [None, 2]},
        "weights": {"x": None, "y": 0.5},
        "total": None,
    }
    back = from_jsonable(_Row, json.loads(json.dumps(d)))
    same(row, back)
    assert isinstance(back.shape, _Band) and back.shape.label is None
    assert type(back.shape.high[1]) is int  # JSON told 2 from 2.0: it writes back the same
    assert json.dumps(to_jsonable(back)) == json.dumps(d)
    point = from_jsonable(
        _Row, {"id": {"name": "b", "n": 1}, "shape": {"kind": "point", "at": [0, None]}}
    )
    assert isinstance(point.shape, _Point) and math.isnan(point.shape.at[1])
    assert from_jsonable(_Row, {"id": {"name": "c", "n": 0}}).shape is None


def test_an_omitted_key_reads_as_none_and_a_null_as_nan():
    assert from_jsonable(_Band, {"kind": "band", "low": [], "high": []}).label is None
    look = {"look": 1, "at": "day 7", "day": 7.0, "n_control": 0, "n_treatment": 0}
    look |= {"estimate": None, "ci": [None, None], "p_value": None, "decision": "continue"}
    plain = from_jsonable(Look, look)
    assert plain.p_value_margin is None and "p_value_margin" not in to_jsonable(plain)
    guard = from_jsonable(Look, {**look, "p_value_margin": None})
    assert math.isnan(guard.p_value_margin) and to_jsonable(guard)["p_value_margin"] is None


@pytest.mark.parametrize(
    "data, message",
    [
        ({"id": {"name": "a", "n": 1}, "shape": {"kind": "line"}}, "fits none"),
        ({"id": {"name": "a", "n": "1"}}, r"\$\.id\.n: '1' is not an int"),
        ({"id": {"name": "a"}}, r"\$\.id\.n: missing for _Row"),
        ({"id": {"name": "a", "n": 1, "m": 2}}, r"\$\.id: unknown key\(s\) 'm' for _Row"),
        ({"id": {"name": "a", "n": 1}, "weights": {"x": "1"}}, "is not a number"),
        ({"id": {"name": "a", "n": 1}, "shape": {"kind": "point", "at": [1.0]}}, "1 values"),
    ],
)
def test_a_value_of_another_shape_is_refused_saying_where(data, message):
    with pytest.raises(JsonShapeError, match=message):
        from_jsonable(_Row, data)


def test_a_form_declares_constants_properties_and_order():
    @dataclass(frozen=True)
    class Span:
        low: float
        high: float

        @property
        def width(self) -> float:
            return self.high - self.low

    json_form(Span, constants={"kind": "span"}, properties=("width",), order=("high", "low"))
    d = to_jsonable(Span(1.0, 3.5))
    assert list(d) == ["kind", "high", "low", "width"]
    assert from_jsonable(Span, d) == Span(1.0, 3.5)
    with pytest.raises(ValueError, match="each of its fields"):
        json_form(Span, order=("low",))


def test_numpy_values_become_plain_json():
    d = to_jsonable({"a": np.arange(3), "b": np.float64("nan"), "c": np.bool_(True)})
    assert d == {"a": [0, 1, 2], "b": None, "c": True}
    assert [type(v) for v in d["a"]] == [int, int, int]
    with pytest.raises(TypeError, match="keys are str"):
        to_jsonable({1: 2})
    with pytest.raises(TypeError, match="cannot write a set"):
        to_jsonable({1, 2})


# --- results -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> AnalysisResult:
    return abkit.analyze(
        EXAMPLE / "assignments.parquet",
        EXAMPLE / "experiment.toml",
        events=EXAMPLE / "events.parquet",
    )


@pytest.fixture(scope="module")
def gst() -> AnalysisResult:
    config = tomllib.loads((EXAMPLE / "experiment.toml").read_text())
    config["sequential"] = {"method": "gst", "futility_effect": 0.1}
    return abkit.analyze(EXAMPLE / "assignments.parquet", config, events=EXAMPLE / "events.parquet")


@pytest.fixture(scope="module")
def b2b() -> AnalysisResult:
    e = simulate(mode="b2b", users=1_500, accounts=12, days=6, enrol_days=2, seed=4)
    role = np.random.default_rng(1).choice(["admin", "member"], e.assignments.height)
    latency = {"type": "quantile", "column": "ai_output.latency_ms", "direction": "decrease"}
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 200, "seed": 1},
        "segments": {"columns": ["role"]},
        "metrics": [
            SHARE,
            {"name": "p90", "q": 0.9, **latency},
            {"name": "p90_guard", "q": 0.9, "guardrail": True, "relative_margin": 0.3, **latency},
            {"name": "ttv", "type": "time_to_value", "event": "share"},
            {"name": "adopt", "type": "adoption", "event": "share", "segments": ["role"]},
            {"name": "depth", "type": "session_depth"},
            {"name": "d1", "type": "retention", "day": 1},
        ],
    }
    return abkit.analyze(e.assignments.with_columns(role=role), config, events=e.events)


def test_the_bundled_example_reads_back_equal(example):
    back = round_trip(example)
    assert all(type(r) is MetricResult for r in back.results)
    depth = back.session_depth["session_depth"]
    assert all(type(s) is DepthShape for s in depth.values())
    assert all(type(c) is RetentionCurve for c in back.retention_curve.values())
    assert all(type(c) is RowCount for c in back.rows.values())


def test_sequential_looks_read_back_as_looks(gst):
    back = round_trip(gst)
    for r in back.results:
        assert r.sequential is not None and r.fixed_horizon_valid is False
        assert all(type(lk) is Look for lk in r.sequential.looks)
        margin = [lk.p_value_margin is not None for lk in r.sequential.looks]
        assert set(margin) == {r.guardrail is not None}
    bounds = back.results[0].sequential.tuning["futility_bounds"]
    assert isinstance(bounds, tuple) and len(bounds) == len(back.results[0].sequential.looks)


def test_b2b_details_read_back_as_their_own_types(b2b):
    back = round_trip(b2b)
    kinds = {r.metric: type(r.b2b) for r in back.results}
    assert kinds == {
        "share_rate": AccountDetail,
        "p90": AccountQuantileDetail,
        "p90_guard": AccountQuantileDetail,
        "ttv": TimeToValueDetail,
        "adopt": AccountDetail,
        "depth": AccountDetail,
        "d1": AccountDetail,
    }
    adoption = back.adoption["adopt"]
    assert type(adoption) is AdoptionSummary
    assert {r.segment["role"] for r in adoption.segments["role"]} == {"admin", "member"}
    assert all(r.accounts is not None for r in adoption.by_variant)
    assert any(r.segments for r in back.results)
    assert all(type(e) is Exclusion for e in back.exclusions)


def test_too_few_accounts_keep_a_detail_without_tests():
    e = simulate(mode="b2b", users=300, accounts=3, days=6, enrol_days=2, seed=4)
    config = {
        "experiment": {"account": "account_id", "mode": "b2b"},
        "b2b": {"resamples": 200},
        "metrics": [
            SHARE,
            {"name": "p50", "type": "quantile", "q": 0.5, "column": "ai_output.latency_ms"},
            {"name": "ttv", "type": "time_to_value", "event": "share"},
        ],
    }
    res = abkit.analyze(e.assignments, config, events=e.events)
    d = res.to_dict()
    assert [set(r["b2b"]) for r in d["results"]] == [{"weighting", "arms"}] * 2 + [{"arms"}]
    back = round_trip(res)
    assert [type(r.b2b) for r in back.results] == [
        AccountDetail,
        AccountQuantileDetail,
        TimeToValueDetail,
    ]
    assert all(r.decision.outcome == "not computable" for r in back.results)


def test_results_json_has_the_documented_shape(gst):
    d = gst.to_dict()
    assert list(d) == [
        "experiment",
        "srm",
        "warnings",
        "rows",
        "exclusions",
        "metric_notes",
        "notes",
        "results",
        "session_depth",
        "adoption",
        "retention_curve",
    ]
    assert list(d["experiment"]) == [
        "name",
        "control",
        "variants",
        "alpha",
        "unit",
        "mode",
        "account",
        "correction",
        "input",
        "export_end",
    ]
    assert list(d["srm"]) == [
        "method",
        "statistic",
        "p_value",
        "threshold",
        "observed",
        "expected_share",
        "mismatch",
    ]
    assert list(d["rows"]["events"]) == ["read", "used", "excluded"]
    r = next(r for r in d["results"] if r["guardrail"])
    assert list(r) == [
        "metric",
        "metric_type",
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
        "direction",
        "fixed_horizon_valid",
        "decision",
        "guardrail",
        "sequential",
        "b2b",
        "cuped",
        "paired",
        "novelty",
        "segments",
        "quantiles",
        "health",
        "warnings",
    ]
    assert list(r["control"]) == ["n", "value"]
    assert list(r["decision"])[-1] == "meaning"
    assert list(r["guardrail"]) == ["margin", "scale", "test", "p_value", "bound", "verdict"]
    seq = r["sequential"]
    assert list(seq) == [
        "method",
        "interval",
        "tuning",
        "decision",
        "looks_with_data",
        "warnings",
        "looks",
    ]
    assert list(seq["looks"][-1]) == [
        "look",
        "at",
        "day",
        "n_control",
        "n_treatment",
        "estimate",
        "ci",
        "p_value",
        "p_value_margin",
        "decision",
    ]
    shape = d["session_depth"]["session_depth"]["control"]
    assert list(shape) == [
        "sessions",
        "mean",
        "median",
        "share_zero",
        "share_one",
        "share_20_plus",
        "log2_bins",
        "bimodal",
        "histogram",
    ]
    assert list(shape["log2_bins"][0]) == ["depth", "share"]
    assert list(shape["histogram"]) == ["depth", "sessions"]
    assert list(d["retention_curve"]["control"]) == ["day", "eligible", "active"]


@pytest.mark.parametrize("name", json.loads(BEFORE.read_text()))
def test_a_results_json_written_before_the_typed_results_reads(name):
    """Trimmed results.json files of the code before this change (B2B with every
    detail, too few accounts, sequential, summary checkpoints, B2C with segments,
    novelty and quantiles, a paired export) read back and write the same text."""
    saved = json.loads(BEFORE.read_text())[name]
    res = AnalysisResult.from_dict(saved)
    assert json.dumps(res.to_dict(), indent=1, ensure_ascii=False) == json.dumps(
        saved, indent=1, ensure_ascii=False
    )
    assert res.to_text()
    assert res.to_markdown()
    for r in res.results:
        if r.b2b is not None:
            assert isinstance(r.b2b, AccountDetail | AccountQuantileDetail | TimeToValueDetail)
