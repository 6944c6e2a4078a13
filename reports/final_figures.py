"""The final runs' figures: achieved per mixture with its seed spread, predicted vs achieved per language,
and the paired differences between the plan and each baseline (positive = the plan better).

Pure drawing from prepared tables (`reports.final_sections` prepares them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from reports.plotting import BAD_COLOR, GOOD_COLOR, NEUTRAL_COLOR, new_figure, styled
from reports.style import PLAN_COLOR, seed_marker

_MIXTURE_MARKERS = ["*", "o", "s", "^", "D", "v", "P", "X"]
VERDICT_COLORS = {"beat": GOOD_COLOR, "lost": BAD_COLOR}


@dataclass
class DifferenceRow:
    """One scope (the objective or a language) of one comparison: mean paired difference, its interval,
    each seed's difference, and the verdict."""

    label: str
    mean: float
    low: float
    high: float
    verdict: str
    seeds: list[float] = field(default_factory=list)


@dataclass
class DifferencePanel:
    title: str  # e.g. "plan − uniform"
    objective: DifferenceRow | None
    languages: list[DifferenceRow]


def _mixture_color(name: str) -> str:
    return PLAN_COLOR if name.startswith("plan") else "#64748b"


@styled
def final_figure(metrics: pd.DataFrame, objectives: pd.DataFrame | None, mixtures: Sequence[str],
                 colors: dict[str, str], metric_label: str, objective_label: str = "objective") -> Figure:
    """Left (when objectives exist): each mixture's achieved objective per seed, their mean, and the
    prediction. Right: per language and mixture, predicted vs achieved (mean over seeds, seed range)."""
    has_obj = objectives is not None and len(objectives) > 0
    fig = new_figure(11.0 if has_obj else 7.0, 4.8)
    axes = fig.subplots(1, 2, width_ratios=[1, 1.15]) if has_obj else [fig.subplots()]
    if has_obj:
        _objective_panel(axes[0], objectives, mixtures, objective_label)
    _language_panel(axes[-1], metrics, mixtures, colors, metric_label)
    return fig


def _objective_panel(ax, obj: pd.DataFrame, mixtures: Sequence[str], label: str) -> None:
    names = [m for m in mixtures if m in set(obj["mixture"])]
    seeds = sorted(obj["seed"].unique())
    seed_index = {s: i for i, s in enumerate(seeds)}
    jitter = {s: 0.12 * (k - (len(seeds) - 1) / 2) / max(len(seeds), 1) for k, s in enumerate(seeds)}
    _join_seeds(ax, obj, names, jitter)
    for i, name in enumerate(names):
        rows = obj[obj["mixture"] == name]
        achieved = rows["achieved_objective"].to_numpy(float)
        color = _mixture_color(name)
        for x, y, s in zip(i + rows["seed"].map(jitter).to_numpy(float), achieved, rows["seed"]):
            ax.scatter([x], [y], s=22, marker=seed_marker(seed_index[s]), facecolor="white", edgecolor=color,
                       linewidth=1.1, zorder=4)
        if np.isfinite(achieved).any():
            mean = float(np.nanmean(achieved))
            ax.vlines(i, np.nanmin(achieved), np.nanmax(achieved), color=color, lw=1.2, alpha=0.6, zorder=3)
            ax.hlines(mean, i - 0.22, i + 0.22, color=color, lw=2.6, zorder=5)
        predicted = rows["predicted_objective"].to_numpy(float)
        if np.isfinite(predicted).any():
            ax.scatter([i + 0.3], [float(np.nanmean(predicted))], marker="D", s=40, facecolor="white",
                       edgecolor="#111827", linewidth=1.2, zorder=5)
    rotate = len(names) > 4
    ax.set_xticks(range(len(names)), names, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(names) - 0.3)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel(label)
    ax.set_title("achieved objective per mixture", loc="left")
    achieved = f"mean of {len(seeds)} seeds" if len(seeds) > 1 else "achieved (one seed)"
    handles = [Line2D([], [], color="#374151", lw=2.6, label=achieved),
               Line2D([], [], ls="", marker="D", mfc="white", mec="#111827", label="predicted")]
    handles += [Line2D([], [], ls="", marker=seed_marker(seed_index[s]), mfc="white", mec="#374151", label=f"seed {s}")
                for s in seeds[:6]]
    ax.legend(handles=handles, loc="best", fontsize=8)


def _join_seeds(ax, obj: pd.DataFrame, names: Sequence[str], jitter: dict) -> None:
    """Faint lines joining one seed across mixtures: the pairing the verdict rests on (a seed that is good
    for every mixture lifts them all, and the paired difference ignores it)."""
    if len(jitter) < 2:
        return
    for seed, offset in jitter.items():
        rows = obj[obj["seed"] == seed].set_index("mixture")["achieved_objective"]
        xs = [i + offset for i, name in enumerate(names) if name in rows.index]
        ax.plot(xs, [rows[name] for name in names if name in rows.index], color="#cbd5e1", lw=0.9, zorder=1)


