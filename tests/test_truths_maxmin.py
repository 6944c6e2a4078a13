"""The maxmin objective on true curves (research/truths_maxmin.py): its independent optimum agrees with the
planner's water-filling solver inside the fit's laws, gives hand-computed answers, and respects bounds."""

from __future__ import annotations

import numpy as np
import pytest

from planner.allocation.solver import solve_maxmin
from research.truths import FAMILIES, World, power
from research.truths_heldout import HELD_OUT, TrueCurve


def _world(curves, tpp, budget, lo=None, hi=None) -> World:
    return World(tuple(curves), tokens_per_pair=np.asarray(tpp, float), budget=float(budget), sizes=(250.0,),
                 lo=None if lo is None else np.asarray(lo, float), hi=None if hi is None else np.asarray(hi, float))


def _feasible(world: World, pairs: np.ndarray) -> bool:
    lo, hi = world.bounds()
    return bool(np.all(pairs >= lo - 1e-9) and np.all(pairs <= hi * (1 + 1e-12))
                and world.tokens_per_pair @ pairs <= world.budget * (1 + 1e-9))


@pytest.mark.parametrize("family", ["caps-and-floors", "steep-low-ceilings", "pretrained-offset", "log-like",
                                    "saturated-and-steep"])
def test_independent_optimum_agrees_with_the_water_filling_solver_inside_the_laws(family):
    for seed in range(3):
        world = FAMILIES[family].draw(np.random.default_rng(seed))
        lo, hi = world.bounds()
        mine = world.optimum("maxmin")
        planner = solve_maxmin(world.bank(), world.tokens_per_pair, lo, hi, world.budget).pairs
        assert _feasible(world, mine)
        best = world.value(planner, "maxmin")
        assert abs(world.value(mine, "maxmin") - best) <= 1e-9 * abs(best)


def test_equal_ceilings_and_exponents_split_by_a_closed_form():
    """C − A_l·x^−α = t for all three: x_l ∝ A_l^(1/α), scaled to spend the budget exactly."""
    scales, alpha, tpp, budget = np.array([200.0, 400.0, 800.0]), 0.5, np.array([10.0, 20.0, 40.0]), 300_000.0
    world = _world([power(60.0, a, alpha) for a in scales], tpp, budget)
    weight = scales ** (1 / alpha)
    expected = budget * weight / (tpp @ weight)
    level = 60.0 - (tpp @ weight / budget) ** alpha
    pairs = world.optimum("maxmin")
    np.testing.assert_allclose(pairs, expected, rtol=1e-9)
    assert world.value(pairs, "maxmin") == pytest.approx(level, rel=1e-12)


def test_exponential_curves_split_by_a_closed_form():
    """c − g_l·e^(−x/s) = t for all (a held-out law, scored without the fit's curve bank):
    x_l = s·ln(g_l/(c − t)), and the budget fixes ln(c − t) = (s·Σ c_l ln g_l − B)/(s·Σ c_l)."""
    gaps, s, tpp, budget = np.array([30.0, 45.0, 55.0]), 800.0, np.array([20.0, 30.0, 50.0]), 150_000.0
    world = _world([TrueCurve("exponential", dict(ceiling=60.0, gap=g, scale=s)) for g in gaps], tpp, budget)
    log_room = (s * tpp @ np.log(gaps) - budget) / (s * tpp.sum())
    pairs = world.optimum("maxmin")
    np.testing.assert_allclose(pairs, s * (np.log(gaps) - log_room), rtol=1e-9)
    assert world.value(pairs, "maxmin") == pytest.approx(60.0 - np.exp(log_room), rel=1e-12)


