"""The per-unit inputs of the surrogate index (:mod:`abkit.stats.surrogate`) from an
event export, and the forecast from such a per-unit frame.

``abkit analyze`` builds the same columns in its own units pass
(:mod:`abkit.engine.week_one`, with its exclusions and de-duplication, on any engine);
:func:`week_one_units` is the plain Polars reading of the same definitions, for
notebooks and as the independent reference of that pass in the tests.

Days follow abkit's retention metrics: day d of a unit is [assigned_at + d·24 h,
assigned_at + (d + 1)·24 h), and a window ending on day b is complete iff
assigned_at + (b + 1)·24 h ≤ export end.  Per unit:

* ``d1``, ``d7``: any event on day 1, on day 7 (0 / 1);
* ``active_days_7d``: days 0–6 with an event;
* ``share_rate``: share events per AI output in days 0–6 (0 without an output);
* ``session_depth``: AI outputs per session in days 0–6 (sessions: distinct session
  ids of the unit's events in those days; 0 without a session);
* ``d30``: any event on day 30 (0 / 1).

The first-week signals are null until day 7 is complete (the first week is days 0–6
plus day 7, whose activity is D7), ``d30`` until day 30 is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from abkit.config import ExperimentSpec, MetricSpec
from abkit.engine.week_one import LAST_DAY, SIGNALS
from abkit.errors import AbkitInputError
from abkit.io.readers import read_table
from abkit.stats.surrogate import SurrogateForecast, surrogate_index

# heavy-tailed signals enter the model as log(1 + value)
LOG_SIGNALS = ("session_depth",)
_US_PER_DAY = 86_400_000_000


def week_one_units(
    assignments: pl.DataFrame,
    events: pl.DataFrame,
    *,
    unit: str = "user_id",
    variant: str = "variant",
    assigned_at: str = "assigned_at",
    timestamp: str = "timestamp",
    event: str = "event",
    session: str = "session_id",
    output_event: str = "ai_output",
    share_event: str = "share",
    export_end: dt.datetime | None = None,
    outcome_day: int = 30,
) -> pl.DataFrame:
    """One row per assigned unit: its variant, assignment time, first-week signals
    (:data:`SIGNALS`) and ``d30`` (active on ``outcome_day``), each null until its
    window is complete by the export end.

    Parameters
    ----------
    assignments : polars.DataFrame
        One row per unit: ``unit``, ``variant``, ``assigned_at`` (a UTC datetime).
    events : polars.DataFrame
        One row per event: ``unit``, ``timestamp`` (a UTC datetime), ``event`` (its
        name) and ``session``.  Events before the unit's assignment are ignored.
    unit, variant, assigned_at, timestamp, event, session : str
        Column names.
    output_event, share_event : str
        The names of an AI output event and of a share.
    export_end : datetime, optional
        The export's end; the latest event's time by default (as ``abkit analyze``).
    outcome_day : int
        The day of the outcome (30: D30).

    Returns
    -------
    polars.DataFrame
        Columns ``unit``, ``variant``, ``assigned_at``, the signals, ``d30``.

    Examples
    --------
    >>> import datetime as dt, polars as pl
    >>> from abkit.inputs.surrogate_units import week_one_units
    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> day = dt.timedelta(days=1)
    >>> a = pl.DataFrame({"user_id": [1, 2], "variant": ["control", "treatment"],
    ...                   "assigned_at": [t0, t0 + 25 * day]})
    >>> e = pl.DataFrame({
    ...     "user_id": [1, 1, 1, 1, 1, 2],
    ...     "timestamp": [t0, t0, t0 + 1.5 * day, t0 + 30.5 * day, t0 + 31 * day, t0 + 26 * day],
    ...     "event": ["ai_output", "share", "ai_output", "ai_output", "ai_output", "ai_output"],
    ...     "session_id": [10, 10, 11, 12, 13, 20]})
    >>> units = week_one_units(a, e)
    >>> units.select("user_id", "d1", "active_days_7d", "share_rate", "session_depth", "d30").rows()
    [(1, 1.0, 2.0, 0.5, 1.0, 1.0), (2, None, None, None, None, None)]
    """
    need = {unit: assignments, variant: assignments, assigned_at: assignments}
    need |= {timestamp: events, event: events, session: events}
    for column, frame in need.items():
        if column not in frame.columns:
            where = "assignments" if frame is assignments else "events"
            raise AbkitInputError(f"no column '{column}' in the {where}.", column=column)
    end = export_end if export_end is not None else events[timestamp].max()
    if end is None:
        raise AbkitInputError("no events: the export end cannot be taken from them.")
    if not isinstance(end, dt.datetime):
        raise AbkitInputError(f"the events' '{timestamp}' column must hold datetimes.")
    units = assignments.select(
        pl.col(unit), pl.col(variant), pl.col(assigned_at).alias("assigned_at")
    )
    span = (pl.col(timestamp) - pl.col("assigned_at")).dt.total_microseconds()
    dated = (
        events.filter(pl.col(timestamp) <= end)
        .join(units.select(unit, "assigned_at"), on=unit, how="inner")
        .with_columns((span // _US_PER_DAY).alias("_day"))
        .filter(pl.col("_day") >= 0)
    )
    first = pl.col("_day") < 7
    outputs = (first & (pl.col(event) == output_event)).sum()
    shares = (first & (pl.col(event) == share_event)).sum()
    sessions = pl.col(session).filter(first & pl.col(session).is_not_null()).n_unique()
    per_unit = dated.group_by(unit).agg(
        (pl.col("_day") == 1).any().cast(pl.Float64).alias("d1"),
        (pl.col("_day") == 7).any().cast(pl.Float64).alias("d7"),
        pl.col("_day").filter(first).n_unique().cast(pl.Float64).alias("active_days_7d"),
        pl.when(outputs > 0).then(shares / outputs).otherwise(0.0).alias("share_rate"),
        pl.when(sessions > 0).then(outputs / sessions).otherwise(0.0).alias("session_depth"),
        (pl.col("_day") == outcome_day).any().cast(pl.Float64).alias("d30"),
    )

    def complete(last_day: int) -> pl.Expr:
        return pl.col("assigned_at") <= pl.lit(end - (last_day + 1) * dt.timedelta(days=1))

    joined = units.join(per_unit, on=unit, how="left", maintain_order="left")
    return joined.with_columns(
        *(pl.when(complete(7)).then(pl.col(s).fill_null(0.0)).alias(s) for s in SIGNALS),
        pl.when(complete(outcome_day)).then(pl.col("d30").fill_null(0.0)).alias("d30"),
    )


def forecast_from_units(
    units: pl.DataFrame,
    control: str,
    treatment: str,
    *,
    variant: str = "variant",
    signals: Sequence[str] = SIGNALS,
    log_signals: Sequence[str] = LOG_SIGNALS,
    outcome: str = "d30",
    training: pl.DataFrame | None = None,
    **options: Any,
) -> SurrogateForecast:
    """The surrogate forecast of ``treatment``'s D30 effect against ``control`` from a
    per-unit frame (as :func:`week_one_units` builds it): the ``signals`` columns
    (``log_signals`` among them entering as log(1 + value)), the ``outcome`` column
    (0 / 1, null while not matured) and the ``variant`` column.  ``training``, a frame
    with the same signal and outcome columns, replaces the control arm's matured units
    as the training table; ``options`` go to
    :func:`abkit.stats.surrogate.surrogate_index` (``alpha``, ``resamples``,
    ``folds``, ``seed``).

    Examples
    --------
    >>> import polars as pl
    >>> from abkit.inputs.surrogate_units import forecast_from_units
    >>> units = pl.DataFrame({
    ...     "variant": ["control"] * 100 + ["treatment"] * 100,
    ...     "d1": [0.0] * 50 + [1.0] * 50 + [0.0] * 40 + [1.0] * 60,
    ...     "d30": [1.0] * 10 + [0.0] * 40 + [1.0] * 30 + [0.0] * 20 + [None] * 100})
    >>> res = forecast_from_units(units, "control", "treatment", signals=["d1"],
    ...                           log_signals=[], resamples=50)
    >>> round(res.estimate, 12)
    0.04
    """
    missing = [c for c in (variant, outcome, *signals) if c not in units.columns]
    if missing:
        raise AbkitInputError(f"the units frame has no column {missing[0]!r}.", column=missing[0])
    arms = units.filter(pl.col(variant).is_in([control, treatment]))
    if training is not None:
        absent = [c for c in (outcome, *signals) if c not in training.columns]
        if absent:
            raise AbkitInputError(
                f"the training table has no column {absent[0]!r}.", column=absent[0]
            )
    return surrogate_index(
        _matrix(arms, signals, log_signals),
        (arms[variant] == treatment).to_numpy(),
        arms[outcome].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        names=[f"log(1 + {s})" if s in log_signals else s for s in signals],
        training=None
        if training is None
        else (
            _matrix(training, signals, log_signals),
            training[outcome].cast(pl.Float64).fill_null(np.nan).to_numpy(),
        ),
        **options,
    )


def _matrix(frame: pl.DataFrame, signals: Sequence[str], log_signals: Sequence[str]) -> np.ndarray:
    """The signals as a float matrix (NaN where null), ``log_signals`` as log(1 + v)."""
    columns = [
        pl.col(s).cast(pl.Float64).log1p() if s in log_signals else pl.col(s).cast(pl.Float64)
        for s in signals
    ]
    return frame.select(columns).fill_null(np.nan).to_numpy()


def forecast_metrics(spec: ExperimentSpec, metrics: Sequence[MetricSpec]) -> list[MetricSpec]:
    """The retention metrics to forecast from the first week.

    ``[surrogate] metrics`` names them (each must be a retention metric among
    ``metrics`` whose window ends after day 7); by default, every retention metric
    whose window ends after the first week.  ``[surrogate] decide`` must name some of
    them, none a guardrail (whose decision is a test against its margin).
    """
    later = [
        m
        for m in metrics
        if _retention(m) and (m.kind.maturity_day(m) or 0) > LAST_DAY and not m.kind.account_level
    ]
    chosen = (
        later if spec.surrogate.metrics is None else _named(spec.surrogate.metrics, metrics, later)
    )
    names = {m.name: m for m in chosen}
    for name in spec.surrogate.decide:
        metric = names.get(name)
        if metric is None or metric.guardrail:
            why = "a guardrail, decided against its margin" if metric else "not forecast"
            raise AbkitInputError(
                f"[surrogate] decide names '{name}', which is {why}: the forecast can decide "
                "a retention metric it forecasts, past the first week.",
                hint="Name such a metric, or leave [surrogate] decide out (the forecast is "
                "then shown beside the metric's own decision).",
            )
    return chosen


def _named(
    named: Sequence[str], metrics: Sequence[MetricSpec], later: list[MetricSpec]
) -> list[MetricSpec]:
    """The metrics ``[surrogate] metrics`` names, each checked."""
    by_name = {m.name: m for m in metrics}
    for name in named:
        metric = by_name.get(name)
        if metric is None or metric not in later:
            what = (
                "is not a metric of the analysis"
                if metric is None
                else "is not a retention metric whose window ends after day 7"
            )
            raise AbkitInputError(
                f"[surrogate] metrics names '{name}', which {what}: the surrogate forecast "
                "predicts long-run retention from the first week's signals.",
                hint="Name retention metrics such as { type = 'retention', day = 30 }, or "
                "leave [surrogate] metrics out to forecast every such metric.",
            )
    return [by_name[name] for name in named]


def _retention(metric: MetricSpec) -> bool:
    """A 0 / 1 outcome of a window of days after assignment (a retention metric): a
    rate whose value waits for its window to end."""
    return metric.kind.is_rate and metric.kind.maturity_day(metric) is not None


def training_table(spec: ExperimentSpec, metrics: Sequence[MetricSpec]) -> pl.DataFrame | None:
    """``[surrogate] training``: a per-unit table of a past export with the signal
    columns and one column per forecast metric (its outcome, 0 / 1, empty while not
    matured), read and checked (the signals alone when ``metrics`` is empty: the design
    checks them before the events are read)."""
    path = spec.surrogate.training
    if path is None:
        return None
    table = read_table(path)
    frame = table.frame.collect()
    needed = [*SIGNALS, *(m.name for m in metrics)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise AbkitInputError(
            f"the surrogate training table has no column '{missing[0]}' (it needs the "
            f"first-week signals {', '.join(SIGNALS)} and one column per forecast metric, "
            f"{', '.join(m.name for m in metrics)}).",
            source=table.label,
            column=missing[0],
            hint="Build it from a past export with abkit.surrogate_training_table.",
        )
    return frame
