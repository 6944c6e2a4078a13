"""The plan's floor at each language's smallest run (`smallest_run_floor`), at its edges: a budget that only pays the floors, caps
below them, token units, notes, and the transfer-aware plan (which keeps its own floors). Each test failed
on the floor's first version."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from fits import fit_runs
from fits.laws import Curve
from planner.allocation import LanguageLimits, allocate
from test_allocation_plan import TRUTH, by_lang, fitset, language_fit, power, truth_fits  # noqa: F401 (fixture)
import test_transfer


def test_a_budget_that_exactly_pays_the_smallest_runs_is_planned(truth_fits):
    """3 languages × smallest run 250 = 750 pairs: the floors take the whole budget (solve_sum could not
    bracket λ and raised)."""
    plan = allocate(truth_fits, budget=750, unit="pairs", smallest_run_floor="always")
    assert by_lang(plan) == {"de": 250.0, "hi": 250.0, "sw": 250.0}


def test_a_cap_below_the_smallest_run_is_still_reported_as_a_cap(truth_fits):
    """de capped at 100 pairs (< its smallest run, 250): its cap is its bound (a floor of min(250, cap) had
    it reported as held at its floor, with a note calling 100 pairs its smallest run)."""
    plan = allocate(truth_fits, budget=9000, unit="pairs", limits={"de": LanguageLimits(max_pairs=100)},
                    smallest_run_floor="always")
    assert by_lang(plan)["de"] == 100
    assert plan.at_bound == {"de": "cap"}
    assert not any("100 pairs, its smallest run" in w for w in plan.warnings)


def test_the_non_improving_curve_note_names_the_floor_the_plan_keeps(truth_fits):
    """A log curve that falls with data is held at its smallest run (250 pairs); no note may say 0 pairs
    (build_problem's note is written before the measured floors are known)."""
    truth_fits.languages["hi"] = language_fit("hi", Curve("log", {"a": 40.0, "b": -1.0}), tpp=40.0)
    plan = allocate(truth_fits, budget=9000, unit="pairs", smallest_run_floor="always")
    assert by_lang(plan)["hi"] == 250
    assert not any("keeps it at its floor (0 pairs)" in w for w in plan.warnings)


def test_a_token_fit_floors_at_the_smallest_run_not_one_pair_above():
    """Sizes in tokens = 250 pairs × 17.208 tokens per pair; 250·17.208/17.208 = 250.00000000000003 and
    np.ceil makes the floor 251 pairs (the note then says 'kept at 251 pairs, its smallest run')."""
    tpp = {"de": 17.208, "hi": 37.48, "sw": 30.0}
    curves = {k: power(c, a * tpp[k] ** al, al) for k, (c, a, al, _) in TRUTH.items()}
    fs = fitset(curves, tpp=tpp, x="tokens")
    for k in fs.languages:
        fs.languages[k] = replace(fs.languages[k], sizes=[s * tpp[k] for s in (250.0, 500.0, 1000.0, 2000.0)])
    plan = allocate(fs, budget=9000, unit="pairs", objective="maxmin")
    assert by_lang(plan)["de"] == 250


def _tau_fits():
    """test_transfer's runs without leave-one-out mixtures (τ model when planned with inside_mixture=False,
    floors 300) and without the monolingual zero-shot rows (so the per-language curves' smallest run is 250
    pairs)."""
    runs = test_transfer._runs(noise=0.2)
    runs = runs[~runs["mixture"].fillna("").str.startswith("without-")]
    runs = runs[~(runs["mixture"].isna() & (runs["n_pairs"] == 0))]
    return fit_runs(pd.DataFrame(runs).astype(str), "chrf", bootstrap=0, seed=0)


def test_the_transfer_aware_plan_does_not_depend_on_the_plans_smallest_run_floor():
    """The transfer-aware plan keeps its own floors and starts from the plan without the per-language ones
    (it started from the floored plan, and its pairs moved: {el 391, hi 358} vs {el 404, hi 366})."""
    fs = _tau_fits()
    floored = allocate(fs, budget=20_000, unit="tokens", risk="mean", smallest_run_floor="always",
                       inside_mixture=False).transfer
    free = allocate(fs, budget=20_000, unit="tokens", risk="mean", smallest_run_floor="never",
                   inside_mixture=False).transfer
    assert floored["floors"] == free["floors"]
    assert floored["pairs"] == free["pairs"]


def test_the_transfer_aware_plan_stays_within_the_budget():
    """When the separable start lies below the transfer floors, clipping it up breaks the budget: the
    solver kept that start when SLSQP scored lower, and the plan spent 21,620 of 20,000 tokens."""
    fs = _tau_fits()
    for rule in ("always", "never"):
        t = allocate(fs, budget=20_000, unit="tokens", risk="mean", smallest_run_floor=rule,
                     inside_mixture=False).transfer
        assert sum(p * 20 for p in t["pairs"].values()) <= 20_000


def test_a_language_of_weight_zero_gets_no_floor_under_the_weighted_sum(truth_fits):
    plan = allocate(truth_fits, budget=9000, unit="pairs", limits={"hi": LanguageLimits(weight=0)},
                    smallest_run_floor="always")
    assert by_lang(plan)["hi"] == 0
    fair = allocate(truth_fits, budget=9000, unit="pairs", objective="maxmin", limits={"hi": LanguageLimits(weight=0)})
    assert by_lang(fair)["hi"] >= 250  # maxmin ignores weights: every language is floored
