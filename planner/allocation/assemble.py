"""The records `allocate` (plan.py) passes from one step to the next, and its last step: the per-language
rows, their why-lines and warnings, gathered into one `AllocationResult`.

Every function here is pure: it reads the records and returns new values, so each step can be read (and
tested) alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from fits import FitSet
from planner.allocation.baselines import baseline_pairs
from planner.allocation.curves import UtilityCurves
from planner.allocation.explain import explain
from planner.allocation.notes import plan_notes, probe_notes, reach_notes, starved_notes
from planner.allocation.problem import IN_MIXTURE, AllocationProblem
from planner.allocation.result import AllocationResult, BaselineResult, LanguagePlan
from planner.allocation.risk import Intervals, predictive_interval
from planner.allocation.saved import BudgetSaved
from planner.allocation.solver import CAP, FLOOR, Solution
from planner.allocation.targets import reach_probability, target_why


@dataclass(frozen=True)
class PlanSetup:
    """The checked question: what to plan, under which rules, with which curves."""

    problem: AllocationProblem  # with the plan's measured floors, when its objective takes them
    baseline_problem: AllocationProblem  # without them: baselines are recipes, the measured floors are the plan's
    objective: str  # "sum" | "maxmin" | "target" | "custom" (a user objective)
    risk: str  # "mean" | "expected", after the fall-back to the point fits when there are no draws
    solver: str
    target: np.ndarray  # per language, in metric units (NaN: no target)
    target_utility: np.ndarray  # the same in utility units (higher is better)
    confidence: float  # the share of the draws that must reach a target
    curves: UtilityCurves  # what the plan optimises (point fits or the mean over the draws)
    user_score: Callable[[np.ndarray], float] | None  # a user objective's score of an allocation
    user_spec: str  # how the user named that objective ("" without one)
    interval: float
    seed: int


@dataclass(frozen=True)
class SolvedPlan:
    """The solver's answer and the whole pairs the launcher will train."""

    solution: Solution | None  # the exact solver's (None after a black-box search)
    target_need: np.ndarray | None  # target objective: pairs each language needs at the confidence
    exact: np.ndarray  # the real-valued optimum
    bound: np.ndarray  # per language "floor", "cap" or None at the optimum
    pairs: np.ndarray  # whole pairs
    predicted: np.ndarray  # the plan's criterion's prediction at `pairs`
    spent: float  # what `pairs` cost, in the budget's unit


@dataclass(frozen=True)
class Comparison:
    """The plan scored as every baseline is, against them."""

    label: str
    higher_is_better: bool
    value: float  # the plan's objective value
    baselines: dict[str, BaselineResult]
    unavailable: dict[str, str]  # baseline -> why it could not be built
    best: str | None
    gain: float | None  # > 0: the plan beats every baseline
    verdicts: dict[str, dict]  # against uniform and the best baseline


