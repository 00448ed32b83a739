"""The decision a reader acts on, as one typed object.

Every renderer (text, Markdown, HTML, JSON, plots) shows a result's
:class:`Decision` and nothing else decides: the outcome, the method that governs it,
the p-value and interval it rests on and, for sequential monitoring, the look at which
it was reached.  Which method governs:

* a guardrail metric: its one-sided non-inferiority test against the margin (on the
  always-valid or repeated interval when a sequential method is on);
* any other metric under a sequential method: that method (the fixed-horizon p-value
  and interval stay in the tables, labelled as not valid under repeated looks);
* otherwise the fixed-horizon test, with the multiplicity-adjusted p-value.

A Bayesian reading (:mod:`abkit.analysis.bayesian`) carries a decision of its own, of
basis ``"bayesian"`` or ``"bayesian guardrail"``, beside this one and never mixed in.

Whatever the method, a decision passes one shared check before anyone sees it,
:func:`checked`: an arm without units, no variation, no sequential look with data in
both arms, or a method that produced no p-value or interval gives ``not computable``
with the reason, never a confident word.  A guardrail that passes (or is
inconclusive) while its two-sided test finds it significantly worse carries a
:data:`Caution`, shown beside the outcome in every output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, get_args

Outcome = Literal[
    "better",
    "worse",
    "no significant difference",
    "continue",
    "futility stop",
    "not computable",
    "guardrail pass",
    "guardrail fail",
    "guardrail inconclusive",
    "inconclusive",
]
Basis = Literal[
    "fixed-horizon",
    "sequential",
    "non-inferiority",
    "sequential non-inferiority",
    "bayesian",
    "bayesian guardrail",
    "surrogate forecast",
]
# a guardrail within its margin whose two-sided test still finds harm (a regression flag)
Caution = Literal["significantly worse, within the margin", "significantly worse"]
Tone = Literal["good", "bad", "neutral"]

OUTCOMES: tuple[str, ...] = get_args(Outcome)
_TONE: dict[str, Tone] = {
    "better": "good",
    "guardrail pass": "good",
    "worse": "bad",
    "guardrail fail": "bad",
}
# what a reader may conclude; said wherever the outcome is shown without room for more
MEANING: dict[str, str] = {
    "better": "the treatment improves the metric",
    "worse": "the treatment harms the metric",
    "no significant difference": (
        "no difference was detected; this is not evidence that there is none"
    ),
    "continue": "not enough evidence yet; keep the experiment running",
    "futility stop": (
        "the effect the design was powered to find is unlikely to be reached; stopping "
        "saves time, but a smaller effect is not ruled out"
    ),
    "not computable": "the data cannot support a test",
    "guardrail pass": "harm larger than the margin is ruled out",
    "guardrail fail": "harm larger than the margin is established",
    "guardrail inconclusive": "harm larger than the margin is neither ruled out nor established",
    "inconclusive": (
        "the chance to win and the expected loss do not reach the Bayesian rule's thresholds"
    ),
}


@dataclass(frozen=True)
class Decision:
    """What to do about one metric × treatment, and what it rests on.

    ``p_value`` and ``ci`` are the ones the outcome rests on (the adjusted p-value for a
    fixed-horizon test, the non-inferiority p-value for a guardrail, the always-valid or
    repeated p-value and interval of the deciding look under a sequential method).
    ``look`` and ``at`` locate a sequential decision; ``look_unit`` says whether looks
    are days (event exports) or checkpoints (summary input).  ``reason`` says why a
    decision is ``not computable``; ``caution`` flags a guardrail that its two-sided
    test finds significantly worse although the non-inferiority rule does not fail it.
    """

    outcome: Outcome
    basis: Basis
    method: str
    p_value: float
    ci: tuple[float, float]
    look: int | None = None
    at: str | None = None
    look_unit: Literal["day", "checkpoint"] | None = None
    reason: str | None = None
    caution: Caution | None = None

    @property
    def tone(self) -> Tone:
        return _TONE.get(self.outcome, "neutral")

    @property
    def decided(self) -> bool:
        """True when the outcome is final evidence for a direction (drawn filled)."""
        return self.tone != "neutral"

    @property
    def meaning(self) -> str:
        """What a reader may conclude, with the reason of a ``not computable`` and the
        caution of a guardrail that is significantly worse within its margin."""
        text = MEANING[self.outcome]
        if self.reason:
            text += f": {self.reason}"
        if self.caution:
            text += f"; but the two-sided test finds it {self.caution}"
        return text

    @property
    def label(self) -> str:
        """The outcome as a table cell: 'guardrail pass (significantly worse, within the
        margin)' when a caution applies, else the outcome."""
        return f"{self.outcome} ({self.caution})" if self.caution else self.outcome

    @property
    def at_look(self) -> str:
        """'at day 12' for a sequential decision on an event export; on a summary
        table, whose looks are checkpoints, the checkpoint's own label first: 'at day 91
        (checkpoint 67)'; '' for a fixed-horizon decision."""
        if self.look is None:
            return ""
        if self.look_unit == "checkpoint" and self.at:
            return f"at {self.at} (checkpoint {self.look})"
        return f"at {self.look_unit or 'look'} {self.look}"

    @property
    def where(self) -> str:
        """'at day 12 (2024-03-08)': :attr:`at_look` with the look's time (a checkpoint's
        label is already in :attr:`at_look`)."""
        if self.look is None or not self.at or self.look_unit == "checkpoint":
            return self.at_look
        return f"{self.at_look} ({self.at})"


