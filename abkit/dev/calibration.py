"""Monte Carlo calibration: sequential methods (vectorised over replications), B2B
account-level methods and lift intervals.

A replication is one experiment observed at K equally spaced looks with ``per_look``
new units per arm at each look.  Batch sums are drawn exactly: Bernoulli batches as
binomial counts; normal batches as Σx ~ N(mμ, mσ²) and Σ(x − x̄)² ~ σ²χ²_{m−1}
(independent), so Σx² = Σ(x − x̄)² + (Σx)²/m.  The tests in
``tests/test_sequential_calibration.py`` and ``benchmarks/sequential_simulation.py``
both run on this, so the numbers in the docs are the ones the tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from abkit.stats.account_quantile import AccountValues, account_quantile_test
from abkit.stats.always_valid import asymptotic_cs, msprt, planned_tau
from abkit.stats.bootstrap import account_bootstrap
from abkit.stats.cluster import AccountArm, cr2_test, naive_cluster_z
from abkit.stats.group_sequential import efficacy_bounds
from abkit.stats.quantile import quantile_estimate, quantile_test
from abkit.stats.randomization import randomization_noninferiority, randomization_test

METHODS = ("naive", "msprt", "cs", "gst_obf", "gst_pocock")


@dataclass(frozen=True)
class LookPaths:
    """Per replication (rows) and look (columns): estimate, its variance, units, control mean."""

    estimate: np.ndarray
    variance: np.ndarray
    n: np.ndarray
    control_mean: np.ndarray
    effect: float


def _arm(
    rng: np.random.Generator, reps: int, looks: int, m: int, outcome: str, mean: float, sd: float
) -> tuple[np.ndarray, np.ndarray]:
    if outcome == "bernoulli":
        s = rng.binomial(m, mean, size=(reps, looks)).astype(float)
        return s, s
    if outcome == "normal":
        s = rng.normal(m * mean, sd * np.sqrt(m), size=(reps, looks))
        ss = sd**2 * rng.chisquare(m - 1, size=(reps, looks)) + s**2 / m
        return s, ss
    raise ValueError(f"unknown outcome '{outcome}'")


def simulate_looks(
    reps: int,
    looks: int = 30,
    per_look: int = 200,
    outcome: str = "normal",
    mean: float = 1.0,
    sd: float = 1.0,
    effect: float = 0.0,
    seed: int = 0,
) -> LookPaths:
    """Cumulative two-arm statistics at each look; the treatment mean is mean + effect."""
    rng = np.random.default_rng(seed)
    sc, ssc = _arm(rng, reps, looks, per_look, outcome, mean, sd)
    st_, sst = _arm(rng, reps, looks, per_look, outcome, mean + effect, sd)
    n_arm = per_look * np.arange(1, looks + 1, dtype=float)
    sc, ssc, st_, sst = (np.cumsum(a, axis=1) for a in (sc, ssc, st_, sst))
    mc, mt = sc / n_arm, st_ / n_arm
    vc = (ssc - n_arm * mc**2) / (n_arm - 1)
    vt = (sst - n_arm * mt**2) / (n_arm - 1)
    if outcome == "bernoulli":  # the z-test's binomial variance, as abkit uses
        vc, vt = mc * (1 - mc) * n_arm / (n_arm - 1), mt * (1 - mt) * n_arm / (n_arm - 1)
    variance = vc / n_arm + vt / n_arm
    return LookPaths(mt - mc, variance, np.broadcast_to(2 * n_arm, mc.shape), mc, effect)


@dataclass(frozen=True)
class MethodOutcome:
    rejected: np.ndarray  # ever rejected H0: no effect
    first_look: np.ndarray  # 1-based look of the first rejection (0: never)
    covered: np.ndarray  # the interval held the true effect at every look


def evaluate(paths: LookPaths, method: str, alpha: float = 0.05) -> MethodOutcome:
    """Apply one method to every replication (mSPRT and CS tuned to the final look's
    sample, as abkit does with ``target_units`` set to the planned sample)."""
    est, var = paths.estimate, paths.variance
    se = np.sqrt(var)
    looks = est.shape[1]
    if method == "naive":
        half = st.norm.ppf(1 - alpha / 2) * se
        reject = np.abs(est) >= half
    elif method == "msprt":
        target = float(paths.n[0, -1])
        tau = planned_tau(var[:, -1:], paths.n[:, -1:], target, alpha)  # per replication
        path = msprt(est, var, alpha, tau)
        half, reject = path.ci_high - est, path.p_value < alpha
    elif method == "cs":
        path = asymptotic_cs(est, var, paths.n, alpha, target_n=float(paths.n[0, -1]))
        half, reject = path.ci_high - est, path.p_value < alpha
    elif method.startswith("gst_"):
        kind = "obrien_fleming" if method == "gst_obf" else "pocock"
        c = efficacy_bounds(np.arange(1, looks + 1) / looks, alpha, kind)
        half = c * se
        reject = np.abs(est) >= half
    else:
        raise ValueError(f"unknown method '{method}'")
    rejected = reject.any(axis=1)
    first = np.where(rejected, reject.argmax(axis=1) + 1, 0)
    covered = (np.abs(est - paths.effect) <= half).all(axis=1)
    return MethodOutcome(rejected, first, covered)


# --- B2B: few randomised accounts --------------------------------------------------------

B2B_METHODS = ("cluster_z", "cr2", "percentile", "bca", "studentized", "permutation")


def account_sizes(rng: np.random.Generator, accounts: int, mean: float, sdlog: float) -> np.ndarray:
    """Heavy-tailed account sizes: log-normal with the given mean and log-scale sd,
    rounded, at least 1."""
    return np.maximum(1, np.round(rng.lognormal(np.log(mean) - sdlog**2 / 2, sdlog, accounts)))


def simulate_accounts(
    rng: np.random.Generator,
    per_arm: int,
    effect: float = 0.0,
    sdlog: float = 1.2,
    mean_users: float = 60.0,
    rate: float = 0.3,
    rate_sd: float = 0.08,
    lift: float = 0.0,
) -> tuple[AccountArm, AccountArm]:
    """One B2B experiment: log-normal account sizes (sdlog), account-level adoption
    rates N(rate, rate_sd) clipped to (0.01, 0.99), binomial users; treatment adds
    ``effect`` to every treated account's rate (a constant additive effect) or multiplies
    it by 1 + ``lift`` (a constant multiplicative effect)."""
    arms = []
    for shift, scale in ((0.0, 1.0), (effect, 1.0 + lift)):
        users = account_sizes(rng, per_arm, mean_users, sdlog)
        p = np.clip(rng.normal(rate, rate_sd, per_arm) * scale + shift, 0.01, 0.99)
        arms.append(AccountArm(rng.binomial(users.astype(int), p).astype(float), users))
    return arms[0], arms[1]


def b2b_study(
    per_arm: int,
    reps: int,
    effect: float = 0.0,
    resamples: int = 2_000,
    alpha: float = 0.05,
    seed: int = 0,
    weighting: str = "user",
    invert: bool = False,
) -> dict[str, dict[str, float]]:
    """Rejection rate of H0: no effect and coverage of ``effect`` for each B2B method
    (the permutation interval, by test inversion, only when ``invert``)."""
    rng = np.random.default_rng(seed)
    reject = {m: 0 for m in B2B_METHODS}
    cover = {m: 0 for m in B2B_METHODS}
    for i in range(reps):
        control, treatment = simulate_accounts(rng, per_arm, effect)
        z = naive_cluster_z(control, treatment, weighting, alpha)
        cr2 = cr2_test(control, treatment, weighting, alpha)
        boot = account_bootstrap(control, treatment, weighting, resamples, alpha, seed=i)
        perm = randomization_test(
            control,
            treatment,
            weighting,
            alpha,
            draws=resamples,
            max_exact=resamples,
            seed=i,
            invert=invert,
        )
        intervals = {
            "cluster_z": z.ci,
            "cr2": cr2.ci,
            "percentile": boot.percentile,
            "bca": boot.bca,
            "studentized": boot.studentized,
        }
        for m, (lo, hi) in intervals.items():
            reject[m] += not (lo <= 0.0 <= hi)
            cover[m] += lo <= effect <= hi
        reject["permutation"] += perm.p_value < alpha
        cover["permutation"] += perm.ci[0] <= effect <= perm.ci[1]
    out = {m: {"reject": reject[m] / reps, "cover": cover[m] / reps} for m in B2B_METHODS}
    if not invert:
        out["permutation"]["cover"] = math.nan
    return out


def b2b_lift_coverage(
    per_arm: int, reps: int, lift: float, resamples: int = 2_000, alpha: float = 0.05, seed: int = 0
) -> dict[str, float]:
    """Coverage of the true lift by the randomisation-inverted interval (multiplicative
    model) and by the bootstrap percentile interval of the lift."""
    rng = np.random.default_rng(seed)
    covered = {"randomization": 0, "bootstrap_percentile": 0}
    for i in range(reps):
        control, treatment = simulate_accounts(rng, per_arm, lift=lift)
        ri = randomization_test(
            control, treatment, "user", alpha, draws=resamples, max_exact=resamples, seed=i
        )
        boot = account_bootstrap(control, treatment, "user", resamples, alpha, seed=i)
        covered["randomization"] += ri.relative_ci[0] <= lift <= ri.relative_ci[1]
        covered["bootstrap_percentile"] += (
            boot.lift_percentile[0] <= lift <= boot.lift_percentile[1]
        )
    return {k: v / reps for k, v in covered.items()}


def b2b_guardrail_size(
    per_arm: int,
    reps: int,
    margin: float,
    relative: bool,
    alpha: float = 0.05,
    resamples: int = 2_000,
    seed: int = 0,
) -> float:
    """Share of runs in which a lower-is-better B2B guardrail passes when the true harm
    equals the margin exactly (+margin relative, or +margin on the rate), by the
    one-sided account randomisation test shifted by the margin; at most alpha if the
    test holds its size."""
    rng = np.random.default_rng(seed)
    passed = 0
    for i in range(reps):
        control, treatment = simulate_accounts(
            rng, per_arm, effect=0.0 if relative else margin, lift=margin if relative else 0.0
        )
        ni = randomization_noninferiority(
            control,
            treatment,
            "user",
            margin,
            relative,
            higher_is_better=False,
            alpha=alpha,
            max_exact=resamples,
            draws=resamples,
            seed=i,
        )
        passed += ni.p_value < alpha
    return passed / reps


LIFT_SCENARIOS: dict[str, dict[str, float | str]] = {
    "proportion 5 % -> 7.5 % (+50 %), 200 per arm": {
        "outcome": "bernoulli",
        "mean": 0.05,
        "lift": 0.5,
        "n": 200,
    },
    "proportion 2 % -> 4 % (+100 %), 500 per arm": {
        "outcome": "bernoulli",
        "mean": 0.02,
        "lift": 1.0,
        "n": 500,
    },
    "proportion 30 % -> 33 % (+10 %), 2,000 per arm": {
        "outcome": "bernoulli",
        "mean": 0.3,
        "lift": 0.1,
        "n": 2_000,
    },
    "log-normal mean (sdlog 1), +50 %, 50 per arm": {
        "outcome": "lognormal",
        "mean": 1.0,
        "lift": 0.5,
        "n": 50,
    },
    "log-normal mean (sdlog 1.5), +100 %, 30 per arm": {
        "outcome": "lognormal",
        "mean": 1.5,
        "lift": 1.0,
        "n": 30,
    },
}


def lift_coverage(scenario: str, reps: int, alpha: float = 0.05, seed: int = 0) -> dict[str, float]:
    """Coverage of the true lift by abkit's log-scale lift interval and by the symmetric
    delta-method interval it replaced, and how often the latter goes below −100 %.

    Each replication draws two arms and runs abkit's own test (two-proportion z-test or
    Welch) on their summaries, so the interval checked is the one abkit reports.
    """
    from abkit.stats.arm import ArmSummary
    from abkit.stats.fixed_horizon import two_proportion_ztest, welch_test

    cfg = LIFT_SCENARIOS[scenario]
    rng = np.random.default_rng(seed)
    n, lift = int(cfg["n"]), float(cfg["lift"])
    z = st.norm.ppf(1 - alpha / 2)
    log_cover = linear_cover = below = defined = 0
    for _ in range(reps):
        if cfg["outcome"] == "bernoulli":
            p = float(cfg["mean"])
            c = (rng.random(n) < p).astype(float)
            t = (rng.random(n) < p * (1 + lift)).astype(float)
            comp = two_proportion_ztest(ArmSummary.from_values(c), ArmSummary.from_values(t))
        else:
            s = float(cfg["mean"])
            c = rng.lognormal(0.0, s, n)
            t = rng.lognormal(math.log1p(lift), s, n)
            comp = welch_test(ArmSummary.from_values(c), ArmSummary.from_values(t))
        if not np.isfinite(comp.relative_ci[0]):
            continue
        defined += 1
        log_cover += comp.relative_ci[0] <= lift <= comp.relative_ci[1]
        cv, tv = comp.control_value, comp.treatment_value
        if cfg["outcome"] == "bernoulli":
            var_c_arm, var_t_arm = cv * (1 - cv) / n, tv * (1 - tv) / n
        else:
            var_c_arm, var_t_arm = float(np.var(c, ddof=1)) / n, float(np.var(t, ddof=1)) / n
        se_lin = math.sqrt(var_t_arm / cv**2 + tv**2 * var_c_arm / cv**4)
        est = tv / cv - 1
        linear_cover += bool(est - z * se_lin <= lift <= est + z * se_lin)
        below += bool(est - z * se_lin < -1)
    return {
        "log_scale": log_cover / defined,
        "symmetric": linear_cover / defined,
        "symmetric_below_minus_100": below / defined,
        "defined": defined / reps,
    }


def simulate_account_events(
    rng: np.random.Generator,
    per_arm: int,
    mean_events: float = 100.0,
    sdlog: float = 1.2,
    account_sd: float = 0.3,
    shift: float = 0.0,
    lift: float = 0.0,
) -> tuple[AccountValues, AccountValues]:
    """One B2B experiment on an event value such as latency: log-normal numbers of
    events per account (sdlog), each account with its own scale exp(account_sd·z)
    (a slow region or heavy prompts: an account's events are correlated), values
    log-normal(log 1200, 0.5) times that scale; the treatment adds ``shift`` to every
    treated value and multiplies it by 1 + ``lift``."""
    arms = []
    for add, scale in ((0.0, 1.0), (shift, 1.0 + lift)):
        sizes = account_sizes(rng, per_arm, mean_events, sdlog).astype(int)
        account = np.repeat(np.arange(per_arm), sizes)
        own = np.exp(account_sd * rng.standard_normal(per_arm))
        values = rng.lognormal(np.log(1200.0), 0.5, account.size) * own[account]
        arms.append(AccountValues(values * scale + add, account, per_arm))
    return arms[0], arms[1]


def b2b_quantile_study(
    per_arm: int,
    reps: int,
    q: float = 0.95,
    shift: float = 0.0,
    lift: float = 0.0,
    draws: int = 1_000,
    alpha: float = 0.05,
    seed: int = 0,
    invert: bool = False,
) -> dict[str, float]:
    """Over ``reps`` simulated experiments (:func:`simulate_account_events`): how often
    each test of the quantile difference rejects no effect, and (``invert``) how often
    the randomisation intervals cover the true shift and lift.

    Tests: the account randomisation test; the account-bootstrap percentile interval
    excluding 0; the clustered delta method of :mod:`abkit.stats.quantile` with
    accounts as clusters; and the same ignoring the accounts (events independent)."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(("randomization", "bootstrap", "account_delta", "independent"), 0)
    cover = {"shift": 0, "lift": 0}
    for i in range(reps):
        control, treatment = simulate_account_events(rng, per_arm, shift=shift, lift=lift)
        res = account_quantile_test(
            control, treatment, q, alpha, draws, draws, draws, seed=i, invert=invert
        )
        counts["randomization"] += res.p_value < alpha
        counts["bootstrap"] += not res.percentile[0] <= 0 <= res.percentile[1]
        for name, clustered in (("account_delta", True), ("independent", False)):
            by_account = quantile_estimate(control.values, control.account, q, clustered)
            other = quantile_estimate(treatment.values, treatment.account, q, clustered)
            counts[name] += quantile_test(by_account, other, alpha).p_value < alpha
        cover["shift"] += res.ci[0] <= shift <= res.ci[1]
        cover["lift"] += res.relative_ci[0] <= lift <= res.relative_ci[1]
    out = {name: n / reps for name, n in counts.items()}
    if invert:
        out |= {f"cover_{name}": n / reps for name, n in cover.items()}
    return out
