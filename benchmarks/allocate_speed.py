"""How fast is the exact solver?

1. One plan over 1,000 languages (mixed power/log curves, floors, caps, a token budget) — target < 0.1 s.
2. Bootstrap allocation intervals for 100 languages × 1,000 bootstrap fits: every fit re-solved, all in
   one vectorised pass — target < 10 s.
3. For reference: the risk-aware (`expected`) plan for 100 languages × 1,000 draws, whose per-language
   inverse has no closed form (nested monotone solves).

    python benchmarks/allocate_speed.py
"""

from __future__ import annotations

import time

import numpy as np

from fits.laws import Curve
from planner.allocation.curves import CurveBank, ExpectedCurves
from planner.allocation.problem import AllocationProblem
from planner.allocation.risk import bootstrap_intervals
from planner.allocation.solver import solve_sum


def curves(rng, n: int, draws: int | None = None) -> list[Curve]:
    """chrF-like curves (score 5–40 at 250 pairs), 80% power and 20% log. With `draws`, every parameter
    gets that many draws jittered by ~10% (a stand-in for a bootstrap)."""

    def jitter(value):
        return value if draws is None else value * np.exp(rng.normal(0, 0.1, draws))

    out = []
    for _ in range(n):
        y250 = rng.uniform(5, 40)
        if rng.random() < 0.8:
            ceiling, alpha = rng.uniform(45, 95), jitter(rng.uniform(0.1, 0.9))
            out.append(Curve("power", {"offset": jitter(ceiling), "scale": (ceiling - y250) * 250**alpha, "alpha": alpha}))
        else:
            slope = jitter(rng.uniform(1, 8))
            out.append(Curve("log", {"a": y250 - slope * np.log(250), "b": slope}))
    return out


def bounds(rng, n):
    cost = rng.uniform(10, 80, n)
    lo = np.where(rng.random(n) < 0.2, 200.0, 0.0)
    hi = np.where(rng.random(n) < 0.3, rng.uniform(2000, 20000, n), np.inf)
    budget = float(np.sum(cost * lo) + n * 3000 * cost.mean())
    return cost, lo, hi, budget


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)

    n = 1000
    bank = CurveBank.from_curves(curves(rng, n), np.ones(n))
    cost, lo, hi, budget = bounds(rng, n)
    weights = np.ones(n)
    sol = solve_sum(bank, cost, lo, hi, weights, budget)
    t = best_of(lambda: solve_sum(bank, cost, lo, hi, weights, budget), 20)
    print(f"exact solver, {n} languages: {t * 1e3:.1f} ms (target < 100 ms); budget spent to "
          f"{abs(sol.spent - budget) / budget:.1e} relative")

    n, r = 100, 1000
    point = CurveBank.from_curves(curves(rng, n), np.ones(n))
    draws = CurveBank.from_curves(curves(rng, n, draws=r), np.ones(n))
    cost, lo, hi, budget = bounds(rng, n)
    problem = AllocationProblem(
        languages=tuple(f"l{i}" for i in range(n)), metric="chrf", higher_is_better=True, fitted_x="pairs",
        unit="tokens", budget=budget, max_epochs=1.0, curves=point, draws=draws, cost=cost,
        tokens_per_pair=cost, lo=lo, hi=hi, available=np.full(n, np.nan), weights=np.ones(n),
        largest_run=np.full(n, np.nan),
    )
    plan = solve_sum(point, cost, lo, hi, problem.weights, budget).pairs
    t = best_of(lambda: bootstrap_intervals(problem, plan, "sum"), 3)
    print(f"bootstrap allocation intervals, {n} languages × {r} re-solves: {t:.2f} s (target < 10 s)")

    expected = ExpectedCurves.from_bank(draws)
    t = best_of(lambda: solve_sum(expected, cost, lo, hi, problem.weights, budget), 1)
    print(f"risk-aware (expected) plan, {n} languages × {r} draws: {t:.2f} s")


if __name__ == "__main__":
    main()
