"""Exact solvers for the separable allocation problem

    choose pairs x_l in [lo_l, hi_l]  with  Σ_l c_l·x_l ≤ B

for three objectives. Every function is vectorised: curves of shape (..., L) solve one problem per leading
index (the bootstrap re-solves run all draws in one pass), while bounds, costs and budget are shared.

- `solve_sum`: maximise Σ w_l·u_l(x_l). For increasing concave u_l the KKT conditions say every language
  strictly inside its bounds has the same marginal gain per unit of budget, w_l·u_l'(x_l)/c_l = λ; a
  language whose gain at its floor is already below λ stays at the floor, one whose gain at its cap is
  still above λ sits at the cap. x_l(λ) = clip((u_l')⁻¹(λ·c_l/w_l), lo_l, hi_l) is closed form and the
  spend Σ c_l·x_l(λ) falls monotonically in λ, so λ is found by bisection on log λ to float precision.
- `solve_maxmin`: leximin (water-filling) fairness. Raise a common level t; a language needs
  x_l(t) = u_l⁻¹(t) pairs, clipped to its bounds (a capped language stays behind, one whose floor already
  beats t stays ahead). The spend rises monotonically in t; bisection finds the highest affordable level.
  Every language not at a bound ends at the same level, and the budget is spent unless all are capped
  (water-filling keeps raising the uncapped languages, so no budget is left over for a second, sum-
  objective stage; when everything improvable is capped the rest is reported as unused).
- `solve_target`: the cheapest allocation reaching a per-language level: x_l = max(lo_l, u_l⁻¹(t_l));
  a language whose target is out of reach within its cap keeps its floor and is flagged.

Curves that are not increasing-concave (or have zero weight under `sum`) have no positive marginal gain
to trade, so every solver leaves them at their floor; the caller reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from planner.allocation.curves import MAX_PAIRS, UtilityCurves

FLOOR, CAP = "floor", "cap"

# Bisection stops when the bracket is this narrow relative to its position (≈ float64 resolution) or
# after this many halvings; both give the budget to ~1e-13 relative.
_REL_TOL = 4e-16
_MAX_HALVINGS = 200
# Bracket expansion step (natural-log units) and limit when the first guess does not bracket the root.
_EXPAND_STEP = 16.0
_MAX_EXPANSIONS = 64


@dataclass(frozen=True)
class Solution:
    """One solve (or a batch of them: leading axes match the curves)."""

    pairs: np.ndarray  # (..., L)
    spent: np.ndarray  # (...,) budget units used
    bound: np.ndarray  # (..., L) object array: "floor", "cap" or None
    lam: np.ndarray | None = None  # sum: marginal gain per budget unit of every interior language
    level: np.ndarray | None = None  # maxmin: the common utility level of interior languages
    reachable: np.ndarray | None = None  # target: whether each language's target is reachable


def spend(pairs: np.ndarray, cost: np.ndarray) -> np.ndarray:
    return np.sum(pairs * cost, axis=-1)


def _bounds_of(pairs: np.ndarray, raw: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Label each language by the bound its unclipped optimum `raw` crossed (None when interior)."""
    out = np.full(pairs.shape, None, dtype=object)
    out[np.broadcast_to((raw >= hi) & np.isfinite(hi), pairs.shape)] = CAP
    out[np.broadcast_to((raw <= lo) | (lo == hi), pairs.shape)] = FLOOR  # a pinned language counts as at its floor
    return out


