"""The transfer-aware plan's predicted intervals carry the law's extrapolation error beyond where its model
was measured (planner.allocation.transfer, planner.allocation.risk): the τ model reads each posterior draw
at its own effective pairs, and an in-mixture curve was measured only up to the most own data a language
had in a mixture run. Only intervals move: the plan's pairs and predicted points stay where they were."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fits import fit_runs
from fits.extrapolation import Extrapolation
from planner.allocation import allocate, build_problem
from planner.allocation.risk import predictive_draws
from planner.allocation.transfer import _predictive_interval, mixture_problem

from test_mixture_curves import INSIDE, MIXTURES, TPP, _runs  # noqa: E402

# Mixture runs stop at 150 own pairs (with leave-one-out runs, so the in-mixture curves are fitted); the
# per-language proxy runs go up to 800.
SMALL = {"uniform-50": {lang: 50 for lang in INSIDE}, "uniform-150": {lang: 150 for lang in INSIDE}}
SMALL.update({f"uniform-150-without-{out}": {lang: (0 if lang == out else 150) for lang in INSIDE} for out in INSIDE})


def _without_extrapolation(fitset):
    """The same fits with no extrapolation term: the plan's draws alone."""
    languages = {lang: replace(lf, extrapolation=None) for lang, lf in fitset.languages.items()}
    return replace(fitset, languages=languages)


def _width(t: dict) -> np.ndarray:
    return np.array([t["predicted_high"][lang] - t["predicted_low"][lang] for lang in INSIDE])


def test_the_tau_plan_beyond_the_largest_run_carries_the_extrapolation_error():
    """One mixture size: the τ model. Every language's effective pairs (its own 300 plus τ × the others'
    600) lie beyond its largest own proxy run (800), so each interval is wider than the draws alone give,
    while the plan and its points do not move."""
    fitset = fit_runs(_runs({"uniform-300": MIXTURES["uniform-300"]}, noise=0.3), "chrf", bootstrap=300, seed=0)
    assert all(lf.extrapolation is not None and lf.extrapolation.scale > 0.5 for lf in fitset.languages.values())
    with_term = allocate(fitset, budget=36_000, unit="tokens").transfer
    alone = allocate(_without_extrapolation(fitset), budget=36_000, unit="tokens").transfer
    assert with_term["model"] == "effective data (tau)"
    assert with_term["pairs"] == alone["pairs"] and with_term["predicted"] == alone["predicted"]
    assert (_width(with_term) > 1.3 * _width(alone)).all()
    for lang in INSIDE:  # symmetric about the curve: the point stays inside
        assert with_term["predicted_low"][lang] < with_term["predicted"][lang] < with_term["predicted_high"][lang]


def test_draws_read_at_their_own_pairs_are_widened_as_at_one_pairs():
    """`Extrapolation.widen_each` is `widen` read draw by draw: draw r at x_r gets what `widen` gives
    draw r when every draw is read at x_r; at equal pairs the (R, L) path equals the (L,) path exactly."""
    ext, draws = Extrapolation(2.0, 4), np.random.default_rng(0).normal(30.0, 0.5, 200)
    x = np.linspace(50.0, 900.0, 200)  # from inside the largest run (100) to 2.2 e-folds beyond it
    got = ext.widen_each(draws, x, 100.0, "el")
    one_at_a_time = np.array([ext.widen(draws, xr, 100.0, "el")[r] for r, xr in enumerate(x)])
    np.testing.assert_allclose(got, one_at_a_time, rtol=0, atol=1e-12)
    assert (got[x <= 100.0] == draws[x <= 100.0]).all() and np.abs(got - draws)[x > 300.0].max() > 1.0

    problem = build_problem(fit_runs(_runs(noise=0.3), "chrf", bootstrap=100, seed=0), 36_000, "tokens")
    pairs = np.array([2000.0, 400.0, 3000.0])  # el, tr beyond the largest run (800), hi inside it
    one_row = predictive_draws(problem, pairs)
    np.testing.assert_array_equal(predictive_draws(problem, np.broadcast_to(pairs, problem.draws.shape)), one_row)
    plain = predictive_draws(replace(problem, extrapolation=None), pairs)
    assert np.std(one_row[:, 0]) > 1.3 * np.std(plain[:, 0]) and (one_row[:, 1] == plain[:, 1]).all()


def test_an_in_mixture_plan_between_the_mixture_runs_and_the_own_runs_is_widened():
    """The in-mixture curves were measured up to 150 own pairs: at 400 pairs (inside the own runs, 800)
    their prediction already extrapolates, and its interval says so. Fitted on tokens: the sizes are
    converted to pairs."""
    fitset = fit_runs(_runs(SMALL, noise=0.05), "chrf", x="tokens", bootstrap=100, seed=0)
    fits = [fitset.transfer[lang].mixture_fit for lang in INSIDE]
    problem = build_problem(fitset, 36_000, "tokens")
    np.testing.assert_allclose(problem.largest_run, [800.0] * 3)
    assert max(fits[0].sizes) == 150 * TPP
    inside = mixture_problem(problem, fitset, fits)
    np.testing.assert_allclose(inside.largest_run, [150.0] * 3)

    pairs, zero = np.full(3, 400.0), np.zeros(3)
    low, high = _predictive_interval(inside, zero, pairs, 0.9)
    plain_low, plain_high = _predictive_interval(replace(inside, extrapolation=None), zero, pairs, 0.9)
    assert ((high - low) > 1.3 * (plain_high - plain_low)).all()
    # the one-row path (the plan's own intervals) starts there too
    assert np.std(predictive_draws(inside, pairs)[:, 0]) > 1.3 * np.std(
        predictive_draws(replace(inside, extrapolation=None), pairs)[:, 0])
    # at the largest mixture run there is nothing to widen
    at = np.full(3, 150.0)
    np.testing.assert_array_equal(_predictive_interval(inside, zero, at, 0.9),
                                  _predictive_interval(replace(inside, extrapolation=None), zero, at, 0.9))


@pytest.mark.parametrize("proxy_scale", [0.5, 50.0])
def test_an_in_mixture_curve_takes_the_larger_extrapolation_error(proxy_scale):
    """The proxy fits' pooled error, or the in-mixture fit's own backtest where it has one and it is larger."""
    fitset = fit_runs(_runs(SMALL, noise=0.05), "chrf", bootstrap=100, seed=0)
    fits = [fitset.transfer[lang].mixture_fit for lang in INSIDE]
    own = fits[0].extrapolation.scale
    assert 0.5 < own < 50.0
    problem = build_problem(fitset, 36_000, "tokens")
    problem = replace(problem, extrapolation=(Extrapolation(proxy_scale, 3),) * 3)
    got = [e.scale for e in mixture_problem(problem, fitset, fits).extrapolation]
    assert got == [max(own, proxy_scale)] * 3
    # no backtest of its own: the proxy fits' error
    bare = [replace(f, extrapolation=None) for f in fits]
    assert [e.scale for e in mixture_problem(problem, fitset, bare).extrapolation] == [proxy_scale] * 3
