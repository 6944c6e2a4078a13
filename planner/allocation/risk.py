"""Uncertainty of a plan, from the bootstrap fits.

Two different questions, two intervals per language:

- *allocation interval* (`pairs_low`, `pairs_high`): re-solve the same objective on every bootstrap fit
  and take quantiles of each language's optimal pairs. Wide means the data do not pin down how much this
  language deserves. All draws are solved in one vectorised pass (the draws are a leading array axis).
- *prediction interval* (`predicted_low`, `predicted_high`): quantiles over the fits' draws of the metric
  each language reaches **with the plan's own allocation**, each draw plus one run's noise (the fit's
  noise level): what to expect from one final run, which scatters around its curve like any run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from planner.allocation.problem import AllocationProblem
from planner.allocation.solver import solve_maxmin, solve_sum
from planner.allocation.targets import draw_needs_within


@dataclass(frozen=True)
class Intervals:
    pairs_low: np.ndarray
    pairs_high: np.ndarray
    predicted_low: np.ndarray
    predicted_high: np.ndarray
    draws: int
    level: float

    @classmethod
    def unavailable(cls, n: int, level: float) -> "Intervals":
        nan = np.full(n, np.nan)
        return cls(nan, nan, nan, nan, 0, level)


def quantiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` interval over the draw axis (axis 0), NaNs ignored."""
    tail = (1.0 - level) / 2.0
    values = np.asarray(values, dtype=float)
    never = np.isposinf(values)  # a draw that never reaches a target needs +inf pairs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a language without usable draws: NaN, said elsewhere
        if not never.any():
            low, high = np.nanquantile(values, [tail, 1.0 - tail], axis=0)
            return low, high
        # numpy interpolates inf − inf to NaN: rank +inf above every finite value with a stand-in, and read
        # any quantile above the largest finite value (so interpolated towards the stand-in) as +inf.
        largest = np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=0)
        low, high = np.nanquantile(np.where(never, 1e300, values), [tail, 1.0 - tail], axis=0)
    return np.where(low > largest, np.inf, low), np.where(high > largest, np.inf, high)


def resolve_draws(problem: AllocationProblem, objective: str, target_utility: np.ndarray | None = None) -> np.ndarray:
    """The optimal pairs under each bootstrap fit, shape (R, L)."""
    draws = problem.draws
    args = (problem.cost, problem.lo, problem.hi)
    if objective == "sum":
        return solve_sum(draws, *args, problem.weights, problem.budget).pairs
    if objective == "maxmin":
        return solve_maxmin(draws, *args, problem.budget).pairs
    if objective == "target":
        return draw_needs_within(draws, target_utility, problem.lo, problem.hi)
    raise ValueError(f"unknown objective {objective!r}")


def predictive_draws(problem: AllocationProblem, pairs: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """(R, L) draws of one run's metric at `pairs`: each fit draw's prediction, with the law's extrapolation
    error beyond the largest run, plus the run noise. `pairs` is (L,), or (R, L) when each draw reads its
    curve elsewhere (the effective pairs of a τ draw), widened then at each draw's own pairs."""
    if problem.draws is None:
        return None
    pairs = np.asarray(pairs, float)
    predicted = problem.sign * problem.draws.utility(pairs[None, :] if pairs.ndim == 1 else pairs)
    predicted = np.where(np.isfinite(predicted), predicted, np.nan)
    if problem.extrapolation is not None:  # beyond the largest run: the law's own error
        for i, ext in enumerate(problem.extrapolation):
            if ext is None or not np.isfinite(problem.largest_run[i]):
                continue
            largest, lang = float(problem.largest_run[i]), problem.languages[i]
            if pairs.ndim == 1:
                predicted[:, i] = ext.widen(predicted[:, i], pairs[i], largest, lang)
            else:
                predicted[:, i] = ext.widen_each(predicted[:, i], pairs[:, i], largest, lang)
    if problem.noise is not None:
        noise = np.nan_to_num(problem.noise, nan=0.0)
        predicted = predicted + np.random.default_rng([seed, 1]).standard_normal(predicted.shape) * noise
    return predicted


def predictive_interval(problem: AllocationProblem, pairs: np.ndarray, level: float,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` interval of one run's metric at `pairs` (`predictive_draws`); NaN without draws."""
    draws = predictive_draws(problem, pairs, seed)
    if draws is None:
        return np.full(len(pairs), np.nan), np.full(len(pairs), np.nan)
    return quantiles(draws, level)


def bootstrap_intervals(
    problem: AllocationProblem,
    plan_pairs: np.ndarray,
    objective: str | None,
    level: float = 0.9,
    target_utility: np.ndarray | None = None,
    seed: int = 0,
) -> Intervals:
    """Allocation and prediction intervals at `level` (central). `objective=None` skips the re-solves
    (a user-defined objective has no exact solver), leaving the allocation interval NaN."""
    n = len(problem.languages)
    if problem.draws is None:
        return Intervals.unavailable(n, level)
    pred_low, pred_high = quantiles(predictive_draws(problem, plan_pairs, seed), level)
    if objective is None:
        pairs_low = pairs_high = np.full(n, np.nan)
    else:
        pairs_low, pairs_high = quantiles(resolve_draws(problem, objective, target_utility), level)
    return Intervals(pairs_low, pairs_high, pred_low, pred_high, problem.draws.shape[0], level)
