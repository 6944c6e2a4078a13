"""Point fits of the three laws: robust, bounded, globally searched, convergence checked.

Each fit runs the variable-projection engine (`fits.varpro`) three times, because the Huber loss needs a
noise scale and the scale needs residuals that no outlier has smeared (see `_scale_rounds`); the last run
refines the exponent to the exact profile optimum. A per-language power fit is then polished over all
three parameters jointly with `scipy.optimize.least_squares` (Huber loss, bounds), whose status is
checked; the polish is kept only if it does not raise the loss, so a failed polish never makes a fit worse.

Parameters are reported in original units (see `fits.laws`): power {offset, scale, alpha}, log {a, b}.
Inside, x is normalised by a reference size x_ref (geometric mean of the sizes): y = o + β·t with
t = (x/x_ref)^(−α) or ln(x/x_ref), hence scale = −d·β·x_ref^α, a = o − β·ln x_ref, b = β.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from fits.laws import Curve, direction_sign
from fits.robust import HUBER_K, huber_rho, robust_scale, scale_floor
from fits.varpro import ALPHA_BOUNDS, BatchFit, Bounds, fit_log_batch, fit_power_batch

LAWS = ("power", "log", "shared")
_NOT_CONVERGED = "the fit did not converge: the search stopped early, so the parameters may be off the optimum"


@dataclass(frozen=True)
class Spec:
    """What every fit of one metric shares: its direction and the power law's offset constraints."""

    higher_is_better: bool = True
    ceiling: float | None = None  # pins the power law's offset (a score's ceiling, or a loss's floor)
    offset_min: float | None = None  # lower bound on the offset (a loss floor E ≥ 0)

    @property
    def sign(self) -> float:
        return direction_sign(self.higher_is_better)

    @property
    def power_bounds(self) -> Bounds:
        return Bounds(
            sign=self.sign,
            offset_fixed=self.ceiling,
            offset_min=None if self.ceiling is not None else self.offset_min,
        )

    def n_params(self, law: str, n_shared: int = 1) -> float:
        """Free parameters per language (the shared exponent is split among the languages that share it)."""
        linear = 1 if self.ceiling is not None else 2
        if law == "power":
            return linear + 1
        if law == "log":
            return 2
        if law == "shared":
            return linear + 1.0 / max(n_shared, 1)
        raise ValueError(f"unknown law {law!r}")

    def min_sizes(self, law: str) -> int:
        """Distinct sizes a language needs for its own parameters to be identified."""
        if law == "power":
            return 2 if self.ceiling is not None else 3
        return 2  # log: two parameters; shared: the exponent comes from the other languages


@dataclass
class PointFit:
    """One language's fit: parameters in original units plus what the bootstrap and diagnostics need."""

    law: str  # "power" | "log" | "shared"
    family: str  # "power" | "log"
    params: dict[str, float]
    x: np.ndarray
    y: np.ndarray
    x_ref: float
    scale: float  # the Huber noise scale σ the fit used (metric units)
    n_params: float
    converged: bool = True
    notes: list[str] = field(default_factory=list)

    def curve(self, higher_is_better: bool) -> Curve:
        return Curve(self.family, dict(self.params), higher_is_better, law=self.law)

    def fitted(self, higher_is_better: bool) -> np.ndarray:
        return np.asarray(self.curve(higher_is_better).predict(self.x), dtype=float)

    @property
    def lx(self) -> np.ndarray:
        return np.log(self.x / self.x_ref)


# ------------------------------------------------------------------------------------------ packing


def _x_ref(x: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(np.unique(x)))))


def pack_series(data: list[tuple[np.ndarray, np.ndarray]]):
    """Pad series of different lengths into (len(data), n_max) arrays with a mask of real points."""
    n_max = max(len(x) for x, _ in data)
    k = len(data)
    lx, y, mask = np.zeros((k, n_max)), np.zeros((k, n_max)), np.zeros((k, n_max))
    x_ref = np.array([_x_ref(x) for x, _ in data])
    for i, (xi, yi) in enumerate(data):
        lx[i, : len(xi)] = np.log(xi / x_ref[i])
        y[i, : len(yi)] = yi
        mask[i, : len(xi)] = 1.0
    return lx, y, mask, x_ref


