"""Net revenue retention (B2B): Σ ARR at the end / Σ ARR at the start over an arm's
accounts, from the accounts table."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.base import MetricType, Statistic

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class NetRevenueRetention(MetricType):
    name: ClassVar[str] = "nrr"
    statistic: ClassVar[Statistic] = Statistic.ACCOUNT_REVENUE

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return ()
