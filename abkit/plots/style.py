"""One look for every abkit figure: colour-blind-safe colours, sizes readable at 800 px."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common
# colour-vision deficiency.  Blue and vermilion mean a decision (better / worse) and
# grey undecided, so arms never take them: the control is dark grey, treatments take
# the arm palette (the other Okabe-Ito hues, then Tol's muted ones).
CONTROL = "#555555"
BETTER, WORSE, NEUTRAL = "#0072B2", "#D55E00", "#777777"
PALETTE = ("#009E73", "#CC79A7", "#56B4E9", "#882255", "#999933", "#44AA99", "#332288")
WIDTH, HEIGHT, DPI = 8.0, 4.5, 150  # inches; 1200 × 675 px, crisp when shown at 800 px

RC: dict[Any, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.frameon": False,
    "svg.hashsalt": "abkit",
}


def variant_colours(variants: list[str], control: str) -> dict[str, str]:
    colours = {control: CONTROL}
    treatments = [v for v in variants if v != control]
    colours.update({v: PALETTE[i % len(PALETTE)] for i, v in enumerate(treatments)})
    return colours


def styled(plot: Callable[..., Any]) -> Callable[..., Any]:
    """Run a plotting function with abkit's rc settings (fonts and grids are read when
    artists are created, so the whole function runs inside the context)."""

    @functools.wraps(plot)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib as mpl

        with mpl.rc_context(RC):
            return plot(*args, **kwargs)

    return wrapper


def new_figure(height: float = HEIGHT) -> tuple[Any, Any]:
    """A Figure not attached to pyplot (no global state, safe in servers and tests)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def save(fig: Any, path: Any) -> None:
    """PNG without the Software/date metadata, so the same input gives the same bytes."""
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
