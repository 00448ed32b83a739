"""The conjugate-normal Bayesian reading against GrowthBook's gbstats to 1e-6.

gbstats (PyPI ``gbstats`` 0.8.0, GrowthBook's engine) cannot be installed beside abkit's
pins: it requires numpy < 2 and pandas < 2, and abkit's test extra needs pandas >= 2 (the
Spark extra) and runs on numpy 2.  Its answers are therefore stored here, computed by the
script at the end of this file in a separate environment (``.ci/run`` makes one, and
:func:`test_the_stored_answers_are_gbstats_own_now` checks them against it in every CI
run)::

    python -m venv /tmp/gb && /tmp/gb/bin/pip install gbstats==0.8.0 pytest
    /tmp/gb/bin/python tests/test_bayesian_gbstats.py

which prints, one JSON line per case, the gbstats values of ``EffectBayesianABTest``
(``expected``, ``ci``, ``chance_to_win``, ``risk``) for each case of ``CASES``
(sufficient statistics: n, sum, sum of squares per arm; the difference type; the prior
N(mean, sd²) of the relative effect and whether it is proper; ``inverse``; α).  The same
values came out of the gbstats source on GrowthBook's main branch (packages/stats), whose
effect-Bayesian test reads its estimate and standard error from ``EffectMoments``.

abkit's ``scale="lift"`` is gbstats' relative effect (T − C)/C with the delta-method
variance; gbstats' absolute difference with a relative prior rescales the prior by |C|,
as :func:`abkit.stats.bayesian.bayesian_comparison` does; gbstats' ``risk`` is
[loss of keeping control, loss of shipping the treatment], with ``inverse`` (lower is
better) flipping the two as abkit's direction does.
"""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest

# kind, control (n, sum, sum of squares), treatment, difference type,
# prior (mean, sd, proper), inverse, alpha; then gbstats' expected, ci, chance to win,
# risk — printed by the script at the end of this file with gbstats 0.8.0
CASES = [
    (
        "mean",
        (1000, 5210.0, 40321.0),
        (1020, 5550.0, 43310.0),
        "relative",
        (0.0, 0.3, True),
        False,
        0.05,
        0.043886619704733,
        (-0.017590821728036818, 0.10536406113750281),
        0.9191160743285482,
        (0.045038928813682794, 0.001152309108949789),
    ),
    (
        "mean",
        (1000, 5210.0, 40321.0),
        (1020, 5550.0, 43310.0),
        "relative",
        (0.0, 0.3, False),
        False,
        0.05,
        0.044371683414248665,
        (-0.017444568906323454, 0.10618793573482077),
        0.9202657594044814,
        (0.04551081227893165, 0.001139128864682997),
    ),
    (
        "mean",
        (1000, 5210.0, 40321.0),
        (1020, 5550.0, 43310.0),
        "absolute",
        (0.0, 0.3, True),
        False,
        0.05,
        0.22876010456228418,
        (-0.0844361898159201, 0.5419563989404883),
        0.9238661497821666,
        (0.23422394358322582, 0.005463839020941609),
    ),
    (
        "mean",
        (150, 310.0, 1020.0),
        (160, 300.0, 990.0),
        "relative",
        (0.02, 0.05, True),
        True,
        0.1,
        -0.00904140912465366,
        (-0.07990425872042878, 0.061821440471121425),
        0.5831143758821414,
        (0.022084870362012232, 0.013043461237358575),
    ),
    (
        "mean",
        (150, 310.0, 1020.0),
        (160, 300.0, 990.0),
        "absolute",
        (0.02, 0.05, True),
        True,
        0.1,
        -0.0146323404243041,
        (-0.16278807858674887, 0.1335233977381406),
        0.5645246716446035,
        (0.04372292701014979, 0.02909058658584569),
    ),
    (
        "proportion",
        (5000, 410.0, None),
        (5100, 465.0, None),
        "relative",
        (0.0, 0.3, True),
        False,
        0.05,
        0.10581269571982552,
        (-0.03141521983859649, 0.2430406112782475),
        0.9346407575431394,
        (0.10781246178689813, 0.0019997660670726114),
    ),
    (
        "proportion",
        (5000, 410.0, None),
        (5100, 465.0, None),
        "relative",
        (0.05, 0.02, True),
        False,
        0.05,
        0.05443423007985632,
        (0.016664873157344745, 0.09220358700236789),
        0.9976341513164566,
        (0.05444772338494572, 1.3493305089394687e-05),
    ),
    (
        "proportion",
        (5000, 410.0, None),
        (5100, 465.0, None),
        "absolute",
        (0.0, 0.3, False),
        False,
        0.05,
        0.009176470588235286,
        (-0.0017893326351932151, 0.020142273811663784),
        0.9495129111588168,
        (0.009294687093597554, 0.00011821650536227006),
    ),
    (
        "proportion",
        (80, 9.0, None),
        (75, 4.0, None),
        "relative",
        (0.0, 0.3, True),
        False,
        0.2,
        -0.2862572833128026,
        (-0.5457951067635181, -0.02671945986208718),
        0.07875621688973405,
        (0.007208131550514556, 0.2934654148633172),
    ),
    (
        "proportion",
        (80, 9.0, None),
        (75, 4.0, None),
        "absolute",
        (-0.1, 0.2, True),
        True,
        0.05,
        -0.021242993521092986,
        (-0.06047517949711714, 0.01798919245493116),
        0.8557138458538691,
        (0.02272506039082064, 0.0014820668697276534),
    ),
]


