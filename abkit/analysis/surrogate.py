"""The surrogate forecast of long-run retention beside a retention metric's result.

Which metrics are forecast (``[surrogate] metrics``; by default every retention metric
whose window ends after the first week), the training table of a past export, and the
forecast of each treatment from the unit table's first-week signals
(:mod:`abkit.engine.week_one`) by :func:`abkit.inputs.surrogate_units.forecast_from_units`.
The forecast never decides: it is shown beside the metric's own result, labelled with
its assumptions and validated on the cohorts matured in both arms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from abkit.analysis.decision import Decision, Outcome
from abkit.config import ExperimentSpec, MetricSpec
from abkit.engine.week_one import COLUMNS
from abkit.errors import AbkitInputError
from abkit.inputs.surrogate_units import forecast_from_units, forecast_metrics
from abkit.io.readers import Data
from abkit.metrics.base import value_column
from abkit.names import VARIANT
from abkit.stats.distributions import norm_sf
from abkit.stats.surrogate import SURROGATE_METHOD, SurrogateForecast


def forecasts(
    units: pl.DataFrame,
    metrics: Sequence[MetricSpec],
    spec: ExperimentSpec,
    variants: tuple[str, ...],
    training: pl.DataFrame | None,
) -> tuple[dict[str, dict[str, SurrogateForecast]], dict[str, list[str]]]:
    """Per forecast metric and treatment, the forecast of its effect; and per metric
    the notes on what was not forecast and why.

    ``units`` is the unit table with VARIANT, the first-week signal columns and each
    metric's own column (null where its window has not matured)."""
    frame = units.select(
        VARIANT,
        *(pl.col(column).alias(name) for name, column in COLUMNS.items()),
        *(pl.col(value_column(m)).cast(pl.Float64).alias(m.name) for m in metrics),
    )
    out: dict[str, dict[str, SurrogateForecast]] = {}
    notes: dict[str, list[str]] = {}
    for metric in metrics:
        matured = frame.get_column(metric.name).is_not_null().sum()
        if spec.surrogate.metrics is None and matured == frame.height:
            continue  # matured for every unit: nothing to forecast
        found = {}
        for variant in variants[1:]:
            try:
                found[variant] = forecast_from_units(
                    frame,
                    spec.control,
                    variant,
                    variant=VARIANT,
                    outcome=metric.name,
                    training=training,
                    alpha=spec.alpha,
                    interval=spec.surrogate.interval,
                    resamples=spec.surrogate.resamples,
                    seed=spec.surrogate.seed,
                )
            except AbkitInputError as exc:
                notes.setdefault(metric.name, []).append(
                    f"surrogate forecast of '{variant}' not computable: {exc.problem}"
                )
        if found:
            out[metric.name] = found
    return out, notes


def surrogate_training_table(
    assignments: Data, events: Data, config: Any = None, **overrides: Any
) -> pl.DataFrame:
    """The training table of the surrogate forecast, from a past export whose long-run
    retention has matured: one row per unit with its first-week signals and one column
    per forecast metric (0 / 1, null where its window had not ended).

    The export is read and reduced as :func:`abkit.analyze` reads it (the same
    exclusions, de-duplication and days after assignment), on any engine.  Give the
    result, saved as Parquet or CSV, as ``[surrogate] training`` (or
    ``--surrogate-training``) of a later experiment: its model of the outcome on the
    signals is then trained on these units instead of the control arm's matured ones.

    Parameters
    ----------
    assignments, events
        The past export (paths or frames, as :func:`abkit.analyze` takes them).
    config
        Its configuration (a TOML path, a dict or None): the forecast metrics are
        those of :func:`forecast_metrics`, by default every retention metric whose
        window ends after day 7 (D30 among the default metrics).
    **overrides
        Column names and the control's name, as :func:`abkit.analyze` takes them
        (``unit``, ``variant``, ``control``, ``timestamp``, ``assigned_at``,
        ``session``, ``event``, ...).

    Returns
    -------
    polars.DataFrame
        Columns :data:`~abkit.inputs.surrogate_units.SIGNALS` and the forecast metrics'
        names.

    Raises
    ------
    AbkitInputError
        When the configuration has no metric to forecast.

    Examples
    --------
    >>> import abkit
    >>> from abkit.analysis.surrogate import surrogate_training_table
    >>> past = abkit.simulate(users=1_000, days=40, enrol_days=5, seed=3)
    >>> table = surrogate_training_table(past.assignments, past.events)
    >>> table.columns
    ['d1', 'd7', 'active_days_7d', 'share_rate', 'session_depth', 'd30_retention']
    >>> table.height, table["d30_retention"].null_count()
    (1000, 0)
    """
    from abkit.config import load_config, with_columns, with_input
    from abkit.designs import Users
    from abkit.engine.backend import scratch
    from abkit.inputs.prepare import prepare
    from abkit.io.exclusions import Ledger

    keys = ("unit", "variant", "control", "account")
    columns = {k: overrides.pop(k) for k in keys if k in overrides}
    spec = with_input(with_columns(load_config(config), **columns), **overrides)
    with scratch():
        reduced = prepare(assignments, spec, Ledger(), Users(), events=events)
        metrics = forecast_metrics(spec, reduced.metrics)
        if not metrics or reduced.units is None:
            raise AbkitInputError(
                "the configuration has no retention metric whose window ends after day 7, "
                "so there is no long-run outcome to train the surrogate forecast on.",
                hint="Add one, such as { name = 'd30', type = 'retention', day = 30 }.",
            )
        units = reduced.units.table.rows("the surrogate training table")
    return units.select(
        *(pl.col(column).alias(name) for name, column in COLUMNS.items()),
        *(pl.col(value_column(m)).cast(pl.Float64).alias(m.name) for m in metrics),
    )


def forecast_decision(
    metric: MetricSpec, forecast: SurrogateForecast | None, alpha: float
) -> Decision:
    """A metric's decision made on its surrogate forecast (``[surrogate] decide``).

    Better or worse when the forecast's two-sided p-value, 2·(1 − Φ(|τ̂|/se)), is below
    α (the direction the metric's); no significant difference otherwise.  Not computable
    without a forecast, or when the validation on the matured cohorts disagrees with it:
    a decision must not rest on a surrogacy the data refute.

    Examples
    --------
    >>> from abkit.analysis.surrogate import forecast_decision
    >>> from abkit.config import MetricSpec
    >>> d30 = MetricSpec(name="d30", type="retention", day=30)
    >>> forecast_decision(d30, None, 0.05).reason
    'no surrogate forecast was made for this metric'
    """
    method = SURROGATE_METHOD
    if forecast is None:
        return Decision(
            "not computable",
            "surrogate forecast",
            method,
            math.nan,
            (math.nan, math.nan),
            reason="no surrogate forecast was made for this metric",
        )
    method = forecast.method
    v = forecast.validation
    if v is not None and v.disagree:
        return Decision(
            "not computable",
            "surrogate forecast",
            method,
            math.nan,
            forecast.ci,
            reason=(
                "the forecast's validation on the matured cohorts disagrees with it "
                f"(gap p = {v.p_value:.4f}): surrogacy is in doubt"
            ),
        )
    p = 2.0 * float(norm_sf(abs(forecast.estimate) / forecast.se)) if forecast.se > 0 else math.nan
    outcome: Outcome = "no significant difference"
    if p < alpha:
        good = (forecast.estimate > 0) == metric.higher_is_better
        outcome = "better" if good else "worse"
    return Decision(outcome, "surrogate forecast", method, p, forecast.ci)
