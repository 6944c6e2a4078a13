"""The final runs: the paired verdict (which baselines the plan beat, tied or lost to, with intervals),
achieved per mixture with its seed spread, predicted vs achieved, the per-language paired differences,
calibration of the prediction intervals, and the plan at the reduced budget.

Every mixture is trained with the same final seeds, so plan and baseline differences are paired by seed
(`fits.final_stats`); positive differences mean the plan did better, whatever the metric's direction.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reports import figures as F
from reports import final_figures as FF
from reports.document import Cell, Metric, Paragraph, Section, Table, Verdict, VerdictLine
from reports.style import fmt_difference, fmt_interval, fmt_num, fmt_pct, fmt_signed
from reports.views import PLAN, REDUCED, TRANSFER, FinalView, as_float

if TYPE_CHECKING:
    from reports.build import ReportBuilder

_VERDICT_WORDS = {"beat": "beat", "lost": "lost to", "tied": "tied with"}
_TONES = {"beat": "good", "lost": "bad"}


# ------------------------------------------------------------------------------------------- verdict


def mixture_phrase(b: ReportBuilder, mixture: str) -> str:
    if mixture == PLAN:
        return "The plan"
    if mixture == REDUCED:
        share = reduced_share(b)
        return f"The plan at {fmt_pct(share, 0)} of the budget" if share is not None else "The plan at the reduced budget"
    if mixture == TRANSFER:
        return "The transfer-aware plan"
    return f"The {mixture} mixture"


def reduced_share(b: ReportBuilder) -> float | None:
    """The reduced plan's share of the full budget: the allocation summary's, else the trained amounts'."""
    if b.alloc is not None and b.alloc.reduced_fraction is not None:
        return b.alloc.reduced_fraction
    m = b.final.metrics
    col = "tokens" if "tokens" in m and m["tokens"].notna().all() else "pairs"
    seed = b.final.seeds[0]
    total = lambda name: m.loc[(m["mixture"] == name) & (m["seed"] == seed), col].sum()  # noqa: E731
    full = total(PLAN)
    return float(total(REDUCED) / full) if full > 0 else None


def verdict_sentence(b: ReportBuilder, row) -> str:
    who = mixture_phrase(b, str(row["mixture"]))
    against = str(row["baseline"]) + (" at the full budget" if row["mixture"] == REDUCED else "")
    mean, n = as_float(row["mean_difference"]), int(row["n_seeds"])
    if str(row["verdict"]).startswith("cannot"):
        return f"{who} vs {against}: {fmt_difference(mean)} {b.metric_label} with one final seed: cannot tell."
    word = _VERDICT_WORDS.get(str(row["verdict"]), str(row["verdict"]))
    text = fmt_difference(mean, row["low"], row["high"])
    point, interval = text.split(" ", 1)
    return (f"{who} {word} {against}: {point} {b.metric_label} on the objective, mean over {n} paired seeds, "
            f"{b.final.level:.0%} interval {interval}.")


def verdict_block(b: ReportBuilder) -> Verdict | None:
    if b.final is None:
        return None
    rows = b.final.objective_rows()
    if rows.empty:
        return None
    lines = [VerdictLine(verdict_sentence(b, r), _TONES.get(str(r["verdict"]), "")) for _, r in rows.iterrows()]
    one_seed = rows["verdict"].astype(str).str.startswith("cannot")
    note = "Differences are the plan's objective minus the baseline's, paired by final seed (positive = the plan better)"
    note += "." if one_seed.all() else "; beat or lost means the whole interval lies on one side of 0."
    if one_seed.any():
        note += (" One seed cannot tell a plan from a baseline: seed noise is often larger than the gain. Train "
                 "every mixture with several final seeds (final.seeds, e.g. [0, 1, 2]) for a paired interval.")
    return Verdict("Verdict of the final runs", lines, note)


