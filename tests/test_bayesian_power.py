"""The Bayesian rule in planning (``abkit power --bayesian``): the simulated P(ship)
against its closed form, the false-ship rate of a flat prior at a 0.95 chance, more
units shipping more, the seed, the vectorised decision against abkit's scalar rule, and
the command line.

The closed form: for a fixed standard error s the rule's chance to win and expected loss
are monotone in the estimate δ̂ of log(T/C), so it ships exactly when δ̂ ≥ t(s), and with
δ̂ ~ N(θ, s²), P(ship) = Φ((θ − t)/s).  The threshold t is found here by bisection on
abkit's own verdict (``bayes_verdict`` of ``bayesian_comparison``), independently of the
boundary the simulation interpolates."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from abkit.errors import AbkitInputError
from abkit.power import power_analysis
from abkit.stats.bayesian import (
    DEFAULT_PRIOR,
    FLAT_PRIOR,
    BayesRule,
    NormalPrior,
    bayes_verdict,
    bayesian_comparison,
    relative_model,
)
from abkit.stats.bayesian_power import decide, decision_boundaries, log_ratio, simulate_rule
from abkit_cli.main import cli

SIMS = 100_000


def verdict_ships(est: float, se: float, prior: NormalPrior, rule: BayesRule) -> bool:
    """abkit's verdict on an estimate of log(T/C): arms C = 1, T = e^δ̂, Var(C) + Var(T)
    split so that the log ratio's standard error is ``se``."""
    t = math.exp(est)
    half = se * se / 2
    comp = bayesian_comparison(1.0, t, half, half * t * t, prior, "log")
    return bayes_verdict(comp.relative, rule) == "better"


def threshold(se: float, prior: NormalPrior, rule: BayesRule) -> float:
    """The smallest estimate the rule ships, by bisection on the verdict itself."""
    lo, hi = -1.0, 1.0
    assert not verdict_ships(lo, se, prior, rule) and verdict_ships(hi, se, prior, rule)
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if verdict_ships(mid, se, prior, rule) else (mid, hi)
    return hi


def planned_se(baseline: float, lift: float, n: int, sd: float | None) -> float:
    """The standard error of log(T/C) at the true arm values."""
    treated = baseline * (1 + lift)
    if sd is None:
        return math.sqrt((1 - baseline) / (n * baseline) + (1 - treated) / (n * treated))
    return math.sqrt(sd**2 / (n * baseline**2) + sd**2 / (n * treated**2))


CASES = [  # baseline, lift, per arm, sd (None: proportion), prior, rule
    (0.2, 0.05, 20_000, None, DEFAULT_PRIOR, BayesRule()),
    (0.12, 0.04, 30_000, None, NormalPrior(0.0, 0.05), BayesRule(0.9, 0.001)),
    (5.0, 0.03, 2_000, 2.0, DEFAULT_PRIOR, BayesRule()),
    # a tolerance that binds before the chance does
    (5.0, 0.04, 1_000, 2.0, FLAT_PRIOR, BayesRule(0.8, 0.001)),
]


@pytest.mark.parametrize(("baseline", "lift", "n", "sd", "prior", "rule"), CASES)
def test_ship_chance_equals_the_closed_form(baseline, lift, n, sd, prior, rule):
    sim = simulate_rule(baseline, lift, n, sd=sd, prior=prior, rule=rule, simulations=SIMS, seed=11)
    for true_lift, got, mc in (
        (lift, sim.ship, sim.ship_mc_se),
        (0.0, sim.false_ship, sim.false_ship_mc_se),
    ):
        se = planned_se(baseline, true_lift, n, sd)
        t = threshold(se, prior, rule)
        closed = float(stats.norm.cdf((math.log1p(true_lift) - t) / se))
        mc = max(mc, math.sqrt(closed * (1 - closed) / SIMS), 1 / SIMS)
        # Monte Carlo error, plus the ratio's and the estimated se's second-order effects
        assert abs(got - closed) < 4 * mc + 0.002, (true_lift, got, closed, mc)
    assert sim.expected_loss == pytest.approx((1 - sim.ship) * lift)
    assert sim.boundary_error < 1e-9


