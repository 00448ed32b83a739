"""Judged quality: an LLM judge's score per judged output, corrected by the human labels
that a random subset of the outputs carries, by prediction-powered inference (PPI++,
Angelopoulos, Duchi & Zrnic 2023), clustered by user (:mod:`abkit.stats.ppi`).

Configured as ``{ type = "judged_quality", column = "judge_score.value",
human = "judge_score.human_score" }``: ``column`` is the judge's score of each judged
output, ``human`` a column of the same event holding a person's label where there is
one (null elsewhere; a NaN is an unsummable value, which abkit excludes with the whole
event row).  Per user the units stage keeps ten sums (outputs with and without a
label, the judge and human sums, their squares and cross-products, the labelled outputs
that are not pass/fail); per arm they are
the sufficient statistic :class:`~abkit.stats.ppi.JudgedArm`.

The arm value is the PPI++ mean quality, on the human labels' scale; the effect, its
interval, p-value and log-scale lift are PPI++'s.  Beside it the comparison says what
the judge alone and the human labels alone would have concluded, how much narrower the
PPI++ interval is than the human-only one, and the judge audit (judge–human
correlation, the judge's bias per arm, whether it differs between the arms, the labelled
share per arm, whether labelled outputs' judge scores look like the others'), with a
warning whenever an assumption of the correction or of the naive judge effect fails.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import narwhals as nw
import polars as pl

from abkit.errors import ConfigError
from abkit.metrics.base import MetricType, Statistic, check_event_column, value_column
from abkit.metrics.references import EVENT, EXACT, event_column, slot
from abkit.names import VARIANT
from abkit.stats import Comparison
from abkit.stats.ppi import (
    JudgedArm,
    JudgedComparison,
    bias_difference,
    judge_agreement,
    labelled_share_difference,
    ppi_test,
)

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec
    from abkit.stats.cuped import Term

# the per-user sums, in the order of JudgedArm's fields
_PARTS = (
    "unlabelled",
    "judge",
    "judge_sq",
    "labelled",
    "judge_labelled",
    "judge_labelled_sq",
    "human",
    "human_sq",
    "judge_human",
    "not_pass_fail",
)


def part_column(metric: MetricSpec, part: str) -> str:
    """The unit-frame column of one of a judged-quality metric's per-user sums."""
    return f"{value_column(metric)}:{part}"


class JudgedQuality(MetricType):
    name: ClassVar[str] = "judged_quality"
    required_keys: ClassVar[tuple[str, ...]] = ("column", "human")
    statistic: ClassVar[Statistic] = Statistic.OWN

    def check(self, where: str, metric: MetricSpec) -> None:
        super().check(where, metric)
        check_event_column(where, metric, "a judge score corrected by human labels")
        assert metric.column is not None and metric.human is not None
        judge, human = event_column(metric.column), event_column(metric.human)
        if human is None or not all(human) or judge is None or human[0] != judge[0]:
            raise ConfigError(
                f"{where} reads the judge score '{metric.column}': give human = "
                f"'{judge[0] if judge else '<event>'}.<column>', the column of the same "
                f"event holding the human label (null where an output has none), got "
                f"'{metric.human}'."
            )
        if human == judge:
            raise ConfigError(
                f"{where}: 'human' and 'column' both name '{metric.column}'; the human "
                "label needs a column of its own."
            )

    def references(self, metric: MetricSpec, output_event: str) -> tuple[str, ...]:
        assert metric.column is not None and metric.human is not None
        return (metric.column, metric.human)

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Per unit: its judged outputs (the value column) and the ten sums of
        :class:`~abkit.stats.ppi.JudgedArm`, as exact fixed-point sums."""
        assert metric.column is not None and metric.human is not None
        read, human_read = event_column(metric.column), event_column(metric.human)
        assert read is not None and human_read is not None
        f, y = nw.col(slot(read[1])), nw.col(slot(human_read[1]))
        judged = (nw.col(EVENT) == read[0]) & ~f.is_null()
        lab, unlab = judged & ~y.is_null(), judged & y.is_null()

        def total(where: nw.Expr, amount: nw.Expr) -> nw.Expr:
            return nw.when(where).then(amount).otherwise(0.0).cast(EXACT).sum().cast(nw.Float64)

        one = nw.lit(1.0)
        sums = {
            "unlabelled": total(unlab, one),
            "judge": total(unlab, f),
            "judge_sq": total(unlab, f * f),
            "labelled": total(lab, one),
            "judge_labelled": total(lab, f),
            "judge_labelled_sq": total(lab, f * f),
            "human": total(lab, y),
            "human_sq": total(lab, y * y),
            "judge_human": total(lab, f * y),
            "not_pass_fail": total(lab & ~(f.is_in([0.0, 1.0]) & y.is_in([0.0, 1.0])), one),
        }
        return [
            total(judged, one).alias(value_column(metric)),
            *(sums[p].alias(part_column(metric, p)) for p in _PARTS),
        ]

    def unit_statistic(
        self, metric: MetricSpec, units: pl.DataFrame, variants: tuple[str, ...]
    ) -> Mapping[str, JudgedArm]:
        """Per variant, its users' sums (users without a judged output add nothing)."""
        columns = [part_column(metric, p) for p in _PARTS]
        out = {}
        for v in variants:
            rows = units.filter(pl.col(VARIANT) == v).select(columns).fill_null(0.0)
            out[v] = JudgedArm(*(rows[c].cast(pl.Float64).to_numpy() for c in columns))
        return out

    def fixed_test(self, control: JudgedArm, treatment: JudgedArm, alpha: float) -> Comparison:
        """PPI++ between the arms, with what the judge alone and the labels alone say
        and the judge audit as warnings (:func:`judged_warnings`)."""
        result = ppi_test(control, treatment, alpha)
        lines = judged_warnings(result, control, treatment, alpha)
        return Comparison(**{**vars(result.ppi), "warnings": (*result.ppi.warnings, *lines)})

    def adjustable(self) -> Term | None:
        return None


