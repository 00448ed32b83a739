"""The archive's schema: one row per experiment × metric × treatment.

Every Parquet file of an archive holds exactly these columns with these types (and the
key-value metadata ``abkit.archive`` = the schema version); reading checks each file
against them, so a file from another tool, a truncated write or a schema of a future
version is named in a one-paragraph error instead of being mixed in.

=================== ======== ==============================================================
column              type     meaning
=================== ======== ==============================================================
experiment          String   the experiment's name (results.json ``experiment.name``)
config_hash         String   SHA-256 of the experiment's settings and metrics (16 hex digits)
added_at            Datetime when the row was appended (UTC, microseconds)
export_end          String   when the export ends (ISO), or null
metric              String   the metric's name
metric_type         String   its type (retention, proportion, ratio, ...)
variant             String   the treatment compared with control
control             String   the control variant
direction           String   "increase" or "decrease": the good direction
method              String   the frequentist test
control_n           Int64    units with data in control
treatment_n         Int64    units with data in the treatment
control_value       Float64  the metric in control, C
treatment_value     Float64  the metric in the treatment, T
effect              Float64  T − C
effect_se           Float64  its standard error
lift                Float64  T/C − 1
log_ratio           Float64  log(T/C): the scale priors are learnt on
log_ratio_se        Float64  its standard error
p_value             Float64  the two-sided fixed-horizon p-value
decision            String   the frequentist decision's outcome
decision_basis      String   what it rests on (fixed-horizon, sequential, ...)
bayes_decision      String   the Bayesian reading's outcome, or null without one
chance_to_win       Float64  its chance to beat control, or null
abkit_version       String   the abkit that wrote the row
=================== ======== ==============================================================
"""

from __future__ import annotations

import polars as pl

SCHEMA_VERSION = "1"
METADATA_KEY = "abkit.archive"

SCHEMA: dict[str, pl.DataType] = {
    "experiment": pl.String(),
    "config_hash": pl.String(),
    "added_at": pl.Datetime("us", "UTC"),
    "export_end": pl.String(),
    "metric": pl.String(),
    "metric_type": pl.String(),
    "variant": pl.String(),
    "control": pl.String(),
    "direction": pl.String(),
    "method": pl.String(),
    "control_n": pl.Int64(),
    "treatment_n": pl.Int64(),
    "control_value": pl.Float64(),
    "treatment_value": pl.Float64(),
    "effect": pl.Float64(),
    "effect_se": pl.Float64(),
    "lift": pl.Float64(),
    "log_ratio": pl.Float64(),
    "log_ratio_se": pl.Float64(),
    "p_value": pl.Float64(),
    "decision": pl.String(),
    "decision_basis": pl.String(),
    "bayes_decision": pl.String(),
    "chance_to_win": pl.Float64(),
    "abkit_version": pl.String(),
}


def schema_problem(found: dict[str, pl.DataType]) -> str | None:
    """What differs between a file's columns and :data:`SCHEMA`, or None.

    Parameters
    ----------
    found : dict of str to polars.DataType
        The file's column names and types.

    Returns
    -------
    str or None

    Examples
    --------
    >>> import polars as pl
    >>> from abkit.archive.schema import SCHEMA, schema_problem
    >>> schema_problem(dict(SCHEMA)) is None
    True
    >>> schema_problem({"a": pl.Int64()})[:40]
    'it lacks the columns experiment, config_'
    """
    missing = [c for c in SCHEMA if c not in found]
    if missing:
        shown = ", ".join(missing[:4]) + (
            f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        )
        return f"it lacks the columns {shown}"
    wrong = [f"{c} is {found[c]} (not {t})" for c, t in SCHEMA.items() if found[c] != t]
    if wrong:
        return "its column types differ: " + "; ".join(wrong[:3])
    extra = [c for c in found if c not in SCHEMA]
    if extra:
        return f"it has columns the archive does not: {', '.join(extra[:4])}"
    return None
