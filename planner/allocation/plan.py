"""`allocate`: one call from a fit set to a plan, its uncertainty and its baselines.

Rounding: the solvers work on real numbers of pairs; the plan is rounded here to whole pairs by largest
remainder within the budget and caps (`solver.round_pairs`; targets round up so they stay reached), and
every prediction, share and objective value is computed for the rounded amounts, i.e. for what the
launcher will train. The real optimum is kept as `pairs_exact`, and the marginal gains are reported there
(where the KKT conditions hold exactly).

Objective values (plan and every baseline are scored the same way):
- `sum`: Σ_l w_l·ŷ_l in metric units (higher is better for a score, lower for a loss);
- `maxmin`: the worst language's ŷ_l;
- `target`: the budget needed to reach every reachable target (lower is better): the plan's own cost
  (floors included), and for a baseline the budget at which its recipe first reaches the same targets;
- a user objective: whatever it returns (higher is better).
ŷ is the point-fit prediction for `risk="mean"` and the mean over the bootstrap fits for
`risk="expected"`: the criterion the plan optimised. `gain_over_best_baseline` is positive when the plan
beats every baseline on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal, Mapping

import numpy as np

from fits import FitSet
from planner.allocation.assemble import Comparison, PlanSetup, SolvedPlan, assemble_result, bounds_from_pairs
from planner.allocation.baselines import BASELINES, BaselineUnavailable, baseline_pairs, recipe_budget_to_reach
from planner.allocation.blackbox import load_objective, search_allocation, wrap_user_objective
from planner.allocation.saved import BudgetSaved, budget_saved
from planner.allocation.transfer import curve_fits, in_mixture_problem, transfer_plan
from planner.allocation.problem import (
    IN_MIXTURE,
    AllocationProblem,
    LanguageLimits,
    Risk,
    Unit,
    build_problem,
)
from planner.allocation.floors import SmallestRunFloor, floored_objective, measured_floors
from planner.allocation.risk import bootstrap_intervals, predictive_interval
from planner.allocation.solver import Solution, round_pairs, solve_maxmin, solve_sum, solve_target, spend
from planner.allocation.targets import (
    DEFAULT_CONFIDENCE,
    check_confidence,
    target_array,
    target_needs,
)
from core.plan_files import CONTRACT_COLUMNS  # noqa: F401  (re-exported)
from planner.allocation.result import (  # noqa: F401  (re-exported: the plan's data types)
    EXTRA_COLUMNS, AllocationResult, BaselineResult, LanguagePlan,
)
from planner.allocation.verdict import verdict
from core.errors import UserError
from core.strict import check_seed_flag
from core.units import unit_name

Objective = Literal["sum", "maxmin", "target"]
OBJECTIVES = ("sum", "maxmin", "target")
RISKS = ("mean", "expected")
SOLVERS = ("exact", "optuna")


def objective_value(objective: str, predicted: np.ndarray, problem: AllocationProblem) -> float:
    """The figure of merit of the metric objectives, in metric units: Σ w·ŷ (`sum`) or the worst ŷ (`maxmin`)."""
    if objective == "sum":
        return float(np.sum(problem.weights * predicted))
    if objective == "maxmin":
        return float(problem.sign * np.min(problem.sign * predicted))
    raise ValueError(f"objective {objective!r} is not scored by the predictions alone")


@dataclass(frozen=True)
class _Scoring:
    """How the plan and the baselines are scored for one objective."""

    label: str
    higher_is_better: bool
    of_plan: Callable[[np.ndarray, np.ndarray], float]  # (pairs, predicted) -> value
    of_baseline: Callable[[str, np.ndarray, np.ndarray], float]  # (name, pairs, predicted) -> value


def _scoring(problem: AllocationProblem, objective: str, need: np.ndarray, user_score=None, user_spec: str = "") -> _Scoring:
    if objective == "custom":
        label = f"user objective {user_spec}"
        return _Scoring(label, True, lambda p, _: user_score(p), lambda _n, p, _: user_score(p))
    if objective == "target":
        return _Scoring(
            f"{unit_name(problem.unit, problem.currency)} needed to reach the {problem.metric} targets",
            False,
            lambda p, _: float(spend(p, problem.cost)),
            lambda name, _p, _: recipe_budget_to_reach(name, problem, need),
        )
    label = {"sum": f"weighted sum of predicted {problem.metric}", "maxmin": f"worst language's predicted {problem.metric}"}
    value = lambda _p, pred: objective_value(objective, pred, problem)
    return _Scoring(label[objective], problem.higher_is_better, value, lambda _n, p, pred: value(p, pred))


def _check_choices(objective: str, risk: str, solver: str, targets: np.ndarray, objective_fn: str | None) -> None:
    for name, value, allowed in (("objective", objective, OBJECTIVES), ("risk", risk, RISKS), ("solver", solver, SOLVERS)):
        if value not in allowed:
            raise UserError(f"Unknown {name} {value!r}.", f"Use one of {list(allowed)}.")
    if objective == "target" and not np.isfinite(targets).any():
        raise UserError("--objective target needs a target score for at least one language.", "Pass --targets TARGETS_CSV with columns language,target.")
    if objective_fn and solver != "optuna":
        raise UserError("A user objective (--objective-fn) has no exact solver.", "Add --solver optuna.")
    if solver == "optuna" and objective == "target" and not objective_fn:
        raise UserError(
            "The target objective is solved exactly (the cheapest allocation reaching each target).",
            "Drop --solver optuna, or pass your own objective with --objective-fn.",
        )


def _check_maxmin_affordable(problem: AllocationProblem, objective: str, objective_fn: str | None) -> None:
    dear = [lang for lang, c in zip(problem.languages, problem.cost) if c > problem.budget]
    if objective == "maxmin" and dear and not objective_fn:  # the worst language could never be raised
        raise UserError(
            f"--objective maxmin raises the worst language, but the budget of {problem.budget:g} {unit_name(problem.unit, problem.currency)} "
            f"cannot buy one pair of {', '.join(dear)}.",
            "Raise --budget, or use --objective sum (which gives such a language nothing).",
        )


def _solve_exact(problem: AllocationProblem, objective: str, curves, target_utility: np.ndarray,
                 need: np.ndarray | None = None) -> Solution:
    args = (curves, problem.cost, problem.lo, problem.hi)
    if objective == "sum":
        return solve_sum(*args, problem.weights, problem.budget)
    if objective == "maxmin":
        return solve_maxmin(*args, problem.budget)
    sol = solve_target(*args, target_utility, need)
    # Judged in whole pairs, rounded up as the launcher will train them: a budget that pays the exact
    # need but not its rounding would round a language below its target (and below its confidence).
    whole = _whole_pairs_up(sol.pairs, problem.hi)
    cost = float(spend(whole, problem.cost))
    if cost > problem.budget * (1 + 1e-12):
        parts = ", ".join(f"{lang} {p:,.0f} pairs" for lang, p in zip(problem.languages, whole) if p > 0)
        raise UserError(
            f"Reaching the targets costs {problem.describe_amount(cost)} ({parts}), more than the budget of "
            f"{problem.budget:,.{0 if problem.budget == round(problem.budget) else 2}f} {unit_name(problem.unit, problem.currency)}.",
            f"Raise --budget to at least {math.ceil(cost):,} or lower the targets.",
        )
    return sol


def _builtin_score(problem: AllocationProblem, objective: str, curves) -> Callable[[np.ndarray], float]:
    """The black-box score of a built-in objective, in utility terms (higher is better)."""
    if objective == "sum":
        return lambda pairs: float(np.sum(problem.weights * curves.utility(pairs)))
    return lambda pairs: float(np.min(curves.utility(pairs)))


def _whole_pairs_up(pairs: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.minimum(np.ceil(pairs - 1e-9), hi) + 0.0  # + 0.0 turns -0 into 0


def _round(problem: AllocationProblem, pairs: np.ndarray, objective: str) -> np.ndarray:
    if objective == "target":  # up, so that reached targets stay reached (`_solve_exact` checked the budget)
        return _whole_pairs_up(pairs, problem.hi)
    return round_pairs(pairs, problem.cost, problem.lo, problem.hi, problem.budget)


def _evaluate_baselines(problem: AllocationProblem, risk: Risk, scoring: _Scoring, level: float, seed: int):
    """Every baseline's pairs, predictions and predictive intervals, by the rule of the plan's own."""
    results, unavailable = {}, {}
    for name in BASELINES:
        try:
            exact = baseline_pairs(name, problem)
        except BaselineUnavailable as why:
            unavailable[name] = str(why)
            continue
        pairs = round_pairs(exact, problem.cost, np.zeros_like(exact), problem.hi, problem.budget)
        predicted = problem.predict(pairs, risk)
        low, high = predictive_interval(problem, pairs, level, seed)
        results[name] = BaselineResult(
            name=name,
            pairs=dict(zip(problem.languages, map(float, pairs))),
            tokens=dict(zip(problem.languages, map(float, problem.tokens(pairs)))),
            predicted=dict(zip(problem.languages, map(float, predicted))),
            objective_value=scoring.of_baseline(name, pairs, predicted),
            unused_budget=float(problem.budget - spend(pairs, problem.cost)),
            predicted_low=dict(zip(problem.languages, map(float, low))),
            predicted_high=dict(zip(problem.languages, map(float, high))),
        )
    return results, unavailable


def allocate(
    fitset: FitSet,
    budget: float,
    unit: Unit = "tokens",
    limits: Mapping[str, LanguageLimits] | None = None,
    max_epochs: float = 1.0,
    objective: Objective = "sum",
    targets: Mapping[str, float] | None = None,
    risk: Risk = "expected",
    solver: Literal["exact", "optuna"] = "exact",
    seed: int = 0,
    objective_fn: str | None = None,
    trials: int = 300,
    interval: float = 0.9,
    smallest_run_floor: SmallestRunFloor = "auto",
    target_confidence: float = DEFAULT_CONFIDENCE,
    currency: str | None = None,
    price_key: str = "the limits table's price_per_pair column",
    inside_mixture: bool = True,
) -> AllocationResult:
    """Plan the budget across the fitted languages and compare with every baseline.

    `fitset` is a `fits.FitSet`; `limits` maps language → `LanguageLimits`; `targets` maps language →
    target metric (for `objective="target"`); `objective_fn` names a user objective for the optuna solver
    (see `blackbox`; it replaces `objective`). `smallest_run_floor` says when the plan may give a language
    less than its smallest run (`floored_objective`). `target_confidence`: the share of the fits' draws
    that must reach a target (`planner.allocation.targets`). `unit` money prices each pair at its language's
