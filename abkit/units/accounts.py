"""The optional accounts table: one row per account with revenue (and seats).

Used for net revenue retention: NRR = Σ ARR_end / Σ ARR_start over an arm's accounts
(ARR-weighted, the usual definition; the account-weighted variant averages each
account's ARR_end / ARR_start).  Rows that cannot be used are counted with a reason.
"""

from __future__ import annotations

import polars as pl

from abkit.config import ExperimentSpec
from abkit.errors import AbkitInputError
from abkit.io.assignments import ACCOUNT, REASON, VARIANT
from abkit.io.exclusions import Ledger
from abkit.io.readers import Table
from abkit.stats.cluster import AccountArm

TABLE = "accounts"


def account_revenue(
    table: Table,
    spec: ExperimentSpec,
    account_variant: pl.DataFrame,
    variants: tuple[str, ...],
    ledger: Ledger,
) -> dict[str, AccountArm]:
    """AccountArm(x = ARR at end, y = ARR at start) per variant.

    ``account_variant`` maps each (uncontaminated) account of the experiment to its
    variant.
    """
    start, end = spec.input.arr_start, spec.input.arr_end
    table.require(spec.account, what="account id")
    table.require(start, what="ARR at the start")
    table.require(end, what="ARR at the end")
    schema = table.frame.collect_schema()
    for col in (start, end):
        if not schema[col].is_numeric():
            raise AbkitInputError(
                f"the column must be numeric, found {schema[col]}.", source=table.label, column=col
            )
    frame = table.frame.select(
        pl.col(spec.account).alias(ACCOUNT),
        pl.col(start).cast(pl.Float64).alias("y"),
        pl.col(end).cast(pl.Float64).alias("x"),
    ).collect()
    frame = frame.with_columns(pl.col(ACCOUNT).cast(account_variant.schema[ACCOUNT], strict=False))
    frame = frame.join(account_variant, on=ACCOUNT, how="left", maintain_order="left")
    reason = (
        pl.when(pl.col(ACCOUNT).is_null())
        .then(pl.lit("null account id"))
        .when(pl.col(VARIANT).is_null())
        .then(pl.lit("account not in the experiment (or contaminated)"))
        .when(pl.col(ACCOUNT).is_duplicated())
        .then(pl.lit("account appears in more than one row"))
        .when(pl.col("y").is_null() | (pl.col("y") <= 0))
        .then(pl.lit("missing or non-positive ARR at the start (NRR undefined)"))
        .when(pl.col("x").is_null() | (pl.col("x") < 0))
        .then(pl.lit("missing or negative ARR at the end"))
        .otherwise(pl.lit(None, pl.String))
    )
    frame = frame.with_columns(reason.alias(REASON))
    ledger.add_counts(TABLE, frame.group_by(REASON).len())
    valid = frame.filter(pl.col(REASON).is_null()).sort(ACCOUNT)
    return {
        v: AccountArm(
            valid.filter(pl.col(VARIANT) == v)["x"].to_numpy(),
            valid.filter(pl.col(VARIANT) == v)["y"].to_numpy(),
        )
        for v in variants
    }
