"""Judged quality: an LLM judge's score per judged output, corrected by the human labels
that a random subset of the outputs carries, by prediction-powered inference (PPI++,
Angelopoulos, Duchi & Zrnic 2023), clustered by user (:mod:`abkit.stats.ppi`).

Configured as ``{ type = "judged_quality", column = "judge_score.value",
human = "judge_score.human_score" }``: ``column`` is the judge's score of each judged
output, ``human`` a column of the same event holding a person's label where there is
one (null or NaN elsewhere: the column is optional,
:meth:`JudgedQuality.optional_columns`, so a NaN there is a missing label, not an event
to exclude).  Per user the units stage keeps ten sums (outputs with and without a
label, the judge and human sums, their squares and cross-products, the labelled outputs
that are not pass/fail); per arm they are
the sufficient statistic :class:`~abkit.stats.ppi.JudgedArm`.

The arm value is the PPI++ mean quality, on the human labels' scale; the effect, its
interval, p-value and log-scale lift are PPI++'s.  Beside it every result carries a
typed detail, :class:`~abkit.stats.judged.JudgedDetail` (``MetricResult.judged``): what
the judge alone and the human labels alone would have concluded, how much narrower the
PPI++ interval is than the human-only one, and the judge audit (judge–human
correlation, the judge's bias per arm and whether it differs between the arms, the
labelled share per arm, whether labelled outputs' judge scores look like the others',
a pass/fail judge's confusion table).  A failed check (a bias that differs between the
arms, labelled shares that differ, labelled outputs unlike the rest) is a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

import narwhals as nw
import polars as pl

from abkit.errors import ConfigError
from abkit.metrics.base import MetricType, OwnTest, Statistic, check_event_column, value_column
from abkit.metrics.references import EVENT, EXACT, event_column, slot
from abkit.names import VARIANT
from abkit.stats import Comparison
from abkit.stats.judged import JudgedDetail, judged_comparison
from abkit.stats.ppi import JudgedArm

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

    def optional_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        """The human label's column: most outputs have none, and a NaN there (what
        pandas writes for a missing float) is a missing label, not a bad event."""
        assert metric.human is not None
        read = event_column(metric.human)
        assert read is not None
        return (read[1],)

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

    def own_test(self, control: JudgedArm, treatment: JudgedArm, alpha: float) -> OwnTest:
        """PPI++ between the arms with its typed detail (what the judge alone and the
        labels alone say, the judge audit) and a warning for each failed check
        (:func:`judged_warnings`)."""
        ppi, detail = judged_comparison(control, treatment, alpha)
        lines = judged_warnings(detail, alpha)
        return OwnTest(replace(ppi, warnings=(*ppi.warnings, *lines)), judged=detail)

    def fixed_test(self, control: JudgedArm, treatment: JudgedArm, alpha: float) -> Comparison:
        """The PPI++ comparison of :meth:`own_test`."""
        return self.own_test(control, treatment, alpha).comparison

    def adjustable(self) -> Term | None:
        return None


def judged_warnings(detail: JudgedDetail, alpha: float) -> list[str]:
    """The warnings of a judged-quality comparison: each failed check of the judge
    audit (a judge bias that differs between the arms, labelled shares that differ,
    labelled outputs whose judge scores are unlike the others').

    Parameters
    ----------
    detail : JudgedDetail
        :func:`abkit.stats.judged.judged_comparison`'s detail.
    alpha : float
        The level of the checks.

    Returns
    -------
    list of str
        Empty when every check passes.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.judged import judged_comparison
    >>> from abkit.stats.ppi import JudgedArm
    >>> from abkit.metrics.judged_quality import judged_warnings
    >>> rng = np.random.default_rng(3)
    >>> def arm(bias):
    ...     quality = rng.normal(3.0, 1.0, 4000)
    ...     judge = quality + bias + rng.normal(0.0, 0.5, 4000)
    ...     human = np.where(rng.random(4000) < 0.1, quality, np.nan)
    ...     return JudgedArm.from_outputs(np.arange(4000) // 4, judge, human)
    >>> _, detail = judged_comparison(arm(0.0), arm(0.4))
    >>> lines = judged_warnings(detail, 0.05)
    >>> any(line.startswith("the judge's bias differs between the arms") for line in lines)
    True
    """
    lines = []
    bias, share = detail.bias_difference, detail.labelled_share_difference
    if bias.p_value < alpha:
        lines.append(
            f"the judge's bias differs between the arms by {bias.effect:+.4g} "
            f"(p = {bias.p_value:.3g}): the judge-only effect is biased by about that much; "
            "read the PPI++ effect, which the human labels correct"
        )
    if share.p_value < alpha:
        lines.append(
            f"the labelled share differs between the arms ({share.control:.1%} control, "
            f"{share.treatment:.1%} treatment, p = {share.p_value:.3g}): label the same "
            "random share of each arm's outputs"
        )
    for name, arm in (("control", detail.control), ("treatment", detail.treatment)):
        a = arm.audit
        if a.labelled_minus_unlabelled_p < alpha:
            lines.append(
                f"{name}: labelled outputs' judge scores differ from the others' by "
                f"{a.labelled_minus_unlabelled:+.4g} (p = {a.labelled_minus_unlabelled_p:.3g});"
                " PPI++ is valid only when the labelled outputs are a random sample of the "
                "judged outputs"
            )
    return lines
