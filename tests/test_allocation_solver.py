"""The exact solvers against known truths: brute force, closed forms and the KKT conditions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fits.laws import Curve
from planner.allocation.curves import CurveBank, ExpectedCurves
from planner.allocation.solver import CAP, FLOOR, fill_budget, round_pairs, solve_maxmin, solve_sum, solve_target


def power(offset, scale, alpha, higher_is_better=True):
    return Curve("power", {"offset": offset, "scale": scale, "alpha": alpha}, higher_is_better)


def bank(curves, x_per_pair=None):
    return CurveBank.from_curves(curves, np.ones(len(curves)) if x_per_pair is None else x_per_pair)


def random_instance(rng, n):
    """Mixed power/log score curves, costs, floors and caps, with a budget strictly between them."""
    curves = []
    for _ in range(n):
        # Score curves between 5 and 40 at 250 pairs, as chrF curves are.
        y250, alpha = rng.uniform(5, 40), rng.uniform(0.1, 0.9)
        if rng.random() < 0.7:
            ceiling = rng.uniform(45, 95)
            curves.append(power(ceiling, (ceiling - y250) * 250**alpha, alpha))
        else:
            slope = rng.uniform(1, 8)
            curves.append(Curve("log", {"a": y250 - slope * np.log(250), "b": slope}))
    cost = rng.uniform(10, 80, n)
    lo = np.where(rng.random(n) < 0.3, rng.uniform(100, 2000, n), 0.0)
    hi = np.where(rng.random(n) < 0.4, lo + rng.uniform(50, 3000, n), np.inf)
    weights = rng.uniform(0.2, 3.0, n)
    floor_cost = float(np.sum(cost * lo))
    budget = floor_cost + rng.uniform(0.2, 3.0) * n * 1500 * cost.mean()
    return bank(curves), cost, lo, hi, weights, budget


def grid_best(b, cost, budget, value, steps=4000):
    """Brute force over a pair budget split between two or three languages."""
    n = len(cost)
    best_v, best_x = -np.inf, None
    fractions = np.linspace(0, 1, steps + 1)
    combos = [(f,) for f in fractions] if n == 2 else itertools.product(fractions[::20], fractions[::20])
    for combo in combos:
        s = np.array([*combo, 1 - sum(combo)])
        if s[-1] < 0:
            continue
        x = s * budget / cost
        v = value(x)
        if v > best_v:
            best_v, best_x = v, x
    return best_v, best_x


@pytest.mark.parametrize("n", [2, 3])
def test_sum_matches_brute_force_grid(n):
    curves = [power(70, 400, 0.5), power(50, 150, 0.3), Curve("log", {"a": 0.0, "b": 5.0})][:n]
    b = bank(curves)
    cost = np.array([20.0, 40.0, 30.0])[:n]
    weights = np.array([1.0, 2.0, 0.7])[:n]
    budget = 120_000.0
    sol = solve_sum(b, cost, np.zeros(n), np.full(n, np.inf), weights, budget)

    def value(x):
        return float(np.sum(weights * b.utility(x)))

    grid_v, grid_x = grid_best(b, cost, budget, value)
    assert value(sol.pairs) >= grid_v - 1e-9
    assert value(sol.pairs) - grid_v < 0.02  # the grid is close to but never above the optimum
    np.testing.assert_allclose(sol.pairs, grid_x, rtol=0.05)


def test_equal_exponents_match_closed_form():
    # With a shared alpha and no bounds, w·A·α·x^-(α+1)/c = λ gives x_l ∝ (w_l·A_l/c_l)^(1/(α+1)).
    alpha = 0.4
    scales = np.array([100.0, 300.0, 800.0, 50.0])
    weights = np.array([1.0, 0.5, 2.0, 1.0])
    cost = np.array([10.0, 25.0, 40.0, 15.0])
    budget = 1e6
    b = bank([power(80, a, alpha) for a in scales])
    sol = solve_sum(b, cost, np.zeros(4), np.full(4, np.inf), weights, budget)
    shape = (weights * scales / cost) ** (1 / (alpha + 1))
    expected = shape * budget / np.sum(cost * shape)
    np.testing.assert_allclose(sol.pairs, expected, rtol=1e-10)
    lam = weights * scales * alpha * expected ** (-alpha - 1) / cost
    np.testing.assert_allclose(sol.lam, lam[0], rtol=1e-10)


@pytest.mark.parametrize("seed", range(25))
def test_kkt_conditions_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    b, cost, lo, hi, weights, budget = random_instance(rng, int(rng.integers(2, 12)))
    sol = solve_sum(b, cost, lo, hi, weights, budget)
    x = sol.pairs
    gain = weights * b.marginal(x) / cost
    assert np.all(x >= lo - 1e-9) and np.all(x <= hi + 1e-9)
    if np.sum(cost * np.where(np.isfinite(hi), hi, np.inf)) > budget:
        np.testing.assert_allclose(np.sum(cost * x), budget, rtol=1e-10)
    interior = np.array([bd is None for bd in sol.bound])
    np.testing.assert_allclose(gain[interior], sol.lam, rtol=1e-8)
    assert np.all(gain[sol.bound == FLOOR] <= sol.lam * (1 + 1e-8))
    assert np.all(gain[sol.bound == CAP] >= sol.lam * (1 - 1e-8))
    # No feasible transfer of budget between two languages improves the objective.
    value = lambda p: float(np.sum(weights * b.utility(p)))
    for i, j in itertools.permutations(range(len(x)), 2):
        step = 1e-4 * budget / cost[i]
        y = x.copy()
        y[i] += step
        y[j] -= step * cost[i] / cost[j]
        if y[i] <= hi[i] and y[j] >= lo[j]:
            assert value(y) <= value(x) + 1e-9 * abs(value(x))


def test_budget_above_all_caps_allocates_the_caps():
    b = bank([power(70, 400, 0.5), power(50, 150, 0.3)])
    cost, lo, hi = np.ones(2), np.zeros(2), np.array([1000.0, 2000.0])
    sol = solve_sum(b, cost, lo, hi, np.ones(2), 10_000.0)
    np.testing.assert_array_equal(sol.pairs, hi)
    assert sol.lam == 0.0 and list(sol.bound) == [CAP, CAP]
    assert sol.spent == 3000.0


def test_non_improving_curve_stays_at_floor():
    flat = Curve("log", {"a": 30.0, "b": -1.0})  # gets worse with data
    b = bank([power(70, 400, 0.5), flat, power(60, 300, 0.4)])
    lo = np.array([0.0, 250.0, 0.0])
    sol = solve_sum(b, np.ones(3), lo, np.full(3, np.inf), np.ones(3), 5000.0)
    assert sol.pairs[1] == 250.0 and sol.bound[1] == FLOOR
    np.testing.assert_allclose(sol.spent, 5000.0, rtol=1e-12)


def test_zero_weight_language_stays_at_floor():
    b = bank([power(70, 400, 0.5), power(60, 300, 0.4)])
    sol = solve_sum(b, np.ones(2), np.array([0.0, 100.0]), np.full(2, np.inf), np.array([1.0, 0.0]), 5000.0)
    np.testing.assert_allclose(sol.pairs, [4900.0, 100.0])


def test_loss_curves_minimise_the_loss():
    # A loss falls with data: E + A·x^-α. The solver maximises utility = -loss.
    losses = [power(1.5, 20.0, 0.5, higher_is_better=False), power(2.0, 10.0, 0.3, higher_is_better=False)]
    b = bank(losses)
    sol = solve_sum(b, np.ones(2), np.zeros(2), np.full(2, np.inf), np.ones(2), 4000.0)
    grid_v, grid_x = grid_best(b, np.ones(2), 4000.0, lambda x: float(np.sum(b.utility(x))))
    np.testing.assert_allclose(sol.pairs, grid_x, rtol=0.01)
    assert np.all(b.marginal(sol.pairs) > 0)


def test_batched_solve_equals_one_by_one():
    rng = np.random.default_rng(3)
    n, r = 5, 7
    params = dict(offset=rng.uniform(50, 80, (r, n)), scale=rng.uniform(100, 900, (r, n)), alpha=rng.uniform(0.2, 0.7, (r, n)))
    draws = CurveBank.from_curves(
        [power(params["offset"][:, i], params["scale"][:, i], params["alpha"][:, i]) for i in range(n)], np.ones(n)
    )
    cost, lo, hi = rng.uniform(1, 3, n), np.full(n, 50.0), np.full(n, 3000.0)
    weights = np.ones(n)
    batch = solve_sum(draws, cost, lo, hi, weights, 6000.0)
    for k in range(r):
        one = bank([power(params["offset"][k, i], params["scale"][k, i], params["alpha"][k, i]) for i in range(n)])
        single = solve_sum(one, cost, lo, hi, weights, 6000.0)
        np.testing.assert_allclose(batch.pairs[k], single.pairs, rtol=1e-9)
    mm = solve_maxmin(draws, cost, lo, hi, 6000.0)
    for k in (0, r - 1):
        one = bank([power(params["offset"][k, i], params["scale"][k, i], params["alpha"][k, i]) for i in range(n)])
        np.testing.assert_allclose(mm.pairs[k], solve_maxmin(one, cost, lo, hi, 6000.0).pairs, rtol=1e-9)


def test_tokens_fitted_curve_is_read_through_tokens_per_pair():
    # The same curve fitted on tokens and on pairs must give the same allocation once x = k·pairs.
    k = np.array([20.0, 50.0])
    on_pairs = bank([power(70, 400, 0.5), power(60, 300, 0.4)])
    on_tokens = bank([power(70, 400 * 20.0**0.5, 0.5), power(60, 300 * 50.0**0.4, 0.4)], x_per_pair=k)
    args = (k, np.zeros(2), np.full(2, np.inf), np.ones(2), 100_000.0)
    np.testing.assert_allclose(solve_sum(on_pairs, *args).pairs, solve_sum(on_tokens, *args).pairs, rtol=1e-10)


@pytest.mark.parametrize("seed", range(10))
def test_maxmin_levels_equal_for_languages_not_at_a_bound(seed):
    rng = np.random.default_rng(100 + seed)
    b, cost, lo, hi, _, budget = random_instance(rng, int(rng.integers(2, 10)))
    sol = solve_maxmin(b, cost, lo, hi, budget)
    levels = b.utility(sol.pairs)
    free = np.array([bd is None for bd in sol.bound])
    if np.sum(cost * hi) <= budget:  # everything capped: no common level
        assert np.isnan(sol.level) and np.all(sol.pairs == hi)
        return
    np.testing.assert_allclose(levels[free], sol.level, rtol=1e-9, atol=1e-9)
    assert np.all(levels[sol.bound == FLOOR] >= sol.level - 1e-9)  # a floor already lifts it above
    assert np.all(levels[sol.bound == CAP] <= sol.level + 1e-9)  # a cap holds it below
    np.testing.assert_allclose(np.sum(cost * sol.pairs), budget, rtol=1e-10)


def test_maxmin_matches_brute_force_for_two_languages():
    b = bank([power(70, 400, 0.5), power(50, 150, 0.3)])
    cost, budget = np.array([1.0, 2.0]), 9000.0
    sol = solve_maxmin(b, cost, np.zeros(2), np.full(2, np.inf), budget)
    grid_v, _ = grid_best(b, cost, budget, lambda x: float(np.min(b.utility(x))), steps=20000)
    assert float(np.min(b.utility(sol.pairs))) >= grid_v - 1e-9
    assert float(np.min(b.utility(sol.pairs))) - grid_v < 1e-2


def test_target_is_the_cheapest_allocation_reaching_each_target():
    b = bank([power(70, 400, 0.5), power(50, 150, 0.3), power(60, 800, 0.4)])
    lo, hi = np.array([0.0, 0.0, 500.0]), np.array([np.inf, 5000.0, np.inf])
    targets = np.array([60.0, 49.0, np.nan])  # 49 needs more than the 5000-pair cap for the second
    sol = solve_target(b, np.ones(3), lo, hi, targets)
    np.testing.assert_allclose(b.utility(sol.pairs)[0], 60.0)
    np.testing.assert_allclose(sol.pairs[0], (400 / 10) ** 2)  # 70 - 400·x^-0.5 = 60 → x = 1600
    assert list(sol.reachable) == [True, False, True]
    assert sol.pairs[1] == 0.0 and sol.pairs[2] == 500.0
    above_ceiling = solve_target(b, np.ones(3), lo, hi, np.array([71.0, np.nan, np.nan]))
    assert not above_ceiling.reachable[0]


def test_expected_curves_of_identical_draws_equal_the_point_fit():
    point = [power(70, 400, 0.5), Curve("log", {"a": 1.0, "b": 4.0})]
    draws = bank([power(np.full(5, 70.0), np.full(5, 400.0), np.full(5, 0.5)), Curve("log", {"a": np.ones(5), "b": np.full(5, 4.0)})])
    expected = ExpectedCurves.from_bank(draws)
    args = (np.array([1.0, 3.0]), np.zeros(2), np.full(2, np.inf), np.ones(2), 20_000.0)
    np.testing.assert_allclose(solve_sum(expected, *args).pairs, solve_sum(bank(point), *args).pairs, rtol=1e-9)


def test_expected_log_curve_is_the_log_curve_of_mean_parameters():
    rng = np.random.default_rng(0)
    a, b_ = rng.normal(5, 2, 400), rng.normal(4, 1, 400)
    expected = ExpectedCurves.from_bank(bank([Curve("log", {"a": a, "b": b_})]))
    mean_curve = bank([Curve("log", {"a": a.mean(), "b": b_.mean()})])
    x = np.array([[10.0], [1000.0]])
    np.testing.assert_allclose(expected.utility(x), mean_curve.utility(x), rtol=1e-12)
    np.testing.assert_allclose(expected.pairs_at_marginal(np.array([0.01])), mean_curve.pairs_at_marginal(np.array([0.01])), rtol=1e-9)


def test_fill_budget_redistributes_what_capped_languages_cannot_use():
    # UniMax by hand: 1000 pairs over three languages capped at 100, 200 and nothing: 100, 200, 700.
    x = fill_budget(np.ones(3), np.ones(3), np.zeros(3), np.array([100.0, 200.0, np.inf]), 1000.0)
    np.testing.assert_allclose(x, [100.0, 200.0, 700.0])
    x = fill_budget(np.ones(3), np.ones(3), np.zeros(3), np.array([100.0, 500.0, 500.0]), 1000.0)
    np.testing.assert_allclose(x, [100.0, 450.0, 450.0])


def test_round_pairs_largest_remainder_within_budget_and_caps():
    x = round_pairs(np.array([10.6, 20.3, 5.1]), np.ones(3), np.zeros(3), np.full(3, np.inf), 36.0)
    np.testing.assert_array_equal(x, [11, 20, 5])
    x = round_pairs(np.array([10.6, 20.7, 5.7]), np.ones(3), np.zeros(3), np.array([np.inf, 20.0, np.inf]), 37.0)
    assert x[1] == 20 and x.sum() <= 37
    tokens = round_pairs(np.array([10.5, 3.9]), np.array([30.0, 50.0]), np.zeros(2), np.full(2, np.inf), 510.0)
    assert np.sum(tokens * [30.0, 50.0]) <= 510.0 and np.all(tokens >= [10, 3])


def test_kkt_conditions_for_expected_curves():
    rng = np.random.default_rng(7)
    n, r = 6, 300
    alpha = rng.uniform(0.2, 0.7, n) * np.exp(rng.normal(0, 0.2, (r, n)))
    ceiling = rng.uniform(45, 85, n) + rng.normal(0, 3, (r, n))
    scale = (ceiling - rng.uniform(8, 30, n)) * 250**alpha
    draws = bank([power(ceiling[:, i], scale[:, i], alpha[:, i]) for i in range(n)])
    expected = ExpectedCurves.from_bank(draws)
    cost, lo, hi, weights = rng.uniform(15, 60, n), np.zeros(n), np.full(n, 4000.0), rng.uniform(0.5, 2, n)
    budget = 2500.0 * n * cost.mean()
    sol = solve_sum(expected, cost, lo, hi, weights, budget)
    gain = weights * expected.marginal(sol.pairs) / cost
    interior = np.array([bd is None for bd in sol.bound])
    assert interior.sum() >= 2
    np.testing.assert_allclose(gain[interior], sol.lam, rtol=1e-8)
    assert np.all(gain[sol.bound == CAP] >= sol.lam * (1 - 1e-8))
    np.testing.assert_allclose(np.sum(cost * sol.pairs), budget, rtol=1e-10)
    # The expected utility is the mean of the draws' utilities.
    np.testing.assert_allclose(expected.utility(sol.pairs), draws.utility(sol.pairs[None, :]).mean(axis=0), rtol=1e-12)
