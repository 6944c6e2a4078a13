"""The vectorised variable-projection engine against scipy's general-purpose solvers on random problems."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares, lsq_linear

from fits.robust import HUBER_K, huber_rho
from fits.varpro import ALPHA_BOUNDS, Bounds, fit_log_batch, fit_power_batch

X = np.array([250.0, 500, 1000, 2000, 4000, 8000])
LX = np.log(X / np.exp(np.mean(np.log(X))))


@pytest.mark.parametrize(
    "bounds",
    [Bounds(sign=1.0), Bounds(sign=-1.0), Bounds(sign=-1.0, offset_min=0.0), Bounds(sign=1.0, offset_fixed=70.0), Bounds()],
)
def test_closed_form_constrained_least_squares_matches_lsq_linear(bounds):
    """With the exponent fixed and no robust loss, each fit is a box-constrained linear least squares."""
    rng = np.random.default_rng(0)
    rows, alpha = 40, 0.5
    # Mix of data that satisfy the constraints and data that push against them (falling, or below 0).
    y = rng.normal(0, 1, (rows, len(X))) + rng.choice([-1, 1], (rows, 1)) * 5 * np.exp(-alpha * LX) + rng.uniform(-3, 3, (rows, 1))
    fit = fit_power_batch(y[:, None], LX[None, None], 1.0, None, bounds, alpha=np.full(rows, alpha), precise=True)
    t = np.exp(-alpha * LX)
    for i in range(rows):
        if bounds.offset_fixed is not None:
            lb, ub = ([-np.inf], [np.inf]) if bounds.sign is None else (([-np.inf], [0.0]) if bounds.sign > 0 else ([0.0], [np.inf]))
            ref = lsq_linear(t[:, None], y[i] - bounds.offset_fixed, bounds=(lb, ub), method="bvls", tol=1e-14)
            o_ref, b_ref = bounds.offset_fixed, ref.x[0]
        else:
            lo_o = -np.inf if bounds.offset_min is None else bounds.offset_min
            if bounds.sign is None:
                lb, ub = [lo_o, -np.inf], [np.inf, np.inf]
            else:
                lb, ub = ([lo_o, -np.inf], [np.inf, 0.0]) if bounds.sign > 0 else ([lo_o, 0.0], [np.inf, np.inf])
            ref = lsq_linear(np.column_stack([np.ones_like(t), t]), y[i], bounds=(lb, ub), method="bvls", tol=1e-14)
            o_ref, b_ref = ref.x
        assert fit.offset[i, 0] == pytest.approx(o_ref, abs=1e-8)
        assert fit.beta[i, 0] == pytest.approx(b_ref, abs=1e-8)


def _huber_loss(r, scale):
    return float(np.sum(huber_rho(r, scale)))


def _scipy_huber(fun, x0, bounds=(-np.inf, np.inf)):
    return least_squares(fun, x0, loss="huber", f_scale=HUBER_K, bounds=bounds, xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=2000)


def test_robust_log_fit_matches_scipy_huber():
    rng = np.random.default_rng(1)
    rows, scale = 30, 0.8
    y = 3 + 4 * LX + rng.normal(0, scale, (rows, len(X)))
    y[np.arange(rows), rng.integers(0, len(X), rows)] += rng.choice([-1, 1], rows) * rng.uniform(5, 20, rows)
    fit = fit_log_batch(y[:, None], LX[None, None], 1.0, scale, precise=True)
    assert fit.converged.all()
    for i in range(rows):
        ref = _scipy_huber(lambda th: (y[i] - th[0] - th[1] * LX) / scale, [0.0, 0.0])
        assert fit.offset[i, 0] == pytest.approx(ref.x[0], abs=1e-7)
        assert fit.beta[i, 0] == pytest.approx(ref.x[1], abs=1e-7)


def test_robust_power_fit_is_the_global_optimum():
    """The engine's loss is never above the best of a multi-start scipy Huber fit over (o, s, α)."""
    rng = np.random.default_rng(2)
    rows, scale = 12, 0.7
    o = rng.uniform(40, 60, rows)
    s = rng.uniform(3, 15, rows)
    a = rng.uniform(0.2, 1.2, rows)
    y = o[:, None] - s[:, None] * np.exp(-a[:, None] * LX) + rng.normal(0, scale, (rows, len(X)))
    y[np.arange(rows), rng.integers(0, len(X), rows)] -= rng.uniform(4, 12, rows)  # one corrupted run each
    fit = fit_power_batch(y[:, None], LX[None, None], 1.0, scale, Bounds(sign=1.0), precise=True)
    assert fit.converged.all()
    for i in range(rows):
        ours = _huber_loss(fit.residuals[i, 0], scale)
        assert ours == pytest.approx(fit.loss[i], rel=1e-12)
        best = np.inf
        for a0 in (0.05, 0.3, 1.0, 3.0):
            ref = _scipy_huber(
                lambda th: (y[i] - th[0] + th[1] * np.exp(-th[2] * LX)) / scale,
                [y[i].max(), 5.0, a0],
                bounds=([-np.inf, 0.0, ALPHA_BOUNDS[0]], [np.inf, np.inf, ALPHA_BOUNDS[1]]),
            )
            best = min(best, ref.cost)  # scipy's Huber cost is Σρ(r/scale) in the same units
        assert ours <= best * (1 + 1e-9) + 1e-12


