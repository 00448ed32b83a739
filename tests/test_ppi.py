"""PPI++ for judged quality (abkit.stats.ppi), tested three ways:

* against the authors' implementation, ppi_py (PyPI ``ppi-python``): with one output per
  user abkit's per-arm mean, λ and interval equal ``ppi_mean_pointestimate`` /
  ``ppi_mean_ci`` / ``_calc_lam_glm`` to 1e-6;
* closed forms and independent implementations: λ = 0 is the human-only mean, whose
  clustered (CR0) standard error is statsmodels' OLS with cluster-robust covariance;
  λ = 1 is classic PPI; the clustered variance equals a numerical delta method written
  here from the per-user means; the judge-only variance is
  :func:`abkit.stats.fixed_horizon.ratio_variance` times (u − 1)/u;
* Monte Carlo (tests/test_ppi_calibration.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as st

from abkit.errors import AbkitInputError
from abkit.stats import ArmSummary
from abkit.stats.fixed_horizon import ratio_variance
from abkit.stats.noninferiority import noninferiority_test
from abkit.stats.ppi import (
    JudgedArm,
    bias_difference,
    human_mean,
    judge_agreement,
    judge_mean,
    power_tuning,
    ppi_mean,
    ppi_test,
)
from tests.engines import required

# ppi-python 0.2.3's wheel also installs a top-level package named ``tests``, which shadows
# this folder (``from tests.conftest import ...`` then fails across the suite), so it is not
# in the test extra: .ci/run installs it and deletes that package (after checking that
# ppi-python's RECORD lists its files); by hand, ``pip install ppi-python`` and delete
# site-packages/tests.  Without it the comparison skips, and fails under CI=true (as the
# engines do, tests/engines.required).  The paper's formulas below run always.


@pytest.fixture(scope="module")
def ppi_py() -> Any:
    """The authors' package; a failure under CI=true when it is missing."""
    return required("ppi_py")


def test_this_folder_is_the_tests_package():
    """No installed package named ``tests`` (ppi-python's) shadows this folder."""
    import tests

    assert [Path(p).resolve() for p in tests.__path__] == [Path(__file__).resolve().parent]


def test_ci_pins_ppi_python_and_checks_the_requirements():
    """.ci/run installs the ppi-python this comparison was written against (0.2.3, whose
    stray 'tests' package it deletes), then runs pip check, before the README's line."""
    run = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    lines = [line.strip() for line in run.splitlines()]
    installs = [line for line in lines if line.startswith("pip install") and "ppi-python" in line]
    assert installs == ["pip install --quiet ppi-python==0.2.3"]
    readme = lines.index('pip install -e ".[test]" && python -m pytest')
    check = lines.index("python -m pip check")
    assert lines.index(installs[0]) < check < readme
    assert "shutil.rmtree(stray)" in run


def _paper_ppi_plus_plus(y, yhat, yhat_u, alpha, lam=None):
    """PPI++ for a mean from the paper's formulas (Angelopoulos, Duchi & Zrnic 2023,
    Example 6.1 and Corollary 1), one sample of n labelled and one of N unlabelled
    outputs: λ̂ = Ĉov(Y, f) / ((1 + n/N)·V̂ar(f)) clipped to [0, 1] (covariance with 1/n,
    variance of all n + N scores with 1/(n + N − 1), as the authors' code), θ̂ = λ̂·f̄_N +
    mean(Y − λ̂·f) and θ̂ ± z·√(λ̂²σ̂²_f,N/N + σ̂²_{Y−λ̂f}/n) (ddof 0)."""
    n, big_n = y.size, yhat_u.size
    if lam is None:
        cov = np.sum((y - y.mean()) * (yhat - yhat.mean())) / n
        scores = np.concatenate([yhat, yhat_u])
        var = np.sum((scores - scores.mean()) ** 2) / (n + big_n - 1)
        lam = min(max(cov / ((1 + n / big_n) * var), 0.0), 1.0)
    rect = y - lam * yhat
    theta = lam * yhat_u.mean() + rect.mean()
    v_u = np.mean((lam * yhat_u - lam * yhat_u.mean()) ** 2)
    v_r = np.mean((rect - rect.mean()) ** 2)
    half = st.norm.ppf(1 - alpha / 2) * math.sqrt(v_u / big_n + v_r / n)
    return lam, theta, (theta - half, theta + half)