@pytest.mark.parametrize(("prior", "rule"), [(p, r) for *_, p, r in CASES])
def test_the_boundary_is_where_abkits_verdict_flips(prior, rule):
    for se in (0.005, 0.02, 0.06):
        bisected = threshold(se, prior, rule)
        solved = max(decision_boundaries(se, prior, rule))
        assert solved == pytest.approx(bisected, abs=1e-9)


def test_the_last_case_is_decided_by_its_tolerance():
    *_, (baseline, _, n, sd, prior, rule) = CASES
    chance, tolerance = decision_boundaries(planned_se(baseline, 0.0, n, sd), prior, rule)
    assert tolerance > chance


def test_with_a_flat_prior_the_chance_boundary_is_z_standard_errors():
    for se in (0.001, 0.01, 0.1):
        chance, _ = decision_boundaries(se, FLAT_PRIOR, BayesRule(0.95, 0.0025))
        assert chance == pytest.approx(stats.norm.ppf(0.95) * se, rel=1e-9)


def test_the_vectorised_decision_is_abkits_verdict_replicate_by_replicate():
    rng = np.random.default_rng(5)
    for prior, rule in [(p, r) for *_, p, r in CASES]:
        se = rng.uniform(0.01, 0.03, 400)
        # half the estimates within a hair of the boundary, the rest spread out
        near = np.array([max(decision_boundaries(s, prior, rule)) for s in se[:200]])
        est = np.concatenate([near + rng.normal(0, 1e-7, 200), rng.normal(0.03, 0.03, 200)])
        shipped, error = decide(est, se, prior, rule)
        assert error < 1e-9
        expected = [verdict_ships(e, s, prior, rule) for e, s in zip(est, se, strict=True)]
        assert shipped.tolist() == expected


def test_lower_is_better_ships_decreases():
    drop = simulate_rule(5.0, -0.03, 2000, sd=2.0, prior=DEFAULT_PRIOR, higher_is_better=False)
    rise = simulate_rule(5.0, 0.03, 2000, sd=2.0, prior=DEFAULT_PRIOR)
    assert drop.ship == pytest.approx(rise.ship, abs=0.03)
    assert drop.false_ship == pytest.approx(0.05, abs=0.01)


def test_the_log_ratio_arrays_equal_abkits_relative_model():
    rng = np.random.default_rng(2)
    c, t = rng.uniform(0.1, 5, 50), rng.uniform(0.1, 5, 50)
    vc, vt = rng.uniform(1e-4, 0.1, 50), rng.uniform(1e-4, 0.1, 50)
    est, se = log_ratio(c, vc, t, vt)
    for i in range(50):
        ref = relative_model(c[i], t[i], vc[i], vt[i], "log")
        assert (est[i], se[i]) == pytest.approx(ref, rel=1e-12)
    bad, _ = log_ratio(np.array([0.0, 1.0]), np.ones(2), np.array([1.0, -1.0]), np.ones(2))
    assert np.isnan(bad).all()


def test_false_ship_rate_of_a_flat_prior_at_095_is_five_percent_one_sided():
    plan = power_analysis(
        config={"bayesian": {"flat_prior": True, "chance": 0.95}},
        effect=0.05,
        relative=True,
        baseline=0.2,
        proportion=True,
        per_arm=[20_000],
        simulations=SIMS,
    )
    assert plan.bayesian is not None and plan.bayesian.prior_sd is None
    (row,) = plan.bayesian.sizes
    assert abs(row.false_ship - 0.05) < 4 * math.sqrt(0.05 * 0.95 / SIMS)


def test_more_units_ship_a_positive_effect_more_often():
    plan = power_analysis(
        effect=0.1, sd=2.0, baseline=5.0, bayesian=True, per_arm=[4000, 250, 1000, 16000]
    )
    assert plan.bayesian is not None
    rows = plan.bayesian.sizes
    assert [r.per_arm for r in rows] == [250, 1000, 4000, 16000]
    ships = [r.ship for r in rows]
    assert all(a < b for a, b in itertools.pairwise(ships)) and ships[0] < 0.5 < ships[-1]
    losses = [r.expected_loss for r in rows]
    assert losses == sorted(losses, reverse=True)


