"""Experiment specification: TOML file or dict → validated, typed dataclasses.

Every key is checked: an unknown key, a missing required key or a value of the
wrong type raises :class:`~abkit.errors.ConfigError` naming the key (with a
suggestion for likely typos).  Documented defaults mean that an export following
them needs no configuration at all.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from abkit.errors import ConfigError

METRIC_TYPES = (
    "retention",
    "ratio",
    "proportion",
    "mean",
    "session_depth",
    "time_to_value",
    "nrr",
    "adoption",
)
INPUT_KINDS = ("auto", "events", "units", "summary")
CORRECTIONS = ("holm", "bh", "none")
RATE_TYPES = ("retention", "proportion", "adoption")  # 0/1 per unit: two-proportion tests
SEQUENTIAL_METHODS = ("msprt", "cs", "gst")
MODES = ("b2c", "b2b")
WEIGHTINGS = ("user", "account")
DEFAULT_ACCOUNT = "account_id"
SPENDING_FUNCTIONS = ("obrien_fleming", "pocock")
DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class MetricSpec:
    """One metric to analyse.

    Column references (``column``, ``numerator``, ``denominator``) name columns of a
    unit-level table.  On event-level input they name *derived* per-unit columns:
    an event name counts that event, ``<event>.value`` sums the value column over
    that event, ``sessions`` counts distinct sessions and ``active_days`` counts
    days with any event.
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
    direction: str = "increase"
    guardrail: bool = False
    margin: float | None = None
    relative_margin: float | None = None
    tau: float | None = None
    horizon: float | None = None
    segments: tuple[str, ...] | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "increase"

    @property
    def retention_window(self) -> tuple[int, int]:
        """Inclusive day range [a, b] after assignment that counts as retained."""
        if self.window is not None:
            return self.window
        assert self.day is not None
        return (self.day, self.day)


@dataclass(frozen=True)
class InputSpec:
    """Column names and reading options of the exports."""

    kind: str = "auto"
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

    method: str | None = None
    relative_tau: float | None = None
    target_units: int | None = None
    looks: tuple[int, ...] | None = None
    duration_days: int | None = None
    spending: str = "obrien_fleming"
    futility_effect: float | None = None
    beta: float = 0.2


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

    weighting: str = "user"
    resamples: int = 10_000
    seed: int = 0
    strata: str | None = None
    exact_limit: int = 200_000


@dataclass(frozen=True)
class EventNames:
    """Event names that the default metric set looks for."""

    output: str = "ai_output"
    share: str = "share"
    regenerate: str = "regenerate"
    error: str = "error"


@dataclass(frozen=True)
class ExperimentSpec:
    name: str = "experiment"
    control: str = "control"
    alpha: float = 0.05
    unit: str = "user_id"
    variant: str = "variant"
    account: str | None = None
    variants: tuple[str, ...] | None = None
    expected_split: dict[str, float] | None = None
    correction: str = "holm"
    srm_threshold: float = 0.001
    mode: str = "b2c"
    b2b: B2BSpec = field(default_factory=B2BSpec)
    input: InputSpec = field(default_factory=InputSpec)
    event_names: EventNames = field(default_factory=EventNames)
    sequential: SequentialSpec = field(default_factory=SequentialSpec)
    metrics: tuple[MetricSpec, ...] = ()

    @property
    def declared_variants(self) -> tuple[str, ...] | None:
        """Variants named in the config (``variants`` or ``expected_split``), if any."""
        return self.variants or (tuple(self.expected_split) if self.expected_split else None)


# --- schema -----------------------------------------------------------------------------

