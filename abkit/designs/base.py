"""What a design provides: the statistics of its randomisation unit and the tests on them.

A design is the unit that was randomised: users (:mod:`abkit.designs.users`), accounts
(:mod:`abkit.designs.accounts`, B2B) or the inputs of a paired run
(:mod:`abkit.designs.paired`).  It is chosen once per analysis
(:func:`abkit.designs.design_for`).  From what the input stage reduced
(:class:`~abkit.inputs.prepare.Reduced`) it builds the statistics its tests need, then runs,
for one metric and one treatment, the comparison with control, the guardrail check,
the quantile profile, the segment breakdowns, sequential monitoring and the novelty
check.  Nothing outside this package asks which design is in use: the analysis loop
(:func:`abkit.run.compare`) calls the same methods on every design.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

from abkit.analysis.segments import SegmentBreakdown
from abkit.analysis.sequential import SequentialResult
from abkit.config import ExperimentSpec, MetricSpec
from abkit.errors import AbkitInputError
from abkit.inputs.prepare import Reduced
from abkit.io.exclusions import Ledger
from abkit.result import B2BDetail, GuardrailCheck, QuantilePoint
from abkit.stats import ArmSummary, Comparison, noninferiority_test
from abkit.stats.cuped import Adjustment
from abkit.stats.judged import JudgedDetail
from abkit.stats.novelty import NoveltyResult
from abkit.stats.paired import Pairing
from abkit.stats.surrogate import SurrogateForecast


@dataclass(frozen=True)
class Tested:
    """One treatment's comparison with control for one metric, as a design runs it.

    ``control_n`` / ``treatment_n`` count the units with data in each arm (users,
    including in B2B mode, where the test itself rests on the accounts its detail
    counts; for paired inputs the users whose inputs were paired).  ``detail`` is the
    account design's account-level evidence, ``adjustment`` the regression adjustment
    (CUPED) applied, ``pairing`` the paired design's pairing summary, ``judged`` a
    judged-quality metric's judge-only and human-only effects and judge audit.
    """

    comparison: Comparison
    control_n: int
    treatment_n: int
    detail: B2BDetail | None = None
    adjustment: Adjustment | None = None
    pairing: Pairing | None = None
    judged: JudgedDetail | None = None


@dataclass(frozen=True)
class Statistics:
    """What every design's statistics carry besides their tests' inputs.

    ``arms`` are the per-arm moments of every metric: of its per-unit values (``n``
    counts the units with a value); for net revenue retention of its per-account
    revenue (``n`` counts accounts); for a quantile metric ``n`` counts the assigned
    units and ``mean`` is the arm's quantile (no variance).  ``unit_counts`` is what
    the sample-ratio check counts (units, or accounts when accounts were randomised);
    the notes and warnings are the ones the design adds to the input stage's.
    """

    arms: dict[str, dict[str, ArmSummary]]
    unit_counts: dict[str, int]
    metric_notes: dict[str, list[str]] = field(default_factory=dict)
    metric_warnings: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Notes:
    """Notes and warnings gathered while a design builds its statistics: per metric
    (``note``: describes the data; ``warn``: changes how the result reads) and for the
    whole experiment (``notes``, ``warnings``)."""

    def __init__(self) -> None:
        self.metric_notes: dict[str, list[str]] = {}
        self.metric_warnings: dict[str, list[str]] = {}
        self.notes: list[str] = []
        self.warnings: list[str] = []

    def note(self, metric: str, *lines: str) -> None:
        """Add notes on ``metric``."""
        self.metric_notes.setdefault(metric, []).extend(lines)

    def warn(self, metric: str, *lines: str) -> None:
        """Add warnings on ``metric``."""
        self.metric_warnings.setdefault(metric, []).extend(lines)


StatisticsT = TypeVar("StatisticsT", bound=Statistics)


class Design(ABC, Generic[StatisticsT]):
    """A randomisation unit: how its statistics are built and how they are tested."""

    #: what the design's units are called in messages ("users", "accounts", ...)
    name: ClassVar[str]
    #: accounts are the units of inference: every unit needs its account, and a
    #: quantile metric needs each event value's account (the exact route)
    needs_accounts: ClassVar[bool] = False

    # --- before the data are read -----------------------------------------------------

    def check(self, spec: ExperimentSpec) -> None:
        """Refuse settings this design cannot analyse (raises :class:`AbkitInputError`)."""

    def admit(self, kind: str, label: str) -> None:
        """Refuse an input kind this design cannot analyse."""

    def skipped_default(self, metric: MetricSpec, spec: ExperimentSpec) -> str | None:
        """Why a default metric cannot be analysed in this design, or None."""
        return None

    # --- statistics ---------------------------------------------------------------------

    @abstractmethod
    def statistics(self, reduced: Reduced, spec: ExperimentSpec, ledger: Ledger) -> StatisticsT:
        """The statistics the design's tests read, built from the input stage's output."""

    # --- tests, per metric and treatment ------------------------------------------------

    @abstractmethod
    def compare(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec, variant: str
    ) -> Tested:
        """The fixed-horizon comparison of ``variant`` with control."""

    def guardrail(
        self,
        metric: MetricSpec,
        stats: StatisticsT,
        spec: ExperimentSpec,
        variant: str,
        tested: Tested,
    ) -> GuardrailCheck:
        """The guardrail's one-sided non-inferiority test (default: on the comparison's
        estimate and standard error, :func:`normal_guardrail`)."""
        return normal_guardrail(metric, tested.comparison, spec.alpha)

    def monitor(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec, variant: str
    ) -> SequentialResult | None:
        """The sequential path of the comparison, when the design monitors one."""
        return None

    def novelty(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec, variant: str
    ) -> NoveltyResult | None:
        """The novelty check (does the effect fade with time since assignment)."""
        return None

    def surrogate(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec, variant: str
    ) -> SurrogateForecast | None:
        """The surrogate forecast of a long-run retention metric's effect from the
        first week, when the design makes one (shown beside the result, never as its
        decision)."""
        return None

    def segments(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec, variant: str
    ) -> tuple[SegmentBreakdown, ...]:
        """The effect by segment, one breakdown per segment column."""
        return ()

    def profile(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec, variant: str
    ) -> tuple[QuantilePoint, ...]:
        """A quantile metric's differences at every level of its profile."""
        return ()

    @abstractmethod
    def spread(
        self, metric: MetricSpec, stats: StatisticsT, spec: ExperimentSpec
    ) -> dict[str, Any]:
        """What power analysis reads from an export: ``sd`` (per design unit), the
        ``current`` units per arm, the control's ``baseline``, its ``source`` in words and,
        when a regression adjustment applies, its mean variance reduction ``cuped``."""

    def assumption_warnings(self, metric: MetricSpec, stats: StatisticsT) -> list[str]:
        """Warnings about the approximations behind the design's tests of ``metric``."""
        return []


