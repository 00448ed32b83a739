"""Adoption of the AI feature: who used it, how much, how often, and by segment."""

from __future__ import annotations

from dataclasses import dataclass, field

import narwhals as nw
import polars as pl

from abkit.config import MetricSpec
from abkit.engine.backend import collect_all
from abkit.inputs.unit_table import UnitTable
from abkit.json_codec import from_jsonable
from abkit.metrics.base import value_column
from abkit.names import ACCOUNT, VARIANT

DEFAULT_SEGMENTS = ("role", "seniority", "integration_depth")
MISSING = "(missing)"  # the label of units without a segment value


@dataclass(frozen=True, kw_only=True)
class AdoptionRate:
    """Adoption in one variant, or in one variant within one segment value.

    Parameters
    ----------
    segment : dict of str to str
        ``{column: value}`` of a segment row, empty for a whole variant; written among
        the row's own keys (``{"role": "admin", "variant": ...}``).
    variant : str
        The variant.
    users : int
        Units assigned.
    adopters : int
        Units that used the feature.
    accounts : int or None
        Accounts the units belong to (B2B exports only; the key is absent otherwise).
    events_per_adopter : float
        Mean AI events per adopter (NaN without adopters).
    active_days_per_adopter : float
        Mean active days per adopter (NaN without adopters).
    rate : float
        ``adopters / users``.
    """

    segment: dict[str, str] = field(default_factory=dict, metadata={"json_flatten": True})
    variant: str
    users: int
    adopters: int
    accounts: int | None = field(default=None, metadata={"json_omit_none": True})
    events_per_adopter: float
    active_days_per_adopter: float
    rate: float


@dataclass(frozen=True)
class AdoptionSummary:
    """One adoption metric's breakdown (descriptive, no tests).

    Parameters
    ----------
    by_variant : tuple of AdoptionRate
        One row per variant.
    segments : dict of str to tuple of AdoptionRate
        Per segment column, one row per value × variant.
    """

    by_variant: tuple[AdoptionRate, ...]
    segments: dict[str, tuple[AdoptionRate, ...]] = field(default_factory=dict)


def segment_columns(metric: MetricSpec, available: list[str]) -> tuple[str, ...]:
    """The metric's ``segments``, or the default segment columns that exist."""
    if metric.segments is not None:
        return metric.segments
    return tuple(c for c in DEFAULT_SEGMENTS if c in available)


def _rates(table: UnitTable, column: str | None, val: str, reason: str) -> tuple[AdoptionRate, ...]:
    """One row per variant (``column`` None) or per value of ``column`` × variant, from
    one query where the table is that returns only the groups' counts and sums.

    Per group: users N = number of units, adopters A = Σ vᵢ (vᵢ = 1 for an adopter),
    accounts (distinct account ids, a missing one counting once), and over the
    adopters the sums Σ eᵢ and Σ dᵢ of AI events and active days with the number of
    adopters where each is known; the means Σ eᵢ / n_e and Σ dᵢ / n_d (NaN without
    adopters) and the rate A / N are taken here.  The sums are of integer counts, so
    they are exact in any order of addition, and the means have the bits of a mean
    taken over the units themselves.  A segment's values are shown as text, the
    missing ones as ``(missing)``.
    """
    units = table.frame()
    adopter = nw.col(val) == 1
    events, days = nw.col(f"{val}:events"), nw.col(f"{val}:days")
    aggs = [
        nw.len().alias("users"),
        nw.col(val).cast(nw.Int64).sum().alias("adopters"),
        nw.when(adopter).then(events).sum().alias("events"),
        nw.when(adopter).then(events).count().alias("events_n"),
        nw.when(adopter).then(days).sum().alias("days"),
        nw.when(adopter).then(days).count().alias("days_n"),
    ]
    with_accounts = ACCOUNT in table.columns
    if with_accounts:
        aggs.append(nw.col(ACCOUNT).n_unique().alias("accounts"))
    keys = [VARIANT]
    label_here = False
    if column is not None:
        # a text column is labelled on the engine (the same text); any other column is
        # grouped by its values and labelled here, as Polars writes them
        label_here = units.collect_schema()[column] != nw.String
        if not label_here:
            units = units.with_columns(nw.col(column).fill_null(MISSING))
        keys = [column, VARIANT]
    (found,) = collect_all([units.group_by(*keys).agg(*aggs)])
    table.record(reason, found.height)
    if label_here:
        assert column is not None
        found = found.with_columns(pl.col(column).cast(pl.String).fill_null(MISSING))
    rows = []
    for r in found.sort(keys).iter_rows(named=True):
        users, adopters = int(r["users"]), int(r["adopters"] or 0)
        row: dict[str, object] = {k: r[k] for k in keys if k != VARIANT}
        row |= {"variant": r[VARIANT], "users": users, "adopters": adopters}
        if with_accounts:
            row["accounts"] = int(r["accounts"])
        row |= {
            "events_per_adopter": _mean(r["events"], r["events_n"]),
            "active_days_per_adopter": _mean(r["days"], r["days_n"]),
            "rate": adopters / users,
        }
        rows.append(row)
    # a mean over no adopters is null: read as NaN, like every number of the results
    return tuple(from_jsonable(AdoptionRate, row) for row in rows)


def _mean(total: object, n: object) -> float | None:
    """Σ / n from an exact sum of counts (None without a unit)."""
    count = int(n or 0)  # type: ignore[call-overload]
    return float(total) / count if count else None  # type: ignore[arg-type]


def adoption_rates(
    table: UnitTable, metric: MetricSpec, segments: tuple[str, ...]
) -> AdoptionSummary:
    """Per variant: users, adopters, adoption rate, AI events and active days per
    adopter; and the same per value of each segment column (descriptive, no tests).
    Computed where the table is: one query per breakdown, one row per group back."""
    val = value_column(metric)
    by_segment = {col: _rates(table, col, val, "adoption by cohort") for col in segments}
    return AdoptionSummary(_rates(table, None, val, "adoption by cohort"), by_segment)
