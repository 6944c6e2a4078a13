"""Flags on a fitted curve: where a reported number is not what it looks like, in plain words.

A fit always returns numbers; some of them the runs do not determine. Each flag names one such case, with a
short label (what a table shows) and a one-line why (what it means for reading the curve). Pure functions
of a `LanguageFit` and its fit set's context; `fits.json` records them per language (`flags`), `planner
fit` prints them and the report marks the flagged parameters in its fit table.

The rules, precisely (constants below):

- ``alpha_bound`` (power laws): the exponent α lies within a factor `NEAR_BOUND` of an edge of the range
  the fit searches (`fits.pooled.ALPHA_BOUNDS`, 0.01–4), or its interval reaches from near the lower edge
  to near the upper one. The fit then reports the edge of its search, not a rate the runs measured.
- ``amplitude_scale`` (power laws): the amplitude A is the curve's distance from its asymptote where
  x + x₀ = 1 (one pair or token), usually far below the smallest run. It is flagged when it exceeds
  `AMPLITUDE_FACTOR` × the data's scale, the largest |ŷ| of the curve at the fitted sizes: only A·x^−α at
  the measured sizes is measured, A alone is an extrapolation to x = 1 (7.2e18 for a steep curve).
- ``offset_bound`` (power laws): a score's ceiling C above the metric's maximum (100 for chrF and BLEU,
  1 when the scores are fractions; the fit records the bound it used as `population.ceiling_max`), or
  within `AT_BOUND` of it (the bound set it, not the runs); a loss's floor E below 0, or within
  `AT_BOUND` of the data's scale above 0 (pressed against 0).
- ``not_predictive``: the backtest (fitted without the largest size, asked to predict it) missed by more
  than `BACKTEST_SIGMAS` × σ_bt, where σ_bt = sqrt(σ² + (k·d)²): σ the noise of one run (the pooled
  noise level of a population fit, else the language's residual RMS when it has more runs than
  parameters) and k·d the extrapolation error d e-folds beyond the backtest's data, k estimated as
  `fits.extrapolation` does but from the *other* languages' backtests (0 for a fit without that term), so
  one bad curve cannot excuse its own miss by inflating k. The held-out value is a mean of runs, known
  at least to σ, so an error past 2σ_bt is the law's own miss: the curve is not predictive here.
- ``pooling_moved``: a pooled fit moved a parameter from the language's own estimate (its runs alone) to
  a pooled estimate whose interval excludes it: the population, not the language's runs, sets it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from fits.extrapolation import backtest_distance
from fits.pooled import ALPHA_BOUNDS
from fits.population import METRIC_MAX
from fits.results import FitSet, LanguageFit

NEAR_BOUND = 1.25  # α within this factor of an edge of its search range is at the bound
AMPLITUDE_FACTOR = 100.0  # A beyond this many times the largest |ŷ| at the fitted sizes
AT_BOUND = 0.02  # an asymptote within this share of the bound (or of the data's scale, for 0) sits on it
BACKTEST_SIGMAS = 2.0
N_PARAMS = {"power": 3, "log": 2}  # + x₀ for an offset law: a residual RMS needs more runs than these


@dataclass(frozen=True)
class FitFlag:
    """One flag: `code` (stable, for tools), the parameters it concerns (none: the whole curve), a short
    label and a one-line why."""

    code: str
    params: tuple[str, ...]
    label: str
    why: str

    def as_dict(self) -> dict:
        return {**asdict(self), "params": list(self.params)}


def _g(v: float) -> str:
    return f"{v:.3g}"


def _offset_name(lf: LanguageFit) -> str:
    return "C" if lf.higher_is_better else "E"


def alpha_flag(lf: LanguageFit) -> FitFlag | None:
    if lf.family != "power":
        return None
    lo_b, hi_b = ALPHA_BOUNDS
    alpha = float(lf.params["alpha"])
    lo, hi = lf.intervals.get("alpha", (math.nan, math.nan))
    near_lo, near_hi = lo_b * NEAR_BOUND, hi_b / NEAR_BOUND
    if alpha <= near_lo or alpha >= near_hi:
        edge = "lower" if alpha <= near_lo else "upper"
        why = (f"α = {_g(alpha)} sits at the {edge} edge of the range the fit searches ({lo_b:g}–{hi_b:g}): the "
               f"runs do not pin the exponent down, so it is not a measured rate")
    elif lo <= near_lo and hi >= near_hi:
        why = (f"α's interval [{_g(lo)}, {_g(hi)}] spans the whole range the fit searches ({lo_b:g}–{hi_b:g}): the "
               f"runs do not pin the exponent down")
    else:
        return None
    return FitFlag("alpha_bound", ("alpha",), "α at its bound", why)


def data_scale(lf: LanguageFit) -> float | None:
    """The largest |ŷ| of the curve at the fitted sizes (x = 0 included for an offset law)."""
    sizes = np.asarray([s for s in lf.sizes if s > 0 or lf.curve.has_offset], dtype=float)
    if not len(sizes):
        return None
    with np.errstate(all="ignore"):
        y = np.abs(lf.predict(sizes))
    y = y[np.isfinite(y)]
    return float(y.max()) if len(y) else None


def amplitude_flag(lf: LanguageFit) -> FitFlag | None:
    if lf.family != "power":
        return None
    scale, amplitude = data_scale(lf), float(lf.params["scale"])
    if scale is None or scale <= 0 or amplitude <= AMPLITUDE_FACTOR * scale:
        return None
    why = (f"A = {_g(amplitude)} is the curve's distance from its asymptote at x + x₀ = 1, over "
           f"{AMPLITUDE_FACTOR:g}× the largest value at the fitted sizes ({_g(scale)}): only A·x^−α at the "
           f"measured sizes is measured, not A alone")
    return FitFlag("amplitude_scale", ("scale",), "A beyond the data's scale", why)


def metric_maximum(fitset: FitSet | None, metric: str | None) -> float | None:
    """The largest value the metric can take: the bound the fit used, else the metric's known maximum."""
    recorded = (fitset.population or {}).get("ceiling_max") if fitset is not None else None
    if recorded is not None and np.isfinite(recorded):
        return float(recorded)
    return METRIC_MAX.get(str(metric or "").lower())


