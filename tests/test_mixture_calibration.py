"""The pure steps of benchmarks/mixture_calibration.py (no training: the script itself trains)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("mixture_calibration", ROOT / "benchmarks" / "mixture_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mc = _load()


def test_mixture_config_adds_only_the_mixtures_and_the_output_dir(tmp_path):
    resolved = {"planner_version": "0.2.0", "output_dir": "elsewhere", "seed": 3,
                "sweep": {"sizes": [20, 60, 180], "mixtures": [], "workers": 2}}
    cfg = mc.mixture_config(resolved, tmp_path, [60, 20, 60])
    assert cfg["sweep"] == {"sizes": [20, 60, 180], "mixtures": [20, 60], "workers": 2}
    assert cfg["output_dir"] == str(tmp_path) and cfg["seed"] == 3
    assert "planner_version" not in cfg
    assert resolved["sweep"]["mixtures"] == []  # the input is not changed
    with pytest.raises(ValueError):
        mc.mixture_config(resolved, tmp_path, [0])


def _rows():
    # two seeds, two languages, two mixtures; bpb (lower is better)
    return pd.DataFrame({
        "mixture": ["plan"] * 4 + ["uniform"] * 4,
        "seed": [0, 0, 1, 1] * 2,
        "language": ["el", "hi"] * 4,
        "achieved": [1.0, 2.0, 1.1, 2.1, 1.2, 2.0, 1.2, 2.2],
        "pred_x": [1.1, 2.0, 1.1, 2.0, 1.1, 2.1, 1.1, 2.1],
        "low_x": [1.05, 1.9, 1.05, 1.9, 1.0, 2.0, 1.0, 2.0],
        "high_x": [1.15, 2.1, 1.15, 2.1, 1.15, 2.15, 1.15, 2.15],
    })


def test_calibration_counts_coverage_mean_error_and_rms():
    cal = mc.calibration(_rows(), "x").set_index("language")
    # el errors: -0.1, 0.0, +0.1, +0.1; inside: no, yes, no, no
    assert cal.loc["el", "cases"] == 4
    assert cal.loc["el", "inside"] == pytest.approx(0.25)
    assert cal.loc["el", "mean_error"] == pytest.approx(0.025)
    assert cal.loc["el", "rms"] == pytest.approx(math.sqrt((0.01 + 0 + 0.01 + 0.01) / 4))
    # hi errors: 0, +0.1, -0.1, +0.1; inside: yes, yes, yes, no
    assert cal.loc["hi", "inside"] == pytest.approx(0.75)
    assert cal.loc["all", "cases"] == 8
    assert cal.loc["all", "inside"] == pytest.approx(0.5)
    assert cal.loc["all", "mean_error"] == pytest.approx((0.1 + 0.1) / 8)


def test_plan_minus_uniform_is_signed_so_positive_means_the_plan_is_better():
    rows = _rows()
    # achieved sums: plan 3.0, 3.2; uniform 3.2, 3.4 → uniform − plan = +0.2 on both seeds
    assert mc.plan_minus_uniform(rows, "achieved", higher_is_better=False) == pytest.approx(0.2)
    assert mc.plan_minus_uniform(rows, "achieved", higher_is_better=True) == pytest.approx(-0.2)
    # a seed without its pair is left out, not compared with another seed
    unpaired = rows[~((rows["mixture"] == "uniform") & (rows["seed"] == 1))]
    assert mc.plan_minus_uniform(unpaired, "achieved", higher_is_better=False) == pytest.approx(0.2)


def test_mixture_run_times_one_row_per_mixture_run():
    runs = pd.DataFrame({
        "language": ["el", "hi", "el", "hi", "el", "hi"],
        "n_pairs": [20, 20, 20, 20, 60, 60],
        "mixture": [np.nan, np.nan, "uniform-20", "uniform-20", "uniform-60", "uniform-60"],
        "train_seconds": [5.0, 6.0, 30.0, 30.0, 90.0, 90.0],
        "eval_seconds": [1.0, 1.0, 8.0, 8.0, 9.0, 9.0],
    })
    times = mc.mixture_run_times(runs)
    assert times["mixture"].tolist() == ["uniform-20", "uniform-60"]
    assert times["pairs"].tolist() == [40, 120]
    assert times["train_seconds"].tolist() == [30.0, 90.0]
    assert mc.mixture_run_times(runs.drop(columns="mixture")).empty


def test_select_mixtures_keeps_the_language_rows_and_the_wanted_mixture_runs():
    runs = pd.DataFrame({"language": ["el", "el", "el", "el"], "n_pairs": [20, 20, 60, 180],
                         "mixture": [np.nan, "uniform-20", "uniform-60", "uniform-180"]})
    kept = mc.select_mixtures(runs, {"uniform-60", "uniform-180"})
    assert kept["mixture"].fillna("").tolist() == ["", "uniform-60", "uniform-180"]
    with pytest.raises(SystemExit, match="uniform-400"):
        mc.select_mixtures(runs, {"uniform-400"})
    with pytest.raises(SystemExit, match="no mixture rows"):
        mc.select_mixtures(runs.drop(columns="mixture"), {"uniform-20"})


def _power(n, e, a, alpha):
    return e + a * n ** -alpha


def test_in_mixture_predictions_follow_the_mixture_rows(tmp_path):
    """A real fit of a runs table whose mixture rows sit 0.08 bpb below the own curves: the in-mixture
    prediction at a mixture run's own pairs is near its row, and the widening beyond the largest mixture
    run (once a what-if, now the planner's own rule) only ever widens an interval (and does, far beyond it)."""
    from dataclasses import replace

    from core.config import load_config
    from fits import fit_runs

    langs = {"el": (0.3, 2.7, 0.15), "hi": (0.2, 2.4, 0.14), "tr": (0.5, 3.2, 0.09), "vi": (0.3, 3.5, 0.15)}
    rng = np.random.default_rng(0)
    rows = []
    for lang, (e, a, alpha) in langs.items():
        for n in (20, 60, 180):
            rows.append({"language": lang, "n_pairs": n, "n_tokens": 50 * n, "seed": 0,
                         "bpb": _power(n, e, a, alpha) + rng.normal(0, 0.01)})
        for n in (20, 60):
            rows.append({"language": lang, "n_pairs": n, "n_tokens": 50 * n, "seed": 0, "mixture": f"uniform-{n}",
                         "other_pairs": 3 * n, "other_tokens": 150 * n, "bpb": _power(n, e, a, alpha) - 0.08})
    fitset = fit_runs(pd.DataFrame(rows), "bpb", bootstrap=200, seed=0, pooling="population")
    assert all(fitset.transfer[lang].mixture_fit is not None for lang in langs)
    pd.DataFrame({"language": list(langs), "train": [1000] * 4}).to_csv(tmp_path / "data_stats.csv", index=False)
    cfg = load_config(preset="demo")
    problem = mc.in_mixture_problem(cfg, tmp_path, fitset)
    at = {"m60": dict.fromkeys(langs, 60), "far": dict.fromkeys(langs, 150)}
    # a law error large enough to show beyond the draws' own spread (this clean synthetic law backtests too well)
    problem = replace(problem, extrapolation=tuple(replace(x, scale=0.5) for x in problem.extrapolation))
    plain = mc.inside_predictions(problem, at, 0.9)
    wide = mc.widened_predictions(problem, fitset, at, 0.9)
    near = plain[plain["mixture"] == "m60"].set_index("language")
    for lang, (e, a, alpha) in langs.items():
        assert near.loc[lang, "pred_mix"] == pytest.approx(_power(60, e, a, alpha) - 0.08, abs=0.02)
        assert near.loc[lang, "low_mix"] < near.loc[lang, "pred_mix"] < near.loc[lang, "high_mix"]
    bare = mc.inside_predictions(replace(problem, extrapolation=None), at, 0.9)
    width = bare["high_mix"] - bare["low_mix"]
    wider = wide["high_mix"] - wide["low_mix"]
    assert np.allclose(plain["high_mix"] - plain["low_mix"], wider)  # the planner's intervals widen there too
    assert (wider >= width - 1e-12).all()
    far = (plain["mixture"] == "far").to_numpy()
    assert (wider[far] > width[far] + 1e-3).any()
    assert np.allclose(wider[~far], width[~far])  # at the largest mixture run: nothing to widen
