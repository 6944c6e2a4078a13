"""The report section of an adaptive sweep: which runs it chose, in what order, and what each was worth.

Pure: `sweep_choices.csv` (written by `python -m research.adaptive sweep`, one row per chosen run in the order chosen) in, the
section's table, figure and one-paragraph summary out; nothing here reads files or knows the sweep.

The figure has two panels over the same x axis, the training tokens committed so far:
- each chosen run as a dot on its language's row (area ∝ its size in pairs, colour = its value per
  million training tokens when chosen; the start design is grey, being chosen by the config, not value);
- the plan's value interval before each round: what the best plan could still gain over the plan of the
  moment (its 90% posterior bound), which the sweep spends compute to narrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.style import RC, language_colors

START_COLOR = "#b8bec6"
TABLE_COLUMNS = ["#", "round", "language", "pairs", "seed", "why", "value", "value / M tokens", "training tokens",
                 "status", "result"]


@dataclass
class SweepChoicesSection:
    table: pd.DataFrame  # TABLE_COLUMNS, one row per chosen run, display-ready text
    figure: Figure
    summary: str


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    v = float(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits}g}"
    return f"{v:,.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"


def _clean(choices: pd.DataFrame) -> pd.DataFrame:
    c = choices.copy()
    for col in ("order", "round", "n_pairs", "seed", "value", "cost_tokens", "value_per_million_tokens",
                "result", "value_interval_before", "spent_before", "budget"):
        c[col] = pd.to_numeric(c[col], errors="coerce") if col in c else np.nan
    return c.sort_values("order", kind="stable").reset_index(drop=True)


def choices_display(choices: pd.DataFrame, metric: str = "chrf") -> pd.DataFrame:
    """The section's table: display text, one row per chosen run."""
    c = _clean(choices)
    rows = [[str(int(r.order)), str(int(r.round)), str(r.language), f"{int(r.n_pairs):,}", str(int(r.seed)),
             str(r.why), _num(r.value), _num(r.value_per_million_tokens), _num(r.cost_tokens), str(r.status),
             _num(r.result)] for r in c.itertuples(index=False)]
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.rename(columns={"value": f"value ({metric})", "result": f"result ({metric})"})


def choices_summary(choices: pd.DataFrame, metric: str = "chrf") -> str:
    c = _clean(choices)
    start = c[c["round"] == 0]
    chosen = c[c["round"] > 0]
    if chosen.empty:
        text = (f"The sweep ran the {len(start)} runs of its start design (fixed by the config) and chose no "
                "further run: none was expected to change the plan enough for its cost, or the budget was spent "
                "(`planner status` prints the reason).")
    else:
        text = (f"The sweep started from {len(start)} runs fixed by the config and then chose {len(chosen)} more "
                f"in {chosen['round'].nunique()} rounds, each where it was expected to improve the plan most per "
                "training token.")
    if len(chosen):
        per_lang = chosen.groupby("language").size().sort_values(ascending=False)
        most = ", ".join(f"{lang} {n}" for lang, n in per_lang.items())
        first, last = chosen["value_interval_before"].iloc[0], chosen["value_interval_before"].iloc[-1]
        text += f" Runs chosen per language: {most}."
        if chosen["round"].nunique() > 1 and math.isfinite(first) and math.isfinite(last):
            text += (f" The plan's value interval (what the best plan could still gain, 90%) went from "
                     f"{first:.3g} to {last:.3g} {metric} before the last round.")
    if len(chosen) and chosen["budget"].notna().any():
        last = chosen[chosen["round"] == chosen["round"].max()]
        committed = float(last["spent_before"].iloc[0] + last["cost_tokens"].sum())
        text += (f" Training tokens committed: {committed:,.0f} of a budget of {float(last['budget'].iloc[0]):,.0f} "
                 "(start design included).")
    return text


def choices_figure(choices: pd.DataFrame) -> Figure:
    """The two panels described in the module docstring."""
    c = _clean(choices)
    # A chosen run sits where the compute committed reaches once it is added. The start design's costs
    # are not recorded one by one; the first round's `spent_before` is their total, and they sit at 0.
    first_spent = c.loc[c["round"] > 0, "spent_before"].dropna()
    base = float(first_spent.iloc[0]) if len(first_spent) else 0.0
    x = np.where(c["round"] > 0, base + c["cost_tokens"].where(c["round"] > 0).fillna(0).cumsum(), 0.0)
    languages = list(dict.fromkeys(c["language"]))
    colors = language_colors(languages)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(8.0, 2.2 + 0.28 * len(languages)), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[max(len(languages), 2), 2])
        row = {lang: i for i, lang in enumerate(languages)}
        sizes = 20 + 180 * np.sqrt(c["n_pairs"].clip(lower=0) / max(c["n_pairs"].max(), 1))
        start = c["round"] == 0
        top.scatter(x[start], [row[lang] for lang in c.loc[start, "language"]], s=sizes[start], color=START_COLOR,
                    edgecolor="white", linewidth=0.6, label="start design", zorder=2)
        if (~start).any():
            vals = c.loc[~start, "value_per_million_tokens"].to_numpy(float)
            pts = top.scatter(x[~start], [row[lang] for lang in c.loc[~start, "language"]], s=sizes[~start],
                              c=vals, cmap="viridis", edgecolor="#1f2937", linewidth=0.5, zorder=3)
            fig.colorbar(pts, ax=top, label="value per M tokens", shrink=0.9)
            for xi, lang, order in zip(x[~start], c.loc[~start, "language"], c.loc[~start, "order"]):
                top.annotate(str(int(order)), (xi, row[lang]), textcoords="offset points", xytext=(0, 7),
                             ha="center", fontsize=7, color="#3b4148")
        top.set_yticks(range(len(languages)), languages)
        for label, lang in zip(top.get_yticklabels(), languages):
            label.set_color(colors[lang])
        top.set_ylim(-0.7, len(languages) - 0.3)
        top.set_title("Runs the sweep chose, in order (dot area: pairs)")
        top.legend(loc="lower right", fontsize=7.5)
        rounds = c[c["round"] > 0].groupby("round", sort=True).agg(x=("order", "min"),
                                                                   interval=("value_interval_before", "first"))
        if len(rounds):
            first_index = {int(o): i for i, o in enumerate(c["order"])}
            rx = [x[first_index[int(o)]] for o in rounds["x"]]
            bottom.plot(rx, rounds["interval"], marker="o", color="#1f5fbf", linewidth=1.4)
        bottom.set_ylabel("value interval")
        bottom.set_xlabel("training tokens committed")
        bottom.set_ylim(bottom=0)
    return fig


def sweep_choices_section(choices: pd.DataFrame | None, metric: str = "chrf") -> SweepChoicesSection | None:
    """The section, or None when the sweep was a grid (no choices file, or an empty one)."""
    if choices is None or choices.empty:
        return None
    return SweepChoicesSection(choices_display(choices, metric), choices_figure(choices),
                               choices_summary(choices, metric))
