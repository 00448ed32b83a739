"""Synthetic event-level exports of an AI product experiment, with known true effects.

The generative model, per unit i (all draws vectorised with numpy, seeded):

* assignment time uniform over the first ``enrol_days`` days;
* return propensity a_i ~ Beta(2, 3)·``base_return``/0.4; on day d ≥ 1 after
  assignment the user is active with probability min(0.95, a_i·(d + 1)^−0.5·(1 + L_ret))
  (day 0 is always active: assignment happens on use);
* 1 + Poisson(``extra_sessions``) sessions per active day;
* AI interactions per session: geometric with mean ``mean_depth``·(1 + L_depth)
  (a unit-level log-normal spread); with ``bimodal``, 55 % of users are
  one-and-done (depth 1) and 15 % power users (depth 18 + Poisson(14));
* each AI output is shared with probability s_i·(1 + L_share), s_i ~ Beta(0.8, 9),
  regenerated with probability 0.12 and fails with probability 0.02; its
  ``latency_ms`` is log-normal(log 1200, 0.5) times the user's own scale
  exp(``latency_user_sd``·z_i), z_i ~ N(0, 1) (a slow device or long prompts: the
  events of a user are correlated), times 1 + ``latency_lift`` in treated sessions;
  its ``ttft_ms`` (time to first token) is that latency times 0.25·log-normal(0, 0.2);
  its ``input_tokens`` are log-normal(log 600, 0.3) times a user scale
  log-normal(0, 0.4) (prompt length varies by user) and its ``output_tokens``
  log-normal(log 250, 0.5) times 1 + ``tokens_lift`` in treated sessions (rounded, at
  least 1);
* with ``judge_rate`` > 0, that share of outputs is graded by a judge: a
  ``judge_score`` event ten minutes later whose value is 1 (pass) with probability
  min(1, g_i·(1 + ``judge_lift`` in treated sessions)), g_i ~ Beta(6, 4) a user's
  share of good outputs (some users ask harder questions), else 0;
* with ``human_share`` > 0, ``judge_bias`` ≠ 0, ``judge_noise`` > 0 or ``judge_runs`` > 1
  the judge is an imperfect LLM judge: its score of a judged output is the pass (1 / 0)
  plus ``judge_bias`` in treated sessions (a judge that favours the treatment's style,
  not its quality) plus N(0, ``judge_noise``²) noise drawn afresh for each of
  ``judge_runs`` judgements (one ``judge_score`` event each, a minute apart, with the
  output's ``output_id`` and the run's ``judge_run``); a random ``human_share`` of the
  judged outputs carry a person's label, the pass itself, in ``human_score`` (null
  elsewhere, the same on every run of the output);
* with ``thumbs_rate`` > 0, the user rates that share of outputs a minute later:
  ``thumbs_up`` with the same pass probability, else ``thumbs_down``;
* each share brings a new user with probability ``referral_rate``·(1 + ``referral_lift``
  in treated sessions): a ``referral_signup`` event under the sharing user's id an hour
  later (the viral coefficient counts them per user).

With ``lift_half_life`` the share and depth lifts fade with time since assignment,
halving every ``lift_half_life`` days (a novelty effect).

With ``pre_days`` > 0 users also have a history: on each of the ``pre_days`` days
before assignment a user is active with probability min(0.95, 0.7·a_i), with the same
sessions, depth and share propensity but no treatment effect (it has not started), so
that pre-period metrics predict the outcomes as they do in a product (CUPED).

B2B mode draws accounts with log-normal seat counts (sdlog 1.2), randomises
whole accounts and adds an account-level random effect to the return and share
propensities, so users of one account are correlated.
"""

from __future__ import annotations

import datetime as dt
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from abkit.errors import AbkitInputError

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
_DAY = 86_400.0


@dataclass(frozen=True)
class SimulationSpec:
    mode: str = "b2c"
    users: int = 20_000
    accounts: int = 40
    days: int = 35
    enrol_days: int = 14
    variants: tuple[str, ...] = ("control", "treatment")
    retention_lift: float = 0.0
    share_lift: float = 0.0
    depth_lift: float = 0.0
    bimodal: bool = False
    base_return: float = 0.4
    extra_sessions: float = 0.6
    mean_depth: float = 3.0
    pre_days: int = 0
    lift_half_life: float | None = None
    latency_user_sd: float = 0.0
    latency_lift: float = 0.0
    referral_rate: float = 0.0
    referral_lift: float = 0.0
    tokens_lift: float = 0.0
    judge_rate: float = 0.0
    thumbs_rate: float = 0.0
    judge_lift: float = 0.0
    human_share: float = 0.0
    judge_bias: float = 0.0
    judge_noise: float = 0.0
    judge_runs: int = 1
    seed: int = 0

    @property
    def llm_judge(self) -> bool:
        """The judge is an imperfect LLM judge with human labels beside it."""
        return bool(self.human_share or self.judge_bias or self.judge_noise or self.judge_runs > 1)


