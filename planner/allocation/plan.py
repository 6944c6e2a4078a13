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
from planner.allocation.baselines import BASELINES, BaselineUnavailable, baseline_pairs, recipe_budget_to_reach
from planner.allocation.blackbox import load_objective, search_allocation, wrap_user_objective
from planner.allocation.explain import explain
from planner.allocation.saved import budget_saved
from planner.allocation.transfer import transfer_plan
from planner.allocation.problem import (
    AllocationProblem,
    LanguageLimits,
    Risk,
    Unit,
    build_problem,
)
from planner.allocation.floors import SmallestRunFloor, floored_objective, measured_floors
from planner.allocation.notes import plan_notes, probe_notes, reach_notes, starved_notes
from planner.allocation.risk import bootstrap_intervals
from planner.allocation.solver import CAP, FLOOR, Solution, round_pairs, solve_maxmin, solve_sum, solve_target, spend
from planner.allocation.targets import (
    DEFAULT_CONFIDENCE,
    check_confidence,
    reach_probability,
    target_array,
    target_needs,
    target_why,
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


def _bounds_from_pairs(pairs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    tol = 1e-6 * np.maximum(1.0, pairs)
    out = np.full(pairs.shape, None, dtype=object)
    out[pairs >= hi - tol] = CAP
    out[pairs <= lo + tol] = FLOOR
    return out


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


def _evaluate_baselines(problem: AllocationProblem, risk: Risk, scoring: _Scoring):
    results, unavailable = {}, {}
    for name in BASELINES:
        try:
            exact = baseline_pairs(name, problem)
        except BaselineUnavailable as why:
            unavailable[name] = str(why)
            continue
        pairs = round_pairs(exact, problem.cost, np.zeros_like(exact), problem.hi, problem.budget)
        predicted = problem.predict(pairs, risk)
        results[name] = BaselineResult(
            name=name,
            pairs=dict(zip(problem.languages, map(float, pairs))),
            tokens=dict(zip(problem.languages, map(float, problem.tokens(pairs)))),
            predicted=dict(zip(problem.languages, map(float, predicted))),
            objective_value=scoring.of_baseline(name, pairs, predicted),
            unused_budget=float(problem.budget - spend(pairs, problem.cost)),
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
) -> AllocationResult:
    """Plan the budget across the fitted languages and compare with every baseline.

    `fitset` is a `fits.FitSet`; `limits` maps language → `LanguageLimits`; `targets` maps language →
    target metric (for `objective="target"`); `objective_fn` names a user objective for the optuna solver
    (see `blackbox`; it replaces `objective`). `smallest_run_floor` says when the plan may give a language
    less than its smallest run (`floored_objective`). `target_confidence`: the share of the fits' draws
    that must reach a target (`planner.allocation.targets`). `unit` money prices each pair at its language's
`price_per_pair` (`currency` labels it; `price_key` names where a missing price is given). Raises
`UserError` for anything the user can fix.
    """
    if not 0 < interval < 1:
        raise UserError(f"The interval level must be between 0 and 1; got {interval}.", "Use e.g. 0.9 for a 90% interval.")
    check_seed_flag(seed)
    problem = build_problem(fitset, budget, unit, limits, max_epochs, currency, price_key)
    if risk == "expected" and problem.draws is None:
        # Nothing to average over (a fit without draws): the point fits are all there is, and the plan
        # says so rather than refusing.
        risk = "mean"
        problem = replace(problem, notes=problem.notes + (
            "risk expected: the fits have no draws (--bootstrap 0), so the plan uses the point fits (risk mean)",))
    target = target_array(problem, targets)
    _check_choices(objective, risk, solver, target, objective_fn)
    targeted = objective == "target" and not objective_fn
    confidence = check_confidence(target_confidence, risk if targeted else "expected", problem.draws is not None)
    dear = [lang for lang, c in zip(problem.languages, problem.cost) if c > problem.budget]
    if objective == "maxmin" and dear and not objective_fn:  # the worst language could never be raised
        raise UserError(
            f"--objective maxmin raises the worst language, but the budget of {problem.budget:g} {unit_name(problem.unit, problem.currency)} "
            f"cannot buy one pair of {', '.join(dear)}.",
            "Raise --budget, or use --objective sum (which gives such a language nothing).",
        )
    target_utility = problem.sign * target
    baseline_problem = problem  # baselines are recipes: the measured floors below are the plan's, not theirs
    if floored_objective(smallest_run_floor, objective, objective_fn):
        problem = measured_floors(problem, fitset, weighted=objective == "sum" and not objective_fn)
    curves = problem.utility_curves(risk)
    user_score = None
    if objective_fn:
        objective = "custom"
        user_score = wrap_user_objective(load_objective(objective_fn), problem, objective_fn)

    solution = None
    target_need = target_needs(curves, target_utility, confidence) if objective == "target" else None
    if solver == "exact":
        solution = _solve_exact(problem, objective, curves, target_utility, target_need)
        exact, bound = solution.pairs, solution.bound
    else:
        score = user_score or _builtin_score(problem, objective, curves)
        exact = search_allocation(problem, score, trials=trials, seed=seed).pairs
        bound = _bounds_from_pairs(exact, problem.lo, problem.hi)
    pairs = _round(problem, exact, objective)
    predicted = problem.predict(pairs, risk)

    need = np.full(len(problem.languages), np.nan)
    if objective == "target":
        need = np.where(solution.reachable & np.isfinite(target), target_need, np.nan)
    scoring = _scoring(problem, objective, need, user_score, objective_fn or "")
    value = scoring.of_plan(pairs, predicted)
    baselines, unavailable = _evaluate_baselines(baseline_problem, risk, scoring)
    direction = 1.0 if scoring.higher_is_better else -1.0
    best = max(baselines, key=lambda n: direction * baselines[n].objective_value) if baselines else None
    gain = None if best is None else direction * (value - baselines[best].objective_value)
    intervals = bootstrap_intervals(problem, pairs, None if objective == "custom" else objective, interval, target_utility, seed)
    verdicts = {}
    for name in dict.fromkeys(n for n in ("uniform", best) if n in baselines):
        other = np.array([baselines[name].pairs[lang] for lang in problem.languages])
        v = verdict(baseline_problem, objective, pairs, name, other, interval, seed)
        if v is not None:
            verdicts[name] = v.as_dict()

    weight_scale = problem.weights if objective == "sum" else np.ones_like(problem.weights)
    marginal = weight_scale * curves.marginal(exact) / problem.cost
    spent = float(spend(pairs, problem.cost))
    share = pairs * problem.cost / spent if spent > 0 else np.zeros_like(pairs)
    unused = float(problem.budget - spent)
    tokens = problem.tokens(pairs)
    to_buy = problem.to_buy(pairs)
    to_buy_cost = problem.money(to_buy)
    prices = problem.money(np.ones(len(pairs)))
    p_reach = reach_probability(curves, pairs, target_utility) if objective == "target" else np.full(len(pairs), np.nan)
    if objective == "target":  # the budget is a ceiling: compare with an equal split of what the plan spends
        uniform = baseline_pairs("uniform", replace(baseline_problem, budget=spent)) if spent > 0 else 0 * pairs
        why = target_why(problem, curves, pairs, uniform, target, solution.reachable, confidence, target_need)
    else:
        level_now = None if solution is None else solution.level
        why = explain(problem, curves, pairs, baseline_pairs("uniform", baseline_problem),
                      _bounds_from_pairs(pairs, problem.lo, problem.hi), objective, level_now)
    rows = tuple(
        LanguagePlan(
            language=lang,
            pairs=float(pairs[i]),
            tokens=float(tokens[i]),
            share=float(share[i]),
            predicted=float(predicted[i]),
            predicted_low=float(intervals.predicted_low[i]),
            predicted_high=float(intervals.predicted_high[i]),
            pairs_exact=float(exact[i]),
            pairs_low=float(intervals.pairs_low[i]),
            pairs_high=float(intervals.pairs_high[i]),
            marginal_gain=float(marginal[i]),
            at_bound=bound[i],
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
    saved = with_transfer = None
    if objective == "sum" and "uniform" in baselines:
        uniform_pairs = np.array([baselines["uniform"].pairs[lang] for lang in problem.languages])
        saved = budget_saved(problem, curves, uniform_pairs, None if solution is None else solution.lam)
        # The transfer-aware plan sets its own floors where its model was measured (`design_floors`), and
        # starts from the plan without the per-language floors, so they do not change it.
        start = exact if problem is baseline_problem else _solve_exact(baseline_problem, objective, curves, target_utility).pairs
        with_transfer = transfer_plan(baseline_problem, fitset, risk, start, uniform_pairs, interval)
    level = None
    if solution is not None and solution.level is not None and np.isfinite(solution.level):
        level = float(problem.sign * solution.level)
    return AllocationResult(
        metric=problem.metric,
        higher_is_better=problem.higher_is_better,
        objective=objective,
        objective_label=scoring.label,
        objective_higher_is_better=scoring.higher_is_better,
        risk=risk,
        solver=solver,
        unit=problem.unit,
        budget=problem.budget,
        spent=spent,
        unused_budget=unused,
        lam=None if solution is None or solution.lam is None else float(solution.lam),
        level=level,
        objective_value=value,
        languages=rows,
        baselines=baselines,
        unavailable_baselines=unavailable,
        best_baseline=best,
        gain_over_best_baseline=gain,
        interval_level=interval,
        bootstrap_draws=intervals.draws,
        seed=seed,
        warnings=tuple(plan_notes(problem, objective, pairs, solution, target, unused, curves, confidence, target_need)
                       + starved_notes(fitset, problem, pairs, with_transfer)
                       + reach_notes(fitset, problem, pairs, with_transfer)
                       + probe_notes(fitset, problem, with_transfer)),
        budget_saved=None if saved is None else saved.saved,
        reduced_budget=None if saved is None else saved.budget,
        reduced_pairs=None if saved is None else dict(zip(problem.languages, map(float, saved.pairs))),
        transfer=with_transfer,
        target_confidence=confidence if objective == "target" else None,
        verdicts=verdicts,
        currency=problem.currency,
        to_buy=_total(to_buy),
        to_buy_cost=_total(to_buy_cost),
    )


def _total(values: np.ndarray) -> float | None:
    """The sum over the languages where it is known; None where it is known for none."""
    known = np.isfinite(values)
    return float(values[known].sum()) if known.any() else None
