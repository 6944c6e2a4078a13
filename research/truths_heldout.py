"""Held-out truth families: worlds the planner's fit was not built for.

`research.truths` draws its true curves from the fit's own laws (power, offset power, log), so a fit can
recover them exactly. Real curves owe nothing to those laws, and runs fail in ways Gaussian noise does
not describe. These families hold the truth outside what the default was designed and tuned on, to
check that its plans still beat an equal split there:

- curves of other shapes: S-shaped in log x, exponential saturation, a power law whose exponent changes
  beyond the grid, a pretrained model that first *loses* score on a few pairs (forgetting) and then
  rises, and worlds where every language follows a different one of these laws;
- other units: scores on a 0–1 scale instead of 0–100;
- other noise: heavy-tailed (Student t, 3 degrees of freedom) and runs that lost part of their score;
- other budgets: most of it below the grid's sizes, or 4–10× beyond its largest run.

The true optimum of such a world cannot come from the KKT solver (it assumes the fit's concave laws),
so `solve_any` finds it independently: an exact dynamic programme over a fine grid of the budget,
polished by a local continuous optimiser. On worlds inside the laws it agrees with the KKT solver
(`tests/test_truths_heldout.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from scipy.optimize import minimize

from research.truths import GRID4, Family, World, _common, _power_from_start, as_family, log_curve


# ------------------------------------------------------------------------------------------ the laws


def _sigmoid(x, low, high, mid, k):
    """S-shaped in log x: `low` at 0 pairs, half-way at `mid`, `high` far beyond."""
    with np.errstate(divide="ignore", over="ignore"):  # x → 0: the ratio's power is +inf, the score `low`
        return low + (high - low) / (1.0 + (mid / np.maximum(x, 1e-300)) ** k)


def _exponential(x, ceiling, gap, scale):
    """c − gap·e^(−x/scale): saturates faster than any power law."""
    return ceiling - gap * np.exp(-x / scale)


def _broken_power(x, ceiling, scale, alpha1, alpha2, brk, x0):
    """A power law with exponent α₁ below the break and α₂ above it (smoothly joined)."""
    t = x + x0
    return ceiling - scale * t**-alpha1 * (1.0 + t / brk) ** -(alpha2 - alpha1)


def _dip_then_rise(x, zero_shot, depth, half, ceiling, alpha, x0):
    """A pretrained model that forgets: falls by up to `depth` over the first ~`half` pairs, then rises
    towards `ceiling` as an offset power law."""
    return zero_shot - depth * x / (x + half) + (ceiling - zero_shot) * (1.0 - (1.0 + x / x0) ** -alpha)


LAWS: dict[str, Callable] = {
    "sigmoid": _sigmoid, "exponential": _exponential, "broken-power": _broken_power, "dip-then-rise": _dip_then_rise,
}


@dataclass(frozen=True)
class TrueCurve:
    """A true curve outside the fit's laws (x in pairs, finite at 0)."""

    law: str
    params: Mapping[str, float]

    def predict(self, x):
        return LAWS[self.law](np.asarray(x, dtype=float), **self.params)


# ------------------------------------------------------------------------------------- the solver