def achieved_gain_metric(b: ReportBuilder) -> Metric | None:
    """The plan's mean achieved objective against the best baseline's over the seeds both were trained with
    (a baseline trained with more seeds than the plan would otherwise be compared on other seeds than the
    paired verdict beside it), toned by that verdict."""
    f = b.final
    if f is None or f.objectives is None:
        return None
    plan = f.achieved_objective(PLAN)
    paired = {m: s.loc[s.index.intersection(plan.index)] for m in f.baselines
              if not (s := f.achieved_objective(m)).empty}
    means = {m: s.mean() for m, s in paired.items() if not s.empty}
    if plan.empty or not means:
        return None
    sign = 1.0 if b.higher else -1.0
    best = max(means, key=lambda m: sign * means[m])
    shared = plan.loc[paired[best].index]
    gain = sign * (shared.mean() - means[best])
    seeds = f"mean of {len(shared)} paired seeds" if len(shared) > 1 else "one seed"
    rows = f.objective_rows()
    match = rows[(rows["mixture"] == PLAN) & (rows["baseline"] == best)]
    tone = _TONES.get(str(match["verdict"].iloc[0]), "") if len(match) else ""
    return Metric("Achieved gain (final runs)", fmt_signed(gain, 3),
                  f"plan {fmt_num(shared.mean(), 4)} vs {best} {fmt_num(means[best], 4)} ({seeds})", tone)


# ------------------------------------------------------------------------------------------- section


def final_section(b: ReportBuilder) -> Section | None:
    f = b.final
    if f is None:
        return None
    s = Section("final", "Predicted vs achieved (final runs)")
    seeds = ", ".join(str(v) for v in f.seeds)
    count = f"{len(f.seeds)} final seeds" if len(f.seeds) > 1 else "one final seed"
    s.blocks.append(Paragraph(
        f"Every mixture was trained with {count} ({seeds}); the plan and each baseline share every seed, so their "
        f"differences are paired."
        + ("" if len(f.seeds) > 1 else " With one seed there is no interval: a difference may be seed noise.")))
    reduced = reduced_paragraph(b)
    if reduced:
        s.blocks.append(Paragraph(reduced))
    fig = FF.final_figure(f.metrics, f.objectives, f.mixtures, b.colors, b.metric_label, objective_axis_label(b))
    s.blocks.append(b.save(fig, "predicted_vs_achieved", "Predicted vs achieved",
                           "Left: each mixture's achieved objective, one marker per seed (faint lines join a seed "
                           "across mixtures: the pairing), the bar their mean, the diamond the prediction. Right: each language in each mixture (star = plan) at its "
                           "predicted score: the mean achieved over seeds, the vertical line the seed range, the "
                           "horizontal bar the predicted interval."))
    panels = difference_panels(b)
    if panels:
        s.blocks += b.paged(
            _scopes(f), F.ROWS_PER_PAGE,
            lambda page: FF.differences_figure([_page_of(p, page) for p in panels], b.metric_label, f.level),
            "paired_differences", "Paired differences",
            "The plan minus each baseline, per seed (ticks) and as a mean with its paired interval: on top the "
            "objective, below each language. Right of 0: the plan did better.")
        s.blocks.append(comparison_table(b))
    if f.objectives is not None and not f.objectives.empty:
        s.blocks.append(objectives_table(b))
    s.blocks.append(metrics_table(b))
    if f.calibration is not None and not f.calibration.empty:
        s.blocks += calibration_blocks(b)
    if b.inputs.final_targets is not None and not b.inputs.final_targets.empty:
        s.blocks += target_blocks(b)
    return s


def objective_axis_label(b: ReportBuilder) -> str:
    """What the launcher's objective is in metric units (`planner.launch.objective`)."""
    kind = b.alloc.objective if b.alloc is not None else "sum"
    return {"sum": f"objective: Σ {b.metric_label}", "maxmin": f"objective: worst language's {b.metric_label}"}.get(
        kind, f"objective: weighted mean {b.metric_label}")


