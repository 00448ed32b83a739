"""Effects by segment through abkit.analyze: each segment's effect against scipy on the
segment's units, Holm across segments against statsmodels, Cochran's Q against
statsmodels' meta-analysis, refusals, and one truth in every output."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from scipy import stats as st
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests

import abkit
from abkit.dev.simulate import simulate
from abkit.errors import AbkitInputError
from abkit_cli.main import cli


def _units(n=9_000, seed=1):
    rng = np.random.default_rng(seed)
    country = rng.choice(["DE", "FR", "US", "BR"], n, p=[0.2, 0.2, 0.5, 0.1])
    treated = rng.random(n) < 0.5
    lift = np.select([country == "US", country == "BR"], [0.6, 0.0], 0.2)
    spend = rng.gamma(2.0, 2.0, n) + treated * lift
    platform = np.where(rng.random(n) < 0.02, None, rng.choice(["ios", "android"], n))
    return pl.DataFrame(
        {
            "user_id": np.arange(n),
            "variant": np.where(treated, "treatment", "control"),
            "country": country,
            "platform": platform,
            "spend": spend,
        }
    )


CONFIG = {
    "segments": {"columns": ["country"]},
    "metrics": [{"name": "spend", "type": "mean", "column": "spend"}],
}


def test_segment_effects_holm_and_q_against_scipy_and_statsmodels():
    frame = _units()
    res = abkit.analyze(frame, CONFIG)
    (b,) = res.results[0].segments
    assert [e.value for e in b.effects] == ["BR", "DE", "FR", "US"]
    effects, variances, raw = [], [], []
    for e in b.effects:
        part = frame.filter(pl.col("country") == e.value)
        t = part.filter(pl.col("variant") == "treatment")["spend"].to_numpy()
        c = part.filter(pl.col("variant") == "control")["spend"].to_numpy()
        ref = st.ttest_ind(t, c, equal_var=False)
        assert e.effect == pytest.approx(t.mean() - c.mean(), rel=1e-12)
        assert e.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert (e.control_n, e.treatment_n) == (c.size, t.size)
        effects.append(t.mean() - c.mean())
        variances.append(t.var(ddof=1) / t.size + c.var(ddof=1) / c.size)
        raw.append(ref.pvalue)
    holm = multipletests(raw, method="holm")[1]
    assert [e.p_value_adjusted for e in b.effects] == pytest.approx(list(holm), rel=1e-9)
    meta = combine_effects(np.array(effects), np.array(variances))
    assert b.heterogeneity.q == pytest.approx(meta.q, rel=1e-9)
    assert b.heterogeneity.p_value < 0.001  # the simulated lifts differ by country
    assert b.heterogeneity.common_effect == pytest.approx(meta.mean_effect_fe, rel=1e-9)


def test_missing_values_form_their_own_segment_and_outputs_agree():
    frame = _units()
    res = abkit.analyze(frame, CONFIG, segments=["platform"])
    columns = [b.column for b in res.results[0].segments]
    assert columns == ["country", "platform"]
    platform = res.results[0].segments[1]
    assert [e.value for e in platform.effects] == ["android", "ios", "(missing)"]
    assert sum(e.control_n + e.treatment_n for e in platform.effects) == frame.height
    assert any("fewer than 100 units" in w for w in platform.warnings)
    title = "spend / treatment by country: the effect differs between segments"
    for text in (res.to_text(), res.to_markdown(), res.to_html()):
        assert title in text
    # at 80 columns the segment tables fold into one line per segment
    narrow = res.to_text(80).splitlines()
    assert all(len(line) <= 80 for line in narrow), max(narrow, key=len)
    assert max(len(line) for line in res.to_text().splitlines()) > 80
    back = abkit.AnalysisResult.from_dict(json.loads(res.to_json()))
    assert back.results[0].segments == res.results[0].segments
    table = res.segments_table
    assert table.height == 4 + 3 and set(table["column"]) == {"country", "platform"}
    fig = res.plot("segments", "spend")
    assert fig.axes[0].get_title(loc="left").startswith("country")
    # the dotted reference line says what it is, and arms keep a colour of their own
    from abkit.plots.style import BETTER, NEUTRAL, WORSE

    for ax in fig.axes:
        legend = ax.get_legend()
        assert legend is not None
        assert any("common effect" in t.get_text() for t in legend.get_texts())
        colours = {line.get_color() for line in ax.get_lines()} - {"black"}
        assert not colours & {BETTER, WORSE, NEUTRAL}, colours


def test_segments_must_be_fixed_at_assignment():
    export = simulate(users=2_000, days=5, enrol_days=2, seed=3)
    events = export.events.with_columns(pl.lit("x").alias("last_screen"))
    with pytest.raises(AbkitInputError, match="not a column of the assignments table but of"):
        abkit.analyze(export.assignments, {"segments": {"columns": ["last_screen"]}}, events=events)
    with pytest.raises(AbkitInputError, match="is also a metric's column"):
        abkit.analyze(_units(), {**CONFIG, "segments": {"columns": ["spend"]}})
    with pytest.raises(AbkitInputError, match="is the unit id column"):
        abkit.analyze(_units(), {**CONFIG, "segments": {"columns": ["user_id"]}})
    many = _units().with_columns((pl.col("user_id") % 97).alias("bucket"))
    with pytest.raises(AbkitInputError, match="97 distinct values"):
        abkit.analyze(many, {**CONFIG, "segments": {"columns": ["bucket"]}})


def test_cli_segment_option(tmp_path):
    _units().write_parquet(tmp_path / "u.parquet")
    (tmp_path / "c.toml").write_text(
        """
[[metrics]]
name = "spend"
type = "mean"
column = "spend"
"""
    )
    run = CliRunner().invoke(
        cli,
        [
            "analyze",
            str(tmp_path / "u.parquet"),
            "-c",
            str(tmp_path / "c.toml"),
            "--segment",
            "country",
            "-f",
            "markdown",
        ],
    )
    assert run.exit_code == 0, run.output
    assert "### spend / treatment by country" in run.output
    bad = CliRunner().invoke(cli, ["analyze", str(tmp_path / "u.parquet"), "--segment", "nope"])
    assert bad.exit_code == 2 and "segment 'nope'" in bad.output