def _one_per_user(seed: int, n: int, big_n: int):
    """Labelled (Y, Yhat) and unlabelled Yhat, every output its own user."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(3.0, 1.0, n + big_n)
    judge = 0.8 * quality + 0.9 + rng.normal(0.0, 0.6, n + big_n)
    y, yhat, yhat_u = quality[:n], judge[:n], judge[n:]
    human = np.concatenate([y, np.full(big_n, np.nan)])
    arm = JudgedArm.from_outputs(np.arange(n + big_n), judge, human)
    return y, yhat, yhat_u, arm


def _ppi_py_lambda(ppi_py, y, yhat, yhat_u):
    """λ as ppi_mean_ci computes it (its own code path, called piece by piece)."""
    from ppi_py.ppi import _calc_lam_glm

    start = ppi_py.ppi_mean_pointestimate(y, yhat, yhat_u, lam=1)
    return float(
        _calc_lam_glm(
            (y - start)[:, None],
            (yhat - start)[:, None],
            (yhat_u - start)[:, None],
            np.eye(1),
            clip=True,
        )
    )


@pytest.mark.parametrize(("seed", "n", "big_n"), [(1, 150, 3000), (2, 400, 400), (3, 60, 9000)])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_one_output_per_user_equals_ppi_py(ppi_py, seed, n, big_n, alpha):
    y, yhat, yhat_u, arm = _one_per_user(seed, n, big_n)
    est = ppi_mean(arm, alpha)
    lam = _ppi_py_lambda(ppi_py, y, yhat, yhat_u)
    assert 0 < lam < 1
    assert est.lam == pytest.approx(lam, abs=1e-6, rel=1e-6)
    point = float(np.squeeze(ppi_py.ppi_mean_pointestimate(y, yhat, yhat_u)))
    assert est.estimate == pytest.approx(point, abs=1e-6, rel=1e-6)
    low, high = (float(np.squeeze(v)) for v in ppi_py.ppi_mean_ci(y, yhat, yhat_u, alpha=alpha))
    assert est.ci == pytest.approx((low, high), abs=1e-6, rel=1e-6)


@pytest.mark.parametrize(("seed", "n", "big_n"), [(1, 150, 3000), (2, 400, 400), (3, 60, 9000)])
@pytest.mark.parametrize("lam", [None, 0.0, 0.3, 1.0])
def test_one_output_per_user_equals_the_papers_formulas(seed, n, big_n, lam):
    y, yhat, yhat_u, arm = _one_per_user(seed, n, big_n)
    est = ppi_mean(arm, 0.1, lam=lam)
    lam_paper, theta, ci = _paper_ppi_plus_plus(y, yhat, yhat_u, 0.1, lam)
    assert (est.lam, est.estimate) == pytest.approx((lam_paper, theta), abs=1e-9, rel=1e-9)
    assert est.ci == pytest.approx(ci, abs=1e-9, rel=1e-9)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_a_fixed_lambda_equals_ppi_py(ppi_py, lam):
    y, yhat, yhat_u, arm = _one_per_user(4, 200, 2000)
    est = ppi_mean(arm, 0.1, lam=lam)
    low, high = (float(np.squeeze(v)) for v in ppi_py.ppi_mean_ci(y, yhat, yhat_u, 0.1, lam=lam))
    assert est.ci == pytest.approx((low, high), abs=1e-6, rel=1e-6)
    point = float(np.squeeze(ppi_py.ppi_mean_pointestimate(y, yhat, yhat_u, lam=lam)))
    assert est.estimate == pytest.approx(point, abs=1e-6, rel=1e-6)


# --- clustered data: closed forms and independent implementations ----------------------


def _clustered(seed: int, users: int = 500, share: float = 0.15, bias: float = 0.3):
    rng = np.random.default_rng(seed)
    per_user = rng.poisson(3.0, users) + 1
    user = np.repeat(np.arange(users), per_user)
    effect = rng.normal(0.0, 0.7, users)[user]
    quality = 3.0 + effect + rng.normal(0.0, 1.0, user.size)
    judge = 0.7 * quality + 1.0 + bias + 0.5 * effect + rng.normal(0.0, 0.6, user.size)
    labelled = rng.random(user.size) < share
    human = np.where(labelled, quality, np.nan)
    return user, judge, human


def _cr0_mean_se(values: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Mean and CR0 standard error of the mean by statsmodels (OLS on an intercept)."""
    fit = sm.OLS(values, np.ones_like(values)).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    return float(fit.params[0]), float(fit.bse[0])


