"""Drawing infrastructure shared by every figure module: the report's rc settings, axes with readable
ticks (log, and log with a zero slot), figure creation and deterministic saving.

Figures are created with `matplotlib.figure.Figure` (Agg canvas), never `pyplot`, so there is no global
figure state to leak and rendering is safe in any process.
"""

from __future__ import annotations

import functools
import io
import math
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, Locator, LogLocator, NullFormatter, NullLocator

from core.files import atomic_write_bytes
from reports.style import RC

EXTRAPOLATION_SHADE = "#f1f3f6"
WARN_COLOR = "#b45309"
BACKTEST_COLOR = "#111827"
GOOD_COLOR = "#047857"
BAD_COLOR = "#b91c1c"
NEUTRAL_COLOR = "#4b5563"

# A symlog axis is linear below its threshold and logarithmic above. With this linear-part width the
# transform's slope is the same on both sides of the threshold, so a smooth curve stays smooth (no kink
# where the scale changes): linscale / (1 - 1/10) must equal 1 / ln 10.
_SMOOTH_LINSCALE = (1 - 1 / 10) / math.log(10)


def chunks(items: Sequence, size: int) -> list[list]:
    """Split into the fewest pages of at most `size`, balanced (13 by 12 → 7 + 6, not 12 + 1)."""
    pages = max(1, math.ceil(len(items) / size))
    per_page = max(1, math.ceil(len(items) / pages))
    return [list(items[i : i + per_page]) for i in range(0, len(items), per_page)] or [[]]


def short(v: float) -> str:
    """Compact tick labels: 500, 2k, 1.5M, 0.002."""
    if v <= 0 or not math.isfinite(v):
        return ""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            q = v / div
            return f"{q:.0f}{suffix}" if q >= 10 or q.is_integer() else f"{q:.1f}{suffix}"
    if v >= 1:
        return f"{v:.0f}"
    return f"{v:.2g}"


def log_axis(ax, axis: str = "x") -> None:
    """Log scale with plain-number ticks (250, 1k, 10k) instead of 10^k notation."""
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    target.set_major_formatter(FuncFormatter(lambda v, _: short(v)))
    target.set_minor_formatter(NullFormatter())


def zero_threshold(smallest_positive: float) -> float:
    """Where a zero-slot axis turns from linear to log: the largest 1-2-5 number at most half the smallest
    positive size, so every measured size sits on the log part and 0 gets a slot of its own."""
    if not (np.isfinite(smallest_positive) and smallest_positive > 0):
        return 1.0
    limit = smallest_positive / 2
    exponent = math.floor(math.log10(limit))
    nice = [m * 10.0**e for e in (exponent - 1, exponent) for m in (1, 2, 5)]
    return max(v for v in nice if v <= limit * (1 + 1e-9))


class _ZeroLogLocator(Locator):
    """Ticks for a zero-slot axis: 0, then 1-2-5 numbers from the threshold up."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin, vmax):
        ticks = [0.0] if vmin <= 0 <= vmax else []
        top = max(vmax, self.threshold)
        for e in range(math.floor(math.log10(self.threshold)), math.ceil(math.log10(top)) + 1):
            ticks += [m * 10.0**e for m in (1, 2, 5) if self.threshold <= m * 10.0**e <= vmax]
        # Past three decades 1-2-5 ticks crowd a small panel; keep the powers of ten and the ends.
        if len(ticks) > 9:
            ticks = [t for t in ticks if t == 0 or math.isclose(math.log10(t) % 1, 0, abs_tol=1e-9)]
        return ticks


def zero_log_axis(ax, threshold: float) -> None:
    """An x axis that shows 0 (zero-shot evaluations, curves with a finite value at 0): linear from 0 to
    `threshold`, logarithmic beyond. The threshold is marked by a faint dotted line."""
    ax.set_xscale("symlog", linthresh=threshold, linscale=_SMOOTH_LINSCALE)
    ax.xaxis.set_major_locator(_ZeroLogLocator(threshold))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if v == 0 else short(v)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.axvline(threshold, color="#c7ccd3", lw=0.8, ls=(0, (1, 2)), zorder=0)


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, w_pad=0.08, hspace=0.06, wspace=0.04)
    return fig


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns for n small multiples (pages hold at most 12), leaving few empty cells."""
    cols = {1: 1, 2: 2, 3: 3, 4: 2, 5: 3, 6: 3, 7: 4, 8: 4, 9: 3}.get(n, 4)
    return math.ceil(max(n, 1) / cols), cols


def styled(draw):
    """Run a figure function under the report's rcParams: axes read them when created, not when saved."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return draw(*args, **kwargs)

    return wrapper


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """Render deterministically: no timestamps or software stamps, so the same inputs give the same bytes."""
    buf = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context(RC):
        # "tight" grows the canvas to whatever the layout placed outside it (wide legends on narrow grids).
        fig.savefig(buf, format=fmt, metadata=metadata, facecolor="white", bbox_inches="tight", pad_inches=0.1)
    return buf.getvalue()


def save_figure(fig: Figure, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{stem}.png", directory / f"{stem}.svg"
    atomic_write_bytes(png, figure_bytes(fig, "png"))  # a full disk must not leave half a figure
    # The first save ran the constrained layout; freeze it so the second does not solve it again
    # (the layout is most of the rendering time, and both files must show the same layout anyway).
    fig.set_layout_engine("none")
    atomic_write_bytes(svg, figure_bytes(fig, "svg"))
    return png, svg
