"""The target objective on true curves: targets to ask for, and what reaching them truly costs.

`objective: target` plans the cheapest allocation at which every language reaches its target score.
On a world of `research.truths` or `research.truths_heldout` the answer is known: a language truly needs
the smallest x whose true score is at least its target. `true_needs` finds it without the planner's
solver or any monotonicity (a forgetting dip may need its floor, or the x where the curve climbs back),
by the grid look-up and bisection of `research.truths_maxmin.smallest_reaching` with one level per
language. A plan is then judged by which targets its allocation truly reaches and what it spends
(`benchmarks/target_calibration.py`).

`draw_targets` asks for targets a user could ask for: each language's true score at an amount drawn
log-uniformly from the sweep's smallest size to a few times an equal share of the budget (at least
twice the largest size, never above the cap), so some targets lie inside the measured sizes and most
beyond them, where the plan has to extrapolate.
"""

from __future__ import annotations

import numpy as np

from research.truths import World
from research.truths_maxmin import candidate_grid, scorer, smallest_reaching

SEARCH_TOP = 1e9  # pairs: the most any target may need (far above every family's caps and budgets)


def target_amounts(world: World, rng: np.random.Generator) -> np.ndarray:
    """(L,) amounts (pairs) whose true scores become the targets."""
    _, hi = world.bounds()
    share = world.budget / world.n / world.tokens_per_pair
    top = np.minimum(np.maximum(3.0 * share, 2.0 * max(world.sizes)), hi)
    low = np.minimum(min(world.sizes), top)
    return np.exp(rng.uniform(np.log(low), np.log(top)))


def draw_targets(world: World, rng: np.random.Generator) -> np.ndarray:
    """(L,) target scores, each truly reachable within the language's cap."""
    return scorer(world)(target_amounts(world, rng))


def true_needs(world: World, targets: np.ndarray) -> np.ndarray:
    """(L,) the fewest pairs at which each language's true score reaches its target, within its floor and
    cap (+inf when no amount there does)."""
    lo, hi = world.bounds()
    score = scorer(world)
    grid = candidate_grid(lo, np.minimum(hi, SEARCH_TOP))
    return smallest_reaching(score, grid, score(grid), np.asarray(targets, dtype=float))
