"""The benchmarks' one timing rule: the best of a few runs of a callable (the minimum is
the least disturbed by the rest of the machine), printed with its label."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def best_of(label: str, fn: Callable[[], T], repeats: int = 3, unit: str = "s") -> tuple[T, float]:
    """Run ``fn`` ``repeats`` times; print and return its last result and the best
    wall time in seconds (printed in ``unit``: 's' or 'ms')."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    shown = f"{best * 1000:.1f} ms" if unit == "ms" else f"{best:.3f} s"
    print(f"{label}: {shown} (best of {repeats})")
    result: Any = out
    return result, best
