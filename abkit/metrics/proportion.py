"""Proportion: the share of units with the outcome (a 0/1 column, or did the event at all)."""

from __future__ import annotations

from typing import ClassVar

from abkit.metrics.base import OneColumn
from abkit.metrics.rate import Rate


class Proportion(OneColumn, Rate):
    name: ClassVar[str] = "proportion"
