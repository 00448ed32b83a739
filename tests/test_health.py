"""Health bands: product-practice retention bars shown beside the estimates, in every
output, configurable, and never part of a decision."""

from __future__ import annotations

import json

import pytest

import abkit
from abkit.api import AnalysisResult
from abkit.dev.simulate import simulate
from abkit.errors import ConfigError

RETENTION = [{"name": f"d{d}", "type": "retention", "day": d} for d in (1, 7, 30)]


@pytest.fixture(scope="module")
def export():
    return simulate(users=2_000, days=40, enrol_days=5, seed=2)


def _analyze(export, **health):
    config = {"metrics": RETENTION, **({"health": health} if health else {})}
    return abkit.analyze(export.assignments, config, events=export.events)


def test_default_bars_flag_d7_and_d30_against_the_arms_values(export):
    res = _analyze(export)
    bands = {r.metric: r.health for r in res.results}
    assert bands["d1"] is None
    for metric, bar in (("d7", 0.20), ("d30", 0.10)):
        band = bands[metric]
        r = next(x for x in res.results if x.metric == metric)
        assert band is not None and band.bar == bar
        assert band.control_below == (r.control_value < bar)
        assert band.treatment_below == (r.treatment_value < bar)
    text, md, html = res.to_text(), res.to_markdown(), res.to_html()
    for out in (text, md, html):
        assert "Health bands" in out and "D7 bar 20 %" in out
    d = json.loads(res.to_json())
    assert d["results"][1]["health"]["bar"] == 0.2
    assert AnalysisResult.from_dict(d).to_text() == text


def test_bars_are_configurable_and_can_be_turned_off(export):
    res = _analyze(export, bars={"d1": 0.5})
    bands = {r.metric: r.health for r in res.results}
    assert bands["d1"] is not None and bands["d1"].bar == 0.5 and bands["d7"] is None
    off = _analyze(export, bars={})
    assert all(r.health is None for r in off.results)
    assert "Health bands" not in off.to_text()


def test_bands_never_change_a_decision(export):
    with_bars, without = _analyze(export, bars={"d7": 0.99}), _analyze(export, bars={})
    assert [r.decision for r in with_bars.results] == [r.decision for r in without.results]


def test_a_bad_bar_is_refused():
    with pytest.raises(ConfigError, match=r"health\.bars"):
        abkit.load_config({"health": {"bars": {"week1": 0.2}}})
    with pytest.raises(ConfigError, match=r"health\.bars"):
        abkit.load_config({"health": {"bars": {"d7": 20}}})
