"""Result objects returned by :func:`abkit.analyze`, typed down to their leaves.

``AnalysisResult.to_dict()`` is exactly what ``abkit analyze --format json`` prints and
``AnalysisResult.from_dict`` reads it back, both through the one codec of
:mod:`abkit.json_codec` (the JSON keys that differ from field names are declared on the
fields); ``AnalysisResult.table`` is the same results as a Polars DataFrame.  NaN and
infinite numbers become ``null`` in the dict (JSON has no NaN) and NaN again when read
back.  Every renderer (text, Markdown, HTML, plots) reads these typed objects, so each
shows the same :class:`~abkit.analysis.decision.Decision`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar

import polars as pl

from abkit.analysis.bayesian import BayesianReading
from abkit.analysis.decision import Decision
from abkit.analysis.health import HealthBand
from abkit.analysis.segments import SegmentBreakdown
from abkit.analysis.sequential import SequentialResult
from abkit.engine.events import RetentionCurve
from abkit.inputs.adoption import AdoptionSummary
from abkit.io.exclusions import Exclusion, RowCount
from abkit.json_codec import from_jsonable, json_form, to_jsonable
from abkit.options import Weighting
from abkit.stats.cuped import Adjustment
from abkit.stats.fixed_horizon import EffectSummary
from abkit.stats.judged import JudgedDetail
from abkit.stats.novelty import NoveltyResult
from abkit.stats.paired import PAIRED, Pairing
from abkit.stats.shape import DepthShape
from abkit.stats.srm import SrmResult
from abkit.stats.surrogate import SurrogateForecast

T = TypeVar("T")
OMIT_NONE = {"json_omit_none": True}  # no key in the JSON when the value is None

CUPED_METHOD = "CUPED regression adjustment (pooled within-arm theta, Deng et al. 2013)"
SRM_METHOD = "Pearson chi-square goodness of fit"

# the JSON of types defined where no JSON is written: constant keys, read-only properties
json_form(Decision, properties=("meaning",))
json_form(HealthBand, properties=("control_below", "treatment_below"))
json_form(Adjustment, constants={"method": CUPED_METHOD})
json_form(Pairing, constants={"method": PAIRED}, properties=("variance_removed",))
json_form(
    SrmResult,
    constants={"method": SRM_METHOD},
    order=("statistic", "p_value", "threshold", "observed", "expected_share"),
    properties=("mismatch",),
)


@dataclass(frozen=True)
class GuardrailCheck:
    """One-sided non-inferiority test of a guardrail against its margin (fixed horizon).

    Parameters
    ----------
    margin : float
        The harmful margin, on ``scale``.
    scale : str
        "absolute" (metric units) or "relative" (a share of the control value).
    test : str
        The test: its reference distribution, or the account-level test in B2B mode.
    p_value : float
        The one-sided p-value against the margin.
    bound : float
        The one-sided confidence bound on the harmful side.
    verdict : str
        "pass", "fail" or "inconclusive".
    """

    margin: float
    scale: str
    test: str
    p_value: float
    bound: float
    verdict: str


@dataclass(frozen=True)
class QuantilePoint(EffectSummary):
    """One level of a quantile metric's profile: the arms' q-quantiles and their
    difference with its (pointwise, unadjusted) interval and p-value.

    Parameters
    ----------
    q : float
        The quantile level, in (0, 1).
    """

    q: float


# --- B2B detail: what the account-level tests found beside the headline numbers -------


@dataclass(frozen=True)
class AccountArmFacts:
    """One arm of an account-level comparison.

    Parameters
    ----------
    accounts : int
        Randomised accounts in the arm.
    denominator_total : float
        The arm's total of the metric's denominator (users, outputs, ...).
    largest_account_share : float
        The largest account's share of that total (NaN when it is 0).
    """

    accounts: int
    denominator_total: float
    largest_account_share: float


@dataclass(frozen=True)
class QuantileArmFacts:
    """One arm of an account-level quantile comparison.

    Parameters
    ----------
    accounts : int
        Randomised accounts in the arm.
    events : int
        Event values pooled into the arm's quantile.
    largest_account_share : float
        The largest account's share of those events (NaN without events).
    """

    accounts: int
    events: int
    largest_account_share: float


@dataclass(frozen=True)
class RandomizationDetail:
    """The account-level randomisation test.

    Parameters
    ----------
    p_value : float
        Two-sided p-value for no effect.
    ci : tuple of float
        The effect's interval by test inversion (an infinite side: unbounded).
    relative_ci : tuple of float
        The lift's interval by test inversion (constant multiplicative effect).
    exact : bool
        True when every re-assignment was enumerated, False for a Monte Carlo test.
    assignments : int
        Re-assignments the test used.
    stratified : bool
        True when re-assignments stayed within the randomisation's strata.
    """

    p_value: float
    ci: tuple[float, float]
    relative_ci: tuple[float, float]
    exact: bool
    assignments: int
    stratified: bool


@dataclass(frozen=True)
class AccountBootstrap:
    """The account bootstrap beside a randomisation test (a cross-check, never adjusted).

    Parameters
    ----------
    resamples : int
        Bootstrap resamples of accounts within arms.
    seed : int
        Their random seed.
    percentile, bca, studentized : tuple of float
        The effect's percentile, BCa and bootstrap-t intervals (NaN below 4 accounts
        per arm).
    lift_percentile : tuple of float
        The lift's percentile interval.
    skewness : float
        Skewness of the bootstrap distribution of the effect.
    dropped_share : float
        Share of resamples dropped for an empty denominator in an arm.
    adjusted : bool
        Always False: CUPED adjusts the randomisation test and CR2 only.
    """

    resamples: int
    seed: int
    percentile: tuple[float, float]
    bca: tuple[float, float]
    studentized: tuple[float, float]
    lift_percentile: tuple[float, float]
    skewness: float
    dropped_share: float
    adjusted: bool


@dataclass(frozen=True)
class QuantileBootstrap:
    """The account bootstrap of a quantile difference.

    Parameters
    ----------
    resamples : int
        Bootstrap resamples of accounts within arms.
    seed : int
        Their random seed.
    percentile : tuple of float
        The difference's percentile interval.
    lift_percentile : tuple of float
        The relative difference's percentile interval.
    """

    resamples: int
    seed: int
    percentile: tuple[float, float]
    lift_percentile: tuple[float, float]


@dataclass(frozen=True)
class BootstrapHistogram:
    """The bootstrap distribution of the effect, binned (small enough for JSON).

    Parameters
    ----------
    edges : tuple of float
        Bin edges, one more than ``counts`` (empty without a finite resample).
    counts : tuple of int
        Resamples per bin.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class AccountPoints:
    """Every account of one arm, for the accounts plot.

    Parameters
    ----------
    value : tuple of float
        Each account's own value of the metric (NaN for an empty denominator).
    size : tuple of float
        Each account's weight: its denominator total, or its number of events for a
        quantile (whole numbers then).
    """

    value: tuple[float, ...]
    size: tuple[float, ...]