def test_the_same_seed_gives_the_same_numbers():
    kwargs = dict(effect=0.05, relative=True, baseline=0.2, proportion=True, bayesian=True)
    a, b = power_analysis(**kwargs, seed=3), power_analysis(**kwargs, seed=3)
    c = power_analysis(**kwargs, seed=4)
    assert a.bayesian == b.bayesian
    assert c.bayesian is not None and a.bayesian is not None
    assert c.bayesian.sizes[0].ship != a.bayesian.sizes[0].ship


def test_the_config_gives_the_prior_chance_and_tolerance():
    plan = power_analysis(
        config={"bayesian": {"prior_sd": 0.05, "chance": 0.9, "tolerance": 0.001}},
        effect=0.02,
        sd=1.0,
        baseline=2.0,
    )  # the [bayesian] section turns the reading on, as in abkit analyze
    assert plan.bayesian is not None
    assert (plan.bayesian.prior_sd, plan.bayesian.chance, plan.bayesian.tolerance) == (
        0.05,
        0.9,
        0.001,
    )
    assert "prior N(0, 0.05²)" in plan.to_text()
    assert power_analysis(effect=0.02, sd=1.0, baseline=2.0).bayesian is None


# --- the command line ---------------------------------------------------------------------

PLAN = ["power", "--proportion", "--baseline", "0.12", "--effect", "0.05", "--relative"]


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_cli_prints_the_bayesian_lines_and_json():
    out = run(*PLAN, "--bayesian", "--per-arm", "20000", "--per-arm", "60000")
    assert out.exit_code == 0, out.output
    assert "Bayesian rule (ship when the chance to win >= 0.95" in out.output
    assert "20,000 users per arm: P(ship) " in out.output
    assert "60,000 users per arm: P(ship) " in out.output
    assert "at no effect; expected loss " in out.output
    js = run(*PLAN, "--bayesian", "--seed", "2", "-f", "json")
    assert js.exit_code == 0, js.output
    plan = json.loads(js.stdout)["bayesian"]
    assert (
        plan["seed"] == 2 and plan["sizes"][0]["per_arm"] == json.loads(js.stdout)["needed_per_arm"]
    )
    assert 0.8 < plan["sizes"][0]["ship"] < 0.95
    assert "bayesian" in json.loads(run(*PLAN, "-f", "json").stdout)
    assert json.loads(run(*PLAN, "-f", "json").stdout)["bayesian"] is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([*PLAN[1:], "--per-arm", "5000"], "add --bayesian"),
        ([*PLAN[1:], "--simulations", "5000"], "add --bayesian"),
        (["--effect", "0.1", "--sd", "1", "--bayesian"], "give --baseline"),
        (["--effect", "0.1", "--sd", "1", "--bayesian", "--mode", "b2b"], "Bayesian bootstrap"),
        ([*PLAN[1:], "--bayesian", "--per-arm", "50"], "exact Beta-Binomial"),
        (["--effect", "-2", "--sd", "1", "--baseline", "1", "--bayesian"], "undefined"),
    ],
)
def test_cli_bad_combinations_are_one_paragraph_errors(args, needle):
    out = run("power", *args)
    assert out.exit_code == 2, out.output
    assert needle in out.output and "internal error" not in out.output
    assert "\n\n" not in out.output.strip()


def test_a_config_section_alone_skips_what_the_simulation_does_not_cover():
    b2b = {"experiment": {"mode": "b2b"}, "bayesian": {"chance": 0.9}}
    assert power_analysis(config=b2b, effect=0.1, sd=1.0).bayesian is None
    with pytest.raises(AbkitInputError, match="Bayesian bootstrap"):
        power_analysis(config=b2b, effect=0.1, sd=1.0, bayesian=True)


def test_from_data_a_rate_is_simulated_at_the_plan_and_at_the_pilots_size(tmp_path):
    from abkit.dev.simulate import simulate

    export = simulate(users=600, days=12, enrol_days=4, seed=2)
    plan = power_analysis(
        export.assignments,
        events=export.events,
        metric="d1_retention",
        effect=0.1,
        relative=True,
        bayesian=True,
        simulations=2000,
    )
    assert plan.bayesian is not None and plan.current_per_arm is not None
    assert plan.bayesian.model == "Binomial arms"
    sizes = [r.per_arm for r in plan.bayesian.sizes]
    assert sizes == sorted({int(plan.current_per_arm), plan.needed_per_arm})
    assert plan.bayesian.sizes[0].ship < plan.bayesian.sizes[-1].ship