def test_lambda_zero_is_the_human_mean_with_statsmodels_cluster_se():
    user, judge, human = _clustered(5)
    arm = JudgedArm.from_outputs(user, judge, human)
    lab = ~np.isnan(human)
    mean, se = _cr0_mean_se(human[lab], user[lab])
    for est in (ppi_mean(arm, lam=0.0), human_mean(arm)):
        assert est.estimate == pytest.approx(mean, rel=1e-12)
        assert est.se == pytest.approx(se, rel=1e-9)
        z = st.norm.ppf(0.975)
        assert est.ci == pytest.approx((mean - z * se, mean + z * se), rel=1e-9)


def test_judge_only_is_the_clustered_judge_mean():
    user, judge, human = _clustered(6)
    arm = JudgedArm.from_outputs(user, judge, human)
    mean, se = _cr0_mean_se(judge, user)
    est = judge_mean(arm)
    assert est.estimate == pytest.approx(mean, rel=1e-12)
    assert est.se == pytest.approx(se, rel=1e-9)
    # the existing delta-method helper (ddof 1 moments over users): a factor u/(u − 1)
    sums = np.bincount(user, weights=judge)
    counts = np.bincount(user).astype(float)
    u = counts.size
    assert est.variance == pytest.approx(
        ratio_variance(ArmSummary.from_values(sums, counts)) * (u - 1) / u, rel=1e-9
    )


def _numerical_delta(user, judge, human, lam):
    """θ̂(λ) and its variance by a numerical delta method on the per-user means of
    (A, N, C, B, n): Var = ∇g' Σ ∇g / u with Σ their covariance (ddof 0)."""
    lab = ~np.isnan(human)
    users = np.unique(user)
    idx = np.searchsorted(users, user)
    cols = [
        np.bincount(idx, weights=np.where(lab, 0.0, judge)),
        np.bincount(idx, weights=(~lab).astype(float)),
        np.bincount(idx, weights=np.where(lab, judge, 0.0)),
        np.bincount(idx, weights=np.where(lab, human, 0.0)),
        np.bincount(idx, weights=lab.astype(float)),
    ]
    z = np.column_stack(cols)

    def g(m):
        a, big_n, c, b, n = m
        return lam * a / big_n + b / n - lam * c / n

    m = z.mean(axis=0)
    h = 1e-6 * np.maximum(np.abs(m), 1.0)
    grad = np.array([(g(m + h * e) - g(m - h * e)) / (2 * h[i]) for i, e in enumerate(np.eye(5))])
    cov = np.cov(z.T, ddof=0)
    return g(m), float(grad @ cov @ grad) / z.shape[0]


@pytest.mark.parametrize("lam", [0.0, 0.4, 1.0])
def test_clustered_variance_is_the_delta_method(lam):
    user, judge, human = _clustered(7)
    est = ppi_mean(JudgedArm.from_outputs(user, judge, human), lam=lam)
    theta, var = _numerical_delta(user, judge, human, lam)
    assert est.estimate == pytest.approx(theta, rel=1e-9)
    assert est.variance == pytest.approx(var, rel=1e-5)