@dataclass(frozen=True)
class Cr2Detail:
    """The CR2 cluster-robust t-test with Bell-McCaffrey degrees of freedom.

    Parameters
    ----------
    method : str
        The test, in words (regression-adjusted under CUPED).
    se : float
        Cluster-robust standard error of the effect.
    df : float
        Bell-McCaffrey degrees of freedom.
    p_value : float
        Two-sided p-value.
    ci : tuple of float
        The effect's interval.
    """

    method: str
    se: float
    df: float
    p_value: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class AccountDetail:
    """The B2B detail of a ratio or mean compared over accounts
    (:func:`abkit.designs.account_tests.compare_accounts`).  Without 2 accounts in each
    arm there is no test: only ``weighting`` and ``arms`` are set (and written).

    Parameters
    ----------
    weighting : {"user", "account"}
        How accounts are weighted: by the metric's denominator, or each once.
    arms : dict of str to AccountArmFacts
        Per variant, its accounts and how concentrated they are.
    randomization : RandomizationDetail or None
        The randomisation test the result rests on.
    bootstrap : AccountBootstrap or None
        The account bootstrap cross-check.
    distribution : BootstrapHistogram or None
        The bootstrap distribution of the effect.
    accounts : dict of str to AccountPoints, or None
        Per variant, every account's value and size.
    cr2 : Cr2Detail or None
        The CR2 + Bell-McCaffrey cross-check.
    """

    weighting: Weighting
    arms: dict[str, AccountArmFacts]
    randomization: RandomizationDetail | None = field(default=None, metadata=OMIT_NONE)
    bootstrap: AccountBootstrap | None = field(default=None, metadata=OMIT_NONE)
    distribution: BootstrapHistogram | None = field(default=None, metadata=OMIT_NONE)
    accounts: dict[str, AccountPoints] | None = field(default=None, metadata=OMIT_NONE)
    cr2: Cr2Detail | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class AccountQuantileDetail:
    """The B2B detail of a quantile of event values compared over accounts
    (:func:`abkit.designs.account_tests.compare_account_quantiles`).  Without a test (an
    arm with fewer than 2 accounts or no values) only ``weighting`` and ``arms`` are set.

    Parameters
    ----------
    weighting : {"event"}
        Events are pooled: each event value counts once.
    arms : dict of str to QuantileArmFacts
        Per variant, its accounts, events and how concentrated they are.
    randomization : RandomizationDetail or None
        The randomisation test of the quantile difference.
    bootstrap : QuantileBootstrap or None
        The account bootstrap cross-check.
    distribution : BootstrapHistogram or None
        The bootstrap distribution of the difference.
    accounts : dict of str to AccountPoints, or None
        Per variant, every account's own quantile and its events.
    """

    weighting: Literal["event"]
    arms: dict[str, QuantileArmFacts]
    randomization: RandomizationDetail | None = field(default=None, metadata=OMIT_NONE)
    bootstrap: QuantileBootstrap | None = field(default=None, metadata=OMIT_NONE)
    distribution: BootstrapHistogram | None = field(default=None, metadata=OMIT_NONE)
    accounts: dict[str, AccountPoints] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ReachedValue:
    """One arm of a time-to-value comparison.

    Parameters
    ----------
    accounts : int
        Accounts in the arm.
    reached_value : int
        Accounts whose first value event happened before the export ended.
    """

    accounts: int
    reached_value: int


