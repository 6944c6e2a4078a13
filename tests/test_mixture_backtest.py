"""`benchmarks/mixture_backtest.py`: reading each posterior draw at its own x, and the interval coverage
of per-seed final scores, on mixtures with a known truth."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import mixture_backtest  # noqa: E402
from test_mixture_curves import INSIDE, _runs  # noqa: E402

from fits import fit_runs  # noqa: E402


@pytest.fixture(scope="module")
def fitset():
    return fit_runs(_runs(noise=0.3), "chrf", bootstrap=200, seed=0)


def test_each_draw_is_read_at_its_own_x(fitset):
    fit = fitset.languages["el"]
    x = np.linspace(10.0, 900.0, fit.boot.params["alpha"].size)
    got = mixture_backtest._at(fit, x)
    loop = np.array([np.ravel(fit.predict_draws(xi))[i] for i, xi in enumerate(x)])
    np.testing.assert_allclose(got, loop, rtol=1e-12)
    np.testing.assert_allclose(mixture_backtest._at(fit, 300.0), np.ravel(fit.predict_draws(300.0)))


def _finals(shift: float) -> pd.DataFrame:
    """Two trained mixtures, two seeds each, every language scored exactly on its in-mixture curve + shift."""
    rows = []
    for name, pairs in {"a": {"el": 100, "hi": 400, "tr": 200}, "b": {"el": 300, "hi": 300, "tr": 300}}.items():
        comp = "/".join(f"{lang}{p}" for lang, p in sorted(pairs.items()))
        for seed in (0, 1):
            rows += [dict(composition=comp, label=name, mixture=name, seed=seed, language=lang, pairs=p,
                          achieved=float(INSIDE[lang].predict(p)) + shift) for lang, p in pairs.items()]
    return pd.DataFrame(rows)


def test_coverage_counts_every_seeds_score_once_and_misses_a_shift(fitset):
    held = mixture_backtest.coverage(fitset, _finals(0.0))
    assert held["in-mixture"] == (12, 12)  # 2 mixtures x 2 seeds x 3 languages, all on the curve
    missed = mixture_backtest.coverage(fitset, _finals(25.0))
    assert missed["in-mixture"] == (0, 12) and missed[mixture_backtest.OWN_RESIDUALS] == (0, 12)
    # hi's own per-language runs get worse with data; inside mixtures it rises: its own curve misses there
    assert held["own curve"][0] < 12


def test_the_table_lists_every_language_of_every_mixture_with_the_fits_predictions(tmp_path):
    """The per-language figures of docs/results/truth-tests-chrf-default.md (Japanese at 738 pairs: own
    curve, in-mixture curve, achieved) come from this table, on the shipped el/ja/tr/vi ledger and final runs."""
    results = Path(mixture_backtest.RESULTS)
    runs, finals = results / "truth_test_el_ja_tr_vi_mix150_runs.csv", results / "truth_test_el_ja_tr_vi_mix150_metrics.csv"
    out = tmp_path / "backtest.md"
    assert mixture_backtest.main(["--runs", str(runs), "--finals", str(finals), "--out", str(out)]) == 0
    text = out.read_text()
    fitset = fit_runs(pd.read_csv(runs).astype(str), "chrf", bootstrap=1000, seed=0)
    metrics = pd.read_csv(finals)
    rows = [ln for ln in text.splitlines() if ln.count("|") == 8 and ln.split("|")[2].strip() in fitset.languages]
    assert len(rows) == metrics.groupby(["mixture", "language"]).ngroups == 12
    ja = next(ln for ln in rows if ln.startswith("| plan | ja |"))
    achieved = metrics[(metrics["mixture"] == "plan") & (metrics["language"] == "ja")]["achieved"].mean()
    own = float(fitset.languages["ja"].predict(738.0))
    inside = float(fitset.transfer["ja"].mixture_fit.predict(738.0))
    assert ja.startswith(f"| plan | ja | 738 | {achieved:.2f} | {own:.2f} |") and ja.endswith(f"| {inside:.2f} |")
