"""Standard data-mixing recipes at the same budget, so every plan is shown beside what it replaces.

Each recipe fixes *budget shares* q_l (of tokens under a token budget, of pairs under a pair budget) and
buys q_l·B / c_l pairs of language l. All respect the caps (max_epochs × available pairs), because the
launcher never trains past them; they ignore the user's floors and weights, which are the plan's business.

- `uniform`: q_l = 1/L ("equal tokens"). Budget a capped language cannot use is left unused.
- `proportional`: q_l = p_l, the language's share of the available data (in budget units).
- `temperature-α`: q_l ∝ p_l^α (α = 1/T: 0.7, 0.5, 0.3 ≈ T = 1.4, 2, 3.33), the mT5/XLM-R recipe that
  up-samples small languages; what a cap cuts off is left unused, as in the recipe.
- `unimax`: equal shares, each capped at max_epochs × the language's data, and what a capped language
  cannot use is redistributed equally to the others, smallest first (Chung et al., 2023, UniMax).

`proportional` and `temperature-*` need every language's available data (max_pairs); without it they are
unavailable and say so.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planner.allocation.problem import AllocationProblem
from planner.allocation.solver import fill_budget, round_pairs

TEMPERATURE_ALPHAS = (0.3, 0.5, 0.7)
BASELINES: tuple[str, ...] = (
    "uniform",
    "proportional",
    *(f"temperature-{a}" for a in TEMPERATURE_ALPHAS),
    "unimax",
)


class BaselineUnavailable(ValueError):
    """The recipe needs information this problem does not have (the message says which)."""


def _data_shares(problem: AllocationProblem) -> np.ndarray:
    missing = [lang for lang, a in zip(problem.languages, problem.available) if not np.isfinite(a)]
    if missing:
        raise BaselineUnavailable(f"needs the available data (max_pairs) of every language; missing for {missing}")
    data = problem.available * problem.cost
    if data.sum() <= 0:
        raise BaselineUnavailable("every language has zero available data")
    return data / data.sum()


def baseline_shares(name: str, problem: AllocationProblem) -> np.ndarray:
    """The budget share each language gets under recipe `name` before caps."""
    n = len(problem.languages)
    if name in ("uniform", "unimax"):
        return np.full(n, 1.0 / n)
    if name == "proportional":
        return _data_shares(problem)
    if name.startswith("temperature-"):
        alpha = float(name.removeprefix("temperature-"))
        q = _data_shares(problem) ** alpha
        return q / q.sum()
    raise KeyError(f"unknown baseline {name!r}; known: {list(BASELINES)}")


def baseline_pairs(name: str, problem: AllocationProblem) -> np.ndarray:
    """Real-valued pairs per language (aligned with `problem.languages`) for recipe `name`."""
    q = baseline_shares(name, problem)
    if name == "unimax":
        return fill_budget(q, problem.cost, np.zeros_like(q), problem.hi, problem.budget)
    return np.minimum(q * problem.budget / problem.cost, problem.hi)


def baseline_allocation(name: str, problem: AllocationProblem) -> dict[str, int]:
    """Whole pairs per language for recipe `name`, rounded without exceeding the budget or any cap.

    Raises `KeyError` for an unknown name and `BaselineUnavailable` when the recipe needs data the problem
    lacks.
    """
    pairs = round_pairs(baseline_pairs(name, problem), problem.cost, np.zeros(len(problem.languages)), problem.hi, problem.budget)
    return {lang: int(p) for lang, p in zip(problem.languages, pairs)}


def recipe_budget_to_reach(name: str, problem: AllocationProblem, need: np.ndarray) -> float:
    """The smallest budget at which recipe `name` gives every language at least `need` pairs (NaN: no
    requirement); +inf if it never does. Used to score baselines under the target objective."""
    required = np.isfinite(need)
    if not required.any():
        return 0.0

    def enough(budget: float) -> bool:
        pairs = baseline_pairs(name, dataclasses.replace(problem, budget=budget))
        return bool(np.all(pairs[required] >= need[required] * (1 - 1e-12)))

    hi = problem.budget
    for _ in range(200):
        if enough(hi):
            break
        hi *= 2.0
    else:
        return float("inf")
    lo = 0.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi
