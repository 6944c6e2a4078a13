"""Scaling-law fitting: pure math on tables (numpy/scipy/pandas, no torch).

    from fits import fit_runs, save_fits, load_fits
    fitset = fit_runs(runs_df, "chrf")            # law="auto", x="pairs", 1000 bootstrap draws
    fitset.languages["de"].predict(4000)          # the point fit
    fitset.languages["de"].predict_interval(4000, 0.9)
"""

from fits.api import fit_runs
from fits.data import infer_direction, read_runs_csv
from fits.results import Backtest, FitSet, LanguageFit
from fits.store import load_fits, save_fits

__all__ = [
    "Backtest",
    "FitSet",
    "LanguageFit",
    "fit_runs",
    "infer_direction",
    "load_fits",
    "read_runs_csv",
    "save_fits",
]
