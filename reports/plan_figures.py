"""The plan's figures: what each mixture gives each language, and the marginal gains the solver equalises.

Pure drawing from prepared arrays (see `reports.plan_sections` for where the arrays come from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from reports.plotting import log_axis, new_figure, short, styled, zero_log_axis, zero_threshold
from reports.style import mixture_colors


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


@styled
def allocation_figure(
    languages: Sequence[str], mixtures: Sequence[MixtureSeries], amount_label: str, metric_label: str
) -> Figure:
    """Per language, the data each mixture gives it (top) and its predicted metric (bottom)."""
    show_pred = any(m.predicted is not None for m in mixtures)
    n, k = len(languages), max(len(mixtures), 1)
    fig = new_figure(min(10.5, max(7.5, 0.16 * n * k + 2.0)), 6.6 if show_pred else 3.6)
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
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: short(v) if v > 0 else "0"))
    if show_pred:
        _zoom_on_predictions(axes[1], mixtures, metric_label)
    for ax in axes:
        ax.grid(axis="x", visible=False)
    if show_pred:
        for edge in x[:-1] + 0.5:  # separate languages: the dodged points would otherwise read as one row
            axes[1].axvline(edge, color="#e5e7eb", lw=0.8, zorder=0)
    axes[-1].set_xticks(x, languages)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncol=min(len(mixtures), 7))
    return fig


def _zoom_on_predictions(ax, mixtures: Sequence[MixtureSeries], metric_label: str) -> None:
    ax.set_ylabel(f"predicted {metric_label}")
    lows = [np.nanmin(_lower(m)) for m in mixtures if m.predicted is not None and np.isfinite(_lower(m)).any()]
    highs = [np.nanmax(_upper(m)) for m in mixtures if m.predicted is not None and np.isfinite(_upper(m)).any()]
    if lows and highs:
        # Zoom on the differences: the metric rarely sits near zero, and bars from 0 hide them.
        lo, hi = min(lows), max(highs)
        pad = 0.12 * (hi - lo or abs(hi) or 1.0)
        ax.set_ylim(lo - pad, hi + pad)


def _lower(m: MixtureSeries) -> np.ndarray:
    return np.asarray(m.predicted_low if m.predicted_low is not None else m.predicted, dtype=float)


def _upper(m: MixtureSeries) -> np.ndarray:
    return np.asarray(m.predicted_high if m.predicted_high is not None else m.predicted, dtype=float)


def _error_bars(ax, pos, value, low, high, color: str = "#1f2937") -> None:
    if low is None or high is None:
        return
    value, low, high = (np.asarray(a, dtype=float) for a in (value, low, high))
    # Open above (a target some draws never reach): the whisker runs above every bar and ends in an
    # arrowhead.
    open_above = np.isposinf(high) & np.isfinite(low) & np.isfinite(value)
    if open_above.any():
        top = 1.2 * max(ax.get_ylim()[1], np.nanmax(np.where(np.isfinite(high), high, value)))
        high = np.where(open_above, top, high)
        ax.scatter(np.asarray(pos)[open_above], high[open_above], marker="^", color=color, s=18, zorder=4)
    ok = np.isfinite(low) & np.isfinite(high) & np.isfinite(value)
    if ok.any():
        err = np.vstack([np.clip(value - low, 0, None), np.clip(high - value, 0, None)])[:, ok]
        ax.errorbar(np.asarray(pos)[ok], value[ok], yerr=err, fmt="none", ecolor=color, elinewidth=1.0,
                    capsize=2, zorder=4)


@styled
def marginal_figure(lines: Sequence[MarginalLine], lam: float | None, xlabel: str, ylabel: str) -> Figure:
    """Marginal gain per budget unit vs data, with the solver's λ: the plan sits where curves cross it."""
    fig = new_figure(10.5, 5.0)
    ax = fig.subplots()
    zero = [line for line in lines if line.plan_x == 0]
    if zero:
        # A language planned 0 pairs: a log axis has no 0, so 0 gets a slot (linear up to the dotted line).
        positive = [float(np.min(line.grid)) for line in lines] + [line.plan_x for line in lines if line.plan_x]
        zero_log_axis(ax, zero_threshold(min(positive)))
    else:
        log_axis(ax, "x")
    log_axis(ax, "y")
    for line in lines:
        ok = np.isfinite(line.gain) & (line.gain > 0)
        ax.plot(np.asarray(line.grid)[ok], np.asarray(line.gain)[ok], color=line.color, lw=1.7, label=line.language)
        if line.plan_x is not None and line.plan_gain is not None and np.isfinite(line.plan_gain) and line.plan_gain > 0:
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
