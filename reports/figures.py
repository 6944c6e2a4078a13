"""The report's figures, as pure functions from prepared arrays to matplotlib `Figure`s.

Nothing here reads files or knows the fits API: `reports.build` turns inputs into the small dataclasses
below, and these functions only draw. Figures are created with `matplotlib.figure.Figure` (Agg canvas),
never `pyplot`, so there is no global figure state to leak and rendering is safe in any process.

Many languages stay readable by paging: callers split languages into chunks (`chunks`) and draw one
figure per chunk, with the same colour per language on every page.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from reports.style import PLAN_COLOR, RC, mixture_colors, seed_marker

EXTRAPOLATION_SHADE = "#f1f3f6"
WARN_COLOR = "#b45309"
BACKTEST_COLOR = "#111827"

# Languages per page for each kind of figure: past these, labels and lines start to collide.
CURVES_PER_PAGE = 12
LINES_PER_CHART = 10
BARS_PER_PAGE = 56  # bars (languages × mixtures) in one allocation chart


def languages_per_bar_page(mixtures: int) -> int:
    return int(np.clip(BARS_PER_PAGE // max(mixtures, 1), 4, 12))


def chunks(items: Sequence, size: int) -> list[list]:
    """Split into the fewest pages of at most `size`, balanced (13 by 12 → 7 + 6, not 12 + 1)."""
    pages = max(1, math.ceil(len(items) / size))
    per_page = max(1, math.ceil(len(items) / pages))
    return [list(items[i : i + per_page]) for i in range(0, len(items), per_page)] or [[]]


# ---------------------------------------------------------------------------------------------- data


@dataclass
class CurvePanel:
    """Everything one language's scaling-curve panel shows."""

    language: str
    color: str
    points_x: np.ndarray  # every successful run: data amount
    points_y: np.ndarray  # ... and its metric
    points_seed: np.ndarray  # ... and its seed (for the marker shape)
    grid: np.ndarray | None = None  # x where the fitted curve is drawn
    fit: np.ndarray | None = None
    band_low: np.ndarray | None = None
    band_high: np.ndarray | None = None
    measured_max: float | None = None  # largest measured size: the curve is an extrapolation beyond it
    backtest: tuple[float, float, float] | None = None  # (x_held, actual, predicted)
    plan: tuple[float, float, float, float] | None = None  # (x, predicted, low, high)
    plan_note: str = ""  # e.g. "cap" when the plan sits at a bound
    increasing: bool = True  # the metric rises with data (a score); False for a loss
    label: str = ""  # e.g. "power · R² 0.98"
    warnings: list[str] = field(default_factory=list)


@dataclass
class MixtureSeries:
    """One mixture (the plan or a baseline) across languages, aligned with a language list."""

    name: str
    amount: np.ndarray
    amount_low: np.ndarray | None = None
    amount_high: np.ndarray | None = None
    predicted: np.ndarray | None = None
    predicted_low: np.ndarray | None = None
    predicted_high: np.ndarray | None = None


@dataclass
class MarginalLine:
    language: str
    color: str
    grid: np.ndarray  # data in budget units
    gain: np.ndarray  # marginal gain per budget unit
    plan_x: float | None = None
    plan_gain: float | None = None
    at_bound: bool = False


# ------------------------------------------------------------------------------------------ helpers


def _log_axis(ax, axis: str = "x") -> None:
    """Log scale with plain-number ticks (250, 1k, 10k) instead of 10^k notation."""
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    target.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
    target.set_minor_formatter(NullFormatter())


def _short(v: float) -> str:
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


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, w_pad=0.08, hspace=0.06, wspace=0.04)
    return fig


def _grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns for n small multiples (pages hold at most 12), leaving few empty cells."""
    cols = {1: 1, 2: 2, 3: 3, 4: 2, 5: 3, 6: 3, 7: 4, 8: 4, 9: 3}.get(n, 4)
    return math.ceil(max(n, 1) / cols), cols


def _styled(draw):
    """Run a figure function under the report's rcParams: axes read them when created, not when saved."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return draw(*args, **kwargs)

    return wrapper


