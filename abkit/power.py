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

With ``bayesian`` the plan also says how the Bayesian decision rule of
:mod:`abkit.stats.bayesian` (the ``[bayesian]`` prior, chance and tolerance) would decide
at the planned sample, by simulating the experiment many times
(:mod:`abkit.stats.bayesian_power`): P(ship) at the effect, P(ship) at no effect (the
rule's false-ship rate) and the mean realised loss of its decisions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
from abkit.stats.bayesian import FLAT_PRIOR, BayesRule, NormalPrior
from abkit.stats.bayesian_power import DEFAULT_SIMULATIONS, RuleSimulation, simulate_rule
from abkit.stats.power import (
    detectable_effect,
    power_at,
    sequential_units_needed,
    units_needed,
)

DEFAULT_LOOKS = 30  # daily looks over a month, for the always-valid methods


@dataclass(frozen=True)
class BayesianPlan:
    """How the Bayesian decision rule decides experiments of the planned size.

    Parameters
    ----------
    prior : str
        The prior of log(T/C) in words.
    prior_mean : float
        Its mean.
    prior_sd : float or None
        Its standard deviation; None for a flat prior.
    chance, tolerance : float
        The rule: ship when the chance to win ≥ ``chance`` and the expected loss of
        shipping ≤ ``tolerance`` (a share of control).
    lift : float
        The true relative effect simulated (T/C − 1).
    higher_is_better : bool
        The metric's good direction.
    model : str
        How each simulated experiment's arms are drawn.
    simulations, seed : int
        Simulated experiments per sample size, and their seed.
    sizes : tuple of RuleSimulation
        Per sample size: P(ship) at the effect and at no effect, and the expected loss.
    note : str or None
        What the plan leaves out (an archive's learnt prior).
    """

    prior: str
    prior_mean: float
    prior_sd: float | None
    chance: float
    tolerance: float
    lift: float
    higher_is_better: bool
    model: str
    simulations: int
    seed: int
    sizes: tuple[RuleSimulation, ...]
    note: str | None = None

    def lines(self, unit: str) -> list[str]:
        """The plan in words, one line per sample size after a heading."""
        head = (
            f"Bayesian rule (ship when the chance to win >= {self.chance:g} and the expected "
            f"loss <= {self.tolerance * 100:g}% of control; {self.prior}), one look at the "
            f"end, {self.simulations:,} simulated experiments (seed {self.seed}):"
        )
        out = [head]
        for r in self.sizes:
            out.append(
                f"  {r.per_arm:,} {unit} per arm: P(ship) {r.ship:.1%} (± {r.ship_mc_se:.1%}) "
                f"at a {self.lift:+.2%} lift, {r.false_ship:.1%} (± {r.false_ship_mc_se:.1%}) "
                f"at no effect; expected loss {r.expected_loss * 100:.3g}% of control."
            )
        if self.note:
            out.append(f"  {self.note}")
        return out


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
    bayesian: BayesianPlan | None = None

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
        if self.bayesian is not None:
            lines += self.bayesian.lines(self.unit)
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
    out["rate"] = chosen.kind.is_rate
    out["higher_is_better"] = chosen.higher_is_better
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
    bayesian: bool = False,
    per_arm: Sequence[int] | None = None,
    simulations: int | None = None,
    seed: int = 0,
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
    bayesian
        Also simulate the Bayesian decision rule (as a ``[bayesian]`` section in the
        config does, whose prior, chance and tolerance it uses): P(ship) at the effect and
        at no effect, and the mean realised loss (:mod:`abkit.stats.bayesian_power`).
    per_arm
        The units per arm to simulate the rule at (default: the plan's, and the data's
        current size).
    simulations, seed
        Simulated experiments per size (default 20,000) and their seed.
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
    >>> bayes = abkit.power_analysis(
    ...     effect=0.05, relative=True, baseline=0.2, proportion=True, bayesian=True
    ... )
    >>> r = bayes.bayesian.sizes[0]
    >>> r.per_arm, round(r.ship, 2), round(r.false_ship, 2)
    (25581, 0.88, 0.05)
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
    plan = None
    asked = bayesian or bool(per_arm) or simulations is not None
    if asked and not (bayesian or spec.bayesian.enabled):
        raise AbkitInputError(
            "--per-arm and --simulations size the simulation of the Bayesian rule, which "
            "runs with --bayesian (or a [bayesian] section in the config): add --bayesian."
        )
    if asked or spec.bayesian.enabled:
        rate = proportion or bool(found.get("rate"))
        sizes = [needed]
        # the data's current size too, unless a rate's is read by the exact Beta-Binomial
        if current and not (rate and current < spec.bayesian.exact_below):
            sizes.append(int(current))
        try:
            plan = _bayesian_plan(
                spec,
                b2b=b2b,
                baseline=baseline,
                effect=effect,
                sd=None if rate else sd,
                higher_is_better=bool(found.get("higher_is_better", True)),
                sizes=sorted(set(per_arm or sizes)),
                simulations=simulations or DEFAULT_SIMULATIONS,
                seed=seed,
            )
        except AbkitInputError:
            if asked:
                raise
            # turned on by the config's [bayesian] section alone, for a plan the
            # simulation does not cover (B2B, no baseline): the plan without it
            plan = None
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
        bayesian=plan,
    )