def test_shared_exponent_joint_fit_matches_scipy():
    rng = np.random.default_rng(3)
    L, alpha, scales = 4, 0.6, np.array([0.5, 1.0, 0.8, 2.0])
    o = rng.uniform(40, 60, L)
    s = rng.uniform(5, 15, L)
    y = o[:, None] - s[:, None] * np.exp(-alpha * LX) + rng.normal(0, 1, (L, len(X))) * scales[:, None]
    fit = fit_power_batch(y[None], np.tile(LX, (L, 1))[None], 1.0, scales[None, :, None], Bounds(sign=1.0), precise=True)

    def resid(th):
        a, rest = th[0], th[1:].reshape(L, 2)
        return ((y - rest[:, :1] + rest[:, 1:] * np.exp(-a * LX)) / scales[:, None]).ravel()

    x0 = np.concatenate([[0.5], np.column_stack([y.max(1), np.full(L, 5.0)]).ravel()])
    lb = np.concatenate([[ALPHA_BOUNDS[0]], np.tile([-np.inf, 0.0], L)])
    ub = np.concatenate([[ALPHA_BOUNDS[1]], np.tile([np.inf, np.inf], L)])
    ref = _scipy_huber(resid, x0, bounds=(lb, ub))
    assert fit.alpha[0] == pytest.approx(ref.x[0], rel=1e-6)
    np.testing.assert_allclose(fit.offset[0], ref.x[1::2], rtol=1e-6)
    np.testing.assert_allclose(-fit.beta[0], ref.x[2::2], rtol=1e-5)


def test_bootstrap_precision_is_close_to_exact():
    """Bootstrap refits stop early (~1e-6 in ln α): their predictions agree with exact solves to far below
    the noise (σ = 1 here)."""
    rng = np.random.default_rng(4)
    y = 50 - 8 * np.exp(-0.5 * LX) + rng.normal(0, 1, (500, len(X)))
    fast = fit_power_batch(y[:, None], LX[None, None], 1.0, 1.0, Bounds(sign=1.0))
    exact = fit_power_batch(y[:, None], LX[None, None], 1.0, 1.0, Bounds(sign=1.0), precise=True)
    pred = lambda f: f.offset[:, 0] + f.beta[:, 0] * np.exp(-f.alpha * LX[-1])  # noqa: E731
    assert np.max(np.abs(pred(fast) - pred(exact))) < 1e-3
    assert np.all(fast.loss >= exact.loss - 1e-9)