def _seed_offsets(seeds: np.ndarray) -> dict:
    """Small multiplicative x offsets per seed so repeated runs at one size do not hide each other."""
    unique = sorted(pd.unique(seeds).tolist(), key=lambda s: (str(type(s)), s))
    n = len(unique)
    return {s: 1.0 + 0.035 * (i - (n - 1) / 2) for i, s in enumerate(unique)}


def _seed_list(panels: Sequence[CurvePanel]) -> list:
    seeds: set = set()
    for p in panels:
        seeds.update(pd.unique(p.points_seed).tolist())
    return sorted(seeds, key=lambda s: (str(type(s)), s))


# ----------------------------------------------------------------------------------------- figures


@_styled
def scaling_curves_figure(panels: Sequence[CurvePanel], xlabel: str, ylabel: str, level: float) -> Figure:
    """Figure 1: one panel per language (small multiples) with runs, fit, band, extrapolation, backtest, plan."""
    n = len(panels)
    rows, cols = _grid_shape(n)
    # About 10.5 inches wide whatever the column count, so the page shows every figure at the same scale.
    width = 3.4 if cols <= 3 else 2.65
    fig = _new_figure(width * cols + 0.4, (2.75 if cols <= 3 else 2.45) * rows + 0.75)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    seeds = _seed_list(panels)
    seed_index = {s: i for i, s in enumerate(seeds)}

    for ax, panel in zip(axes, panels):
        _draw_curve_panel(ax, panel, seed_index)
        ax.set_xlabel(xlabel)
    for ax in axes[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:n]):
        if i % cols == 0:
            ax.set_ylabel(ylabel)

    handles = [
        Line2D([], [], color="#374151", lw=1.8, label="fit (measured range)"),
        Line2D([], [], color="#374151", lw=1.6, ls=(0, (4, 2)), label="extrapolation"),
        Patch(facecolor="#9ca3af", alpha=0.35, label=f"{level:.0%} bootstrap band"),
    ]
    handles += [
        Line2D([], [], ls="", marker=seed_marker(seed_index[s]), color="#4b5563", mfc="white", label=f"run, seed {s}")
        for s in seeds[:6]
    ]
    handles += [
        Line2D([], [], ls="", marker="D", mfc="white", mec=BACKTEST_COLOR, color=BACKTEST_COLOR,
               label="backtest: held-out size predicted"),
        Line2D([], [], ls="", marker="*", ms=11, mfc="#fbbf24", mec="#111827", label="planned allocation"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 4), fontsize=8.5)
    return fig


