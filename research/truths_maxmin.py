"""The maxmin (fairness) objective on true curves: its value, and an optimum found independently.

The planner's `solve_maxmin` raises a common level t and inverts each *fitted* curve in closed form,
which assumes increasing curves. Judging its plans on the true curves of `research.truths` and
`research.truths_heldout` needs a reference that assumes nothing of the kind, so `solve_maxmin_any`:

- the value of an allocation is its worst language's true score (`World.value(pairs, "maxmin")`);
- for a level t, a language needs the *smallest* x in [floor, reach] whose true score is ≥ t. That x is
  looked up on a fine grid (first grid point at or above t), then bisected inside that one grid cell.
  No monotonicity is assumed: a dip-then-rise curve whose zero-shot score already meets t needs its
  floor, and one that must climb back out of its dip needs the x where it does;
- the set {x : score ≥ t} shrinks as t rises, so the cost of the smallest x's never falls with t, and
  bisection on t finds the highest affordable level.

The answer buys exactly that level; budget left over is not spent. Leximin would raise the others with
it, but that cannot change the minimum, which is all the maxmin value sees.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from research.truths import World

GRID_POINTS = 4000  # geometric grid per language: ~0.5% apart from 0.01 pairs to a million
_SMALLEST = 1e-2  # pairs: the grid's first point above a zero floor (curves finite at 0 get 0 itself)
_CELL_HALVINGS = 50  # a 0.5% cell halved 50 times is far below float resolution of x
_LEVEL_HALVINGS = 200  # stops earlier, at float resolution of the level


def scorer(world: World) -> Callable[[np.ndarray], np.ndarray]:
    """True scores for (..., L) pairs, as `World.predict` gives them, but for any leading shape."""
    if world.in_laws:
        bank = world.bank()  # built once: it is evaluated thousands of times below
        return bank.predict

    def score(x: np.ndarray) -> np.ndarray:
        # a plain power or log law among them is −inf at 0 pairs, as in `World.predict`
        with np.errstate(divide="ignore"):
            return np.stack([np.asarray(c.predict(x[..., i]), float) for i, c in enumerate(world.curves)], axis=-1)

    return score


def reach(world: World, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The most pairs each language can get: its cap, or its floor plus all the budget the floors leave."""
    spare = world.budget - float(world.tokens_per_pair @ lo)
    return np.minimum(hi, lo + spare / world.tokens_per_pair)


def candidate_grid(lo: np.ndarray, top: np.ndarray, points: int = GRID_POINTS) -> np.ndarray:
    """(points + 1, L): each language's floor, then geometric points up to `top` (never below the floor)."""
    start = np.maximum(lo, _SMALLEST)
    geo = np.exp(np.linspace(np.log(start), np.log(np.maximum(top, start)), points))
    return np.vstack([lo, np.clip(geo, lo, top)])


def smallest_reaching(score, grid: np.ndarray, table: np.ndarray, level: float) -> np.ndarray:
    """Per language, the smallest x on [grid[0], grid[-1]] with score(x) ≥ level (+inf if none).

    The first grid point at or above the level bounds it; the cell before that point holds the crossing
    (a curve that rose above the level and fell back inside one 0.5% cell would be missed: none does)."""
    ok = table >= level
    first = np.argmax(ok, axis=0)
    cols = np.arange(grid.shape[1])
    below, above = grid[np.maximum(first - 1, 0), cols], grid[first, cols]
    for _ in range(_CELL_HALVINGS):  # keep `above` on the side that meets the level
        mid = 0.5 * (below + above)
        meets = score(mid) >= level
        below, above = np.where(meets, below, mid), np.where(meets, mid, above)
    need = np.where(first == 0, grid[0], above)  # the floor itself meets the level
    return np.where(ok.any(axis=0), need, np.inf)


def solve_maxmin_any(world: World, lo: np.ndarray, hi: np.ndarray, points: int = GRID_POINTS) -> np.ndarray:
    """The allocation (pairs) that maximises the worst language's true score under the token budget,
    floors and caps, for curves of any shape (see the module docstring)."""
    if np.any(lo > hi) or float(world.tokens_per_pair @ lo) > world.budget * (1 + 1e-12) or world.budget <= 0:
        raise ValueError("no allocation meets these floors, caps and budget")
    score = scorer(world)
    grid = candidate_grid(lo, reach(world, lo, hi), points)
    table = score(grid)

    def cost(level: float) -> float:
        return float(world.tokens_per_pair @ smallest_reaching(score, grid, table, level))

    low = float(np.min(table[0]))  # every floor meets it: affordable
    if not np.isfinite(low):  # a plain power law at a zero floor is −inf (outside the bank's 1-pair clamp)
        low = float(np.min(table[np.isfinite(table)]))  # met by a sliver of a pair at most
        if cost(low) > world.budget * (1 + 1e-12):
            return lo.astype(float)  # not even a sliver is affordable: the floors are all there is
    high = float(np.min(table.max(axis=0)))  # the worst language's best within reach: nothing beyond
    if cost(high) <= world.budget * (1 + 1e-12):
        return smallest_reaching(score, grid, table, high)
    for _ in range(_LEVEL_HALVINGS):
        if high - low <= 4e-16 * max(abs(low), abs(high), 1.0):
            break
        mid = 0.5 * (low + high)
        if cost(mid) <= world.budget * (1 + 1e-12):
            low = mid
        else:
            high = mid
    return smallest_reaching(score, grid, table, low)
