"""Vectorised robust fitting of both law families by variable projection.

Both families are linear in two parameters once the exponent is known:

    y = o + β·t,   t = (x/x_ref)^(−α)  for `power`,   t = ln(x/x_ref)  for `log`,

so for a given α the best (o, β) has a closed form, constraints included (scale ≥ 0 so a power curve
never gets worse with data, a pinned ceiling, a loss floor ≥ 0). The loss is Huber's (`fits.robust`),
minimised exactly for each α by semismooth Newton steps safeguarded by IRLS steps; that inner problem
lives in `fits.linear_fit`, this module searches the exponent.
Variable projection (Golub & Pereyra) leaves one nonlinear unknown, α, searched in two stages:

1. global: a few reweighting steps, each minimising the weighted squared loss over a 64-point grid of ln α
   (plus a parabolic step), so a bad starting point or the least-squares basin cannot trap the fit;
2. local: the exact Huber profile L(α) = min over (o, β) is minimised from there by bracketing a sign change
   of dL/dα (the envelope theorem gives it in closed form) and closing the bracket by regula falsi.

Arrays are shaped (R, L, n): R independent replicates (bootstrap draws, or independent languages), L
languages that share one α (1 for a per-language fit, all languages for the `shared` law), n points
(padded; `mask` marks real ones). Everything runs for all replicates at once, and replicates (and cells)
leave the batch as they converge, which is what makes 1,000 bootstrap refits per language cheap. x is
normalised by a reference size (the geometric mean of the sizes) so t stays near 1 and the 2×2 systems
stay well conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fits.linear_fit import Bounds, Linear, Problem, contract, fit_linear, grid_sse, moments, solve_constrained
from fits.robust import huber_psi, huber_weights

# The exponent is searched in this range: below 0.01 a power law is indistinguishable from the log law
# (x^-α ≈ 1 − α·ln x), above 4 it has saturated within a factor of two of the smallest size.
ALPHA_BOUNDS = (0.01, 4.0)
GRID_SIZE = 64
_U_GRID = np.linspace(np.log(ALPHA_BOUNDS[0]), np.log(ALPHA_BOUNDS[1]), GRID_SIZE)  # u = ln α
_U_STEP = _U_GRID[1] - _U_GRID[0]
_GLOBAL_STEPS = 3  # reweighting steps over the whole α grid before the exact local search
# Point fits run the local search to machine precision; bootstrap refits stop at ~1e-6 in ln α, far
# below the spread of the draws.
_STEPS = {True: 100, False: 12}
_TOL = {True: 1e-13, False: 1e-6}

__all__ = ["ALPHA_BOUNDS", "BatchFit", "Bounds", "GRID_SIZE", "fit_log_batch", "fit_power_batch"]


@dataclass
class BatchFit:
    """The fits of R replicates × L languages (see module docstring); y = offset + beta·t."""

    offset: np.ndarray  # (R, L)
    beta: np.ndarray  # (R, L)
    alpha: np.ndarray | None  # (R,) for the power law, None for the log law
    residuals: np.ndarray  # (R, L, n), zero-weight at padding
    loss: np.ndarray  # (R,) Huber loss Σρ(r/scale) over languages and points
    converged: np.ndarray  # (R,) bool: the inner fits and the search in α both closed


# ---------------------------------------------------------------------------------------- the exponent


def _grid_alpha(w, p: Problem, bounds: Bounds) -> np.ndarray:
    """Global minimiser in ln α of the weighted SSE (given IRLS weights): grid, then one parabolic step."""
    t = np.exp(-np.exp(_U_GRID)[:, None] * p.lx[..., None, :])  # (R or 1, L, G, n)
    wy = w * p.yc
    grid_moments = (
        w.sum(-1, keepdims=True),
        wy.sum(-1, keepdims=True),
        (wy * p.yc).sum(-1, keepdims=True),
        contract(w, t),
        contract(w, t * t),
        contract(wy, t),
    )
    F = grid_sse(grid_moments, bounds, p.o_fix, p.o_min).sum(axis=1)  # (R, G)
    g = np.argmin(F, axis=1)
    rows = np.arange(F.shape[0])
    gi = np.clip(g, 1, GRID_SIZE - 2)
    f0, f1, f2 = F[rows, gi - 1], F[rows, gi], F[rows, gi + 1]
    den = f0 - 2.0 * f1 + f2
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where((g == gi) & (den > 0), 0.5 * (f0 - f2) / den, 0.0)
    return _U_GRID[g] + np.clip(np.nan_to_num(step), -1.0, 1.0) * _U_STEP


@dataclass
class _AtAlpha:
    """The Huber profile at one α per replicate."""

    u: np.ndarray  # (R,) ln α
    lin: Linear
    loss: np.ndarray  # (R,)
    grad: np.ndarray  # (R,) d loss / d ln α

    def take(self, idx) -> "_AtAlpha":
        return _AtAlpha(self.u[idx], self.lin.take(idx), self.loss[idx], self.grad[idx])

    @staticmethod
    def where(cond, x: "_AtAlpha", y: "_AtAlpha") -> "_AtAlpha":
        """Row-wise choice: x where cond, else y."""
        out = y.take(np.arange(len(y.u)))
        out.put(np.flatnonzero(cond), x.take(cond))
        return out

    def put(self, idx, other: "_AtAlpha") -> None:
        """Overwrite replicates idx with `other` (in place)."""
        for name in ("u", "loss", "grad"):
            getattr(self, name)[idx] = getattr(other, name)
        for name in ("o", "beta", "r", "loss", "converged"):
            getattr(self.lin, name)[idx] = getattr(other.lin, name)


def _at_alpha(u, p: Problem, bounds: Bounds, start: Linear | None, tol) -> _AtAlpha:
    """The Huber profile at α = e^u: the exact inner fit, its loss, and the loss's derivative in ln α.

    By the envelope theorem only α's explicit effect counts (the bounds on o, β do not involve α):
    dL/dα = Σ ψ(r/scale)/scale · β·ln(x/x_ref)·t.
    """
    t = np.exp(-np.exp(u)[:, None, None] * p.lx)
    lin = fit_linear(t, p, bounds, start, tol=tol)
    psi = p.mask * huber_psi(lin.r, p.scale, p.k) / p.scale
    grad = np.exp(u) * (psi * lin.beta * p.lx * t).sum(axis=(1, 2))
    return _AtAlpha(np.asarray(u, float).copy(), lin, lin.loss.sum(axis=1), grad)


def _minimise_profile(u0, p: Problem, bounds: Bounds, steps: int, tol: float, start: Linear | None = None):
    """Minimise the Huber profile over ln α from u0, per replicate: walk downhill in growing steps until
    its derivative changes sign (or a bound is reached), then close the bracket by regula falsi with the
    Illinois modification (superlinear, never leaves the bracket). Replicates leave the batch as they
    finish. Returns the best point seen and whether its search closed (a root, or an optimum on a bound).
    """
    lo_b, hi_b = _U_GRID[0], _U_GRID[-1]
    best = _at_alpha(u0, p, bounds, start, tol)

    def improve(idx, cand: _AtAlpha):
        better = cand.loss < best.loss[idx]
        best.put(idx[better], cand.take(better))

    R = len(u0)
    direction = -np.sign(best.grad)  # downhill
    bound = np.where(direction > 0, hi_b, lo_b)
    closed = (direction == 0) | (best.u == bound)  # a flat profile, or already at the bound it points to
    a, b = best.take(np.arange(R)), best.take(np.arange(R))  # bracket ends, filled in as they are found
    prev = best.take(np.arange(R))
    step = np.full(R, _U_STEP / 8)  # stage 1 leaves u0 within a fraction of a grid step of the optimum
    walking = np.flatnonzero(~closed)
    for _ in range(16):
        if walking.size == 0:
            break
        u_new = np.clip(prev.u[walking] + direction[walking] * step[walking], lo_b, hi_b)
        new = _at_alpha(u_new, p.rows(walking), bounds, prev.lin.take(walking), tol)
        improve(walking, new)
        crossed = np.sign(new.grad) == direction[walking]
        flat = new.grad == 0
        at_bound = (u_new == bound[walking]) & ~crossed
        right = direction[walking] > 0
        old = prev.take(walking)
        cross_idx = walking[crossed]
        a.put(cross_idx, _AtAlpha.where(right[crossed], old.take(crossed), new.take(crossed)))
        b.put(cross_idx, _AtAlpha.where(right[crossed], new.take(crossed), old.take(crossed)))
        prev.put(walking, new)
        closed[walking[(flat | at_bound) & ~crossed]] = True
        step[walking] *= 4.0
        walking = walking[~(crossed | flat | at_bound)]
    closed[walking] = True  # gave up widening: keep the best point seen
    idx = np.flatnonzero(~closed)
    a, b = a.take(idx), b.take(idx)
    fa, fb = a.grad.copy(), b.grad.copy()
    side = np.zeros(len(idx))
    c_prev = best.u[idx]
    for _ in range(steps):
        if idx.size == 0:
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            c = (a.u * fb - b.u * fa) / (fb - fa)
        c = np.where(np.isfinite(c), np.clip(c, a.u, b.u), 0.5 * (a.u + b.u))
        mid = _at_alpha(c, p.rows(idx), bounds, best.lin.take(idx), tol)
        improve(idx, mid)
        left, right = mid.grad < 0, mid.grad > 0
        fb = np.where(left & (side < 0), 0.5 * fb, fb)  # Illinois: the same end moved twice → halve the other
        fa = np.where(right & (side > 0), 0.5 * fa, fa)
        a.put(np.flatnonzero(left), mid.take(left))
        b.put(np.flatnonzero(right), mid.take(right))
        fa, fb = np.where(left, mid.grad, fa), np.where(right, mid.grad, fb)
        side = np.where(left, -1.0, np.where(right, 1.0, side))
        with np.errstate(divide="ignore", invalid="ignore"):
            # The secant slope of the bracket predicts how far the root still is from c.
            to_root = np.abs(mid.grad) * (b.u - a.u) / (b.grad - a.grad)
        done = (to_root <= tol) | (np.abs(c - c_prev) <= tol) | (b.u - a.u <= tol) | (mid.grad == 0)
        closed[idx[done]] = True
        keep = ~done
        idx, a, b, fa, fb, side, c_prev = idx[keep], a.take(keep), b.take(keep), fa[keep], fb[keep], side[keep], c[keep]
    return best, closed


# ------------------------------------------------------------------------------------------ entry points


def fit_power_batch(y, lx, mask, scale, bounds: Bounds, *, alpha=None, precise: bool = False) -> BatchFit:
    """Robust fit of y = o + β·e^(−α·lx), one α per replicate (shared by the replicate's L languages).

    y: (R, L, n); lx = ln(x/x_ref): (R or 1, L, n); mask: 1 for real points, broadcastable to y;
    scale: each language's Huber noise scale, broadcastable to (R, L, 1), or None for least squares.
    alpha: fix the exponent (broadcastable to (R,)) and fit only o, β. precise: solve to machine
    precision (point fits) rather than to ~1e-6 in ln α (bootstrap refits).

    Two stages: a few reweighting steps that each search the whole α grid find the right basin (the
    robust optimum can sit far from the least-squares one when a point is corrupted); then the exact
    Huber profile is minimised in α around it, every evaluation solving o, β exactly.
    """
    p = Problem.build(y, lx, mask, scale, bounds)
    R = p.yc.shape[0]
    if alpha is not None:
        u = np.log(np.broadcast_to(np.asarray(alpha, float), (R,))).copy()
        at = _at_alpha(u, p, bounds, None, _TOL[precise])
        closed = np.ones(R, bool)
    else:
        w = np.broadcast_to(p.mask / p.scale**2, p.yc.shape)
        for _ in range(_GLOBAL_STEPS if np.isfinite(p.k) else 1):
            u = _grid_alpha(w, p, bounds)
            t = np.exp(-np.exp(u)[:, None, None] * p.lx)
            o, beta, _ = solve_constrained(moments(w, p.yc, t), bounds, p.o_fix, p.o_min)
            r = p.yc - o - beta * t
            w = p.mask * huber_weights(r, p.scale, p.k) / p.scale**2
        start = Linear(o, beta, r, np.zeros(o.shape[:2]), np.zeros(o.shape[:2], bool))
        at, closed = _minimise_profile(u, p, bounds, _STEPS[precise], _TOL[precise], start)
    return BatchFit(
        offset=(at.lin.o + p.ybar)[..., 0],
        beta=at.lin.beta[..., 0],
        alpha=np.exp(at.u),
        residuals=at.lin.r,
        loss=at.loss,
        converged=closed & at.lin.converged.all(axis=1),
    )


def fit_log_batch(y, lx, mask, scale, *, precise: bool = False) -> BatchFit:
    """Robust fit of y = o + β·lx (the log law in normalised x). β is free, so a curve that gets worse
    with data shows as a slope of the wrong sign instead of being hidden by a constraint."""
    bounds = Bounds()
    p = Problem.build(y, lx, mask, scale, bounds)
    lin = fit_linear(p.lx, p, bounds, tol=_TOL[precise])
    return BatchFit(
        offset=(lin.o + p.ybar)[..., 0],
        beta=lin.beta[..., 0],
        alpha=None,
        residuals=lin.r,
        loss=lin.loss.sum(axis=1),
        converged=lin.converged.all(axis=1),
    )
