"""The closed sets of values that configuration options take, stated once.

The config schema (:mod:`abkit.config`) types its keys with these, the statistics
modules check their arguments against them and the CLI offers them as choices.  This
module imports nothing heavy, so the CLI can read it for ``--help``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any, Literal, get_args

InputKind = Literal["auto", "events", "units", "summary", "paired"]
SequentialMethod = Literal["msprt", "cs", "gst"]
Mode = Literal["b2c", "b2b"]
Direction = Literal["increase", "decrease"]
# multiple-comparison correction across treatments (abkit.stats.multiplicity)
Correction = Literal["holm", "bh", "none"]
# how the surrogate forecast's interval is found (abkit.stats.surrogate)
SurrogateInterval = Literal["delta", "bootstrap"]
# Lan–DeMets spending function of a group-sequential design (abkit.stats.group_sequential)
Spending = Literal["obrien_fleming", "pocock"]
# where the events are read and reduced to per-unit rows (abkit.io.engines); "ibis"
# reads them through Ibis over DuckDB
Engine = Literal["polars", "duckdb", "spark", "ibis"]
# how quantiles of event values are computed (abkit.inputs.quantiles): every value
# collected, or a log-spaced histogram reduced on the engine ("auto": exact on Polars)
QuantileMethod = Literal["auto", "exact", "histogram"]
# B2B estimand: user (ratio of account sums) or account (mean of account values)
Weighting = Literal["user", "account"]


def choices(option: Any) -> tuple[str, ...]:
    """The values a ``Literal`` option allows (for CLI choices and messages)."""
    return tuple(get_args(option))


def config_key(default: Any, check: Callable[[Any], bool] | None = None, must: str = "") -> Any:
    """A config key's dataclass field: its default and, optionally, the range its values
    must lie in (``must`` says it in words for the error message)."""
    return field(default=default, metadata={"check": check, "must": must})