def reduced_paragraph(b: ReportBuilder) -> str | None:
    f = b.final
    mine, uniform = f.achieved_objective(REDUCED), f.achieved_objective("uniform")
    if mine.empty or uniform.empty:
        return None
    seeds = f"mean of {len(mine)} seeds" if len(mine) > 1 else "one seed"
    text = (f"{mixture_phrase(b, REDUCED)}: achieved objective {fmt_num(mine.mean(), 4)} ({seeds}) against "
            f"uniform's {fmt_num(uniform.mean(), 4)} at the full budget.")
    rows = f.objective_rows()
    match = rows[(rows["mixture"] == REDUCED) & (rows["baseline"] == "uniform")]
    if len(match):
        r = match.iloc[0]
        if str(r["verdict"]).startswith("cannot"):
            text += " One seed cannot tell whether the saving holds."
        else:
            held = {"beat": "the saving holds, with room to spare", "tied": "the saving holds: no difference "
                    "detected", "lost": "the saving does not hold"}.get(str(r["verdict"]), str(r["verdict"]))
            text += f" Paired difference {fmt_difference(r['mean_difference'], r['low'], r['high'])}: {held}."
    return text


# ------------------------------------------------------------------------------------- comparisons


def _scopes(f: FinalView) -> list[str]:
    scopes = f.comparison["scope"].astype(str) if f.comparison is not None else pd.Series(dtype=str)
    return sorted(set(scopes) - {"(objective)"})


def _difference_row(label: str, r, seed_columns: list[str]) -> FF.DifferenceRow:
    seeds = [float(r[c]) for c in seed_columns if c in r and pd.notna(r[c])]
    return FF.DifferenceRow(label, _nan(r["mean_difference"]), _nan(r["low"]), _nan(r["high"]), str(r["verdict"]), seeds)


def _nan(v) -> float:
    x = as_float(v)
    return math.nan if x is None else x


def difference_panels(b: ReportBuilder) -> list[FF.DifferencePanel]:
    c = b.final.comparison
    if c is None or c.empty:
        return []
    seed_columns = [col for col in c.columns if col.startswith("seed_")]
    panels = []
    for (mixture, baseline), rows in c.groupby(["mixture", "baseline"], sort=False):
        scope = rows["scope"].astype(str)
        objective = rows[scope == "(objective)"]
        panels.append(FF.DifferencePanel(
            f"{mixture} − {baseline}",
            _difference_row("objective", objective.iloc[0], seed_columns) if len(objective) else None,
            [_difference_row(str(r["scope"]), r, seed_columns) for _, r in rows[scope != "(objective)"].iterrows()]))
    order = {m: i for i, m in enumerate(b.final.mixtures)}
    return sorted(panels, key=lambda p: order.get(p.title.split(" − ")[0], len(order)))


def _page_of(panel: FF.DifferencePanel, languages: list[str]) -> FF.DifferencePanel:
    keep = set(languages)
    return FF.DifferencePanel(panel.title, panel.objective, [r for r in panel.languages if r.label in keep])


def _difference_text(r) -> str:
    if str(r["verdict"]).startswith("cannot"):
        return f"{fmt_difference(r['mean_difference'])}\ncannot tell (one seed)"
    return f"{fmt_difference(r['mean_difference'], r['low'], r['high'])}\n{r['verdict']}"


def comparison_table(b: ReportBuilder) -> Table:
    c = b.final.comparison
    pairs = list(dict.fromkeys(zip(c["mixture"], c["baseline"])))
    order = {m: i for i, m in enumerate(b.final.mixtures)}
    pairs.sort(key=lambda mb: order.get(mb[0], len(order)))
    cells = {(r["mixture"], r["baseline"], str(r["scope"])): _difference_text(r) for _, r in c.iterrows()}
    rows = []
    for scope in ["(objective)"] + _scopes(b.final):
        label = "objective" if scope == "(objective)" else scope
        rows.append([Cell(label)] + [Cell(cells.get((m, base, scope), "")) for m, base in pairs])
    caption = (f"Paired differences, plan − baseline in {b.metric_label} (positive = the plan better): mean over "
               f"seeds [{b.final.level:.0%} interval], and the verdict.")
    return Table(["scope"] + [f"{m} − {base}" for m, base in pairs], rows, caption,
                 frozenset(range(1, len(pairs) + 1)), id="comparison")


# ------------------------------------------------------------------------------------------ tables


def _seed_values(values: pd.Series) -> str:
    return ", ".join(fmt_num(v, 4) for v in values)