def bounds_from_pairs(pairs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per language "cap", "floor" or None, read from the amounts (for plans no exact solver marked)."""
    tol = 1e-6 * np.maximum(1.0, pairs)
    out = np.full(pairs.shape, None, dtype=object)
    out[pairs >= hi - tol] = CAP
    out[pairs <= lo + tol] = FLOOR
    return out


def why_lines(setup: PlanSetup, plan: SolvedPlan) -> list[str]:
    """Why each language gets more or less than an equal share (planner.allocation.explain, targets)."""
    problem, pairs, solution = setup.problem, plan.pairs, plan.solution
    if setup.objective == "target":  # the budget is a ceiling: compare with an equal split of what the plan spends
        spent = plan.spent
        uniform = baseline_pairs("uniform", replace(setup.baseline_problem, budget=spent)) if spent > 0 else 0 * pairs
        return target_why(problem, setup.curves, pairs, uniform, setup.target, solution.reachable, setup.confidence,
                          plan.target_need)
    level_now = None if solution is None else solution.level
    return explain(problem, setup.curves, pairs, baseline_pairs("uniform", setup.baseline_problem),
                   bounds_from_pairs(pairs, problem.lo, problem.hi), setup.objective, level_now)


def language_rows(setup: PlanSetup, plan: SolvedPlan, intervals: Intervals) -> tuple[LanguagePlan, ...]:
    """One `LanguagePlan` per language: amounts, shares, predictions with intervals, cost and purchase."""
    problem, pairs, target = setup.problem, plan.pairs, setup.target
    weight_scale = problem.weights if setup.objective == "sum" else np.ones_like(problem.weights)
    marginal = weight_scale * setup.curves.marginal(plan.exact) / problem.cost  # at the exact optimum (KKT)
    share = pairs * problem.cost / plan.spent if plan.spent > 0 else np.zeros_like(pairs)
    tokens, to_buy = problem.tokens(pairs), problem.to_buy(pairs)
    to_buy_cost, prices = problem.money(to_buy), problem.money(np.ones(len(pairs)))
    p_reach = (reach_probability(setup.curves, pairs, setup.target_utility) if setup.objective == "target"
               else np.full(len(pairs), np.nan))
    why = why_lines(setup, plan)
    return tuple(
        LanguagePlan(
            language=lang,
            pairs=float(pairs[i]),
            tokens=float(tokens[i]),
            share=float(share[i]),
            predicted=float(plan.predicted[i]),
            predicted_low=float(intervals.predicted_low[i]),
            predicted_high=float(intervals.predicted_high[i]),
            pairs_exact=float(plan.exact[i]),
            pairs_low=float(intervals.pairs_low[i]),
            pairs_high=float(intervals.pairs_high[i]),
            marginal_gain=float(marginal[i]),
            at_bound=plan.bound[i],
            weight=float(problem.weights[i]),
            target=None if not np.isfinite(target[i]) else float(target[i]),
            why=why[i],
            p_reach=float(p_reach[i]),
            cost=float(pairs[i] * problem.cost[i]),
            to_buy=float(to_buy[i]),
            to_buy_cost=float(to_buy_cost[i]),
            price_per_pair=float(prices[i]),
        )
        for i, lang in enumerate(problem.languages)
    )


def plan_warnings(fitset: FitSet, setup: PlanSetup, plan: SolvedPlan, transfer: dict | None) -> tuple[str, ...]:
    """What the user should know about the plan, its fits and its languages (planner.allocation.notes)."""
    problem, pairs = setup.problem, plan.pairs
    unused = float(problem.budget - plan.spent)
    return tuple(plan_notes(problem, setup.objective, pairs, plan.solution, setup.target, unused, setup.curves,
                            setup.confidence, plan.target_need)
                 + starved_notes(fitset, problem, pairs, transfer)
                 + reach_notes(fitset, problem, pairs)
                 + probe_notes(fitset, problem, _with_transfer(problem, pairs, transfer)))


def _with_transfer(problem, pairs: np.ndarray, transfer: dict | None) -> dict[str, float] | None:
    """The pairs of the plan made with transfer: this plan on in-mixture curves, else the transfer-aware one."""
    if problem.model == IN_MIXTURE:
        return dict(zip(problem.languages, map(float, pairs)))
    return None if transfer is None else transfer["pairs"]


def assemble_result(fitset: FitSet, setup: PlanSetup, plan: SolvedPlan, comparison: Comparison, intervals: Intervals,
                    saved: BudgetSaved | None, transfer: dict | None) -> AllocationResult:
    """Everything the steps found, as the `AllocationResult` that `write_allocation` writes."""
    problem, solution, pairs = setup.problem, plan.solution, plan.pairs
    to_buy = problem.to_buy(pairs)
    return AllocationResult(
        metric=problem.metric, higher_is_better=problem.higher_is_better,
        objective=setup.objective, objective_label=comparison.label, objective_higher_is_better=comparison.higher_is_better,
        risk=setup.risk, solver=setup.solver, unit=problem.unit, budget=problem.budget,
        spent=plan.spent, unused_budget=float(problem.budget - plan.spent),
        lam=None if solution is None or solution.lam is None else float(solution.lam),
        level=_common_level(problem, solution),
        objective_value=comparison.value,
        languages=language_rows(setup, plan, intervals),
        baselines=comparison.baselines, unavailable_baselines=comparison.unavailable,
        best_baseline=comparison.best, gain_over_best_baseline=comparison.gain,
        interval_level=setup.interval, bootstrap_draws=intervals.draws, seed=setup.seed,
        warnings=plan_warnings(fitset, setup, plan, transfer),
        budget_saved=None if saved is None else saved.saved,
        reduced_budget=None if saved is None else saved.budget,
        reduced_pairs=None if saved is None else dict(zip(problem.languages, map(float, saved.pairs))),
        **reduced_predictions(setup, saved),
        transfer=transfer,
        curves=problem.model,
        target_confidence=setup.confidence if setup.objective == "target" else None,
        verdicts=comparison.verdicts,
        currency=problem.currency,
        to_buy=_total(to_buy), to_buy_cost=_total(problem.money(to_buy)),
    )


def reduced_predictions(setup: PlanSetup, saved: BudgetSaved | None) -> dict[str, dict[str, float] | None]:
    """The reduced-budget plan's per-language prediction and predictive interval, on the plan's own model
    (in-mixture curves when the plan was made on them), risk, level and draws: the baselines' rule
    (`plan._evaluate_baselines`, `risk.predictive_interval`), so the launch judges that mixture against the curves that chose it."""
    keys = ("reduced_predicted", "reduced_predicted_low", "reduced_predicted_high")
    if saved is None:
        return dict.fromkeys(keys)
    problem, pairs = setup.problem, saved.pairs
    low, high = predictive_interval(problem, pairs, setup.interval, setup.seed)
    values = (problem.predict(pairs, setup.risk), low, high)
    return {key: dict(zip(problem.languages, map(float, v))) for key, v in zip(keys, values)}


def _common_level(problem: AllocationProblem, solution: Solution | None) -> float | None:
    """maxmin: the level every language not at a bound shares, in metric units (None elsewhere)."""
    if solution is not None and solution.level is not None and np.isfinite(solution.level):
        return float(problem.sign * solution.level)
    return None


def _total(values: np.ndarray) -> float | None:
    """The sum over the languages where it is known; None where it is known for none."""
    known = np.isfinite(values)
    return float(values[known].sum()) if known.any() else None
