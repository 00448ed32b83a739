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

With ``d30_from_week_one`` (or a ``d30_direct_lift``) a user's activity from day 8 on
depends on the first week (the retention model of :func:`week_one_score`): on day
d ≥ 8 the user is active with probability min(0.95, σ(eᵢ + 0.6·log(31/(d + 1)))),
σ the logistic function, where the score

    eᵢ = −4.6 + 0.8·D1ᵢ + 0.9·D7ᵢ + 0.35·Aᵢ + 4·Rᵢ + 0.6·log(1 + Dᵢ) + log(1 + δ)·Tᵢ

reads the user's realised first-week signals: D1 and D7 (active on day 1, day 7), A
the active days in days 0–6, R the share rate (shares per AI output) and D the session
depth (AI outputs per session) in days 0–6; Tᵢ is 1 in a treatment arm and δ the
``d30_direct_lift`` (the odds of activity on every day from day 8 on times 1 + δ).  A
treatment whose lifts move the first week (``retention_lift`` through days 0–7,
``share_lift``, ``depth_lift``) then moves D30 only through those signals: the
surrogacy assumption of a surrogate index holds.  ``d30_direct_lift`` acts on D30
directly, not through them: surrogacy fails.  Days up to 7 keep the model above.  The
late days are drawn by thinning: every late day is a candidate with probability 0.95,
its sessions and outputs are generated as above, and it is kept with probability
(its probability above)/0.95 once the first week is known (drawn after everything
else).  :func:`true_d30_effects` gives the true D30 effect of such a specification.

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
# the events' names, by the code of their part
_NAMES = np.array(
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
    d30_from_week_one: bool = False
    d30_direct_lift: float = 0.0
    seed: int = 0

    @property
    def llm_judge(self) -> bool:
        """The judge is an imperfect LLM judge with human labels beside it."""
        return bool(self.human_share or self.judge_bias or self.judge_noise or self.judge_runs > 1)

    @property
    def week_one_model(self) -> bool:
        """Activity from day 8 on follows the first week (:func:`week_one_score`)."""
        return self.d30_from_week_one or self.d30_direct_lift != 0


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
    lifts = ("retention", "share", "depth", "latency", "referral", "tokens", "judge", "d30_direct")
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


@dataclass(frozen=True)
class _Generated:
    """A simulation before it becomes frames: the events' parts, each user's arm,
    account (B2B) and assignment time (seconds from the start), and with the week-one
    retention model each user's first-week signals."""

    parts: list[_Part]
    arm: np.ndarray
    account: np.ndarray | None
    assigned: np.ndarray
    week_one: WeekOne | None


def simulate(spec: SimulationSpec | None = None, **overrides: Any) -> SimulatedExport:
    """Generate an export; keyword overrides replace fields of ``spec``."""
    from dataclasses import replace

    spec = replace(spec or SimulationSpec(), **overrides)
    _validate(spec)
    generated = _generate(spec)
    parts, arm, account = generated.parts, generated.arm, generated.account
    n = spec.users
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
            "event": _NAMES[codes[order]],
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
        "assigned_at": to_ts(generated.assigned),
    }
    if account is not None:
        assignment_cols["account_id"] = account.astype(np.int64)
    return SimulatedExport(
        assignments=pl.DataFrame(assignment_cols),
        events=events,
        spec=spec,
    )


# the week-one retention model: days from LATE_DAY on follow the first week's signals;
# a late day is a candidate with probability _CANDIDATE (at least every day's own)
LATE_DAY = 8
_CANDIDATE = 0.95
_SCORE = {
    "intercept": -4.6,
    "d1": 0.8,
    "d7": 0.9,
    "active_days_7d": 0.35,
    "share_rate": 4.0,
    "session_depth": 0.6,  # on log(1 + depth)
}
_DECAY = 0.6  # the logit of activity on day d is the score plus 0.6·log(31/(d + 1))


@dataclass(frozen=True)
class WeekOne:
    """Each user's first-week signals, as the week-one retention model reads them
    (arrays over users): active on day 1 and on day 7 (0 / 1), active days in days
    0–6, and shares per AI output and AI outputs per session in days 0–6 (0 without
    any)."""

    d1: np.ndarray
    d7: np.ndarray
    active_days_7d: np.ndarray
    share_rate: np.ndarray
    session_depth: np.ndarray


