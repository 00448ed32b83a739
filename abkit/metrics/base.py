"""What every metric type declares: its configuration keys, its per-unit aggregates,
the shape of its per-arm sufficient statistics and the fixed-horizon test it uses.

A metric type is a stateless object; a :class:`~abkit.config.MetricSpec` (one metric of
an experiment) names its type and carries the type's parameters.  The pipeline asks
the type, never the type's name, what to do: adding a type is one module in
``abkit.metrics`` plus its line in the registry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol, TypeVar

import narwhals as nw
import polars as pl

from abkit.errors import AbkitInputError, ConfigError
from abkit.metrics.references import (
    PLUS,
    event_column,
    referenced_events,
    sum_problem,
    unit_aggregate,
)
from abkit.options import Direction, config_key
from abkit.stats import ArmSummary, Comparison
from abkit.stats.cuped import Term
from abkit.stats.judged import JudgedDetail

# a per-unit column expression on Polars (this process) or on the events' engine (Narwhals)
ValueExpr = TypeVar("ValueExpr", pl.Expr, nw.Expr)


class UnitAggregates(Protocol):
    """What a metric type's :meth:`MetricType.table_statistic` may ask of the per-unit
    table (:class:`abkit.inputs.unit_table.UnitTable`) wherever it is."""

    def frame(self) -> nw.LazyFrame[Any]:
        """The table as a lazy frame on its engine, to build aggregate queries on."""
        ...

    def record(self, reason: str, rows: int) -> None:
        """Say that ``rows`` rows of an aggregate query came back for ``reason``."""
        ...

    def collect(self, query: nw.LazyFrame[Any], reason: str) -> pl.DataFrame:
        """Run an aggregate query built on :meth:`frame` where the table is and
        :meth:`record` its rows for ``reason``."""
        ...


@dataclass(frozen=True)
class MetricSpec:
    """One metric to analyse.

    ``type`` names a metric type of :mod:`abkit.metrics`; :attr:`kind` is that type.
    Column references (``column``, ``numerator``, ``denominator``) name columns of a
    unit-level table.  On event-level input they name *derived* per-unit columns:
    an event name counts that event, ``<event>.value`` sums the value column over
    that event, ``sessions`` counts distinct sessions and ``active_days`` counts
    days with any event.  ``direction`` defaults to the type's (time to value:
    decrease; others: increase).
    """

    name: str
    type: str
    column: str | None = None
    numerator: str | None = None
    denominator: str | None = None
    day: int | None = None
    window: tuple[int, int] | None = None
    events: tuple[str, ...] | None = None
    event: str | None = None
    # judged_quality: the event column of the human label (null where an output has none)
    human: str | None = None
    # judged_quality: the event column of the output id (repeated judgements share it)
    output: str | None = None
    # judged_quality: the event column of a judgement's run (repeats of an output differ in
    # it, so that identical repeats are not dropped as duplicate events)
    run: str | None = None
    direction: Direction | None = None
    guardrail: bool = False
    margin: float | None = config_key(None, lambda v: v > 0, "be a positive number")
    relative_margin: float | None = config_key(None, lambda v: v > 0, "be a positive number")
    tau: float | None = config_key(None, lambda v: v > 0, "be a positive number")
    horizon: float | None = config_key(None, lambda v: v > 0, "be a positive number of days")
    q: float | None = config_key(None, lambda v: 0 < v < 1, "be a quantile level between 0 and 1")
    segments: tuple[str, ...] | None = None
    covariates: tuple[str, ...] | None = None
    # winsorise per-unit values: {quantile = 0.999} (of the pooled arms) or {value = 1e4}
    cap: dict[str, float] | None = None

    @property
    def kind(self) -> MetricType:
        """The metric's type (:func:`metric_type` of ``type``)."""
        return metric_type(self.type)

    @property
    def higher_is_better(self) -> bool:
        return (self.direction or self.kind.default_direction) == "increase"

    @property
    def retention_window(self) -> tuple[int, int]:
        """Inclusive day range [a, b] after assignment that counts as retained."""
        if self.window is not None:
            return self.window
        assert self.day is not None
        return (self.day, self.day)


