"""When a plan may go below a language's smallest proxy run (`budget.smallest_run_floor`).

Below its smallest run a language's curve was never measured; the rule and its measured reasons are in
`floored_objective`, the floors themselves in `measured_floors`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from fits import FitSet
from core.errors import UserError
from planner.allocation.problem import AllocationProblem, floors_where_measured, least_measured

SmallestRunFloor = Literal["auto", "always", "never"]


def floored_objective(rule: SmallestRunFloor, objective: str, objective_fn: str | None) -> bool:
    """Whether the plan is floored at each language's smallest run (`measured_floors`).

    auto: under maxmin and a user objective, not under sum or target. Measured on the truth families
    (`benchmarks/plan_regret.py`): maxmin plans below the smallest run lost to uniform by 22× on one
    family and floors fixed it, while under sum the floors never helped by more than 0.004 regret and on
    small budgets (300–800 pairs per language) tripled it (0.026 → 0.083): there the sum optimum does
    give some languages less than the smallest run, and the power law's extrapolation below it is sound
    enough to find that. A user objective's shape is unknown, so it gets the cautious choice.
    """
    if rule not in ("auto", "always", "never"):
        raise UserError(f"Unknown smallest-run floor rule {rule!r}.", "Use auto, always or never.")
    if rule == "never" or (objective == "target" and not objective_fn):
        return False
    return rule == "always" or objective == "maxmin" or bool(objective_fn)


def measured_floors(problem: AllocationProblem, fitset: FitSet, weighted: bool) -> AllocationProblem:
    """`problem` with every language floored at the smallest size its curve was measured at.

    Below its smallest run a curve is an extrapolation towards zero data, where the plain power law falls
    to −∞ and the draws spread widest. The sum objective rarely goes there (the marginal gain is steepest
    there), but maxmin does: a language whose fit says it is already high gets the few pairs that keep it
    at the common level. On the truth families (`benchmarks/plan_regret.py --objective maxmin`) such plans
    put languages at 1–45 pairs after runs at 250 or more, and lost to an equal split by 22×; floored, the
    same plans beat it. The transfer-aware plan keeps its own floors (`design_floors`), and the target
    objective none: it spends only what the targets need. Under a weighted sum a language of weight 0
    gets none either: the user said it does not matter.
    """
    least = least_measured(fitset, problem.languages)
    if weighted:
        least = [m if w > 0 else 0.0 for m, w in zip(least, problem.weights)]
    lo = floors_where_measured(problem, least)
    if lo is None:
        note = ("the budget cannot give every language as much data as its smallest run; the plan may go "
                "below where the curves were measured")
        return replace(problem, notes=problem.notes + (note,))
    raised = lo > problem.lo
    return replace(problem, lo=lo, measured_floor=raised) if raised.any() else problem
