"""How numbers read: a p-value in a table cell and in a sentence, a metric's value
(rates in percent), an interval with its unbounded sides, text from the data with its
control characters made visible.  One wording for every layer that writes one
(reports, results' one-line views, the sample-ratio check, warnings), so that
statistics and results need not import the renderers."""

from __future__ import annotations

import math
import re


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


UNBOUNDED = "unbounded"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def show_controls(text: str) -> str:
    """Control characters from the data made visible as \\xNN (an ESC could rewrite a
    terminal; none belongs in a report).  Newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def is_missing(value: float | None) -> bool:
    """Whether a number is absent: None or NaN."""
    return value is None or math.isnan(value)


def number_text(value: float | None, rate: bool = False, signed: bool = False) -> str:
    """A metric's value to 4 significant digits; a rate in percent (percentage points
    when ``signed``); 'n/a' when missing, 'unbounded' when infinite.

    Examples
    --------
    >>> number_text(0.1234), number_text(0.1234, rate=True), number_text(0.01, True, True)
    ('0.1234', '12.34 %', '+1.00 pp')
    """
    if is_missing(value):
        return "n/a"
    assert value is not None
    if math.isinf(value):
        return UNBOUNDED
    if rate:
        text = f"{value * 100:+.2f}" if signed else f"{value * 100:.2f}"
        return text + (" pp" if signed else " %")
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def pct(value: float | None) -> str:
    """A relative change in percent, signed."""
    if is_missing(value):
        return "n/a"
    assert value is not None
    return UNBOUNDED if math.isinf(value) else f"{value * 100:+.2f} %"


def bounded(low: str, high: str, ci: tuple[float, float]) -> str:
    """[low, high]; a missing side next to a finite one is an unbounded side (a test
    inversion that never rejects on that side), shown as such."""
    lo_missing, hi_missing = is_missing(ci[0]), is_missing(ci[1])
    if lo_missing and hi_missing:
        return "n/a"
    low = UNBOUNDED if lo_missing or math.isinf(ci[0]) else low
    high = UNBOUNDED if hi_missing or math.isinf(ci[1]) else high
    return f"[{low}, {high}]"


def interval_text(ci: tuple[float, float], rate: bool = False) -> str:
    """An interval of a difference, each side as :func:`number_text` (signed).

    Examples
    --------
    >>> interval_text((-0.5, 1.25)), interval_text((0.01, float("inf")), rate=True)
    ('[-0.5, +1.25]', '[+1.00 pp, unbounded]')
    """
    return bounded(number_text(ci[0], rate, True), number_text(ci[1], rate, True), ci)


def rel_interval(ci: tuple[float, float]) -> str:
    """An interval of a relative change, in percent."""
    return bounded(pct(ci[0]), pct(ci[1]), ci)