def offset_flag(lf: LanguageFit, maximum: float | None) -> FitFlag | None:
    if lf.family != "power":
        return None
    offset, name = float(lf.params["offset"]), _offset_name(lf)
    if lf.higher_is_better:
        if maximum is None:
            return None
        if offset > maximum * (1 + 1e-9):
            return FitFlag("offset_bound", ("offset",), f"{name} above the metric's maximum",
                           f"the ceiling {name} = {_g(offset)} lies above the metric's maximum {maximum:g}: no run can "
                           f"reach it, so it is not a ceiling")
        if offset >= maximum * (1 - AT_BOUND):
            return FitFlag("offset_bound", ("offset",), f"{name} at the metric's maximum",
                           f"the ceiling {name} = {_g(offset)} sits on the metric's maximum {maximum:g}: the bound set "
                           f"it, not the runs")
        return None
    if offset < 0:
        return FitFlag("offset_bound", ("offset",), f"{name} below 0",
                       f"the floor {name} = {_g(offset)} lies below 0, which a loss cannot reach: not a floor")
    scale = data_scale(lf)
    if scale and offset <= AT_BOUND * scale:
        return FitFlag("offset_bound", ("offset",), f"{name} at 0",
                       f"the floor {name} = {_g(offset)} is pressed against 0: the bound set it, not the runs")
    return None


def run_noise(fitset: FitSet | None, lf: LanguageFit) -> float | None:
    """The noise of one run around the curve: the pooled σ of a population fit, else the residual RMS when
    the language has more runs than its law has parameters (an exact fit's RMS of 0 measures nothing)."""
    sigma = (fitset.population or {}).get("sigma") if fitset is not None else None
    if sigma is not None and np.isfinite(sigma) and sigma > 0:
        return float(sigma)
    params = N_PARAMS.get(lf.family, 3) + ("x0" in lf.params)
    if lf.rmse is not None and np.isfinite(lf.rmse) and lf.rmse > 0 and lf.n_points > params:
        return float(lf.rmse)
    return None


def _case(lf: LanguageFit, sigma: float) -> float | None:
    """One language's term of the pooled extrapolation error k² (`fits.extrapolation.estimate`): (e² −
    σ²/m) / d², m the runs at the held-out size (taken as runs per size), None without a backtest."""
    bt = lf.backtest
    d = None if bt is None else backtest_distance(bt, lf.sizes)
    if d is None or not np.isfinite(bt.abs_error):
        return None
    runs = max(round(lf.n_points / max(len(lf.sizes), 1)), 1)
    return (bt.abs_error**2 - sigma**2 / runs) / d**2


