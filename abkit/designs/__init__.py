"""Designs: one per randomisation unit (users, accounts, paired inputs).

:func:`design_for` is the one place that reads ``[experiment] mode`` and the input
kind to choose the design; everything after asks the design.
"""

from __future__ import annotations

from typing import Any

from abkit.config import ExperimentSpec
from abkit.designs.accounts import Accounts
from abkit.designs.base import Design, Statistics, Tested
from abkit.designs.paired import Paired
from abkit.designs.users import Users
from abkit.engine.backend import scratch
from abkit.inputs.prepare import Reduced, prepare
from abkit.io.exclusions import Ledger
from abkit.io.readers import Data

__all__ = [
    "Accounts",
    "Design",
    "Paired",
    "Statistics",
    "Tested",
    "Users",
    "design_for",
    "statistics_of",
]


def design_for(spec: ExperimentSpec, kind: str | None = None) -> Design[Any]:
    """The design of an experiment: paired inputs for a paired export (``kind``),
    accounts when accounts were randomised (``mode = "b2b"``), users otherwise.

    Examples
    --------
    >>> from abkit.config import load_config
    >>> design_for(load_config({"experiment": {"mode": "b2b", "account": "org"}})).name
    'accounts'
    >>> design_for(load_config(None)).name
    'users'
    >>> design_for(load_config(None), kind="paired").name
    'paired inputs'
    """
    if kind == "paired":
        return Paired()
    if spec.mode == "b2b":
        return Accounts()
    return Users()


def statistics_of(
    data: Data,
    spec: ExperimentSpec,
    ledger: Ledger,
    *,
    events: Data | None = None,
    kind: str | None = None,
    accounts: Data | None = None,
) -> tuple[Design[Any], Reduced, Statistics]:
    """Read and reduce an export under its design, and build the design's statistics:
    the design of the mode guides the input stage (which units need their account,
    which kinds it admits); a paired export then switches to the paired design.

    Returns the design that analyses the export, what the input stage reduced, and
    the design's statistics (the pipeline of :func:`abkit.analyze` and of power
    analysis up to the tests).
    """
    with scratch():  # what the engine keeps for this analysis is dropped after it
        reduced = prepare(
            data, spec, ledger, design_for(spec), events=events, kind=kind, accounts=accounts
        )
        design = design_for(spec, reduced.kind)
        return design, reduced, design.statistics(reduced, spec, ledger)
