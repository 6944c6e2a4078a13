"""`allocate`'s steps one at a time (planner/allocation/plan.py and assemble.py): each is a pure function of
the records before it, and `allocate` is exactly their composition."""

from __future__ import annotations

import pickle
import textwrap

import numpy as np
import pytest

from planner.allocation import allocate
from planner.allocation.assemble import assemble_result, bounds_from_pairs
from planner.allocation.plan import (
    _checked_problem,
    _compare_with_baselines,
    _savings_and_transfer,
    _set_up,
    _solve,
)
from planner.allocation.risk import bootstrap_intervals
from planner.allocation.solver import CAP, FLOOR
from test_allocation_plan import TRUTH, fitset, power, truth_fits  # noqa: F401 (fixture)

SETUP_DEFAULTS = dict(objective="sum", targets=None, risk="expected", solver="exact", objective_fn=None,
                      smallest_run_floor="auto", target_confidence=0.5, interval=0.9, seed=0)


def set_up(fits, budget=3000.0, unit="pairs", **choices):
    kw = {**SETUP_DEFAULTS, **choices}
    problem, risk = _checked_problem(fits, budget, unit, None, 1.0, kw["risk"], kw["interval"], kw["seed"], None, "")
    return _set_up(fits, problem, kw["objective"], kw["targets"], risk, kw["solver"], kw["objective_fn"],
                   kw["smallest_run_floor"], kw["target_confidence"], kw["interval"], kw["seed"])


def test_the_steps_composed_by_hand_give_allocates_result(truth_fits):
    setup = set_up(truth_fits, objective="maxmin", seed=5)
    plan = _solve(setup, trials=300)
    comparison = _compare_with_baselines(setup, plan)
    intervals = bootstrap_intervals(setup.problem, plan.pairs, "maxmin", 0.9, setup.target_utility, 5)
    saved, transfer = _savings_and_transfer(truth_fits, setup, plan, comparison.baselines)
    by_hand = assemble_result(truth_fits, setup, plan, comparison, intervals, saved, transfer)
    whole = allocate(truth_fits, budget=3000.0, unit="pairs", objective="maxmin", seed=5)
    assert pickle.dumps(by_hand) == pickle.dumps(whole)
    assert saved is None and transfer is None  # the savings and the transfer plan are the sum objective's


def test_a_fit_without_draws_is_planned_on_its_point_fits_and_says_so():
    fits = fitset({k: power(*v[:3]) for k, v in TRUTH.items()})  # no bootstrap draws
    problem, risk = _checked_problem(fits, 3000.0, "pairs", None, 1.0, "expected", 0.9, 0, None, "")
    assert risk == "mean" and any("--bootstrap 0" in note for note in problem.notes)
    _, kept = _checked_problem(fits, 3000.0, "pairs", None, 1.0, "mean", 0.9, 0, None, "")
    assert kept == "mean"


def test_the_measured_floors_are_the_plans_and_not_the_baselines(truth_fits):
    floored = set_up(truth_fits, smallest_run_floor="always")
    np.testing.assert_array_equal(floored.problem.lo, [250.0, 250.0, 250.0])  # each language's smallest run
    np.testing.assert_array_equal(floored.baseline_problem.lo, [0.0, 0.0, 0.0])
    free = set_up(truth_fits, smallest_run_floor="never")
    assert free.problem is free.baseline_problem  # the transfer plan then starts from the plan's own optimum


def test_a_user_objective_makes_the_objective_custom(tmp_path, truth_fits):
    path = tmp_path / "mine.py"
    path.write_text(textwrap.dedent("""
        def de_only(pairs, problem):
            return pairs["de"]
    """))
    setup = set_up(truth_fits, solver="optuna", objective_fn=f"{path}:de_only")
    assert setup.objective == "custom" and setup.user_spec == f"{path}:de_only"
    assert setup.user_score(np.array([120.0, 5.0, 7.0])) == pytest.approx(120.0)


def test_the_solve_step_trains_whole_pairs_within_the_budget(truth_fits):
    setup = set_up(truth_fits, budget=2999.5)
    plan = _solve(setup, trials=300)
    assert np.all(plan.pairs == np.round(plan.pairs)) and not np.array_equal(plan.pairs, plan.exact)
    assert plan.spent == pytest.approx(plan.pairs.sum()) and 2999.5 - 1 < plan.spent <= 2999.5
    assert plan.solution is not None and plan.target_need is None


def test_bounds_are_read_from_the_amounts_within_a_relative_tolerance():
    pairs = np.array([0.0, 5.0, 1_000_000.0 - 0.5, 300.0])
    lo = np.array([0.0, 0.0, 0.0, 300.0])
    hi = np.array([10.0, 10.0, 1_000_000.0, 500.0])
    assert list(bounds_from_pairs(pairs, lo, hi)) == [FLOOR, None, CAP, FLOOR]
