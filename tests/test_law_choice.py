"""`law: auto` without zero-shot runs: the offset law is a candidate, and earns its extra parameter only on
a significantly better fit (benchmarks/real_curves.py measured why: real curves bend at small sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from fits import fit_runs
from fits.population import OwnFit, exact_laws, offset_fits_better
from research.truths import FAMILIES, METRIC, simulate_runs


def _auto_law(family: str, seed: int, noise: float) -> str:
    rng = np.random.default_rng(seed)
    world = FAMILIES[family].draw(rng)
    runs = simulate_runs(world, rng, noise_scale=noise)
    runs = runs[runs["n_pairs"].astype(float) > 0]  # no zero-shot row: the offset law is not imposed
    return fit_runs(runs.astype(str), METRIC, seed=0, bootstrap=0).population["law"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curves_with_an_offset_get_the_offset_law_without_a_zero_shot_row(seed):
    assert _auto_law("pretrained-offset", seed, noise=0.3) == "offset"


def test_noisy_power_law_worlds_keep_the_power_law():
    assert [_auto_law("steep-low-ceilings", seed, noise=1.0) for seed in range(3)] == ["power"] * 3


def test_the_offset_law_needs_a_significant_fit_with_residual_degrees_of_freedom():
    power = OwnFit(rss=10.0, dof=30.0, sigma=np.sqrt(10.0 / 30.0))
    assert offset_fits_better({"power": power, "offset": OwnFit(4.0, 25.0, 0.4)})  # F = 7.5 on (5, 25)
    assert not offset_fits_better({"power": power, "offset": OwnFit(9.5, 25.0, 0.62)})  # F ≈ 0.26
    # Three sizes of a four-parameter law: an exact fit with nothing left to test it on.
    assert not offset_fits_better({"power": power, "offset": OwnFit(1e-20, 0.0, 1e-10)})
    assert not offset_fits_better({"power": power})


def test_an_exact_fit_needs_degrees_of_freedom_and_the_simplest_exact_law_comes_first():
    fits = {"power": OwnFit(0.0, 8.0, 1e-9), "offset": OwnFit(0.0, 6.0, 1e-9), "log": OwnFit(50.0, 10.0, 2.2)}
    assert exact_laws(fits, spread=50.0) == ["power", "offset"]
    assert exact_laws({"power": OwnFit(0.0, 0.0, 1e-9)}, spread=50.0) == []  # interpolating is not exact
    assert exact_laws({"power": OwnFit(1e-6, 8.0, 3.5e-4)}, spread=50.0) == []
