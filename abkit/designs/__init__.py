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

__all__ = ["Accounts", "Design", "Paired", "Statistics", "Tested", "Users", "design_for"]


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