@dataclass(frozen=True)
class KaplanMeierCurve:
    """One arm's Kaplan-Meier curve of the share of accounts yet to reach value.

    Parameters
    ----------
    times : tuple of float
        Days at which the curve steps.
    survival : tuple of float
        The share not yet at value just after each step.
    """

    times: tuple[float, ...]
    survival: tuple[float, ...]


@dataclass(frozen=True)
class TimeToValue:
    """Days to an account's first value event, compared by survival analysis.

    Parameters
    ----------
    horizon_days : float
        τ, the horizon of the restricted mean.
    median_days : dict of str to float
        Per variant, the median days to value (NaN when the curve never halves).
    logrank_p_value : float
        The log-rank test's p-value.
    kaplan_meier : dict of str to KaplanMeierCurve
        Per variant, its curve.
    assignments : int
        Re-assignments of the randomisation test of the RMST difference.
    """

    horizon_days: float
    median_days: dict[str, float]
    logrank_p_value: float
    kaplan_meier: dict[str, KaplanMeierCurve]
    assignments: int


@dataclass(frozen=True)
class TimeToValueDetail:
    """The B2B detail of a time-to-value metric
    (:func:`abkit.designs.account_tests.compare_time_to_value`).

    Parameters
    ----------
    weighting : {"account"} or None
        Each account counts once; None when an arm has fewer than 2 accounts (no test,
        and no key in the JSON).
    arms : dict of str to ReachedValue
        Per variant, its accounts and how many reached value (empty without a test).
    time_to_value : TimeToValue or None
        The curves and tests (None without a test).
    """

    weighting: Literal["account"] | None = field(metadata=OMIT_NONE)
    arms: dict[str, ReachedValue]
    time_to_value: TimeToValue | None = field(default=None, metadata=OMIT_NONE)


# what MetricResult.b2b holds in B2B mode (read back as the first type whose fields fit)
B2BDetail = AccountDetail | TimeToValueDetail | AccountQuantileDetail


