"""Held-out truth families (research/truths_heldout.py): their independent solver, their worlds, and the
scale defect they found in the default fit."""

from __future__ import annotations

import numpy as np
import pytest

from fits import fit_runs
from planner.allocation import allocate
from research.truths import FAMILIES, METRIC, World, power, simulate_runs
from research.truths_heldout import HELD_OUT, TrueCurve, solve_any


@pytest.mark.parametrize("family", ["steep-low-ceilings", "caps-and-floors", "pretrained-offset", "log-like"])
def test_grid_solver_agrees_with_the_kkt_solver_inside_the_laws(family):
    for seed in range(3):
        world = FAMILIES[family].draw(np.random.default_rng(seed))
        lo, hi = world.bounds()
        kkt, grid = world.optimum(), solve_any(world, lo, hi)
        room = world.value(kkt) - world.value(world.uniform())
        assert abs(world.value(kkt) - world.value(grid)) <= 1e-6 * room
        assert np.all(grid >= lo - 1e-6) and np.all(grid <= hi + 1e-6)
        assert world.tokens_per_pair @ grid <= world.budget * (1 + 1e-9)
        np.testing.assert_allclose(grid, kkt, rtol=2e-3, atol=1.0)


def test_grid_solver_finds_the_optimum_of_s_shaped_curves_by_brute_force():
    """Two S-shaped curves: the best split is a corner-like point a concave solver would miss; a brute
    force over 20,001 splits of the budget is the independent reference."""
    curves = (TrueCurve("sigmoid", dict(low=5.0, high=60.0, mid=900.0, k=3.0)),
              TrueCurve("sigmoid", dict(low=5.0, high=40.0, mid=300.0, k=2.0)))
    world = World(curves, tokens_per_pair=np.array([20.0, 30.0]), budget=30_000.0, sizes=(250.0, 500.0))
    lo, hi = world.bounds()
    pairs = solve_any(world, lo, hi)
    share = np.linspace(0, 1, 20_001)
    values = [world.value(np.array([s * world.budget / 20.0, (1 - s) * world.budget / 30.0])) for s in share]
    assert world.value(pairs) >= max(values) - 1e-6
    assert world.value(pairs) > world.value(world.uniform()) + 1.0  # the uniform split is far from it here


@pytest.mark.parametrize("family", list(HELD_OUT))
def test_held_out_worlds_are_well_formed(family):
    rng = np.random.default_rng(5)
    world = HELD_OUT[family].draw(rng)
    held_out = [c for c in world.curves if isinstance(c, TrueCurve)]
    assert all(np.isfinite(c.predict(0.0)) for c in held_out)  # finite at 0 pairs (the fit's laws need not be)
    runs = simulate_runs(world, rng)
    assert runs[METRIC].notna().all() and np.isfinite(runs[METRIC]).all()
    best, uniform = world.optimum(), world.uniform()
    assert world.tokens_per_pair @ best <= world.budget * (1 + 1e-9)
    assert world.value(best) >= world.value(uniform) - 1e-9


def test_noise_kinds_have_the_documented_tails():
    curves = tuple(power(60.0, 30.0 * 250**0.5, 0.5) for _ in range(10))
    base = dict(tokens_per_pair=np.full(10, 20.0), budget=1e6, sizes=tuple(np.linspace(100, 2000, 40)), seeds=5)
    truth = np.array([float(curves[0].predict(s)) for s in base["sizes"]])

    def deviations(kind):
        runs = simulate_runs(World(curves, noise_kind=kind, **base), np.random.default_rng(0))
        return runs[METRIC].to_numpy() - np.tile(np.repeat(truth, 5), 10)

    normal, heavy, outliers = deviations("normal"), deviations("student-t"), deviations("outliers")
    assert abs(np.mean(np.abs(normal) > 4)) < 0.002  # Gaussian σ 1: 4σ almost never
    assert np.mean(np.abs(heavy) > 4) > 0.01  # t₃: about 2.8% beyond 4σ
    lost = np.mean(outliers < -0.15 * np.tile(np.repeat(truth, 5), 10))
    assert 0.07 < lost < 0.13  # one run in ten lost 20–70% of its score