def _draw_curve_panel(ax, p: CurvePanel, seed_index: dict) -> None:
    _log_axis(ax, "x")
    if p.grid is not None and p.fit is not None:
        grid = np.asarray(p.grid, dtype=float)
        edge = p.measured_max if p.measured_max is not None else grid.max()
        if grid.max() > edge:
            ax.axvspan(edge, grid.max(), color=EXTRAPOLATION_SHADE, zorder=0, lw=0)
        if p.band_low is not None and p.band_high is not None:
            ax.fill_between(grid, p.band_low, p.band_high, color=p.color, alpha=0.18, lw=0, zorder=1)
        inside = grid <= edge * (1 + 1e-9)
        ax.plot(grid[inside], np.asarray(p.fit)[inside], color=p.color, lw=1.8, zorder=3)
        beyond = grid >= edge * (1 - 1e-9)
        if beyond.sum() > 1:
            ax.plot(grid[beyond], np.asarray(p.fit)[beyond], color=p.color, lw=1.6, ls=(0, (4, 2)), zorder=3)
    offsets = _seed_offsets(p.points_seed) if len(p.points_seed) else {}
    for seed in offsets:
        mask = p.points_seed == seed
        ax.scatter(
            np.asarray(p.points_x)[mask] * offsets[seed], np.asarray(p.points_y)[mask],
            marker=seed_marker(seed_index.get(seed, 0)), s=22, facecolor="white", edgecolor=p.color,
            linewidth=1.2, zorder=4,
        )
    if p.backtest is not None:
        x_held, actual, predicted = p.backtest
        ax.plot([x_held, x_held], [actual, predicted], color=BACKTEST_COLOR, lw=0.9, zorder=5)
        ax.scatter([x_held], [predicted], marker="D", s=30, facecolor="white", edgecolor=BACKTEST_COLOR,
                   linewidth=1.2, zorder=6)
    if p.plan is not None:
        x, y, lo, hi = p.plan
        if np.isfinite(lo) and np.isfinite(hi):
            ax.errorbar([x], [y], yerr=[[max(y - lo, 0)], [max(hi - y, 0)]], color="#111827", lw=1,
                        capsize=2.5, zorder=6)
        ax.scatter([x], [y], marker="*", s=150, facecolor="#fbbf24", edgecolor="#111827", linewidth=0.8, zorder=7)
        note = f"plan {_short(x)}" + (f" ({p.plan_note})" if p.plan_note else "")
        # Label on the side away from the curve: below-right of a rising one, above-right of a falling one.
        ax.annotate(note, (x, y), xytext=(6, -12) if p.increasing else (6, 5), textcoords="offset points",
                    fontsize=8, color="#111827", zorder=8)
    ax.set_title(("⚠ " if p.warnings else "") + p.language, loc="left", color=WARN_COLOR if p.warnings else "#111827")
    if p.label:
        ax.set_title(p.label, loc="right", fontsize=8.5, fontweight="normal", color="#4b5563")
    if not len(p.points_x) and p.fit is None:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#6b7280")
    elif p.fit is None:
        # Runs without a curve may all sit at one size: keep a readable span of the log axis around them.
        lo, hi = float(np.min(p.points_x)), float(np.max(p.points_x))
        if hi / lo < 4:
            mid = np.sqrt(lo * hi)
            ax.set_xlim(mid / 2.5, mid * 2.5)


@_styled
def comparison_figure(panels: Sequence[CurvePanel], xlabel: str, ylabel: str) -> Figure:
    """Figure 2: every language on one log-x chart (seed means as points, fits as lines)."""
    fig = _new_figure(10.5, 5.0)
    ax = fig.subplots()
    _log_axis(ax, "x")
    edges = [p.measured_max for p in panels if p.measured_max]
    for p in panels:
        if len(p.points_x):
            means = pd.DataFrame({"x": p.points_x, "y": p.points_y}).groupby("x")["y"].mean()
            ax.scatter(means.index, means.values, s=20, color=p.color, zorder=4)
        if p.grid is not None and p.fit is not None:
            grid, fit = np.asarray(p.grid), np.asarray(p.fit)
            edge = p.measured_max or grid.max()
            inside, beyond = grid <= edge * (1 + 1e-9), grid >= edge * (1 - 1e-9)
            ax.plot(grid[inside], fit[inside], color=p.color, lw=1.8, label=p.language, zorder=3)
            if beyond.sum() > 1:
                ax.plot(grid[beyond], fit[beyond], color=p.color, lw=1.4, ls=(0, (4, 2)), zorder=3)
        elif len(p.points_x):
            ax.plot([], [], color=p.color, marker="o", ls="", label=f"{p.language} (no fit)")
    if edges:
        # Fix the limits first: the shaded span would otherwise stretch the autoscaled axis.
        xmin, xmax = ax.get_xlim()
        ax.set_xlim(xmin, xmax)
        ax.axvspan(max(edges), xmax, color=EXTRAPOLATION_SHADE, zorder=0, lw=0)
        ax.text(max(edges), 0.015, "  extrapolation →", transform=ax.get_xaxis_transform(), va="bottom",
                fontsize=8, color="#6b7280")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", title="language")
    return fig


