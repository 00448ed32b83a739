"""Statistics on small arrays of sufficient statistics: no file access, no Polars."""

from abkit.stats.arm import ArmSummary
from abkit.stats.fixed_horizon import (
    Comparison,
    delta_ratio_test,
    ratio_variance,
    relative_effect,
    two_proportion_ztest,
    welch_test,
)
from abkit.stats.multiplicity import adjust_pvalues
from abkit.stats.noninferiority import NonInferiority, noninferiority_test
from abkit.stats.srm import SrmResult, srm_test

__all__ = [
    "ArmSummary",
    "Comparison",
    "NonInferiority",
    "SrmResult",
    "adjust_pvalues",
    "delta_ratio_test",
    "noninferiority_test",
    "ratio_variance",
    "relative_effect",
    "srm_test",
    "two_proportion_ztest",
    "welch_test",
]