`price_per_pair` (`currency` labels it; `price_key` names where a missing price is given).
    `inside_mixture`: the plan is trained as one mixture, so when the fits have an in-mixture curve for every
    language (mixture proxy runs) it is planned and predicted on those (`transfer.in_mixture_problem`); False
    for a plan whose languages are trained one at a time (the target check). Raises `UserError` for anything
    the user can fix.
    """
    # The steps, in order: check and build the problem, fix the question, solve and round, score against
    # the baselines, the bootstrap intervals, the sum objective's extras, then the result.
    problem, risk = _checked_problem(fitset, budget, unit, limits, max_epochs, risk, interval, seed, currency, price_key,
                                     inside_mixture)
    setup = _set_up(fitset, problem, objective, targets, risk, solver, objective_fn, smallest_run_floor,
                    target_confidence, interval, seed)
    plan = _solve(setup, trials)
    comparison = _compare_with_baselines(setup, plan)
    intervals = bootstrap_intervals(setup.problem, plan.pairs, None if setup.objective == "custom" else setup.objective,
                                    interval, setup.target_utility, seed)
    saved, with_transfer = _savings_and_transfer(fitset, setup, plan, comparison.baselines)
    return assemble_result(fitset, setup, plan, comparison, intervals, saved, with_transfer)


def _checked_problem(fitset: FitSet, budget: float, unit: Unit, limits, max_epochs: float, risk: str, interval: float,
                     seed: int, currency: str | None, price_key: str, inside_mixture: bool = True) -> tuple[AllocationProblem, str]:
    """Check the interval and seed, build the problem (on in-mixture curves where asked and fitted), and the
    risk it can take."""
    if not 0 < interval < 1:
        raise UserError(f"The interval level must be between 0 and 1; got {interval}.", "Use e.g. 0.9 for a 90% interval.")
    check_seed_flag(seed)
    problem = build_problem(fitset, budget, unit, limits, max_epochs, currency, price_key)
    if inside_mixture and fitset.transfer:
        problem = in_mixture_problem(problem, fitset) or problem
    if risk == "expected" and problem.draws is None:
        # Nothing to average over (a fit without draws): the point fits are all there is, and the plan
        # says so rather than refusing.
        risk = "mean"
        problem = replace(problem, notes=problem.notes + (
            "risk expected: the fits have no draws (--bootstrap 0), so the plan uses the point fits (risk mean)",))
    return problem, risk


def _set_up(fitset: FitSet, problem: AllocationProblem, objective: str, targets: Mapping[str, float] | None, risk: str,
            solver: str, objective_fn: str | None, smallest_run_floor: SmallestRunFloor, target_confidence: float,
            interval: float, seed: int) -> PlanSetup:
    """Check the choices against the problem, then fix the targets, the confidence, the plan's floors, the
    curves it optimises and a user objective's score (which makes the objective "custom")."""
    target = target_array(problem, targets)
    _check_choices(objective, risk, solver, target, objective_fn)
    targeted = objective == "target" and not objective_fn
    confidence = check_confidence(target_confidence, risk if targeted else "expected", problem.draws is not None)
    _check_maxmin_affordable(problem, objective, objective_fn)
    target_utility = problem.sign * target
    baseline_problem = problem  # baselines are recipes: the measured floors below are the plan's, not theirs
    if floored_objective(smallest_run_floor, objective, objective_fn):
        problem = measured_floors(problem, curve_fits(problem, fitset), weighted=objective == "sum" and not objective_fn)
    curves = problem.utility_curves(risk)
    user_score = None
    if objective_fn:
        objective = "custom"
        user_score = wrap_user_objective(load_objective(objective_fn), problem, objective_fn)
    return PlanSetup(problem, baseline_problem, objective, risk, solver, target, target_utility, confidence, curves,
                     user_score, objective_fn or "", interval, seed)


