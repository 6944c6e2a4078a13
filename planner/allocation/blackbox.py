"""Black-box allocation search with optuna, for objectives the exact solver cannot take.

A user objective is any Python callable `objective(pairs: dict[str, float], problem) -> float` to
*maximise* (return minus a loss to minimise one), named as

- `package.module:function` (importable on the Python path),
- `path/to/file.py:function` (a file of the user's own), or
- the name of an entry point in the `planner.objectives` group of an installed package.

Search space: one log-uniform weight per language; `fill_budget` turns any weights into a feasible
allocation that spends the whole budget within the bounds (interior points are reached by their budget
shares, a capped language passes its share on to the others). So the sampler never proposes an
infeasible plan and every trial counts. The first trial is the equal-share allocation, so the search
never returns worse than it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import optuna

from planner.allocation.problem import AllocationProblem
from planner.allocation.solver import fill_budget
from core.errors import UserError
from core.files import not_a_file

ENTRY_POINT_GROUP = "planner.objectives"
# Budget-share weights range over this factor (log-uniform): a language can get 1/1000 of another's share.
_WEIGHT_RANGE = (1e-3, 1.0)

UserObjective = Callable[[dict, AllocationProblem], float]


@dataclass(frozen=True)
class SearchResult:
    pairs: np.ndarray
    value: float
    trials: int


def load_objective(spec: str) -> UserObjective:
    """Resolve `module:function`, `file.py:function` or an entry-point name to a callable."""
    if ":" not in spec:
        found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == spec]
        if not found:
            raise UserError(
                f"No objective named '{spec}' is registered in the '{ENTRY_POINT_GROUP}' entry-point group.",
                "Pass MODULE:FUNCTION or path/to/file.py:FUNCTION, or register the entry point in your package.",
            )
        fn = found[0].load()
    else:
        module_name, _, attr = spec.rpartition(":")
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UserError(f"Objective file {path} {not_a_file(path)}.", "Pass path/to/file.py:FUNCTION with an existing file.")
            module_spec = importlib.util.spec_from_file_location(f"planner_user_objective_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            try:
                module = importlib.import_module(module_name)
            except ImportError as err:
                raise UserError(f"Cannot import objective module '{module_name}': {err}.", "Check the module path and PYTHONPATH.") from None
        fn = getattr(module, attr, None)
        if fn is None:
            raise UserError(f"Module '{module_name}' has no attribute '{attr}'.", "Pass MODULE:FUNCTION naming a function in it.")
    if not callable(fn):
        raise UserError(f"Objective '{spec}' is not callable.", "Point at a function objective(pairs, problem) -> float.")
    return fn


def wrap_user_objective(fn: UserObjective, problem: AllocationProblem, spec: str) -> Callable[[np.ndarray], float]:
    """Adapt a user callable to the array interface and check what it returns."""

    def score(pairs: np.ndarray) -> float:
        value = fn(dict(zip(problem.languages, map(float, pairs))), problem)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UserError(f"Objective '{spec}' returned {value!r}, not a number.", "Return one float to maximise.") from None
        return value

    return score


def search_allocation(
    problem: AllocationProblem, score: Callable[[np.ndarray], float], trials: int = 300, seed: int = 0
) -> SearchResult:
    """Maximise `score(pairs)` over feasible allocations with a seeded multivariate TPE search."""
    if trials < 1:
        raise UserError(f"--trials must be at least 1; got {trials}.", "Pass a positive number of trials, e.g. --trials 300.")
    names = [f"weight_{i}" for i in range(len(problem.languages))]

    def to_pairs(weights: np.ndarray) -> np.ndarray:
        return fill_budget(weights, problem.cost, problem.lo, problem.hi, problem.budget)

    def objective(trial: optuna.Trial) -> float:
        weights = np.array([trial.suggest_float(n, *_WEIGHT_RANGE, log=True) for n in names])
        value = score(to_pairs(weights))
        return value if np.isfinite(value) else -np.inf

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial would drown the plan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate TPE
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=min(20, trials))
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.enqueue_trial({n: _WEIGHT_RANGE[1] for n in names})
            study.optimize(objective, n_trials=trials)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = study.best_trial
    pairs = to_pairs(np.array([best.params[n] for n in names]))
    return SearchResult(pairs=pairs, value=float(best.value), trials=len(study.trials))