def test_a_language_already_above_the_level_gets_nothing_even_if_it_dips_first():
    """Zero-shot 20 with a dip to about 15: the other language reaches about 17.6 with the whole budget,
    so the forgetting language needs 0 pairs; an inversion assuming a rising curve would give it the
    pairs where it climbs back through 17.6."""
    dip = TrueCurve("dip-then-rise", dict(zero_shot=20.0, depth=6.0, half=50.0, ceiling=60.0, alpha=0.5, x0=2000.0))
    rise = power(40.0, 30.0 * 100**0.5, 0.5)  # 10 at 100 pairs, 40 far beyond
    world = _world([dip, rise], [20.0, 20.0], 20.0 * 180)
    assert 15 < float(rise.predict(180.0)) < 20 and float(dip.predict(100.0)) < float(rise.predict(180.0))
    pairs = world.optimum("maxmin")
    np.testing.assert_allclose(pairs, [0.0, 180.0], rtol=1e-9, atol=1e-9)
    # and no split of the budget does better (brute force over 20,001 splits)
    share = np.linspace(0, 1, 20_001)[:, None]
    grid = np.hstack([share, 1 - share]) * 180.0
    with np.errstate(divide="ignore"):  # the plain power law is −inf at 0 pairs (the split's end)
        best = max(world.value(p, "maxmin") for p in grid)
    assert world.value(pairs, "maxmin") >= best - 1e-9


def test_caps_and_floors_bind():
    """Two identical languages and 1,000 pairs. Capped at 100 pairs, the first is the bottleneck at its
    cap's score (equalising would give it 500 and a higher level); with a floor of 800 it keeps the floor
    and the other gets the 200 left."""
    curve = power(60.0, 40.0 * 100**0.5, 0.5)
    capped = _world([curve, curve], [1.0, 1.0], 1000.0, hi=[100.0, np.inf])
    pairs = capped.optimum("maxmin")
    assert pairs[0] <= 100.0
    assert capped.value(pairs, "maxmin") == pytest.approx(float(curve.predict(100.0)), rel=1e-12)
    assert capped.value(pairs, "maxmin") < capped.value(np.array([500.0, 500.0]), "maxmin")

    floored = _world([curve, curve], [1.0, 1.0], 1000.0, lo=[800.0, 0.0])
    pairs = floored.optimum("maxmin")
    assert pairs[0] >= 800.0 and _feasible(floored, pairs)
    assert floored.value(pairs, "maxmin") == pytest.approx(float(curve.predict(200.0)), rel=1e-9)


@pytest.mark.parametrize("family", sorted(set(FAMILIES) | set(HELD_OUT)))
def test_uniform_is_never_better_than_the_optimum(family):
    draw = (FAMILIES | HELD_OUT)[family].draw
    for seed in range(2):
        world = draw(np.random.default_rng(seed))
        best = world.optimum("maxmin")
        assert _feasible(world, best)
        value, uniform = world.value(best, "maxmin"), world.value(world.uniform(), "maxmin")
        assert value >= uniform - 1e-9 * max(1.0, abs(uniform))


def _benchmark():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import plan_regret  # noqa: PLC0415

    return plan_regret


def test_the_benchmark_judges_maxmin_plans_without_an_oracle(tmp_path, capsys):
    """`plan_regret.py --objective maxmin` plans for maxmin and scores the worst language's true score;
    noiseless runs of power curves give the true optimum (the fit is exact and so is the solver)."""
    import pandas as pd

    out = tmp_path / "regret.csv"
    # a held-out family of power curves: its in-law truths, without the real sweeps' families to fit first
    args = ["--objective", "maxmin", "--held-out", "--instances", "1", "--clean", "1", "--families", "unit-scale",
            "--out", str(out)]
    assert _benchmark().main(args) == 0
    table = pd.read_csv(out)
    assert set(table.method) == {"notebook", "default"}  # no oracle: expected utility is not maxmin
    assert np.isfinite(table.regret).all() and (table.gain_of_optimum > 0).all()
    assert table.loc[table.method == "default", "clean_value_gap"].iloc[0] < 1e-8
    assert "room: optimum − uniform" in capsys.readouterr().out


def test_pooled_regret_interval_ignores_resamples_without_room():
    """Worlds where uniform is already optimal (room 0) are common under maxmin; a resample of only such
    worlds has no regret (0/0) and must not turn the interval into NaN."""
    opt = np.array([10.0, 10.0, 10.0, 12.0])
    uni = np.array([10.0, 10.0, 10.0, 8.0])
    val = np.array([10.0, 10.0, 10.0, 11.0])
    regret, lo, hi = _benchmark().pooled_regret(opt, uni, val, np.random.default_rng(0))
    assert regret == pytest.approx(0.25) and np.isfinite([lo, hi]).all()
