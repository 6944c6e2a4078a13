"""Goodness of fit, the leave-largest-size-out backtest, and choosing a law by it.

The backtest asks the question the allocator depends on: fitted on the smaller sizes, how well does a
law predict the largest one? All runs at the largest size are held out (every seed), and the prediction
is compared with their mean. `--law auto` keeps, per language, the law with the lowest backtest error;
errors that agree to within numerical noise are ties, won by the law with fewer parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Backtest errors within this much of the best are ties: a relative part for large errors and an
# absolute part (relative to the language's spread of the metric) for the ~0 errors of noiseless data.
TIE_RTOL = 1e-6
TIE_ATOL = 1e-8
# On a tie in parameters too, prefer the simpler law in this order.
LAW_PREFERENCE = ("log", "power", "shared")


@dataclass(frozen=True)
class Backtest:
    """Fit without the largest size, predict it: the prediction against the mean of its runs."""

    x_held: float
    actual: float
    predicted: float
    abs_error: float
    rel_error: float | None  # None when the actual value is 0


def make_backtest(x_held: float, actual: float, predicted: float) -> Backtest:
    err = abs(predicted - actual)
    return Backtest(float(x_held), float(actual), float(predicted), float(err), float(err / abs(actual)) if actual else None)


def hold_out_largest(x: np.ndarray, y: np.ndarray):
    """(x_train, y_train, x_held, mean y at x_held)."""
    x_held = float(np.max(x))
    held = x == x_held
    return x[~held], y[~held], x_held, float(np.mean(y[held]))


def goodness(y: np.ndarray, residuals: np.ndarray) -> tuple[float | None, float]:
    """(R², RMSE). R² is None when the metric does not vary (nothing to explain)."""
    ss_res = float(np.sum(residuals**2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    rmse = float(np.sqrt(ss_res / len(y)))
    return (1.0 - ss_res / ss_tot if ss_tot > 0 else None), rmse


def choose_law(errors: dict[str, float | None], n_params: dict[str, float], spread: float) -> str | None:
    """The law with the lowest backtest error; ties (see TIE_*) go to fewer parameters. None if no law
    could be backtested."""
    valid = {law: e for law, e in errors.items() if e is not None and np.isfinite(e)}
    if not valid:
        return None
    best = min(valid.values())
    tol = TIE_RTOL * best + TIE_ATOL * max(spread, np.finfo(float).tiny)
    tied = [law for law, e in valid.items() if e <= best + tol]
    return min(tied, key=lambda law: (n_params[law], LAW_PREFERENCE.index(law)))
