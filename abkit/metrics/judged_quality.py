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
that are not pass/fail); per arm they reduce, where the unit table is, to the sufficient
statistic :class:`~abkit.stats.ppi.JudgedArm` (counts, exact totals and the co-moments
of the users' sums, :func:`judged_sums`): on DuckDB, Spark or Ibis a row per variant
comes back, not a row per user.

``output = "judge_score.output_id"`` (optional) names the judged output's id: the
judgements of one output (same user, same id, any number of them) are averaged on the
events' engine before those sums (window sums over the user's events,
:meth:`JudgedQuality.row_columns`; a judgement without an id is an output of its own),
so PPI++ and the audit read one value per output, and the units stage keeps the sums of
:class:`~abkit.stats.judge_noise.Repeats` besides, from which every report splits the
judge's noise from the variance (Miller 2024).  Without it every judgement is an output.

``run = "judge_score.judge_run"`` (optional, with ``output``) names the column that
tells an output's judgements apart.  Events with the same unit, time, name and values
are dropped as duplicates; repeats of a pass/fail judge stamped with the output's time
are such events unless the run joins that key.  With ``output`` and no ``run``, duplicates
dropped on the judge event are reported in a note that asks for the run column.

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

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

import narwhals as nw
import numpy as np
import polars as pl

from abkit.errors import ConfigError
from abkit.metrics.base import MetricType, OwnTest, Statistic, check_event_column, value_column
from abkit.metrics.references import (
    EVENT,
    EXACT,
    count_where,
    event_column,
    exact_sum,
    exponent,
    slot,
)
from abkit.names import UNIT, VARIANT
from abkit.stats import Comparison
from abkit.stats.judge_noise import Repeats
from abkit.stats.judged import JudgedDetail, judged_comparison
from abkit.stats.ppi import TOTALS, JudgedArm

if TYPE_CHECKING:
    from abkit.metrics.base import MetricSpec, UnitAggregates
    from abkit.stats.cuped import Term

# the per-user sums, in the order of JudgedArm's fields
_PARTS = TOTALS


# the numbers k of extra judgements per output whose width the report predicts
MORE = (1, 2, 4)
_REPEATS = (
    "judgements",
    "label_conflicts",
    "residual",
    *(f"inverse_unlabelled:{k}" for k in (0, *MORE)),
    *(f"inverse_labelled:{k}" for k in (0, *MORE)),
)


def part_column(metric: MetricSpec, part: str) -> str:
    """The unit-frame column of one of a judged-quality metric's per-user sums."""
    return f"{value_column(metric)}:{part}"


def _row(metric: MetricSpec, part: str) -> str:
    """The annotated events' column of one of the metric's per-output values."""
    return f"_judged:{metric.name}:{part}"


def _judged(metric: MetricSpec) -> tuple[nw.Expr, nw.Expr, nw.Expr]:
    """The judge score's and the human label's slots, and whether an event is a
    judgement (the judge's event with a score)."""
    assert metric.column is not None and metric.human is not None
    read, human_read = event_column(metric.column), event_column(metric.human)
    assert read is not None and human_read is not None
    f, y = nw.col(slot(read[1])), nw.col(slot(human_read[1]))
    return f, y, (nw.col(EVENT) == read[0]) & ~f.is_null()


def judge_event(metric: MetricSpec) -> str:
    """The name of the judge's event."""
    read = event_column(metric.column) if metric.column is not None else None
    assert read is not None
    return read[0]


# the exclusion reason of a human label that no judged output can take
UNMATCHED_LABEL = (
    "judge event with a human label but no judge score and no output id (the label "
    "cannot be matched to a judged output; name the output id with output = "
    "'<event>.<column>' to take an output's label from any of its rows)"
)


