"""A new metric type with a statistic of its own touches only its own module.

The type below lives in this test file and nowhere in abkit: a 20 % trimmed mean per
arm, tested by Yuen's trimmed-mean t-test (Yuen, Biometrika 1974).  Its statistic is
not the unit moments but each arm's per-unit values (:class:`TrimmedValues`, which
merges with ``+``).  Registering it and naming it in a config is all it takes for
:func:`abkit.analyze` to test it, and the result equals SciPy's own Yuen test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
from scipy import stats as st

import abkit
from abkit.metrics import REGISTRY
from abkit.metrics.base import OneColumn, Statistic, value_column
from abkit.names import VARIANT
from abkit.stats import Comparison
from abkit.stats.cuped import Term
from abkit.stats.fixed_horizon import two_sided

TRIM = 0.2


@dataclass(frozen=True)
class TrimmedValues:
    """One arm's per-unit values; parts of an arm (disjoint units) merge by ``+``."""

    values: np.ndarray

    def __add__(self, other: TrimmedValues) -> TrimmedValues:
        return TrimmedValues(np.concatenate([self.values, other.values]))

    def trimmed(self) -> tuple[float, float, int]:
        """Trimmed mean, the squared standard error of Yuen's d, and h = n − 2g."""
        x = np.sort(self.values)
        n = x.size
        g = math.floor(TRIM * n)
        h = n - 2 * g
        winsorized = np.clip(x, x[g], x[n - g - 1])
        d = (n - 1) * winsorized.var(ddof=1) / (h * (h - 1))
        return float(x[g : n - g].mean()), float(d), h


class TrimmedMean(OneColumn):
    """The 20 % trimmed mean of a per-unit column, by Yuen's test."""

    name: ClassVar[str] = "trimmed_mean"
    statistic: ClassVar[Statistic] = Statistic.OWN

    def unit_statistic(
        self, metric: abkit.MetricSpec, units: pl.DataFrame, variants: tuple[str, ...]
    ) -> Mapping[str, TrimmedValues]:
        column = value_column(metric)
        return {
            v: TrimmedValues(
                units.filter(pl.col(VARIANT) == v)[column].drop_nulls().cast(pl.Float64).to_numpy()
            )
            for v in variants
        }

    def fixed_test(
        self, control: TrimmedValues, treatment: TrimmedValues, alpha: float
    ) -> Comparison:
        c_mean, d_c, h_c = control.trimmed()
        t_mean, d_t, h_t = treatment.trimmed()
        df = (d_c + d_t) ** 2 / (d_c**2 / (h_c - 1) + d_t**2 / (h_t - 1))
        return two_sided("Yuen trimmed-mean t-test", c_mean, t_mean, d_c, d_t, alpha, df=df)

    def adjustable(self) -> Term | None:
        return None


@pytest.fixture
def units() -> pl.DataFrame:
    rng = np.random.default_rng(23)
    n = 1_500
    variant = rng.choice(["control", "treatment"], n)
    revenue = rng.lognormal(1.0, 1.2, n) * np.where(variant == "treatment", 1.15, 1.0)
    return pl.DataFrame({"user_id": np.arange(n), "variant": variant, "revenue": revenue})


def test_a_new_type_is_analysed_and_equals_scipys_yuen_test(monkeypatch, units):
    monkeypatch.setitem(REGISTRY, TrimmedMean.name, TrimmedMean())
    config = {"metrics": [{"name": "revenue_trimmed", "type": "trimmed_mean", "column": "revenue"}]}
    (res,) = abkit.analyze(units, config).results
    control = units.filter(pl.col("variant") == "control")["revenue"].to_numpy()
    treatment = units.filter(pl.col("variant") == "treatment")["revenue"].to_numpy()
    yuen = st.ttest_ind(treatment, control, equal_var=False, trim=TRIM)
    interval = yuen.confidence_interval(0.95)
    assert res.method == "Yuen trimmed-mean t-test"
    assert res.p_value == pytest.approx(yuen.pvalue, rel=1e-10)
    assert res.ci == pytest.approx((interval.low, interval.high), rel=1e-10)
    assert res.control_value == pytest.approx(st.trim_mean(control, TRIM), rel=1e-12)
    assert (res.control_n, res.treatment_n) == (control.size, treatment.size)
    assert res.decision.outcome in {"better", "no significant difference"}


CONFIG = {"metrics": [{"name": "revenue_trimmed", "type": "trimmed_mean", "column": "revenue"}]}


def test_what_the_new_type_does_not_support_is_refused_or_noted(monkeypatch, units):
    """Its own statistic is tested at a fixed horizon between users: effects by segment
    are left out with a note (the type's test is never handed unit moments), B2B mode
    and power analysis refuse it, naming it."""
    monkeypatch.setitem(REGISTRY, TrimmedMean.name, TrimmedMean())
    with_segment = units.with_columns(region=pl.Series(["eu", "us"] * (units.height // 2)))
    res = abkit.analyze(with_segment, CONFIG, segments=["region"])
    assert res.results[0].segments == ()
    assert any("not broken down by segment" in n for n in res.metric_notes["revenue_trimmed"])
    accounts = with_segment.with_columns(account_id=pl.col("user_id") % 20)
    with pytest.raises(abkit.AbkitInputError, match=r"trimmed_mean.*no account-level test"):
        abkit.analyze(accounts, CONFIG, mode="b2b")
    with pytest.raises(abkit.AbkitInputError, match=r"trimmed_mean.*statistic is its own"):
        abkit.power_analysis(units, CONFIG, effect=0.1)


def test_a_type_setting_a_removed_flag_is_refused():
    with pytest.raises(TypeError, match="declare what it reduces to"):
        type("Stale", (OneColumn,), {"name": "stale", "per_event": True})


def test_the_new_statistic_merges_by_addition(units):
    values = units["revenue"].to_numpy()
    parts = [TrimmedValues(p) for p in np.array_split(values, [100, 700])]
    merged = parts[0] + parts[1] + parts[2]
    assert merged.trimmed() == pytest.approx(TrimmedValues(values).trimmed(), rel=1e-12)


def test_abkit_itself_knows_nothing_of_the_new_type():
    """The extension needed no line of abkit: no module names the type."""
    package = Path(abkit.__file__).parent
    mentions = [p for p in package.rglob("*.py") if "trimmed_mean" in p.read_text()]
    assert mentions == []
