"""The extrapolation error of a law beyond the measured sizes, estimated from the fit's own backtest.

Why: posterior draws describe a curve's uncertainty *given* its law. Beyond the largest measured size
the larger error is the law's own misfit, which no draw of that law contains: on published data-scaling
curves fitted at ≤ 1/8 of their largest size (benchmarks/real_curves.py) the draws' 90% intervals held
56-96% of the points 2-8x beyond, and 16% of Goldfish's points 10x beyond.

The data say how large that misfit is. The fit already backtests its law: every language fitted without
its largest size predicts it (`fits.population.backtest_law`). Each backtest error e_l, made d_l =
ln(held-out size / largest size it was fitted on) beyond the data, measures an extrapolation of the same
procedure on the same curves. Pooled over languages (one recipe, one law, as the fit itself pools):

    k² = mean_l (e_l² − σ²/m_l) / d_l²     k: the error per e-fold of extrapolation, metric units

floored at 0 (σ²/m_l: the run noise of the held-out value, a mean of m_l runs, which does not grow with
the distance and is not part of the curve an interval is about). At x beyond a language's largest fitted
size x_max the prediction's error is taken to scale as k·ln(x / x_max): linearly in the distance (a
slope error), zero inside the measured range. Its sign is not modelled: the backtest's errors can lean
the other way from the final fit's (Goldfish's backtest over-predicts the loss its final fit
under-predicts), so the term is symmetric about the curve and leaves every mean — the point curve, the
mean over draws — where it was. The curves themselves (`LanguageFit.boot`, what the allocator plans on)
do not carry it: only the predictions read through `LanguageFit.predict_draws` do.

The backtest error already contains the backtest fit's own parameter uncertainty, which the draws carry
as well, so the term only tops the draws up: its scale at x is what k·d leaves once the draws' own
spread there is counted, sqrt(max(0, (k·d)² − var(draws at x))); on curves that follow the law the
draws are about that wide already and the term adds less (synthetic in-law worlds: 90% intervals 2-8x
beyond held the truth 0.89 of the time before, 0.95 with it — the backtest fits one size fewer than the
final fit, so its errors run larger). Each draw r gets one error z_r·that scale,
z_r the stratified quantiles of a Student t with as many degrees of freedom as languages backtested
(k rests on that many errors), in an order fixed by the language's name: deterministic and symmetric.

Linear growth is the conservative choice where errors grow more slowly than the distance (on Gordon et
al.'s cross-entropy they stay level from 2x to 8x beyond); docs/results/real-curves.md has the coverage.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Extrapolation:
    """The pooled extrapolation error: `scale` metric units per e-fold beyond the largest fitted size
    (k above), estimated from `languages` backtests (the t distribution's degrees of freedom)."""

    scale: float
    languages: int

    def distance(self, x, largest: float) -> np.ndarray:
        """ln(x / largest) beyond the largest fitted size, 0 at or inside it (x = 0 included)."""
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > largest, np.log(np.maximum(x, largest) / largest), 0.0)

    def errors(self, draws: int, language: str) -> np.ndarray:
        """(draws,) standard errors z_r: t quantiles at (i + ½)/draws, permuted by the language's name, so
        they sum to zero (symmetric) and are the same every time the fit is read."""
        u = (np.arange(draws) + 0.5) / draws
        z = stats.t.ppf(u, max(self.languages, 1))
        order = np.random.default_rng(zlib.crc32(("extrapolation:" + language).encode("utf-8"))).permutation(draws)
        return z[order]

    def widen(self, draws: np.ndarray, x, largest: float, language: str) -> np.ndarray:
        """The draws' predictions (x.shape + (R,)) with each draw's extrapolation error added (module
        docstring): unchanged at and below `largest`."""
        d = self.distance(x, largest)
        if self.scale <= 0 or not np.any(d > 0):
            return draws
        return draws + self._top_up(d, _spread(draws, axis=-1))[..., None] * self.errors(draws.shape[-1], language)

    def widen_each(self, draws: np.ndarray, x: np.ndarray, largest: float, language: str) -> np.ndarray:
        """(R,) draws, draw r read at its own x_r (the effective pairs of its τ draw), each with the error
        `widen` gives it (the same z_r) scaled by the top-up at x_r. `widen` cannot take this directly: with
        x of shape (R,) it wants every draw at every x_r, R² values for up to 100,000 draws. The spread
        topped up is the draws' own as read, so equal x_r give exactly `widen`'s result."""
        d = self.distance(x, largest)
        if self.scale <= 0 or not np.any(d > 0):
            return draws
        return draws + self._top_up(d, _spread(draws, axis=None)) * self.errors(draws.shape[-1], language)

    def _top_up(self, d: np.ndarray, spread) -> np.ndarray:
        """What the draws' own spread leaves of (k·d)²: the error the term adds, as a standard deviation."""
        return np.sqrt(np.maximum((self.scale * d) ** 2 - spread, 0.0))


def _spread(draws: np.ndarray, axis) -> np.ndarray:
    """The variance of the finite draws (0 where none is finite)."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.nanvar(np.where(np.isfinite(draws), draws, np.nan), axis=axis), nan=0.0)


def backtest_distance(backtest, sizes) -> float | None:
    """ln(held-out size / the largest size the backtest was fitted on), None without one."""
    below = [s for s in sizes if 0 < s < backtest.x_held]
    return float(np.log(backtest.x_held / max(below))) if below else None


def estimate(cases: Iterable[tuple[float, float, float]]) -> Extrapolation | None:
    """The pooled extrapolation error from backtest cases (error, distance d > 0, the held-out value's
    noise variance σ²/runs); None without a case.

    k² = mean((e² − σ²/runs) / d²), floored at 0: the held-out value is a mean of noisy runs, and that
    noise neither grows with the distance nor belongs in an interval of the curve."""
    cases = [(e, d, v) for e, d, v in cases if d > 0 and np.isfinite(e) and np.isfinite(v)]
    if not cases:
        return None
    k2 = float(np.mean([(e * e - v) / (d * d) for e, d, v in cases]))
    return Extrapolation(float(np.sqrt(max(k2, 0.0))), len(cases))
