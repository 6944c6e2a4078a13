"""Typed results of `fit_runs`: what the allocator and the report code against."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fits.bootstrap import interval
from fits.extrapolation import Extrapolation
from fits.laws import Curve
from fits.validate import Backtest

__all__ = ["Backtest", "FitSet", "LanguageFit"]


@dataclass
class LanguageFit:
    """One language's fitted curve, its bootstrap, and everything that says how far to trust it."""

    language: str
    law: str  # "power" | "offset" | "log" | "shared" (offset and shared are power curves: with x0, with the common α)
    curve: Curve  # the point fit
    boot: Curve | None  # every bootstrap draw as one Curve whose params are equal-length arrays
    intervals: dict[str, tuple[float, float]]  # per parameter, at `level`; empty without a bootstrap
    r2: float | None
    rmse: float
    residuals: list[float]  # y − fitted, one per run, in x order
    backtest: Backtest | None  # None when too few sizes remain once the largest is held out
    n_points: int
    sizes: list[float]  # sorted distinct x
    tokens_per_pair: float | None
    warnings: list[str]
    candidates: dict[str, float | None]  # law → backtest absolute error (None: could not be backtested)
    level: float = 0.9
    bootstrap_method: str | None = None  # "posterior" (pooled) | "runs" | "residuals" | None (see fits.bootstrap)
    interval_df: float | None = None  # degrees of freedom behind the draws' noise level (widens intervals)
    worsens_with_data: bool = False  # the metric's trend over the sizes goes the wrong way
    own_params: dict[str, float] | None = None  # pooled fits: the same law on this language's data alone
    moved: dict[str, float] = field(default_factory=dict)  # pooled − own, per parameter: what pooling did
    ess: float | None = None  # pooled fits: effective sample size of the posterior draws
    # Pooled fits: the law's error beyond the largest fitted size, from the backtest (fits.extrapolation);
    # None (older fits.json files, per-language fits): the draws alone.
    extrapolation: Extrapolation | None = None

    @property
    def family(self) -> str:
        return self.curve.family

    @property
    def params(self):
        return self.curve.params

    @property
    def higher_is_better(self) -> bool:
        return self.curve.higher_is_better

    def predict(self, x) -> np.ndarray:
        return np.asarray(self.curve.predict(np.asarray(x, dtype=float)), dtype=float)

    def predict_draws(self, x) -> np.ndarray | None:
        """Predictions of every bootstrap draw: shape x.shape + (draws,), or None without a bootstrap.
        Beyond the largest fitted size each draw also carries its extrapolation error (`extrapolation`:
        symmetric, so the mean over draws is the draws' own mean); `boot.predict` gives the curves alone."""
        if self.boot is None:
            return None
        x = np.asarray(x, dtype=float)
        draws = np.asarray(self.boot.predict(x[..., None]), dtype=float)
        if self.extrapolation is None or not self.sizes:
            return draws
        return self.extrapolation.widen(draws, x, max(self.sizes), self.language)

    def predict_interval(self, x, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Interval of the prediction at x from `predict_draws` (percentile interval with the small-sample
        widening of `fits.bootstrap.interval`): the curve's uncertainty, plus the law's extrapolation error
        beyond the largest fitted size. Without a bootstrap (too few runs, or --bootstrap 0; the warnings
        say which) both bounds are NaN: an interval is never invented."""
        draws = self.predict_draws(x)
        if draws is None:
            nan = np.full(np.shape(x), np.nan)
            return nan, nan.copy()
        return interval(draws, self.predict(x), level, self.interval_df)


@dataclass
class FitSet:
    """Every language's fit of one metric, plus the languages that could not be fitted and why."""

    metric: str
    higher_is_better: bool
    x: str  # "pairs" | "tokens"
    law_requested: str
    ceiling: float | None
    bootstrap: int
    seed: int
    languages: dict[str, LanguageFit]
    skipped: dict[str, str]  # language → why it was not fitted
    level: float = 0.9
    notes: list[str] = field(default_factory=list)  # table-level remarks (ignored rows, assumed direction)
    pooling: str = "none"  # "population" (fits.population) | "none" (per-language fits, fits.api)
    population: dict = field(default_factory=dict)  # pooled fits: the law chosen, σ, the population prior
    transfer: dict = field(default_factory=dict)  # language → fits.transfer.Transfer (from mixture proxy runs)

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"
