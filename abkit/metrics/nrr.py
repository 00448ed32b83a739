"""Net revenue retention (B2B): Σ ARR at the end / Σ ARR at the start over an arm's
accounts, from the accounts table."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from abkit.metrics.base import MetricType

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec


class NetRevenueRetention(MetricType):
    name: ClassVar[str] = "nrr"
    is_ratio: ClassVar[bool] = True
    account_level: ClassVar[bool] = True
    from_accounts_table: ClassVar[bool] = True

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return ()