def solve_any(world: World, lo: np.ndarray, hi: np.ndarray, units: int = 2000) -> np.ndarray:
    """The allocation (pairs) that maximises Σ true scores under the token budget, floors and caps, for
    curves of any shape: a max-plus dynamic programme over `units` equal slices of the budget (exact on
    that grid, no concavity needed), then a local continuous polish of the grid's answer."""
    if np.any(lo > hi) or float(world.tokens_per_pair @ lo) > world.budget * (1 + 1e-12) or world.budget <= 0:
        raise ValueError("no allocation meets these floors, caps and budget")
    step = world.budget / units
    k = np.arange(units + 1)
    choice: list[np.ndarray | None] = []  # per language after the first: its slices, by slices spent so far
    best = None
    for i, curve in enumerate(world.curves):
        x = k * step / world.tokens_per_pair[i]
        with np.errstate(divide="ignore", over="ignore"):  # a power law without offset is −inf at 0 pairs
            value = np.where(x >= lo[i] - 1e-9, curve.predict(np.minimum(x, hi[i])), -np.inf)
        if best is None:
            best = value
            choice.append(None)
            continue
        # best[u] over the languages so far with u slices; add this language's k slices of it
        spent = k[:, None] - k[None, :]  # (u, k): slices left for the earlier languages
        total = np.where(spent >= 0, best[np.clip(spent, 0, None)] + value[None, :], -np.inf)
        pick = np.argmax(total, axis=1)
        choice.append(pick)
        best = total[k, pick]
    u = int(np.argmax(best))
    slices = np.zeros(world.n)
    for i in range(world.n - 1, 0, -1):
        slices[i] = choice[i][u]
        u -= int(slices[i])
    slices[0] = u
    # slices beyond a cap buy nothing (the table valued them at the cap): give back the pairs above it
    return _polish(world, np.minimum(slices * step / world.tokens_per_pair, hi), lo, hi)