def test_lambda_one_is_classic_ppi():
    user, judge, human = _clustered(8)
    lab = ~np.isnan(human)
    est = ppi_mean(JudgedArm.from_outputs(user, judge, human), lam=1.0)
    classic = judge[~lab].mean() + (human[lab] - judge[lab]).mean()
    assert est.estimate == pytest.approx(classic, rel=1e-12)
    assert est.lam == 1.0


def test_tuned_lambda_is_near_the_minimiser_of_the_clustered_variance():
    user, judge, human = _clustered(9, users=4000, share=0.1)
    arm = JudgedArm.from_outputs(user, judge, human)
    grid = np.linspace(0.0, 1.0, 201)
    variances = [ppi_mean(arm, lam=float(lam)).variance for lam in grid]
    best = float(grid[int(np.argmin(variances))])
    assert power_tuning(arm) == pytest.approx(best, abs=0.05)
    assert ppi_mean(arm).variance <= min(variances) * 1.01
    assert ppi_mean(arm).se < human_mean(arm).se


def test_the_difference_and_its_log_scale_lift():
    c = JudgedArm.from_outputs(*_clustered(10))
    t = JudgedArm.from_outputs(*_clustered(11, bias=0.8))
    r = ppi_test(c, t)
    pc, pt = r.arms["control"][0], r.arms["treatment"][0]
    assert r.ppi.effect == pytest.approx(pt.estimate - pc.estimate, rel=1e-12)
    se = math.hypot(pc.se, pt.se)
    assert r.ppi.se == pytest.approx(se, rel=1e-12)
    z = st.norm.ppf(0.975)
    assert r.ppi.p_value == pytest.approx(2 * st.norm.sf(abs(r.ppi.effect) / se), rel=1e-9)
    log_se = math.sqrt((pc.se / pc.estimate) ** 2 + (pt.se / pt.estimate) ** 2)
    ratio = pt.estimate / pc.estimate
    assert r.ppi.relative_ci == pytest.approx(
        (ratio * math.exp(-z * log_se) - 1, ratio * math.exp(z * log_se) - 1), rel=1e-9
    )
    assert r.width_ratio == pytest.approx(r.ppi.se / r.human.se, rel=1e-12)
    assert r.width_ratio < 1
    # the judge's extra bias of 0.5 in the treatment shows in the judge-only effect
    assert r.judge.effect > r.ppi.effect + 0.3


def test_guardrails_reuse_the_noninferiority_test():
    c = JudgedArm.from_outputs(*_clustered(12))
    t = JudgedArm.from_outputs(*_clustered(13))
    comp = ppi_test(c, t).ppi
    guard = noninferiority_test(comp.effect, comp.se, 1.0, True, 0.05)
    assert guard.verdict == "pass"
    q = st.norm.ppf(0.95)
    assert guard.bound == pytest.approx(comp.effect - q * comp.se, rel=1e-12)


# --- the audit -------------------------------------------------------------------------


def test_audit_numbers_equal_their_plain_formulas():
    user, judge, human = _clustered(14)
    arm = JudgedArm.from_outputs(user, judge, human)
    a = judge_agreement(arm)
    lab = ~np.isnan(human)
    assert a.correlation == pytest.approx(np.corrcoef(judge[lab], human[lab])[0, 1], rel=1e-9)
    bias, bias_se = _cr0_mean_se(judge[lab] - human[lab], user[lab])
    assert (a.bias, a.bias_se) == pytest.approx((bias, bias_se), rel=1e-9)
    assert a.labelled_share == pytest.approx(lab.mean(), rel=1e-12)
    assert a.labelled_minus_unlabelled == pytest.approx(
        judge[lab].mean() - judge[~lab].mean(), rel=1e-9
    )
    # PPI with λ = 1 is the unlabelled judge mean minus the bias
    assert ppi_mean(arm, lam=1.0).estimate == pytest.approx(judge[~lab].mean() - a.bias)