def week_one_score(signals: WeekOne, direct: np.ndarray | float = 0.0) -> np.ndarray:
    """The week-one retention model's logit of activity on day 30, eᵢ (see the module
    docstring), plus ``direct`` (log(1 + δ) in treated units).

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.dev.simulate import WeekOne, week_one_score, day_probability
    >>> one = WeekOne(*(np.array([v]) for v in (1.0, 1.0, 4.0, 0.1, 3.0)))
    >>> score = week_one_score(one)
    >>> bool(np.isclose(score[0], -4.6 + 0.8 + 0.9 + 1.4 + 0.4 + 0.6 * np.log(4.0)))
    True
    >>> bool(np.isclose(day_probability(score, 30)[0], 1 / (1 + np.exp(-score[0]))))
    True
    """
    w = _SCORE
    score: np.ndarray = (
        w["intercept"]
        + w["d1"] * signals.d1
        + w["d7"] * signals.d7
        + w["active_days_7d"] * signals.active_days_7d
        + w["share_rate"] * signals.share_rate
        + w["session_depth"] * np.log1p(signals.session_depth)
        + direct
    )
    return score


def day_probability(score: np.ndarray, day: np.ndarray | int) -> np.ndarray:
    """Probability of activity on ``day`` (≥ :data:`LATE_DAY`) after assignment under
    the week-one retention model: min(0.95, σ(score + 0.6·log(31/(day + 1))))."""
    logit = score + _DECAY * np.log(31.0 / (np.asarray(day) + 1.0))
    probability: np.ndarray = np.minimum(_CANDIDATE, 1.0 / (1.0 + np.exp(-logit)))
    return probability


def _week_one(
    n: int, s_user: np.ndarray, s_day: np.ndarray, o_session: np.ndarray, shared: np.ndarray
) -> WeekOne:
    """The first-week signals of ``n`` users from their sessions (user, day after
    assignment) and outputs (session, shared or not)."""

    def per_user(mask: np.ndarray, users: np.ndarray) -> np.ndarray:
        return np.bincount(users[mask], minlength=n).astype(float)

    first = (s_day >= 0) & (s_day < 7)
    day_of_user = np.zeros((n, 8), dtype=bool)
    early = (s_day >= 0) & (s_day <= 7)
    day_of_user[s_user[early], s_day[early]] = True
    o_user, o_first = s_user[o_session], first[o_session]
    outputs = per_user(o_first, o_user)
    sessions = per_user(first, s_user)
    return WeekOne(
        d1=day_of_user[:, 1] * 1.0,
        d7=day_of_user[:, 7] * 1.0,
        active_days_7d=day_of_user[:, :7].sum(axis=1) * 1.0,
        share_rate=np.divide(
            per_user(o_first & shared, o_user), outputs, out=np.zeros(n), where=outputs > 0
        ),
        session_depth=np.divide(outputs, sessions, out=np.zeros(n), where=sessions > 0),
    )


def _direct(spec: SimulationSpec, treated: np.ndarray) -> np.ndarray:
    """The direct effect on the late days' logit: log(1 + δ) in treated units."""
    return np.where(treated, np.log1p(spec.d30_direct_lift), 0.0)


def _late_days_kept(
    spec: SimulationSpec,
    rng: np.random.Generator,
    week_one: WeekOne,
    treated: np.ndarray,
    s_user: np.ndarray,
    s_day: np.ndarray,
) -> np.ndarray:
    """Per session, whether its day is kept: every day before :data:`LATE_DAY`, and a
    candidate late day with probability (its model probability)/0.95, drawn once per
    user and day."""
    late = s_day >= LATE_DAY
    key = s_user[late].astype(np.int64) * (spec.days + 1) + s_day[late]
    days, which = np.unique(key, return_inverse=True)
    user, day = days // (spec.days + 1), days % (spec.days + 1)
    score = week_one_score(week_one, _direct(spec, treated))[user]
    keep_day = rng.random(days.size) < day_probability(score, day) / _CANDIDATE
    kept = np.ones(s_day.size, dtype=bool)
    kept[late] = keep_day[which]
    return kept


def _thinned(part: _Part, kept: np.ndarray) -> _Part:
    """``part`` without the events of the sessions not ``kept``."""
    mask = kept[part.sessions]
    columns = {name: values[mask] for name, values in part.columns.items()}
    return _Part(part.users[mask], part.times[mask], part.code, part.sessions[mask], columns)