@dataclass(frozen=True)
class _Part:
    """Events of one name: users, times (seconds from the start), the name's code,
    sessions and, per column, the events' values (absent columns: null)."""

    users: np.ndarray
    times: np.ndarray
    code: int
    sessions: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def values(self, name: str) -> np.ndarray:
        return self.columns.get(name, np.full(self.users.size, np.nan))


@dataclass
class SimulatedExport:
    assignments: pl.DataFrame
    events: pl.DataFrame
    spec: SimulationSpec


def _validate(spec: SimulationSpec) -> None:
    if spec.mode not in ("b2c", "b2b"):
        raise AbkitInputError(f"simulation mode must be 'b2c' or 'b2b', got '{spec.mode}'.")
    if len(spec.variants) < 2 or len(set(spec.variants)) != len(spec.variants):
        raise AbkitInputError("give at least two distinct variant names, control first.")
    if spec.enrol_days > spec.days:
        raise AbkitInputError("--enrol-days cannot exceed --days.")
    if spec.latency_user_sd < 0:
        raise AbkitInputError("latency_user_sd must be 0 or more (a log-scale sd).")
    if not 0 <= spec.referral_rate * (1 + max(spec.referral_lift, 0.0)) <= 1:
        raise AbkitInputError("referral_rate (times 1 + referral_lift) must lie in 0 … 1.")
    if spec.judge_noise < 0 or spec.judge_runs < 1:
        raise AbkitInputError("judge_noise must be 0 or more and judge_runs at least 1.")
    for name in ("judge_rate", "thumbs_rate", "human_share"):
        if not 0 <= getattr(spec, name) <= 1:
            raise AbkitInputError(f"{name} must lie in 0 … 1 (a share of the outputs).")
    lifts = ("retention", "share", "depth", "latency", "referral", "tokens", "judge")
    for name in (f"{lift}_lift" for lift in lifts):
        if getattr(spec, name) <= -1:
            raise AbkitInputError(f"{name} must be above -1 (a relative change).")


