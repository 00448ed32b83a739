"""Numbers read back from JSON, where NaN and ±inf were written as null.

``AnalysisResult.to_dict`` writes non-finite numbers as ``null`` (JSON has no NaN).
results.json is read back by :mod:`abkit.json_codec`, which reads a ``null`` where a
float is expected as NaN; these helpers do the same for the ``from_dict`` methods that
:class:`~abkit.decision.Decision`, :class:`~abkit.health.HealthBand` and
:class:`~abkit.segments.SegmentBreakdown` still carry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from abkit.stats.fixed_horizon import EFFECT_FIELDS, INTERVAL_FIELDS


def number(value: Any) -> float:
    """A float, NaN for null."""
    return math.nan if value is None else float(value)


def pair(values: Sequence[Any]) -> tuple[float, float]:
    """An interval (low, high), NaN for a null side."""
    return (number(values[0]), number(values[1]))


def effect_fields(d: Mapping[str, Any]) -> dict[str, Any]:
    """A comparison's effect fields (:data:`EFFECT_FIELDS`) read back from a dict."""
    return {k: pair(d[k]) if k in INTERVAL_FIELDS else number(d[k]) for k in EFFECT_FIELDS}