def _solve(setup: PlanSetup, trials: int) -> SolvedPlan:
    """The exact solve (or the optuna search), rounded to whole pairs and predicted there."""
    problem, objective, curves = setup.problem, setup.objective, setup.curves
    solution = None
    target_need = target_needs(curves, setup.target_utility, setup.confidence) if objective == "target" else None
    if setup.solver == "exact":
        solution = _solve_exact(problem, objective, curves, setup.target_utility, target_need)
        exact, bound = solution.pairs, solution.bound
    else:
        score = setup.user_score or _builtin_score(problem, objective, curves)
        exact = search_allocation(problem, score, trials=trials, seed=setup.seed).pairs
        bound = bounds_from_pairs(exact, problem.lo, problem.hi)
    pairs = _round(problem, exact, objective)
    return SolvedPlan(solution, target_need, exact, bound, pairs, problem.predict(pairs, setup.risk),
                      float(spend(pairs, problem.cost)))


def _compare_with_baselines(setup: PlanSetup, plan: SolvedPlan) -> Comparison:
    """Score the plan and every baseline the same way; the best baseline, the gain over it, the verdicts."""
    need = np.full(len(setup.problem.languages), np.nan)
    if setup.objective == "target":
        need = np.where(plan.solution.reachable & np.isfinite(setup.target), plan.target_need, np.nan)
    scoring = _scoring(setup.problem, setup.objective, need, setup.user_score, setup.user_spec)
    value = scoring.of_plan(plan.pairs, plan.predicted)
    baselines, unavailable = _evaluate_baselines(setup.baseline_problem, setup.risk, scoring, setup.interval, setup.seed)
    direction = 1.0 if scoring.higher_is_better else -1.0
    best = max(baselines, key=lambda n: direction * baselines[n].objective_value) if baselines else None
    gain = None if best is None else direction * (value - baselines[best].objective_value)
    return Comparison(scoring.label, scoring.higher_is_better, value, baselines, unavailable, best, gain,
                      _verdicts(setup, plan.pairs, baselines, best))


