"""What a proxy run is worth to the allocation: pure functions on arrays (no fits, no storage).

Beliefs about the curves are the fit's posterior draws: R draws per language held as a (R, L) `CurveBank`
(utility per pair, so the budget's prices and the fit's unit are already folded in), with weights (R, L)
that sum to 1 over each language's usable draws (`Beliefs`). The plan under beliefs maximises the expected
objective, Σ_k w_k·Ū_k(x_k) with Ū_k the weighted mean of language k's draws, subject to Σ_k c_k·x_k ≤ B
and lo ≤ x ≤ hi: what `budget.risk: expected` optimises.

The value of a run (language l, size n) is its expected value of sample information,

    EVSI = E_y[ max_a E[U(a) | y] ] − max_a E[U(a)] = E_y[ E[U(a_y) | y] − E[U(a*) | y] ],

a* the plan now and a_y the plan after seeing the run's outcome y. The second form holds because the
outcome is simulated from the beliefs themselves (E_y E[·|y] = E[·]); each of its terms is ≥ 0, so its
Monte Carlo estimate is far steadier than the difference of two large numbers. An outcome is simulated by
picking a draw j (with its weight) and adding noise, y = f_j(n) + σ·ε; the beliefs after it are the same
draws reweighted by the likelihood of y (importance reweighting instead of a refit: the draws already
are a sample of the posterior, and the population prior barely moves with one run).

Re-planning is the expensive part (hundreds of outcomes per candidate), so it works on tables: each
language's expected marginal gain per budget unit on a log grid of pairs (`Tables`), inverted by
interpolation, and the common multiplier λ found by bisection, as the exact solver does (all languages
not at a bound get the same marginal gain per unit of budget). The value of each plan is then computed
exactly from the draws, so the tables only decide *which* plan, never its score.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtri

from planner.allocation.curves import MIN_EVAL_PAIRS, CurveBank
from planner.allocation.solver import solve_sum

GRID_POINTS = 192  # pairs grid per language: log-spaced from the floor (≥ 1 pair) to what the budget buys
_BISECTIONS = 64  # on −log λ: the budget's spend to ~1e-12 relative


def first_draws(bank: CurveBank, n: int) -> CurveBank:
    """The first n draws of a (R, L) bank (draws are an i.i.d. posterior sample, so any n of them are)."""
    cut = {k: getattr(bank, k)[:n] for k in ("offset", "scale", "alpha", "x0", "a", "b")}
    return replace(bank, **cut)


@dataclass(frozen=True)
class Beliefs:
    """Posterior draws of every language's utility per pair and what the plan must respect."""

    bank: CurveBank  # (R, L)
    weights: np.ndarray  # (R, L): each usable language's column sums to 1, unusable draws weigh 0
    obj: np.ndarray  # (L,) objective weights
    cost: np.ndarray  # (L,) budget units per pair
    lo: np.ndarray  # (L,) floors in pairs
    hi: np.ndarray  # (L,) caps in pairs (inf: none)
    budget: float

    @classmethod
    def uniform(cls, bank: CurveBank, obj, cost, lo, hi, budget) -> "Beliefs":
        """Equal weight on every usable draw (increasing and concave, as `ExpectedCurves` keeps)."""
        ok = bank.concave_increasing()
        weights = np.where(ok, 1.0 / np.maximum(ok.sum(axis=0), 1), 0.0)
        arr = lambda v: np.asarray(v, dtype=float)
        return cls(bank, weights, arr(obj), arr(cost), arr(lo), arr(hi), float(budget))

    @property
    def n_languages(self) -> int:
        return self.weights.shape[1]

    def reweighted(self, lang: int, w: np.ndarray) -> "Beliefs":
        weights = self.weights.copy()
        weights[:, lang] = w
        return replace(self, weights=weights)

    def predict(self, lang: int, pairs) -> np.ndarray:
        """Each draw's metric at these pairs of one language: (R, len(pairs))."""
        pairs = np.atleast_1d(np.asarray(pairs, dtype=float))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self.bank.take(np.array([lang])).predict(pairs[None, :])  # (R, 1) params × (1, C) pairs


@dataclass(frozen=True)
class Tables:
    """Per language: a log grid of pairs, every draw's marginal utility on it, and −log of the expected
    marginal gain per budget unit (non-decreasing along the grid; +inf where a language has nothing to gain)."""

    log_p: np.ndarray  # (L, G)
    marginals: np.ndarray  # (G, R, L): d utility / d pair of every draw
    nld: np.ndarray  # (L, G): −log(w_k · E[u_k'(p)] / c_k)
    beliefs: Beliefs

    @classmethod
    def build(cls, beliefs: Beliefs) -> "Tables":
        b = beliefs
        p_min = np.maximum(b.lo, MIN_EVAL_PAIRS)
        p_max = np.maximum(np.minimum(b.hi, b.budget / b.cost), p_min * (1 + 1e-9))
        log_p = np.linspace(np.log(p_min), np.log(p_max), GRID_POINTS, axis=-1)  # (L, G)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            marginals = b.bank.marginal(np.exp(log_p).T[:, None, :])  # (G, R, L)
        marginals = np.where(np.isfinite(marginals) & (b.weights > 0), marginals, 0.0)
        expected = np.einsum("grl,rl->lg", marginals, b.weights)
        return cls(log_p, marginals, _nld(expected, b.obj, b.cost), beliefs)

    def rows_nld(self, lang: int, w_rows: np.ndarray) -> np.ndarray:
        """−log gain tables of one language under N alternative weightings (N, R) → (N, G)."""
        expected = w_rows @ self.marginals[:, :, lang].T
        b = self.beliefs
        return _nld(expected, b.obj[lang], b.cost[lang])


def _nld(expected: np.ndarray, obj, cost) -> np.ndarray:
    ratio = np.asarray(obj, dtype=float) / np.asarray(cost, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (ratio[..., None] if ratio.ndim else ratio) * expected
        nld = np.where(gain > 0, -np.log(gain), np.inf)
    # A mean of decreasing marginals decreases; rounding must not make the inversion non-monotone.
    return np.maximum.accumulate(nld, axis=-1)


def _x_shared(u: np.ndarray, log_p: np.ndarray, nld: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Pairs of one language at −log λ = u (any shape): where its gain per budget unit falls to λ."""
    if not np.isfinite(nld[0]):
        return np.full(np.shape(u), lo)
    finite = np.isfinite(nld)
    x = np.exp(np.interp(u, nld[finite], log_p[finite]))
    x = np.where(u < nld[0], lo, x)  # even the first pair gains less than λ
    return np.clip(x, lo, hi)


def _x_rows(u: np.ndarray, log_p: np.ndarray, nld_rows: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """`_x_shared` for N rows with their own tables (N, G), one u per row: vectorised interpolation."""
    g = nld_rows.shape[1]
    idx = np.clip((nld_rows <= u[:, None]).sum(axis=1), 1, g - 1)
    rows = np.arange(len(u))
    x0, x1 = nld_rows[rows, idx - 1], nld_rows[rows, idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(np.where(np.isfinite(x1) & (x1 > x0), (u - x0) / (x1 - x0), 1.0), 0.0, 1.0)
    t = np.where(np.isfinite(x0), t, 0.0)
    x = np.exp(log_p[idx - 1] + t * (log_p[idx] - log_p[idx - 1]))
    x = np.where(~np.isfinite(nld_rows[:, 0]) | (u < nld_rows[:, 0]), lo, x)
    return np.clip(x, lo, hi)


def solve_plan(tables: Tables, lang: int | None = None, nld_rows: np.ndarray | None = None) -> np.ndarray:
    """The plan under the tables' beliefs, (L,); or, with `lang` and its N alternative tables, the N plans
    in which only that language's beliefs differ, (N, L). Bisection on u = −log λ: spend rises with u."""
    b = tables.beliefs
    n = 1 if nld_rows is None else len(nld_rows)
    lens = range(b.n_languages)

    def pairs_at(u: np.ndarray) -> np.ndarray:
        cols = []
        for k in lens:
            if k == lang:
                cols.append(_x_rows(u, tables.log_p[k], nld_rows, b.lo[k], b.hi[k]))
            else:
                cols.append(_x_shared(u, tables.log_p[k], tables.nld[k], b.lo[k], b.hi[k]))
        return np.stack(cols, axis=-1)

    finite = [t[np.isfinite(t)] for t in list(tables.nld) + ([] if nld_rows is None else list(nld_rows))]
    finite = [t for t in finite if len(t)]
    if not finite:  # nothing can gain: every language at its floor
        out = np.broadcast_to(b.lo, (n, len(b.lo))).copy()
        return out if lang is not None else out[0]
    u_lo = np.full(n, min(t[0] for t in finite) - 1.0)
    u_hi = np.full(n, max(t[-1] for t in finite) + 1.0)
    spend = lambda u: pairs_at(u) @ b.cost
    under = spend(u_hi) <= b.budget * (1 + 1e-12)  # everything at its cap (or what the budget buys alone)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (u_lo + u_hi)
        ok = spend(mid) <= b.budget * (1 + 1e-12)
        u_lo, u_hi = np.where(ok, mid, u_lo), np.where(ok, u_hi, mid)
    out = pairs_at(np.where(under, u_hi, u_lo))
    return out if lang is not None else out[0]


def expected_values(beliefs: Beliefs, pairs: np.ndarray, lang: int | None = None,
                    w_rows: np.ndarray | None = None) -> np.ndarray:
    """E[Σ_k w_k·u_k(x_k)] of plans (N, L) under the beliefs, one language optionally under its own
    per-plan weights (N, R). Exact: every draw is evaluated at every plan."""
    b = beliefs
    pairs = np.atleast_2d(pairs)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        util = b.bank.utility(pairs[:, None, :])  # (N, R, L)
    util = np.where(np.isfinite(util) & (b.weights > 0), util, 0.0)
    per_lang = np.einsum("nrl,rl->nl", util, b.weights)
    if lang is not None:
        per_lang[:, lang] = np.einsum("nr,nr->n", util[:, :, lang], w_rows)
    return per_lang @ b.obj


def outcome_samples(weights: np.ndarray, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """m simulated outcomes of one language: draw indices (stratified by weight) and noise quantiles
    (stratified normal), randomly paired. Stratifying both halves the Monte Carlo noise of a value."""
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    picks = np.searchsorted(cdf, (np.arange(m) + rng.random(m)) / m, side="right")
    eps = ndtri((np.arange(m) + rng.random(m)) / m)
    return np.minimum(picks, len(weights) - 1), rng.permutation(eps)


def posterior_weights(w: np.ndarray, pred: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """Weights (…, R) of the draws after observing y (…,) where draw j predicts pred[j]: w·N(y; pred, σ²)."""
    with np.errstate(invalid="ignore", over="ignore"):
        logw = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), -np.inf) - (y[..., None] - pred) ** 2 / (2 * sigma**2)
    logw = np.where(np.isfinite(logw), logw, -np.inf)  # a draw that cannot predict the outcome weighs 0
    top = np.max(logw, axis=-1, keepdims=True)
    out = np.exp(logw - np.where(np.isfinite(top), top, 0.0))
    total = out.sum(axis=-1, keepdims=True)
    prior = np.broadcast_to(w, out.shape)
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), prior)  # no draw fits: beliefs unchanged