@dataclass(frozen=True)
class OwnTest:
    """What the test of a type of :attr:`Statistic.OWN` finds.

    Parameters
    ----------
    comparison : Comparison
        The comparison the decision rests on.
    judged : JudgedDetail or None
        For judged quality, what every report shows beside the PPI++ effect (the
        judge-only and human-only effects and the judge audit).
    """

    comparison: Comparison
    judged: JudgedDetail | None = None


# every metric type by name; :mod:`abkit.metrics` registers the built-in ones
REGISTRY: dict[str, MetricType] = {}


def metric_type(name: str) -> MetricType:
    """The registered type of this name (KeyError names the known ones)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric type '{name}'; known: {', '.join(REGISTRY)}") from None


# --- the unit frame's columns --------------------------------------------------------------
# A metric ``m`` is carried in the unit frame as ``m:<name>`` (its per-unit value, or the
# numerator of a ratio) and ``m:<name>:den`` (the denominator of a ratio); ``pre:<column>``
# is a column's value over the unit's events before its assignment (the CUPED pre-period
# covariates).  A null value means the unit is not eligible for that metric (for example
# an immature retention window).


def value_column(metric: MetricSpec) -> str:
    """The unit-frame column of a metric's per-unit value (a ratio's numerator)."""
    return f"m:{metric.name}"


def denominator_column(metric: MetricSpec) -> str:
    """The unit-frame column of a ratio metric's per-unit denominator."""
    return f"m:{metric.name}:den"


def pre_period_column(column: str) -> str:
    """The unit-frame column of ``column``'s value before assignment (CUPED)."""
    return f"pre:{column}"


def component_columns(metric: MetricSpec) -> list[str]:
    """The per-unit columns a metric is made of: its value, and a ratio's denominator."""
    return [value_column(metric), *([denominator_column(metric)] * metric.kind.is_ratio)]


class Statistic(Enum):
    """What a metric type reduces to per arm, and so which test each design runs on it.

    A metric type declares one (:attr:`MetricType.statistic`); the designs
    (:mod:`abkit.designs`) build it and choose their test by it.
    """

    #: moments of one value per unit (:class:`~abkit.stats.arm.ArmSummary`)
    MOMENTS = ("moments of one value per unit", False, False)
    #: moments of a numerator and a denominator per unit, with their co-moment
    RATIO_MOMENTS = ("moments of a numerator and a denominator per unit", True, False)
    #: every event's value with its unit (or account): a quantile of event values
    EVENT_VALUES = ("every event's value with its unit", False, False)
    #: each account's time to its first event, censored at the export's end
    EVENT_TIMES = ("each account's time to an event, censored", False, True)
    #: each account's revenue at the start and the end, from the accounts table
    ACCOUNT_REVENUE = ("each account's revenue at the start and the end", True, True)
    #: a statistic of the type's own, built from the per-unit values by
    #: :meth:`MetricType.unit_statistic` and read by its :meth:`MetricType.fixed_test`;
    #: analysed by users at a fixed horizon only (no segments, monitoring, CUPED, B2B)
    OWN = ("a statistic of the type's own (MetricType.unit_statistic)", False, False)

    def __init__(self, describes: str, ratio: bool, per_account: bool) -> None:
        self.describes = describes
        self.ratio = ratio
        self.per_account = per_account


# capability flags replaced by the declared statistic: a type that still sets one would
# be analysed as something it is not
_REMOVED_FLAGS = ("per_event", "survival", "from_accounts_table", "is_ratio", "account_level")