def _language_panel(ax, metrics: pd.DataFrame, mixtures: Sequence[str], colors: dict[str, str], metric_label: str):
    markers = {m: _MIXTURE_MARKERS[i % len(_MIXTURE_MARKERS)] for i, m in enumerate(mixtures)}
    agg = metrics.groupby(["mixture", "language"], sort=False).agg(
        predicted=("predicted", "mean"), low=("predicted_low", "mean"), high=("predicted_high", "mean"),
        achieved=("achieved", "mean"), lo_seed=("achieved", "min"), hi_seed=("achieved", "max")).reset_index()
    for mixture in mixtures:
        rows = agg[agg["mixture"] == mixture]
        color = [colors.get(lang, "#555") for lang in rows["language"]]
        ok = rows["low"].notna() & rows["high"].notna()
        ax.hlines(rows["achieved"][ok], rows["low"][ok], rows["high"][ok],
                  colors=[c for c, keep in zip(color, ok) if keep], lw=0.9, alpha=0.7, zorder=3)
        spread = rows["hi_seed"] > rows["lo_seed"]
        ax.vlines(rows["predicted"][spread], rows["lo_seed"][spread], rows["hi_seed"][spread],
                  colors=[c for c, keep in zip(color, spread) if keep], lw=1.4, alpha=0.8, zorder=3)
        ax.scatter(rows["predicted"], rows["achieved"], marker=markers[mixture], s=110 if mixture == "plan" else 36,
                   color=color, edgecolor="#111827", linewidth=0.6, zorder=4)
    values = np.concatenate([agg[c].to_numpy(float) for c in ("predicted", "lo_seed", "hi_seed")])
    values = values[np.isfinite(values)]
    if len(values):
        lo, hi = values.min(), values.max()
        pad = 0.08 * (hi - lo or abs(hi) or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#9ca3af", lw=1, ls="--", zorder=1)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"predicted {metric_label}")
    ax.set_ylabel(f"achieved {metric_label} (mean over seeds)")
    ax.set_title("per language (dashed: achieved = predicted)", loc="left")
    langs = list(dict.fromkeys(metrics["language"]))
    handles = [Line2D([], [], ls="", marker=markers[m], color="#4b5563", ms=9 if m == "plan" else 6, label=m)
               for m in mixtures]
    if len(langs) <= 10:
        handles += [Patch(color=colors.get(lang, "#555"), label=lang) for lang in langs]
    ax.figure.legend(handles=handles, loc="outside right upper", fontsize=8)


@styled
def differences_figure(panels: Sequence[DifferencePanel], metric_label: str, level: float) -> Figure:
    """A forest plot per comparison: the objective on top, then each language; a dot per seed, the mean
    and its paired interval, coloured by verdict; positive = the plan better."""
    cols = min(len(panels), 3)
    blocks = -(-len(panels) // cols)
    n_lang = max((len(p.languages) for p in panels), default=0)
    heights = []
    for _ in range(blocks):
        heights += [0.9, 0.32 * n_lang + 0.5]
    fig = new_figure(3.6 * cols + 0.6, sum(heights) + 0.8)
    axes = fig.subplots(len(heights), cols, squeeze=False, height_ratios=heights)
    for k, panel in enumerate(panels):
        top, bottom = axes[2 * (k // cols), k % cols], axes[2 * (k // cols) + 1, k % cols]
        _forest(top, [panel.objective] if panel.objective else [])
        top.set_title(panel.title, loc="left")
        _forest(bottom, panel.languages)
        bottom.set_xlabel(f"paired difference in {metric_label}")
    for k in range(len(panels), blocks * cols):
        axes[2 * (k // cols), k % cols].set_visible(False)
        axes[2 * (k // cols) + 1, k % cols].set_visible(False)
    handles = [Line2D([], [], color=GOOD_COLOR, lw=2, marker="o", label="beat (interval above 0)"),
               Line2D([], [], color=BAD_COLOR, lw=2, marker="o", label="lost (interval below 0)"),
               Line2D([], [], color=NEUTRAL_COLOR, lw=2, marker="o", label="tied / cannot tell"),
               Line2D([], [], ls="", marker="|", color="#9ca3af", ms=8, label="one seed's difference")]
    fig.legend(handles=handles, loc="outside upper center", ncol=4, title=f"mean with its {level:.0%} paired interval")
    return fig


def _forest(ax, rows: Sequence[DifferenceRow]) -> None:
    y = np.arange(len(rows))[::-1]
    ax.axvline(0, color="#111827", lw=0.9, zorder=1)
    for yi, r in zip(y, rows):
        color = VERDICT_COLORS.get(r.verdict, NEUTRAL_COLOR)
        if r.seeds:
            ax.scatter(r.seeds, [yi] * len(r.seeds), marker="|", s=60, color="#9ca3af", zorder=2)
        if np.isfinite(r.low) and np.isfinite(r.high):
            ax.hlines(yi, r.low, r.high, color=color, lw=2.2, zorder=3)
        if np.isfinite(r.mean):
            ax.scatter([r.mean], [yi], s=30, color=color, zorder=4)
    ax.set_yticks(y, [r.label for r in rows])
    ax.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    ax.grid(axis="y", visible=False)
    # Symmetric around 0, so "which side of zero" reads at a glance.
    extent = [abs(v) for r in rows for v in [r.mean, r.low, r.high, *r.seeds] if np.isfinite(v)]
    if extent:
        half = 1.12 * max(extent) or 1.0
        ax.set_xlim(-half, half)
