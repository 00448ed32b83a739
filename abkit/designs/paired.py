"""Paired inputs (a shadow or replay run): every input answered by both versions.

The comparison is within input, clustered by user (:func:`abkit.stats.paired.paired_test`
on the per-user sums of :mod:`abkit.inputs.paired`); there is no allocation to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from abkit.config import ExperimentSpec, MetricSpec
from abkit.designs.base import Design, Statistics, Tested
from abkit.errors import AbkitInputError
from abkit.inputs.paired import PairedSums
from abkit.inputs.prepare import Reduced
from abkit.io.exclusions import Ledger
from abkit.stats.paired import paired_test


@dataclass(frozen=True)
class PairedStatistics(Statistics):
    """Per metric and candidate version, the per-user sums of the paired values."""

    sums: dict[str, dict[str, PairedSums]] = field(default_factory=dict)


class Paired(Design[PairedStatistics]):
    """The inputs of a paired run are the units; users are the clusters."""

    name = "paired inputs"

    def statistics(
        self, reduced: Reduced, spec: ExperimentSpec, ledger: Ledger
    ) -> PairedStatistics:
        return PairedStatistics(reduced.arms, reduced.unit_counts, sums=reduced.paired)

    def compare(
        self, metric: MetricSpec, stats: PairedStatistics, spec: ExperimentSpec, variant: str
    ) -> Tested:
        sums = stats.sums[metric.name][variant]
        comp, pairing = paired_test(sums.live, sums.candidate, sums.pairs, spec.alpha)
        # the units the comparison rests on: the users of the paired inputs
        return Tested(comp, pairing.users, pairing.users, pairing=pairing)

    def spread(
        self, metric: MetricSpec, stats: PairedStatistics, spec: ExperimentSpec
    ) -> dict[str, Any]:
        raise AbkitInputError(
            "power analysis plans an experiment of two independent arms; a paired export "
            "(one row per input and version) does not estimate one."
        )