def _arm(kind, arm):
    """(mean, variance of the mean) as gbstats' statistics compute them."""
    n, total, squares = arm
    mean = total / n
    # gbstats' ProportionStatistic has variance p(1 - p), without n - 1
    proportion = kind == "proportion"
    var = mean * (1.0 - mean) if proportion else (squares - total * total / n) / (n - 1)
    return mean, var / n


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_effect_bayesian_matches_gbstats(case):
    from abkit.stats.bayesian import NormalPrior, bayesian_comparison

    kind, a, b, difference, (pm, psd, proper), inverse, alpha, expected, ci, ctw, risk = case
    c_value, c_var = _arm(kind, a)
    t_value, t_var = _arm(kind, b)
    prior = NormalPrior(pm, psd if proper else math.inf)
    r = bayesian_comparison(
        c_value,
        t_value,
        c_var,
        t_var,
        prior=prior,
        scale="lift",
        higher_is_better=not inverse,
        alpha=alpha,
    )
    s = r.relative if difference == "relative" else r.absolute
    assert s.mean == pytest.approx(expected, abs=1e-6, rel=1e-6)
    assert s.interval[0] == pytest.approx(ci[0], abs=1e-6, rel=1e-6)
    assert s.interval[1] == pytest.approx(ci[1], abs=1e-6, rel=1e-6)
    assert s.chance_to_win == pytest.approx(ctw, abs=1e-6)
    assert s.risk_keep == pytest.approx(risk[0], abs=1e-6)
    assert s.risk_ship == pytest.approx(risk[1], abs=1e-6)
    # the agreement is much closer than the required 1e-6
    assert abs(s.mean - expected) < 1e-12 and abs(s.chance_to_win - ctw) < 1e-12
    assert max(abs(s.risk_keep - risk[0]), abs(s.risk_ship - risk[1])) < 1e-10


def test_the_stored_answers_are_gbstats_own_now():
    """The stored answers are gbstats' (not abkit's): gbstats, in its own environment
    (ABKIT_GBSTATS_PYTHON, a Python where gbstats 0.8.0 is installed; .ci/run makes one),
    prints them again for every case.  Required under CI=true."""
    python = os.environ.get("ABKIT_GBSTATS_PYTHON")
    if not python:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true needs ABKIT_GBSTATS_PYTHON, a Python with gbstats 0.8.0")
        pytest.skip("ABKIT_GBSTATS_PYTHON (a Python with gbstats 0.8.0) is not set")
    out = subprocess.run(
        [python, __file__], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    answers = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(answers) == len(CASES)
    for case, live in zip(CASES, answers, strict=True):
        expected, ci, ctw, risk = case[7:]
        assert live["expected"] == pytest.approx(expected, abs=1e-12)
        assert live["ci"] == pytest.approx(list(ci), abs=1e-12)
        assert live["chance_to_win"] == pytest.approx(ctw, abs=1e-12)
        assert live["risk"] == pytest.approx(list(risk), abs=1e-12)


def _gbstats_values():  # pragma: no cover - runs with gbstats, outside abkit's environment
    """Print gbstats' answers for CASES (run this file as a script where gbstats is)."""
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
    from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

    def stat(kind, arm):
        n, total, squares = arm
        if kind == "mean":
            return SampleMeanStatistic(n=n, sum=total, sum_squares=squares)
        return ProportionStatistic(n=n, sum=total)

    for kind, a, b, difference, (pm, psd, proper), inverse, alpha, *_ in CASES:
        config = EffectBayesianConfig(
            difference_type=difference,
            inverse=inverse,
            alpha=alpha,
            prior_effect=GaussianPrior(mean=pm, variance=psd**2, proper=proper),
            prior_type="relative",
        )
        r = EffectBayesianABTest(stat(kind, a), stat(kind, b), config).compute_result()
        print(
            json.dumps(
                {
                    "expected": r.expected,
                    "ci": list(r.ci),
                    "chance_to_win": r.chance_to_win,
                    "risk": list(r.risk),
                }
            )
        )


if __name__ == "__main__":  # pragma: no cover
    _gbstats_values()