def evsi(tables: Tables, lang: int, pred: np.ndarray, sigma: float, picks: np.ndarray, eps: np.ndarray,
         plan: np.ndarray) -> np.ndarray:
    """Expected value of sample information of C candidate runs of one language (module docstring).

    pred: (R, C) the metric each draw predicts for each candidate; sigma: the run-to-run noise; picks,
    eps: the simulated outcomes (`outcome_samples`, shared by the candidates: common random numbers make
    their comparison fair); plan: the plan now, (L,). Returns (C,) in the objective's units (≥ 0)."""
    b = tables.beliefs
    w = b.weights[:, lang]
    y = pred[picks, :] + sigma * eps[:, None]  # (M, C)
    w_rows = posterior_weights(w, pred.T[None, :, :], y, sigma).reshape(-1, len(w))  # (M·C, R)
    new_plans = solve_plan(tables, lang, tables.rows_nld(lang, w_rows))
    new = expected_values(b, new_plans, lang, w_rows)
    old = expected_values(b, np.broadcast_to(plan, new_plans.shape), lang, w_rows)
    return np.maximum(new - old, 0.0).reshape(y.shape).mean(axis=0)


def believe(beliefs: Beliefs, lang: int, pred: np.ndarray, sigma: float) -> Beliefs:
    """The beliefs after a run that is still pending, taken to land on its expected outcome (the
    "believer" fantasy): its language narrows where the run will measure, as the real result would
    on average, so the next choice of a batch goes elsewhere when this one suffices."""
    w = beliefs.weights[:, lang]
    y = np.asarray(w @ pred)
    return beliefs.reweighted(lang, posterior_weights(w, pred, y, sigma))


def regret_draws(beliefs: Beliefs, plan: np.ndarray) -> np.ndarray:
    """Per joint draw (column j of every language), what the best plan for that draw would gain over
    `plan`: opt_j − value_j(plan) ≥ 0, in the objective's units. Draws are independent across languages,
    so column j is a valid joint draw. The exact solver gives each draw's optimum."""
    b = beliefs
    best = solve_sum(b.bank, b.cost, b.lo, b.hi, b.obj, b.budget).pairs  # (R, L)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        opt = b.bank.utility(best) @ b.obj
        now = b.bank.utility(np.broadcast_to(plan, best.shape)) @ b.obj
    gap = np.where(np.isfinite(opt) & np.isfinite(now), opt - now, 0.0)
    return np.maximum(gap, 0.0)
