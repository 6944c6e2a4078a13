"""Bootstrap uncertainty for every law: resample a language's runs, refit, keep every draw's parameters.

Resampling keeps the design fixed (the same x values in every draw), which is what lets the refits of all
draws run as one vectorised batch:

- `runs` (every size has ≥ 2 runs, i.e. several seeds): every size keeps its number of runs and its mean,
  and the runs' deviations from their size's mean are redrawn with replacement (stratified by size: no
  draw loses a size, so none loses the points that pin the curve's shape). The deviations are pooled over
  the language's sizes and inflated by √(N/(N−S)) (N runs, S sizes) for the S means they were measured
  from. Pooling matters: with 2–3 seeds a size's own spread has 1–2 degrees of freedom, and resampling
  within each size alone gave 90% intervals that covered the truth in only 79% of 200 simulated languages.
- `residuals` (some size has a single run): the fitted curve plus the fit's residuals redrawn with
  replacement, centred and inflated by √(n/(n−p)) for the p parameters the fit spent. With n ≤ p the fit is
  exact, the residuals say nothing about noise, and no interval is produced.

Every draw is refitted with the same robust loss and noise scale as the point fit. The noise level behind
the draws is itself estimated from few degrees of freedom (N−S or n−p), so intervals are the percentile
interval widened about the point estimate by t_df/z (the small-sample correction of a t interval).
Measured coverage of 90% intervals of the prediction at the largest of 6 sizes (power law, Gaussian noise,
2,000 simulated languages per design, 300 draws each): 88.6% with one run per size (plain percentile
intervals: 78.2%), 90.8% with two seeds per size (85.7%), 91.6% with three (89.2%).
Random streams are seeded by (seed, crc32(language)), so a language's draws do not change when other
languages are added.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from scipy import stats

from fits.estimate import PointFit, Spec, pack_series
from fits.varpro import GRID_SIZE, fit_log_batch, fit_power_batch

_GRID_CELLS = 4_000_000  # draws × languages × grid points per refit batch (8 bytes each)


def language_rng(seed: int, language: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(language.encode("utf-8"))]))


@dataclass
class Resampled:
    y: np.ndarray | None  # (draws, n) resampled metric values, same x as the point fit; None = no bootstrap
    method: str | None  # "runs" | "residuals" | None
    df: float | None = None  # degrees of freedom of the noise level behind the draws
    reason: str = ""  # why there is no bootstrap


def resample(fit: PointFit, higher_is_better: bool, draws: int, rng: np.random.Generator) -> Resampled:
    """Draw `draws` resampled copies of one language's metric values (see module docstring)."""
    x, y = fit.x, fit.y
    n = len(y)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if counts.min() >= 2:
        means = np.bincount(inverse, weights=y) / counts
        centre = means[inverse]
        df = n - len(counts)
        dev = (y - centre) * np.sqrt(n / df)
        return Resampled(centre + dev[rng.integers(0, n, size=(draws, n))], "runs", float(df))
    p = fit.n_params
    if n <= p:
        return Resampled(None, None, None, f"no interval: {n} runs for {p:g} parameters leave no residual to resample")
    fitted = fit.fitted(higher_is_better)
    r = y - fitted
    r = (r - r.mean()) * np.sqrt(n / (n - p))
    return Resampled(fitted + r[rng.integers(0, n, size=(draws, n))], "residuals", float(n - p))


def bootstrap_single(fit: PointFit, Y: np.ndarray, spec: Spec) -> dict[str, np.ndarray]:
    """Refit one language's draws (Y: (draws, n)) with its own law; parameters in original units."""
    lx = fit.lx[None, None, :]
    if fit.family == "log":
        bf = fit_log_batch(Y[:, None, :], lx, 1.0, fit.scale)
        b = bf.beta[:, 0]
        return {"a": bf.offset[:, 0] - b * np.log(fit.x_ref), "b": b}
    bf = fit_power_batch(Y[:, None, :], lx, 1.0, fit.scale, spec.power_bounds)
    return _power_params(bf.offset[:, 0], bf.beta[:, 0], bf.alpha, fit.x_ref, spec)


def bootstrap_shared(fits: list[PointFit], Ys: list[np.ndarray], spec: Spec) -> list[dict[str, np.ndarray]]:
    """Refit the joint shared-exponent model on draw b of every language at once (one α per draw).

    Draws are refitted in chunks so the α-grid arrays (draws × languages × grid) stay near 32 MB however
    many languages share the exponent."""
    lx, _, mask, x_ref = pack_series([(f.x, f.y) for f in fits])
    draws = Ys[0].shape[0]
    y = np.zeros((draws,) + lx.shape)
    for i, Y in enumerate(Ys):
        y[:, i, : Y.shape[1]] = Y
    scale = np.array([f.scale for f in fits])[None, :, None]
    chunk = max(1, _GRID_CELLS // (len(fits) * GRID_SIZE))
    parts = [
        fit_power_batch(y[i : i + chunk], lx[None], mask[None], scale, spec.power_bounds) for i in range(0, draws, chunk)
    ]
    offset = np.concatenate([bf.offset for bf in parts])
    beta = np.concatenate([bf.beta for bf in parts])
    alpha = np.concatenate([bf.alpha for bf in parts])
    return [_power_params(offset[:, i], beta[:, i], alpha, x_ref[i], spec) for i in range(len(fits))]


def _power_params(o, beta, alpha, x_ref, spec: Spec) -> dict[str, np.ndarray]:
    return {"offset": o, "scale": -spec.sign * beta * x_ref**alpha, "alpha": np.asarray(alpha, float)}


def interval(draws: np.ndarray, point, level: float, df: float | None, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed percentile interval of the draws at `level`, widened about the point estimate by
    t_df/z when the noise level behind the draws rests on `df` degrees of freedom (see module docstring)."""
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [tail, 1.0 - tail], axis=axis)
    if df is None or not np.isfinite(df):
        return lo, hi
    widen = stats.t.ppf(1.0 - tail, df) / stats.norm.ppf(1.0 - tail)
    return point - widen * (point - lo), point + widen * (hi - point)
