"""The plan sections: the allocation beside its baselines (and the plan at the reduced budget), why each
language gets what it gets, the budget saved, and the marginal gains the solver equalises.

Functions of a `ReportBuilder` (the shared context).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fits.laws import Curve
from reports import figures as F
from reports import plan_figures as PF
from reports.plan_mixtures import compare_at_plan_spend, mixtures, plan_spend, predict_at
from reports.document import Callout, Cell, Metric, Paragraph, Section, Table
from reports.fit_sections import EXTRAPOLATION_FACTOR, GRID_POINTS, bound_text
from reports.style import fmt_interval, fmt_num, fmt_pct, fmt_signed
from reports.views import AllocationView, as_float, language_label

if TYPE_CHECKING:
    from reports.build import ReportBuilder


def budget_saved_metric(a: AllocationView) -> Metric | None:
    """The plan's headline in budget: the share it saves at uniform's predicted objective."""
    if a.budget_saved is None:
        return None
    fraction = a.reduced_fraction
    detail = f"the plan matches uniform's predicted objective at {fmt_pct(fraction, 0)} of the budget"
    if a.reduced_budget is not None and a.budget is not None:
        detail += f" ({fmt_num(a.reduced_budget, 3)} of {a.budget_text()})"
    return Metric("Budget saved", fmt_pct(a.budget_saved, 0), detail, "good" if a.budget_saved > 0 else "")


def plan_sentence(b: ReportBuilder, a: AllocationView) -> str:
    top = a.table.sort_values("share", ascending=False)
    leaders = ", ".join(f"{lang} {fmt_pct(share, 0)}" for lang, share in zip(top["language"][:3], top["share"][:3]))
    goal = a.objective_label or f"{a.objective} objective"
    tokens = a.table["tokens"].sum()
    amount = fmt_num(a.table["pairs"].sum()) + " translation pairs" + (
        f" ({fmt_num(tokens, 3)} tokens)" if np.isfinite(tokens) and tokens > 0 else "")
    return (f"The plan spreads {amount} over {len(a.table)} languages (largest shares of the budget: {leaders}), "
            f"chosen to {'maximise' if a.objective_higher else 'minimise'} the {goal}.")


def plan_table(b: ReportBuilder, a: AllocationView, compact: bool) -> Table:
    t = a.table
    max_share = float(t["share"].max()) or 1.0
    has = lambda c: c in t and t[c].notna().any()  # noqa: E731
    columns = ["language", f"pairs{' [interval]' if has('pairs_low') else ''}", "tokens", "share",
               f"predicted {b.metric_label} [{b.level:.0%}]"]
    if not compact:
        columns += [c for c, ok in (("marginal gain", has("marginal_gain")), ("at bound", "at_bound" in t)) if ok]
        # the target objective: each target, and the share of the fits' draws that reach it with the plan
        columns += [c for c, ok in (("target", has("target")), ("reached by (draws)", has("p_reach"))) if ok]
    rows = []
    for _, r in t.iterrows():
        lang = r["language"]
        row = [
            Cell(language_label(lang, b.names), b.warnings_for(lang) if not compact else ()),
            Cell(fmt_interval(r["pairs"], r.get("pairs_low"), r.get("pairs_high"), 4)),
            Cell(fmt_num(r["tokens"], 4)),
            Cell(fmt_pct(r["share"]), bar=float(r["share"]) / max_share),
            Cell(fmt_interval(r["predicted"], r["predicted_low"], r["predicted_high"])),
        ]
        if not compact:
            if has("marginal_gain"):
                row.append(Cell(fmt_num(r["marginal_gain"])))
            if "at_bound" in t:
                row.append(Cell(bound_text(r["at_bound"])))
            if has("target"):
                row.append(Cell(fmt_num(r["target"])))
            if has("p_reach"):
                row.append(Cell(fmt_pct(r["p_reach"], 0) or "-"))
        rows.append(row)
    caption = "The plan." if compact else "The plan, per language, with the solver's marginal gain per budget unit."
    return Table(columns, rows, caption, frozenset(range(1, len(columns))) - {3}, id=f"plan-{'compact' if compact else 'full'}")


def why_table(b: ReportBuilder, a: AllocationView) -> Table:
    """allocation.csv's `why`: "<ratio> an equal share: reason; reason", one row per language."""
    rows = []
    for _, r in a.table.iterrows():
        text = str(r.get("why") or "").strip()
        head, _, reasons = text.partition(": ")
        rows.append([Cell(language_label(r["language"], b.names)), Cell(head if reasons else ""),
                     Cell("\n".join(reasons.split("; ")) if reasons else text)])
    unit = a.amount_unit
    if a.objective == "target":
        caption = (f"What each language's {unit} are for: the fewest that reach its target with the plan's "
                   f"confidence, against an equal split of what the plan spends.")
    else:
        caption = (f"Why each language gets more or less than an equal share of the {unit} (the uniform split): "
                   f"what doubling its equal share would buy against the median language, bounds, ceilings and "
                   f"token prices.")
    return Table(["language", "planned vs equal share", "why"], rows, caption, frozenset({1}), id="why")


