"""Why each language gets more or less than an equal share: one line per language, true for its objective.

The counterfactual is the `uniform` baseline (an equal share of the budget in its unit: equal pairs,
equal tokens or equal money). The head says how the plan's spend on a language compares with it; the
reasons are the objective's own:

- every objective: a bound (held at its floor, capped at max_pairs × max_epochs, floor = cap);
- `sum` (λ equalised): the curve — steeper / flatter than the median language at an equal share (doubling
  an equal share costs every language the same budget, so this compares what the solver compares); near
  its ceiling; its weight when weights differ; its price when prices differ (tokens per pair under a token
  budget, price per pair under a money budget; under a pair budget every pair costs 1, so no price reason);
- `maxmin` (a common level): a language is raised to the common level, kept at its floor because it is
  already above that level there (it needs nothing to be better than the others), or capped below it;
- `target`: see `targets.target_why` (the target and the confidence q);
- a user objective: its bounds only (the objective is the user's).
"""

from __future__ import annotations

import numpy as np

from planner.allocation.curves import UtilityCurves
from planner.allocation.problem import AllocationProblem
from planner.allocation.solver import CAP, FLOOR
from core.units import unit_name


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 10 else f"{v:,.0f}"


def _head(spent: float, equal: float) -> str:
    if equal > 0:
        ratio = spent / equal
        return "the same as an equal share" if abs(ratio - 1) < 0.05 else f"{ratio:.2f}× an equal share"
    # every language capped at nothing: an equal share is 0 too, and no ratio means anything
    return "the same as an equal share (none)" if spent == 0 else "more than an equal share (none)"


def _bound_reason(problem: AllocationProblem, i: int, bound) -> str | None:
    if problem.lo[i] == problem.hi[i]:
        return f"its floor and cap are both {problem.hi[i]:,.0f} pairs"
    if bound == FLOOR and problem.lo[i] > 0:
        return f"held at its floor of {problem.lo[i]:,.0f} pairs"
    if bound == CAP:
        return f"capped at {problem.hi[i]:,.0f} pairs (max_pairs × max_epochs)"
    return None


def explain(problem: AllocationProblem, curves: UtilityCurves, pairs: np.ndarray, uniform: np.ndarray,
            bound: np.ndarray, objective: str = "sum", level=None) -> list[str]:
    """One sentence per language (aligned with `problem.languages`). `level`: the maxmin solver's common
    utility level (None or NaN: none, e.g. every improvable language capped or a black-box solve)."""
    heads = [_head(p * c, u * c) for p, u, c in zip(pairs, uniform, problem.cost)]
    if objective == "maxmin":
        reasons = _maxmin_reasons(problem, curves, pairs, uniform, bound, level)
    elif objective == "sum":
        reasons = _sum_reasons(problem, curves, uniform, bound)
    else:  # a user objective: only the bounds are the planner's to explain
        reasons = [[r] if (r := _bound_reason(problem, i, b)) else ["as your objective (--objective-fn) chose"]
                   for i, b in enumerate(bound)]
    return [f"{head}: " + "; ".join(r) for head, r in zip(heads, reasons)]


def _price_reason(problem: AllocationProblem, i: int) -> str | None:
    """Under a token or money budget a cheap language's equal share buys more pairs; under pairs every
    pair costs 1 and price is no reason."""
    if problem.unit == "pairs":
        return None
    price = problem.cost
    median = float(np.median(price))
    rel = price[i] / median if median > 0 else 1.0
    if 0.85 < rel < 1.15:
        return None
    word = "cheaper" if rel < 1 else "pricier"
    if problem.unit == "tokens":
        return f"{word} tokens ({price[i]:.0f} per pair, median {median:.0f})"
    cur = unit_name("money", problem.currency)
    return f"{word} pairs ({price[i]:,.3g} {cur} per pair, median {median:,.3g})"


def _sum_reasons(problem: AllocationProblem, curves: UtilityCurves, uniform: np.ndarray, bound: np.ndarray) -> list[list[str]]:
    metric = problem.metric
    doubled = curves.utility(2 * np.maximum(uniform, 1e-9)) - curves.utility(uniform)  # utility units
    median_gain = float(np.median(doubled))
    headroom = _ceilings(curves) - curves.utility(uniform)
    out = []
    for i in range(len(problem.languages)):
        reasons = [r] if (r := _bound_reason(problem, i, bound[i])) else []
        gain = float(doubled[i])
        if median_gain > 0 and abs(gain / median_gain - 1) >= 0.15:
            kind = "steeper" if gain > median_gain else "flatter"
            reasons.append(f"{kind} curve: doubling its equal share buys {_fmt(gain)} {metric} (median language "
                           f"{_fmt(median_gain)})")
        if np.isfinite(headroom[i]) and gain > 0 and headroom[i] < 2 * gain:
            reasons.append(f"near its ceiling: {_fmt(float(headroom[i]))} {metric} left above its equal-share prediction")
        if problem.weights[i] != 1 and np.any(problem.weights != problem.weights[i]):  # a weight that sets it apart
            reasons.append(f"weight {problem.weights[i]:g} (default 1)")
        if (r := _price_reason(problem, i)) is not None:
            reasons.append(r)
        out.append(reasons or ["its curve is close to the median language's"])
    return out


def _maxmin_reasons(problem: AllocationProblem, curves: UtilityCurves, pairs: np.ndarray, uniform: np.ndarray,
                    bound: np.ndarray, level) -> list[list[str]]:
    metric, s = problem.metric, problem.sign
    above = "above" if problem.higher_is_better else "below"
    at_plan, at_floor, at_equal = curves.utility(pairs), curves.utility(problem.lo), curves.utility(uniform)
    improves = np.broadcast_to(curves.concave_increasing(), at_plan.shape)
    common = level is not None and np.isfinite(level)
    if not common:  # no common level (every improvable language capped, or a black-box solve): the worst
        level = float(np.min(at_plan))
    name = "the common level" if common else "the worst language's level"
    tol = 1e-9 * max(1.0, abs(float(level)))
    out = []
    for i in range(len(problem.languages)):
        reasons = []
        if problem.lo[i] == problem.hi[i]:
            reasons.append(f"its floor and cap are both {problem.hi[i]:,.0f} pairs")
        elif not improves[i]:
            reasons.append("its curve does not improve with data, so more pairs would not raise it; kept at its floor")
        elif bound[i] == FLOOR and at_floor[i] >= level - tol:
            where = (f"at its floor of {problem.lo[i]:,.0f} pairs" if problem.lo[i] > 0
                     else "with no pairs (its zero-shot score)")
            reasons.append(f"already {above} {name}: {where} it is predicted {s * at_floor[i]:.3g} {metric}, "
                           f"{above} the {s * level:.3g} the others are raised to, so it needs nothing more")
        elif bound[i] == CAP:
            reasons.append(f"capped at {problem.hi[i]:,.0f} pairs (max_pairs × max_epochs), where it is predicted "
                           f"{s * at_plan[i]:.3g} {metric}, short of {name} {s * level:.3g}")
        else:
            reasons.append(f"raised to {name} {s * level:.3g} {metric}: the fewest pairs predicted to reach it "
                           f"(an equal share is predicted {s * at_equal[i]:.3g})")
        out.append(reasons)
    return out


def _ceilings(curves: UtilityCurves) -> np.ndarray:
    """The utility each curve approaches with unlimited data (+inf for log curves)."""
    far = curves.utility(np.full(curves.shape, 1e15))
    return np.where(np.isfinite(far), far, np.inf)
