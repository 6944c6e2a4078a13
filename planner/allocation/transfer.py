"""The transfer-aware plan: every language also learns from the others' data in the mixture.

With the effective-data law of `fits.transfer`, language l trained in a mixture reads its curve at

    X_l = k_l·p_l + τ_l·Σ_{j≠l} k_j·p_j        (k: fitted units per pair — 1, or tokens per pair)

so the objective Σ_l w_l·u_l(X_l/k_l) couples the languages and the separable KKT solver no longer
applies. For τ ≥ 0 it is still concave in the pairs (a concave curve of an affine map), so any local
optimum is global: SLSQP on the budget shares, from the separable optimum, with the exact gradient

    ∂/∂p_j = k_j·[G_j/k_j·(1 − τ_j) + Σ_l τ_l·G_l/k_l],   G_l = w_l·u_l'(X_l/k_l)

(averaged over the posterior draws, each with its own τ draw, when planning under the posterior). With
every τ = 0 it returns the separable optimum (tested against `solver.solve_sum`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import minimize

from fits.extrapolation import Extrapolation
from planner.allocation.curves import CurveBank
from planner.allocation.problem import IN_MIXTURE, floors_where_measured, language_draws, run_noise
from planner.allocation.risk import predictive_draws, quantiles
from planner.allocation.solver import round_pairs


def effective_pairs(pairs: np.ndarray, tau: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(…, L) effective own pairs: p_l + τ_l·Σ_{j≠l} k_j·p_j / k_l (τ broadcast against leading axes)."""
    weighted = pairs * k
    others = weighted.sum(-1, keepdims=True) - weighted
    return pairs + tau * others / k


