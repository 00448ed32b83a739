"""``abkit power``: how many users (B2C) or accounts (B2B) an effect needs, and for how
many days the experiment must run.

σ is taken from the data (the control and treatment arms of an export, pooled), given,
or for a proportion implied by its baseline p and the effect δ,
σ² = (p(1 − p) + (p + δ)(1 − p − δ))/2 (the unpooled two-proportion variance).  In B2B
mode it is the between-account standard deviation of each account's linearised contribution to the
metric, so it already contains the heavy tail of account sizes and the intra-account
correlation that user-level formulas miss.

The plan then accounts for, in turn:

* **several arms**: each treatment is compared with the control at α/(arms − 1)
  (Bonferroni; Holm and Benjamini–Hochberg reject at least what it rejects, so the
  plan is conservative for them);
* **CUPED**: with ``[cuped]`` configured and data given, σ² shrinks by the variance
  reduction the covariates achieve on the data (:mod:`abkit.stats.cuped`);
* **sequential monitoring**: the sample the chosen method needs for the same power
  (:func:`~abkit.stats.power.sequential_units_needed`), and the inflation over the
  fixed-horizon sample;
* **duration**: with the daily arrivals of new units (from the data's assignment times,
  or given), the days of enrolment the sample takes, plus the metric's window (D30
  retention is known 31 days after the last unit enters): from the data's or the
  config's metric, or given (``window``, the CLI's ``--window``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from abkit.config import (
    ExperimentSpec,
    MetricSpec,
    load_config,
    with_columns,
    with_input,
    with_mode,
)
from abkit.designs import design_for, statistics_of
from abkit.errors import AbkitInputError
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data
from abkit.options import SequentialMethod
from abkit.stats.power import (
    detectable_effect,
    power_at,
    sequential_units_needed,
    units_needed,
)

DEFAULT_LOOKS = 30  # daily looks over a month, for the always-valid methods


@dataclass(frozen=True)
class PowerResult:
    mode: str
    unit: str  # "users" or "accounts"
    metric: str | None
    baseline: float
    sd: float
    effect: float  # absolute
    alpha: float
    target_power: float
    needed_per_arm: int
    current_per_arm: float | None
    power_now: float | None
    detectable_now: float | None
    source: str
    arms: int = 2
    alpha_per_comparison: float = math.nan
    cuped_variance_reduction: float | None = None
    sequential: str | None = None
    looks: int | None = None
    fixed_per_arm: int | None = None  # the fixed-horizon sample, before sequential inflation
    daily_arrivals: float | None = None
    window_days: int = 0
    days_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        test = (
            f"{self.sequential} with {self.looks} looks" if self.sequential else "two-sided t-test"
        )
        level = (
            f"alpha {self.alpha} / {self.arms - 1} comparisons = {self.alpha_per_comparison:.4g}"
            if self.arms > 2
            else f"alpha {self.alpha}"
        )
        lines = [
            f"Power analysis ({self.mode.upper()}, {test}, {level}): "
            f"{self.needed_per_arm:,} {self.unit} per arm for {self.target_power:.0%} power to "
            f"detect an effect of {self.effect:+.4g}"
            + (
                f" (baseline {self.baseline:.4g}, {self.effect / self.baseline:+.1%} relative)."
                if self.baseline and math.isfinite(self.baseline)
                else "."
            ),
            f"Standard deviation per {self.unit[:-1]}: {self.sd:.4g} ({self.source}).",
        ]
        if self.cuped_variance_reduction is not None:
            lines.append(
                f"CUPED: the covariates remove {self.cuped_variance_reduction:.1%} of the "
                "variance in the data; the sample above is for the adjusted analysis."
            )
        if self.sequential and self.fixed_per_arm:
            lines.append(
                f"Monitoring costs {self.needed_per_arm / self.fixed_per_arm:.2f}x the "
                f"fixed-horizon sample ({self.fixed_per_arm:,} {self.unit} per arm)."
            )
        if self.days_needed is not None and self.daily_arrivals:
            enrol = self.days_needed - self.window_days
            window = (
                f" days of enrolment + {self.window_days} days for the metric's window = "
                f"{self.days_needed} days"
                if self.window_days
                else " days"
            )
            lines.append(
                f"Duration: {self.needed_per_arm * self.arms:,} {self.unit} at "
                f"{self.daily_arrivals:,.0f} new per day take {enrol}{window}."
            )
        if self.current_per_arm is not None and self.power_now is not None:
            lines.append(
                f"With the {self.current_per_arm:,.0f} {self.unit} per arm in the data: "
                f"fixed-horizon power {self.power_now:.0%}; the smallest effect detectable "
                f"with {self.target_power:.0%} power is {self.detectable_now:.4g}."
            )
        return "\n".join(lines)


def _from_data(
    data: Data, spec: ExperimentSpec, metric: str | None, events: Data | None
) -> dict[str, Any]:
    """σ, the current arm size, the baseline, the arms, CUPED's variance reduction and
    the daily arrivals, from an export."""
    design, prepared, stats = statistics_of(data, spec, Ledger(), events=events)
    names = [m.name for m in prepared.metrics]
    name = metric or names[0]
    if name not in names:
        raise AbkitInputError(f"metric '{name}' is not analysed; metrics: {', '.join(names)}.")
    chosen: MetricSpec = next(m for m in prepared.metrics if m.name == name)
    out: dict[str, Any] = {"metric": name, "arms": len(prepared.variants)}
    out |= design.spread(chosen, stats, spec)
    if prepared.enrolment is not None:
        first, last = prepared.enrolment
        days = max((last - first).total_seconds() / 86_400.0, 1.0)
        out["arrivals"] = sum(stats.unit_counts.values()) / days
    out["window"] = _window(chosen)
    return out


def _window(metric: MetricSpec) -> int:
    """Days after assignment before ``metric`` is known: its last day + 1 (D7: 8; D0: 1),
    0 for a metric known at once."""
    last = metric.kind.maturity_day(metric)
    return 0 if last is None else last + 1


def _config_window(spec: ExperimentSpec, metric: str | None) -> int:
    """The days a configured metric (``metric``, else the config's first) needs after a
    unit's assignment before it is known (D7 retention: 8); 0 without one."""
    chosen = next((m for m in spec.metrics if metric in (None, m.name)), None)
    if chosen is None:
        if metric is not None and spec.metrics:
            names = ", ".join(m.name for m in spec.metrics)
            raise AbkitInputError(f"metric '{metric}' is not in the config; metrics: {names}.")
        return 0
    return _window(chosen)


def power_analysis(
    data: Data | None = None,
    config: Any = None,
    *,
    events: Data | None = None,
    metric: str | None = None,
    effect: float,
    relative: bool = False,
    mode: str | None = None,
    sd: float | None = None,
    baseline: float | None = None,
    proportion: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int | None = None,
    sequential: SequentialMethod | None = None,
    looks: int | None = None,
    daily_arrivals: float | None = None,
    window: int | None = None,
    **columns: str | None,
) -> PowerResult:
    """Units (B2C) or accounts (B2B) per arm needed to detect ``effect``, and the days
    it takes.

    The fixed-horizon sample size per arm for a two-sided level-α test with power
    1 − β is n = 2 (z₁₋α/₂ + z₁₋β)² σ² / δ² in the normal approximation; abkit solves
    the t-reference power equation exactly (:func:`abkit.stats.power.units_needed`),
    divides σ² by 1 − ρ² for CUPED, splits α over the treatments by the config's
    correction and inflates n for a sequential design (see the module docstring).

    Parameters
    ----------
    data, config, events
        An export to estimate σ (and the baseline, CUPED's ρ² and the daily arrivals)
        from, as :func:`abkit.analyze` reads it; or None when ``sd`` or ``proportion``
        gives σ.
    metric
        The metric to size (default: the config's or the export's first).
    effect
        The smallest effect worth detecting: absolute, or a fraction of the baseline
        with ``relative``.
    mode
        ``"b2c"`` (users are the units) or ``"b2b"`` (accounts; σ is the between-account
        spread).  Default: the config's.
    sd, baseline, proportion
        σ given directly; the control's value; ``proportion`` takes σ from the Bernoulli
        variances of ``baseline`` and ``baseline + effect``.
    alpha, power
        Two-sided level and target power.
    arms
        Number of arms (default: the data's, else 2).
    sequential, looks
        ``"msprt"``, ``"cs"`` or ``"gst"`` and its number of looks (default: the
        config's).
    daily_arrivals
        New units per day, for the duration (default: the data's assignment times).
    window
        Days after the last unit's assignment before the metric is known, added to the
        duration (a D7 retention: 8); by default the metric's own.
    **columns
        The export's own column names as in :func:`abkit.analyze` (``control``,
        ``unit``, ``variant``, ``account`` and the ``[input]`` keys).

    Returns
    -------
    PowerResult
        Units per arm needed, the power and smallest detectable effect at the data's
        current size, and the days it takes; ``str()`` says it in words.

    References
    ----------
    Cohen, *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., 1988;
    Deng, Xu, Kohavi & Walker, "Improving the sensitivity of online controlled
    experiments by utilizing pre-experiment data", WSDM 2013 (the 1 − ρ² factor).

    Examples
    --------
    >>> import abkit
    >>> plan = abkit.power_analysis(effect=0.02, sd=0.4)
    >>> plan.needed_per_arm, plan.unit
    (6281, 'users')
    >>> import math
    >>> math.ceil(2 * (1.959964 + 0.841621) ** 2 * 0.4**2 / 0.02**2)  # the normal formula
    6280
    >>> rate = abkit.power_analysis(effect=0.05, relative=True, baseline=0.2, proportion=True)
    >>> rate.needed_per_arm
    25581
    """
    if not math.isfinite(effect) or effect == 0:
        raise AbkitInputError(f"--effect must be a non-zero number, got {effect:g}.")
    for name, value in (("--alpha", alpha), ("--power", power)):
        if not 0 < value < 1:
            raise AbkitInputError(f"{name} must lie between 0 and 1, got {value:g}.")
    if sd is not None and not (math.isfinite(sd) and sd > 0):
        raise AbkitInputError(f"--sd must be a positive number, got {sd:g}.")
    if proportion and not relative and abs(effect) >= 1:
        raise AbkitInputError(
            f"--effect {effect:g} with --proportion is an absolute change of the rate by "
            f"{effect:g} ({effect * 100:g} percentage points), which no proportion can make. "
            f"For {effect:g} percentage points give --effect {effect / 100:g}; for a "
            f"{effect:g} % relative lift give --effect {effect / 100:g} --relative."
        )
    if window is not None and window < 0:
        raise AbkitInputError(f"--window must be 0 or more days, got {window}.")
    spec = load_config(config)
    experiment = {k: columns.pop(k, None) for k in ("control", "unit", "variant", "account")}
    spec = with_input(with_columns(spec, **experiment), **columns)
    if mode is not None and sd is None:
        spec = with_mode(spec, mode)
    b2b = design_for(with_mode(spec, mode) if mode is not None else spec).needs_accounts
    found: dict[str, Any] = {}
    source = "given"
    if sd is None and proportion:
        if baseline is None or not 0 < baseline < 1:
            raise AbkitInputError("a proportion needs its baseline rate in (0, 1): --baseline.")
        # the two arms' Bernoulli variances averaged, the treatment's at the planned effect
        treated = baseline + (effect * baseline if relative else effect)
        if not 0 < treated < 1:
            raise AbkitInputError(f"the treatment's rate would be {treated:.4g}, outside (0, 1).")
        sd = math.sqrt((baseline * (1 - baseline) + treated * (1 - treated)) / 2)
        source = "Bernoulli variances of the baseline and of baseline + effect, averaged"
    if sd is None:
        if data is None:
            raise AbkitInputError(
                "give the data to estimate the standard deviation from, --sd (and "
                "--baseline for a relative effect), or --proportion with --baseline."
            )
        found = _from_data(data, spec, metric, events)
        sd, source, metric = found["sd"], found["source"], found["metric"]
        baseline = baseline if baseline is not None else found["baseline"]
    assert sd is not None
    if not (math.isfinite(sd) and sd > 0):
        raise AbkitInputError(
            f"the standard deviation of '{metric}' in the data is {sd:g}: the metric does not "
            "vary there, so no sample size follows from it.",
            hint="Give --sd (and --baseline), or size another metric (--metric).",
        )
    if relative:
        if not baseline:
            raise AbkitInputError(
                "a relative effect needs a non-zero baseline: give --baseline (the control "
                f"value){', not 0' if baseline == 0 else ''}."
            )
        effect = effect * baseline
    arm_count = arms or found.get("arms") or len(spec.declared_variants or ()) or 2
    if arm_count < 2:
        raise AbkitInputError("an experiment needs at least 2 arms (--arms).")
    corrected = spec.correction != "none" and arm_count > 2
    alpha_each = alpha / (arm_count - 1) if corrected else alpha
    reduction = found.get("cuped")
    sd_plan = sd * math.sqrt(1.0 - reduction) if reduction is not None else sd
    fixed = units_needed(effect, sd_plan, alpha_each, power)
    method = sequential or spec.sequential.method
    looks_planned = looks or (
        len(spec.sequential.looks) if spec.sequential.looks and method == "gst" else None
    )
    looks_planned = looks_planned or (5 if method == "gst" else DEFAULT_LOOKS)
    needed = (
        sequential_units_needed(
            method, effect, sd_plan, alpha_each, power, looks_planned, spec.sequential.spending
        )
        if method is not None
        else fixed
    )
    arrivals = daily_arrivals or found.get("arrivals")
    if window is None:
        window = int(found["window"]) if "window" in found else _config_window(spec, metric)
    days = math.ceil(needed * arm_count / arrivals) + window if arrivals else None
    current = found.get("current")
    return PowerResult(
        mode="b2b" if b2b else "b2c",
        unit="accounts" if b2b else "users",
        metric=metric,
        baseline=float(baseline) if baseline is not None else math.nan,
        sd=float(sd),
        effect=float(effect),
        alpha=alpha,
        target_power=power,
        needed_per_arm=needed,
        current_per_arm=current,
        power_now=power_at(current, effect, sd_plan, alpha_each) if current else None,
        detectable_now=detectable_effect(int(current), sd_plan, alpha_each, power)
        if current
        else None,
        source=source,
        arms=arm_count,
        alpha_per_comparison=alpha_each,
        cuped_variance_reduction=reduction,
        sequential=method,
        looks=looks_planned if method else None,
        fixed_per_arm=fixed,
        daily_arrivals=arrivals,
        window_days=window,
        days_needed=days,
    )