def others_extrapolation(fitset: FitSet | None, lf: LanguageFit, sigma: float) -> float:
    """k from every other language's backtest (leave this one out, so one bad curve cannot excuse its own
    miss by inflating the pooled k); 0 for a fit without an extrapolation term or without other languages."""
    if fitset is None or lf.extrapolation is None:
        return 0.0
    cases = [c for lang, other in fitset.languages.items() if lang != lf.language
             for c in [_case(other, sigma)] if c is not None]
    return float(np.sqrt(max(np.mean(cases), 0.0))) if cases else 0.0


def backtest_flag(lf: LanguageFit, sigma: float | None, k: float = 0.0) -> FitFlag | None:
    """`k`: the extrapolation error per e-fold the miss is judged against (`others_extrapolation`)."""
    bt = lf.backtest
    if bt is None or sigma is None or not np.isfinite(bt.abs_error):
        return None
    d = backtest_distance(bt, lf.sizes)
    extra = k * d if d is not None else 0.0
    sigma_bt = math.hypot(sigma, extra)
    if bt.abs_error <= BACKTEST_SIGMAS * sigma_bt:
        return None
    rel = f" ({bt.rel_error:.0%})" if bt.rel_error is not None else ""
    basis = f"run noise σ = {_g(sigma)}" + (f" and the other languages' extrapolation error {_g(extra)}" if extra > 0 else "")
    why = (f"fitted without its largest size, the curve missed it ({bt.x_held:g}) by {_g(bt.abs_error)}{rel}, over "
           f"{BACKTEST_SIGMAS:g}× what its {basis} allow ({_g(sigma_bt)}): its predictions beyond the runs are not "
           f"to be trusted")
    return FitFlag("not_predictive", (), "curve not predictive here", why)


def pooling_flag(lf: LanguageFit) -> FitFlag | None:
    """One flag for every parameter pooling moved beyond its own interval (one line per language)."""
    if not lf.own_params:
        return None
    keys, parts = [], []
    for key in ("offset", "alpha", "x0", "a", "b"):
        own, pooled = lf.own_params.get(key), lf.params.get(key)
        lo_hi = lf.intervals.get(key)
        if own is None or pooled is None or lo_hi is None or not np.isfinite(own):
            continue
        lo, hi = min(lo_hi), max(lo_hi)
        if lo <= own <= hi:
            continue
        keys.append(key)
        parts.append(f"{_name(lf, key)} {_g(own)} → {_g(float(pooled))} [{_g(lo)}, {_g(hi)}]")
    if not keys:
        return None
    names = ", ".join(_name(lf, k) for k in keys)
    why = (f"pooling moved its own estimate (its runs alone) outside the pooled {lf.level:.0%} interval: "
           f"{'; '.join(parts)}: the population, not this language's runs, sets {names}")
    return FitFlag("pooling_moved", tuple(keys), f"pooling moved {names} beyond the interval", why)


def _name(lf: LanguageFit, key: str) -> str:
    return {"offset": _offset_name(lf), "alpha": "α", "x0": "x₀"}.get(key, key)


def fit_flags(lf: LanguageFit, fitset: FitSet | None = None) -> list[FitFlag]:
    """Every flag of one language's fit, parameter flags first. `fitset` gives the context (the metric and
    its bound, the pooled noise level); without it the metric's bound and the pooled σ are unknown."""
    metric = fitset.metric if fitset is not None else None
    flags = [alpha_flag(lf), amplitude_flag(lf), offset_flag(lf, metric_maximum(fitset, metric))]
    sigma = run_noise(fitset, lf)
    k = others_extrapolation(fitset, lf, sigma) if sigma is not None else 0.0
    flags += [pooling_flag(lf), backtest_flag(lf, sigma, k)]
    return [f for f in flags if f is not None]


def flagged_params(flags: list[FitFlag]) -> dict[str, list[FitFlag]]:
    """Parameter name → its flags (flags about the whole curve are left out)."""
    out: dict[str, list[FitFlag]] = {}
    for f in flags:
        for name in f.params:
            out.setdefault(name, []).append(f)
    return out
