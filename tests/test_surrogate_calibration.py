"""Monte Carlo calibration of the surrogate forecast of D30 on simulated exports with
known D30 effects (the simulator's week-one retention model, abkit.dev.simulate):

* surrogacy holds (the treatment moves D30 through the first week): the forecast
  interval covers the true D30 effect at about its level, and the validation rarely
  flags a disagreement (its false-alarm rate, about α);
* surrogacy fails (the treatment moves D30 directly): the forecast misses the true
  effect, and the validation on the matured cohorts flags it;
* the forecast made on day 35 (the first week of every unit, D30 of the early
  cohorts) against the realised D30 effect of the same export once every unit has
  matured (day 43).

Replications: ABKIT_MC_REPS / 100 per check (20 in CI, 200 for the docs' tables with
ABKIT_MC_REPS=20000).  Each replication is a whole export of 8,000 users.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as st

from abkit.dev.simulate import START, SimulationSpec, simulate, true_d30_effects
from abkit.inputs.surrogate_units import forecast_from_units, week_one_units
from tests.conftest import mc_reps

pytestmark = pytest.mark.calibration
ALPHA = 0.05
BASE = SimulationSpec(users=8_000, days=35, enrol_days=10, d30_from_week_one=True)
THROUGH = replace(BASE, retention_lift=0.1, share_lift=0.3, depth_lift=0.1)
DIRECT = replace(BASE, d30_direct_lift=0.6)


def _reps() -> int:
    return max(10, mc_reps() // 100)


def _band(reps: int, rate: float) -> tuple[float, float]:
    return st.binom.ppf(0.005, reps, rate) / reps, st.binom.ppf(0.995, reps, rate) / reps


INTERVALS = ("bootstrap", "delta")


def _forecasts(spec: SimulationSpec, reps: int, seed: int):
    """Per simulated export, the forecast with each way of finding its interval (the
    bootstrap refitting the model, and the delta method on the units' influence)."""
    for r in range(reps):
        export = simulate(replace(spec, seed=seed + r))
        units = week_one_units(export.assignments, export.events)
        yield {
            interval: forecast_from_units(
                units, "control", "treatment", alpha=ALPHA, seed=r, interval=interval
            )
            for interval in INTERVALS
        }


def test_forecast_covers_the_true_d30_effect_when_surrogacy_holds():
    reps = _reps()
    truth = true_d30_effects(THROUGH).effect("treatment")
    covered = dict.fromkeys(INTERVALS, 0)
    flagged = dict.fromkeys(INTERVALS, 0)
    estimates = []
    for found in _forecasts(THROUGH, reps, 10_000):
        for interval, res in found.items():
            assert res.validation is not None
            covered[interval] += res.ci[0] <= truth <= res.ci[1]
            flagged[interval] += res.validation.disagree
        estimates.append(found["delta"].estimate)
    lo, _ = _band(reps, 1 - ALPHA)
    _, hi = _band(reps, ALPHA)
    for interval in INTERVALS:
        print(
            f"\nsurrogacy holds ({interval}): reps {reps}, true effect {truth:+.4f}, mean "
            f"forecast {np.mean(estimates):+.4f} (sd {np.std(estimates):.4f}), coverage "
            f"{covered[interval] / reps:.3f}, validation flags {flagged[interval] / reps:.3f}"
        )
        # two-sided: an interval that covers far more often than 95 % is too wide
        assert lo <= covered[interval] / reps <= _band(reps, 1 - ALPHA)[1]
        assert _band(reps, ALPHA)[0] <= flagged[interval] / reps <= hi
    assert abs(np.mean(estimates) - truth) < 4 * np.std(estimates) / np.sqrt(reps) + 1e-3


def test_validation_flags_a_treatment_that_acts_on_d30_directly():
    reps = _reps()
    truth = true_d30_effects(DIRECT).effect("treatment")
    covered = dict.fromkeys(INTERVALS, 0)
    flagged = dict.fromkeys(INTERVALS, 0)
    for found in _forecasts(DIRECT, reps, 20_000):
        for interval, res in found.items():
            assert res.validation is not None
            covered[interval] += res.ci[0] <= truth <= res.ci[1]
            flagged[interval] += res.validation.disagree and res.validation.gap > 0
    for interval in INTERVALS:
        print(
            f"\nsurrogacy fails ({interval}): reps {reps}, true effect {truth:+.4f} (all "
            f"direct), forecast coverage {covered[interval] / reps:.3f}, validation flags "
            f"{flagged[interval] / reps:.3f}"
        )
        assert covered[interval] / reps < 0.2  # the forecast alone is wrong …
        assert flagged[interval] / reps >= 0.8  # … and the validation says so


def test_forecast_on_day_35_against_the_realised_effect_on_day_43():
    """The same exports, read twice: on day 35 (the forecast: every unit's first week,
    the D30 of units assigned in the first four days) and on day 43 (every unit's D30
    has matured: the realised effect, a two-proportion Wald interval)."""
    reps = _reps() // 2
    spec = replace(THROUGH, days=43)
    truth = true_d30_effects(spec).effect("treatment")
    forecast, realised, agree = [], [], 0
    for r in range(reps):
        export = simulate(replace(spec, seed=30_000 + r))
        early = week_one_units(
            export.assignments, export.events, export_end=START + dt.timedelta(days=35)
        )
        res = forecast_from_units(early, "control", "treatment", alpha=ALPHA, seed=r)
        late = week_one_units(export.assignments, export.events)
        assert late["d30"].null_count() == 0
        y = {
            v: late.filter(late["variant"] == v)["d30"].to_numpy() for v in ("control", "treatment")
        }
        effect = y["treatment"].mean() - y["control"].mean()
        se = np.sqrt(sum(v.var() / v.size for v in y.values()))
        forecast.append(res.estimate)
        realised.append(effect)
        agree += abs(res.estimate - effect) <= st.norm.ppf(1 - ALPHA / 2) * np.hypot(res.se, se)
    f, r_ = np.array(forecast), np.array(realised)
    print(
        f"\nday 35 forecast vs day 43 realised: reps {reps}, true effect {truth:+.4f}, mean "
        f"forecast {f.mean():+.4f} (rmse to truth {np.sqrt(np.mean((f - truth) ** 2)):.4f}), "
        f"mean realised {r_.mean():+.4f} (rmse {np.sqrt(np.mean((r_ - truth) ** 2)):.4f}), "
        f"within their combined interval {agree / reps:.3f}, same sign "
        f"{np.mean(np.sign(f) == np.sign(r_)):.3f}"
    )
    assert agree / reps >= 0.8
    assert abs(np.mean(f - r_)) < 4 * np.std(f - r_) / np.sqrt(reps) + 1e-3