_EXPERIMENT_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "control": str,
    "alpha": float,
    "unit": str,
    "variant": str,
    "account": str,
    "variants": list,
    "expected_split": dict,
    "correction": str,
    "srm_threshold": float,
    "mode": str,
}
_B2B_KEYS: dict[str, type | tuple[type, ...]] = {
    "weighting": str,
    "resamples": int,
    "seed": int,
    "strata": str,
    "exact_limit": int,
}
_INPUT_KEYS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "assigned_at": str,
    "timestamp": str,
    "event": str,
    "session": str,
    "value": str,
    "exposure_event": str,
    "export_end": str,
    "metric": str,
    "day": str,
    "cumulative": bool,
    "arr_start": str,
    "arr_end": str,
    "seats": str,
}
_EVENT_KEYS: dict[str, type | tuple[type, ...]] = {
    "output": str,
    "share": str,
    "regenerate": str,
    "error": str,
}
_SEQUENTIAL_KEYS: dict[str, type | tuple[type, ...]] = {
    "method": str,
    "relative_tau": float,
    "target_units": int,
    "looks": list,
    "duration_days": int,
    "spending": str,
    "futility_effect": float,
    "beta": float,
}
_METRIC_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "type": str,
    "column": str,
    "numerator": str,
    "denominator": str,
    "day": int,
    "window": list,
    "events": list,
    "event": str,
    "direction": str,
    "guardrail": bool,
    "margin": float,
    "relative_margin": float,
    "tau": float,
    "horizon": float,
    "segments": list,
}
_TOP_KEYS = {"experiment", "input", "events", "sequential", "b2b", "metrics"}
_REQUIRED_BY_TYPE = {
    "retention": (),
    "ratio": ("numerator", "denominator"),
    "proportion": ("column",),
    "mean": ("column",),
    "session_depth": (),
    "time_to_value": ("event",),
    "nrr": (),
    "adoption": (),
}