def _scale_rounds(run, y, mask, n_params) -> tuple[BatchFit, np.ndarray]:
    """Three fits, each setting the noise scale of the next.

    1. Least absolute deviations (Huber at the scale floor, so every residual above 0.1% of the range is
       in the linear part): one corrupted run cannot drag it, unlike least squares, which with 6 points
       and 3 parameters spreads a single outlier over every residual and hides it in the scale.
    2. Huber with the scale of those residuals; 3. Huber with the scale of its residuals, solved exactly.

    `run(scale, precise)` fits with a Huber scale shaped like y's leading axes plus a points axis of 1.
    Returns the final fit and the scale it used.
    """
    fit = run(scale_floor(y, mask)[..., None], False)
    scale = robust_scale(fit.residuals, mask, n_params, y, interpolating=True)[..., None]
    fit = run(scale, False)
    scale = robust_scale(fit.residuals, mask, n_params, y)[..., None]
    return run(scale, True), scale


# --------------------------------------------------------------------------------------------- fits


def fit_power(data: list[tuple[np.ndarray, np.ndarray]], spec: Spec, alpha: float | None = None, law: str = "power"):
    """Independent power-law fits of several languages at once (one row each).

    alpha: fix the exponent (a language with too few sizes borrowing the shared one); then only the
    offset and scale are fitted and nothing is polished.
    """
    if not data:
        return []
    lx, y, mask, x_ref = pack_series(data)
    bounds = spec.power_bounds
    n_params = spec.n_params("power") - (1 if alpha is not None else 0)
    fixed = None if alpha is None else np.full(len(data), float(alpha))

    def run(scale, precise):
        return fit_power_batch(y[:, None], lx[:, None], mask[:, None], scale, bounds, alpha=fixed, precise=precise)

    fit, scale = _scale_rounds(run, y[:, None], mask[:, None], n_params)
    out = []
    for i, (xi, yi) in enumerate(data):
        o, beta, a = float(fit.offset[i, 0]), float(fit.beta[i, 0]), float(fit.alpha[i])
        notes = [] if fit.converged[i] else [_NOT_CONVERGED]
        converged = bool(fit.converged[i])
        sigma = float(scale[i, 0, 0])
        if alpha is None:
            (o, beta, a), polished_ok, message = _polish_power(
                lx[i, : len(xi)], yi, sigma, bounds, (o, beta, a), float(fit.loss[i])
            )
            if not polished_ok:
                notes.append(f"the least-squares polish did not converge ({message}); kept the variable-projection fit")
        params = {"offset": o, "scale": float(-spec.sign * beta * x_ref[i] ** a), "alpha": a}
        out.append(PointFit(law, "power", params, xi, yi, float(x_ref[i]), sigma, n_params, converged, notes))
    return out


