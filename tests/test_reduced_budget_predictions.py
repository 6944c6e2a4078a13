"""The reduced-budget plan (the plan at the budget where it matches uniform, `final.reduced_budget`) is
predicted, with its predictive interval, on the plan's own model: on in-mixture curves when the plan was made
on them, not on the languages' own curves (another model, which the launch used before)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fits import fit_runs, save_fits
from planner.allocation import allocate
from planner.allocation.io import write_allocation
from planner.allocation.problem import build_problem
from planner.allocation.risk import predictive_draws, quantiles
from planner.allocation.transfer import in_mixture_problem
from planner.launch import REDUCED, _interval, load_allocation_inputs, mixtures_from_allocation
from test_mixture_curves import INSIDE, TPP, _runs  # the in-mixture truth world of the plan's own tests

BUDGET = 36_000.0  # tokens
LEVEL, SEED = 0.8, 3  # not the defaults, so a prediction made at the defaults would not match


@pytest.fixture(scope="module")
def fitset():
    return fit_runs(_runs(noise=0.3), "chrf", bootstrap=200, seed=0)


@pytest.fixture(scope="module")
def planned(fitset):
    return allocate(fitset, budget=BUDGET, unit="tokens", interval=LEVEL, seed=SEED)


def _x(fitset, pairs: float) -> float:
    return pairs * {"pairs": 1.0, "tokens": TPP}[fitset.x]


def test_the_reduced_plan_is_predicted_on_the_in_mixture_curves(fitset, planned):
    assert planned.curves == "in-mixture curves" and planned.risk == "expected"
    assert planned.reduced_pairs and 0 < planned.budget_saved < 1
    assert set(planned.reduced_predicted) == set(INSIDE)
    for lang, pairs in planned.reduced_pairs.items():
        x = _x(fitset, pairs)
        # risk expected: the mean over the in-mixture fit's draws, as the plan's own predictions
        in_mixture = float(np.mean(fitset.transfer[lang].mixture_fit.predict_draws(x)))
        assert planned.reduced_predicted[lang] == pytest.approx(in_mixture, abs=1e-9)
        assert abs(planned.reduced_predicted[lang] - float(fitset.languages[lang].predict(x))) > 1.0, lang
    # ... and on the point in-mixture fits under risk mean
    mean = allocate(fitset, budget=BUDGET, unit="tokens", risk="mean", interval=LEVEL, seed=SEED)
    for lang, pairs in mean.reduced_pairs.items():
        got = float(fitset.transfer[lang].mixture_fit.predict(_x(fitset, pairs)))
        assert mean.reduced_predicted[lang] == pytest.approx(got, abs=1e-9)


def test_the_reduced_plans_interval_is_the_baselines_rule_on_the_plans_model(fitset, planned):
    problem = in_mixture_problem(build_problem(fitset, BUDGET, "tokens"), fitset)
    assert problem is not None

    def interval(pairs: dict[str, float]):
        row = np.array([pairs[lang] for lang in problem.languages])
        low, high = quantiles(predictive_draws(problem, row, SEED), LEVEL)
        return dict(zip(problem.languages, low)), dict(zip(problem.languages, high))

    # The rule reproduces the uniform baseline's stored interval on this problem ...
    uniform = planned.baselines["uniform"]
    low, high = interval(uniform.pairs)
    assert uniform.predicted_low == pytest.approx(low, abs=1e-9) and uniform.predicted_high == pytest.approx(high, abs=1e-9)
    # ... and the reduced plan's, at its own pairs
    low, high = interval(planned.reduced_pairs)
    assert planned.reduced_predicted_low == pytest.approx(low, abs=1e-9)
    assert planned.reduced_predicted_high == pytest.approx(high, abs=1e-9)
    for lang, pred in planned.reduced_predicted.items():
        assert planned.reduced_predicted_low[lang] < pred < planned.reduced_predicted_high[lang], lang
    # not the full plan's interval: the reduced plan has fewer pairs, so some language is predicted lower
    full = {r.language: r for r in planned.languages}
    assert any(planned.reduced_predicted_high[lang] < full[lang].predicted_high for lang in INSIDE)


def _written(tmp_path, fitset, planned, drop=()):
    """allocation.csv, its summary (less `drop`) and fits.json on disk, read back as the launch reads them."""
    csv = write_allocation(planned, tmp_path / "allocation.csv")[0]
    save_fits(fitset, tmp_path / "fits.json")
    summary_file = tmp_path / "allocation_summary.json"
    summary = json.loads(summary_file.read_text())
    for key in drop:
        summary.pop(key)
    summary_file.write_text(json.dumps(summary))
    return load_allocation_inputs(csv, None)


def test_the_launch_trains_the_reduced_plan_with_the_stored_predictions(tmp_path, fitset, planned):
    allocation, summary, fits = _written(tmp_path, fitset, planned)
    mixture = {m.name: m for m in mixtures_from_allocation(allocation, summary, [REDUCED], fits, LEVEL)}[REDUCED]
    assert mixture.pairs == {lang: int(round(p)) for lang, p in planned.reduced_pairs.items()}
    assert mixture.predicted == pytest.approx(planned.reduced_predicted)
    assert mixture.predicted_low == pytest.approx(planned.reduced_predicted_low)
    assert mixture.predicted_high == pytest.approx(planned.reduced_predicted_high)
    for lang in INSIDE:
        assert mixture.predicted_low[lang] < mixture.predicted[lang] < mixture.predicted_high[lang]


def test_an_older_summary_without_them_predicts_on_the_own_curves_as_before(tmp_path, fitset, planned):
    keys = ("reduced_predicted", "reduced_predicted_low", "reduced_predicted_high")
    allocation, summary, fits = _written(tmp_path, fitset, planned, drop=keys)
    assert not set(keys) & set(summary)
    mixture = {m.name: m for m in mixtures_from_allocation(allocation, summary, [REDUCED], fits, LEVEL)}[REDUCED]
    for lang, pairs in mixture.pairs.items():
        own = fits.languages[lang]
        assert mixture.predicted[lang] == pytest.approx(float(own.predict(_x(fits, pairs))))
        assert (mixture.predicted_low[lang], mixture.predicted_high[lang]) == pytest.approx(_interval(fits, lang, pairs, LEVEL))
        assert abs(mixture.predicted[lang] - planned.reduced_predicted[lang]) > 1.0  # the other model


def test_without_a_reduced_plan_the_new_keys_are_empty(fitset):
    result = allocate(fitset, budget=BUDGET, unit="tokens", objective="maxmin")
    summary = result.summary()
    assert summary["reduced_pairs"] is None
    assert all(summary[k] is None for k in ("reduced_predicted", "reduced_predicted_low", "reduced_predicted_high"))
