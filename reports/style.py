"""Colours, markers and number formatting shared by every figure and table.

A language keeps one colour across all figures of a report: colours are assigned once, from the sorted
list of every language any input mentions, so the ar curve, the ar bar and the ar alignment line match.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import matplotlib
from matplotlib import colors as mcolors

# Qualitative palettes are the most distinguishable. Past ten languages we add saturated colours (the
# Dark2 set and two dark Paired tones) rather than tab20's pale halves, which vanish as thin lines on
# white. Beyond 20 no palette keeps every pair apart, so we sample a perceptually ordered map evenly and
# rely on the paged small multiples.
_TAB10 = [mcolors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
_EXTRA10 = [mcolors.to_hex(c) for c in matplotlib.colormaps["Dark2"].colors] + ["#6a3d9a", "#b15928"]

# Mixtures (plan and baselines) get fixed colours in bar charts: the plan stands out, baselines are muted.
PLAN_COLOR = "#1f5fbf"
_BASELINE_COLORS = ["#9aa4b1", "#c8a36a", "#7fb08a", "#b58db6", "#d48a7c", "#6fa8c0", "#a3a36b", "#8a8fd0"]

SEED_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "*"]

# Every figure is rendered with these settings (and nothing from the user's matplotlibrc), so reports
# look the same everywhere and SVG output is byte-stable for the same inputs.
RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.7,
    "axes.edgecolor": "#8a919a",
    "axes.axisbelow": True,
    "xtick.color": "#3b4148",
    "ytick.color": "#3b4148",
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    # Text from input files (language codes, mixture and stage names) is drawn literally: a '$' must not
    # switch matplotlib into math mode (or fail to parse there).
    "text.parse_math": False,
    "svg.hashsalt": "planner-report",
    "svg.fonttype": "none",
    "path.simplify": True,
}


def language_colors(languages: Iterable[str]) -> dict[str, str]:
    """One hex colour per language, stable for a given set of languages."""
    langs = sorted(set(languages))
    n = len(langs)
    if n <= 10:
        palette = _TAB10
    elif n <= 20:
        palette = _TAB10 + _EXTRA10
    else:
        cmap = matplotlib.colormaps["turbo"]
        palette = [mcolors.to_hex(cmap(0.05 + 0.9 * i / (n - 1))) for i in range(n)]
    return {lang: palette[i % len(palette)] for i, lang in enumerate(langs)}


def mixture_colors(mixtures: Sequence[str]) -> dict[str, str]:
    """The plan in a strong blue, baselines in muted colours, in the order given."""
    out: dict[str, str] = {}
    baselines = [m for m in mixtures if m != "plan"]
    for m in mixtures:
        if m == "plan":
            out[m] = PLAN_COLOR
    for i, m in enumerate(baselines):
        out[m] = _BASELINE_COLORS[i % len(_BASELINE_COLORS)]
    return out


def seed_marker(index: int) -> str:
    return SEED_MARKERS[index % len(SEED_MARKERS)]


def fmt_num(value, digits: int = 3) -> str:
    """A number for people: integers with thousands separators, others to `digits` significant figures.

    Empty for missing values (None/NaN), so tables show a blank rather than 'nan'.
    """
    if value is None:
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    mag = math.floor(math.log10(abs(v)))
    if mag >= digits - 1 and abs(v) < 1e15:
        return f"{round(v):,}"
    if -4 <= mag:
        decimals = max(digits - 1 - mag, 0)
        return f"{v:,.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def fmt_interval(value, low, high, digits: int = 3) -> str:
    """`value [low, high]`, or just the value when the interval is missing."""
    core = fmt_num(value, digits)
    if _missing(low) or _missing(high) or math.isinf(float(low)):
        return core
    if math.isinf(float(high)):  # a target some draws never reach: open above
        return f"{core} [{fmt_num(low, digits)}, ∞)"
    return f"{core} [{fmt_num(low, digits)}, {fmt_num(high, digits)}]"


def fmt_pct(value, digits: int = 1) -> str:
    if _missing(value):
        return ""
    return f"{100.0 * float(value):.{digits}f}%"


def fmt_signed(value, digits: int = 3) -> str:
    if _missing(value):
        return ""
    text = fmt_num(abs(float(value)), digits)
    return ("+" if float(value) >= 0 else "−") + text


def fmt_difference(mean, low=None, high=None, digits: int = 3) -> str:
    """A signed difference and its interval, all with one number of decimals (`digits` significant figures
    of the largest), so "+2.00" and "+0.400" never sit side by side: `+1.20 [+0.40, +2.00]`."""
    values = [float(v) for v in (mean, low, high) if not _missing(v)]
    if _missing(mean):
        return ""
    scale = max(abs(v) for v in values)
    decimals = digits - 1 if scale == 0 else min(max(digits - 1 - math.floor(math.log10(scale)), 0), 8)
    signed = lambda v: f"{float(v):+,.{decimals}f}".replace("-", "−")  # noqa: E731
    if _missing(low) or _missing(high):
        return signed(mean)
    return f"{signed(mean)} [{signed(low)}, {signed(high)}]"


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True
