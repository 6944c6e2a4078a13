"""The plan sections: the allocation beside its baselines (and the plan at the reduced budget), why each
language gets what it gets, the budget saved, and the marginal gains the solver equalises.

Functions of a `ReportBuilder` (the shared context).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reports import figures as F
from reports import plan_figures as PF
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
        detail += f" ({fmt_num(a.reduced_budget, 3)} of {fmt_num(a.budget)} {a.unit})"
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


def mixtures(b: ReportBuilder, languages: list[str]) -> list[PF.MixtureSeries]:
    a = b.alloc
    t = a.table.loc[languages]
    unit = a.amount_unit
    col = lambda c: t[c].to_numpy(float) if c in t else None  # noqa: E731
    out = [PF.MixtureSeries("plan", amount=col(unit), amount_low=col(f"{unit}_low"), amount_high=col(f"{unit}_high"),
                            predicted=col("predicted"), predicted_low=col("predicted_low"),
                            predicted_high=col("predicted_high"))]
    for base in a.baselines:
        amounts = base.pairs if unit == "pairs" else base.tokens
        amount = np.array([_nan(amounts.get(lang)) for lang in languages])
        predicted = np.array([_nan(base.predicted.get(lang)) for lang in languages])
        band = _interval_at(b, languages, np.array([_nan(base.pairs.get(lang)) for lang in languages]),
                            np.array([_nan(base.tokens.get(lang)) for lang in languages]))
        low, high = band if band is not None else (None, None)
        out.append(PF.MixtureSeries(base.name, amount=amount, predicted=predicted, predicted_low=low, predicted_high=high))
    return out


def _nan(v) -> float:
    return float(v) if v is not None else np.nan


def _interval_at(b: ReportBuilder, languages, pairs, tokens):
    """Intervals of each language's prediction at a baseline's allocation (from the fits)."""
    if not b.fits:
        return None
    low, high = np.full(len(languages), np.nan), np.full(len(languages), np.nan)
    for i, lang in enumerate(languages):
        lf = b.fits.get(lang)
        x = tokens[i] if b.fit_x == "tokens" else pairs[i]
        if lf is None or not np.isfinite(x) or x < 0 or (x == 0 and not lf.curve.has_offset):
            continue
        lo, hi = lf.predict_interval(np.array([x]), b.level)
        low[i], high[i] = float(np.asarray(lo).ravel()[0]), float(np.asarray(hi).ravel()[0])
    return low, high


def _predict_at(b: ReportBuilder, lang: str, pairs: float) -> float | None:
    """The prediction at `pairs` as the allocator scores it: the point fit, or the posterior mean when the
    plan was made under `risk: expected`."""
    lf, a = b.fits.get(lang), b.alloc
    if lf is None or lang not in a.table.index:
        return None
    row = a.table.loc[lang]
    tpp = as_float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else as_float(lf.tokens_per_pair)
    x = pairs * (tpp or np.nan) if b.fit_x == "tokens" else pairs
    if not np.isfinite(x) or (x <= 0 and not lf.curve.has_offset):
        return None
    draws = lf.predict_draws(np.array([x])) if a.risk == "expected" else None
    return as_float(np.mean(draws) if draws is not None else lf.predict(np.array([x]))[0])


def allocation_section(b: ReportBuilder) -> Section | None:
    a = b.alloc
    if a is None:
        return None
    s = Section("allocation", "The allocation and its baselines")
    names = ", ".join(base.name for base in a.baselines) or "none recorded"
    caption = (f"Top: {a.unit} each mixture gives each language at the same budget (plan error bars: the "
               f"{b.level:.0%} interval of the allocation itself). Bottom: the predicted "
               f"{b.metric_label} with its {b.level:.0%} interval. Baselines: {names}.")
    s.blocks += b.paged(
        a.languages, F.languages_per_bar_page(1 + len(a.baselines)),
        lambda page: PF.allocation_figure(page, mixtures(b, page), f"training {a.unit}", b.metric_label),
        "allocation", "Plan vs baselines", caption,
    )
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
    return f"{fmt_num(amount, 4)}\n→ {fmt_num(_predict_at(b, lang, pairs), 3)}"


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
    u/c pairs = k·u/c units of x, so d(w·utility)/du = w·(k/c)·f'(k·u/c) for the fitted curve f.
    """
    a = b.alloc
    row = a.table.loc[language]
    tpp = as_float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else None
    tpp = tpp or as_float(lf.tokens_per_pair) or 1.0
    cost = tpp if a.unit == "tokens" else 1.0
    x_per_budget = (tpp if b.fit_x == "tokens" else 1.0) / cost
    weight = as_float(row.get("weight")) if a.objective == "sum" else 1.0
    weight = 1.0 if weight is None else weight
    # The solver's optimum before rounding to whole pairs is where the KKT conditions hold exactly.
    exact = as_float(row.get("pairs_exact")) or as_float(row["pairs"])
    plan_u = exact * cost if exact else None
    sizes = np.asarray([v for v in lf.sizes if v > 0] or [1.0], dtype=float) / x_per_budget
    lo = min([sizes.min()] + ([plan_u] if plan_u else [])) / 2
    hi = max([sizes.max() * EXTRAPOLATION_FACTOR] + ([plan_u * 2] if plan_u else []))
    grid = np.geomspace(max(lo, 1e-9), hi, GRID_POINTS)

    def gain(u):
        return weight * x_per_budget * np.asarray(lf.curve.marginal_utility(np.asarray(u, dtype=float) * x_per_budget))

    return PF.MarginalLine(language=language, color=b.colors.get(language, "#555"), grid=grid, gain=gain(grid),
                           plan_x=plan_u, plan_gain=float(gain(plan_u)) if plan_u else None,
                           at_bound=bound_text(row.get("at_bound")) != "")


def marginal_section(b: ReportBuilder) -> Section | None:
    a = b.alloc
    if a is None or not b.fits:
        return None
    langs = [lang for lang in a.languages if lang in b.fits]
    if not langs:
        return None
    lines = {lang: b.marginal_line(lang, b.fits[lang]) for lang in langs}
    s = Section("marginal", "Why the plan is what it is: marginal gain")
    unit = a.unit[:-1] if a.unit.endswith("s") else a.unit
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
    caption = f"Gain in weighted utility per extra {unit} (log-log) against each language's {a.unit}; points mark the plan."
    s.blocks += b.paged(
        langs, F.LINES_PER_CHART,
        lambda page: PF.marginal_figure([lines[lang] for lang in page], a.lam if a.objective == "sum" else None,
                                        f"training {a.unit} (log scale)", f"marginal gain per {unit}"),
        "marginal_gain", "Marginal gain and λ", caption,
    )
    return s