def _suggest(key: str, allowed: set[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _check_table(where: str, table: Any, schema: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"'{where}' must be a table (section), not {type(table).__name__}.")
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(
                f"unknown key '{where}.{key}'.{_suggest(key, schema)} "
                f"Allowed keys: {', '.join(sorted(schema))}."
            )
        expected = schema[key]
        ok = isinstance(value, expected)
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok and not math.isfinite(value):
                raise ConfigError(f"key '{where}.{key}' must be a finite number, got {value!r}.")
        if expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            name = expected.__name__ if isinstance(expected, type) else str(expected)
            raise ConfigError(
                f"key '{where}.{key}' must be of type {name}, got {value!r} "
                f"({type(value).__name__})."
            )
    return table


def _choice(where: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(
            f"key '{where}' is '{value}'; allowed values: {', '.join(allowed)}."
            f"{_suggest(value, set(allowed))}"
        )
    return value


def _metric(index: int, table: Any) -> MetricSpec:
    where = f"metrics[{index}]"
    _check_table(where, table, _METRIC_KEYS)
    for key in ("name", "type"):
        if key not in table:
            raise ConfigError(f"'{where}' has no '{key}' key; every metric needs one.")
    where = f"metrics[{index}] ('{table['name']}')"
    mtype = _choice(f"{where}.type", table["type"], METRIC_TYPES)
    for key in _REQUIRED_BY_TYPE[mtype]:
        if key not in table:
            raise ConfigError(f"{where} is of type '{mtype}' and needs the key '{key}'.")
    window = None
    if mtype == "retention":
        if ("day" in table) == ("window" in table):
            raise ConfigError(
                f"{where} is a retention metric: give exactly one of 'day = N' or "
                "'window = [first_day, last_day]'."
            )
        if "window" in table:
            w = table["window"]
            if len(w) != 2 or not all(isinstance(d, int) for d in w) or not 0 <= w[0] <= w[1]:
                raise ConfigError(
                    f"key '{where}.window' must be two whole days [a, b] with 0 <= a <= b, "
                    f"got {w!r}."
                )
            window = (int(w[0]), int(w[1]))
        elif table["day"] < 0:
            raise ConfigError(f"key '{where}.day' must be 0 or more, got {table['day']}.")
    default_direction = "decrease" if mtype == "time_to_value" else "increase"
    direction = _choice(f"{where}.direction", table.get("direction", default_direction), DIRECTIONS)
    horizon = table.get("horizon")
    if horizon is not None and not horizon > 0:
        raise ConfigError(f"key '{where}.horizon' must be a positive number of days.")
    guardrail = bool(table.get("guardrail", False))
    margin = table.get("margin")
    relative_margin = table.get("relative_margin")
    if guardrail and (margin is None) == (relative_margin is None):
        raise ConfigError(
            f"{where} is a guardrail: give exactly one of 'margin' (absolute, in the metric's "
            "units) or 'relative_margin' (a fraction of the control value, e.g. 0.05)."
        )
    for key, value in (("margin", margin), ("relative_margin", relative_margin)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"key '{where}.{key}' must be a positive number, got {value}.")
        if value is not None and not guardrail:
            raise ConfigError(f"key '{where}.{key}' only applies with 'guardrail = true'.")
    tau = table.get("tau")
    if tau is not None and not (tau > 0 and math.isfinite(tau)):
        raise ConfigError(f"key '{where}.tau' must be a positive number, got {tau}.")
    events = table.get("events")
    if events is not None and not all(isinstance(e, str) for e in events):
        raise ConfigError(f"key '{where}.events' must be a list of event names.")
    return MetricSpec(
        name=table["name"],
        type=mtype,
        column=table.get("column"),
        numerator=table.get("numerator"),
        denominator=table.get("denominator"),
        day=table.get("day"),
        window=window,
        events=tuple(events) if events is not None else None,
        event=table.get("event"),
        direction=direction,
        guardrail=guardrail,
        margin=float(margin) if margin is not None else None,
        relative_margin=float(relative_margin) if relative_margin is not None else None,
        tau=float(tau) if tau is not None else None,
        horizon=float(horizon) if horizon is not None else None,
        segments=tuple(table["segments"]) if "segments" in table else None,
    )


def _sequential(table: dict[str, Any]) -> SequentialSpec:
    _check_table("sequential", table, _SEQUENTIAL_KEYS)
    method = table.get("method")
    if method is not None:
        _choice("sequential.method", method, SEQUENTIAL_METHODS)
    spending = _choice(
        "sequential.spending", table.get("spending", "obrien_fleming"), SPENDING_FUNCTIONS
    )
    looks = table.get("looks")
    if looks is not None:
        if (
            not looks
            or not all(isinstance(d, int) and d > 0 for d in looks)
            or list(looks) != sorted(set(looks))
        ):
            raise ConfigError(
                f"key 'sequential.looks' must be increasing whole days > 0, got {looks!r}."
            )
        looks = tuple(looks)
    duration = table.get("duration_days")
    if duration is not None and (duration <= 0 or (looks and duration < looks[-1])):
        raise ConfigError(
            "key 'sequential.duration_days' must be positive and not before the last planned look."
        )
    relative_tau = table.get("relative_tau")
    if relative_tau is not None and not relative_tau > 0:
        raise ConfigError("key 'sequential.relative_tau' must be positive.")
    target = table.get("target_units")
    if target is not None and target < 2:
        raise ConfigError("key 'sequential.target_units' must be at least 2.")
    futility = table.get("futility_effect")
    if futility is not None and not futility > 0:
        raise ConfigError("key 'sequential.futility_effect' must be a positive relative lift.")
    beta = float(table.get("beta", 0.2))
    if not 0 < beta < 0.5:
        raise ConfigError("key 'sequential.beta' must be between 0 and 0.5.")
    return SequentialSpec(
        method=method,
        relative_tau=relative_tau,
        target_units=target,
        looks=looks,
        duration_days=duration,
        spending=spending,
        futility_effect=futility,
        beta=beta,
    )


def parse_config(raw: dict[str, Any]) -> ExperimentSpec:
    """Validate a config mapping (as read from TOML) into an :class:`ExperimentSpec`."""
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping of sections.")
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"unknown section '{key}'.{_suggest(key, _TOP_KEYS)} "
                f"Allowed sections: {', '.join(sorted(_TOP_KEYS))}."
            )
    exp = _check_table("experiment", raw.get("experiment", {}), _EXPERIMENT_KEYS)
    inp = _check_table("input", raw.get("input", {}), _INPUT_KEYS)
    evn = _check_table("events", raw.get("events", {}), _EVENT_KEYS)
    metrics_raw = raw.get("metrics", [])
    if not isinstance(metrics_raw, list):
        raise ConfigError("'metrics' must be an array of tables: write each as [[metrics]].")

    alpha = float(exp.get("alpha", 0.05))
    if not 0 < alpha < 0.5:
        raise ConfigError(f"key 'experiment.alpha' must be between 0 and 0.5, got {alpha}.")
    srm_threshold = float(exp.get("srm_threshold", 0.001))
    if not 0 < srm_threshold < 1:
        raise ConfigError("key 'experiment.srm_threshold' must be between 0 and 1.")
    split = exp.get("expected_split")
    if split is not None:
        bad = {
            k: v
            for k, v in split.items()
            if isinstance(v, bool)
            or not isinstance(v, int | float)
            or not (0 < v < math.inf)  # also refuses nan and inf
        }
        if bad or not split:
            raise ConfigError(
                "key 'experiment.expected_split' must map each variant to a positive share, "
                f"got {split!r}."
            )
        split = {str(k): float(v) for k, v in split.items()}
    variants = exp.get("variants")
    if variants is not None:
        variants = tuple(str(v) for v in variants)
        if split is not None and set(split) != set(variants):
            raise ConfigError(
                "keys 'experiment.variants' and 'experiment.expected_split' name different "
                f"variants: {sorted(variants)} vs {sorted(split)}."
            )
    control = str(exp.get("control", "control"))
    known = variants or (tuple(split) if split else None)
    if known is not None and control not in known:
        raise ConfigError(
            f"key 'experiment.control' is '{control}', which is not among the declared "
            f"variants {sorted(known)}."
        )
    mode = _choice("experiment.mode", exp.get("mode", "b2c"), MODES)
    metrics = tuple(_metric(i, m) for i, m in enumerate(metrics_raw))
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"metric names must be unique; repeated: {', '.join(dupes)}.")
    input_spec = InputSpec(**inp)
    _choice("input.kind", input_spec.kind, INPUT_KINDS)
    return ExperimentSpec(
        name=str(exp.get("name", "experiment")),
        control=control,
        alpha=alpha,
        unit=str(exp.get("unit", "user_id")),
        variant=str(exp.get("variant", "variant")),
        account=exp.get("account", DEFAULT_ACCOUNT if mode == "b2b" else None),
        variants=variants,
        expected_split=split,
        correction=_choice("experiment.correction", exp.get("correction", "holm"), CORRECTIONS),
        srm_threshold=srm_threshold,
        mode=mode,
        b2b=_b2b(raw.get("b2b", {})),
        input=input_spec,
        event_names=EventNames(**evn),
        sequential=_sequential(raw.get("sequential", {})),
        metrics=metrics,
    )


def _b2b(table: dict[str, Any]) -> B2BSpec:
    _check_table("b2b", table, _B2B_KEYS)
    weighting = _choice("b2b.weighting", table.get("weighting", "user"), WEIGHTINGS)
    resamples = table.get("resamples", 10_000)
    if resamples < 100:
        raise ConfigError("key 'b2b.resamples' must be at least 100.")
    exact_limit = table.get("exact_limit", 200_000)
    if not 0 <= exact_limit <= 5_000_000:
        raise ConfigError(
            "key 'b2b.exact_limit' must be between 0 (always Monte Carlo) and 5,000,000 "
            "(memory grows with it)."
        )
    return B2BSpec(
        weighting=weighting,
        resamples=resamples,
        seed=table.get("seed", 0),
        strata=table.get("strata"),
        exact_limit=exact_limit,
    )


def with_mode(spec: ExperimentSpec, mode: str) -> ExperimentSpec:
    """The spec with ``[experiment] mode`` replaced (as ``--mode`` does); B2B mode
    without an account column takes the documented default ``account_id``."""
    _choice("experiment.mode", mode, MODES)
    account = spec.account or (DEFAULT_ACCOUNT if mode == "b2b" else None)
    return replace(spec, mode=mode, account=account)


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


def with_sequential_method(spec: ExperimentSpec, method: str) -> ExperimentSpec:
    """The spec with ``[sequential] method`` replaced (as ``--sequential`` does)."""
    _choice("sequential.method", method, SEQUENTIAL_METHODS)
    return replace(spec, sequential=replace(spec.sequential, method=method))


def load_config(config: str | Path | dict[str, Any] | ExperimentSpec | None) -> ExperimentSpec:
    """Read a TOML path, a dict or an existing spec; ``None`` gives all defaults."""
    if config is None:
        return parse_config({})
    if isinstance(config, ExperimentSpec):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    path = Path(config)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}.") from None
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"in config file '{path}': {exc}") from None
