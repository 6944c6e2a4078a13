"""The whole-run estimate (planner.estimate): the launch priced by the proxy runs' measured rates."""

from __future__ import annotations

import pytest

from core.config import config_from_dict
import pandas as pd

from planner.estimate import (
    GENERATION_COST, THREAD_GAIN, LaunchParts, RunCost, final_pairs, launch_parts, launch_seconds, measured_rates, run_costs,
)


def _cfg(**over):
    body = {"languages": ["de", "es"], "data": {"test_size": 100}, "train": {"epochs": 1, "eval_size": 40},
            "budget": {"total": 400, "unit": "pairs"}, "final": {"baselines": ["uniform"], "seeds": [0]}}
    for key, value in over.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    return config_from_dict(body)


def test_rates_come_from_the_finished_runs():
    costs = [RunCost(0, 12.0, 0.0, 10.0), RunCost(100, 62.0, 50.0, 10.0), RunCost(300, 164.0, 150.0, 12.0)]
    r = measured_rates(costs, test_size=100)
    assert r.per_pair == pytest.approx(200.0 / 400.0)
    assert r.per_sentence == pytest.approx(10.0 / 100)
    assert r.overhead == pytest.approx(2.0)
    assert measured_rates([RunCost(0, 12.0, 0.0, 10.0)], 100) is None  # no trained run yet


def test_launch_seconds_add_up_the_final_runs_and_the_target_checks():
    rates = measured_rates([RunCost(100, 62.0, 50.0, 10.0), RunCost(300, 162.0, 150.0, 10.0)], 100)
    one_final = 2.0 + 400 * 0.5 + 2 * 0.1 * (100 + GENERATION_COST * 40)
    assert launch_seconds(_cfg(), rates, None, threads=1) == pytest.approx(2 * one_final)  # plan + uniform
    assert launch_seconds(_cfg(), rates, None, threads=2) == pytest.approx(2 * one_final / (1 + THREAD_GAIN))
    seeds = launch_seconds(_cfg(final={"seeds": [0, 1, 2]}), rates, None, threads=1)
    assert seeds == pytest.approx(6 * one_final)
    # one check per language with a target, each about its share of the budget's pairs
    targets = _cfg(budget={"languages": {"de": {"target": 1.5}}})
    check = 2.0 + 100 * 0.1 + 200 * 0.5
    assert launch_seconds(targets, rates, None, threads=1) == pytest.approx(2 * one_final + check)
    both = _cfg(budget={"languages": {"de": {"target": 1.5}, "es": {"target": 1.2}}})
    parts = launch_parts(both, rates, None, threads=1)
    assert (parts.runs, parts.checks) == (2, 2) and parts.total == pytest.approx(2 * one_final + 2 * check)


def test_the_launch_clock_rescales_the_rest_by_the_final_runs_it_measured():
    parts = LaunchParts(final_run=100.0, runs=4, check=20.0, checks=2)
    assert parts.left([], 0) == pytest.approx(440.0)
    # the first final run took 130 s: the rest (3 runs, 2 checks) is priced 1.3× as high
    assert parts.left([130.0], 1) == pytest.approx(1.3 * 340.0)
    assert parts.left([130.0, 70.0], 2) == pytest.approx(1.0 * 240.0)
    # a run read back from an earlier launch (a fraction of a second) measures nothing
    assert parts.left([0.2, 130.0], 2) == pytest.approx(1.3 * 240.0)
    assert parts.left([0.2], 1) == pytest.approx(340.0)
    assert parts.left([130.0] * 4, 4, checks_done=1) == pytest.approx(1.3 * 20.0)
    assert parts.left([130.0] * 4, 4, checks_done=2) == 0.0


def test_a_mixture_run_counts_once_at_all_its_pairs():
    """runs.csv gives a mixture run one row per language, each with the whole run's seconds and the
    language's own pairs: read row by row it would count 4 runs of 20 pairs at 46 s each."""
    runs = pd.DataFrame([
        {"language": "el", "n_pairs": 20, "train_seconds": 10.0, "eval_seconds": 5.0, "mixture": None, "other_pairs": None},
        *[{"language": lang, "n_pairs": 20, "train_seconds": 46.0, "eval_seconds": 20.0, "mixture": "uniform-20",
           "other_pairs": 60} for lang in ("el", "hi", "tr", "vi")],
    ])
    assert run_costs(runs) == [RunCost(20, 15.0, 10.0, 5.0), RunCost(80, 66.0, 46.0, 20.0)]
    assert run_costs(runs.drop(columns=["mixture", "other_pairs"]).head(1)) == [RunCost(20, 15.0, 10.0, 5.0)]


def test_a_token_budget_is_priced_at_the_data_s_tokens_per_pair():
    cfg = _cfg(budget={"total": 16000, "unit": "tokens"})
    assert final_pairs(cfg, 40.0) == pytest.approx(400.0)
    assert final_pairs(_cfg(), None) == 400


def test_a_money_budget_is_priced_at_the_languages_mean_price():
    cfg = _cfg(budget={"total": 60, "unit": "money", "languages": {"de": {"price_per_pair": 0.1},
                                                                   "es": {"price_per_pair": 0.2}}})
    assert final_pairs(cfg, None) == pytest.approx(60 / 0.15)


def test_the_launch_clock_tells_the_time_left_after_each_run_and_check():
    from planner.pipeline import LaunchClock

    told, times = [], iter([0.0, 130.0, 130.0, 131.0, 131.0, 150.0])  # each event reads the clock twice
    clock = LaunchClock(LaunchParts(final_run=100.0, runs=2, check=20.0, checks=1), told.append, lambda: next(times))
    clock.final_run_done("plan seed 0")  # 130 s against 100 estimated: the rest × 1.3
    clock.final_run_done("uniform seed 0")  # read back in 1 s: measures nothing
    clock.check_done("target check el (90 pairs)")
    assert told == ["launch: plan seed 0 done; about 2m36s left of the launch",  # 1.3 × (100 + 20)
                    "launch: uniform seed 0 done; about 26s left of the launch",
                    "launch: target check el (90 pairs) done; about 0.0s left of the launch"]
    LaunchClock(None, told.append).final_run_done("plan seed 0")  # nothing timed this machine: silent
    assert len(told) == 3
