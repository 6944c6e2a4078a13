"""The verdict on a plan: is it worth it against a baseline, in plain words, with an interval.

For the metric objectives (sum, maxmin) every posterior draw of the curves scores the plan and the
baseline at the same budget; the difference (positive = the plan is better, whatever the metric's
direction) over the draws is the uncertainty of the *expected* gain. A final run adds its own noise
(`problem.noise`, per language): one paired final seed's difference is the expected gain plus the
difference of two runs' noise. From those:
- gain, and its interval at `level` (posterior draws);
- the interval of what one paired final seed would show (posterior draws plus run noise);
- P(the plan is better): the share of draws whose expected gain is above 0;
- the paired final seeds needed to see the predicted gain (one-sided, at `level`) through the run noise;
- a tie when the expected gain's interval holds 0, or when the gain is too small for `FEASIBLE_SEEDS`
  paired final seeds to show: "an equal split is as good at this budget" (the optimum of a sum over
  alike curves is flat, and a plan optimised on the draws is almost always a hair better in expectation).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from core.plan_files import FEASIBLE_SEEDS, MAX_SEEDS, Verdict  # noqa: F401  (re-exported: the verdict's record)
from planner.allocation.problem import AllocationProblem

def objective_draws(problem: AllocationProblem, objective: str, pairs: np.ndarray) -> np.ndarray:
    """(R,) the objective of `pairs` under each draw, in the better-is-higher direction."""
    predicted = problem.sign * problem.draws.utility(np.asarray(pairs, float)[None, :])  # (R, L) metric units
    if objective == "sum":
        return problem.sign * (predicted * problem.weights).sum(axis=1)
    if objective == "maxmin":
        return np.min(problem.sign * predicted, axis=1)
    raise ValueError(f"objective {objective!r} has no per-draw value")


def run_noise_sd(problem: AllocationProblem, objective: str, pairs: np.ndarray, other: np.ndarray) -> float:
    """Standard deviation of one paired final seed's difference that the runs' own noise adds (two runs,
    independent noise). For maxmin, the worst language's noise (a first-order stand-in)."""
    if problem.noise is None:
        return 0.0
    sd = np.nan_to_num(np.asarray(problem.noise, float), nan=0.0)
    if objective == "sum":
        return float(math.sqrt(2.0 * float(np.sum((problem.weights * sd) ** 2))))
    return float(math.sqrt(2.0) * sd.max())


def seeds_to_see(gain: float, noise_sd: float, level: float) -> int | None:
    """Paired seeds n at which a one-sided `level` test of the mean difference would show `gain`:
    z·noise/√n ≤ gain."""
    if not gain > 0 or not np.isfinite(gain):
        return None
    if noise_sd <= 0:
        return 1
    z = NormalDist().inv_cdf(level)
    n = (z * noise_sd / gain) ** 2
    return int(min(math.ceil(n), MAX_SEEDS + 1))


def verdict(problem: AllocationProblem, objective: str, plan_pairs: np.ndarray, baseline: str,
            baseline_pairs: np.ndarray, level: float = 0.9, seed: int = 0) -> Verdict | None:
    """The plan against one baseline at the same budget; None without posterior draws or for objectives
    scored otherwise (target: the cost is the answer; a user objective)."""
    if problem.draws is None or objective not in ("sum", "maxmin"):
        return None
    diff = objective_draws(problem, objective, plan_pairs) - objective_draws(problem, objective, baseline_pairs)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return None
    tail = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(diff, [tail, 1.0 - tail]))
    noise = run_noise_sd(problem, objective, plan_pairs, baseline_pairs)
    one_seed = diff + np.random.default_rng([seed, 7]).standard_normal(diff.shape) * noise
    s_low, s_high = (float(v) for v in np.quantile(one_seed, [tail, 1.0 - tail]))
    gain = float(diff.mean())
    seeds = None if low <= 0.0 <= high else seeds_to_see(abs(gain), noise, level)
    tie = seeds is None or seeds > FEASIBLE_SEEDS
    return Verdict(baseline, gain, low, high, s_low, s_high, float((diff > 0).mean()), seeds, level, tie)