@_styled
def allocation_figure(
    languages: Sequence[str], mixtures: Sequence[MixtureSeries], amount_label: str, metric_label: str
) -> Figure:
    """Figure 3: per language, the data each mixture gives it (top) and its predicted metric (bottom)."""
    show_pred = any(m.predicted is not None for m in mixtures)
    n, k = len(languages), max(len(mixtures), 1)
    fig = _new_figure(min(10.5, max(7.5, 0.16 * n * k + 2.0)), 6.6 if show_pred else 3.6)
    axes = np.atleast_1d(fig.subplots(2 if show_pred else 1, 1, sharex=True, squeeze=False)).ravel()
    colors = mixture_colors([m.name for m in mixtures])
    x = np.arange(n)
    width = 0.8 / k
    for j, m in enumerate(mixtures):
        pos = x - 0.4 + width * (j + 0.5)
        style = dict(color=colors[m.name], width=width * 0.92, label=m.name, zorder=3,
                     edgecolor="#0b3d91" if m.name == "plan" else "none", linewidth=0.6)
        axes[0].bar(pos, m.amount, **style)
        _error_bars(axes[0], pos, m.amount, m.amount_low, m.amount_high)
        if show_pred and m.predicted is not None:
            # Points, not bars: the metric axis does not start at zero, and a bar's length would mislead.
            _error_bars(axes[1], pos, m.predicted, m.predicted_low, m.predicted_high, colors[m.name])
            axes[1].scatter(pos, m.predicted, color=colors[m.name], s=46 if m.name == "plan" else 28, zorder=5,
                            marker="D" if m.name == "plan" else "o", edgecolor="#0b3d91" if m.name == "plan" else "none")
    axes[0].set_ylabel(amount_label)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v) if v > 0 else "0"))
    if show_pred:
        axes[1].set_ylabel(f"predicted {metric_label}")
        lows = [np.nanmin(_lower(m)) for m in mixtures if m.predicted is not None and np.isfinite(_lower(m)).any()]
        highs = [np.nanmax(_upper(m)) for m in mixtures if m.predicted is not None and np.isfinite(_upper(m)).any()]
        if lows and highs:
            # Zoom on the differences: the metric rarely sits near zero, and bars from 0 hide them.
            lo, hi = min(lows), max(highs)
            pad = 0.12 * (hi - lo or abs(hi) or 1.0)
            axes[1].set_ylim(lo - pad, hi + pad)
    for ax in axes:
        ax.grid(axis="x", visible=False)
    if show_pred:
        for edge in x[:-1] + 0.5:  # separate languages: the dodged points would otherwise read as one row
            axes[1].axvline(edge, color="#e5e7eb", lw=0.8, zorder=0)
    axes[-1].set_xticks(x, languages)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=min(len(mixtures), 7))
    return fig


def _lower(m: MixtureSeries) -> np.ndarray:
    return np.asarray(m.predicted_low if m.predicted_low is not None else m.predicted, dtype=float)


def _upper(m: MixtureSeries) -> np.ndarray:
    return np.asarray(m.predicted_high if m.predicted_high is not None else m.predicted, dtype=float)


def _error_bars(ax, pos, value, low, high, color: str = "#1f2937") -> None:
    if low is None or high is None:
        return
    value, low, high = (np.asarray(a, dtype=float) for a in (value, low, high))
    ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(value)
    if ok.any():
        err = np.vstack([np.clip(value - low, 0, None), np.clip(high - value, 0, None)])[:, ok]
        ax.errorbar(np.asarray(pos)[ok], value[ok], yerr=err, fmt="none", ecolor=color, elinewidth=1.0,
                    capsize=2, zorder=4)


