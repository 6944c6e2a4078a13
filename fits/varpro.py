"""Vectorised robust fitting of both law families by variable projection.

Both families are linear in two parameters once the exponent is known:

    y = o + β·t,   t = (x/x_ref)^(−α)  for `power`,   t = ln(x/x_ref)  for `log`,

so for a given α the best (o, β) has a closed form, constraints included (`_solve`: scale ≥ 0 so a power
curve never gets worse with data, a pinned ceiling, a loss floor ≥ 0). The loss is Huber's (`fits.robust`),
minimised exactly for each α by semismooth Newton steps safeguarded by IRLS steps (`_fit_linear`).
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

from fits.robust import HUBER_K, huber_psi, huber_rho, huber_weights

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


@dataclass(frozen=True)
class Bounds:
    """Constraints on y = o + β·t.

    sign: for the power law, the direction sign d (+1 higher is better); the curve must not get worse
    with data, i.e. scale = −d·β·x_ref^α ≥ 0. None leaves β free (the log law, whose slope may show a
    curve getting worse). offset_fixed pins o (a known ceiling); offset_min bounds it below (a loss
    floor E ≥ 0).
    """

    sign: float | None = None
    offset_fixed: float | None = None
    offset_min: float | None = None


@dataclass
class BatchFit:
    """The fits of R replicates × L languages (see module docstring); y = offset + beta·t."""

    offset: np.ndarray  # (R, L)
    beta: np.ndarray  # (R, L)
    alpha: np.ndarray | None  # (R,) for the power law, None for the log law
    residuals: np.ndarray  # (R, L, n), zero-weight at padding
    loss: np.ndarray  # (R,) Huber loss Σρ(r/scale) over languages and points
    converged: np.ndarray  # (R,) bool: the inner fits and the search in α both closed


# ----------------------------------------------------------------------------- closed-form inner solve


def _with_fixed_offset(o, Sw, Sy, Syy, St, Stt, Sty):
    """Best β and the SSE when the offset is pinned to o (moments taken about o)."""
    sty = Sty - o * St
    syy = Syy - 2.0 * o * Sy + o * o * Sw
    beta = sty / Stt
    return beta, syy - beta * sty, syy  # β, SSE at that β, SSE at β = 0


def _solve(moments, bounds: Bounds, o_fix, o_min, need_params: bool = True):
    """Minimise Σw(y − o − β·t)² under `bounds`, for every cell of the moment arrays at once.

    The problem is a convex quadratic in (o, β) with at most two one-sided constraints, so its optimum is
    the unconstrained minimiser of one face (free, β = 0, o at its bound, both) that is feasible and has
    the lowest SSE: every face is solved in closed form and the best feasible one kept.
    `o_fix`/`o_min` are arrays already shifted to the centred y (or None). Returns (o, β, SSE), or only
    the SSE (o and β None) when `need_params` is false (the α grid needs nothing else).
    """
    Sw, Sy, Syy, St, Stt, Sty = moments
    sign = bounds.sign
    beta_ok = (lambda beta: True) if sign is None else (lambda beta: -sign * beta >= 0)
    faces = []  # (o, β, SSE, feasible)
    with np.errstate(divide="ignore", invalid="ignore"):
        if o_fix is not None:
            beta, sse, sse_flat = _with_fixed_offset(o_fix, Sw, Sy, Syy, St, Stt, Sty)
            faces.append((o_fix, beta, sse, beta_ok(beta)))
            if sign is not None:
                faces.append((o_fix, 0.0, sse_flat, True))
        else:
            o_ok = (lambda o: True) if o_min is None else (lambda o: o >= o_min)
            det = Sw * Stt - St * St
            o1 = (Stt * Sy - St * Sty) / det
            b1 = (Sw * Sty - St * Sy) / det
            faces.append((o1, b1, Syy - o1 * Sy - b1 * Sty, beta_ok(b1) & o_ok(o1)))
            if sign is not None:  # flat: β = 0 and o the weighted mean
                o2 = Sy / Sw
                faces.append((o2, 0.0, Syy - o2 * Sy, o_ok(o2)))
            if o_min is not None:
                beta, sse, sse_flat = _with_fixed_offset(o_min, Sw, Sy, Syy, St, Stt, Sty)
                faces.append((o_min, beta, sse, beta_ok(beta)))
                if sign is not None:
                    faces.append((o_min, 0.0, sse_flat, True))
        shape = np.broadcast(Sw, St).shape
        sses = [np.broadcast_to(np.where(ok & np.isfinite(s), s, np.inf), shape) for _, _, s, ok in faces]
    if not need_params:
        return None, None, np.minimum.reduce(sses) if len(sses) > 1 else sses[0]
    pick = np.argmin(np.stack(sses), axis=0)
    o = np.choose(pick, [np.broadcast_to(f[0], shape) for f in faces])
    beta = np.choose(pick, [np.broadcast_to(f[1], shape) for f in faces])
    return o, beta, np.choose(pick, sses)


# ------------------------------------------------------------------------------------------ moments


def _moments(w, y, t):
    """Weighted sums over the points axis, kept as a trailing length-1 axis: (Σw, Σwy, Σwy², Σwt, Σwt², Σwty)."""
    wt = w * t
    return (
        w.sum(-1, keepdims=True),
        (w * y).sum(-1, keepdims=True),
        (w * y * y).sum(-1, keepdims=True),
        wt.sum(-1, keepdims=True),
        (wt * t).sum(-1, keepdims=True),
        (wt * y).sum(-1, keepdims=True),
    )


def _contract(a, t):
    """Σ_n a[r, l, n]·t[·, l, g, n] → (R, L, G). With one design shared by all replicates (the bootstrap)
    this is one batched matrix product per language instead of an (R, L, G, n) temporary."""
    if t.shape[0] == 1:
        # Contiguous operands let matmul use BLAS (30× faster than on the transposed views).
        lhs = np.ascontiguousarray(a.transpose(1, 0, 2))
        return np.matmul(lhs, np.ascontiguousarray(t[0].transpose(0, 2, 1))).transpose(1, 0, 2)
    return np.einsum("rln,rlgn->rlg", a, t)


def _grid_sse(moments, bounds: Bounds, o_fix, o_min):
    """The constrained minimum SSE of `_solve` without forming (o, β), for the big α-grid arrays.

    Adding t to an intercept-only model lowers the SSE by num²/(Σw·det), num = Σw·Σwty − Σwt·Σwy (the
    sign of β), det = Σw·Σwt² − (Σwt)²; when the sign constraint rejects that β the flat curve is
    optimal. Only cells where the free offset breaks its lower bound fall back to the full face search.
    """
    Sw, Sy, Syy, St, Stt, Sty = moments
    sign = bounds.sign
    with np.errstate(divide="ignore", invalid="ignore"):
        if o_fix is not None:
            sty = Sty - o_fix * St
            syy = Syy - 2.0 * o_fix * Sy + o_fix * o_fix * Sw
            num = sty if sign is None else np.maximum(-sign * sty, 0.0)
            return syy - num * num / Stt
        num = Sw * Sty - St * Sy
        if sign is not None:
            num = np.maximum(-sign * num, 0.0)
        det = Sw * Stt - St * St
        sse = (Syy - Sy * Sy / Sw) - num * num / (Sw * det)
        if o_min is not None:
            o1 = np.where(num > 0, (Stt * Sy - St * Sty) / det, Sy / Sw)
            bad = ~(o1 >= o_min)
            if bad.any():
                _, _, full = _solve(moments, bounds, None, o_min, need_params=False)
                sse = np.where(bad, full, sse)
        return sse


# ------------------------------------------------------------------------------------ the problem


@dataclass
class _Problem:
    """One batch, centred: yc = y − ȳ per (replicate, language); offset bounds shifted by the same ȳ.

    The objective is Σ ρ(r/scale) with ρ Huber's loss at threshold k (k = inf: least squares), so in a
    joint fit each language counts in units of its own noise scale.
    """

    yc: np.ndarray  # (R, L, n)
    lx: np.ndarray  # (R or 1, L, n)
    mask: np.ndarray  # (R or 1, L, n)
    scale: np.ndarray  # (R or 1, L or 1, 1)
    k: float
    ybar: np.ndarray  # (R, L, 1)
    o_fix: np.ndarray | None
    o_min: np.ndarray | None

    @classmethod
    def build(cls, y, lx, mask, scale, bounds: Bounds) -> "_Problem":
        y = np.asarray(y, float)
        lx = np.asarray(lx, float)
        mask = np.asarray(mask, float)
        if mask.ndim < 3:
            mask = np.broadcast_to(mask, y.shape)
        if scale is None:  # least squares: unit scale, no threshold
            scale, k = np.ones((1, 1, 1)), np.inf
        else:
            scale, k = np.asarray(scale, float), HUBER_K
            scale = scale.reshape(scale.shape + (1,) * (3 - scale.ndim)) if scale.ndim < 3 else scale
        ybar = (mask * y).sum(-1, keepdims=True) / np.broadcast_to(mask, y.shape).sum(-1, keepdims=True)
        yc = np.where(mask > 0, y - ybar, 0.0)  # centring keeps Σwy² − o·Σwy free of cancellation
        o_fix = None if bounds.offset_fixed is None else bounds.offset_fixed - ybar
        o_min = None if bounds.offset_min is None else bounds.offset_min - ybar
        return cls(yc, lx, mask, scale, k, ybar, o_fix, o_min)

    def rows(self, idx) -> "_Problem":
        """The sub-problem of some replicates (arrays shared by all replicates stay shared)."""
        keep = lambda a: a if a is None or a.shape[0] == 1 else a[idx]  # noqa: E731
        return _Problem(self.yc[idx], keep(self.lx), keep(self.mask), keep(self.scale), self.k, self.ybar[idx],
                        keep(self.o_fix), keep(self.o_min))


# ------------------------------------------------------------------- exact robust fit given the basis


@dataclass
class _Linear:
    o: np.ndarray  # (R, L, 1)
    beta: np.ndarray  # (R, L, 1)
    r: np.ndarray  # (R, L, n)
    loss: np.ndarray  # (R, L)
    converged: np.ndarray  # (R, L)

    def take(self, idx) -> "_Linear":
        return _Linear(self.o[idx], self.beta[idx], self.r[idx], self.loss[idx], self.converged[idx])


def _newton_step(y, t, m, s, k, r, bounds, o_fix, o_min):
    """Semismooth Newton candidate for cells with residuals r: least squares on the points inside the
    Huber core, the others pulling with constant force ±k·scale. Returns (o, β, residuals, pattern),
    pattern = which points were treated as outside.

    Far from the optimum (or with a tiny noise scale) almost every point is outside the core and the system
    is singular; treating the two closest points as inside still gives a step toward the near-L1 optimum,
    which passes close to two points. It is only a candidate: the caller compares losses.
    """
    thr = k * s
    absr = np.where(m > 0, np.abs(r), np.inf)
    second = np.partition(absr, 1, axis=-1)[:, 1:2] if absr.shape[-1] > 1 else absr
    outside = absr > np.maximum(thr, second)
    inside = m * ~outside
    with np.errstate(invalid="ignore"):
        pull = np.where(outside, m * np.sign(r) * thr, 0.0)
        iy, it = inside * y, inside * t
        moments = (
            inside.sum(-1, keepdims=True),
            iy.sum(-1, keepdims=True) + pull.sum(-1, keepdims=True),
            (iy * y).sum(-1, keepdims=True),
            it.sum(-1, keepdims=True),
            (it * t).sum(-1, keepdims=True),
            (it * y).sum(-1, keepdims=True) + (pull * t).sum(-1, keepdims=True),
        )
        o, beta, _ = _solve(moments, bounds, o_fix, o_min)
        return o, beta, y - o - beta * t, outside


def _fit_linear(t, p: _Problem, bounds: Bounds, start: _Linear | None = None, max_iter=50, tol=1e-13) -> _Linear:
    """The exact constrained Huber fit of y ≈ o + β·t in every cell, t: (R or 1, L, n).

    Each iteration first tries the semismooth Newton step (`_newton_step`). When it lowers the loss and
    its residuals keep the in/out pattern it was computed for, it is the exact optimum (the loss equals
    that pattern's quadratic around it) and the cell is done: from a warm start that is most cells after
    one step. Elsewhere the IRLS step (majorise–minimise: never increases the loss, converges linearly)
    is computed too and the better of the two kept. Cells leave the batch as they converge.
    """
    R, L, n = p.yc.shape
    cells = R * L

    def flat(a):
        return None if a is None else np.broadcast_to(a, (R, L, a.shape[-1])).reshape(cells, a.shape[-1])

    yc, t, mask, scale = flat(p.yc), flat(t), flat(p.mask), flat(p.scale)
    o_fix, o_min = flat(p.o_fix), flat(p.o_min)
    k = p.k
    if start is None:
        o, beta, _ = _solve(_moments(mask, yc, t), bounds, o_fix, o_min)
    else:
        o, beta = flat(start.o).copy(), flat(start.beta).copy()
    r = yc - o - beta * t
    loss = (mask * huber_rho(r, scale, k)).sum(-1)
    # Residual changes below this are rounding noise of the data's magnitude: the fit has stopped moving.
    still = 1e-13 * (np.abs(yc).max(-1) + np.abs(flat(p.ybar)[:, 0]))
    converged = np.zeros(cells, bool)
    active = np.arange(cells)

    def sel(a, idx):  # offset bounds may be shared by every cell
        return None if a is None else (a if a.shape[0] == 1 else a[idx])

    for _ in range(max_iter):
        y_a, t_a, m_a, s_a, r_a = yc[active], t[active], mask[active], scale[active], r[active]
        o_nt, b_nt, r_nt, outside = _newton_step(y_a, t_a, m_a, s_a, k, r_a, bounds, sel(o_fix, active), sel(o_min, active))
        with np.errstate(invalid="ignore"):
            loss_nt = (m_a * huber_rho(r_nt, s_a, k)).sum(-1)
            thr = k * s_a
            same_pattern = np.all(((np.abs(r_nt) > thr) == outside) | (m_a == 0), axis=-1) & np.all(
                ~outside | (np.sign(r_nt) == np.sign(r_a)), axis=-1
            )
        exact = (loss_nt <= loss[active]) & same_pattern  # NaN-safe
        new_o, new_b, new_r, new_loss = o_nt, b_nt, r_nt, loss_nt
        done = exact.copy()
        rest = np.flatnonzero(~exact)
        if rest.size:
            idx = active[rest]
            w = m_a[rest] * huber_weights(r_a[rest], s_a[rest], k)
            o_mm, b_mm, _ = _solve(_moments(w, y_a[rest], t_a[rest]), bounds, sel(o_fix, idx), sel(o_min, idx))
            r_mm = y_a[rest] - o_mm - b_mm * t_a[rest]
            loss_mm = (m_a[rest] * huber_rho(r_mm, s_a[rest], k)).sum(-1)
            newton = loss_nt[rest] < loss_mm  # False where the Newton step is undefined (NaN)
            pick = newton[:, None]
            new_o, new_b, new_r, new_loss = new_o.copy(), new_b.copy(), new_r.copy(), new_loss.copy()
            new_o[rest] = np.where(pick, o_nt[rest], o_mm)
            new_b[rest] = np.where(pick, b_nt[rest], b_mm)
            new_r[rest] = np.where(pick, r_nt[rest], r_mm)
            new_loss[rest] = np.where(newton, loss_nt[rest], loss_mm)
        gain = loss[active] - new_loss
        take = gain >= 0  # rounding: never accept a step that raises the loss
        o[active] = np.where(take[:, None], new_o, o[active])
        beta[active] = np.where(take[:, None], new_b, beta[active])
        r[active] = np.where(take[:, None], new_r, r_a)
        loss[active] = np.where(take, new_loss, loss[active])
        moved = np.abs(new_r - r_a).max(-1)
        done |= (gain <= tol * np.abs(new_loss)) | ~(moved > still[active])  # NaN-safe: no step = no move
        converged[active[done]] = True
        active = active[~done]
        if active.size == 0:
            break
    return _Linear(
        o.reshape(R, L, 1), beta.reshape(R, L, 1), r.reshape(R, L, n), loss.reshape(R, L), converged.reshape(R, L)
    )


# ---------------------------------------------------------------------------------------- the exponent


def _grid_alpha(w, p: _Problem, bounds: Bounds) -> np.ndarray:
    """Global minimiser in ln α of the weighted SSE (given IRLS weights): grid, then one parabolic step."""
    t = np.exp(-np.exp(_U_GRID)[:, None] * p.lx[..., None, :])  # (R or 1, L, G, n)
    wy = w * p.yc
    moments = (
        w.sum(-1, keepdims=True),
        wy.sum(-1, keepdims=True),
        (wy * p.yc).sum(-1, keepdims=True),
        _contract(w, t),
        _contract(w, t * t),
        _contract(wy, t),
    )
    F = _grid_sse(moments, bounds, p.o_fix, p.o_min).sum(axis=1)  # (R, G)
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
    lin: _Linear
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


def _at_alpha(u, p: _Problem, bounds: Bounds, start: _Linear | None, tol) -> _AtAlpha:
    """The Huber profile at α = e^u: the exact inner fit, its loss, and the loss's derivative in ln α.

    By the envelope theorem only α's explicit effect counts (the bounds on o, β do not involve α):
    dL/dα = Σ ψ(r/scale)/scale · β·ln(x/x_ref)·t.
    """
    t = np.exp(-np.exp(u)[:, None, None] * p.lx)
    lin = _fit_linear(t, p, bounds, start, tol=tol)
    psi = p.mask * huber_psi(lin.r, p.scale, p.k) / p.scale
    grad = np.exp(u) * (psi * lin.beta * p.lx * t).sum(axis=(1, 2))
    return _AtAlpha(np.asarray(u, float).copy(), lin, lin.loss.sum(axis=1), grad)


def _minimise_profile(u0, p: _Problem, bounds: Bounds, steps: int, tol: float, start: _Linear | None = None):
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
    p = _Problem.build(y, lx, mask, scale, bounds)
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
            o, beta, _ = _solve(_moments(w, p.yc, t), bounds, p.o_fix, p.o_min)
            r = p.yc - o - beta * t
            w = p.mask * huber_weights(r, p.scale, p.k) / p.scale**2
        start = _Linear(o, beta, r, np.zeros(o.shape[:2]), np.zeros(o.shape[:2], bool))
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
    p = _Problem.build(y, lx, mask, scale, bounds)
    lin = _fit_linear(p.lx, p, bounds, tol=_TOL[precise])
    return BatchFit(
        offset=(lin.o + p.ybar)[..., 0],
        beta=lin.beta[..., 0],
        alpha=None,
        residuals=lin.r,
        loss=lin.loss.sum(axis=1),
        converged=lin.converged.all(axis=1),
    )