def _bayesian_plan(
    spec: ExperimentSpec,
    *,
    b2b: bool,
    baseline: float | None,
    effect: float,
    sd: float | None,
    higher_is_better: bool,
    sizes: Sequence[int],
    simulations: int,
    seed: int,
) -> BayesianPlan:
    """The Bayesian rule of ``spec.bayesian`` simulated at each of ``sizes`` (units per
    arm); ``sd`` None draws the arms as Binomial proportions."""
    if b2b:
        raise AbkitInputError(
            "--bayesian plans the normal reading of log(T/C) over users, but in B2B mode "
            "abkit reads a metric Bayesianly by the Bayesian bootstrap over accounts, which "
            "this plan does not simulate: drop --bayesian, or plan with --mode b2c."
        )
    if baseline is None or not math.isfinite(baseline) or baseline == 0:
        raise AbkitInputError(
            "--bayesian simulates the estimate of log(T/C), which needs the control's value: "
            "give --baseline (or the data to take it from)."
        )
    lift = effect / baseline
    if not lift > -1:
        raise AbkitInputError(
            f"an effect of {effect:+.4g} on a baseline of {baseline:.4g} takes the treatment "
            "to zero or below, where log(T/C) (the Bayesian reading's scale) is undefined."
        )
    bayes = spec.bayesian
    if sd is None:
        if not (0 < baseline < 1 and 0 < baseline * (1 + lift) < 1):
            raise AbkitInputError(
                f"a proportion's baseline and treated rate must lie in (0, 1), got "
                f"{baseline:.4g} and {baseline * (1 + lift):.4g}."
            )
        small = [n for n in sizes if n < bayes.exact_below]
        if small:
            raise AbkitInputError(
                f"abkit reads a proportion with fewer than {bayes.exact_below} units per arm "
                f"by the exact Beta-Binomial ([bayesian] exact_below), which this plan does "
                f"not simulate; {small[0]:,} units per arm is below it: give --per-arm of "
                f"at least {bayes.exact_below}."
            )
    if not 100 <= simulations <= 2_000_000:
        raise AbkitInputError(f"--simulations must be 100-2000000, got {simulations}.")
    prior = FLAT_PRIOR if bayes.flat_prior else NormalPrior(bayes.prior_mean, bayes.prior_sd)
    words = (
        "flat prior" if not prior.proper else f"prior N({prior.mean:g}, {prior.sd:g}²) of log(T/C)"
    )
    rule = BayesRule(bayes.chance, bayes.tolerance)
    rows = tuple(
        simulate_rule(
            baseline,
            lift,
            n,
            sd=sd,
            prior=prior,
            rule=rule,
            higher_is_better=higher_is_better,
            simulations=simulations,
            seed=seed,
        )
        for n in sizes
    )
    note = (
        f"The archive's learnt prior ([bayesian] archive = {bayes.archive!r}) is not "
        "simulated; the configured prior is."
        if bayes.archive
        else None
    )
    return BayesianPlan(
        prior=words,
        prior_mean=prior.mean,
        prior_sd=prior.sd if prior.proper else None,
        chance=rule.chance,
        tolerance=rule.tolerance,
        lift=lift,
        higher_is_better=higher_is_better,
        model="Binomial arms" if sd is None else "normal units",
        simulations=simulations,
        seed=seed,
        sizes=rows,
        note=note,
    )
