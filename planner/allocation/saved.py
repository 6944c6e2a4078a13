"""The plan's headline in budget: how much of the budget reaches what an equal split reaches with all of it.

    f* = min { f ∈ (0, 1] : objective(plan at f·B) ≥ objective(uniform at B) },   budget saved = 1 − f*

Both sides are predicted on the same curves and the same risk (point fits or the posterior mean), and
the plan at f·B is re-solved, not scaled: a smaller budget has its own optimum. The planned objective
rises monotonically with the budget, so f* is found by bisection. The allocation at f*·B is kept, so a
truth test can train it and check the saving on real runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.allocation.problem import AllocationProblem
from planner.allocation.solver import round_pairs

_BISECTIONS = 80  # on ln λ: far below a pair


@dataclass(frozen=True)
class BudgetSaved:
    fraction: float  # f*: the share of the budget the plan needs to match uniform's objective
    budget: float  # f*·B, in the budget's unit
    pairs: np.ndarray  # the plan at f*·B (whole pairs)
    uniform_objective: float  # uniform's predicted objective at the full budget

    @property
    def saved(self) -> float:
        return 1.0 - self.fraction


def budget_saved(problem: AllocationProblem, curves, uniform_pairs: np.ndarray, lam: float | None) -> BudgetSaved | None:
    """f* for the weighted-sum objective (None when the plan cannot reach uniform's objective even with the
    whole budget, e.g. caps and floors that uniform escapes, or when nothing is left to trade).

    Along the optimal path the plan is a closed-form function of the multiplier λ (each language at
    (u')⁻¹(λ·c/w), clipped to its bounds: `solver.solve_sum`), and both the spend and the objective fall
    as λ rises. So f* is found by bisecting ln λ for "objective = uniform's" — one inversion per step
    instead of one full solve — starting from the full budget's λ."""
    weights, cost = problem.weights, problem.cost
    active = curves.concave_increasing() & (weights > 0)
    rate = np.where(active, weights / cost, 1.0)

    def plan_at(log_lam: float) -> np.ndarray:
        raw = np.where(active, curves.pairs_at_marginal(np.exp(log_lam) / rate), problem.lo)
        return np.clip(raw, problem.lo, problem.hi)

    def objective(pairs) -> float:
        return float(np.sum(weights * curves.utility(pairs)))

    target = objective(uniform_pairs)
    if lam is None or not lam > 0 or objective(plan_at(np.log(lam))) < target:
        return None
    lo = hi = np.log(lam)  # objective(plan_at(lo)) ≥ target; find hi with objective < target
    for _ in range(60):
        hi += 2.0
        if objective(plan_at(hi)) < target:
            break
    else:
        return None  # even the floors reach uniform's objective: nothing to save
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if objective(plan_at(mid)) >= target:
            lo = mid
        else:
            hi = mid
    exact = plan_at(lo)
    spent = float(np.sum(cost * exact))
    pairs = round_pairs(exact, cost, problem.lo, problem.hi, spent)
    sign = 1.0 if problem.higher_is_better else -1.0
    return BudgetSaved(spent / problem.budget, spent, pairs, sign * target)