def _polish(world: World, pairs: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Refine a grid answer by a local continuous search; keep it unless the refinement is feasible and better."""
    scale = np.maximum(pairs, 1.0)  # search in units of the grid's answer
    cost = world.tokens_per_pair * scale / world.budget
    result = minimize(
        lambda z: -world.value(z * scale), np.ones(world.n), method="SLSQP",
        bounds=[(l / s, h / s if np.isfinite(h) else None) for l, h, s in zip(lo, hi, scale)],
        constraints=[{"type": "ineq", "fun": lambda z: 1.0 - float(cost @ z)}],
        options={"maxiter": 200, "ftol": 1e-12},
    )
    better = result.x * scale
    feasible = (np.all(better >= lo - 1e-6) and np.all(better <= hi * (1 + 1e-9) + 1e-9)
                and float(world.tokens_per_pair @ better) <= world.budget * (1 + 1e-9))
    if feasible and np.all(np.isfinite(better)) and world.value(better) > world.value(pairs):
        return np.clip(better, lo, hi)
    return pairs


# ---------------------------------------------------------------------------------------- families


def _languages(rng) -> int:
    return int(rng.integers(8, 13))


def _sigmoid_curve(rng) -> TrueCurve:
    low = rng.uniform(2, 15)
    return TrueCurve("sigmoid", dict(low=low, high=low + rng.uniform(20, 70),
                                     mid=float(np.exp(rng.uniform(np.log(150), np.log(4000)))), k=rng.uniform(0.7, 2.5)))


def _exponential_curve(rng) -> TrueCurve:
    start, ceiling = rng.uniform(2, 15), rng.uniform(30, 85)
    return TrueCurve("exponential", dict(ceiling=ceiling, gap=ceiling - start,
                                         scale=float(np.exp(rng.uniform(np.log(200), np.log(4000))))))


def _broken_curve(rng) -> TrueCurve:
    ceiling, alpha1, x0 = rng.uniform(40, 95), rng.uniform(0.15, 0.6), 50.0
    alpha2 = alpha1 * float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    brk = float(np.exp(rng.uniform(np.log(1000), np.log(8000))))
    start = rng.uniform(3, 20)  # score at the grid's first size
    t = GRID4[0] + x0
    scale = (ceiling - start) / (t**-alpha1 * (1 + t / brk) ** -(alpha2 - alpha1))
    return TrueCurve("broken-power", dict(ceiling=ceiling, scale=scale, alpha1=alpha1, alpha2=alpha2, brk=brk, x0=x0))


def _dip_curve(rng) -> TrueCurve:
    zero = rng.uniform(3, 20)
    return TrueCurve("dip-then-rise", dict(zero_shot=zero, depth=rng.uniform(1, 6), half=rng.uniform(20, 200),
                                           ceiling=zero + rng.uniform(10, 50), alpha=rng.uniform(0.3, 1.0),
                                           x0=float(np.exp(rng.uniform(np.log(200), np.log(2000))))))


def _world_of(rng, draw_curve: Callable, **kw) -> World:
    n = _languages(rng)
    return World(tuple(draw_curve(rng) for _ in range(n)), **_common(rng, n, GRID4), **kw)


def sigmoid_in_log_x(rng) -> World:
    """S-shaped curves in log x, half-way points at 150–4,000 pairs: slow starts, some beyond the grid."""
    return _world_of(rng, _sigmoid_curve)


def exponential_saturation(rng) -> World:
    """c − gap·e^(−x/s), s 200–4,000 pairs: curves that stop rising sooner than a power law can say."""
    return _world_of(rng, _exponential_curve)


def broken_power(rng) -> World:
    """A power law whose exponent changes ×0.3–3 at a break of 1,000–8,000 pairs, mostly beyond the grid."""
    return _world_of(rng, _broken_curve)


def dip_then_rise(rng) -> World:
    """A pretrained model that first loses 1–6 chrF over its first 20–200 pairs, then rises; zero-shot
    score measured."""
    return _world_of(rng, _dip_curve, zero_shot=True)


def mixed_laws(rng) -> World:
    """Every language follows its own law: power, log, S-shaped, exponential or broken power."""
    def any_curve(r):
        pick = int(r.integers(5))
        if pick == 0:
            return _power_from_start(r.uniform(35, 90), r.uniform(0.15, 1.0), r.uniform(3, 20), GRID4[0])
        if pick == 1:
            return log_curve(r)
        return (_sigmoid_curve, _exponential_curve, _broken_curve)[pick - 2](r)

    return _world_of(rng, any_curve)


def unit_scale(rng) -> World:
    """Scores on a 0–1 scale (a metric reported as a fraction): power curves and noise ÷ 100."""
    n = _languages(rng)
    c, alpha = rng.uniform(0.35, 0.9, n), rng.uniform(0.15, 1.0, n)
    curves = [_power_from_start(ci, ai, rng.uniform(0.03, 0.2), GRID4[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), noise=0.01, **_common(rng, n, GRID4))


def _moderate_power(rng, n) -> tuple:
    c, alpha = rng.uniform(35, 90, n), rng.uniform(0.15, 1.0, n)
    return tuple(_power_from_start(ci, ai, rng.uniform(3, 20), GRID4[0]) for ci, ai in zip(c, alpha))


def heavy_tailed_noise(rng) -> World:
    """Power curves; run noise Student-t with 3 degrees of freedom (σ 1): a few runs far off."""
    n = _languages(rng)
    return World(_moderate_power(rng, n), noise_kind="student-t", **_common(rng, n, GRID4))


def outlier_runs(rng) -> World:
    """Power curves; one run in ten lost 20–70% of its score (diverged or cut short), the rest σ 1."""
    n = _languages(rng)
    return World(_moderate_power(rng, n), noise_kind="outliers", **_common(rng, n, GRID4))


def small_budget(rng) -> World:
    """Power curves; a budget of 300–800 pairs per language, most of it below the grid's second size."""
    n = _languages(rng)
    return World(_moderate_power(rng, n), **_common(rng, n, GRID4, budget_pairs=(300, 800)))


def large_budget(rng) -> World:
    """Power curves; a budget of 8,000–20,000 pairs per language: plans 4–10× beyond the largest run."""
    n = _languages(rng)
    return World(_moderate_power(rng, n), **_common(rng, n, GRID4, budget_pairs=(8000, 20000)))


HELD_OUT: dict[str, Family] = {
    f.name: f
    for f in map(as_family, [
        sigmoid_in_log_x, exponential_saturation, broken_power, dip_then_rise, mixed_laws, unit_scale,
        heavy_tailed_noise, outlier_runs, small_budget, large_budget,
    ])
}

