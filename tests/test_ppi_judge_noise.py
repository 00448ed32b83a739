"""Judge noise (abkit.stats.judge_noise): the decomposition against plain formulas and
statsmodels, its recovery of simulated variance components, and its prediction of the
width with k more judgements per output against a simulation that judges k more times.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from abkit.errors import AbkitInputError
from abkit.stats.judge_noise import Repeats, judge_noise, noise_split
from abkit.stats.ppi import JudgedArm, ppi_mean
from tests.conftest import mc_reps

USERS, PER_USER = 300, 4
SIGMA_USER, SIGMA_OUTPUT, SIGMA_NOISE = 0.4, 0.6, 0.9


def _judgements(rng: np.random.Generator, runs: int, share: float = 0.0):
    """USERS × PER_USER outputs, each judged ``runs`` times; a ``share`` of outputs
    carries a human label (the output's true quality)."""
    outputs = USERS * PER_USER
    user_of = np.arange(outputs) // PER_USER
    quality = 3.0 + rng.normal(0, SIGMA_USER, USERS)[user_of] + rng.normal(0, SIGMA_OUTPUT, outputs)
    labelled = rng.random(outputs) < share
    output = np.repeat(np.arange(outputs), runs)
    score = 0.8 * quality[output] + 0.5 + rng.normal(0, SIGMA_NOISE, output.size)
    human = np.where(labelled, quality, np.nan)[output]
    return user_of[output], output, score, human


def test_the_parts_equal_plain_formulas_and_statsmodels():
    rng = np.random.default_rng(41)
    user, output, score, _ = _judgements(rng, runs=3)
    r = judge_noise(user, output, score)
    rows = pl.DataFrame({"user": user, "output": output, "score": score})
    per_output = rows.group_by("output", maintain_order=True).agg(
        pl.col("user").first(), pl.col("score").mean().alias("m"), pl.col("score").var().alias("v")
    )
    assert r.noise_variance == pytest.approx(per_output["v"].mean(), rel=1e-9)  # 3 runs each
    assert r.between_variance == pytest.approx(
        per_output["m"].var() - per_output["v"].mean() / 3, rel=1e-9
    )
    fit = sm.OLS(per_output["m"].to_numpy(), np.ones(per_output.height)).fit(
        cov_type="cluster",
        cov_kwds={"groups": per_output["user"].to_numpy(), "use_correction": False},
    )
    assert r.variance == pytest.approx(float(fit.bse[0]) ** 2, rel=1e-9)
    m = per_output.height
    noise_part = r.noise_variance / 3 / m
    assert r.noise_share == pytest.approx(noise_part / r.variance, rel=1e-9)
    assert r.width_ratios[2] == pytest.approx(
        math.sqrt(1 - r.noise_variance * (1 / 3 - 1 / 5) / m / r.variance), rel=1e-9
    )
    assert (r.outputs, r.mean_runs) == (USERS * PER_USER, 3.0)


def test_one_judgement_per_output_has_no_noise_estimate():
    rng = np.random.default_rng(42)
    user, output, score, _ = _judgements(rng, runs=1)
    r = judge_noise(user, output, score)
    assert math.isnan(r.noise_variance) and math.isnan(r.width_ratios[1])


def test_bad_input_names_the_output():
    with pytest.raises(AbkitInputError, match=r"column 'score'.*nan of output 7 is not a finite"):
        judge_noise(np.array([1]), np.array([7]), np.array([np.nan]))


@pytest.mark.calibration
def test_the_components_are_recovered():
    """Mean over simulations of σ̂²_e and σ̂²_between against the simulated values:
    σ²_e = (0.9)², σ²_between = 0.8²·(0.4² + 0.6²), within 4 Monte Carlo SEs."""
    reps = mc_reps(400)
    rng = np.random.default_rng(43)
    noise, between = [], []
    for _ in range(reps):
        r = judge_noise(*_judgements(rng, runs=2)[:3])
        noise.append(r.noise_variance)
        between.append(r.between_variance)
    for values, truth in (
        (noise, SIGMA_NOISE**2),
        (between, 0.64 * (SIGMA_USER**2 + SIGMA_OUTPUT**2)),
    ):
        assert abs(np.mean(values) - truth) < 4 * np.std(values) / math.sqrt(reps), truth


@pytest.mark.calibration
@pytest.mark.parametrize("share", [0.0, 0.2])
def test_k_more_judgements_narrow_the_interval_as_predicted(share):
    """Judge every output 2 times, then (independently) 2 + 2 times: the ratio of the
    estimates' Monte Carlo standard deviations is the predicted width ratio (judge-only
    mean) or at most it (PPI++, whose λ re-tunes to the less noisy judge)."""
    reps = mc_reps(1_000)
    rng = np.random.default_rng(44 + int(share * 10))
    human = share > 0
    two, four, predicted = [], [], []
    for _ in range(reps):
        user, output, score, labels = _judgements(rng, 2, share)
        r = judge_noise(user, output, score, labels if human else None, more=(2,))
        predicted.append(r.width_ratios[2])
        two.append(_estimate(user, output, score, labels, human))
        user, output, score, labels = _judgements(rng, 4, share)
        four.append(_estimate(user, output, score, labels, human))
    ratio = np.std(four) / np.std(two)
    error = ratio * math.sqrt(1 / reps)  # se of a ratio of two sds, each √(1/(2R)) relative
    print(
        f"\nshare {share}: predicted {np.mean(predicted):.4f}, simulated {ratio:.4f} ± {error:.4f}"
    )
    if human:
        assert ratio <= np.mean(predicted) + 3 * error
        assert ratio < 1
    else:
        assert abs(ratio - np.mean(predicted)) < 3 * error


def _estimate(user, output, score, labels, human: bool) -> float:
    from abkit.stats.ppi import JudgedArm, judge_mean, ppi_mean

    _, index = np.unique(output, return_inverse=True)
    mean = np.bincount(index, weights=score) / np.bincount(index)
    first = np.unique(index, return_index=True)[1]
    arm = JudgedArm.from_outputs(user[first], mean, labels[first])
    return (ppi_mean(arm) if human else judge_mean(arm)).estimate


def test_unequal_runs_with_labels_equal_the_plain_formulas_and_parts_add():
    """Outputs judged 1 to 4 times, a fifth labelled: the PPI++ noise part and the
    width with k more judgements from the weights w_o = λ/N (unlabelled), −λ/n
    (labelled) written out here; the sums of two disjoint sets of users add up to the
    sums of all of them (:class:`Repeats` ``+``)."""
    rng = np.random.default_rng(43)
    user, output, score, human = _judgements(rng, runs=4, share=0.2)
    keep = np.ones(output.size, dtype=bool)
    keep[1:] = (output[1:] != output[:-1]) | (rng.random(output.size - 1) < 0.5)
    user, output, score, human = user[keep], output[keep], score[keep], human[keep]
    r = judge_noise(user, output, score, human, more=(1, 3))
    rows = pl.DataFrame({"user": user, "output": output, "score": score, "human": human})
    per_output = rows.group_by("output").agg(
        pl.col("user").first(),
        pl.col("human").first(),
        pl.len().alias("r"),
        pl.col("score").mean().alias("m"),
        ((pl.col("score") - pl.col("score").mean()) ** 2).sum().alias("ss"),
    )
    assert set(per_output["r"].unique().to_list()) == {1, 2, 3, 4}
    noise = per_output["ss"].sum() / (per_output["r"] - 1).sum()
    assert r.noise_variance == pytest.approx(noise, rel=1e-9)
    runs = per_output["r"].to_numpy().astype(float)
    lab = ~np.isnan(per_output["human"].fill_null(np.nan).to_numpy())
    arm = JudgedArm.from_outputs(
        per_output["user"].to_numpy(),
        per_output["m"].to_numpy(),
        per_output["human"].fill_null(np.nan).to_numpy(),
    )
    est = ppi_mean(arm)
    w = np.where(lab, -est.lam / lab.sum(), est.lam / (~lab).sum())
    assert r.variance == pytest.approx(est.variance, rel=1e-12)
    assert r.noise_share == pytest.approx(noise * np.sum(w**2 / runs) / est.variance, rel=1e-9)
    for k in (1, 3):
        gain = noise * np.sum(w**2 * (1 / runs - 1 / (runs + k)))
        assert r.width_ratios[k] == pytest.approx(math.sqrt(1 - gain / est.variance), rel=1e-9)
    # the per-user sums of two halves of the users add up
    parts = []
    for half in (user % 2 == 0, user % 2 == 1):
        out = per_output.filter(pl.col("user").is_in(np.unique(user[half]).tolist()))
        uniq, idx = np.unique(out["user"].to_numpy(), return_inverse=True)
        lab_h = ~np.isnan(out["human"].to_numpy())  # NaN: no label
        r_h = out["r"].to_numpy().astype(float)
        inv = 1.0 / (r_h[:, None] + np.array([0, 1, 3])[None, :])

        def by_user(v, idx=idx, n=uniq.size):
            total = np.zeros((n, *np.shape(v)[1:]))
            np.add.at(total, idx, v)
            return total

        parts.append(
            (
                JudgedArm.from_outputs(
                    out["user"].to_numpy(), out["m"].to_numpy(), out["human"].fill_null(np.nan)
                ),
                Repeats.from_users(
                    (1, 3),
                    by_user(r_h),
                    by_user(out["ss"].to_numpy()),
                    by_user(np.where(lab_h[:, None], 0.0, inv)),
                    by_user(np.where(lab_h[:, None], inv, 0.0)),
                ),
            )
        )
    merged = noise_split(parts[0][0] + parts[1][0], parts[0][1] + parts[1][1])
    assert merged.noise_variance == pytest.approx(r.noise_variance, rel=1e-12)
    assert merged.widths == pytest.approx(r.widths, rel=1e-12)
    assert merged.between_variance == pytest.approx(r.between_variance, rel=1e-12)


def _same(a, b) -> None:
    for field in ("outputs", "mean_runs", "noise_variance", "between_variance", "variance"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-12, nan_ok=True)
    assert a.widths == pytest.approx(b.widths, rel=1e-12, nan_ok=True)


def test_outputs_are_keyed_per_user_and_a_missing_id_is_an_output_of_its_own():
    """The pipeline's rules: the same id under two users is two outputs, a judgement
    without an id (NaN or None) is an output of its own."""
    rng = np.random.default_rng(7)
    user, output, score, human = _judgements(rng, runs=2, share=0.3)
    reused = output % PER_USER  # every user's outputs numbered 0 … PER_USER − 1
    _same(judge_noise(user, reused, score, human), judge_noise(user, output, score, human))
    lost = rng.random(output.size) < 0.1
    own = np.where(lost, -1 - np.arange(output.size), output)  # unique ids for those
    with_nan = np.where(lost, np.nan, output.astype(float))
    with_none = np.where(lost, None, output.astype(object))
    expected = judge_noise(user, own, score)
    _same(judge_noise(user, with_nan, score), expected)
    _same(judge_noise(user, with_none, score), expected)


def test_conflicting_labels_are_averaged_with_a_warning():
    """An output whose judgements carry different labels gets their mean, as in the
    pipeline, and a warning counts such outputs."""
    rng = np.random.default_rng(8)
    user, output, score, human = _judgements(rng, runs=2, share=0.3)
    conflicting = human.copy()
    conflicting[::2] += 1.0  # the first of the two judgements of every labelled output
    averaged = human + 0.5  # NaN stays NaN
    with pytest.warns(UserWarning, match=r"output\(s\) carry different human labels"):
        got = judge_noise(user, output, score, conflicting)
    _same(got, judge_noise(user, output, score, averaged))
