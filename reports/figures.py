"""The fit figures, as pure functions from prepared arrays to matplotlib `Figure`s: scaling curves per
language, all languages compared, what pooling did, and representation alignment.

Nothing here reads files or knows the fits API: the section builders turn inputs into the small
dataclasses below, and these functions only draw. Many languages stay readable by paging: callers split
languages into chunks (`chunks`) of the page sizes below and draw one figure per chunk, with the same
colour per language on every page. The plan and final-run figures live in `plan_figures` and
`final_figures`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports.plotting import (
    BACKTEST_COLOR,
    EXTRAPOLATION_SHADE,
    WARN_COLOR,
    chunks,
    grid_shape,
    log_axis,
    new_figure,
    short,
    styled,
    zero_log_axis,
)
from reports.style import seed_marker

__all__ = ["chunks"]  # re-exported: the section builders page with F.chunks

# Languages per page for each kind of figure: past these, labels and lines start to collide.
CURVES_PER_PAGE = 12
LINES_PER_CHART = 10
BARS_PER_PAGE = 56  # bars (languages × mixtures) in one allocation chart
ROWS_PER_PAGE = 24  # languages in one dot chart (what pooling did, paired differences)


def languages_per_bar_page(mixtures: int) -> int:
    return int(np.clip(BARS_PER_PAGE // max(mixtures, 1), 4, 12))


# ---------------------------------------------------------------------------------------------- data


@dataclass
class CurvePanel:
    """Everything one language's scaling-curve panel shows."""

    language: str
    color: str
    points_x: np.ndarray  # every successful run: data amount (0 for a zero-shot evaluation)
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
    zero_threshold: float | None = None  # set: the x axis has a slot for 0, linear up to this size


@dataclass
class PoolingParam:
    """One parameter of the pooling chart: its key in the fits, its label, and the population prior."""

    key: str
    label: str
    log: bool  # positive and spanning orders of magnitude (α, x₀): drawn on a log axis
    prior: tuple[float, float, float] | None = None  # 5%, 50%, 95%


@dataclass
class PoolingRow:
    language: str
    color: str
    own: dict[str, float]  # empty when the language's data alone cannot identify the law
    pooled: dict[str, float]


# ------------------------------------------------------------------------------------------ helpers


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


def _x_axis(ax, threshold: float | None) -> None:
    if threshold is not None:
        zero_log_axis(ax, threshold)
    else:
        log_axis(ax, "x")


def _split_at_edge(grid: np.ndarray, fit: np.ndarray, edge: float):
    """(inside, beyond) masks: the measured range and the extrapolation, sharing the edge point."""
    return grid <= edge * (1 + 1e-9), grid >= edge * (1 - 1e-9)


# ----------------------------------------------------------------------------------------- figures


@styled
def scaling_curves_figure(panels: Sequence[CurvePanel], xlabel: str, ylabel: str, level: float,
                          band_label: str = "bootstrap") -> Figure:
    """One panel per language (small multiples) with runs, fit, band, extrapolation, backtest, plan."""
    n = len(panels)
    rows, cols = grid_shape(n)
    # About 10.5 inches wide whatever the column count, so the page shows every figure at the same scale.
    width = 3.4 if cols <= 3 else 2.65
    fig = new_figure(width * cols + 0.4, (2.75 if cols <= 3 else 2.45) * rows + 0.75)
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
        Patch(facecolor="#9ca3af", alpha=0.35, label=f"{level:.0%} {band_label} band"),
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
    _x_axis(ax, p.zero_threshold)
    if p.grid is not None and p.fit is not None:
        _draw_fit(ax, p)
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
        _draw_plan(ax, p)
    ax.set_title(("⚠ " if p.warnings else "") + p.language, loc="left", color=WARN_COLOR if p.warnings else "#111827")
    if p.label:
        ax.set_title(p.label, loc="right", fontsize=8.5, fontweight="normal", color="#4b5563")
    positive = np.asarray(p.points_x, dtype=float)
    positive = positive[positive > 0]
    if not len(p.points_x) and p.fit is None:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#6b7280")
    elif p.fit is None and len(positive):
        _frame_unfitted(ax, p, positive)


def _frame_unfitted(ax, p: CurvePanel, positive: np.ndarray) -> None:
    """Runs without a curve may all sit at one size and score alike: keep a readable span of both axes
    around them, so seed noise of 0.1 does not fill the panel like a trend."""
    lo, hi = float(positive.min()), float(positive.max())
    if p.zero_threshold is not None:
        ax.set_xlim(0, hi * 2.5)
    elif hi / lo < 4:
        mid = np.sqrt(lo * hi)
        ax.set_xlim(mid / 2.5, mid * 2.5)
    y = np.asarray(p.points_y, dtype=float)
    mid, half = float(np.mean(y)), 0.6 * float(np.ptp(y))
    floor = 0.1 * abs(mid) or 1.0
    if half < floor:
        ax.set_ylim(mid - floor, mid + floor)


