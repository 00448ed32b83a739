"""Ratio: Σ numerator / Σ denominator over units (share rate = shares per output),
compared by the delta method (Deng, Knoblich & Lu 2018)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.base import MetricType, Statistic, number
from abkit.stats import ArmSummary, Comparison, delta_ratio_test

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec

RATIO_SUMS = ("num_sum", "den_sum", "num_sum_sq", "den_sum_sq", "num_den_sum")


class Ratio(MetricType):
    name: ClassVar[str] = "ratio"
    required_keys: ClassVar[tuple[str, ...]] = ("numerator", "denominator")
    statistic: ClassVar[Statistic] = Statistic.RATIO_MOMENTS

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.numerator is not None and metric.denominator is not None
        return (metric.numerator, metric.denominator)

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return self.references(metric, "")

    def fixed_test(self, control: ArmSummary, treatment: ArmSummary, alpha: float) -> Comparison:
        return delta_ratio_test(control, treatment, alpha)

    def summary_arm(self, row: Mapping[str, object], label: str) -> ArmSummary:
        s = {k: number(row[k]) for k in ("n", *RATIO_SUMS)}
        return ArmSummary.from_sums(
            s["n"],
            sum_x=s["num_sum"],
            sum_x2=s["num_sum_sq"],
            sum_y=s["den_sum"],
            sum_y2=s["den_sum_sq"],
            sum_xy=s["num_den_sum"],
        )