@dataclass(frozen=True)
class JudgedSums:
    """One arm's statistic: its outputs' sums and, with an output id, its repeats.

    Parameters
    ----------
    arm : JudgedArm
        The per-user sums of the outputs (repeats averaged).
    repeats : Repeats or None
        The per-user sums of the repeated judgements (None without an output id).
    label_conflicts : int
        Outputs whose judgements carry different human labels (averaged).
    unmatched_labels : int
        Human labels on judge rows without a score whose output id no judgement of
        the user carries (not used).
    """

    arm: JudgedArm
    repeats: Repeats | None = None
    label_conflicts: int = 0
    unmatched_labels: int = 0


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
        if metric.run is not None:
            run = event_column(metric.run)
            if (
                metric.output is None
                or run is None
                or not all(run)
                or run[0] != judge[0]
                or run in (judge, human, event_column(metric.output))
            ):
                raise ConfigError(
                    f"{where} reads the judge score '{metric.column}': give run = "
                    f"'{judge[0]}.<column>', a column of the same event numbering an output's "
                    "judgements (with output = the output id's column), got "
                    f"'{metric.run}'."
                )
        if metric.output is None:
            return
        output = event_column(metric.output)
        if output is None or not all(output) or output[0] != judge[0] or output in (judge, human):
            raise ConfigError(
                f"{where} reads the judge score '{metric.column}': give output = "
                f"'{judge[0]}.<column>', a column of the same event holding the id of the "
                f"judged output (its repeated judgements share it), got '{metric.output}'."
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

    def exclusion_rules(self, metric: MetricSpec) -> list[tuple[nw.Expr, str]]:
        """A row of the judge's event with a human label, no score and no output id
        (without ``output``: any such row) is excluded and counted: its label belongs
        to no judged output (with an output id it is that output's label)."""
        f, y, _ = _judged(metric)
        where = (nw.col(EVENT) == judge_event(metric)) & f.is_null() & ~y.is_null()
        if metric.output is not None:
            where = where & nw.col(slot(self.id_columns(metric)[0])).is_null()
        return [(where, UNMATCHED_LABEL)]

    def id_columns(self, metric: MetricSpec) -> tuple[str, ...]:
        """The output id's column, when one is given, then the run's: both join the
        key that de-duplicates events, so that repeats of an output with the same time
        and score are kept when their runs differ."""
        out = []
        for key in (metric.output, metric.run):
            read = event_column(key) if key is not None else None
            if read is not None:
                out.append(read[1])
        return tuple(out)

    def row_columns(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """With an output id: on every judgement, its output's runs r_o (judgements
        with that id in the user's events; 1 without an id), the mean judge score m_o
        over them and the mean of the human labels they carry (null: none)."""
        if metric.output is None:
            return []
        f, y, judged = _judged(metric)
        output = slot(self.id_columns(metric)[0])
        alone = nw.col(output).is_null()

        def per_output(where: nw.Expr, amount: nw.Expr) -> nw.Expr:
            summed = nw.when(where).then(amount).otherwise(0.0).cast(EXACT).sum()
            return summed.over(UNIT, EVENT, output).cast(nw.Float64)

        one = nw.lit(1.0)
        # an output's label is taken from any of its rows of the judge's event, with a
        # score or without one (a label written on a row of its own)
        labelling = (nw.col(EVENT) == judge_event(metric)) & ~y.is_null()
        runs = nw.when(alone).then(one).otherwise(per_output(judged, one))
        labels = (
            nw.when(alone)
            .then(nw.when(y.is_null()).then(0.0).otherwise(1.0))
            .otherwise(per_output(labelling, one))
        )
        mean = nw.when(alone).then(f).otherwise(per_output(judged, f) / runs)
        label = nw.when(alone).then(y).otherwise(per_output(labelling, y) / labels)
        labelled = nw.when(labelling).then(y)
        spread = labelled.max().over(UNIT, EVENT, output) - labelled.min().over(UNIT, EVENT, output)
        return [
            runs.alias(_row(metric, "runs")),
            mean.alias(_row(metric, "mean")),
            nw.when(labels > 0).then(label).alias(_row(metric, "label")),
            nw.when(alone).then(0.0).otherwise(spread).fill_null(0.0).alias(_row(metric, "spread")),
        ]

    def event_aggregates(self, metric: MetricSpec, output_event: str) -> list[nw.Expr]:
        """Per unit: its judgements (the value column) and the ten sums of
        :class:`~abkit.stats.ppi.JudgedArm` over its outputs, as exact fixed-point sums;
        with an output id, each output's repeats averaged (a judgement weighs 1/r_o,
        :meth:`row_columns`) and the sums of :class:`~abkit.stats.judge_noise.Repeats`."""
        f, y, judged = _judged(metric)
        weight: nw.Expr = nw.lit(1.0)
        if metric.output is not None:
            runs, f, y = (nw.col(_row(metric, part)) for part in ("runs", "mean", "label"))
            weight = 1.0 / runs
        lab, unlab = judged & ~y.is_null(), judged & y.is_null()

        def total(where: nw.Expr, amount: nw.Expr, per_output: bool = True) -> nw.Expr:
            value = amount * weight if per_output else amount
            return nw.when(where).then(value).otherwise(0.0).cast(EXACT).sum().cast(nw.Float64)

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
        out = [
            count_where(judged).cast(nw.Float64).alias(value_column(metric)),
            *(sums[p].alias(part_column(metric, p)) for p in _PARTS),
        ]
        if metric.output is None:
            return out
        score, label = _judged(metric)[:2]
        unmatched = (
            (nw.col(EVENT) == judge_event(metric))
            & score.is_null()
            & ~label.is_null()
            & ~nw.col(slot(self.id_columns(metric)[0])).is_null()
            & (runs == 0)
        )
        repeats = {
            "judgements": total(judged, one, per_output=False),
            "label_conflicts": total(judged & (nw.col(_row(metric, "spread")) > 0), one),
            "residual": total(judged, (score - f) ** 2, per_output=False),
        }
        for k in (0, *MORE):
            repeats[f"inverse_unlabelled:{k}"] = total(unlab, 1.0 / (runs + k))
            repeats[f"inverse_labelled:{k}"] = total(lab, 1.0 / (runs + k))
        unmatched_count = count_where(unmatched).cast(nw.Float64)
        return [
            *out,
            *(v.alias(part_column(metric, p)) for p, v in repeats.items()),
            unmatched_count.alias(part_column(metric, "unmatched")),
        ]

    def unit_statistic(
        self, metric: MetricSpec, units: pl.DataFrame, variants: tuple[str, ...]
    ) -> Mapping[str, JudgedSums]:
        """Per variant, its users' sums from the units in this process (users without a
        judged output add nothing); the design asks :meth:`table_statistic`, which
        gives the same where the table is."""
        out = {}
        for v in variants:
            rows = units.filter(pl.col(VARIANT) == v)

            def sums(parts: tuple[str, ...], rows: pl.DataFrame = rows) -> list[np.ndarray]:
                columns = [part_column(metric, p) for p in parts]
                table = rows.select(columns).fill_null(0.0).cast(pl.Float64)
                return [table[c].to_numpy() for c in columns]

            repeats, unmatched = None, 0
            if metric.output is not None:
                unmatched = round(float(sums(("unmatched",))[0].sum()))
                judgements, conflicts, residual, *inverse = sums(_REPEATS)
                half = len(inverse) // 2
                repeats = Repeats.from_users(
                    MORE,
                    judgements,
                    residual,
                    np.column_stack(inverse[:half]),
                    np.column_stack(inverse[half:]),
                )
            out[v] = JudgedSums(
                JudgedArm.from_users(*sums(_PARTS)),
                repeats,
                0 if repeats is None else round(float(conflicts.sum())),
                unmatched,
            )
        return out

    def table_statistic(
        self, metric: MetricSpec, table: UnitAggregates, variants: tuple[str, ...]
    ) -> Mapping[str, JudgedSums]:
        """Per variant, its users' sums reduced where the unit table is
        (:func:`judged_sums`): only a few rows per variant leave an engine."""
        return judged_sums(table, metric, variants)

    def own_test(self, control: JudgedSums, treatment: JudgedSums, alpha: float) -> OwnTest:
        """PPI++ between the arms with its typed detail (what the judge alone and the
        labels alone say, the judge audit, the judge-noise split with repeats) and a
        warning for each failed check (:func:`judged_warnings`)."""
        repeats = None
        if control.repeats is not None and treatment.repeats is not None:
            repeats = (control.repeats, treatment.repeats)
        ppi, detail = judged_comparison(control.arm, treatment.arm, alpha, repeats)
        lines = judged_warnings(detail, alpha)
        conflicts = control.label_conflicts + treatment.label_conflicts
        if conflicts:
            lines.append(
                f"{conflicts:,} judged output(s) carry different human labels on their "
                "judgements (same user and output id); each output's labels were averaged. "
                "Give an output's label on every judgement of it, or on none"
            )
        unmatched = control.unmatched_labels + treatment.unmatched_labels
        if unmatched:
            lines.append(
                f"{unmatched:,} human label(s) on judge rows without a score name an output "
                "id that no judgement of the same user carries; they were not used"
            )
        return OwnTest(replace(ppi, warnings=(*ppi.warnings, *lines)), judged=detail)

    def fixed_test(self, control: JudgedSums, treatment: JudgedSums, alpha: float) -> Comparison:
        """The PPI++ comparison of :meth:`own_test`."""
        return self.own_test(control, treatment, alpha).comparison

    def adjustable(self) -> Term | None:
        return None


def judged_sums(
    table: UnitAggregates, metric: MetricSpec, variants: tuple[str, ...]
) -> dict[str, JudgedSums]:
    """Per variant, the :class:`JudgedSums` of a unit table wherever it is, by three
    aggregate queries that each return one row per variant (only they cross from an
    engine; the per-user sums stay on it).

    The per-user sums are the unit table's columns :func:`part_column` (null: 0).  With
    v_u = (N_u, A_u, n_u, C_u, B_u) and the shifted w_u of
    :class:`~abkit.stats.ppi.JudgedArm`:

    0. per variant the users, the users with a judged output and with a labelled one,
       and the largest |value| of every column, which gives each a power-of-two scale
       2^k bringing it near 10⁴;
    1. the totals Σ 2^k·x of every column in fixed point
       (:data:`~abkit.metrics.references.EXACT`: exact whatever order the engine adds
       in, so every engine gives the same bits), hence the reference ratios
       r = (Σ A/N, Σ C/n, Σ B/n) of each arm;
    2. w_u on the engine's rows (r as literals per variant), scaled by powers of two
       that bring its largest possible |value| near 10⁴, and the fixed-point sums
       Σ w and Σ w_i·w_j; then M_w = Σ w wᵀ − (Σw)(Σw)ᵀ/U exactly (fractions).

    The totals are exact sums of the values as cast to fixed point (18 decimals), kept
    beyond a double by :attr:`JudgedArm.residues`.

    The arms equal :meth:`JudgedArm.from_users` of the same per-user sums up to the
    rounding of each product to a double.
    """
    repeated = metric.output is not None
    parts = (*_PARTS, *((*_REPEATS, "unmatched") if repeated else ()))
    value = {p: nw.col(part_column(metric, p)).cast(nw.Float64).fill_null(0.0) for p in parts}
    reason = f"metric type '{metric.type}' (per-arm sums)"
    lazy = table.frame()

    def run(*aggregates: nw.Expr, frame: nw.LazyFrame[Any] = lazy) -> dict[str, dict[str, Any]]:
        rows = table.collect(frame.group_by(VARIANT).agg(*aggregates), reason)
        return {r[VARIANT]: r for r in rows.iter_rows(named=True)}

    def count(where: nw.Expr) -> nw.Expr:
        return nw.when(where).then(1).otherwise(0).sum()

    outputs = value["labelled"] + value["unlabelled"]
    zero = run(
        nw.len().alias("users"),
        count(outputs > 0).alias("judged_users"),
        count(value["labelled"] > 0).alias("labelled_users"),
        *(value[p].abs().max().alias(p) for p in parts),
    )
    largest = {p: max((float(r[p] or 0.0) for r in zero.values()), default=0.0) for p in parts}
    power = {p: exponent(largest[p]) for p in parts}
    one = run(*(exact_sum(value[p] * 2.0 ** power[p]).alias(p) for p in parts)) if zero else {}
    totals = {v: {p: _exact(r[p], power[p]) for p in parts} for v, r in one.items()}
    reference = {
        v: (
            _ratio(float(t["judge"]), float(t["unlabelled"])),
            _ratio(float(t["judge_labelled"]), float(t["labelled"])),
            _ratio(float(t["human"]), float(t["labelled"])),
        )
        for v, t in totals.items()
    }
    size = [
        largest["unlabelled"],
        largest["judge"] + _largest_ratio(reference, 0) * largest["unlabelled"],
        largest["labelled"],
        largest["judge_labelled"] + _largest_ratio(reference, 1) * largest["labelled"],
        largest["human"] + _largest_ratio(reference, 2) * largest["labelled"],
    ]
    scale = [exponent(s) for s in size]

    def by_variant(i: int) -> nw.Expr:
        expr: nw.Expr = nw.lit(0.0)
        for v, r in reference.items():
            expr = nw.when(nw.col(VARIANT) == v).then(nw.lit(r[i])).otherwise(expr)
        return expr

    n_big, n_small = value["unlabelled"], value["labelled"]
    w = [
        n_big,
        value["judge"] - by_variant(0) * n_big,
        n_small,
        value["judge_labelled"] - by_variant(1) * n_small,
        value["human"] - by_variant(2) * n_small,
    ]
    scaled = [(x * 2.0**k).alias(f"_w{i}") for i, (x, k) in enumerate(zip(w, scale, strict=True))]
    cells = [(i, j) for i in range(5) for j in range(i, 5)]
    two = {}
    if one:
        two = run(
            *(exact_sum(nw.col(f"_w{i}")).alias(f"s{i}") for i in range(5)),
            *(exact_sum(nw.col(f"_w{i}") * nw.col(f"_w{j}")).alias(f"s{i}{j}") for i, j in cells),
            frame=lazy.with_columns(*scaled),
        )
    out = {}
    for v in variants:
        if v not in one:
            out[v] = JudgedSums(JudgedArm.zero(), Repeats.zero(MORE) if repeated else None)
            continue
        users = int(zero[v]["users"])
        sums = [_exact(two[v][f"s{i}"], scale[i]) for i in range(5)]
        m = np.zeros((5, 5))
        for i, j in cells:
            product = _exact(two[v][f"s{i}{j}"], scale[i] + scale[j])
            m[i, j] = m[j, i] = float(product - sums[i] * sums[j] / users)
        t = totals[v]
        arm = JudgedArm.from_totals(
            users,
            int(zero[v]["judged_users"]),
            int(zero[v]["labelled_users"]),
            [t[p] for p in _PARTS],
            reference[v],
            [float(x) for x in sums],
            m,
        )
        repeats, conflicts, unmatched = None, 0, 0
        if repeated:
            repeats = Repeats(
                MORE,
                float(t["judgements"]),
                float(t["residual"]),
                tuple(float(t[f"inverse_unlabelled:{k}"]) for k in (0, *MORE)),
                tuple(float(t[f"inverse_labelled:{k}"]) for k in (0, *MORE)),
            )
            conflicts, unmatched = round(t["label_conflicts"]), round(t["unmatched"])
        out[v] = JudgedSums(arm, repeats, conflicts, unmatched)
    return out


# the largest |value| of a column is scaled near this by a power of two before it is
# summed in fixed point (38 digits, 18 after the point: the sums keep about 22
# significant digits and cannot overflow)
def _exact(total: object, power: int) -> Fraction:
    """A fixed-point sum of values scaled by 2^k, divided by 2^k, exactly."""
    if total is None:
        return Fraction(0)
    return Fraction(decimal.Decimal(total)) / Fraction(2) ** power  # type: ignore[arg-type]


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def _largest_ratio(reference: Mapping[str, tuple[float, float, float]], i: int) -> float:
    return max((abs(r[i]) for r in reference.values()), default=0.0)


def judged_warnings(detail: JudgedDetail, alpha: float) -> list[str]:
    """The warnings of a judged-quality comparison: each failed check of the judge
    audit (a judge bias that differs between the arms, labelled shares that differ,
    labelled outputs whose judge scores are unlike the others', in each arm).  The four
    checks are one family, held to family-wise level α by Holm's procedure
    (:func:`holm`), so that a clean experiment draws a warning in at most a share α of
    runs; each warning names the level its p-value was held to.

    Parameters
    ----------
    detail : JudgedDetail
        :func:`abkit.stats.judged.judged_comparison`'s detail.
    alpha : float
        The family-wise level of the checks.

    Returns
    -------
    list of str
        Empty when every check passes.

    Examples
    --------
    >>> import numpy as np
    >>> from abkit.stats.judged import judged_comparison
    >>> from abkit.stats.ppi import TOTALS, JudgedArm
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
    bias, share = detail.bias_difference, detail.labelled_share_difference
    gaps = {
        name: arm.audit
        for name, arm in (("control", detail.control), ("treatment", detail.treatment))
    }
    family = {
        "bias": bias.p_value,
        "share": share.p_value,
        **{name: a.labelled_minus_unlabelled_p for name, a in gaps.items()},
    }
    failed = holm(family, alpha)
    checks = sum(not np.isnan(p) for p in family.values())

    def level(check: str) -> str:
        return f"Holm over the {checks} audit checks, level {failed[check]:.3g}"

    lines = []
    if "bias" in failed:
        lines.append(
            f"the judge's bias differs between the arms by {bias.effect:+.4g} "
            f"(p = {bias.p_value:.3g}; {level('bias')}): the judge-only effect is biased by "
            "about that much; read the PPI++ effect, which the human labels correct"
        )
    if "share" in failed:
        lines.append(
            f"the labelled share differs between the arms ({share.control:.1%} control, "
            f"{share.treatment:.1%} treatment, p = {share.p_value:.3g}; {level('share')}): "
            "label the same random share of each arm's outputs"
        )
    for name, a in gaps.items():
        if name in failed:
            lines.append(
                f"{name}: labelled outputs' judge scores differ from the others' by "
                f"{a.labelled_minus_unlabelled:+.4g} (p = {a.labelled_minus_unlabelled_p:.3g}; "
                f"{level(name)}); PPI++ is valid only when the labelled outputs are a random "
                "sample of the judged outputs"
            )
    return lines


def holm(p_values: Mapping[str, float], alpha: float) -> dict[str, float]:
    """The checks Holm's step-down procedure rejects at family-wise level α, each with
    the level its p-value was held to (α/m for the smallest of m p-values, then
    α/(m − 1), …; a NaN p-value fails no check and the family is the m finite ones).

    >>> from abkit.metrics.judged_quality import holm
    >>> holm({"a": 0.01, "b": 0.04, "c": 0.2}, 0.05)
    {'a': 0.016666666666666666}
    """
    finite = sorted((p, name) for name, p in p_values.items() if not np.isnan(p))
    out = {}
    for rank, (p, name) in enumerate(finite):
        threshold = alpha / (len(finite) - rank)
        if not p < threshold:
            break
        out[name] = threshold
    return out