@_styled
def marginal_figure(lines: Sequence[MarginalLine], lam: float | None, xlabel: str, ylabel: str) -> Figure:
    """Figure 4: marginal gain per budget unit vs data, with the solver's λ: the plan sits where curves cross it."""
    fig = _new_figure(10.5, 5.0)
    ax = fig.subplots()
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    for line in lines:
        ok = np.isfinite(line.gain) & (line.gain > 0)
        ax.plot(np.asarray(line.grid)[ok], np.asarray(line.gain)[ok], color=line.color, lw=1.7, label=line.language)
        if line.plan_x is not None and line.plan_gain is not None and line.plan_gain > 0:
            ax.scatter([line.plan_x], [line.plan_gain], s=42, zorder=5, color="white" if line.at_bound else line.color,
                       edgecolor=line.color, linewidth=1.5)
    if lam is not None and np.isfinite(lam) and lam > 0:
        ax.axhline(lam, color="#111827", ls=(0, (5, 3)), lw=1.2, zorder=4)
        ax.annotate(f"λ = {lam:.3g}", xy=(0.005, lam), xycoords=("axes fraction", "data"), xytext=(2, 4),
                    textcoords="offset points", fontsize=8.5, color="#111827")
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], ls="", marker="o", color="#4b5563", label="plan"),
                Line2D([], [], ls="", marker="o", mfc="white", color="#4b5563", label="plan at a bound")]
    fig.legend(handles=handles, loc="outside right upper")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig


_MIXTURE_MARKERS = ["*", "o", "s", "^", "D", "v", "P", "X"]