def allocation_section(b: ReportBuilder) -> Section | None:
    a = b.alloc
    if a is None:
        return None
    s = Section("allocation", "The allocation and its baselines")
    names = ", ".join(base.name for base in a.baselines) or "none recorded"
    if compare_at_plan_spend(b):
        spend = (f"Baselines ({names}) at the plan's spend, {a.budget_text(plan_spend(b))} of the "
                 f"{a.budget_text()} budget: a target plan spends only what its targets need, so "
                 f"each recipe is shown with the same amount (the baseline table below lists them at the full budget).")
    else:
        spend = f"Baselines ({names}) at the same budget."
    caption = (f"Top: {a.amount_unit} each mixture gives each language (plan error bars: the {b.level:.0%} interval of "
               f"the allocation itself). Bottom: the predicted {b.metric_label} with its {b.level:.0%} predictive "
               f"interval, the same kind for every mixture: the fit's uncertainty at that amount, the law's "
               f"extrapolation error beyond the runs, and one run's noise (what one final run would score). {spend}")
    left_out: dict[str, str] = {}

    def draw(page):
        series, dropped = mixtures(b, page)
        left_out.update(dropped)
        return PF.allocation_figure(page, series, f"training {a.amount_unit}", b.metric_label)

    s.blocks += b.paged(a.languages, F.languages_per_bar_page(1 + len(a.baselines)), draw, "allocation",
                        "Plan vs baselines", caption)
    if left_out:
        s.blocks.append(Callout("Baselines not drawn at the plan's spend",
                                [f"{name}: {why}" for name, why in left_out.items()], "info"))
    if a.unavailable:
        s.blocks.append(Callout("Baselines not computed", [f"{name}: {why}" for name, why in a.unavailable.items()], "info"))
    if a.has_why():
        s.blocks.append(why_table(b, a))
    s.blocks.append(plan_table(b, a, compact=False))
    if a.baselines or a.reduced_pairs:
        s.blocks.append(baseline_table(b, a))
    return s