def _plan(runs, world):
    fitset = fit_runs(runs.astype(str), METRIC, seed=0)
    plan = allocate(fitset, budget=world.budget, unit="tokens", risk="expected")
    by = {p.language: p.pairs_exact for p in plan.languages}
    return fitset, np.array([by[lang] for lang in world.languages])


def test_scores_reported_as_fractions_give_the_plan_of_the_same_scores_in_percent():
    """chrF reported on a 0–1 scale used to be bounded by 100 like 0–100 chrF: the bound bounded
    nothing, the ceiling grid was a hundred times wider than the data, and plans moved by up to 40%."""
    rng = np.random.default_rng(1)
    world = HELD_OUT["unit-scale"].draw(rng)
    runs = simulate_runs(world, rng)
    percent = runs.copy()
    percent[METRIC] = percent[METRIC] * 100
    fits_fraction, fraction_plan = _plan(runs, world)
    fits_percent, percent_plan = _plan(percent, world)
    np.testing.assert_allclose(fraction_plan, percent_plan, rtol=0.02)
    assert fits_fraction.population["ceiling_max"] == 1.0 and fits_percent.population["ceiling_max"] == 100.0
    assert any("fractions" in note for note in fits_fraction.notes)
    assert not any("fractions" in note for note in fits_percent.notes)


def test_the_benchmark_plays_held_out_families_without_an_oracle(tmp_path, capsys):
    """`benchmarks/plan_regret.py --held-out` scores the default against the notebook on held-out worlds,
    with regrets on the true curves (finite, and 0 would be a perfect plan)."""
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from plan_regret import main  # noqa: PLC0415

    out = tmp_path / "regret.csv"
    assert main(["--held-out", "--instances", "2", "--clean", "1", "--families", "outlier-runs", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table.method) == {"notebook", "default"}  # no oracle: its prior is a bank of the fit's laws
    assert set(table.family) == {"outlier-runs"} and np.isfinite(table.regret).all()
    assert table.loc[table.method == "default", "clean_value_gap"].iloc[0] < 1e-9  # in-law curves: exact on clean runs
    assert "| outlier-runs |" in capsys.readouterr().out


def test_the_grid_solver_refuses_floors_the_budget_cannot_pay():
    curves = (TrueCurve("exponential", dict(ceiling=50.0, gap=40.0, scale=500.0)),) * 2
    world = World(curves, tokens_per_pair=np.array([10.0, 10.0]), budget=5_000.0, sizes=(250.0,),
                  lo=np.array([400.0, 400.0]))
    with pytest.raises(ValueError, match="floors"):
        solve_any(world, *world.bounds())
    capped = World(curves, tokens_per_pair=np.array([10.0, 10.0]), budget=50_000.0, sizes=(250.0,),
                   lo=np.array([400.0, 0.0]), hi=np.array([300.0, np.inf]))
    with pytest.raises(ValueError, match="floors"):
        solve_any(capped, *capped.bounds())


def test_which_scores_are_read_as_fractions():
    """chrF, COMET (which can dip below 0) and accuracy in 0–1 are fractions; BLEU below 1 is a weak sweep
    on its 0–100 scale and keeps the bound of 100; a loss has no such bound."""
    from fits.data import Series
    from fits.population import metric_bounds

    def bound(metric, ys, higher=True):
        series = {"de": Series("de", np.array([100.0, 200.0, 400.0]), np.array(ys), None, [])}
        return metric_bounds(metric, higher, series)[0].offset_max

    assert bound("chrf", [0.1, 0.3, 0.5]) == 1.0 and bound("chrf", [0.1, 3.0, 5.0]) == 100.0
    assert bound("comet", [-0.02, 0.4, 0.6]) == 1.0 and bound("accuracy", [0.2, 0.5, 0.9]) == 1.0
    assert bound("bleu", [0.2, 0.5, 0.9]) == 100.0
    assert bound("loss", [0.2, 0.5, 0.9], higher=False) is None
