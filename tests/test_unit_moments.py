"""Per-arm moments of a unit-level table (abkit.inputs.moments.arm_summaries): NumPy's
and SciPy's values on fixed data at any scale, and the same bits whatever the number of
Polars threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from scipy import stats

from abkit.config import MetricSpec
from abkit.inputs.moments import arm_summaries
from abkit.metrics.base import denominator_column, value_column
from abkit.names import VARIANT

MEAN = MetricSpec(name="x", type="mean", column="x")
RATIO = MetricSpec(name="r", type="ratio", numerator="x", denominator="y")


def _units(n: int, scale: float, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(1, 1, n) * scale
    x[::17] = np.nan  # missing for some units
    return pl.DataFrame(
        {
            VARIANT: rng.choice(["a", "b"], n),
            value_column(MEAN): x,
            value_column(RATIO): x,
            denominator_column(RATIO): rng.poisson(3, n).astype(float) + 1,
        }
    ).with_columns(pl.col(value_column(MEAN), value_column(RATIO)).fill_nan(None))


@pytest.mark.parametrize("scale", [1.0, 1e-150, 1e150])
def test_moments_equal_numpy_and_scipy_at_any_scale(scale: float) -> None:
    units = _units(5000, scale)
    arms = arm_summaries(units, [MEAN, RATIO], ("a", "b"))
    for v in ("a", "b"):
        arm = units.filter(pl.col(VARIANT) == v).drop_nulls()
        x = arm[value_column(MEAN)].to_numpy()
        y = arm[denominator_column(RATIO)].to_numpy()
        got = arms["x"][v]
        assert got.n == x.size
        assert got.mean == pytest.approx(np.mean(x), rel=1e-13)
        assert got.var == pytest.approx(np.var(x, ddof=1), rel=1e-12)
        assert got.skewness == pytest.approx(stats.skew(x / scale, bias=False), rel=1e-12)
        ratio = arms["r"][v]
        assert ratio.den_mean == pytest.approx(np.mean(y), rel=1e-13)
        assert ratio.den_var == pytest.approx(np.var(y, ddof=1), rel=1e-12)
        assert ratio.cov == pytest.approx(np.cov(x, y)[0, 1], rel=1e-12)


_BITS = textwrap.dedent(
    """
    import hashlib, numpy as np, polars as pl
    from abkit.config import MetricSpec
    from abkit.inputs.moments import arm_summaries
    from abkit.metrics.base import denominator_column, value_column
    from abkit.names import VARIANT
    mean = MetricSpec(name="x", type="mean", column="x")
    ratio = MetricSpec(name="r", type="ratio", numerator="x", denominator="y")
    rng = np.random.default_rng(1)
    n = 600_000
    units = pl.DataFrame({
        VARIANT: rng.choice(["a", "b", "c"], n),
        value_column(mean): rng.lognormal(3, 1, n),
        value_column(ratio): rng.lognormal(3, 1, n),
        denominator_column(ratio): rng.poisson(4, n).astype(float),
    })
    seen = {repr(arm_summaries(units, [mean, ratio], ("a", "b", "c"))) for _ in range(4)}
    print(len(seen), hashlib.sha256(seen.pop().encode()).hexdigest())
    """
)


def test_the_same_table_gives_the_same_bits_on_any_number_of_threads() -> None:
    """Polars' own multi-threaded filter-then-aggregate gave different last bits from
    call to call on a table this size; the moments must not."""
    out = set()
    for threads in ("1", "2", "4"):
        run = subprocess.run(
            [sys.executable, "-c", _BITS],
            capture_output=True,
            text=True,
            check=True,
            env={"POLARS_MAX_THREADS": threads, "PATH": ""},
        )
        calls, digest = run.stdout.split()
        assert calls == "1", run.stdout  # four calls in one process agree
        out.add(digest)
    assert len(out) == 1, out
