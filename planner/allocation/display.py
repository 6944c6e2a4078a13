"""The plan as text: the per-language table, why (λ and marginal gains), and the baselines beside it."""

from __future__ import annotations

import math

from planner.allocation.plan import AllocationResult
from planner.allocation.targets import share_text
from planner.allocation.verdict import Verdict
from core.units import amount, number, per_unit, unit_name


def _num(v, fmt: str = "{:,.0f}") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)


def _value(v) -> str:
    """An objective value: budgets (target objective) in whole units, metric values with 3 decimals."""
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3f}"


def _signed(v) -> str:
    return f"{v:+,.0f}" if abs(v) >= 1000 else f"{v:+.3f}"


def _interval(lo, hi, fmt: str) -> str:
    if lo is None or not math.isfinite(lo) or hi is None or math.isnan(hi):  # a target no draw reaches: "-"
        return "-"
    if math.isinf(hi):  # target objective: some draws never reach the target
        return f"[{fmt.format(lo)}, ∞)"
    return f"[{fmt.format(lo)}, {fmt.format(hi)}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:  # first column left-aligned, numbers right-aligned
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _purchase_lines(r: AllocationResult) -> list[str]:
    """The target objective's totals, and what the plan trains beyond the pairs held with its cost."""
    out, cur = [], r.currency
    if r.objective == "target" and r.languages:
        how = (f"with probability {share_text(r.target_confidence)} (that share of the fits' draws reach each target)"
               if r.target_confidence is not None and r.risk == "expected" else "on the point fits")
        line = (f"reaching the targets {how}: {sum(p.pairs for p in r.languages):,.0f} pairs, "
                f"{amount(sum(p.cost for p in r.languages), r.unit, cur)}")
        if r.unit != "money" and all(math.isfinite(p.price_per_pair) for p in r.languages):
            line += f", {amount(sum(p.pairs * p.price_per_pair for p in r.languages), 'money', cur)} at the prices given"
        out.append(line)
    if r.to_buy is not None and r.to_buy > 0:
        parts = ", ".join(f"{p.language} {p.to_buy:,.0f}" for p in r.languages if math.isfinite(p.to_buy) and p.to_buy > 0)
        cost = f", costing {amount(r.to_buy_cost, 'money', cur)}" if r.to_buy_cost is not None else ""
        out.append(f"to buy: {r.to_buy:,.0f} pairs beyond the data held ({parts}){cost}")
    return out


def format_result(result: AllocationResult) -> str:
    r = result
    pct = f"{r.interval_level:.0%}"
    uname = unit_name(r.unit, r.currency)
    out = [
        f"objective: {r.objective_label} ({'higher' if r.objective_higher_is_better else 'lower'} is better); "
        f"risk: {r.risk}; solver: {r.solver}",
        f"budget: {amount(r.budget, r.unit, r.currency)}; spent {number(r.spent, r.unit)}; "
        f"unused {number(r.unused_budget, r.unit)}",
    ]
    if r.lam is not None:
        out.append(
            f"λ = {r.lam:.4g} {r.metric} per {per_unit(r.unit, r.currency)}: every language not at a bound gains exactly this much "
            "(times its weight) from one more unit of budget; a floor language gains less, a capped one more"
        )
    if r.level is not None:
        out.append(f"common level = {r.level:.4g} {r.metric}: every language not at a bound is predicted to reach it")
    out.append("")
    rows = [
        [
            p.language,
            _num(p.pairs),
            _num(p.tokens),
            f"{p.share:.1%}",
            _num(p.predicted, "{:.2f}"),
            _interval(p.predicted_low, p.predicted_high, "{:.2f}"),
            _interval(p.pairs_low, p.pairs_high, "{:,.0f}"),
            _num(p.marginal_gain, "{:.3g}"),
            p.at_bound or "",
        ]
        for p in r.languages
    ]
    header = ["language", "pairs", "tokens", "share", f"predicted {r.metric}", f"{pct} interval",
              f"pairs {pct} interval", f"gain/{per_unit(r.unit, r.currency)}", "bound"]
    if r.objective == "target":  # each target, and the share of the fits' draws reaching it with the plan
        header += ["target", "reached by"]
        for row, p in zip(rows, r.languages):
            row += [_num(p.target, "{:.2f}"), _num(p.p_reach, "{:.1%}")]
    if r.unit == "money" or (r.objective == "target" and r.unit != "pairs"):  # the cost in the budget's unit
        header.append(f"cost ({uname})")
        for row, p in zip(rows, r.languages):
            row.append(number(p.cost, r.unit))
    if r.unit != "money" and r.currency is not None and (r.objective == "target" or r.to_buy):
        header.append(f"price of the pairs ({r.currency})")  # what the plan's pairs cost at the prices given
        for row, p in zip(rows, r.languages):
            row.append(number(p.pairs * p.price_per_pair, "money"))
    if r.to_buy:  # pairs beyond those held, and their price
        header += ["to buy"] + ([f"to buy ({r.currency})"] if r.to_buy_cost is not None else [])
        for row, p in zip(rows, r.languages):
            row += [_num(p.to_buy)] + ([number(p.to_buy_cost, "money")] if r.to_buy_cost is not None else [])
    out += _table(header, rows)
    out += _purchase_lines(r)
    if r.target_confidence is not None and r.risk == "expected":
        out.append(f"each target the plan can reach is planned to be reached by at least {share_text(r.target_confidence)} of "
                   "the fits' draws (budget.target_confidence; 'reached by': the share at the planned pairs)")
    out += ["", "why:"] + [f"  {p.language}: {p.why}" for p in r.languages if p.why]
    out += ["", f"plan vs baselines at the same budget ({r.objective_label}):"]
    sign = 1.0 if r.objective_higher_is_better else -1.0
    rows = [["plan", _value(r.objective_value), "", number(r.budget - r.unused_budget, r.unit)]]
    for name, b in sorted(r.baselines.items(), key=lambda kv: -sign * kv[1].objective_value):
        rows.append([name, _value(b.objective_value), _signed(sign * (r.objective_value - b.objective_value)),
                     number(r.budget - b.unused_budget, r.unit)])
    out += _table(["allocation", "objective", "plan's gain", f"{uname} spent"], rows)
    for name, why in r.unavailable_baselines.items():
        out.append(f"  {name}: unavailable ({why})")
    if r.best_baseline is not None:
        out.append(f"gain over the best baseline ({r.best_baseline}): {_signed(r.gain_over_best_baseline)}")
    units = {"sum": f"summed {r.metric}", "maxmin": r.metric}.get(r.objective, r.metric)
    for v in r.verdicts.values():
        out.append(f"verdict: {Verdict(**v).sentence(units)}")
    if r.budget_saved is not None:
        out.append(f"budget saved: the plan is predicted to match uniform's objective at {1 - r.budget_saved:.0%} of "
                   f"the budget ({amount(r.reduced_budget, r.unit, r.currency, meaning=False)}), i.e. it saves {r.budget_saved:.0%}")
    if r.transfer:
        t = r.transfer
        how = "τ: " + ", ".join(f"{lang} {v:+.2f}" for lang, v in t["tau"].items())
        out += ["", f"transfer-aware plan ({how}): objective {_value(t['objective_value'])} vs uniform "
                f"{_value(t['uniform_objective_value'])}, both with transfer"]
        out.append("  " + ", ".join(f"{lang} {p:,.0f}" for lang, p in t["pairs"].items()))
    if r.warnings:
        out += ["", "notes:"] + [f"  - {w}" for w in r.warnings]
    return "\n".join(out)
