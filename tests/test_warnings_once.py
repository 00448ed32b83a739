"""A warning says a thing once: the heavy-skew warning names every skewed arm in one line
(it printed once per arm)."""

from __future__ import annotations

import numpy as np
import polars as pl

import abkit


def test_heavy_skew_is_one_warning_naming_every_arm():
    rng = np.random.default_rng(4)
    n = 400
    units = pl.DataFrame(
        {
            "user_id": np.arange(2 * n),
            "variant": ["control"] * n + ["treatment"] * n,
            # log-normal with sdlog 2: skewness in the hundreds, far beyond 355·skew² > n
            "spend": rng.lognormal(0.0, 2.0, 2 * n),
        }
    )
    result = abkit.analyze(
        units, {"metrics": [{"name": "spend", "type": "mean", "column": "spend"}]}
    )
    skew = [w for w in result.results[0].warnings if "heavy skew" in w]
    assert len(skew) == 1, skew
    assert "'control'" in skew[0] and "'treatment'" in skew[0]
    assert "355·skewness²" in skew[0]


def test_a_description_is_a_note_not_a_warning():
    """The p95's design note ('q = 0.95 quantile … over events, clustered by unit') used
    to carry a warning sign in every report."""
    from abkit.dev.simulate import simulate

    export = simulate(users=2_000, days=8, enrol_days=3, seed=2)
    result = abkit.analyze(export.assignments, events=export.events)
    p95 = next(r for r in result.results if r.metric == "latency_p95")
    assert not [w for w in p95.warnings if "quantile of" in w]
    assert any("quantile of" in n for n in result.metric_notes["latency_p95"])
    md = result.to_markdown()
    noted = [line for line in md.splitlines() if "quantile of" in line]
    assert len(noted) == 1 and "⚠️" not in noted[0]
    html = result.to_html()
    assert html.count("quantile of") == 1