def objectives_table(b: ReportBuilder) -> Table:
    f = b.final
    several = len(f.seeds) > 1
    rows = []
    for mixture in [m for m in f.mixtures if m in set(f.objectives["mixture"])]:
        sub = f.objectives[f.objectives["mixture"] == mixture].sort_values("seed")
        achieved = sub["achieved_objective"].astype(float)
        predicted = float(sub["predicted_objective"].astype(float).mean())
        rows.append([Cell(mixture), Cell(str(len(sub))), Cell(fmt_num(predicted, 4)), Cell(fmt_num(achieved.mean(), 4))]
                    + ([Cell(_seed_values(achieved))] if several else [])
                    + [Cell(fmt_signed(achieved.mean() - predicted, 3))])
    columns = (["mixture", "seeds", "predicted objective", "achieved (mean)"] + (["achieved per seed"] if several else [])
               + ["achieved − predicted"])
    return Table(columns, rows, "Objective per mixture: predicted, and achieved per seed and on average.",
                 frozenset(range(1, len(columns))), id="final-objectives")


def metrics_table(b: ReportBuilder) -> Table:
    """One row per language, one column per trained mixture: achieved (per seed) vs predicted [interval]."""
    m, mixtures = b.final.metrics, b.final.mixtures
    cells = {}
    for (lang, mixture), g in m.groupby(["language", "mixture"], sort=False):
        cells[(lang, mixture)] = _metric_cell(g.sort_values("seed"))
    rows = [[Cell(lang)] + [Cell(cells.get((lang, mix), "")) for mix in mixtures] for lang in dict.fromkeys(m["language"])]
    caption = (f"Achieved {b.metric_label} (with several seeds: their mean, how many fell inside the predicted "
               f"interval, and each seed below), then the prediction [{b.final.level:.0%} interval], per language "
               f"and trained mixture; ✓ inside the interval, ✗ outside.")
    return Table(["language"] + mixtures, rows, caption, frozenset(range(1, len(mixtures) + 1)), id="final-metrics")


def _metric_cell(g: pd.DataFrame) -> str:
    r = g.iloc[0]
    predicted = fmt_interval(r["predicted"], r.get("predicted_low"), r.get("predicted_high"))
    achieved = g["achieved"].astype(float)
    inside = _inside(g)
    if len(g) == 1:
        mark = {True: " ✓", False: " ✗"}.get(inside.iloc[0], "") if len(inside) else ""
        return f"{fmt_num(achieved.iloc[0], 4)}{mark}\npredicted {predicted}"
    count = f" · {int(inside.sum())}/{len(inside)} inside" if len(inside) else ""
    return f"{fmt_num(achieved.mean(), 4)}{count}\npredicted {predicted}\nseeds {_seed_values(achieved)}"


_TRUE = ("true", "1", "1.0", "yes")  # how a boolean column reads back from a CSV written by anyone


def _inside(g: pd.DataFrame) -> pd.Series:
    """Inside the predicted interval, per row that has one (from the bounds; the column is a fallback)."""
    if {"predicted_low", "predicted_high"} <= set(g) and g["predicted_low"].notna().all():
        return (g["achieved"] >= g["predicted_low"]) & (g["achieved"] <= g["predicted_high"])
    if "inside_interval" in g:
        text = g["inside_interval"].astype(str).str.strip().str.lower()
        known = text.isin([*_TRUE, "false", "0", "0.0", "no"])
        return text[known].isin(_TRUE)
    return pd.Series(dtype=bool)


def calibration_blocks(b: ReportBuilder) -> list:
    cal, level = b.final.calibration, b.final.level
    rows = []
    for _, r in cal.iterrows():
        label = "all languages" if str(r["language"]) == "(all)" else str(r["language"])
        rows.append([Cell(label), Cell(fmt_num(r["cases"])), Cell(fmt_pct(r["coverage"], 0)),
                     Cell(fmt_signed(r["mean_error"], 3)), Cell(fmt_num(r["rms_error"], 3))])
    table = Table(["language", "cases", f"inside the {level:.0%} interval", "mean error (achieved − predicted)",
                   "RMS error"], rows,
                  f"Calibration: a {level:.0%} prediction interval should hold the achieved score in about "
                  f"{level:.0%} of the (mixture, seed) cases.", frozenset({1, 2, 3, 4}), id="calibration")
    overall = cal[cal["language"].astype(str) == "(all)"]
    runs = b.inputs.runs
    measured = runs is not None and "mixture" in runs and runs["mixture"].fillna("").astype(str).ne("").any()
    blocks = [Paragraph(calibration_sentence(overall.iloc[0], level, b.metric_label, b.higher, measured))
              ] if len(overall) else []
    return blocks + [table]


