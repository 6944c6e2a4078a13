"""Cross-lingual transfer inside a mixture: what the other languages' data are worth to a language.

A language trained inside a mixture scores more than its own data predict (Greek at 1,000 pairs: 13.5
chrF inside the uniform mixture, 7.0 alone, in this project's first truth test). The effective-data
form of the multilingual scaling literature (ATLAS and earlier "effective data transferred" work) puts
the other languages' data on the language's own axis:

    S_l(mixture) = S_l(D_l + τ_l·D_other,l)

with S_l the language's own fitted curve, D_l its data in the mixture and D_other,l everyone else's (in
the fitted unit, pairs or tokens). τ_l is the worth of one unit of other-language data in units of the
language's own; 0 means no transfer, negative values interference. One τ per receiving language is what
a few mixture proxy runs can identify (a full source × target matrix needs L² mixtures); the planner uses
it through `planner.allocation.transfer`.

Fitting: for every posterior draw of S_l (`LanguageFit.boot`) and the point curve, τ_l minimises the
squared error of the mixture rows over a grid of τ (closed by a parabolic step): so τ's uncertainty comes
from the curve's, draw by draw, and the two stay paired for planning under the posterior.

Only rows where the language had its own data are fitted. A row without (a leave-one-out run's left-out
language) is kept as a check, `alone_gap` = measured − S(τ·D_other): on the embedded default the others'
data alone moved a language −1.5 to +0.2 chrF from its zero-shot score, 1.1 to 3.3 chrF below what the
fitted law predicts there (benchmarks/results/transfer_design.md). Transfer there builds on a language's own data rather
than replacing it, which D_l + τ·D_other cannot express, so those rows would only bend τ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fits.data import Series
from fits.laws import Curve
from fits.population import fit_population
from fits.results import LanguageFit

TAU_RANGE = (-0.5, 2.0)  # interference down to −½, transfer up to twice own data
_GRID = np.linspace(*TAU_RANGE, 251)


@dataclass
class Transfer:
    """One receiving language's transfer estimate."""

    tau: float  # from the point curve
    draws: np.ndarray | None  # one τ per posterior draw of the curve (aligned with LanguageFit.boot)
    rows: int  # mixture rows it rests on
    rms_before: float  # RMS error of the mixture rows predicted from own data only (τ = 0)
    rms_after: float  # ... with the fitted τ
    own_min: float = 0.0  # the least own data (fit units) it had in a mixture run: τ is measured from there up
    alone_rows: int = 0  # rows with no own data (a leave-one-out run's left-out language): a check, not fitted
    alone_gap: float | None = None  # their mean measured − predicted S(τ·D_other); None without such rows
    mixture_fit: LanguageFit | None = None  # the curve fitted on its scores inside mixture runs (own data as x)
    # Every mixture row's (own, others') data in fit units: where the language was measured inside mixtures.
    measured: tuple[tuple[float, float], ...] = ()


def effective(curve: Curve, data: np.ndarray) -> np.ndarray:
    """Effective data clipped where the law is defined: ≥ 0 for an offset curve, ≥ 1 unit for laws that
    diverge at 0 (as the allocator reads them)."""
    return np.maximum(data, 0.0 if curve.has_offset else 1.0)


def _sse(curve: Curve, tau: np.ndarray, x, other, y) -> np.ndarray:
    """Σ over rows of (y − S(x + τ·other))², for τ shaped (G, R) against the curve's R parameter sets."""
    eff = effective(curve, x[None, :, None] + tau[:, None, :] * other[None, :, None])  # (G, n, R)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = np.asarray(curve.predict(eff), dtype=float)
    sse = np.nansum((pred - y[None, :, None]) ** 2, axis=1)
    return np.where(np.isfinite(sse), sse, np.inf)