class MetricType:
    """Base of all metric types.

    Per unit a metric is a value x (``m:<name>``) or, for ratio types, a numerator x and
    a denominator y (``m:<name>:den``); per arm it reduces to n, mean and variance of x
    (and of y with cov(x, y) for ratios): :class:`~abkit.stats.arm.ArmSummary`.
    """

    name: ClassVar[str]
    # configuration keys a metric of this type must set
    required_keys: ClassVar[tuple[str, ...]] = ()
    default_direction: ClassVar[Direction] = "increase"
    # what the metric is reduced to per arm, and so which test each design runs on it
    statistic: ClassVar[Statistic] = Statistic.MOMENTS
    # one 0/1 value per unit: shown in percent, tested as a proportion
    is_rate: ClassVar[bool] = False
    # a unit without events has value 0 (False: it stays null, e.g. a time never reached)
    zero_when_inactive: ClassVar[bool] = True
    # reported with a breakdown by adopter segments and as a share of licensed seats
    adoption_breakdown: ClassVar[bool] = False

    @property
    def is_ratio(self) -> bool:
        """A numerator and a denominator per unit (or account): a ratio of means."""
        return self.statistic.ratio

    @property
    def account_level(self) -> bool:
        """Measured per account only: analysed when accounts were randomised."""
        return self.statistic.per_account

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        stale = [flag for flag in _REMOVED_FLAGS if flag in cls.__dict__]
        if stale:
            raise TypeError(
                f"metric type {cls.__name__} sets {', '.join(stale)}: declare what it reduces "
                "to with statistic = Statistic.<MOMENTS | RATIO_MOMENTS | EVENT_VALUES | "
                "EVENT_TIMES | ACCOUNT_REVENUE | OWN> instead"
            )

    # --- configuration ------------------------------------------------------------------

    def check(self, where: str, metric: MetricSpec) -> None:
        """Refuse a metric whose parameters this type cannot use."""
        for key in self.required_keys:
            if getattr(metric, key) is None:
                raise ConfigError(f"{where} is of type '{self.name}' and needs the key '{key}'.")
        for ref in self.references(metric, ""):
            problem = sum_problem(ref)
            if problem:
                raise ConfigError(f"{where}: {problem}; e.g. 'thumbs_up + thumbs_down'.")

    # --- units stage --------------------------------------------------------------------

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        """The per-unit quantities the metric is made of, in the reference language of
        :mod:`abkit.metrics.references`: (value,) or (numerator, denominator)."""
        return ()

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Per-unit aggregates over a unit's valid events, named by metric column
        (Narwhals expressions: they run on the events' own engine)."""
        refs = self.references(metric, output_event)
        if not refs:
            return []
        exprs = [self.per_unit(unit_aggregate(refs[0])).alias(value_column(metric))]
        if len(refs) == 2:
            exprs.append(unit_aggregate(refs[1]).alias(denominator_column(metric)))
        return exprs

    def window_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """The metric's per-unit aggregates over any window of a unit's events (the days
        before assignment for CUPED, a period since assignment for novelty), named by
        the metric's columns: the value (numerator) and, for a ratio, the denominator."""
        return self.event_aggregates(metric, output_event)[: len(component_columns(metric))]

    def pre_period_labels(self, metric: MetricSpec, days: int) -> list[str]:
        """What the reports call the pre-period covariates of :meth:`window_aggregates`."""
        if self.is_ratio:
            return [
                f"{metric.name} {part} in the {days} d before"
                for part in ("numerator", "denominator")
            ]
        return [f"{metric.name} in the {days} d before"]

    def per_unit(self, amount: nw.Expr) -> nw.Expr:
        """The unit's value from its aggregate (rates: whether it is above zero)."""
        return (amount > 0).cast(nw.Int8) if self.is_rate else amount

    def optional_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        """The event columns the metric reads where a value may be missing and a NaN
        says so (a human label on a few outputs, written by pandas): there NaN is read
        as null, which adds nothing, instead of excluding the event as a value that
        cannot be summed.  None by default: a NaN in a column a metric needs on every
        event excludes that event (:func:`abkit.engine.event_columns.value_out_of_range`).
        """
        return ()

    def exclusion_rules(self, metric: MetricSpec) -> list[tuple[nw.Expr, str]]:
        """Events the metric cannot use and that no event should silently keep, each
        with the reason the exclusions ledger counts (on the events' columns, read
        columns in their slots); none by default."""
        return []

    def id_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        """Event columns the metric reads as ids (any type, never summed; an output id
        that repeated judgements share), carried to :meth:`row_columns` as they are."""
        return ()

    def row_columns(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Columns computed on every valid event before the per-unit aggregates, which
        :meth:`event_aggregates` may read (window expressions over a unit's events:
        an output's mean over its repeated judgements, say); none by default."""
        return []

    def referenced_events(self, metric: MetricSpec, output_event: str) -> set[str]:
        """Event names the metric reads (a missing one is reported)."""
        refs = self.references(metric, output_event)
        return {name for r in refs for name in referenced_events(r)} | set(metric.events or ())

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        """The columns the metric reads from a unit-level table."""
        raise AbkitInputError(
            f"metric '{metric.name}' is of type '{self.name}', which needs event-level input "
            "(assignments + events); a unit-level table can carry it as a 'proportion' or "
            "'mean' column instead."
        )

    def paired_column(self, metric: MetricSpec) -> str:
        """The column of a paired export (one row per input and version) whose per-input
        values the metric compares between versions."""
        raise AbkitInputError(
            f"metric '{metric.name}' is of type '{self.name}'; a paired export (one row per "
            "input and version) compares one value per input, so its metrics are 'mean' or "
            "'proportion' columns.",
            hint='Set type = "mean" (or "proportion" for a 0/1 column) and column = <name>.',
        )

    def maturity_day(self, metric: MetricSpec) -> int | None:
        """The last day after assignment the metric looks at, when a unit only counts
        once that day has fully elapsed (retention windows); None otherwise."""
        return None

    def value_reference(self, metric: MetricSpec) -> str | None:
        """The event column (``<event>.<column>``) whose values a type of statistic
        :attr:`Statistic.EVENT_VALUES` collects, one per event."""
        return None

    def session_histogram_event(self, metric: MetricSpec, output_event: str) -> str | None:
        """The event whose per-session counts are kept as a histogram (session depth)."""
        return None

    def arm_value(self, column: ValueExpr) -> ValueExpr:
        """The per-unit value that the arm statistics average (a Polars or a Narwhals
        expression: the arms are summarised where the unit table is)."""
        return column

    # --- statistics ---------------------------------------------------------------------

    def unit_statistic(
        self, metric: MetricSpec, units: pl.DataFrame, variants: tuple[str, ...]
    ) -> Mapping[str, Any] | None:
        """Per variant, the statistic of the per-unit values (column
        :func:`value_column` of ``units``, one row per unit with its
        variant in ``abkit.io.assignments.VARIANT``) that :meth:`fixed_test` reads, when
        it is not the unit moments; None (the default): the moments,
        :class:`~abkit.stats.arm.ArmSummary`, serve.

        A type with a statistic of its own (a trimmed mean's sorted values, say)
        declares ``statistic = Statistic.OWN`` and overrides this and
        :meth:`fixed_test`; the users design then tests it at a fixed horizon, and the
        designs refuse what it does not support (segments, sequential monitoring, B2B,
        power analysis) with a message naming the type.
        """
        return None

    def table_statistic(
        self, metric: MetricSpec, table: UnitAggregates, variants: tuple[str, ...]
    ) -> Mapping[str, Any] | None:
        """Per variant, the statistic of a type of :attr:`Statistic.OWN` computed by
        aggregate queries on the unit table where it is (``table.frame()``, recording
        the rows that come back with ``table.record``), so that an engine keeps the
        units; None (the default): the design brings the units back and asks
        :meth:`unit_statistic`.  A type that overrides it returns what its
        :meth:`unit_statistic` would of the same units.
        """
        return None

    def fixed_test(self, control: Any, treatment: Any, alpha: float) -> Comparison:
        """The fixed-horizon two-sample test of this type on two arms' statistics: the
        unit moments (:class:`~abkit.stats.arm.ArmSummary`), or the type's own
        :meth:`unit_statistic`."""
        raise NotImplementedError(f"metric type '{self.name}' has no user-level test")

    def own_test(self, control: Any, treatment: Any, alpha: float) -> OwnTest:
        """The fixed-horizon test of a type of :attr:`Statistic.OWN` on its own
        statistics (:meth:`unit_statistic`), with the typed detail the type reports
        beside it; by default :meth:`fixed_test` and no detail."""
        return OwnTest(self.fixed_test(control, treatment, alpha))

    def summary_arm(self, row: Mapping[str, object], label: str) -> ArmSummary:
        """One arm from a summary table's (pooled) row of n, moments or sums."""
        raise AbkitInputError(
            f"a metric of type '{self.name}' cannot be read from a summary table; give it "
            "as a 'ratio', 'mean' or 'proportion'.",
            source=label,
        )

    def assumption_warnings(self, arms: Mapping[str, ArmSummary]) -> list[str]:
        """Warnings about the normal approximation behind :meth:`fixed_test`."""
        return []

    def adjustable(self) -> Term | None:
        """The metric as a function of its per-unit components for regression adjustment
        (:mod:`abkit.stats.cuped`): the mean of x, (0,), or the ratio of means x̄/ȳ,
        (0, 1); None when the type is analysed per account or as a survival time."""
        if self.statistic not in (Statistic.MOMENTS, Statistic.RATIO_MOMENTS):
            return None
        return (0, 1) if self.is_ratio else (0,)


def check_event_column(where: str, metric: MetricSpec, what: str) -> None:
    """``column`` must name an event column, ``<event>.<column>``."""
    assert metric.column is not None
    read = event_column(metric.column)
    if read is None or not all(read) or PLUS in metric.column:
        raise ConfigError(
            f"{where} is {what}: give column = '<event>.<column>' (e.g. "
            f"'ai_output.latency_ms', or 'judge_score.value' for the value column), "
            f"got '{metric.column}'."
        )


def sums_arm(row: Mapping[str, object], label: str) -> ArmSummary:
    """An arm from a summary row holding a mean and variance, or a sum (and sum of squares)."""
    n = number(row["n"])
    if row.get("mean") is not None:
        if row.get("variance") is None:
            raise AbkitInputError("a metric of type 'mean' needs a variance.", source=label)
        return ArmSummary(n=int(n), mean=number(row["mean"]), var=number(row["variance"]))
    if row.get("sum") is None:
        raise AbkitInputError("a row has neither 'mean' nor 'sum'.", source=label)
    sum_sq = row.get("sum_sq")
    return ArmSummary.from_sums(n, number(row["sum"]), None if sum_sq is None else number(sum_sq))


def number(value: object) -> float:
    """A summary table's cell as a float (the loader has checked it is numeric)."""
    if isinstance(value, int | float):
        return float(value)
    raise AbkitInputError(f"expected a number, got {value!r}.")


def bernoulli_variance(mean: float, n: float) -> float:
    """Sample variance (ddof = 1) of n values that are 0 or 1 with the given mean."""
    return mean * (1 - mean) * n / (n - 1) if n > 1 else math.nan


class OneColumn(MetricType):
    """Types whose per-unit value is one reference (``column``): a count, a value sum,
    or a column of a unit-level table."""

    required_keys: ClassVar[tuple[str, ...]] = ("column",)

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.column is not None
        return (metric.column,)

    def unit_table_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        return self.references(metric, "")

    def paired_column(self, metric: MetricSpec) -> str:
        assert metric.column is not None
        return metric.column
