"""Bookkeeping of input rows that were not used, with the reason for each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import polars as pl


def first_reason(rules: Sequence[tuple[Any, str]], api: ModuleType = pl, dtype: Any = None) -> Any:
    """Per row, the reason of the first rule whose condition holds, else null (used).

    ``api`` is the expression namespace of the conditions: ``polars`` or ``narwhals``
    (the events' engine), which share ``when/then``, ``lit`` and ``coalesce``; ``dtype``
    the reasons' type (text by default; a Polars ``Enum`` of the reasons holds each
    as a small integer code).
    """
    dtype = api.String if dtype is None else dtype
    return api.coalesce(
        *[api.when(condition).then(api.lit(reason, dtype)) for condition, reason in rules],
        api.lit(None, dtype),
    )


@dataclass(frozen=True)
class Exclusion:
    """Input rows of one table left out for one reason.

    Parameters
    ----------
    table : str
        The input table ("assignments", "events", "units", ...).
    reason : str
        Why the rows were not used, in words a reader can act on.
    rows : int
        How many rows were left out for it.
    """

    table: str
    reason: str
    rows: int


@dataclass(frozen=True)
class RowCount:
    """What became of one input table's rows: ``read == used + excluded``.

    Parameters
    ----------
    read : int
        Rows read from the table.
    used : int
        Rows the analysis used.
    excluded : int
        Rows left out (the sum of the table's :class:`Exclusion` rows).
    """

    read: int
    used: int
    excluded: int


@dataclass
class Ledger:
    """Counts of input rows per table: read, used and excluded by reason.

    The invariant ``read == used + Σ excluded`` holds for every table and is
    checked by :meth:`check`, so no row can go missing unnoticed.
    """

    exclusions: list[Exclusion] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, reason: str, rows: int) -> None:
        if rows:
            self.exclusions.append(Exclusion(table, reason, int(rows)))

    def add_counts(self, table: str, counts: pl.DataFrame, reason_col: str = "_reason") -> None:
        """Record a frame of (reason, len) counts; the null reason is the used rows."""
        total = 0
        ordered = counts.sort(reason_col, nulls_last=True)
        for reason, rows in ordered.select(reason_col, "len").iter_rows():
            total += rows
            if reason is None:
                self.used[table] = self.used.get(table, 0) + rows
            else:
                self.add(table, reason, rows)
        self.read[table] = self.read.get(table, 0) + total
        self.used.setdefault(table, 0)

    def excluded(self, table: str) -> int:
        return sum(e.rows for e in self.exclusions if e.table == table)

    def counts(self) -> dict[str, RowCount]:
        """Per table read, its rows read, used and excluded (the results' rows table)."""
        return {
            t: RowCount(read=n, used=self.used.get(t, 0), excluded=self.excluded(t))
            for t, n in self.read.items()
        }

    def check(self) -> None:
        for table, n in self.read.items():
            accounted = self.used.get(table, 0) + self.excluded(table)
            if accounted != n:  # pragma: no cover - a bug in abkit, not in the data
                raise AssertionError(
                    f"row accounting broken for {table}: read {n}, used+excluded {accounted}"
                )
