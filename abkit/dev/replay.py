"""Synthetic paired exports: a shadow or replay run in which the live and the candidate
version answer the same inputs, with known true differences.

The generative model (all draws vectorised with numpy, seeded), per user i and input j:

* user i asks 1 + Poisson(``inputs_per_user`` − 1) inputs;
* pass probability p_ij = expit(1 + u_i − δ_j), u_i ~ N(0, 0.7) a user's level and
  δ_j ~ N(0, 1.5) the input's difficulty, shared by both versions (what pairing
  removes); the candidate's is min(1, p_ij·(1 + ``judge_lift``)).  Each version passes
  when a uniform draw is below its probability; the two versions share that draw with
  probability 0.7 (an input that is clear-cut for one is clear-cut for the other), so
  their outcomes are correlated beyond p_ij;
* with probability ``judge_rate`` an input is judged: both versions' outputs get a
  ``judge_score`` of 1 (pass) or 0; otherwise it stays null;
* ``latency_ms`` = 1200·exp(s_i + ℓ_j + e), s_i ~ N(0, 0.4) a user's scale (device,
  prompt length), ℓ_j ~ N(0, 0.4) the input's length, e ~ N(0, 0.3) per output; the
  candidate's is times 1 + ``latency_lift``;
* ``output_tokens`` = round(250·exp(0.8·ℓ_j + N(0, 0.3))), the candidate's times
  1 + ``tokens_lift``; ``input_tokens`` = round(600·exp(s_i/2 + ℓ_j/2)) for the
  user's input plus the version's system prompt and retrieved context, 400 + Poisson(30)
  tokens (candidate: 400·(1 + ``prompt_lift``) + Poisson(30)).

The true differences are the lifts: the mean candidate − live latency is
``latency_lift`` times the live mean, and likewise for tokens; the judge's pass rate
rises by ``judge_lift`` times the live rate, less what the cap at 1 removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.special import expit

from abkit.errors import AbkitInputError

_SHARED_DRAW = 0.7


@dataclass(frozen=True)
class ReplaySpec:
    users: int = 300
    inputs_per_user: float = 7.0
    versions: tuple[str, str] = ("live", "candidate")
    judge_rate: float = 1.0
    judge_lift: float = 0.0
    latency_lift: float = 0.0
    tokens_lift: float = 0.0
    prompt_lift: float = 0.0
    seed: int = 0


def _validate(spec: ReplaySpec) -> None:
    if spec.users < 2:
        raise AbkitInputError("a replay needs at least 2 users (users are the clusters).")
    if spec.inputs_per_user < 1:
        raise AbkitInputError("inputs_per_user must be at least 1.")
    if len(set(spec.versions)) != 2:
        raise AbkitInputError("give two distinct version names, the live one first.")
    if not 0 < spec.judge_rate <= 1:
        raise AbkitInputError("judge_rate must lie in (0, 1] (a share of the inputs).")
    for name in ("judge_lift", "latency_lift", "tokens_lift", "prompt_lift"):
        if getattr(spec, name) <= -1:
            raise AbkitInputError(f"{name} must be above -1 (a relative change).")


def simulate_replay(spec: ReplaySpec | None = None, **overrides: float | int | str) -> pl.DataFrame:
    """One row per input and version: input_id, user_id, version, judge_score,
    latency_ms, input_tokens, output_tokens (keyword overrides replace fields of
    ``spec``)."""
    from dataclasses import replace

    spec = replace(spec or ReplaySpec(), **overrides)  # type: ignore[arg-type]
    _validate(spec)
    rng = np.random.default_rng(spec.seed)
    per_user = 1 + rng.poisson(spec.inputs_per_user - 1, spec.users)
    user = np.repeat(np.arange(spec.users), per_user)
    n = user.size
    level = rng.normal(0, 0.7, spec.users)[user]
    scale = rng.normal(0, 0.4, spec.users)[user]
    difficulty = rng.normal(0, 1.5, n)
    length = rng.normal(0, 0.4, n)
    judged = rng.random(n) < spec.judge_rate
    p_live = expit(1 + level - difficulty)
    p_candidate = np.minimum(1.0, p_live * (1 + spec.judge_lift))
    draw = rng.random(n)
    own = np.where(rng.random(n) < _SHARED_DRAW, draw, rng.random(n))
    lifts = {"latency": spec.latency_lift, "tokens": spec.tokens_lift}
    columns: dict[str, list[np.ndarray]] = {}
    for k, (p, u) in enumerate(((p_live, draw), (p_candidate, own))):
        factor = {name: 1 + lift * k for name, lift in lifts.items()}
        prompt = 400 * (1 + spec.prompt_lift * k)
        values = {
            "judge_score": np.where(judged, (u < p).astype(float), np.nan),
            "latency_ms": 1200 * np.exp(scale + length + rng.normal(0, 0.3, n)) * factor["latency"],
            "input_tokens": np.round(600 * np.exp(scale / 2 + length / 2))
            + np.round(prompt)
            + rng.poisson(30, n),
            "output_tokens": np.maximum(
                1, np.round(250 * np.exp(0.8 * length + rng.normal(0, 0.3, n)) * factor["tokens"])
            ),
        }
        for name, v in values.items():
            columns.setdefault(name, []).append(v)
    return pl.DataFrame(
        {
            "input_id": np.tile(np.arange(n, dtype=np.int64), 2),
            "user_id": np.tile(user.astype(np.int64), 2),
            "version": np.repeat(np.array(spec.versions), n),
            **{name: np.concatenate(parts) for name, parts in columns.items()},
        }
    ).with_columns(
        pl.col("judge_score").fill_nan(None),
        pl.col("input_tokens", "output_tokens").cast(pl.Int64),
    )