def baseline_table(b: ReportBuilder, a: AllocationView) -> Table:
    unit = a.amount_unit
    reduced = f"plan at {fmt_pct(a.reduced_fraction, 0)} of the budget" if a.reduced_pairs else None
    columns = ["language", "plan"] + ([reduced] if reduced else []) + [base.name for base in a.baselines]
    rows = []
    for lang in a.languages:
        r = a.table.loc[lang]
        cells = [Cell(lang), Cell(f"{fmt_num(r[unit], 4)}\n→ {fmt_num(r['predicted'], 3)}")]
        if reduced:
            cells.append(Cell(_reduced_cell(b, a, lang)))
        for base in a.baselines:
            amount = (base.pairs if unit == "pairs" else base.tokens).get(lang)
            cells.append(Cell(f"{fmt_num(amount, 4)}\n→ {fmt_num(base.predicted.get(lang), 3)}"))
        rows.append(cells)
    rows.append(_objective_row(a, reduced is not None))
    caption = (f"Each cell: {unit}, then → the predicted {b.metric_label}, at the same budget. The last row is the "
               f"objective ({a.objective}) and its difference from the plan.")
    if reduced:
        caption += (f" The {reduced} is the plan re-solved for the smallest budget at which its predicted objective "
                    f"still matches uniform's at the full budget.")
    return Table(columns, rows, caption, frozenset(range(1, len(columns))), id="baselines")


def _reduced_cell(b: ReportBuilder, a: AllocationView, lang: str) -> str:
    pairs = a.reduced_pairs.get(lang)
    if pairs is None:
        return ""
    r = a.table.loc[lang]
    amount = pairs * r["tokens"] / r["pairs"] if a.amount_unit == "tokens" and r["pairs"] > 0 else pairs
    return f"{fmt_num(amount, 4)}\n→ {fmt_num(predict_at(b, lang, pairs), 3)}"


def _objective_row(a: AllocationView, reduced: bool) -> list[Cell]:
    best = a.best()
    row = [Cell("objective"), Cell(fmt_num(a.plan_objective, 4))]
    if reduced:
        uniform = next((base for base in a.baselines if base.name == "uniform"), None)
        row.append(Cell(f"≈ uniform's\n{fmt_num(uniform.objective, 4)}" if uniform and uniform.objective is not None else ""))
    for base in a.baselines:
        text = fmt_num(base.objective, 4)
        if a.plan_objective is not None and base.objective is not None:
            text += f"\n({fmt_signed(base.objective - a.plan_objective, 3)})"
        row.append(Cell(text + ("\n← best baseline" if best and base.name == best.name else "")))
    return row


def marginal_line(b: ReportBuilder, language: str, lf) -> PF.MarginalLine:
    """Marginal gain per budget unit against data in budget units: what the solver equalises at λ.

    With c = budget units per pair and k = fitted x units per pair, spending u budget units buys
    u/c pairs = k·u/c units of x, so d(w·utility)/du = w·(k/c)·f'(k·u/c) for the curve f the plan
    optimised (`marginal_of`: the point fit, or the mean over the draws under `risk: expected`). A language
    planned 0 pairs sits at u = 0 (the figure gives 0 a slot of its own).
    """
    a = b.alloc
    row = a.table.loc[language]
    tpp = as_float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else None
    tpp = tpp or as_float(lf.tokens_per_pair) or 1.0
    cost = a.cost_per_pair(language, tpp)
    x_per_budget = (tpp if b.fit_x == "tokens" else 1.0) / cost
    weight = as_float(row.get("weight")) if a.objective == "sum" else 1.0
    weight = 1.0 if weight is None else weight
    # The solver's optimum before rounding to whole pairs is where the KKT conditions hold exactly.
    exact = as_float(row.get("pairs_exact")) or as_float(row["pairs"])
    plan_u = 0.0 if as_float(row["pairs"]) == 0 else (exact * cost if exact else None)
    sizes = np.asarray([v for v in lf.sizes if v > 0] or [1.0], dtype=float) / x_per_budget
    lo = min([sizes.min()] + ([plan_u] if plan_u else [])) / 2
    hi = max([sizes.max() * EXTRAPOLATION_FACTOR] + ([plan_u * 2] if plan_u else []))
    grid = np.geomspace(max(lo, 1e-9), hi, GRID_POINTS)
    marginal = marginal_of(b, lf)

    def gain(u):
        return weight * x_per_budget * np.asarray(marginal(np.asarray(u, dtype=float) * x_per_budget))

    plan_gain = None
    if plan_u:
        plan_gain = float(gain(plan_u))
    elif plan_u == 0.0:
        # At 0 a curve without an offset has an infinite slope; the solver reads it at its smallest
        # evaluated amount, and allocation.csv records that gain.
        plan_gain = float(gain(0.0)) if lf.curve.has_offset else as_float(row.get("marginal_gain"))
    return PF.MarginalLine(language=language, color=b.colors.get(language, "#555"), grid=grid, gain=gain(grid),
                           plan_x=plan_u, plan_gain=plan_gain, at_bound=bound_text(row.get("at_bound")) != "")


