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