def _confusion(table: tuple[int, int, int, int] | None) -> str:
    if table is None:
        return ""
    both, judge_only, human_only, neither = table
    return (
        f" (pass/fail: both pass {both:,}, judge only {judge_only:,}, human only "
        f"{human_only:,}, both fail {neither:,})"
    )


def _effect(c: Comparison) -> str:
    if not math.isfinite(c.p_value):
        return "not computable"
    return f"{c.effect:+.4g} [{c.ci[0]:+.4g}, {c.ci[1]:+.4g}], p = {c.p_value:.3g}"


def judged_warnings(
    r: JudgedComparison, control: JudgedArm, treatment: JudgedArm, alpha: float
) -> list[str]:
    """The lines a judged-quality comparison carries beside its PPI++ effect: the
    judge-only and human-only effects and the width gained, the judge audit, and a
    warning for each failed check (labelled shares, labelled outputs unlike the
    others, a judge bias that differs between the arms).

    Parameters
    ----------
    r : JudgedComparison
        :func:`abkit.stats.ppi.ppi_test` of the arms.
    control, treatment : JudgedArm
        The arms' per-user sums.
    alpha : float
        The level of the checks.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.ppi import JudgedArm, ppi_test
    >>> from abkit.metrics.judged_quality import judged_warnings
    >>> rng = np.random.default_rng(3)
    >>> def arm(bias):
    ...     quality = rng.normal(3.0, 1.0, 4000)
    ...     judge = quality + bias + rng.normal(0.0, 0.5, 4000)
    ...     human = np.where(rng.random(4000) < 0.1, quality, np.nan)
    ...     return JudgedArm.from_outputs(np.arange(4000) // 4, judge, human)
    >>> control, treatment = arm(0.0), arm(0.4)
    >>> lines = judged_warnings(ppi_test(control, treatment), control, treatment, 0.05)
    >>> lines[0][:40]
    'compared with the judge alone: judge-onl'
    >>> any(line.startswith("the judge's bias differs") for line in lines)
    True
    """
    (pc, _, _), (pt, _, _) = r.arms["control"], r.arms["treatment"]
    narrower = (
        f"the PPI++ interval is {1 - r.width_ratio:.0%} narrower than the human-only one"
        if math.isfinite(r.width_ratio)
        else "no width comparison"
    )
    lines = [
        f"compared with the judge alone: judge-only effect {_effect(r.judge)}; human labels "
        f"only {_effect(r.human)}; {narrower} (λ = {pc.lam:.3g} control, {pt.lam:.3g} "
        "treatment)"
    ]
    audit = {"control": judge_agreement(control), "treatment": judge_agreement(treatment)}
    bias = bias_difference(control, treatment, alpha)
    lines.append(
        "judge audit: "
        + "; ".join(
            f"{arm} {a.labelled_share:.1%} labelled, judge–human r = {a.correlation:.3g}, "
            f"judge − human = {a.bias:+.4g}{_confusion(a.confusion)}"
            for arm, a in audit.items()
        )
        + f"; bias difference (treatment − control) {_effect(bias)}"
    )
    if bias.p_value < alpha:
        lines.append(
            f"the judge's bias differs between the arms by {bias.effect:+.4g} "
            f"(p = {bias.p_value:.3g}): the judge-only effect is biased by about that much; "
            "read the PPI++ effect, which the human labels correct"
        )
    share = labelled_share_difference(control, treatment, alpha)
    if share.p_value < alpha:
        lines.append(
            f"the labelled share differs between the arms ({audit['control'].labelled_share:.1%}"
            f" control, {audit['treatment'].labelled_share:.1%} treatment, p = "
            f"{share.p_value:.3g}): label the same random share of each arm's outputs"
        )
    for arm, a in audit.items():
        if a.labelled_minus_unlabelled_p < alpha:
            lines.append(
                f"{arm}: labelled outputs' judge scores differ from the others' by "
                f"{a.labelled_minus_unlabelled:+.4g} (p = {a.labelled_minus_unlabelled_p:.3g});"
                " PPI++ is valid only when the labelled outputs are a random sample of the "
                "judged outputs"
            )
    return lines
