"""`benchmarks/adaptive_bound.py`: the oracle designs never pass their share of the grid's compute, start
from the adaptive sweep's start design, give the large runs in the order asked, and rank languages by how
far their true optimum lies from equal tokens."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import adaptive_bound  # noqa: E402
from adaptive_sweep import Instance  # noqa: E402
from planner.sweep.identity import GridPoint
from research.truths import GRID4, World, power  # noqa: E402


def _instance(zero_shot: bool = False, seeds: int = 1) -> Instance:
    # l00 is nearly flat (its optimum takes far less than an equal share); l01–l03 rise alike
    curves = (power(30, 5 * 250 ** 0.5, 0.5),) + tuple(power(80, 60 * 250 ** 0.4, 0.4) for _ in range(3))
    world = World(curves, tokens_per_pair=np.array([20.0, 30.0, 40.0, 50.0]), budget=4 * 1500 * 35.0,
                  sizes=GRID4, seeds=seeds, zero_shot=zero_shot, noise=0.3)
    return Instance("test", 0, world)


def _tokens(inst: Instance, points) -> float:
    return sum(inst.tokens(p) for p in points)


def test_a_design_fills_its_share_without_passing_it_and_keeps_the_start_design():
    for zero_shot, seeds in ((False, 1), (True, 1), (False, 3)):
        inst = _instance(zero_shot, seeds)
        full = _tokens(inst, inst.grid())
        for cap in (0.25, 0.5, 0.75):
            design = adaptive_bound.fill(inst, [3, 2, 1, 0], cap * full)
            assert _tokens(inst, design) <= cap * full * (1 + 1e-9)
            assert set(adaptive_bound.base_design(inst)) <= set(design) and len(set(design)) == len(design)
            left = [p for p in adaptive_bound.additions(inst, [3, 2, 1, 0]) if p not in design]
            # nothing that would still have fitted was left out
            assert all(_tokens(inst, design) + inst.tokens(p) > cap * full for p in left)


def test_the_largest_runs_go_to_languages_in_the_order_given():
    inst = _instance()
    full = _tokens(inst, inst.grid())
    # 45%: after the start design, room for l02's and l00's largest runs, not l03's or l01's
    design = adaptive_bound.fill(inst, [2, 0, 3, 1], 0.45 * full)
    assert [p.language for p in design if p.n_pairs == 2000] == ["l02", "l00"]
    # a run that does not fit is skipped and the next tried: at 35% l02's is too dear, l00's fits
    design = adaptive_bound.fill(inst, [2, 0, 3, 1], 0.35 * full)
    assert GridPoint("l02", 2000, 0) not in design and GridPoint("l00", 2000, 0) in design


def test_languages_are_ranked_by_how_far_their_true_optimum_is_from_equal_tokens():
    inst = _instance()
    far = adaptive_bound.far_from_uniform(inst)
    assert int(np.argmax(far)) == 0  # the flat language's optimum is furthest from its equal share


def test_best_of_is_the_least_regret_of_the_designs_tried():
    rows = adaptive_bound.evaluate(_instance(), n_orders=1, seed=0)
    designs = {r["design"]: r for r in rows}
    assert set(designs) == {"grid", "far first", "near first", "random 0", adaptive_bound.BEST}
    tried = [r["loss"] for name, r in designs.items() if name not in ("grid", adaptive_bound.BEST)]
    assert designs[adaptive_bound.BEST]["loss"] == min(tried)
    assert all(r["compute"] <= 0.5 + 1e-9 for name, r in designs.items() if name != "grid")
    assert designs["grid"]["compute"] == 1.0


def test_from_a_one_size_start_every_language_ends_with_two_sizes_within_the_share():
    for zero_shot in (False, True):
        inst = _instance(zero_shot)
        full = _tokens(inst, inst.grid())
        for cap in (0.3, 0.5):
            design = adaptive_bound.fill(inst, [0, 1, 2, 3], cap * full, start=1)
            assert _tokens(inst, design) <= cap * full * (1 + 1e-9)
            for lang in inst.languages:
                assert len({p.n_pairs for p in design if p.language == lang and p.n_pairs > 0}) >= 2, (lang, cap)
            assert GridPoint("l00", 2000, 0) in design  # the first language in the order: the largest size first
    # at 27%, after l00's largest run only the reserve is left: the others get their second size, no more
    inst = _instance()
    design = adaptive_bound.fill(inst, [0, 1, 2, 3], 0.27 * _tokens(inst, inst.grid()), start=1)
    assert {p.n_pairs for p in design if p.language == "l00"} == {250, 2000}
    assert all({p.n_pairs for p in design if p.language == lang} == {250, 500} for lang in ("l01", "l02", "l03"))


def test_best_of_both_starts_takes_the_smaller_loss_per_instance():
    import pandas as pd

    rows = [{"family": "f", "instance": i, "design": d, "target": 0.5, "compute": 0.5, "runs": 1, "loss": loss, "room": 1.0}
            for i, (a, b) in enumerate([(0.3, 0.1), (0.2, 0.4)])
            for d, loss in (("grid", 0.2), (adaptive_bound.BEST, a), (adaptive_bound.ONE + adaptive_bound.BEST, b))]
    both = adaptive_bound.with_best_of_both(pd.DataFrame(rows))
    picked = both[both.design == adaptive_bound.BOTH].sort_values("instance").loss.tolist()
    assert picked == [0.1, 0.2]
