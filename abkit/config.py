"""Experiment specification: TOML file or dict → validated, typed dataclasses.

The dataclasses below are the schema.  Each key's type (``Literal`` for a closed set
of values), its default and its range are stated once, on its field; the reader
derives from them which keys exist, what they may hold and what the CLI offers.
An unknown key, a missing required key or a value of the wrong type raises
:class:`~abkit.errors.ConfigError` naming the key (with a suggestion for likely typos).
Documented defaults mean that an export following them needs no configuration at all.

The schema is read from the dataclasses themselves (``dataclasses.fields`` and
``typing.get_type_hints``) rather than through pydantic or msgspec: the specs are
plain frozen dataclasses that the rest of abkit passes around, the few conversions
TOML needs (lists to tuples) are a dozen lines, and the error messages stay ours.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from abkit.errors import ConfigError
from abkit.formats import is_export
from abkit.metrics import REGISTRY
from abkit.metrics.base import MetricSpec as MetricSpec
from abkit.options import (
    Correction,
    InputKind,
    Mode,
    QuantileMethod,
    SequentialMethod,
    Spending,
    SurrogateInterval,
    Weighting,
    config_key,
)

DEFAULT_ACCOUNT = "account_id"


@dataclass(frozen=True)
class InputSpec:
    """Column names and reading options of the exports."""

    kind: InputKind = "auto"
    assigned_at: str = "assigned_at"
    timestamp: str = "timestamp"
    event: str = "event"
    session: str = "session_id"
    value: str = "value"
    exposure_event: str | None = None
    export_end: str | None = None
    metric: str = "metric"
    day: str = "day"
    cumulative: bool = False
    arr_start: str = "arr_start"
    arr_end: str = "arr_end"
    seats: str = "seats"
    # paired export (kind "paired"): the input both versions answered
    input_id: str = "input_id"
    # strptime format of text timestamps (e.g. "%m/%d/%Y %H:%M"); None: ISO 8601 forms
    timestamp_format: str | None = config_key(
        None, lambda v: "%" in v, "be a strptime format such as '%m/%d/%Y %H:%M'"
    )
    # event columns of AI outputs that the built-in metrics read when present
    latency: str = "latency_ms"
    ttft: str = "ttft_ms"
    input_tokens: str = "input_tokens"
    output_tokens: str = "output_tokens"

    def column_for(self, name: str) -> str:
        """The events table's column that ``<event>.<name>`` reads (``value``: the
        configured value column)."""
        return self.value if name == "value" else name


@dataclass(frozen=True)
class SequentialSpec:
    """Monitoring that stays valid when the results are looked at every day.

    ``method``: ``msprt``, ``cs`` (asymptotic confidence sequence) or ``gst``
    (group-sequential design); ``None`` means fixed-horizon only.  ``target_units`` is
    the planned total sample: the confidence sequence is tightest there, and by default
    the mSPRT mixing sd τ is the effect a fixed-horizon test would detect there with
    80 % power (default: the units at the latest look, which moves the boundary as data
    arrive, so a warning asks to set it).  ``relative_tau`` instead sets τ to that
    fraction of the control value at the first look with data (a per-metric ``tau``
    overrides both, in metric units).  ``looks`` are the planned GST look days (days after
    the first assignment's midnight; default weekly) and ``duration_days`` the planned
    end (default the last planned look).  ``futility_effect`` (a relative lift, e.g.
    0.05) adds a non-binding GST futility bound that spends ``beta`` under that effect.
    """

    method: SequentialMethod | None = None
    relative_tau: float | None = config_key(None, lambda v: v > 0, "be positive")
    target_units: int | None = config_key(None, lambda v: v >= 2, "be at least 2")
    looks: tuple[int, ...] | None = config_key(
        None,
        lambda v: bool(v) and all(d > 0 for d in v) and list(v) == sorted(set(v)),
        "be increasing whole days > 0",
    )
    duration_days: int | None = config_key(None, lambda v: v > 0, "be positive")
    spending: Spending = "obrien_fleming"
    futility_effect: float | None = config_key(None, lambda v: v > 0, "be a positive relative lift")
    beta: float = config_key(0.2, lambda v: 0 < v < 0.5, "be between 0 and 0.5")


@dataclass(frozen=True)
class B2BSpec:
    """Account-level inference settings (``mode = "b2b"``).

    ``weighting``: ``user`` (ratio of account sums: every user, or output, counts once —
    the default, because it is the same estimand as the B2C analysis and the one the
    business total moves with) or ``account`` (mean of per-account values: every
    account counts once).  ``strata``: an account-level column whose values blocked the
    randomisation; re-assignments stay within strata.  ``exact_limit``: the
    randomisation test enumerates every re-assignment when there are at most this many
    (exact p-values; C(20, 10) = 184,756 at 10 accounts per arm takes about 0.3 s) and
    otherwise draws ``resamples`` random ones (Monte Carlo p-values, still valid).
    """

    weighting: Weighting = "user"
    resamples: int = config_key(10_000, lambda v: v >= 100, "be at least 100")
    seed: int = 0
    strata: str | None = None
    exact_limit: int = config_key(
        200_000,
        lambda v: 0 <= v <= 5_000_000,
        "be between 0 (always Monte Carlo) and 5,000,000 (memory grows with it)",
    )


@dataclass(frozen=True)
class EventNames:
    """Event names that the default metric set looks for."""

    output: str = "ai_output"
    share: str = "share"
    regenerate: str = "regenerate"
    error: str = "error"
    # a new user's sign-up, logged under the id of the user who referred them
    referral: str = "referral_signup"
    # a grader's (LLM or human) score of one output, in the value column; sampled
    judge: str = "judge_score"
    thumbs_up: str = "thumbs_up"
    thumbs_down: str = "thumbs_down"


@dataclass(frozen=True)
class CostSpec:
    """Cost priced from token counts: with a price set, ``<event>.<column>`` (default
    ``ai_output.cost``) reads input_tokens / 1000 · ``input_per_1k`` + output_tokens /
    1000 · ``output_per_1k`` of each event (the ``[input]`` token columns; a price left
    unset adds nothing).  Without prices ``<event>.cost`` reads a ``cost`` column."""

    input_per_1k: float | None = config_key(None, lambda v: v >= 0, "be a price of 0 or more")
    output_per_1k: float | None = config_key(None, lambda v: v >= 0, "be a price of 0 or more")
    column: str = config_key("cost", lambda v: bool(v) and "." not in v, "be a name without dots")

    @property
    def priced(self) -> bool:
        return self.input_per_1k is not None or self.output_per_1k is not None

    def token_prices(self, columns: InputSpec) -> dict[str, float]:
        """Token column → price per 1,000 tokens, for the prices that are set."""
        prices = {
            columns.input_tokens: self.input_per_1k,
            columns.output_tokens: self.output_per_1k,
        }
        return {column: price for column, price in prices.items() if price is not None}


@dataclass(frozen=True)
class CupedSpec:
    """Regression adjustment (CUPED) by pre-experiment covariates.

    ``covariates``: numeric columns measured before assignment — of the unit-level
    table, or of the assignments table for an event export (e.g. last month's spend)
    — used for every metric that supports adjustment; a metric's own ``covariates``
    key overrides the list (``covariates = []`` turns the adjustment off for it).
    ``pre_days``: on an event export, also adjust each metric by the same metric over
    the ``pre_days`` days before each unit's assignment (retention: by the days active
    then), computed from the export's own events before assignment.
    """

    covariates: tuple[str, ...] = ()
    pre_days: int | None = config_key(
        None, lambda v: 0 < v <= 366, "be a whole number of days, 1-366"
    )


@dataclass(frozen=True)
class NoveltySpec:
    """Novelty and primacy check (event exports): the lift in each period of
    ``period_days`` days since each unit's assignment, over the first ``periods``
    periods (default: as many as half the units have completed), and its trend."""

    period_days: int | None = config_key(None, lambda v: 1 <= v <= 90, "be 1-90 days")
    periods: int | None = config_key(None, lambda v: 2 <= v <= 26, "be 2-26")


@dataclass(frozen=True)
class QuantileSpec:
    """How quantile metrics read their event values: ``exact`` collects every value,
    ``histogram`` reduces them on the engine to log-spaced bins of relative width
    ``relative_error`` (the quantile is then within half of it of the exact one);
    ``auto`` is exact on Polars and in B2B mode (which needs each value's account),
    the histogram on other engines."""

    method: QuantileMethod = "auto"
    relative_error: float = config_key(0.001, lambda v: 1e-6 <= v <= 0.1, "be 1e-6 to 0.1")


@dataclass(frozen=True)
class SurrogateSpec:
    """The surrogate forecast of long-run retention from the first week (event
    exports; docs/guides/deciding-before-d30.md).  ``metrics`` names the retention
    metrics to forecast; by default, with the events on Polars, every retention metric
    whose window ends after the first week and has not matured for every unit by the
    export end (on another engine the forecast brings every unit's signals back, so it
    is made for the named metrics only); ``[]`` turns the forecast off.  The model of
    the outcome on the first-week signals is trained on the control arm's matured
    units, or on ``training``: a per-unit table of a past export with the signal
    columns and the outcome (``abkit.surrogate_training_table``).
    The interval is the delta method's on each unit's influence, the model's own
    uncertainty included (``interval = "delta"``), or a bootstrap of ``resamples``
    replicates that refit the model, from ``seed`` (``"bootstrap"``: half a minute
    on a million units, against 3 s).
    The forecast is shown beside the metric's result, never as its decision, unless
    ``decide`` names the metric: its decision is then the forecast's (basis
    "surrogate forecast"), not computable when the validation disagrees."""

    metrics: tuple[str, ...] | None = None
    decide: tuple[str, ...] = ()
    training: str | None = None
    interval: SurrogateInterval = "delta"
    resamples: int = config_key(200, lambda v: 20 <= v <= 100_000, "be 20-100000")
    seed: int = 0


@dataclass(frozen=True)
class BayesianSpec:
    """The Bayesian reading of every metric (docs/guides/bayesian.md), beside the
    frequentist result and never mixed in: on when the ``[bayesian]`` section is present
    (or ``--bayesian``).  The prior of log(T/C) is N(``prior_mean``, ``prior_sd``²)
    (N(0, 0.3²) by default; ``flat_prior`` drops it) or, with ``archive``, learnt from the
    metric's past experiments there (``family``, ``method``; the default prior below
    ``min_experiments``).  The decision: better when the chance to win ≥ ``chance`` and
    the expected loss of shipping ≤ ``tolerance`` of control (0.95 and 0.25 %).  A
    proportion with an arm below ``exact_below`` units is read by the exact
    Beta-Binomial; B2B metrics by the Bayesian bootstrap over accounts (``draws``,
    ``seed``, which also seed the chance to be best among several treatments)."""

    enabled: bool = False
    prior_mean: float = config_key(0.0, lambda v: -1 < v < 1, "be between -1 and 1")
    prior_sd: float = config_key(0.3, lambda v: 0 < v <= 10, "be positive (at most 10)")
    flat_prior: bool = False
    chance: float = config_key(0.95, lambda v: 0.5 < v < 1, "be between 0.5 and 1")
    tolerance: float = config_key(0.0025, lambda v: 0 <= v < 1, "be between 0 and 1")
    exact_below: int = config_key(100, lambda v: 0 <= v <= 100_000, "be 0-100000 units")
    archive: str | None = None
    family: Literal["normal", "t"] = "normal"
    method: Literal["reml", "paule-mandel", "dersimonian-laird"] = "reml"
    min_experiments: int = config_key(10, lambda v: 2 <= v <= 10_000, "be 2-10000")
    draws: int = config_key(10_000, lambda v: 1_000 <= v <= 1_000_000, "be 1000-1000000")
    seed: int = 0


# retention bars of product practice for AI consumer products (D7 20 %, D30 10 %)
DEFAULT_HEALTH_BARS = {"d7": 0.20, "d30": 0.10}


@dataclass(frozen=True)
class HealthSpec:
    """Health bands shown beside retention estimates, never mixed with the tests:
    ``bars`` maps a retention day ("d7") to the rate below which an arm is flagged as
    below the usual bar (default {d7 = 0.20, d30 = 0.10}; {} turns the bands off).
    A bar applies to every ``retention`` metric with that ``day``."""

    bars: dict[str, float] | None = config_key(
        None,
        lambda v: all(re.fullmatch(r"d\d+", k) and 0 < b < 1 for k, b in v.items()),
        "map retention days such as d7 to rates between 0 and 1",
    )

    @property
    def retention_bars(self) -> dict[int, float]:
        """Retention day → bar."""
        bars = DEFAULT_HEALTH_BARS if self.bars is None else self.bars
        return {int(k[1:]): b for k, b in bars.items()}


@dataclass(frozen=True)
class SegmentSpec:
    """Effects by segment: ``columns`` are unit attributes fixed at assignment (columns
    of the assignments table or of a unit-level table: country, platform, plan; in B2B
    role or seniority); p-values are adjusted across a column's segments with
    ``correction``; a column with more than ``max_values`` values is refused (an id or a
    continuous number, not a segment)."""

    columns: tuple[str, ...] = ()
    correction: Correction = "holm"
    max_values: int = config_key(30, lambda v: 2 <= v <= 1000, "be 2-1000")


def _section(name: str, factory: Callable[[], Any]) -> Any:
    """A nested spec read from its own TOML section."""
    return field(default_factory=factory, metadata={"section": name})


@dataclass(frozen=True)
class ExperimentSpec:
    """The whole experiment: ``[experiment]`` keys, the nested sections and the metrics."""

    name: str = ""  # unnamed: the report is titled after the export (see abkit.analyze)
    control: str = "control"
    alpha: float = config_key(0.05, lambda v: 0 < v < 0.5, "be between 0 and 0.5")
    unit: str = "user_id"
    variant: str = "variant"
    account: str | None = None  # B2B mode: DEFAULT_ACCOUNT unless set
    variants: tuple[str, ...] | None = None
    expected_split: dict[str, float] | None = config_key(
        None,
        lambda v: bool(v) and all(0 < s < math.inf for s in v.values()),
        "map each variant to a positive share",
    )
    correction: Correction = "holm"
    srm_threshold: float = config_key(0.001, lambda v: 0 < v < 1, "be between 0 and 1")
    mode: Mode = "b2c"
    b2b: B2BSpec = _section("b2b", B2BSpec)
    input: InputSpec = _section("input", InputSpec)
    event_names: EventNames = _section("events", EventNames)
    sequential: SequentialSpec = _section("sequential", SequentialSpec)
    cuped: CupedSpec = _section("cuped", CupedSpec)
    novelty: NoveltySpec = _section("novelty", NoveltySpec)
    segments: SegmentSpec = _section("segments", SegmentSpec)
    quantiles: QuantileSpec = _section("quantiles", QuantileSpec)
    health: HealthSpec = _section("health", HealthSpec)
    cost: CostSpec = _section("cost", CostSpec)
    surrogate: SurrogateSpec = _section("surrogate", SurrogateSpec)
    bayesian: BayesianSpec = _section("bayesian", BayesianSpec)
    metrics: tuple[MetricSpec, ...] = field(default=(), metadata={"section": "metrics"})

    def covariates(self, metric: MetricSpec) -> tuple[str, ...]:
        """The covariates that adjust ``metric``: its own list, else ``[cuped]``'s."""
        return self.cuped.covariates if metric.covariates is None else metric.covariates

    def uses_pre_period(self, metric: MetricSpec) -> bool:
        """Whether ``metric`` is adjusted by its own pre-period value (``[cuped] pre_days``
        set, the metric's type adjustable and its covariates not turned off)."""
        return (
            self.cuped.pre_days is not None
            and metric.covariates != ()
            and metric.kind.adjustable() is not None
        )

    @property
    def declared_variants(self) -> tuple[str, ...] | None:
        """Variants named in the config (``variants`` or ``expected_split``), if any."""
        return self.variants or (tuple(self.expected_split) if self.expected_split else None)


