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