@dataclass(frozen=True)
class D30Truth:
    """The true D30 retention of a specification with the week-one retention model:
    per variant the population's probability of activity on day 30 (the mean of
    min(0.95, σ(eᵢ)) over users of the variant), and per treatment its effect, split
    into the part through the first-week signals and the direct part.

    Attributes
    ----------
    values : tuple of (str, float)
        Variant → true D30 retention.
    effects : tuple of (str, float)
        Treatment → true D30 effect (difference with the control).
    through : tuple of (str, float)
        Treatment → the part of the effect through the first-week signals (its D30
        with ``d30_direct_lift`` set to 0, less the control's).
    direct : tuple of (str, float)
        Treatment → the rest, ``d30_direct_lift``'s direct part.
    mc_se : float
        Monte Carlo standard error of an effect (the truth is a mean over ``users``
        simulated users).
    users : int
        Users simulated to compute it.
    """

    values: tuple[tuple[str, float], ...]
    effects: tuple[tuple[str, float], ...]
    through: tuple[tuple[str, float], ...]
    direct: tuple[tuple[str, float], ...]
    mc_se: float
    users: int

    def effect(self, variant: str) -> float:
        """The true D30 effect of ``variant``."""
        return dict(self.effects)[variant]

    def relative(self, variant: str) -> float:
        """The true relative D30 effect of ``variant`` (its D30 over the control's, − 1)."""
        values = dict(self.values)
        return values[variant] / values[self.values[0][0]] - 1.0


def true_d30_effects(
    spec: SimulationSpec, users: int = 200_000, seed: int = 20_260_105
) -> D30Truth:
    """The true D30 effects of ``spec`` under the week-one retention model, by Monte
    Carlo: ``users`` users simulated through their first eight days (assigned on day 0,
    with a seed of its own so that the truth does not depend on ``spec.seed``), once
    all in the control and once, the same seed, all in a treatment (common random
    numbers: the population's two potential outcomes); each one's day-30 probability
    is computed from its first week (:func:`week_one_score`, :func:`day_probability`)
    and averaged.  ``mc_se`` is the Monte Carlo standard error of an effect (the
    per-user differences' sd over √users).  B2B specifications are simulated with at
    least users / 50 accounts, so that the accounts' random effects average out.

    Examples
    --------
    >>> from abkit.dev.simulate import SimulationSpec, true_d30_effects
    >>> spec = SimulationSpec(share_lift=0.5, d30_direct_lift=0.2)
    >>> truth = true_d30_effects(spec, users=20_000)
    >>> truth.effect("treatment") > 0, dict(truth.direct)["treatment"] > 0
    (True, True)
    """
    from dataclasses import replace

    if not spec.week_one_model:
        raise AbkitInputError(
            "true D30 effects need the week-one retention model (d30_from_week_one or "
            "d30_direct_lift)."
        )
    short = replace(
        spec,
        users=users,
        accounts=max(spec.accounts, users // 50),
        days=LATE_DAY + 1,
        enrol_days=1,
        pre_days=0,
        seed=seed,
    )
    _validate(short)
    # the same users (same seed) all in the control, then all in a treatment
    control, treated = (_generate(short, everyone_in=k).week_one for k in (0, 1))
    assert control is not None and treated is not None
    base = day_probability(week_one_score(control), 30)
    score = week_one_score(treated)
    through = day_probability(score, 30)
    full = day_probability(score + np.log1p(spec.d30_direct_lift), 30)
    c, t, t_through = float(base.mean()), float(full.mean()), float(through.mean())
    treatments = spec.variants[1:]
    return D30Truth(
        values=((spec.variants[0], c), *((v, t) for v in treatments)),
        effects=tuple((v, t - c) for v in treatments),
        through=tuple((v, t_through - c) for v in treatments),
        direct=tuple((v, t - t_through) for v in treatments),
        mc_se=float(np.std(full - base) / np.sqrt(users)),
        users=users,
    )


def _generate(spec: SimulationSpec, everyone_in: int | None = None) -> _Generated:
    """Draw every user, day, session and output of ``spec`` (validated); with
    ``everyone_in``, every user is in that arm (the assignment drawn all the same, so
    that the other draws are those of the same seed in any arm)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.users
    arm, account, ret_effect, share_effect = _assign(spec, rng)
    if everyone_in is not None:
        arm = np.full(n, everyone_in)
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
    if spec.week_one_model:  # every late day a candidate, thinned once week one is known
        p_active = np.where(day[None, :] >= LATE_DAY, _CANDIDATE, p_active)
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
    week_one = None
    if spec.week_one_model:
        week_one = _week_one(n, s_user, s_day, o_session, shared)
        kept = _late_days_kept(spec, rng, week_one, treated, s_user, s_day)
        parts = [_thinned(part, kept) for part in parts]
    return _Generated(parts, arm, account, assigned, week_one)


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
