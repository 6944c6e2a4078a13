"""Why each language gets more or less than an equal share: one line per language, from the curves.

The counterfactual is the `uniform` baseline (equal tokens under a token budget, equal pairs under a pair
budget). At that point doubling any language's data costs the same budget, so comparing what doubling
buys is comparing what the solver compares. The line names, in order, whatever applies:

- a bound: held at its floor, capped at its available data;
- the curve: steeper / flatter than the median language (metric gained by doubling its equal share);
- near its ceiling: what is left above the equal-share prediction is under twice that doubling gain;
- the price: cheaper / pricier tokens per pair than the median (under a token budget, a cheap language's
  equal share buys more pairs, so its curve is read further along).
"""

from __future__ import annotations

import numpy as np

from planner.allocation.curves import UtilityCurves
from planner.allocation.problem import AllocationProblem
from planner.allocation.solver import CAP, FLOOR


def _fmt(v: float) -> str:
    return f"{v:.2g}" if abs(v) < 10 else f"{v:,.0f}"


def explain(problem: AllocationProblem, curves: UtilityCurves, pairs: np.ndarray, uniform: np.ndarray,
            bound: np.ndarray) -> list[str]:
    """One sentence per language (aligned with `problem.languages`)."""
    metric = problem.metric
    doubled = curves.utility(2 * np.maximum(uniform, 1e-9)) - curves.utility(uniform)  # utility units
    median_gain = float(np.median(doubled))
    ceiling = _ceilings(curves)
    headroom = ceiling - curves.utility(uniform)
    price = problem.cost if problem.unit == "tokens" else problem.tokens_per_pair
    median_price = float(np.nanmedian(price)) if np.isfinite(price).any() else np.nan
    spent_share = pairs * problem.cost
    equal_share = uniform * problem.cost
    lines = []
    for i, lang in enumerate(problem.languages):
        if equal_share[i] > 0:
            ratio = spent_share[i] / equal_share[i]
            head = "the same as an equal share" if abs(ratio - 1) < 0.05 else f"{ratio:.2f}× an equal share"
        else:  # every language capped at nothing: an equal share is 0 too, and no ratio means anything
            head = "the same as an equal share (none)" if spent_share[i] == 0 else "more than an equal share (none)"
        reasons = []
        if problem.lo[i] == problem.hi[i]:
            reasons.append(f"its floor and cap are both {problem.hi[i]:,.0f} pairs")
        elif bound[i] == FLOOR and problem.lo[i] > 0:
            reasons.append(f"held at its floor of {problem.lo[i]:,.0f} pairs")
        elif bound[i] == CAP:
            reasons.append(f"capped at its available data ({problem.hi[i]:,.0f} pairs)")
        gain = float(doubled[i])
        if median_gain > 0 and abs(gain / median_gain - 1) >= 0.15:
            kind = "steeper" if gain > median_gain else "flatter"
            reasons.append(f"{kind} curve: doubling its equal share buys {_fmt(gain)} {metric} (median language "
                           f"{_fmt(median_gain)})")
        if np.isfinite(headroom[i]) and gain > 0 and headroom[i] < 2 * gain:
            reasons.append(f"near its ceiling: {_fmt(float(headroom[i]))} {metric} left above its equal-share prediction")
        if np.isfinite(median_price) and np.isfinite(price[i]) and median_price > 0:
            rel = price[i] / median_price
            if rel <= 0.85 or rel >= 1.15:
                word = "cheaper" if rel < 1 else "pricier"
                reasons.append(f"{word} tokens ({price[i]:.0f} per pair, median {median_price:.0f})")
        lines.append(f"{head}: " + ("; ".join(reasons) if reasons else "its curve is close to the median language's"))
    return lines


def _ceilings(curves: UtilityCurves) -> np.ndarray:
    """The utility each curve approaches with unlimited data (+inf for log curves)."""
    far = curves.utility(np.full(curves.shape, 1e15))
    return np.where(np.isfinite(far), far, np.inf)
