"""Planning a purchase: a money budget with prices per pair, caps above the data held, what to buy and what
it costs; the target objective's cost of reaching each target; `planner data stats` with caps above the pool."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import UserError
from core.units import TOKENS_MEANING
from fits import fit_runs, save_fits
from planner.allocation import LanguageLimits, allocate, format_result, read_allocation, read_summary, write_allocation
from planner.cli import main
from test_allocation_plan import TRUTH, fitset, power, runs_table
from test_data import english, german, run_cli, write_config, write_jsonl

PRICES = {"de": 0.05, "hi": 0.10, "sw": 0.08}
HELD = {"de": 3_000, "hi": 5_034, "sw": 1_000}
CAP = 20_000  # above every pool: the rest can be bought
TARGETS = {"de": 65.0, "hi": 40.0, "sw": 55.0}


def point_fits():
    """The truth curves themselves as the fits (no draws), so a need can be computed by hand."""
    return fitset({k: power(c, a, al) for k, (c, a, al, _) in TRUTH.items()}, tpp={k: v[3] for k, v in TRUTH.items()})


def purchase_limits(**extra):
    return {lang: LanguageLimits(max_pairs=CAP, held_pairs=HELD[lang], price_per_pair=PRICES[lang], **extra)
            for lang in TRUTH}


def hand_need(lang: str, target: float) -> int:
    """Where C − A·x^−α reaches the target, rounded up to a whole pair."""
    c, a, al, _ = TRUTH[lang]
    return math.ceil((a / (c - target)) ** (1 / al) - 1e-9)


def test_a_money_budget_with_caps_above_the_data_held_gives_a_purchase_plan(tmp_path):
    plan = allocate(point_fits(), budget=1_500, unit="money", limits=purchase_limits(), risk="mean", currency="EUR")
    pairs = {p.language: p.pairs for p in plan.languages}
    spent = sum(pairs[lang] * PRICES[lang] for lang in TRUTH)
    assert spent <= 1_500 + 1e-9 and spent > 1_500 - max(PRICES.values())  # whole pairs, nothing left to buy one
    assert plan.spent == pytest.approx(spent)
    assert any(pairs[lang] > HELD[lang] for lang in TRUTH)  # the plan goes beyond the data held
    for p in plan.languages:
        assert p.cost == pytest.approx(p.pairs * PRICES[p.language])
        assert p.to_buy == max(p.pairs - HELD[p.language], 0)
        assert p.to_buy_cost == pytest.approx(p.to_buy * PRICES[p.language])
    assert plan.to_buy == sum(max(pairs[lang] - HELD[lang], 0) for lang in TRUTH)
    assert plan.to_buy_cost == pytest.approx(sum(max(pairs[lang] - HELD[lang], 0) * PRICES[lang] for lang in TRUTH))

    text = format_result(plan)
    assert "budget: 1,500.00 EUR" in text and "per EUR" in text
    assert f"to buy: {plan.to_buy:,.0f} pairs beyond the data held" in text
    assert f"costing {plan.to_buy_cost:,.2f} EUR" in text

    csv_path, summary = write_allocation(plan, tmp_path / "allocation.csv")
    table = read_allocation(csv_path)
    assert list(table.columns[:7]) == ["language", "pairs", "tokens", "share", "predicted", "predicted_low", "predicted_high"]
    assert dict(zip(table.language, table.to_buy)) == {p.language: p.to_buy for p in plan.languages}
    s = read_summary(csv_path)
    assert s["unit"] == "money" and s["currency"] == "EUR" and s["to_buy"] == plan.to_buy
    assert s["to_buy_cost"] == pytest.approx(plan.to_buy_cost)


def test_the_cheaper_language_gets_more_under_money_and_not_under_pairs():
    """Two identical curves, one at a tenth of the other's price: a money budget buys the cheap one more;
    a pair budget, where every pair costs 1, splits them equally."""
    curve = power(60.0, 400.0, 0.5)
    fits = fitset({"a": curve, "b": curve}, tpp={"a": 30.0, "b": 30.0})
    limits = {"a": LanguageLimits(price_per_pair=0.01), "b": LanguageLimits(price_per_pair=0.10)}
    money = {p.language: p.pairs for p in allocate(fits, 100, "money", limits, risk="mean").languages}
    pairs = {p.language: p.pairs for p in allocate(fits, 4_000, "pairs", limits, risk="mean").languages}
    assert money["a"] > 3 * money["b"]
    assert abs(pairs["a"] - pairs["b"]) <= 1


@pytest.mark.parametrize("unit, budget", [("money", 5_000.0), ("tokens", 2e6), ("pairs", 60_000.0)])
def test_the_target_objective_prints_the_cost_of_reaching_each_target(unit, budget):
    plan = allocate(point_fits(), budget=budget, unit=unit, limits=purchase_limits(), objective="target",
                    targets=TARGETS, risk="mean", currency="EUR")
    cost_per_pair = {"money": PRICES, "tokens": {k: v[3] for k, v in TRUTH.items()}, "pairs": dict.fromkeys(TRUTH, 1.0)}[unit]
    for p in plan.languages:
        need = hand_need(p.language, TARGETS[p.language])
        assert p.pairs == need
        assert p.cost == pytest.approx(need * cost_per_pair[p.language])
        assert p.to_buy == max(need - HELD[p.language], 0)
        assert p.to_buy_cost == pytest.approx(p.to_buy * PRICES[p.language])
    total_pairs = sum(hand_need(lang, t) for lang, t in TARGETS.items())
    total = sum(hand_need(lang, t) * cost_per_pair[lang] for lang, t in TARGETS.items())
    money = sum(hand_need(lang, t) * PRICES[lang] for lang, t in TARGETS.items())
    assert plan.spent == pytest.approx(total)
    text = format_result(plan)
    line = next(ln for ln in text.splitlines() if ln.startswith("reaching the targets"))
    assert f"{total_pairs:,} pairs" in line
    expected = {"money": f"{money:,.2f} EUR", "tokens": f"{total:,.0f} tokens ({TOKENS_MEANING})",
                "pairs": f"{total:,.0f} pairs"}[unit]
    assert expected in line
    if unit != "money":  # the prices were given: the money is printed beside the budget's unit
        assert f"{money:,.2f} EUR at the prices given" in line


def test_the_target_cost_at_confidence_q_is_dearer_than_the_median():
    rng = np.random.default_rng(0)
    curves = {k: power(c, a, al) for k, (c, a, al, _) in TRUTH.items()}
    boots = {k: type(c)(c.family, {n: v * np.exp(rng.normal(0, 0.05, 300)) for n, v in c.params.items()}) for k, c in curves.items()}
    fits = fitset(curves, boots, {k: v[3] for k, v in TRUTH.items()})
    costs = {}
    for q in (0.5, 0.9):
        plan = allocate(fits, 10_000, "money", purchase_limits(), objective="target", target_confidence=q,
                        targets={"de": 60.0, "hi": 35.0, "sw": 50.0})
        assert all(p.at_bound != "floor" for p in plan.languages)  # every target reached within its cap
        costs[q] = plan.spent
        assert all(p.p_reach >= q - 1e-9 for p in plan.languages)
        assert f"with probability {100 * q:g}%" in format_result(plan)
    assert costs[0.9] > costs[0.5]


def test_a_missing_price_under_money_names_the_language_and_the_key(tmp_path, capsys):
    limits = purchase_limits()
    limits["hi"] = LanguageLimits(max_pairs=CAP)
    with pytest.raises(UserError, match="'hi' has no price per pair.*price_per_pair"):
        allocate(point_fits(), budget=1_000, unit="money", limits=limits, risk="mean")

    fits_path = tmp_path / "fits.json"
    save_fits(fit_runs(runs_table(), "chrf", bootstrap=0), fits_path)
    csv = tmp_path / "limits.csv"
    csv.write_text("language,max_pairs,held_pairs,price_per_pair\nde,20000,3000,0.05\nhi,20000,5034,\nsw,20000,1000,0.08\n")
    out = tmp_path / "allocation.csv"
    code = main(["allocate", str(fits_path), "--budget", "1000", "--unit", "money", "--limits", str(csv), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "'hi' has no price per pair" in err and "price_per_pair column" in err
    assert "Traceback" not in err and not out.exists()


def test_the_cli_plans_a_purchase_from_the_limits_table(tmp_path, capsys):
    fits_path = tmp_path / "fits.json"
    save_fits(fit_runs(runs_table(), "chrf", bootstrap=0), fits_path)
    csv = tmp_path / "limits.csv"
    csv.write_text("language,max_pairs,held_pairs,price_per_pair\nde,20000,3000,0.05\nhi,20000,5034,0.10\nsw,20000,1000,0.08\n")
    out = tmp_path / "allocation.csv"
    code = main(["allocate", str(fits_path), "--budget", "1500", "--unit", "money", "--currency", "EUR",
                 "--limits", str(csv), "--risk", "mean", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    table = read_allocation(out)
    price = table.language.map(PRICES)
    assert (table.pairs * price).sum() <= 1500 + 1e-9
    assert list(table.to_buy) == [max(p - HELD[lang], 0) for lang, p in zip(table.language, table.pairs)]
    assert "to buy:" in printed and "EUR" in printed


# ------------------------------------------------------------------------------------------------
# planner data stats: the pilot data a sweep needs, and caps above the pool


def _corpus(tmp_path, n=40):
    return write_jsonl(tmp_path / "pairs.jsonl", [{"en": english(i), "de": german(i)} for i in range(n)])


def test_data_stats_with_a_cap_above_the_pool_prints_the_pilot_need(tmp_path, capsys):
    data = {"source": str(_corpus(tmp_path)), "test_size": 5}
    budget = {"unit": "money", "currency": "EUR", "languages": {"de": {"max_pairs": 20_000, "price_per_pair": 0.25}}}
    config = write_config(tmp_path, data, ["de"], [10, 20], budget=budget)
    code, out, err = run_cli(capsys, "data", "stats", "--config", config)
    assert code == 0, err
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("de ") and "20,000" in ln)
    # held (train + test), pilot need (largest run 20 + test 5), pool, cap, beyond the pool, price, its cost
    assert row == ["de", "40", "25", "35", "20,000", "19,965", "0.25", "4,991.25"]
    assert "largest run (20 pairs, sweep.sizes) + the test split" in out
    assert "budget: 200,000.00 EUR" in out


def test_data_stats_names_the_key_that_asks(tmp_path, capsys):
    data = {"source": str(_corpus(tmp_path)), "test_size": 5}
    config = write_config(tmp_path, data, ["de"], [10, 50])
    code, out, err = run_cli(capsys, "data", "stats", "--config", config)
    message = " ".join(err.split())
    assert code == 2 and "de (German) has 35 but needs 50" in message and "sweep.sizes" in message

    budget = {"unit": "money", "languages": {"de": {"max_pairs": 100}}}
    config = write_config(tmp_path, data, ["de"], [10], budget=budget)
    code, out, err = run_cli(capsys, "data", "stats", "--config", config)
    message = " ".join(err.split())
    assert code == 2 and "budget.languages.de.price_per_pair is not set" in message and "Traceback" not in err


def test_the_pipeline_limits_hold_the_pool_and_price_the_rest(tmp_path):
    from core.config import PlannerConfig
    from planner.budget import allocation_limits

    cfg = PlannerConfig.model_validate({"languages": ["de", "hi"], "budget": {"unit": "money", "languages": {
        "de": {"max_pairs": 20_000, "price_per_pair": 0.05}, "hi": {"price_per_pair": 0.1}}}})
    limits = allocation_limits(cfg, {"de": 3_000, "hi": 5_034})
    assert limits["de"] == LanguageLimits(max_pairs=20_000, weight=1.0, price_per_pair=0.05, held_pairs=3_000)
    assert limits["hi"].max_pairs == 5_034 and limits["hi"].held_pairs == 5_034
    cfg = PlannerConfig.model_validate({"languages": ["de", "hi"], "budget": {"unit": "money", "languages": {
        "de": {"price_per_pair": 0.05}}}})
    with pytest.raises(UserError, match="budget.languages.hi.price_per_pair is not set"):
        allocation_limits(cfg, {"de": 3_000, "hi": 5_034})


def test_the_pipeline_summary_names_the_pairs_to_buy():
    from planner.pipeline import _purchase_summary

    plan = allocate(point_fits(), budget=1_500, unit="money", limits=purchase_limits(), risk="mean", currency="EUR")
    text = _purchase_summary(plan)
    assert f"to buy {plan.to_buy:,.0f} pairs ({plan.to_buy_cost:,.2f} EUR) beyond the pools" in text
    held = {k: LanguageLimits(max_pairs=CAP, price_per_pair=PRICES[k]) for k in TRUTH}  # held = cap: none to buy
    assert _purchase_summary(allocate(point_fits(), budget=1_500, unit="money", limits=held, risk="mean")) == ""