def _best_tau(curve: Curve, x: np.ndarray, other: np.ndarray, y: np.ndarray) -> np.ndarray:
    """τ minimising Σ (y − S(x + τ·other))² for every parameter set of `curve` (scalar or draws): the best
    grid point, then golden-section search inside its two neighbouring cells (to ~1e-12 of the range)."""
    r = int(np.size(next(iter(curve.params.values()))))
    sse = _sse(curve, np.broadcast_to(_GRID[:, None], (len(_GRID), r)), x, other, y)  # (G, R)
    g = np.argmin(sse, axis=0)
    a, b = _GRID[np.clip(g - 1, 0, len(_GRID) - 1)], _GRID[np.clip(g + 1, 0, len(_GRID) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = _sse(curve, c[None], x, other, y)[0], _sse(curve, d[None], x, other, y)[0]
    for _ in range(60):
        left = fc < fd  # the minimum is in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        c_new, d_new = b - ratio * (b - a), a + ratio * (b - a)
        # Golden section reuses one interior point per step; the other is evaluated anew.
        fc, fd, c, d = (np.where(left, _sse(curve, c_new[None], x, other, y)[0], fd),
                        np.where(left, fc, _sse(curve, d_new[None], x, other, y)[0]), c_new, d_new)
    return 0.5 * (a + b)


def fit_mixture_curves(mixtures: pd.DataFrame, metric: str, higher_is_better: bool, draws: int, seed: int,
                       level: float) -> dict[str, LanguageFit]:
    """Each language's curve fitted on its rows inside mixture runs (x: its own data there; rows without
    own data are the curve's zero point), by the population law; languages with one own-data size skipped."""
    series = {}
    for lang, rows in mixtures[mixtures["other_x"] > 0].groupby("language"):
        order = np.argsort(rows["x"].to_numpy(float), kind="stable")
        series[str(lang)] = Series(str(lang), rows["x"].to_numpy(float)[order], rows["y"].to_numpy(float)[order])
    if not series:
        return {}
    fitted, _skipped, _summary = fit_population(series, metric, higher_is_better, "auto", draws, seed, level)
    return fitted


def fit_transfer(fits: dict[str, LanguageFit], mixtures: pd.DataFrame | None, metric: str,
                 higher_is_better: bool, draws: int, seed: int, level: float) -> dict[str, Transfer]:
    """τ per language that has mixture rows with other-language data and a fitted curve, with its
    in-mixture curve where its mixture rows have two or more own-data sizes."""
    if mixtures is None or mixtures.empty:
        return {}
    inside = fit_mixture_curves(mixtures, metric, higher_is_better, draws, seed, level)
    out = {}
    for lang, rows in mixtures.groupby("language"):
        lf = fits.get(lang)
        rows = rows[rows["other_x"] > 0]
        measured = tuple((float(a), float(b)) for a, b in zip(rows["x"], rows["other_x"]))
        alone, rows = rows[rows["x"] <= 0], rows[rows["x"] > 0]
        if lf is None or rows.empty:
            continue
        x, other, y = (rows[c].to_numpy(float) for c in ("x", "other_x", "y"))
        point = float(_best_tau(Curve(lf.curve.family, {k: np.atleast_1d(v) for k, v in lf.curve.params.items()},
                                      lf.curve.higher_is_better), x, other, y)[0])
        draws = None if lf.boot is None else _best_tau(lf.boot, x, other, y)
        before = float(np.sqrt(np.mean((lf.predict(effective(lf.curve, x)) - y) ** 2)))
        after = float(np.sqrt(np.mean((lf.predict(effective(lf.curve, x + point * other)) - y) ** 2)))
        gap = None
        if len(alone):
            predicted = lf.predict(effective(lf.curve, point * alone["other_x"].to_numpy(float)))
            gap = float(np.mean(alone["y"].to_numpy(float) - np.ravel(predicted)))
        out[lang] = Transfer(point, draws, len(rows), before, after, own_min=float(x.min()),
                             alone_rows=len(alone), alone_gap=gap, mixture_fit=inside.get(str(lang)),
                             measured=measured)
    return out
