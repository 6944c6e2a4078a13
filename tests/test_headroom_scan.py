"""`benchmarks/headroom_scan.py`: the predicted headroom over uniform of a language set, on run tables
with a known answer (curves alike: none; one flat language beside rising ones: the plan moves the budget)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import headroom_scan  # noqa: E402

SIZES = (0, 50, 150, 400)
TPP = 30.0


def _runs(curves: dict, noise: float = 0.2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [dict(language=lang, n_pairs=n, n_tokens=TPP * n, seed=0, status="complete",
                 chrf=float(f(n)) + noise * rng.normal()) for lang, f in curves.items() for n in SIZES]
    return pd.DataFrame(rows)


def rising(start: float):
    return lambda n: start + 20.0 * (1 - (1 + n / 100.0) ** -0.5)


def test_languages_on_one_curve_leave_no_headroom():
    row = headroom_scan.scan_one(_runs({"aa": rising(10), "bb": rising(10), "cc": rising(10)}), ("aa", "bb", "cc"), 30000)
    assert abs(row["plan_minus_uniform"]) < 0.2 and row["headroom_median"] < 0.3 and row["moved"] < 0.1


def test_a_flat_language_beside_rising_ones_gives_the_plan_room():
    runs = _runs({"aa": rising(10), "bb": rising(25), "cc": lambda n: 12.0})
    row = headroom_scan.scan_one(runs, ("aa", "bb", "cc"), 30000)
    plan = dict(zip(["aa", "bb", "cc"], map(int, row["plan"].split(" / "))))
    uniform = dict(zip(["aa", "bb", "cc"], map(int, row["uniform"].split(" / "))))
    assert all(abs(p - 10000 / TPP) <= 1 for p in uniform.values())  # whole pairs of equal tokens
    assert plan["cc"] < 100 < uniform["cc"]
    # moved = half the L1 distance of token shares from equal shares (all languages cost the same here)
    shares = np.array([plan[k] for k in ("aa", "bb", "cc")], float) / sum(plan.values())
    assert row["moved"] == pytest.approx(0.5 * np.abs(shares - 1 / 3).sum(), abs=1e-3) and row["moved"] > 0.2
    # the truth: moving cc's budget to the rising two gains what their curves gain there, cc loses nothing
    truth_gain = sum(rising(s)(plan[k]) - rising(s)(333) for k, s in (("aa", 10), ("bb", 25)))
    assert truth_gain > 2 and abs(row["plan_minus_uniform"] - truth_gain) < 0.25 * truth_gain and row["headroom_low"] > 0


def test_tokens_per_pair_is_each_languages_median_over_trained_runs():
    runs = pd.DataFrame(dict(language=["aa"] * 3 + ["bb"] * 2, n_pairs=[0, 10, 20, 0, 10],
                             n_tokens=[0, 100, 300, 0, 40]))
    assert headroom_scan.tokens_per_pair(runs, ["aa", "bb"]) == {"aa": 12.5, "bb": 4.0}


def test_bad_run_tables_are_refused_in_one_line(tmp_path, capsys):
    runs = _runs({"aa": rising(10), "bb": rising(25)})
    path = tmp_path / "runs.csv"
    runs.drop(columns=["n_tokens"]).to_csv(path, index=False)
    out = tmp_path / "scan"
    assert headroom_scan.main(["--runs", str(path), "--size", "2", "--out", str(out)]) == 2
    assert "lack the columns ['n_tokens']" in capsys.readouterr().err and not out.with_suffix(".md").exists()
    runs.drop(columns=["status"]).to_csv(path, index=False)  # status is optional
    assert headroom_scan.main(["--runs", str(path), "--size", "3", "--out", str(out)]) == 2
    assert "--size must be between 2 and the 2 languages" in capsys.readouterr().err
    assert headroom_scan.main(["--runs", str(path), "--size", "2", "--out", str(out)]) == 0
    assert "| aa bb |" in out.with_suffix(".md").read_text()
