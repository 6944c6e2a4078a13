"""Fit flags (fits.flags): each rule fires on the case the issue reported and stays quiet just inside it;
the flags reach fits.json and `planner fit`'s table from a real population fit."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fits import fit_runs, save_fits
from fits.extrapolation import Extrapolation
from fits.flags import fit_flags, flagged_params
from fits.laws import Curve
from fits.results import FitSet, LanguageFit
from fits.summary import format_fit_table
from fits.validate import make_backtest


def _fit(params: dict, higher: bool = True, intervals: dict | None = None, backtest=None, sizes=(250, 500, 1000, 2000),
         own: dict | None = None, rmse: float = 0.5, n_points: int = 8, extrapolation=None) -> LanguageFit:
    curve = Curve("power", params, higher, law="power")
    return LanguageFit(language="hi", law="power", curve=curve, boot=None, intervals=intervals or {}, r2=0.99,
                       rmse=rmse, residuals=[], backtest=backtest, n_points=n_points, sizes=[float(s) for s in sizes],
                       tokens_per_pair=None, warnings=[], candidates={}, own_params=own,
                       moved={k: params[k] - v for k, v in (own or {}).items()}, extrapolation=extrapolation)


def _fitset(lf: LanguageFit, metric: str = "chrf", population: dict | None = None) -> FitSet:
    return FitSet(metric=metric, higher_is_better=lf.higher_is_better, x="pairs", law_requested="auto", ceiling=None,
                  bootstrap=200, seed=0, languages={lf.language: lf}, skipped={},
                  pooling="population" if population else "none", population=population or {})


def _codes(lf, fitset=None) -> list[str]:
    return [f.code for f in fit_flags(lf, fitset)]


CHRF = dict(offset=45.3, scale=300.0, alpha=0.5)


def test_a_plausible_chrf_curve_carries_no_flag():
    lf = _fit(CHRF, intervals={"alpha": (0.3, 0.8)})
    assert _codes(lf, _fitset(lf)) == []


@pytest.mark.parametrize("alpha, interval, flagged", [
    (3.86, (0.0109, 3.61), True),   # the Hindi exponent: at the upper edge of 0.01-4
    (0.011, (0.01, 0.05), True),    # at the lower edge
    (0.5, (0.0109, 3.61), True),    # an interval over the whole search range identifies nothing
    (3.1, (1.0, 3.5), False),       # just inside the edge's factor 1.25, interval inside
    (0.5, (0.3, 0.8), False),
])
def test_alpha_at_its_bound(alpha, interval, flagged):
    lf = _fit({**CHRF, "alpha": alpha}, intervals={"alpha": interval})
    assert ("alpha_bound" in _codes(lf)) is flagged
    if flagged:
        assert list(flagged_params(fit_flags(lf))) == ["alpha"]


def test_an_amplitude_far_beyond_the_data_is_flagged_and_a_plain_one_is_not():
    # 7.2e18 with α 3.86: the curve at 250-2000 pairs is fine, A (its gap at one pair) is not a number to read.
    steep = _fit({"offset": 45.3, "scale": 7.2e18, "alpha": 3.86})
    assert "amplitude_scale" in _codes(steep)
    # A steep curve (α = 2) whose largest |ŷ| at the sizes is ~45: A up to ~4,500 passes, above it fails.
    assert "amplitude_scale" not in _codes(_fit({**CHRF, "scale": 4000.0, "alpha": 2.0}))
    assert "amplitude_scale" in _codes(_fit({**CHRF, "scale": 5000.0, "alpha": 2.0}))


@pytest.mark.parametrize("metric, higher, offset, label", [
    ("chrf", True, 101.0, "C above the metric's maximum"),   # the zh
    ("chrf", True, 99.0, "C at the metric's maximum"),
    ("chrf", True, 97.0, None),
    ("bleu", True, 100.5, "C above the metric's maximum"),
    ("loss", False, -0.1, "E below 0"),
    ("loss", False, 0.001, "E at 0"),
    ("loss", False, 0.8, None),
    ("mystery", True, 150.0, None),  # no known maximum: nothing to compare with
])
def test_an_asymptote_beyond_or_on_the_metric_bound(metric, higher, offset, label):
    lf = _fit({"offset": offset, "scale": 20.0 if not higher else 300.0, "alpha": 0.5}, higher=higher)
    labels = [f.label for f in fit_flags(lf, _fitset(lf, metric)) if f.code == "offset_bound"]
    assert labels == ([label] if label else [])


def test_a_fraction_scale_uses_the_bound_the_fit_recorded():
    lf = _fit({"offset": 1.2, "scale": 3.0, "alpha": 0.5})
    assert [f.label for f in fit_flags(lf, _fitset(lf, population={"ceiling_max": 1.0, "sigma": 0.01}))
            if f.code == "offset_bound"] == ["C above the metric's maximum"]


def test_a_backtest_beyond_two_sigma_is_not_predictive():
    # Hindi 33% off at 2000 pairs, run noise 0.5 chrF: flagged; 0.9 off (under 2σ) is not.
    bad = _fit(CHRF, backtest=make_backtest(2000, 45.0, 30.0))
    flags = fit_flags(bad, _fitset(bad, population={"sigma": 0.5}))
    assert [f.code for f in flags] == ["not_predictive"] and "33%" in flags[0].why
    ok = _fit(CHRF, backtest=make_backtest(2000, 45.0, 44.1))
    assert _codes(ok, _fitset(ok, population={"sigma": 0.5})) == []
    # The other languages' extrapolation error widens what a backtest may miss by: they missed by 4 one
    # e-fold (ln 2) beyond, so a miss of 5 is within 2σ_bt and a miss of 15 is not.
    other = _fit(CHRF, backtest=make_backtest(2000, 45.0, 41.0), extrapolation=Extrapolation(8.0, 2))
    other.language = "de"
    for miss, flagged in ((5.0, False), (15.0, True)):
        lf = _fit(CHRF, backtest=make_backtest(2000, 45.0, 45.0 - miss), extrapolation=Extrapolation(8.0, 2))
        fitset = _fitset(lf, population={"sigma": 0.5})
        fitset.languages["de"] = other
        assert ("not_predictive" in _codes(lf, fitset)) is flagged
    # A per-language fit through as many runs as parameters has no noise level to judge by.
    exact = _fit(CHRF, backtest=make_backtest(2000, 45.0, 30.0), rmse=0.0, n_points=3)
    assert _codes(exact) == []


def test_a_pooling_move_beyond_the_interval_is_flagged():
    # The Hindi: its own C 45.3 became 99.1 with an interval that excludes 45.3.
    moved = _fit({"offset": 99.1, "scale": 300.0, "alpha": 0.056}, own={"offset": 45.3, "alpha": 0.4},
                 intervals={"offset": (60.0, 99.5), "alpha": (0.02, 0.5)})
    flags = [f for f in fit_flags(moved) if f.code == "pooling_moved"]
    assert len(flags) == 1 and flags[0].params == ("offset",) and "45.3 → 99.1" in flags[0].why
    inside = _fit(CHRF, own={"offset": 46.0, "alpha": 0.45}, intervals={"offset": (44.0, 50.0), "alpha": (0.3, 0.8)})
    assert "pooling_moved" not in _codes(inside)


def _runs(seed: int = 0) -> pd.DataFrame:
    """Four languages on plausible chrF curves with noise 0.5; 'hi' falls a third short at its largest size."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, lang in enumerate(("de", "fr", "hi", "tr")):
        ceiling, scale, alpha = 50.0 + 3 * i, 400.0, 0.45 + 0.03 * i
        for n in (125, 250, 500, 1000, 2000):
            for s in (0, 1):
                y = ceiling - scale * n ** -alpha + rng.normal(0, 0.5)
                if lang == "hi" and n == 2000:
                    y *= 0.67
                rows.append({"language": lang, "n_pairs": n, "seed": s, "chrf": y})
    return pd.DataFrame(rows)


def test_flags_reach_fits_json_and_the_fit_table(tmp_path):
    fitset = fit_runs(_runs(), "chrf", bootstrap=100, seed=0, law="power")
    path = save_fits(fitset, tmp_path / "fits.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    codes = {lang: [f["code"] for f in d["flags"]] for lang, d in data["languages"].items()}
    assert "not_predictive" in codes["hi"]
    assert all("not_predictive" not in c for lang, c in codes.items() if lang != "hi")
    entry = next(f for f in data["languages"]["hi"]["flags"] if f["code"] == "not_predictive")
    assert entry["params"] == [] and entry["label"] == "curve not predictive here" and "2000" in entry["why"]
    table = format_fit_table(fitset)
    assert "flags (not measured by the runs" in table and "  hi: curve not predictive here: " in table