def _polish_power(lx, y, sigma, bounds: Bounds, start, start_loss):
    """Joint Huber least squares over (o, s, α) from the variable-projection optimum, within bounds.

    Returns ((o, β, α), ok, message): ok is false only when least_squares reports a failure; the
    polished point is used only if its loss is not worse than the start's.
    """
    d = bounds.sign
    o0, beta0, a0 = start
    fixed_o = bounds.offset_fixed
    lo_o = -np.inf if bounds.offset_min is None else bounds.offset_min

    def unpack(theta):
        return (fixed_o, theta[0], theta[1]) if fixed_o is not None else tuple(theta)

    def resid(theta):
        o, s, a = unpack(theta)
        return (y - (o - d * s * np.exp(-a * lx))) / sigma

    def jac(theta):
        o, s, a = unpack(theta)
        e = np.exp(-a * lx)
        cols = [np.full_like(lx, -1.0)] if fixed_o is None else []
        cols += [d * e, -d * s * lx * e]  # −∂model/∂s, −∂model/∂α
        return np.column_stack(cols) / sigma

    s0 = max(-d * beta0, 0.0)
    theta0 = [s0, a0] if fixed_o is not None else [o0, s0, a0]
    lower = [0.0, ALPHA_BOUNDS[0]] if fixed_o is not None else [lo_o, 0.0, ALPHA_BOUNDS[0]]
    upper = [np.inf, ALPHA_BOUNDS[1]] if fixed_o is not None else [np.inf, np.inf, ALPHA_BOUNDS[1]]
    theta0 = np.clip(theta0, lower, upper)
    result = least_squares(
        resid, theta0, jac=jac, bounds=(lower, upper), loss="huber", f_scale=HUBER_K,
        method="trf", x_scale="jac", ftol=1e-14, xtol=1e-14, gtol=1e-14, max_nfev=500,
    )
    # least_squares stops a hair inside an active bound; put those parameters exactly on it (a flat curve
    # has scale 0, not 1e-19, so "flat" can be tested exactly).
    theta = np.where(result.active_mask < 0, lower, np.where(result.active_mask > 0, upper, result.x))
    o, s, a = unpack(theta)
    loss = float(np.sum(huber_rho(resid(theta) * sigma, sigma)))
    if result.success and loss <= start_loss * (1 + 1e-12) + 1e-300:
        return (float(o), float(-d * s), float(a)), True, result.message
    return (o0, beta0, a0), bool(result.success), result.message


def fit_log(data: list[tuple[np.ndarray, np.ndarray]], spec: Spec):
    """Independent robust log-law fits (y = a + b·ln x) of several languages at once."""
    if not data:
        return []
    lx, y, mask, x_ref = pack_series(data)

    def run(scale, precise):
        return fit_log_batch(y[:, None], lx[:, None], mask[:, None], scale)

    fit, scale = _scale_rounds(run, y[:, None], mask[:, None], 2)
    out = []
    for i, (xi, yi) in enumerate(data):
        b = float(fit.beta[i, 0])
        params = {"a": float(fit.offset[i, 0] - b * np.log(x_ref[i])), "b": b}
        notes = [] if fit.converged[i] else [_NOT_CONVERGED]
        sigma = float(scale[i, 0, 0])
        out.append(PointFit("log", "log", params, xi, yi, float(x_ref[i]), sigma, 2, bool(fit.converged[i]), notes))
    return out


@dataclass
class SharedFit:
    alpha: float
    fits: list[PointFit]
    converged: bool


def fit_shared(data: list[tuple[np.ndarray, np.ndarray]], spec: Spec) -> SharedFit:
    """One exponent for all languages, each with its own offset and scale (one joint robust fit).

    Variable projection is exact here too: given α every language's two linear parameters have a closed
    form, so the only search is over α, on the sum of every language's Huber loss (each language in units
    of its own noise scale). With 2L+1 parameters a joint least-squares polish adds nothing to that.
    """
    lx, y, mask, x_ref = pack_series(data)
    bounds = spec.power_bounds
    n_params = spec.n_params("shared", len(data))

    def run(scale, precise):
        return fit_power_batch(y[None], lx[None], mask[None], scale, bounds, precise=precise)

    fit, scale = _scale_rounds(run, y[None], mask[None], n_params)
    a = float(fit.alpha[0])
    converged = bool(fit.converged[0])
    notes = [] if converged else [_NOT_CONVERGED + " (joint shared-exponent fit)"]
    fits = []
    for i, (xi, yi) in enumerate(data):
        scale_i = float(-spec.sign * fit.beta[0, i] * x_ref[i] ** a)
        params = {"offset": float(fit.offset[0, i]), "scale": scale_i, "alpha": a}
        sigma = float(scale[0, i, 0])
        fits.append(PointFit("shared", "power", params, xi, yi, float(x_ref[i]), sigma, n_params, converged, list(notes)))
    return SharedFit(a, fits, converged)