def bisect_increasing(
    fn: Callable[[np.ndarray], np.ndarray], target: float, lo: np.ndarray, hi: np.ndarray, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised bisection for fn(z) = target with fn non-decreasing in z.

    `lo`/`hi` must bracket the root (fn(lo) ≤ target < fn(hi)); both stay bracketing, so the caller picks
    the side it needs (e.g. the feasible one). Stops at float resolution; `scale` is the size of z below
    which resolution is absolute rather than relative.
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    for _ in range(_MAX_HALVINGS):
        if np.all(hi - lo <= _REL_TOL * np.maximum(np.abs(lo) + np.abs(hi), scale)):
            break
        mid = 0.5 * (lo + hi)
        below = fn(mid) <= target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return lo, hi


def _expand_bracket(
    fn, target: float, lo: np.ndarray, hi: np.ndarray, step: float, done: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Widen [lo, hi] in steps until fn(lo) ≤ target < fn(hi) for every batch element not `done`."""
    for _ in range(_MAX_EXPANSIONS):
        bad_lo, bad_hi = (fn(lo) > target) & ~done, (fn(hi) <= target) & ~done
        if not (bad_lo.any() or bad_hi.any()):
            return lo, hi
        lo = np.where(bad_lo, lo - step, lo)
        hi = np.where(bad_hi, hi + step, hi)
    raise RuntimeError("could not bracket the allocation's multiplier; the curves are degenerate")


def solve_sum(
    curves: UtilityCurves,
    cost: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    weights: np.ndarray,
    budget: float,
) -> Solution:
    """Maximise Σ w_l·u_l(x_l) subject to the budget and bounds (see module docstring).

    Requires Σ c·lo ≤ budget (the caller checks and explains). When even every cap fits in the budget the
    caps are the answer, λ is 0 and the rest of the budget is left unused.
    """
    shape = curves.shape
    active = curves.concave_increasing() & (weights > 0)
    gain_rate = np.where(active, weights / cost, 1.0)  # w/c; filler for inactive languages
    if spend(lo, cost) >= budget * (1 - 1e-12):  # the floors take the whole budget: nothing is left to place
        floors = np.broadcast_to(lo, shape).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rates = np.where(active, curves.marginal(floors) * gain_rate, 0.0)
        # λ: the best marginal gain per unit of budget left unbought, a multiplier the KKT conditions accept
        return Solution(pairs=floors, spent=spend(floors, cost), bound=_bounds_of(floors, floors, lo, hi),
                        lam=np.max(rates, axis=-1))

    def pairs_at(log_lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam = np.exp(log_lam)[..., None]
        raw = curves.pairs_at_marginal(lam / gain_rate)
        raw = np.where(active, raw, lo)
        return np.clip(raw, lo, hi), raw

    def spent_at(log_lam: np.ndarray) -> np.ndarray:
        # Spend falls with λ; negate so `bisect_increasing` sees a rising function of log λ.
        return -spend(pairs_at(log_lam)[0], cost)

    all_caps = np.broadcast_to(np.where(active, hi, lo), shape)
    capped = spend(all_caps, cost) <= budget
    # First guess: the multiplier at which every active language gets an equal share of the budget.
    n_active = np.maximum(active.sum(axis=-1, keepdims=True), 1)
    even = np.clip(budget / (n_active * cost), lo, np.where(np.isfinite(hi), hi, np.inf))
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = np.log(curves.marginal(even) * gain_rate)
    guess = np.where(active & np.isfinite(guess), guess, np.nan)
    start = np.nanmedian(np.where(np.isnan(guess).all(axis=-1, keepdims=True), 0.0, guess), axis=-1)
    start = np.where(capped, 0.0, start)

    log_lo, log_hi = _expand_bracket(spent_at, -budget, start - 1.0, start + 1.0, _EXPAND_STEP, capped)
    log_lo, log_hi = bisect_increasing(spent_at, -budget, log_lo, log_hi)
    # The upper end of the bracket is on the feasible side (spend ≤ budget).
    pairs, raw = pairs_at(log_hi)
    pairs = np.where(capped[..., None], all_caps, pairs)
    raw = np.where(capped[..., None], np.inf, raw)
    raw = np.where(active, raw, lo)
    lam = np.where(capped, 0.0, np.exp(log_hi))
    return Solution(pairs=pairs, spent=spend(pairs, cost), bound=_bounds_of(pairs, raw, lo, hi), lam=lam)


def solve_maxmin(curves: UtilityCurves, cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float) -> Solution:
    """Leximin water-filling: the highest common utility level the budget affords (see module docstring).

    Requires Σ c·lo ≤ budget. When every improvable language can be capped within the budget they are,
    and the rest of the budget is left unused.
    """
    active = np.broadcast_to(curves.concave_increasing(), curves.shape)

    def pairs_at(level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw = np.where(active, curves.pairs_at_utility(level[..., None]), lo)
        return np.clip(raw, lo, hi), raw

    def spent_at(level: np.ndarray) -> np.ndarray:
        return spend(pairs_at(level)[0], cost)

    all_caps = np.where(active, hi, lo)
    capped = spend(all_caps, cost) <= budget
    # At the lowest floor level nobody needs more than its floor, so that spend is affordable.
    floor_level = np.where(active, curves.utility(lo), np.inf).min(axis=-1)
    floor_level = np.where(capped, 0.0, floor_level)
    # Above the highest cap level the spend is all caps (> budget). Log curves without caps have no
    # such level: step upwards from the floor level, doubling, until the spend exceeds the budget.
    top = np.where(active, curves.utility(hi), -np.inf).max(axis=-1)
    step = np.maximum(np.abs(floor_level), 1.0)
    top = np.where(np.isfinite(top) & ~capped, top, floor_level + step)

    def spent_or_done(level):
        return np.where(capped, 0.0, spent_at(level))

    for _ in range(_MAX_EXPANSIONS):
        short = spent_or_done(top) <= budget
        if not (short & ~capped).any():
            break
        top = np.where(short & ~capped, top + step, top)
        step = np.where(short, 2.0 * step, step)
    level, _ = bisect_increasing(spent_or_done, budget, floor_level, top, scale=float(np.max(step)))
    pairs, raw = pairs_at(level)
    pairs = np.where(capped[..., None], all_caps, pairs)
    raw = np.where(capped[..., None] & active, np.inf, raw)
    level = np.where(capped, np.nan, level)  # no common level: everyone improvable is capped
    return Solution(pairs=pairs, spent=spend(pairs, cost), bound=_bounds_of(pairs, raw, lo, hi), level=level)


def solve_target(
    curves: UtilityCurves, cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, target_utility: np.ndarray,
    need: np.ndarray | None = None,
) -> Solution:
    """The cheapest allocation reaching each language's target utility (NaN: no target, stays at the floor).

    A target that cannot be reached within the cap (above the curve's ceiling, beyond the cap, or a
    curve that does not improve) is flagged in `reachable` and the language keeps its floor: no amount
    the bounds allow meets it, so spending on it is not part of the cheapest plan. `need` (pairs per
    language) replaces the inversion of `curves` where the caller decides what reaching means (the
    confidence rule of `planner.allocation.targets`).
    """
    active = curves.concave_increasing()
    has_target = np.isfinite(target_utility)
    if need is None:
        need = curves.pairs_at_utility(np.where(has_target, target_utility, 0.0))
    need = np.where(active, need, np.where(curves.utility(lo) >= target_utility, lo, np.inf))
    need = np.where(has_target, need, lo)
    # Beyond MAX_PAIRS is beyond any plan (and the solvers' range): a closed-form need out there is none.
    reachable = np.isfinite(need) & (need <= np.minimum(hi, MAX_PAIRS))
    pairs = np.where(reachable, np.clip(need, lo, hi), lo)
    return Solution(
        pairs=pairs,
        spent=spend(pairs, cost),
        bound=_bounds_of(pairs, np.where(reachable, need, lo), lo, hi),
        reachable=np.where(has_target, reachable, True),
    )


def fill_budget(direction: np.ndarray, cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float) -> np.ndarray:
    """Spend the budget in proportion to `direction` (budget shares), respecting bounds.

    x_l(s) = clip(s·q_l/c_l, lo_l, hi_l) with s chosen so that Σ c_l·x_l = B: a language reaching its cap
    stops and the rest of the budget flows to the others in proportion to their shares (UniMax's
    redistribution), and any q > 0 maps to a feasible point, which is what the black-box search needs.
    """
    q = np.asarray(direction, dtype=float)
    q = q / q.sum(axis=-1, keepdims=True)
    all_caps = np.broadcast_to(hi, q.shape)
    capped = spend(all_caps, cost) <= budget

    def spent_at(log_s):
        return spend(np.clip(np.exp(log_s)[..., None] * q / cost, lo, hi), cost)

    start = np.full(q.shape[:-1], np.log(budget))
    log_lo, log_hi = _expand_bracket(spent_at, budget, start - 1.0, start + 1.0, _EXPAND_STEP, capped)
    log_lo, _ = bisect_increasing(spent_at, budget, log_lo, log_hi)
    x = np.clip(np.exp(log_lo)[..., None] * q / cost, lo, hi)
    return np.where(capped[..., None], all_caps, x)


def round_pairs(pairs: np.ndarray, cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, budget: float) -> np.ndarray:
    """Whole pairs by largest remainder, never exceeding the budget or a cap.

    Every language is rounded down (never below its whole-pair floor), then languages get one more pair
    in order of the fraction they lost, while the budget allows. Under a pair budget this is exactly
    Hamilton's largest-remainder method; under a token budget a language whose pair costs more than what
    is left is skipped. What remains unspent is less than the priciest pair.
    """
    pairs = np.asarray(pairs, dtype=float)
    base = np.clip(np.floor(pairs), lo, hi)
    left = budget * (1 + 1e-12) - spend(base, cost)
    for i in np.argsort(-(pairs - base), kind="stable"):
        if pairs[i] - base[i] <= 0:
            break
        if cost[i] <= left and base[i] + 1 <= hi[i]:
            base[i] += 1
            left -= cost[i]
    return base
