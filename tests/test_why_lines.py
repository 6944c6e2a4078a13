"""The plan's why-lines give the true reason for every objective × budget unit, on problems built so that the
true reason is known: a price reason only where prices differ in the budget's unit, the common level under
maxmin (a language above it gets nothing and says so), the target and its confidence under target."""

from __future__ import annotations

import numpy as np
import pytest

from fits.laws import Curve
from planner.allocation import LanguageLimits, allocate
from test_allocation_plan import fitset, jittered

UNITS = {"pairs": 3_000.0, "tokens": 3_000.0 * 30, "money": 3_000.0 * 0.05}
SUM_ONLY = ("steeper", "flatter", "near its ceiling", "close to the median")


def offset(c, a, al, x0):
    return Curve("power", {"offset": c, "scale": a, "alpha": al, "x0": x0})


def why(plan) -> dict[str, str]:
    return {p.language: p.why for p in plan.languages}


def priced(prices: dict[str, float], **extra) -> dict[str, LanguageLimits]:
    return {k: LanguageLimits(price_per_pair=v, **extra) for k, v in prices.items()}


@pytest.mark.parametrize("unit", list(UNITS))
def test_sum_names_a_price_only_where_the_budget_prices_pairs_differently(unit):
    """Identical curves; `cheap` costs a quarter of `dear` in tokens per pair AND in money. Under pairs every
    pair costs 1: no price is a reason. Under tokens or money the cheap language's price is."""
    curve = Curve("power", {"offset": 60.0, "scale": 400.0, "alpha": 0.5})
    fits = fitset({"cheap": curve, "dear": curve}, tpp={"cheap": 12.0, "dear": 48.0})
    plan = allocate(fits, UNITS[unit], unit, priced({"cheap": 0.02, "dear": 0.08}), risk="mean")
    lines = why(plan)
    if unit == "pairs":
        assert all("cheaper" not in w and "pricier" not in w for w in lines.values()), lines
        assert all(w.startswith("the same as an equal share") for w in lines.values()), lines
    elif unit == "tokens":
        assert "cheaper tokens (12 per pair, median 30)" in lines["cheap"], lines
        assert "pricier tokens (48 per pair, median 30)" in lines["dear"], lines
        assert "USD" not in lines["cheap"] + lines["dear"]
    else:
        assert "cheaper pairs (0.02 USD per pair, median 0.05)" in lines["cheap"], lines
        assert "pricier pairs (0.08 USD per pair, median 0.05)" in lines["dear"], lines
        assert "tokens (" not in lines["cheap"] + lines["dear"]


@pytest.mark.parametrize("unit", list(UNITS))
def test_sum_names_the_steeper_curve_and_the_weight(unit):
    """Same price everywhere, so the curve and the weight are the only reasons."""
    fits = fitset({"steep": Curve("power", {"offset": 70.0, "scale": 900.0, "alpha": 0.5}),
                   "flat": Curve("power", {"offset": 70.0, "scale": 100.0, "alpha": 0.5}),
                   "mid": Curve("power", {"offset": 70.0, "scale": 300.0, "alpha": 0.5})},
                  tpp=dict.fromkeys(("steep", "flat", "mid"), 30.0))
    limits = priced(dict.fromkeys(("steep", "flat", "mid"), 0.05))
    limits["mid"] = LanguageLimits(price_per_pair=0.05, weight=3.0)
    plan = allocate(fits, UNITS[unit], unit, limits, risk="mean")
    lines = why(plan)
    assert "steeper curve" in lines["steep"] and "flatter curve" in lines["flat"], lines
    assert "weight 3 (default 1)" in lines["mid"], lines
    assert "weight" not in lines["steep"] + lines["flat"]
    assert not any(word in w for w in lines.values() for word in ("cheaper", "pricier")), lines


def zero_shot_fits():
    """es scores 60 zero-shot (an offset curve), far above where tr and hi start (20 and 25)."""
    curves = {"es": offset(80.0, 400.0, 0.5, 400.0), "tr": offset(60.0, 400.0, 0.5, 100.0),
              "hi": offset(55.0, 300.0, 0.5, 100.0)}
    return fitset(curves, tpp={"es": 25.0, "tr": 30.0, "hi": 35.0})


@pytest.mark.parametrize("unit", list(UNITS))
def test_maxmin_says_a_language_gets_nothing_because_it_is_already_above_the_common_level(unit):
    limits = priced({"es": 0.04, "tr": 0.05, "hi": 0.06})
    plan = allocate(zero_shot_fits(), UNITS[unit], unit, limits, objective="maxmin", risk="mean",
                    smallest_run_floor="never")
    pairs, lines = {p.language: p.pairs for p in plan.languages}, why(plan)
    assert pairs["es"] == 0 and plan.level < 60
    assert lines["es"].startswith("0.00× an equal share: already above the common level: with no pairs (its "
                                  "zero-shot score) it is predicted 60 chrf"), lines["es"]
    for lang in ("tr", "hi"):
        assert f"raised to the common level {plan.level:.3g} chrf" in lines[lang], lines[lang]
    assert not any(word in w for w in lines.values() for word in SUM_ONLY + ("cheaper", "pricier")), lines


@pytest.mark.parametrize("unit", list(UNITS))
def test_maxmin_says_a_capped_language_stays_below_the_level(unit):
    limits = priced({"es": 0.04, "tr": 0.05, "hi": 0.06})
    limits["hi"] = LanguageLimits(price_per_pair=0.06, max_pairs=50)
    plan = allocate(zero_shot_fits(), UNITS[unit], unit, limits, objective="maxmin", risk="mean",
                    smallest_run_floor="never")
    hi = next(p for p in plan.languages if p.language == "hi")
    assert hi.pairs == 50 and hi.predicted < plan.level
    assert "capped at 50 pairs (max_pairs × max_epochs), where it is predicted" in hi.why, hi.why
    assert "short of the worst language's level" in hi.why or "short of the common level" in hi.why


@pytest.mark.parametrize("unit", list(UNITS))
def test_target_names_the_target_and_the_confidence(unit):
    rng = np.random.default_rng(1)
    curves = {"de": Curve("power", {"offset": 70.0, "scale": 400.0, "alpha": 0.5}),
              "sw": Curve("power", {"offset": 60.0, "scale": 900.0, "alpha": 0.6})}
    fits = fitset(curves, {k: jittered(c, rng) for k, c in curves.items()}, tpp={"de": 20.0, "sw": 30.0})
    limits = priced({"de": 0.05, "sw": 0.08})
    limits["de"] = LanguageLimits(price_per_pair=0.05, min_pairs=2_000)  # its floor already reaches 55
    plan = allocate(fits, 1e7, unit, limits, objective="target", targets={"de": 55.0, "sw": 50.0},
                    target_confidence=0.9)
    lines = why(plan)
    assert "the fewest pairs at which 90% of the fits' draws reach its target of 50 chrf" in lines["sw"], lines
    assert "its floor of 2,000 pairs already reaches its target of 55 chrf" in lines["de"], lines
    assert not any(word in w for w in lines.values() for word in SUM_ONLY + ("cheaper", "pricier", "common level"))
    point = allocate(fits, 1e7, unit, limits, objective="target", targets={"de": 55.0, "sw": 50.0}, risk="mean")
    assert "the fewest pairs at which its fitted curve reaches its target of 50 chrf" in why(point)["sw"]
