"""``abkit power``: how many users (B2C) or accounts (B2B) an effect needs.

σ is taken from the data (the control and treatment arms of an export, pooled) or
given.  In B2B mode it is the between-account standard deviation of each account's
linearised contribution to the metric, so it already contains the heavy tail of
account sizes and the intra-account correlation that user-level formulas miss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from abkit.config import load_config, with_mode
from abkit.errors import AbkitInputError
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data
from abkit.stats.cluster import USER_WEIGHTED, AccountArm
from abkit.stats.fixed_horizon import ratio_variance
from abkit.stats.power import detectable_effect, power_at, units_needed


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [
            f"Power analysis ({self.mode.upper()}, two-sided t-test, alpha {self.alpha}): "
            f"{self.needed_per_arm:,} {self.unit} per arm for {self.target_power:.0%} power to "
            f"detect an effect of {self.effect:+.4g} (baseline {self.baseline:.4g}, "
            f"{self.effect / self.baseline:+.1%} relative)."
            if self.baseline
            else f"{self.needed_per_arm:,} {self.unit} per arm.",
            f"Standard deviation per {self.unit[:-1]}: {self.sd:.4g} ({self.source}).",
        ]
        if self.current_per_arm is not None:
            lines.append(
                f"With the {self.current_per_arm:,.0f} {self.unit} per arm in the data: power "
                f"{self.power_now:.0%}; the smallest effect detectable with "
                f"{self.target_power:.0%} power is {self.detectable_now:.4g}."
            )
        return "\n".join(lines)


def _account_sd(arms: list[AccountArm], weighting: str) -> tuple[float, float]:
    """Pooled sd of the accounts' linearised contributions, and the mean arm size."""
    ss = dof = 0.0
    for arm in arms:
        r, w = arm.weights(weighting)
        if weighting == USER_WEIGHTED:
            u = (r - (w * r).sum() / w.sum()) * w / w.mean()  # (X_g − R·Y_g)/Ȳ
        else:
            u = r - r.mean()
        ss += float((u**2).sum())
        dof += u.size - 1
    return math.sqrt(ss / dof) if dof > 0 else math.nan, float(np.mean([a.accounts for a in arms]))


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
    alpha: float = 0.05,
    power: float = 0.8,
) -> PowerResult:
    """Units (B2C) or accounts (B2B) per arm needed to detect ``effect``."""
    spec = load_config(config)
    if mode is not None and sd is None:
        spec = with_mode(spec, mode)
    b2b = (mode or spec.mode) == "b2b"
    current = None
    source = "given"
    if sd is None:
        if data is None:
            raise AbkitInputError(
                "give the data to estimate the standard deviation from, or "
                "--sd (and --baseline for a relative effect)."
            )
        from abkit.prepare import prepare

        prepared = prepare(data, spec, Ledger(), events=events)
        names = [m.name for m in prepared.metrics]
        name = metric or names[0]
        if name not in names:
            raise AbkitInputError(f"metric '{name}' is not analysed; metrics: {', '.join(names)}.")
        chosen = next(m for m in prepared.metrics if m.name == name)
        if b2b:
            sd, current = _account_sd(list(prepared.accounts[name].values()), spec.b2b.weighting)
            base = prepared.accounts[name][spec.control].estimate(spec.b2b.weighting)
            source = f"between-account spread of '{name}' in the data"
        else:
            arms = list(prepared.arms[name].values())
            per_unit = [a.n * ratio_variance(a) if chosen.kind.is_ratio else a.var for a in arms]
            sd = math.sqrt(float(np.mean(per_unit)))
            current = float(np.mean([a.n for a in arms]))
            base = prepared.arms[name][spec.control].value
            source = f"per-user spread of '{name}' in the data"
        baseline = baseline if baseline is not None else base
        metric = name
    if relative:
        if not baseline:
            raise AbkitInputError("a relative effect needs a baseline: give --baseline.")
        effect = effect * baseline
    needed = units_needed(effect, sd, alpha, power)
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
        power_now=power_at(current, effect, sd, alpha) if current else None,
        detectable_now=detectable_effect(int(current), sd, alpha, power) if current else None,
        source=source,
    )