def marginal_of(b: ReportBuilder, lf):
    """d utility / dx of the curve the plan optimised: the point fit under `risk: mean`; under `risk:
    expected` the mean over the fit's draws, as the allocator averages them (the first draws every
    language has, those that are not increasing and concave left out), so the plan's points sit on λ."""
    if b.alloc.risk != "expected" or lf.boot is None:
        return lf.curve.marginal_utility
    count = min(int(np.size(next(iter(f.boot.params.values())))) for f in b.fits.values() if f.boot is not None)
    params = {k: np.asarray(v, dtype=float)[:count] for k, v in lf.boot.params.items()}
    usable = np.all([np.isfinite(v) for v in params.values()], axis=0)
    if lf.family == "power":
        usable &= (params["scale"] > 0) & (params["alpha"] > 0) & (params.get("x0", np.zeros(count)) >= 0)
    else:
        usable &= (1.0 if lf.higher_is_better else -1.0) * params["b"] > 0
    if not usable.any():  # the solver pins such a language to its floor: no gain to draw
        return lambda x: np.full(np.shape(x), np.nan)
    draws = Curve(lf.family, {k: v[usable] for k, v in params.items()}, lf.higher_is_better)
    return lambda x: np.mean(draws.marginal_utility(np.asarray(x, dtype=float)[..., None]), axis=-1)


def marginal_section(b: ReportBuilder) -> Section | None:
    a = b.alloc
    if a is None or not b.fits:
        return None
    langs = [lang for lang in a.languages if lang in b.fits]
    if not langs:
        return None
    lines = {lang: b.marginal_line(lang, b.fits[lang]) for lang in langs}
    s = Section("marginal", "Why the plan is what it is: marginal gain")
    unit = {"pairs": "pair", "tokens": "token"}.get(a.unit, a.unit_label)
    if a.objective == "sum":
        s.blocks.append(Paragraph(
            f"The plan maximises the weighted sum of predicted scores. At the optimum every language not held "
            f"at a floor or cap gains the same from one more {unit}: its curve crosses the dashed line "
            f"λ at its planned amount. A language whose curve lies above λ everywhere in reach is capped; one "
            f"below it stays at its floor (hollow markers)."))
    else:
        s.blocks.append(Paragraph(
            f"The objective is {a.objective}, so the plan does not equalise marginal gains; the curves show what "
            f"one more {unit} would buy each language at its planned amount."))
    curve = ("the mean over the fit's draws, as the plan under risk 'expected' averages them" if a.risk == "expected"
             else "the point fit, which the plan under risk 'mean' optimises")
    caption = (f"Gain in weighted utility per extra {unit} (log-log) against what each language's data costs "
               f"({a.unit_label}), read from {curve}; points mark the plan. A language planned nothing sits at 0 (linear up to the dotted "
               f"line), at the gain the solver read there.")

    def xlabel(page) -> str:
        zero = any(lines[lang].plan_x == 0 for lang in page)
        return f"its data, in {a.unit_label} ({'0 = none planned; ' if zero else ''}log scale)"

    s.blocks += b.paged(
        langs, F.LINES_PER_CHART,
        lambda page: PF.marginal_figure([lines[lang] for lang in page], a.lam if a.objective == "sum" else None,
                                        xlabel(page), f"marginal gain per {unit}"),
        "marginal_gain", "Marginal gain and λ", caption,
    )
    return s
