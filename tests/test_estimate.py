"""The whole-run estimate (planner.estimate): the launch priced by the proxy runs' measured rates."""

from __future__ import annotations

import pytest

from core.config import config_from_dict
from planner.estimate import GENERATION_COST, THREAD_GAIN, RunCost, final_pairs, launch_seconds, measured_rates


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
    targets = _cfg(budget={"languages": {"de": {"target": 1.5}}})
    checks = 2 * (2.0 + 100 * 0.1) + 400 * 0.5
    assert launch_seconds(targets, rates, None, threads=1) == pytest.approx(2 * one_final + checks)


def test_a_token_budget_is_priced_at_the_data_s_tokens_per_pair():
    cfg = _cfg(budget={"total": 16000, "unit": "tokens"})
    assert final_pairs(cfg, 40.0) == pytest.approx(400.0)
    assert final_pairs(_cfg(), None) == 400


def test_a_money_budget_is_priced_at_the_languages_mean_price():
    cfg = _cfg(budget={"total": 60, "unit": "money", "languages": {"de": {"price_per_pair": 0.1},
                                                                   "es": {"price_per_pair": 0.2}}})
    assert final_pairs(cfg, None) == pytest.approx(60 / 0.15)