def _draw_fit(ax, p: CurvePanel) -> None:
    grid = np.asarray(p.grid, dtype=float)
    fit = np.asarray(p.fit, dtype=float)
    edge = p.measured_max if p.measured_max is not None else grid.max()
    if grid.max() > edge:
        ax.axvspan(edge, grid.max(), color=EXTRAPOLATION_SHADE, zorder=0, lw=0)
    if p.band_low is not None and p.band_high is not None:
        ax.fill_between(grid, p.band_low, p.band_high, color=p.color, alpha=0.18, lw=0, zorder=1)
    inside, beyond = _split_at_edge(grid, fit, edge)
    ax.plot(grid[inside], fit[inside], color=p.color, lw=1.8, zorder=3)
    if beyond.sum() > 1:
        ax.plot(grid[beyond], fit[beyond], color=p.color, lw=1.6, ls=(0, (4, 2)), zorder=3)


def _draw_plan(ax, p: CurvePanel) -> None:
    x, y, lo, hi = p.plan
    if np.isfinite(lo) and np.isfinite(hi):
        ax.errorbar([x], [y], yerr=[[max(y - lo, 0)], [max(hi - y, 0)]], color="#111827", lw=1, capsize=2.5, zorder=6)
    ax.scatter([x], [y], marker="*", s=150, facecolor="#fbbf24", edgecolor="#111827", linewidth=0.8, zorder=7)
    note = f"plan {short(x) or '0'}" + (f" ({p.plan_note})" if p.plan_note else "")
    # Label on the side away from the curve: below-right of a rising one, above-right of a falling one.
    ax.annotate(note, (x, y), xytext=(6, -12) if p.increasing else (6, 5), textcoords="offset points",
                fontsize=8, color="#111827", zorder=8)


@styled
def comparison_figure(panels: Sequence[CurvePanel], xlabel: str, ylabel: str,
                      zero_threshold: float | None = None) -> Figure:
    """Every language on one chart (seed means as points, fits as lines); a zero slot when given."""
    fig = new_figure(10.5, 5.0)
    ax = fig.subplots()
    _x_axis(ax, zero_threshold)
    edges = [p.measured_max for p in panels if p.measured_max]
    for p in panels:
        if len(p.points_x):
            means = pd.DataFrame({"x": p.points_x, "y": p.points_y}).groupby("x")["y"].mean()
            ax.scatter(means.index, means.values, s=20, color=p.color, zorder=4)
        if p.grid is not None and p.fit is not None:
            grid, fit = np.asarray(p.grid), np.asarray(p.fit)
            inside, beyond = _split_at_edge(grid, fit, p.measured_max or grid.max())
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


@styled
def pooling_figure(rows: Sequence[PoolingRow], params: Sequence[PoolingParam]) -> Figure:
    """Per parameter: each language's own estimate (hollow), the pooled one (filled), an arrow between
    them, and on top the population prior (5–95% bar, median tick, dashed down the rows)."""
    n = len(rows)
    fig = new_figure(10.5, 0.3 * n + 1.8)
    axes = np.atleast_1d(fig.subplots(1, len(params), sharey=True, squeeze=False)).ravel()
    y = np.arange(n)[::-1]  # first language on top, the prior above it
    for ax, param in zip(axes, params):
        if param.log:
            log_axis(ax, "x")
        if param.prior is not None:
            lo, mid, hi = param.prior
            ax.hlines(n + 0.4, lo, hi, color="#64748b", lw=3, zorder=2)
            ax.scatter([mid], [n + 0.4], marker="|", s=160, color="#111827", zorder=3)
            ax.axvline(mid, color="#94a3b8", lw=0.9, ls=(0, (4, 2)), zorder=1)
        for yi, row in zip(y, rows):
            _pooling_arrow(ax, yi, row, param)
        ax.set_title(param.label, loc="left")
        ax.grid(axis="y", visible=False)
    labels = [r.language for r in rows]
    axes[0].set_yticks(list(y) + [n + 0.4], labels + ["prior 5–95%"])
    axes[0].set_ylim(-0.7, n + 1.0)
    handles = [Line2D([], [], ls="", marker="o", mfc="white", mec="#374151", label="own estimate (its data alone)"),
               Line2D([], [], ls="", marker="o", color="#374151", label="pooled estimate"),
               Line2D([], [], color="#64748b", lw=3, label="population prior, 5–95%"),
               Line2D([], [], color="#94a3b8", ls=(0, (4, 2)), label="prior median")]
    fig.legend(handles=handles, loc="outside upper center", ncol=4)
    return fig


def _pooling_arrow(ax, yi: float, row: PoolingRow, param: PoolingParam) -> None:
    pooled, own = row.pooled.get(param.key), row.own.get(param.key)
    if pooled is None:
        return
    if own is not None and np.isfinite(own) and (own > 0 or not param.log):
        ax.annotate("", xy=(pooled, yi), xytext=(own, yi), zorder=2,
                    arrowprops=dict(arrowstyle="-|>", color=row.color, lw=1.1, shrinkA=3, shrinkB=4))
        ax.scatter([own], [yi], s=30, facecolor="white", edgecolor=row.color, linewidth=1.3, zorder=3)
    ax.scatter([pooled], [yi], s=34, color=row.color, zorder=4)


_STAGE_STYLES = {"before": (0, (1.5, 1.5)), "after": "-"}
_OTHER_STAGE_STYLES = [(0, (5, 2)), (0, (3, 1, 1, 1)), (0, (8, 2, 2, 2))]


@styled
def alignment_figure(alignment: pd.DataFrame, colors: dict[str, str]) -> Figure:
    """Per layer, true-pair minus random-pair cosine and translation retrieval, by stage."""
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
    fig = new_figure(3.0 * len(panels) + 1.5, 3.5)
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