@dataclass(frozen=True)
class Evidence:
    """What a decision rests on, for the shared check of :func:`checked`.

    ``control_n`` and ``treatment_n`` are the units with data for the metric in each
    arm, ``effect`` and ``se`` the effect and its standard error (both 0 when no unit
    differs from another: constant but unequal arms, such as 0 of n against n of n,
    have an se of 0 and a real difference) and ``looks_with_data`` the sequential looks
    with data in both arms (``None`` for a fixed-horizon decision); ``undefined`` is
    why the test could not be computed, in its own words
    (:attr:`~abkit.stats.fixed_horizon.Comparison.undefined`).
    """

    control_n: int
    treatment_n: int
    effect: float
    se: float
    looks_with_data: int | None = None
    undefined: tuple[str, ...] = ()


def data_gap(evidence: Evidence, decision: Decision) -> str | None:
    """Why the data cannot support ``decision``, or ``None`` when they can.

    The checks, in order: an arm without units, no variation, no sequential look with
    data in both arms, and a method that produced neither a p-value nor an interval.

    Examples
    --------
    >>> d = Decision("no significant difference", "sequential", "GST", 0.5, (-1.0, 1.0))
    >>> nan = float("nan")
    >>> data_gap(Evidence(0, 0, nan, nan, looks_with_data=0), d)
    'no units with data in either arm'
    >>> data_gap(Evidence(120, 118, 0.01, 0.02, looks_with_data=0), d)
    'no look has data in both arms yet'
    >>> data_gap(Evidence(120, 118, 0.01, 0.02), d) is None
    True
    """
    empty = [
        arm
        for arm, n in (("control", evidence.control_n), ("treatment", evidence.treatment_n))
        if n <= 0
    ]
    if len(empty) == 2:
        return "no units with data in either arm"
    if empty:
        return f"the {empty[0]} arm has no units with data"
    if evidence.se == 0 and evidence.effect == 0:
        return "no variation: every unit has the same value, in both arms"
    if evidence.looks_with_data == 0:
        return "no look has data in both arms yet"
    # 'continue' before a group-sequential design's first planned look has no interval
    # yet, and says so; any other outcome must rest on a p-value or an interval
    silent = math.isnan(decision.p_value) and all(math.isnan(end) for end in decision.ci)
    if silent and decision.outcome != "continue":
        return "; ".join(evidence.undefined) or "the test gave neither a p-value nor an interval"
    return None


def checked(decision: Decision, evidence: Evidence) -> Decision:
    """``decision`` if the data support it, else ``not computable`` with the reason.

    Every method's decision (fixed horizon, non-inferiority, mSPRT, confidence
    sequence, group-sequential; users, accounts or paired inputs; with or without
    CUPED) passes through here, so none can read as a verdict on a metric without data.
    """
    reason = data_gap(evidence, decision)
    if reason is None:
        return decision
    return replace(
        decision,
        outcome="not computable",
        p_value=math.nan,
        ci=(math.nan, math.nan),
        reason=reason,
        caution=None,
    )


def guardrail_caution(
    outcome: Outcome, harmful_estimate: bool, p_two_sided: float, alpha: float
) -> Caution | None:
    """The regression flag of a guardrail: harm that the two-sided test finds
    significant (p < α) although non-inferiority does not fail the guardrail.

    Examples
    --------
    >>> guardrail_caution("guardrail pass", True, 0.0044, 0.05)
    'significantly worse, within the margin'
    >>> guardrail_caution("guardrail pass", False, 0.0044, 0.05) is None
    True
    """
    if not (harmful_estimate and p_two_sided < alpha):
        return None
    if outcome == "guardrail pass":
        return "significantly worse, within the margin"
    if outcome in ("guardrail inconclusive", "continue"):
        return "significantly worse"
    return None