def transfer_utility(bank: CurveBank, tau: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Per-language utility (mean over the bank's draws when it has a draw axis) with transfer."""
    u = bank.utility(effective_pairs(pairs, tau, bank.x_per_pair))
    return u.mean(0) if u.ndim > 1 else u


def solve_transfer(bank: CurveBank, tau: np.ndarray, cost: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   weights: np.ndarray, budget: float, start: np.ndarray) -> np.ndarray:
    """Real-valued pairs maximising Σ w·u(effective pairs) within the budget and bounds.

    `bank` is (L,) point curves or (R, L) draws; `tau` is (L,) or (R, L) paired with the draws."""
    k = bank.x_per_pair
    tau = np.where(np.isfinite(tau), tau, 0.0)
    scale = budget / cost  # pairs per unit share

    def parts(q):
        p = np.maximum(q * scale, 0.0)
        eff = effective_pairs(p, tau, k)
        return p, eff

    def negative(q):
        p, eff = parts(q)
        u = bank.utility(eff)
        return -float(np.sum(weights * (u.mean(0) if u.ndim > 1 else u)))

    def gradient(q):
        _, eff = parts(q)
        g = weights * bank.marginal(eff)  # G_l·… per pair of l: (…, L)
        carried = (tau * g / k).sum(-1, keepdims=True)
        dp = k * (g / k * (1.0 - tau) + carried)
        dp = dp.mean(0) if dp.ndim > 1 else dp
        return -dp * scale

    lo_q, hi_q = lo / scale, np.where(np.isfinite(hi), hi / scale, None)
    q0 = np.clip(start / scale, lo_q, np.where(np.isfinite(hi), hi / scale, np.inf))
    res = minimize(
        negative, q0, jac=gradient, method="SLSQP",
        bounds=list(zip(lo_q, hi_q)),
        constraints=[{"type": "ineq", "fun": lambda q: 1.0 - q.sum(), "jac": lambda q: -np.ones_like(q)}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    # Never worse than the separable start, unless the start breaks the budget (clipped up to the floors)
    q = res.x if negative(res.x) <= negative(q0) or q0.sum() > 1.0 + 1e-9 else q0
    return np.clip(q * scale, lo, hi)


def transfer_plan(problem, fitset, risk: str, start: np.ndarray, uniform_pairs: np.ndarray,
                  level: float = 0.9) -> dict | None:
    """The transfer-aware plan for a sum objective on the per-language curves with the effective-data law
    D_l + τ_l·D_other, as the allocation summary stores it (None without any transfer estimate; languages
    without mixture runs get τ = 0). Where every language has an in-mixture curve the plan itself is made on
    those instead (`in_mixture_problem`). Predicted intervals come from the same model's draws, with the law's
    extrapolation error beyond where that model was measured, plus one run's noise (as the plan's own)."""
    if not fitset.transfer:
        return None
    langs = problem.languages
    model = "effective data (tau)"
    tau_point = np.array([fitset.transfer[lang].tau if lang in fitset.transfer else 0.0 for lang in langs])
    tau_draws = None
    if problem.draws is not None and all(
            fitset.transfer.get(lang) is None or fitset.transfer[lang].draws is not None for lang in langs):
        r = problem.draws.shape[0]
        tau_draws = np.stack([np.asarray(fitset.transfer[lang].draws, float)[:r] if lang in fitset.transfer
                              else np.zeros(r) for lang in langs], axis=-1)
    lo = design_floors(problem, [fitset.transfer[lang].own_min if lang in fitset.transfer else 0.0 for lang in langs])
    use_draws = risk == "expected" and problem.draws is not None and tau_draws is not None
    bank, tau = (problem.draws, tau_draws) if use_draws else (problem.curves, tau_point)
    exact = solve_transfer(bank, tau, problem.cost, lo, problem.hi, problem.weights, problem.budget, start)
    pairs = round_pairs(exact, problem.cost, lo, problem.hi, problem.budget)

    def predicted(p):
        return problem.sign * transfer_utility(bank, tau, p)

    plan_pred, uni_pred = predicted(pairs), predicted(uniform_pairs)
    low, high = _predictive_interval(problem, tau_draws, pairs, level)
    return {
        "model": model,
        "pairs": dict(zip(langs, map(float, pairs))),
        "predicted": dict(zip(langs, map(float, plan_pred))),
        "predicted_low": dict(zip(langs, map(float, low))),
        "predicted_high": dict(zip(langs, map(float, high))),
        "objective_value": float(np.sum(problem.weights * plan_pred)),
        "uniform_objective_value": float(np.sum(problem.weights * uni_pred)),
        "tau": {lang: float(fitset.transfer[lang].tau) for lang in langs if lang in fitset.transfer},
        "floors": dict(zip(langs, map(float, lo))),
    }


def in_mixture_problem(problem, fitset):
    """`problem` on the languages' in-mixture curves when the fits have one for every planned language, else
    None. A plan is trained as one mixture, and these curves measured each language inside one: on the
    default's five-seed truth test, 90% intervals from them held 88% of the 40 final scores, against 15%
    from the languages' own curves, which missed the others' data (benchmarks/results/mixture_calibration.md)."""
    inside = [fitset.transfer[lang].mixture_fit if lang in fitset.transfer else None for lang in problem.languages]
    if any(f is None for f in inside):
        return None
    return replace(mixture_problem(problem, fitset, inside), notes=problem.notes + (
        "planned and predicted on in-mixture curves: each language's curve fitted on its scores inside the mixture "
        "proxy runs, as the final run trains it (the transfer-aware plan is this plan)",))


def curve_fits(problem, fitset):
    """The fit set whose curves `problem` plans on: `fitset`, or its in-mixture fits as the languages' fits."""
    if problem.model != IN_MIXTURE:
        return fitset
    return _as_languages(fitset, problem.languages, [fitset.transfer[lang].mixture_fit for lang in problem.languages])


def _as_languages(fitset, languages, fits):
    """`fitset` with `fits` as its languages' fits (no population prior: each stands alone)."""
    return replace(fitset, languages=dict(zip(languages, fits)), population={})


def mixture_problem(problem, fitset, fits):
    """`problem` with each language's curve and draws taken from its in-mixture fit, by the rules
    `build_problem` applies to the per-language fits (draws cut to a common count, the point fit where a
    language has none). The run noise is the larger of the proxy runs' (the per-language fits', pooled
    where they are) and the in-mixture fit's residual RMS: an in-mixture curve rests on a handful of rows,
    so its residuals understate one run's scatter (its 90% intervals held 60% of 48 trained final scores
    on the second ledger, 98% with the proxy runs' noise; `benchmarks/mixture_backtest.py`).

    Extrapolation starts at the most own data the language had in a mixture run (its in-mixture fit's
    largest size), not at its largest own proxy run: the in-mixture curve was measured up to there only."""
    inside = _as_languages(fitset, problem.languages, fits)
    k = problem.curves.x_per_pair
    draw_curves = language_draws(inside, problem.languages, [])
    own = problem.extrapolation or (None,) * len(fits)
    return replace(problem, model=IN_MIXTURE, curves=CurveBank.from_curves([f.curve for f in fits], k),
                   draws=None if draw_curves is None else CurveBank.from_curves(draw_curves, k),
                   noise=_larger_noise(problem.noise, run_noise(inside, problem.languages)),
                   largest_run=np.array([max(f.sizes) if f.sizes else np.nan for f in fits], float) / k,
                   extrapolation=tuple(_larger_extrapolation(e, f.extrapolation) for e, f in zip(own, fits)))


def _larger_extrapolation(proxy: Extrapolation | None, inside: Extrapolation | None) -> Extrapolation | None:
    """The law's error per e-fold for an in-mixture curve: the proxy fits' (pooled over the languages'
    backtests of the same law and recipe), or the in-mixture fit's own where it has a backtest and it is
    larger. Not the in-mixture one alone: it rests on the few mixture sizes (two, the usual design, give
    none), and those rows' residuals already understated one run's noise (above), so the larger is kept
    as for the noise."""
    if proxy is None or (inside is not None and inside.scale > proxy.scale):
        return inside
    return proxy


def _larger_noise(proxy, inside: np.ndarray) -> np.ndarray:
    """Per language, the larger known run noise (NaN only where neither is known)."""
    return inside if proxy is None else np.fmax(np.asarray(proxy, float), inside)


def _predictive_interval(problem, tau_draws, pairs: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Central `level` interval of one run's metric per language at `pairs` under the plan's own model:
    every posterior draw read at its effective pairs (with its τ) and widened there by the law's
    extrapolation error, plus the run noise; NaN without draws."""
    if problem.draws is None or tau_draws is None:
        return np.full(len(problem.languages), np.nan), np.full(len(problem.languages), np.nan)
    eff = effective_pairs(np.asarray(pairs, float)[None, :], np.atleast_2d(tau_draws), problem.draws.x_per_pair)
    return quantiles(predictive_draws(problem, np.broadcast_to(eff, problem.draws.shape)), level)


def design_floors(problem, least_own) -> np.ndarray:
    """Lower bounds that keep the transfer-aware plan where its model was measured: each language gets at
    least the least own data (fit units) its model rests on. For τ that is its smallest mixture run with
    own data (τ says nothing about a language left with none: in this project's truth test such a plan
    gave Hindi 0 own pairs and it scored 2 chrF *below* its zero-shot point; leave-one-out runs confirmed
    it, the others' data alone moving a language −1.5 to +0.2 chrF from zero-shot, so for τ they check
    the floor rather than lower it). (A plan on in-mixture curves is floored by `measured_floors` on
    `curve_fits` instead: 0 where leave-one-out rows measured a language with none of its own.) Dropped when
    the floors alone exceed the budget."""
    lo = floors_where_measured(problem, least_own)
    return problem.lo if lo is None else lo
