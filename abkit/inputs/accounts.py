"""The optional accounts table: one row per account with revenue and/or seats.

* Net revenue retention: NRR = Σ ARR_end / Σ ARR_start over an arm's accounts
  (ARR-weighted, the usual definition; the account-weighted variant averages each
  account's ARR_end / ARR_start).  Needs ``arr_start`` and ``arr_end``.
* Seats: with a ``seats`` column, adoption is adopters / seats (licensed seats)
  instead of adopters / users seen in the export.

Every row is used or counted with a reason, once, however many metrics use the table.
"""

from __future__ import annotations

import polars as pl

from abkit.config import DEFAULT_ACCOUNT, ExperimentSpec
from abkit.errors import AbkitInputError
from abkit.io.exclusions import Ledger
from abkit.io.readers import Table
from abkit.names import ACCOUNT, REASON, VARIANT
from abkit.stats.cluster import AccountArm

TABLE = "accounts"
SEATS = "_seats"


def load_accounts(
    table: Table,
    spec: ExperimentSpec,
    account_variant: pl.DataFrame,
    ledger: Ledger,
    need_revenue: bool,
) -> pl.DataFrame:
    """Validated rows: ACCOUNT, VARIANT, ``x`` = ARR end, ``y`` = ARR start (when
    ``need_revenue``) and SEATS (when the table has a seats column)."""
    account = spec.account or DEFAULT_ACCOUNT
    table.require(account, what="account id")
    cols = [pl.col(account).alias(ACCOUNT)]
    numeric = []
    if need_revenue:
        table.require(spec.input.arr_start, what="ARR at the start")
        table.require(spec.input.arr_end, what="ARR at the end")
        numeric += [(spec.input.arr_start, "y"), (spec.input.arr_end, "x")]
    has_seats = spec.input.seats in table.columns
    if has_seats:
        numeric.append((spec.input.seats, SEATS))
    schema = table.frame.collect_schema()
    for col, alias in numeric:
        if not schema[col].is_numeric():
            raise AbkitInputError(
                f"the column must be numeric, found {schema[col]}.", source=table.label, column=col
            )
        cols.append(pl.col(col).cast(pl.Float64).alias(alias))
    frame = table.frame.select(cols).collect()
    frame = frame.with_columns(pl.col(ACCOUNT).cast(account_variant.schema[ACCOUNT], strict=False))
    frame = frame.join(account_variant, on=ACCOUNT, how="left", maintain_order="left")
    reason = (
        pl.when(pl.col(ACCOUNT).is_null())
        .then(pl.lit("null account id"))
        .when(pl.col(VARIANT).is_null())
        .then(pl.lit("account not in the experiment (or contaminated)"))
        .when(pl.col(ACCOUNT).is_duplicated())
        .then(pl.lit("account appears in more than one row"))
    )
    if need_revenue:
        reason = (
            reason.when(pl.col("y").is_null() | (pl.col("y") <= 0))
            .then(pl.lit("missing or non-positive ARR at the start (NRR undefined)"))
            .when(pl.col("x").is_null() | (pl.col("x") < 0))
            .then(pl.lit("missing or negative ARR at the end"))
        )
    if has_seats:
        reason = reason.when(pl.col(SEATS).is_not_null() & (pl.col(SEATS) <= 0)).then(
            pl.lit("non-positive seat count")
        )
    frame = frame.with_columns(reason.otherwise(pl.lit(None, pl.String)).alias(REASON))
    ledger.add_counts(TABLE, frame.group_by(REASON).len())
    return frame.filter(pl.col(REASON).is_null()).drop(REASON).sort(ACCOUNT)


def revenue_arms(accounts: pl.DataFrame, variants: tuple[str, ...]) -> dict[str, AccountArm]:
    """AccountArm(x = ARR at end, y = ARR at start) per variant."""
    return {
        v: AccountArm(
            accounts.filter(pl.col(VARIANT) == v)["x"].to_numpy(),
            accounts.filter(pl.col(VARIANT) == v)["y"].to_numpy(),
        )
        for v in variants
    }
