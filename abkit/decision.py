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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from abkit.json_numbers import number, pair

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
]
Basis = Literal["fixed-horizon", "sequential", "non-inferiority", "sequential non-inferiority"]
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
    "not computable": "the data cannot support a test (see the warnings)",
    "guardrail pass": "harm larger than the margin is ruled out",
    "guardrail fail": "harm larger than the margin is established",
    "guardrail inconclusive": "harm larger than the margin is neither ruled out nor established",
}


@dataclass(frozen=True)
class Decision:
    """What to do about one metric × treatment, and what it rests on.

    ``p_value`` and ``ci`` are the ones the outcome rests on (the adjusted p-value for a
    fixed-horizon test, the non-inferiority p-value for a guardrail, the always-valid or
    repeated p-value and interval of the deciding look under a sequential method).
    ``look`` and ``at`` locate a sequential decision; ``look_unit`` says whether looks
    are days (event exports) or checkpoints (summary input).
    """

    outcome: Outcome
    basis: Basis
    method: str
    p_value: float
    ci: tuple[float, float]
    look: int | None = None
    at: str | None = None
    look_unit: Literal["day", "checkpoint"] | None = None

    @property
    def tone(self) -> Tone:
        return _TONE.get(self.outcome, "neutral")

    @property
    def decided(self) -> bool:
        """True when the outcome is final evidence for a direction (drawn filled)."""
        return self.tone != "neutral"

    @property
    def meaning(self) -> str:
        return MEANING[self.outcome]

    @property
    def at_look(self) -> str:
        """'at day 12' (or 'at checkpoint 12') for a sequential decision, else ''."""
        return "" if self.look is None else f"at {self.look_unit or 'look'} {self.look}"

    @property
    def where(self) -> str:
        """'at day 12 (2024-03-08)': :attr:`at_look` with the look's time."""
        return self.at_look + (f" ({self.at})" if self.look is not None and self.at else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "basis": self.basis,
            "method": self.method,
            "p_value": self.p_value,
            "ci": list(self.ci),
            "look": self.look,
            "at": self.at,
            "look_unit": self.look_unit,
            "meaning": self.meaning,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        if d["outcome"] not in OUTCOMES:
            raise ValueError(f"unknown decision outcome {d['outcome']!r}")
        return cls(
            outcome=d["outcome"],
            basis=d["basis"],
            method=d["method"],
            p_value=number(d["p_value"]),
            ci=pair(d["ci"]),
            look=d.get("look"),
            at=d.get("at"),
            look_unit=d.get("look_unit"),
        )
