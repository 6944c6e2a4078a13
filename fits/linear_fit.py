"""The inner problem of variable projection: the exact robust fit of y ≈ o + β·t for a known basis t.

For a fixed exponent both law families are linear in (o, β) (`fits.varpro`), so this module solves that
linear problem for a whole batch of cells at once: the constrained least-squares faces in closed form
(`solve_constrained`, `grid_sse` for the big α-grid arrays) and the Huber fit by safeguarded semismooth
Newton steps (`fit_linear`). Arrays are shaped (R, L, n) as described in `fits.varpro`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fits.robust import HUBER_K, huber_rho, huber_weights


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



# ----------------------------------------------------------------------------- closed-form inner solve


def _with_fixed_offset(o, Sw, Sy, Syy, St, Stt, Sty):
    """Best β and the SSE when the offset is pinned to o (moments taken about o)."""
    sty = Sty - o * St
    syy = Syy - 2.0 * o * Sy + o * o * Sw
    beta = sty / Stt
    return beta, syy - beta * sty, syy  # β, SSE at that β, SSE at β = 0


def solve_constrained(moments, bounds: Bounds, o_fix, o_min, need_params: bool = True):
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


def moments(w, y, t):
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


def contract(a, t):
    """Σ_n a[r, l, n]·t[·, l, g, n] → (R, L, G). With one design shared by all replicates (the bootstrap)
    this is one batched matrix product per language instead of an (R, L, G, n) temporary."""
    if t.shape[0] == 1:
        # Contiguous operands let matmul use BLAS (30× faster than on the transposed views).
        lhs = np.ascontiguousarray(a.transpose(1, 0, 2))
        return np.matmul(lhs, np.ascontiguousarray(t[0].transpose(0, 2, 1))).transpose(1, 0, 2)
    return np.einsum("rln,rlgn->rlg", a, t)


def grid_sse(moments, bounds: Bounds, o_fix, o_min):
    """The constrained minimum SSE of `solve_constrained` without forming (o, β), for the big α-grid arrays.

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
                _, _, full = solve_constrained(moments, bounds, None, o_min, need_params=False)
                sse = np.where(bad, full, sse)
        return sse


# ------------------------------------------------------------------------------------ the problem


@dataclass
class Problem:
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
    def build(cls, y, lx, mask, scale, bounds: Bounds) -> "Problem":
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

    def rows(self, idx) -> "Problem":
        """The sub-problem of some replicates (arrays shared by all replicates stay shared)."""
        keep = lambda a: a if a is None or a.shape[0] == 1 else a[idx]  # noqa: E731
        return Problem(self.yc[idx], keep(self.lx), keep(self.mask), keep(self.scale), self.k, self.ybar[idx],
                        keep(self.o_fix), keep(self.o_min))


# ------------------------------------------------------------------- exact robust fit given the basis


@dataclass
class Linear:
    o: np.ndarray  # (R, L, 1)
    beta: np.ndarray  # (R, L, 1)
    r: np.ndarray  # (R, L, n)
    loss: np.ndarray  # (R, L)
    converged: np.ndarray  # (R, L)

    def take(self, idx) -> "Linear":
        return Linear(self.o[idx], self.beta[idx], self.r[idx], self.loss[idx], self.converged[idx])


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
        o, beta, _ = solve_constrained(moments, bounds, o_fix, o_min)
        return o, beta, y - o - beta * t, outside


def fit_linear(t, p: Problem, bounds: Bounds, start: Linear | None = None, max_iter=50, tol=1e-13) -> Linear:
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
        o, beta, _ = solve_constrained(moments(mask, yc, t), bounds, o_fix, o_min)
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
            o_mm, b_mm, _ = solve_constrained(moments(w, y_a[rest], t_a[rest]), bounds, sel(o_fix, idx), sel(o_min, idx))
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
    return Linear(
        o.reshape(R, L, 1), beta.reshape(R, L, 1), r.reshape(R, L, n), loss.reshape(R, L), converged.reshape(R, L)
    )