# --- reading a table against a dataclass ----------------------------------------------------


def _suggest(key: str, allowed: Any) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    if origin is tuple or origin is list:
        return "list"
    if origin is dict:
        return "dict"
    return getattr(hint, "__name__", str(hint))


def _coerce(where: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` states (TOML arrays become tuples), or ConfigError."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        (inner,) = (a for a in args if a is not type(None))
        return _coerce(where, value, inner)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(map(str, args))
            raise ConfigError(
                f"key '{where}' is '{value}'; allowed values: {allowed}."
                f"{_suggest(str(value), [str(a) for a in args])}"
            )
        return value
    ok: bool
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"key '{where}' must be a finite number, got {value!r}.")
        if ok:
            return float(value)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is tuple:
        ok = isinstance(value, list) and (args[-1] is Ellipsis or len(value) == len(args))
        if ok:
            inner = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
            return tuple(_coerce(where, v, t) for v, t in zip(value, inner, strict=True))
    elif origin is dict:
        ok = isinstance(value, dict)
        if ok:
            return {str(k): _coerce(where, v, args[1]) for k, v in value.items()}
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise ConfigError(
            f"key '{where}' must be of type {_type_name(hint)}, got {value!r} "
            f"({type(value).__name__})."
        )
    return value


@cache
def _schema(cls: type) -> dict[str, tuple[Field[Any], Any]]:
    hints = get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in fields(cls) if "section" not in f.metadata}


def _read(cls: type, where: str, table: Any) -> dict[str, Any]:
    """The keyword arguments of ``cls`` given by a TOML table: every key known, of its
    field's type and within its field's range."""
    if not isinstance(table, dict):
        raise ConfigError(f"'{where}' must be a table (section), not {type(table).__name__}.")
    schema = _schema(cls)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(
                f"unknown key '{where}.{key}'.{_suggest(key, schema)} "
                f"Allowed keys: {', '.join(sorted(schema))}."
            )
        spec_field, hint = schema[key]
        value = _coerce(f"{where}.{key}", value, hint)
        check = spec_field.metadata.get("check")
        if check is not None and not check(value):
            raise ConfigError(
                f"key '{where}.{key}' must {spec_field.metadata['must']}, got {value!r}."
            )
        out[key] = value
    return out


def _default(cls: type, name: str) -> Any:
    spec_field = _schema(cls)[name][0]
    return spec_field.default if spec_field.default is not MISSING else None


# --- the sections ---------------------------------------------------------------------------


def _metric(index: int, table: Any) -> MetricSpec:
    where = f"metrics[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(f"'{where}' must be a table (section), not {type(table).__name__}.")
    for key in ("name", "type"):
        if key not in table:
            raise ConfigError(f"'{where}' has no '{key}' key; every metric needs one.")
    values = _read(MetricSpec, where, table)
    where = f"metrics[{index}] ('{values['name']}')"
    if values["type"] not in REGISTRY:
        raise ConfigError(
            f"key '{where}.type' is '{values['type']}'; allowed values: "
            f"{', '.join(REGISTRY)}.{_suggest(values['type'], REGISTRY)}"
        )
    metric = MetricSpec(**values)
    metric.kind.check(where, metric)
    if metric.guardrail and (metric.margin is None) == (metric.relative_margin is None):
        raise ConfigError(
            f"{where} is a guardrail: give exactly one of 'margin' (absolute, in the metric's "
            "units) or 'relative_margin' (a fraction of the control value, e.g. 0.05)."
        )
    for key in ("margin", "relative_margin"):
        if getattr(metric, key) is not None and not metric.guardrail:
            raise ConfigError(f"key '{where}.{key}' only applies with 'guardrail = true'.")
    if metric.cap is not None:
        _check_cap(where, metric)
    return metric


def _check_cap(where: str, metric: MetricSpec) -> None:
    """``cap`` is {quantile = q} with 0.5 < q < 1, or {value = v}; 0/1 metrics and
    per-account metrics have nothing to cap."""
    assert metric.cap is not None
    if len(metric.cap) != 1 or not set(metric.cap) <= {"quantile", "value"}:
        raise ConfigError(
            f"key '{where}.cap' must be one of {{ quantile = 0.999 }} or {{ value = 10000 }}, "
            f"got {metric.cap!r}."
        )
    q = metric.cap.get("quantile")
    if q is not None and not 0.5 < q < 1:
        raise ConfigError(f"key '{where}.cap.quantile' must be between 0.5 and 1, got {q!r}.")
    if metric.kind.is_rate or metric.kind.adjustable() is None:
        raise ConfigError(
            f"{where} is of type '{metric.type}', whose per-unit values cannot be capped "
            "(0/1 values, quantiles, or analysed per account)."
        )


def _sequential(table: Any) -> SequentialSpec:
    spec = SequentialSpec(**_read(SequentialSpec, "sequential", table))
    if spec.duration_days is not None and spec.looks and spec.duration_days < spec.looks[-1]:
        raise ConfigError(
            "key 'sequential.duration_days' must be positive and not before the last planned look."
        )
    return spec


def _experiment(table: Any) -> dict[str, Any]:
    exp = _read(ExperimentSpec, "experiment", table)
    split, variants = exp.get("expected_split"), exp.get("variants")
    if split is not None and variants is not None and set(split) != set(variants):
        raise ConfigError(
            "keys 'experiment.variants' and 'experiment.expected_split' name different "
            f"variants: {sorted(variants)} vs {sorted(split)}."
        )
    known = variants or (tuple(split) if split else None)
    control = exp.get("control", _default(ExperimentSpec, "control"))
    if known is not None and control not in known:
        raise ConfigError(
            f"key 'experiment.control' is '{control}', which is not among the declared "
            f"variants {sorted(known)}."
        )
    return exp


# field name → TOML section of the nested specs (and the metrics)
_SECTIONS = {
    f.name: f.metadata["section"] for f in fields(ExperimentSpec) if "section" in f.metadata
}


def parse_config(raw: Mapping[str, Any]) -> ExperimentSpec:
    """Validate a config mapping (as read from TOML) into an :class:`ExperimentSpec`."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping of sections.")
    allowed = {"experiment", *_SECTIONS.values()}
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"unknown section '{key}'.{_suggest(key, allowed)} "
                f"Allowed sections: {', '.join(sorted(allowed))}."
            )
    metrics_raw = raw.get("metrics", [])
    if not isinstance(metrics_raw, list):
        raise ConfigError("'metrics' must be an array of tables: write each as [[metrics]].")
    metrics = tuple(_metric(i, m) for i, m in enumerate(metrics_raw))
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"metric names must be unique; repeated: {', '.join(dupes)}.")
    hints = get_type_hints(ExperimentSpec)
    nested: dict[str, Any] = {}
    for name, section in _SECTIONS.items():
        if section != "metrics":
            cls, table = hints[name], raw.get(section, {})
            if cls is BayesianSpec and isinstance(table, dict) and section in raw:
                table = {"enabled": True, **table}  # the section turns the reading on
            nested[name] = (
                _sequential(table) if cls is SequentialSpec else cls(**_read(cls, section, table))
            )
    spec = ExperimentSpec(**_experiment(raw.get("experiment", {})), **nested, metrics=metrics)
    return with_mode(spec, spec.mode)


def _option(cls: type, section: str, key: str, value: Any) -> Any:
    """A value given outside the TOML file (a CLI flag, a keyword) checked like the key."""
    return _read(cls, section, {key: value})[key]


def with_mode(spec: ExperimentSpec, mode: str) -> ExperimentSpec:
    """The spec with ``[experiment] mode`` replaced (as ``--mode`` does); B2B mode
    without an account column takes the documented default ``account_id``."""
    checked: Mode = _option(ExperimentSpec, "experiment", "mode", mode)
    account = spec.account or (DEFAULT_ACCOUNT if checked == "b2b" else None)
    return replace(spec, mode=checked, account=account)


def with_columns(
    spec: ExperimentSpec,
    *,
    control: str | None = None,
    unit: str | None = None,
    variant: str | None = None,
    account: str | None = None,
) -> ExperimentSpec:
    """The spec with ``[experiment]`` control / unit / variant / account replaced (as
    the CLI's --control, --unit, --variant and --account do); None keeps a value."""
    given = {"control": control, "unit": unit, "variant": variant, "account": account}
    for key, value in given.items():
        if value is not None and not value.strip():
            raise ConfigError(f"--{key} needs a non-empty column or variant name.")
    return replace(
        spec,
        control=control or spec.control,
        unit=unit or spec.unit,
        variant=variant or spec.variant,
        account=account or spec.account,
    )


# the [input] keys of an event export that the command line maps with a flag of the
# same name (--assigned-at for assigned_at, ...)
INPUT_FLAGS = (
    "event",
    "timestamp",
    "assigned_at",
    "session",
    "value",
    "exposure_event",
    "export_end",
    "input_id",
    "timestamp_format",
    "latency",
    "ttft",
    "input_tokens",
    "output_tokens",
)


def flag_of(key: str) -> str:
    """The command-line flag of an ``[input]`` key (``assigned_at`` → ``--assigned-at``)."""
    return "--" + key.replace("_", "-")


def with_input(spec: ExperimentSpec, **keys: str | None) -> ExperimentSpec:
    """The spec with ``[input]`` keys replaced (as the CLI's --event, --timestamp,
    --assigned-at, ... do); None keeps a value.  Each value is checked as the TOML key
    would be."""
    given = {}
    for key, value in keys.items():
        if key not in INPUT_FLAGS:
            raise ConfigError(
                f"unknown input column option '{key}'.{_suggest(key, INPUT_FLAGS)} "
                f"Allowed: {', '.join(INPUT_FLAGS)}."
            )
        if value is None:
            continue
        if not value.strip():
            raise ConfigError(f"{flag_of(key)} needs a non-empty value.")
        given[key] = _option(InputSpec, "input", key, value)
    return replace(spec, input=replace(spec.input, **given)) if given else spec


def with_segments(spec: ExperimentSpec, columns: tuple[str, ...]) -> ExperimentSpec:
    """``spec`` with effects by segment of ``columns`` (``--segment``) added."""
    merged = tuple(dict.fromkeys([*spec.segments.columns, *columns]))
    return replace(spec, segments=replace(spec.segments, columns=merged))


def with_bayesian_reading(spec: ExperimentSpec, archive: Any = None) -> ExperimentSpec:
    """The spec with the Bayesian reading on (as ``--bayesian`` does) and, given an
    ``archive`` (``--archive``), its priors learnt from that archive."""
    bayes = replace(spec.bayesian, enabled=True)
    if archive is not None:
        bayes = replace(bayes, archive=os.fspath(archive))
    return replace(spec, bayesian=bayes)


def with_sequential_method(spec: ExperimentSpec, method: str) -> ExperimentSpec:
    """The spec with ``[sequential] method`` replaced (as ``--sequential`` does)."""
    checked: SequentialMethod = _option(SequentialSpec, "sequential", "method", method)
    return replace(spec, sequential=replace(spec.sequential, method=checked))


def load_config(
    config: str | Path | Mapping[str, Any] | ExperimentSpec | None,
) -> ExperimentSpec:
    """Read a TOML path, a dict or an existing spec; ``None`` gives all defaults."""
    if config is None:
        return parse_config({})
    if isinstance(config, ExperimentSpec):
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist.")
    if is_export(path):
        raise ConfigError(
            f"'{path}' was given as the config, but it is a data file, not a TOML "
            "experiment spec. In Python the second positional argument of abkit.analyze is "
            "the config: pass the events by keyword, abkit.analyze('assignments.parquet', "
            f"events='{path}'); on the command line give it as the second argument "
            f"(abkit analyze assignments.parquet {path}), not with -c."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file '{path}' is not UTF-8 text (byte {exc.start + 1}); a config is a "
            "TOML file."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}.") from None
    except OSError as exc:  # unreadable: permissions, a file that vanished
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror or exc}.") from None
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"in config file '{path}': {exc}") from None
