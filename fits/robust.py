"""The robust loss every fit minimises, and the noise scale it is measured in.

The loss is Huber's: quadratic for residuals within `HUBER_K` noise scales, linear beyond, so one
corrupted run pulls a curve with bounded force instead of the squared force of least squares. The noise
scale is set from the data (a median of absolute residuals), so "within K scales" means the same thing for
a chrF curve and a loss curve. Everything here broadcasts: one fit or a whole bootstrap at once.
"""

from __future__ import annotations

import warnings

import numpy as np

# Huber's tuning constant: 95% efficiency against least squares when the noise really is Gaussian.
HUBER_K = 1.345
# median(|N(0, σ)|) = σ / 1.4826, so this turns a median absolute residual into a standard deviation.
MAD_TO_SIGMA = 1.4826
# A scale is never allowed below this fraction of the metric's range over the runs (0.1%: e.g. 0.03 chrF for
# a 30-point range, far below any real run-to-run noise). With noiseless data every residual is ~0, and a
# vanishing scale would turn the loss into a pure L1 loss with no quadratic core (and divide by zero).
SCALE_FLOOR = 1e-3


def huber_weights(residuals: np.ndarray, scale, k: float = HUBER_K) -> np.ndarray:
    """IRLS weights ψ(r)/r of the Huber loss: 1 inside the quadratic core, K·scale/|r| outside.

    k = inf gives all-ones weights: plain least squares.
    """
    threshold = k * np.asarray(scale, dtype=float)
    a = np.abs(residuals)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a <= threshold, 1.0, threshold / a)


def huber_rho(residuals: np.ndarray, scale, k: float = HUBER_K) -> np.ndarray:
    """The Huber loss ρ(r/scale): z²/2 within k, k·|z| − k²/2 beyond (k = inf: least squares)."""
    z = np.abs(residuals) / np.asarray(scale, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(z <= k, 0.5 * z * z, k * z - 0.5 * k * k)


def huber_psi(residuals: np.ndarray, scale, k: float = HUBER_K) -> np.ndarray:
    """ψ = ρ′: the standardised residual clipped to ±k."""
    return np.clip(residuals / np.asarray(scale, dtype=float), -k, k)


def scale_floor(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The smallest noise scale allowed for each row of y (last axis = points, mask marks real points)."""
    big = np.where(mask > 0, y, np.nan)
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(big, axis=-1) - np.nanmin(big, axis=-1)
        size = np.nanmax(np.abs(big), axis=-1)
    # A constant series has no spread; fall back to its magnitude, then to 1 (all zeros).
    ref = np.where(spread > 0, spread, np.where(size > 0, size, 1.0))
    return SCALE_FLOOR * ref


def robust_scale(residuals: np.ndarray, mask: np.ndarray, n_params, y: np.ndarray, interpolating: bool = False):
    """Noise standard deviation of each row from its residuals (last axis = points): 1.4826·median|r|.

    Residuals of p fitted parameters are shrunk; two cases are corrected for:
    - a smooth fit (least squares, Huber): all n residuals shrink by about √((n−p)/n), undone by √(n/(n−p));
    - a least-absolute-deviations fit (`interpolating`): it passes exactly through p points, whose zero
      residuals carry no information, so the median is taken over the other n−p residuals only.
    Rows with no residual degrees of freedom (n ≤ p) get the floor: an exact fit says nothing about noise.
    """
    n = mask.sum(axis=-1)
    absr = np.where(mask > 0, np.abs(residuals), np.nan)
    p = np.asarray(n_params, dtype=float)
    dof = n - p
    if interpolating:
        # Blank out the ceil(p) smallest residuals of each row (the points the fit passes through).
        ranks = np.argsort(np.argsort(np.where(mask > 0, np.abs(residuals), np.inf), axis=-1), axis=-1)
        absr = np.where(ranks >= np.ceil(p)[..., None] if np.ndim(p) else ranks >= np.ceil(p), absr, np.nan)
        factor = 1.0
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.sqrt(n / dof)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with no residual left: handled by dof below
        med = np.nanmedian(absr, axis=-1)
        sigma = np.where(dof > 0, MAD_TO_SIGMA * med * factor, 0.0)
    return np.maximum(np.nan_to_num(sigma), scale_floor(y, mask))
