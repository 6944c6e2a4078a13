"""The population fit respects the metric's own bounds on a curve's asymptote, in its point curve and in
every posterior draw: a loss's floor stays ≥ 0 and a bounded score's ceiling ≤ its maximum.

The mechanism this guards (docs/results/real-curves.md): the fit's grid puts its outermost cell centres
on the bound and samples draws uniformly inside a cell, so without a limit half of that cell lay beyond
the bound. Curves whose own runs want an asymptote beyond it (Goldfish's losses bend the 'wrong' way:
their three sizes are fitted best by a negative floor) then had point curves and draws with a floor of
about −half a cell, which made 50 of its 67 languages predict the 10x-larger size worse.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fits import fit_runs

SIZES = (5.0, 10.0, 100.0)  # as Goldfish's fitted sizes: three per language, the power law's three parameters


def _runs(metric: str, asymptote: float, sign: float, seed: int = 0) -> pd.DataFrame:
    """Twelve languages on curves whose asymptote lies beyond the metric's bound (a negative floor for a
    loss, a ceiling above 100 for chrF), every run itself inside it, with a little noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(12):
        scale, alpha = rng.uniform(60, 90), rng.uniform(0.08, 0.2)
        for x in SIZES:
            y = asymptote - sign * scale * x ** -alpha + rng.normal(0, 0.3)
            rows.append({"language": f"l{i:02d}", "n_pairs": x, metric: y})
    return pd.DataFrame(rows).astype(str)


@pytest.mark.parametrize("metric, asymptote, sign, ok", [
    ("loss", -4.0, -1.0, lambda v: v >= 0.0),      # a loss's floor: ≥ 0 (every run is ≥ 0)
    ("chrf", 125.0, 1.0, lambda v: v <= 100.0),    # chrF's ceiling: ≤ 100
])
def test_asymptote_stays_within_the_metric_bound(metric, asymptote, sign, ok):
    runs = _runs(metric, asymptote, sign)
    y = runs[metric].astype(float)
    assert (y >= 0).all() and (y <= 100).all()  # the runs themselves are inside the bound
    fits = fit_runs(runs, metric, bootstrap=300, seed=0, higher_is_better=sign > 0, law="power")
    assert len(fits.languages) == 12
    at_bound = 0
    for lf in fits.languages.values():
        assert ok(lf.curve.params["offset"]), (lf.language, lf.curve.params)
        draws = np.asarray(lf.boot.params["offset"])
        assert all(ok(v) for v in draws), (lf.language, float(draws.min()), float(draws.max()))
        at_bound += abs(lf.curve.params["offset"] - (0.0 if sign < 0 else 100.0)) < 1.0
    # The runs want an asymptote beyond the bound, so the fit leans on it: most point curves sit there.
    assert at_bound >= 6