def _assign(
    spec: SimulationSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Variant index per user, account per user (B2B), and unit random effects."""
    k = len(spec.variants)
    n = spec.users
    if spec.mode == "b2c":
        return rng.integers(0, k, n), None, np.ones(n), np.ones(n)
    seats = rng.lognormal(0.0, 1.2, spec.accounts)
    account = rng.choice(spec.accounts, size=n, p=seats / seats.sum())
    arm_of_account = rng.permutation(np.arange(spec.accounts) % k)
    ret_effect = rng.lognormal(0.0, 0.35, spec.accounts)[account]
    share_effect = rng.lognormal(0.0, 0.35, spec.accounts)[account]
    return arm_of_account[account], account, ret_effect, share_effect


def simulate(spec: SimulationSpec | None = None, **overrides: Any) -> SimulatedExport:
    """Generate an export; keyword overrides replace fields of ``spec``."""
    from dataclasses import replace

    spec = replace(spec or SimulationSpec(), **overrides)
    _validate(spec)
    rng = np.random.default_rng(spec.seed)
    n = spec.users
    arm, account, ret_effect, share_effect = _assign(spec, rng)
    treated = arm > 0
    assigned = rng.uniform(0.0, spec.enrol_days * _DAY, n)
    horizon = spec.days * _DAY

    # activity by day after assignment (negative days: the history before it)
    max_day = spec.days
    habit = rng.beta(2.0, 3.0, n) * spec.base_return / 0.4 * ret_effect
    propensity = habit * np.where(treated, 1.0 + spec.retention_lift, 1.0)
    day = np.arange(-spec.pre_days, max_day + 1)
    after = np.maximum(day, 0)[None, :]
    p_active = np.where(
        day[None, :] < 0,
        np.minimum(0.95, 0.7 * habit[:, None]),
        np.minimum(0.95, propensity[:, None] * (after + 1.0) ** -0.5),
    )
    active = rng.random((n, day.size)) < p_active
    active[:, spec.pre_days] = True
    active &= assigned[:, None] + day[None, :] * _DAY < horizon
    user_of_day, day_index = np.nonzero(active)
    day_of = day[day_index]

    # sessions
    per_day = 1 + rng.poisson(spec.extra_sessions, user_of_day.size)
    s_user = np.repeat(user_of_day, per_day)
    s_day = np.repeat(day_of, per_day)
    offset = np.where(
        s_day == 0, rng.uniform(0, 3_600, s_user.size), rng.uniform(0, _DAY - 3_600, s_user.size)
    )
    s_time = assigned[s_user] + s_day * _DAY + offset
    keep = s_time < horizon - 3_600
    s_user, s_time, s_day = s_user[keep], s_time[keep], s_day[keep]
    s_treated = treated[s_user] & (s_day >= 0)  # the treatment acts after assignment
    fade = 1.0 if spec.lift_half_life is None else 0.5 ** (s_day / spec.lift_half_life)
    n_sessions = s_user.size
    session_id = np.arange(n_sessions, dtype=np.int64)

    # AI interactions per session
    user_depth = spec.mean_depth * rng.lognormal(-0.08, 0.4, n)
    session_depth = user_depth[s_user] * np.where(s_treated, 1.0 + spec.depth_lift * fade, 1.0)
    depth = rng.geometric(1.0 / np.maximum(session_depth, 1.0 + 1e-9))
    if spec.bimodal:
        kind = rng.random(n)
        one_and_done = kind[s_user] < 0.55
        power = kind[s_user] > 0.85
        depth = np.where(one_and_done, 1, depth)
        power_depth = 18 + rng.poisson(14.0 * np.where(s_treated, 1 + spec.depth_lift * fade, 1))
        depth = np.where(power, power_depth, depth)
    o_session = np.repeat(np.arange(n_sessions), depth)
    step = np.arange(o_session.size) - np.repeat(np.cumsum(depth) - depth, depth)
    o_user = s_user[o_session]
    o_time = s_time[o_session] + 20.0 + 45.0 * step
    latency = rng.lognormal(np.log(1200.0), 0.5, o_user.size)

    share_p = (rng.beta(0.8, 9.0, n) * share_effect)[o_user]
    lift = np.where(s_treated, 1.0 + spec.share_lift * fade, 1.0)[o_session]
    shared = rng.random(o_user.size) < np.minimum(1.0, share_p * lift)
    regenerated = rng.random(o_user.size) < 0.12
    failed = rng.random(o_user.size) < 0.02
    # drawn last so that exports without a user scale are unchanged
    if spec.latency_user_sd:
        latency *= np.exp(spec.latency_user_sd * rng.standard_normal(n))[o_user]
    latency *= np.where(s_treated, 1.0 + spec.latency_lift, 1.0)[o_session]
    referral_p = spec.referral_rate * np.where(s_treated, 1.0 + spec.referral_lift, 1.0)
    referred = np.zeros(o_user.size, dtype=bool)
    if spec.referral_rate:
        referred[shared] = rng.random(int(shared.sum())) < referral_p[o_session][shared]

    # drawn after everything above, so that the other columns do not depend on them
    o_treated = s_treated[o_session]
    output_columns = {
        "latency_ms": latency,
        "ttft_ms": latency * 0.25 * rng.lognormal(0.0, 0.2, o_user.size),
        "input_tokens": np.maximum(
            1,
            np.round(
                rng.lognormal(np.log(600.0), 0.3, o_user.size) * rng.lognormal(0, 0.4, n)[o_user]
            ),
        ),
        "output_tokens": np.maximum(
            1,
            np.round(
                rng.lognormal(np.log(250.0), 0.5, o_user.size)
                * np.where(o_treated, 1.0 + spec.tokens_lift, 1.0)
            ),
        ),
    }
    good = rng.beta(6.0, 4.0, n)[o_user] * np.where(o_treated, 1.0 + spec.judge_lift, 1.0)
    judged = rng.random(o_user.size) < spec.judge_rate
    passed = rng.random(o_user.size) < np.minimum(1.0, good)
    rated = rng.random(o_user.size) < spec.thumbs_rate
    thumbs_up = rng.random(o_user.size) < np.minimum(1.0, good)

    names = np.array(
        [
            "session_start",
            "ai_output",
            "share",
            "regenerate",
            "error",
            "referral_signup",
            "judge_score",
            "thumbs_up",
            "thumbs_down",
        ]
    )

    def after_output(mask: np.ndarray, seconds: float, code: int) -> _Part:
        return _Part(o_user[mask], o_time[mask] + seconds, code, session_id[o_session][mask])

    parts = [
        _Part(s_user, s_time, 0, session_id),
        _Part(o_user, o_time, 1, session_id[o_session], output_columns),
        after_output(shared, 5, 2),
        after_output(regenerated, 8, 3),
        after_output(failed, 1, 4),
        after_output(referred, 3_600, 5),
        _judge_part(spec, rng, judged, passed, o_treated, o_user, o_time, session_id[o_session]),
        after_output(rated & thumbs_up, 60, 7),
        after_output(rated & ~thumbs_up, 60, 8),
    ]
    users = np.concatenate([p.users for p in parts])
    times = np.concatenate([p.times for p in parts])
    codes = np.concatenate([np.full(p.users.size, p.code) for p in parts])
    sessions = np.concatenate([p.sessions for p in parts])
    order = np.lexsort((codes, times))

    def column(name: str) -> pl.Series:
        values = np.concatenate([p.values(name) for p in parts])[order]
        return pl.Series(values).fill_nan(None)

    start_us = int(START.timestamp() * 1_000_000)

    def to_ts(seconds: np.ndarray) -> pl.Series:
        microseconds = (start_us + np.round(seconds * 1_000_000)).astype(np.int64)
        return pl.Series(microseconds).cast(pl.Datetime("us", "UTC"))

    events = pl.DataFrame(
        {
            "user_id": users[order].astype(np.int64),
            "timestamp": to_ts(times[order]),
            "event": names[codes[order]],
            "session_id": sessions[order],
            "value": column("value"),
            "latency_ms": column("latency_ms"),
            "ttft_ms": column("ttft_ms"),
            "input_tokens": column("input_tokens").cast(pl.Int64),
            "output_tokens": column("output_tokens").cast(pl.Int64),
        }
    )
    if spec.llm_judge:
        events = events.with_columns(
            human_score=column("human_score"),
            output_id=column("output_id").cast(pl.Int64),
            judge_run=column("judge_run").cast(pl.Int64),
        )
    variant_names = np.array(spec.variants)
    assignment_cols = {
        "user_id": np.arange(n, dtype=np.int64),
        "variant": variant_names[arm],
        "assigned_at": to_ts(assigned),
    }
    if account is not None:
        assignment_cols["account_id"] = account.astype(np.int64)
    return SimulatedExport(
        assignments=pl.DataFrame(assignment_cols),
        events=events,
        spec=spec,
    )


def _judge_part(
    spec: SimulationSpec,
    rng: np.random.Generator,
    judged: np.ndarray,
    passed: np.ndarray,
    treated: np.ndarray,
    users: np.ndarray,
    times: np.ndarray,
    sessions: np.ndarray,
) -> _Part:
    """The judge_score events of the judged outputs (arrays per output): a pass / fail
    judge, or with :attr:`SimulationSpec.llm_judge` a biased, noisy judge run
    ``judge_runs`` times with human labels on a random share (drawn after everything
    else, so that the other events do not depend on these options)."""
    if not spec.llm_judge:
        return _Part(
            users[judged], times[judged] + 600, 6, sessions[judged], {"value": passed[judged] * 1.0}
        )
    output = np.flatnonzero(judged)
    labelled = rng.random(output.size) < spec.human_share
    runs = spec.judge_runs
    each = np.repeat(output, runs)
    run = np.tile(np.arange(runs), output.size)
    noise = spec.judge_noise * rng.standard_normal(each.size) if spec.judge_noise else 0.0
    score = passed[each] + spec.judge_bias * treated[each] + noise
    human = np.where(np.repeat(labelled, runs), passed[each] * 1.0, np.nan)
    columns = {
        "value": score,
        "human_score": human,
        "output_id": each * 1.0,
        "judge_run": run * 1.0,
    }
    return _Part(users[each], times[each] + 600 + 60 * run, 6, sessions[each], columns)


def write_frame(frame: pl.DataFrame, outdir: str | Path, name: str, fmt: str) -> Path:
    """Write ``frame`` as ``<outdir>/<name>.<fmt>`` (parquet, csv or ndjson), creating
    the folder."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.{fmt}"
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)
    return path


def write_export(export: SimulatedExport, outdir: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write ``assignments.<fmt>`` and ``events.<fmt>`` into ``outdir``."""
    return [
        write_frame(frame, outdir, name, fmt)
        for name, frame in (("assignments", export.assignments), ("events", export.events))
    ]


class _CallableModule(types.ModuleType):
    """``abkit.dev.simulate`` names both this module and its :func:`simulate`: once the
    module is imported (``from abkit.dev.simulate import ...`` anywhere), the package's
    attribute is the module, so calling it calls the function."""

    def __call__(self, spec: SimulationSpec | None = None, **overrides: Any) -> SimulatedExport:
        return simulate(spec, **overrides)


sys.modules[__name__].__class__ = _CallableModule
