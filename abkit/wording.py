"""How a p-value reads, in a table cell and in a sentence: one wording for every
layer that writes one (reports, the sample-ratio check, warnings), with no other
dependency, so that statistics and results need not import the renderers."""

from __future__ import annotations

import math


def pval(p: float | None) -> str:
    """A p-value as a table cell: '0.0123', '<0.0001' or 'n/a'."""
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def p_phrase(p: float | None, label: str = "p") -> str:
    """A p-value in a sentence: 'p = 0.0123', 'p < 0.0001' or 'p n/a'.

    Examples
    --------
    >>> p_phrase(0.01234), p_phrase(0.0), p_phrase(0.2, "two-sided p")
    ('p = 0.0123', 'p < 0.0001', 'two-sided p = 0.2000')
    """
    text = pval(p)
    if text.startswith("<"):
        return f"{label} < {text[1:]}"
    return f"{label} n/a" if text == "n/a" else f"{label} = {text}"