@dataclass(frozen=True)
class MetricResult:
    """One metric × treatment comparison against control.

    ``p_value``, ``ci`` and ``significant`` are the fixed-horizon test's (``method``);
    under a sequential method they are not valid under repeated looks
    (``fixed_horizon_valid`` is False) and ``decision`` comes from the sequential test.
    ``b2b`` is the account-level detail in B2B mode (:data:`B2BDetail`), ``paired``
    the pairs and users a paired export rests on, ``judged`` a judged-quality metric's
    judge-only and human-only effects and judge audit beside its PPI++ effect (no key
    in the JSON for other metrics), ``quantiles`` a quantile metric's
    profile across q and ``health`` a retention bar of product practice (not a test).
    ``bayesian`` is the Bayesian reading when one was asked for (``[bayesian]``,
    ``--bayesian``): posterior, chance to win, expected loss and a decision of its own,
    never mixed into ``decision`` (no key in the JSON without one).
    ``surrogate`` is a long-run retention metric's forecast from the first week
    (:mod:`abkit.stats.surrogate`): shown beside the result, never its decision (no key
    in the JSON without one).
    """

    metric: str
    metric_type: str
    variant: str
    method: str
    control_n: int = field(metadata={"json": ("control", "n")})
    control_value: float = field(metadata={"json": ("control", "value")})
    treatment_n: int = field(metadata={"json": ("treatment", "n")})
    treatment_value: float = field(metadata={"json": ("treatment", "value")})
    effect: float
    ci: tuple[float, float]
    relative_effect: float
    relative_ci: tuple[float, float]
    p_value: float
    p_value_adjusted: float
    significant: bool
    direction: str
    # False when the fixed-horizon p-value and CI were looked at repeatedly (derived)
    fixed_horizon_valid: bool = field(init=False, repr=False, compare=False)
    decision: Decision
    guardrail: GuardrailCheck | None = None
    sequential: SequentialResult | None = None
    b2b: B2BDetail | None = None
    cuped: Adjustment | None = None
    paired: Pairing | None = None
    judged: JudgedDetail | None = field(default=None, metadata=OMIT_NONE)
    bayesian: BayesianReading | None = field(default=None, metadata=OMIT_NONE)
    novelty: NoveltyResult | None = None
    segments: tuple[SegmentBreakdown, ...] = ()
    quantiles: tuple[QuantilePoint, ...] = ()
    health: HealthBand | None = None
    surrogate: SurrogateForecast | None = field(default=None, metadata=OMIT_NONE)
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed_horizon_valid", self.sequential is None)

    def to_dict(self) -> dict[str, Any]:
        """The result as results.json writes it (NaN as None)."""
        out: dict[str, Any] = to_jsonable(self)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Read back what :meth:`to_dict` wrote."""
        return from_jsonable(cls, d)


@dataclass(kw_only=True)
class AnalysisResult:
    """Everything one analysis found, in the order a reader needs it.

    The fields are in the order results.json writes them; the experiment's settings
    (``name`` to ``export_end``) are its ``experiment`` object.  This is the data: the
    renderings (``to_text``, ``to_markdown``, ``to_html``, ``plot``, ``save``) are on
    :class:`abkit.AnalysisResult` (:mod:`abkit.api`), which :func:`abkit.analyze` and its
    ``from_dict`` return; ``from_dict`` here reads the data alone.

    Parameters
    ----------
    name : str
        The experiment's name.
    control : str
        The control variant.
    variants : tuple of str
        Every variant, control first.
    alpha : float
        The significance level.
    unit : str
        The unit of randomisation and analysis (its id column).
    mode : str
        "b2c", or "b2b" when accounts are the units of inference.
    account : str or None
        The account column in B2B mode.
    correction : str
        The multiplicity correction across treatments ("holm", ...).
    input_kind : str
        What the input was: "events", "units", "summary" or "paired" (``input``).
    export_end : str or None
        When the export ends (ISO timestamp), for event exports.
    srm : SrmResult or None
        The sample-ratio check; None for a paired export (both versions answered every
        input).
    warnings : list of str
        What changes how every result reads (a sample-ratio mismatch, ...).
    rows : dict of str to RowCount
        Per input table, its rows read, used and excluded.
    exclusions : list of Exclusion
        The excluded rows by table and reason.
    metric_notes : dict of str to list of str
        Per metric, notes that describe the data (a design effect, capped units, ...).
    notes : list of str
        Notes on the data of every metric.
    results : list of MetricResult
        One per metric × treatment.
    session_depth : dict of str to dict of str to DepthShape
        Per session-depth metric and variant, the shape of the depth distribution.
    adoption : dict of str to AdoptionSummary
        Per adoption metric, its breakdown by variant and segment.
    retention_curve : dict of str to RetentionCurve
        Per variant, the share of eligible units active each day after assignment.
    """

    name: str = field(metadata={"json": ("experiment", "name")})
    control: str = field(metadata={"json": ("experiment", "control")})
    variants: tuple[str, ...] = field(metadata={"json": ("experiment", "variants")})
    alpha: float = field(metadata={"json": ("experiment", "alpha")})
    unit: str = field(metadata={"json": ("experiment", "unit")})
    mode: str = field(default="b2c", metadata={"json": ("experiment", "mode")})
    account: str | None = field(default=None, metadata={"json": ("experiment", "account")})
    correction: str = field(metadata={"json": ("experiment", "correction")})
    input_kind: str = field(metadata={"json": ("experiment", "input")})
    export_end: str | None = field(default=None, metadata={"json": ("experiment", "export_end")})
    srm: SrmResult | None
    warnings: list[str] = field(default_factory=list)
    rows: dict[str, RowCount]
    exclusions: list[Exclusion]
    metric_notes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    results: list[MetricResult]
    session_depth: dict[str, dict[str, DepthShape]] = field(default_factory=dict)
    adoption: dict[str, AdoptionSummary] = field(default_factory=dict)
    retention_curve: dict[str, RetentionCurve] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as results.json writes it (``abkit analyze --format json``)."""
        out: dict[str, Any] = to_jsonable(self)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Read back what :meth:`to_dict` wrote (for example a saved results.json)."""
        return from_jsonable(cls, d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @property
    def table(self) -> pl.DataFrame:
        """One row per metric × treatment, flat columns, for notebooks."""
        rows = []
        for r in self.results:
            rows.append(
                {
                    "metric": r.metric,
                    "variant": r.variant,
                    "method": r.method,
                    "control_n": r.control_n,
                    "control_value": r.control_value,
                    "treatment_n": r.treatment_n,
                    "treatment_value": r.treatment_value,
                    "effect": r.effect,
                    "ci_low": r.ci[0],
                    "ci_high": r.ci[1],
                    "relative_effect": r.relative_effect,
                    "relative_ci_low": r.relative_ci[0],
                    "relative_ci_high": r.relative_ci[1],
                    "p_value": r.p_value,
                    "p_value_adjusted": r.p_value_adjusted,
                    "significant": r.significant,
                    "fixed_horizon_valid": r.fixed_horizon_valid,
                    "decision": r.decision.outcome,
                    "decision_basis": r.decision.basis,
                    "decision_p_value": r.decision.p_value,
                    "guardrail_verdict": r.guardrail.verdict if r.guardrail else None,
                    "cuped_variance_reduction": r.cuped.variance_reduction if r.cuped else None,
                    "paired_variance_removed": r.paired.variance_removed if r.paired else None,
                    "novelty_trend_p_value": r.novelty.p_value if r.novelty else None,
                    "novelty_verdict": r.novelty.verdict if r.novelty else None,
                    "warnings": len(r.warnings),
                }
            )
        return pl.DataFrame(rows, strict=False, infer_schema_length=None)

    @property
    def segments_table(self) -> pl.DataFrame:
        """One row per metric × treatment × segment, with the column's heterogeneity test."""
        rows = [
            {
                "metric": r.metric,
                "variant": r.variant,
                "column": b.column,
                "segment": e.value,
                "control_n": e.control_n,
                "treatment_n": e.treatment_n,
                "effect": e.effect,
                "ci_low": e.ci[0],
                "ci_high": e.ci[1],
                "relative_effect": e.relative_effect,
                "p_value": e.p_value,
                "p_value_adjusted": e.p_value_adjusted,
                "heterogeneity_p_value": b.heterogeneity.p_value,
            }
            for r in self.results
            for b in r.segments
            for e in b.effects
        ]
        return pl.DataFrame(rows, strict=False, infer_schema_length=None)

    @property
    def exclusions_table(self) -> pl.DataFrame:
        return pl.DataFrame(
            [to_jsonable(e) for e in self.exclusions],
            schema={"table": pl.String, "reason": pl.String, "rows": pl.Int64},
        )