# |mean error| at least this share of the RMS error: the misses are a shift, not scatter.
SHIFT_SHARE = 0.8


def calibration_sentence(r, level: float, metric: str, higher: bool | None = None,
                         mixture_runs: bool = True) -> str:
    n, coverage = int(r["cases"]), as_float(r["coverage"])
    if not n or coverage is None:
        return "No final-run score had a prediction interval to check."
    # Two binomial standard errors around the nominal level: inside that band, the miss is chance.
    band = 2 * math.sqrt(level * (1 - level) / n)
    if coverage < level - band:
        judgement = "fewer than the nominal level: the intervals are too narrow for these runs"
    elif coverage > level + band:
        judgement = "more than the nominal level: the intervals are wider than these runs needed"
    else:
        judgement = f"within chance of the nominal {level:.0%}"
    text = (f"Calibration: {fmt_pct(coverage, 0)} of {n} achieved scores fell inside their {level:.0%} prediction "
            f"intervals, {judgement}. Achieved − predicted averages {fmt_signed(r['mean_error'], 3)} {metric} "
            f"(RMS {fmt_num(r['rms_error'], 3)}).")
    mean, rms = as_float(r["mean_error"]), as_float(r["rms_error"])
    if coverage < level - band and higher is not None and mean and rms and abs(mean) >= SHIFT_SHARE * rms:
        better = (mean > 0) == higher
        text += (f" The misses are one shift: every language scored {'better' if better else 'worse'} in the "
                 "final mixtures than its curve predicts. A shift shared by every mixture moves no comparison "
                 "between them.")
        if better and not mixture_runs:
            # Why, on the default: a language inside a mixture trains for many more steps, which teach the
            # shared skill (the format, answering with a translation) too; its own proxy runs cannot see that.
            text += (" The curves were fitted on languages trained alone; inside a mixture the other languages' "
                     "data help (transfer), which only mixture proxy runs measure (sweep.mixtures, docs/transfer.md).")
    return text


def _truthy(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.lower().isin(_TRUE)


def target_blocks(b: ReportBuilder) -> list:
    """The target plan checked by training: each language alone at the pairs it was planned to need."""
    t = b.inputs.final_targets
    reached, inside = _truthy(t["reached"]), _inside(t)  # inside: from the bounds, as for the final runs
    q = as_float(t["confidence"].iloc[0]) or 0.5
    n = len(t)
    rows = [[Cell(str(r["language"])), Cell(fmt_num(r["target"], 3)), Cell(fmt_num(r["pairs"])),
             Cell(fmt_interval(r["predicted"], r["predicted_low"], r["predicted_high"])), Cell(fmt_num(r["achieved"], 3)),
             Cell("yes" if ok else "no"), Cell("yes" if within else "no")]
            for (_, r), ok, within in zip(t.iterrows(), reached, inside)]
    better = "at least" if b.higher else "at most"
    text = (f"Target plan, checked by training: each language was trained alone at the pairs the target plan "
            f"says it needs to reach its target with {fmt_pct(q, 0)} confidence (one seed, the proxy recipe). "
            f"{int(reached.sum())} of {n} reached their target ({better} the target {b.metric_label}); "
            f"{int(inside.sum())} of {n} landed inside the predicted {b.final.level:.0%} interval. "
            + ("With this few languages one miss is not evidence against the plan; many misses would be."
               if n < 10 else ""))
    table = Table(["language", "target", "pairs planned", f"predicted [{b.final.level:.0%}]", "achieved", "reached",
                   "inside"], rows, "Each language at its planned need (final/targets.csv).",
                  frozenset({1, 2, 4}), id="targets")
    return [Paragraph(text), table]