def test_a_bias_that_differs_by_arm_is_detected_and_an_equal_one_is_not():
    c = JudgedArm.from_outputs(*_clustered(15, users=2000))
    same = JudgedArm.from_outputs(*_clustered(16, users=2000))
    shifted = JudgedArm.from_outputs(*_clustered(17, users=2000, bias=0.8))
    assert bias_difference(c, shifted).p_value < 1e-6
    assert bias_difference(c, shifted).effect == pytest.approx(0.5, abs=0.1)
    assert bias_difference(c, same).p_value > 0.001


def test_labels_chosen_by_judge_score_are_seen():
    user, judge, human = _clustered(18, users=2000)
    picked = judge > np.quantile(judge, 0.6)  # labels only for outputs the judge liked
    human = np.where(picked & ~np.isnan(human), human, np.nan)
    a = judge_agreement(JudgedArm.from_outputs(user, judge, human))
    assert a.labelled_minus_unlabelled > 0.5 and a.labelled_minus_unlabelled_p < 1e-6


# --- degenerate and bad input ----------------------------------------------------------


def test_degenerate_arms_are_not_computable_with_a_reason():
    user = np.arange(6)
    judge = np.array([3.0, 4.0, 2.0, 5.0, 4.0, 3.0])
    no_labels = JudgedArm.from_outputs(user, judge, np.full(6, np.nan))
    est = ppi_mean(no_labels)
    assert math.isnan(est.estimate) and "no human labels" in est.undefined[0]
    one_user = JudgedArm.from_outputs(
        np.array([1, 1, 2, 3]), judge[:4], np.array([3.0, 4.0, np.nan, np.nan])
    )
    assert "one user" in ppi_mean(one_user).undefined[0]
    flat = JudgedArm.from_outputs(user, np.full(6, 3.0), np.array([3.0, 3.0, 3.0] + [np.nan] * 3))
    assert "no variation" in ppi_mean(flat).undefined[0]
    ok = JudgedArm.from_outputs(*_clustered(19))
    comp = ppi_test(ok, no_labels).ppi
    assert math.isnan(comp.p_value) and comp.undefined[0].startswith("treatment: no human")
    assert math.isnan(bias_difference(ok, no_labels).p_value)


def test_every_output_labelled_uses_the_human_mean():
    user, judge, human = _clustered(20, share=1.0)
    arm = JudgedArm.from_outputs(user, judge, human)
    assert arm.n_unlabelled == 0
    assert ppi_mean(arm).estimate == human_mean(arm).estimate
    assert ppi_mean(arm).lam == 0.0


def test_bad_input_names_the_column_and_value():
    with pytest.raises(AbkitInputError, match=r"judged\.parquet.*column 'judge'.*nan"):
        JudgedArm.from_outputs(
            np.array([1, 2]), np.array([1.0, np.nan]), np.array([1.0, 2.0]), "judged.parquet"
        )
    with pytest.raises(AbkitInputError, match="same length"):
        JudgedArm.from_outputs(np.array([1, 2]), np.array([1.0]), np.array([1.0, 2.0]))
    with pytest.raises(AbkitInputError, match="column 'human'"):
        JudgedArm.from_outputs(np.array([1, 2]), np.array([1.0, 2.0]), np.array([np.inf, 2.0]))


def test_parts_of_an_arm_add_up():
    user, judge, human = _clustered(21)
    whole = JudgedArm.from_outputs(user, judge, human)
    cut = user < 200
    parts = JudgedArm.from_outputs(user[cut], judge[cut], human[cut]) + JudgedArm.from_outputs(
        user[~cut], judge[~cut], human[~cut]
    )
    assert ppi_mean(parts).estimate == pytest.approx(ppi_mean(whole).estimate, rel=1e-12)
    assert ppi_mean(parts).se == pytest.approx(ppi_mean(whole).se, rel=1e-12)
    assert sum([whole], JudgedArm.zero()).users == whole.users