@_styled
def final_figure(metrics: pd.DataFrame, objectives: pd.DataFrame | None, colors: dict[str, str],
                 metric_label: str) -> Figure:
    """Figure 5: predicted vs achieved per language and mixture, and (when given) per-mixture objectives."""
    has_obj = objectives is not None and len(objectives) > 0
    fig = _new_figure(11.0 if has_obj else 7.0, 4.8)
    axes = fig.subplots(1, 2, width_ratios=[1.15, 1]) if has_obj else [fig.subplots()]
    ax = axes[0]
    mixtures = list(dict.fromkeys(["plan"] * ("plan" in set(metrics["mixture"])) + list(metrics["mixture"])))
    markers = {m: _MIXTURE_MARKERS[i % len(_MIXTURE_MARKERS)] for i, m in enumerate(mixtures)}
    for mixture in mixtures:
        rows = metrics[metrics["mixture"] == mixture]
        color = [colors.get(lang, "#555") for lang in rows["language"]]
        if {"predicted_low", "predicted_high"} <= set(rows.columns):
            ok = rows["predicted_low"].notna() & rows["predicted_high"].notna()
            ax.hlines(rows["achieved"][ok], rows["predicted_low"][ok], rows["predicted_high"][ok],
                      colors=[c for c, keep in zip(color, ok) if keep], lw=0.9, alpha=0.7, zorder=3)
        ax.scatter(rows["predicted"], rows["achieved"], marker=markers[mixture], s=110 if mixture == "plan" else 36,
                   color=color, edgecolor="#111827", linewidth=0.6, zorder=4)
    values = np.concatenate([metrics["predicted"].to_numpy(float), metrics["achieved"].to_numpy(float)])
    values = values[np.isfinite(values)]
    if len(values):
        lo, hi = values.min(), values.max()
        pad = 0.08 * (hi - lo or abs(hi) or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#9ca3af", lw=1, ls="--", zorder=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"predicted {metric_label}")
    ax.set_ylabel(f"achieved {metric_label}")
    ax.set_title("per language (dashed: achieved = predicted)", loc="left")
    langs = list(dict.fromkeys(metrics["language"]))
    handles = [Line2D([], [], ls="", marker=markers[m], color="#4b5563", ms=9 if m == "plan" else 6, label=m)
               for m in mixtures]
    if len(langs) <= LINES_PER_CHART:
        handles += [Patch(color=colors.get(lang, "#555"), label=lang) for lang in langs]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    if has_obj:
        _objective_panel(axes[1], objectives.reset_index(drop=True))
    return fig


def _objective_panel(ax, obj: pd.DataFrame) -> None:
    """Per mixture: the predicted objective (hollow) and the achieved one (filled), joined by a line."""
    pos = np.arange(len(obj))
    predicted = obj["predicted_objective"].to_numpy(float)
    achieved = obj["achieved_objective"].to_numpy(float)
    colors = [PLAN_COLOR if m == "plan" else "#64748b" for m in obj["mixture"]]
    ax.vlines(pos, np.fmin(predicted, achieved), np.fmax(predicted, achieved), color="#9ca3af", lw=1.5, zorder=2)
    ax.scatter(pos, predicted, s=60, facecolor="white", edgecolor=colors, linewidth=1.6, zorder=3)
    ax.scatter(pos, achieved, s=60, color=colors, zorder=4)
    rotate = len(obj) > 4
    ax.set_xticks(pos, obj["mixture"], rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(obj) - 0.4)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel("objective")
    ax.set_title("objective per mixture", loc="left")
    ax.legend(handles=[Line2D([], [], ls="", marker="o", mfc="white", mec="#374151", label="predicted"),
                       Line2D([], [], ls="", marker="o", color="#374151", label="achieved")],
              loc="best", fontsize=8)


_STAGE_STYLES = {"before": (0, (1.5, 1.5)), "after": "-"}
_OTHER_STAGE_STYLES = [(0, (5, 2)), (0, (3, 1, 1, 1)), (0, (8, 2, 2, 2))]


@_styled
def alignment_figure(alignment: pd.DataFrame, colors: dict[str, str]) -> Figure:
    """Figure 6: per layer, true-pair minus random-pair cosine and translation retrieval, by stage."""
    panels = [("cos_gap", "cosine: true − random pairs")]
    for col, title in (("retrieval_en_x", "retrieval accuracy en→x"), ("retrieval_x_en", "retrieval accuracy x→en")):
        if col in alignment and alignment[col].notna().any():
            panels.append((col, title))
    data = alignment.assign(cos_gap=alignment["cos_true"] - alignment["cos_random"])
    stages = list(dict.fromkeys(data["stage"]))
    others = itertools.cycle(_OTHER_STAGE_STYLES)
    stage_style = {s: _STAGE_STYLES.get(s.lower()) or next(others) for s in stages}
    langs = list(dict.fromkeys(sorted(data["language"])))
    per_language = len(langs) <= LINES_PER_CHART
    fig = _new_figure(3.0 * len(panels) + 1.5, 3.5)
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
    for ax, (col, title) in zip(axes, panels):
        for stage in stages:
            sub = data[data["stage"] == stage]
            if per_language:
                for lang in langs:
                    d = sub[sub["language"] == lang].sort_values("layer")
                    ax.plot(d["layer"], d[col], color=colors.get(lang, "#555"), ls=stage_style[stage], lw=1.5,
                            marker="o", ms=3)
            else:
                # Too many languages for one line each: the mean over languages and a 10–90% band.
                g = sub.groupby("layer")[col]
                mean, q10, q90 = g.mean(), g.quantile(0.1), g.quantile(0.9)
                ax.fill_between(mean.index, q10, q90, color="#94a3b8", alpha=0.25, lw=0)
                ax.plot(mean.index, mean.values, color="#1f2937", ls=stage_style[stage], lw=1.8)
        ax.set_title(title, loc="left")
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if col.startswith("retrieval"):
            ax.set_ylim(-0.02, 1.02)
    handles = [Line2D([], [], color="#374151", ls=stage_style[s], lw=1.5, label=f"stage: {s}") for s in stages]
    if per_language:
        handles += [Line2D([], [], color=colors.get(lang, "#555"), lw=2, label=lang) for lang in langs]
    else:
        handles += [Patch(color="#94a3b8", alpha=0.4, label=f"10–90% of {len(langs)} languages")]
    fig.legend(handles=handles, loc="outside right upper")
    return fig


# -------------------------------------------------------------------------------------------- saving


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
    png.write_bytes(figure_bytes(fig, "png"))
    # The first save ran the constrained layout; freeze it so the second does not solve it again
    # (the layout is most of the rendering time, and both files must show the same layout anyway).
    fig.set_layout_engine("none")
    svg.write_bytes(figure_bytes(fig, "svg"))
    return png, svg