def normal_guardrail(metric: MetricSpec, comp: Comparison, alpha: float) -> GuardrailCheck:
    """A guardrail by the one-sided non-inferiority test on a comparison's estimate.

    An absolute margin δ tests H0: T − C ≤ −δ (higher is better) with the comparison's
    reference distribution; a relative margin r tests on the log scale, as the lift
    interval, H0: log(T/C) ≤ log(1 − r) (or ≥ log(1 + r) when lower is better) with the
    delta-method standard error of log(T/C).
    """
    reference = "normal reference" if math.isinf(comp.df) else "t reference, Welch df"
    if metric.relative_margin is not None:
        r = metric.relative_margin
        log_margin = -math.log1p(-r) if metric.higher_is_better else math.log1p(r)
        log_ratio = math.log1p(comp.relative_effect) if comp.relative_effect > -1 else math.nan
        ni = noninferiority_test(
            log_ratio, comp.log_ratio_se, log_margin, metric.higher_is_better, alpha
        )
        ni = replace(ni, margin=r, scale="relative", bound=math.expm1(ni.bound))
        reference = "normal reference on log(treatment/control), delta-method SE"
    else:
        assert metric.margin is not None
        ni = noninferiority_test(
            comp.effect, comp.se, metric.margin, metric.higher_is_better, alpha, df=comp.df
        )
    test = f"one-sided non-inferiority ({reference})"
    return GuardrailCheck(ni.margin, ni.scale, test, ni.p_value, ni.bound, ni.verdict)


def refuse(problem: str, label: str | None = None) -> None:
    """Raise the user error a design gives for settings or input it cannot analyse."""
    raise AbkitInputError(problem, source=label)


def unadjustable(metric: MetricSpec) -> str:
    """The warning for covariates given to a metric whose type is not adjusted."""
    return (
        f"CUPED covariates are not used for a metric of type '{metric.type}'; the result "
        "is unadjusted"
    )