def _verdicts(setup: PlanSetup, pairs: np.ndarray, baselines: dict[str, BaselineResult], best: str | None) -> dict[str, dict]:
    """The plan against uniform and against the best baseline (once when they are the same)."""
    verdicts = {}
    for name in dict.fromkeys(n for n in ("uniform", best) if n in baselines):
        other = np.array([baselines[name].pairs[lang] for lang in setup.problem.languages])
        v = verdict(setup.baseline_problem, setup.objective, pairs, name, other, setup.interval, setup.seed)
        if v is not None:
            verdicts[name] = v.as_dict()
    return verdicts


def _savings_and_transfer(fitset: FitSet, setup: PlanSetup, plan: SolvedPlan,
                          baselines: dict[str, BaselineResult]) -> tuple[BudgetSaved | None, dict | None]:
    """Sum objective: the budget at which the plan matches uniform, and the transfer-aware plan."""
    if setup.objective != "sum" or "uniform" not in baselines:
        return None, None
    problem, base, solution = setup.problem, setup.baseline_problem, plan.solution
    uniform_pairs = np.array([baselines["uniform"].pairs[lang] for lang in problem.languages])
    saved = budget_saved(problem, setup.curves, uniform_pairs, None if solution is None else solution.lam)
    if problem.model == IN_MIXTURE:  # the transfer-aware plan's model is the plan's own: it would be this plan
        return saved, None
    # The transfer-aware plan sets its own floors where its model was measured (`design_floors`), and
    # starts from the plan without the per-language floors, so they do not change it.
    start = plan.exact if problem is base else _solve_exact(base, setup.objective, setup.curves, setup.target_utility).pairs
    return saved, transfer_plan(base, fitset, setup.risk, start, uniform_pairs, setup.interval)
