"""The target plan checked by training (planner.target_check): each language alone at its planned need,
reached or not, inside its predicted interval or not; written beside the final runs and shown in the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import planner.target_check as tc
from core.config import config_from_dict
from planner.pipeline import allocate_stage
from reports import render_report


def _config(tmp_path, **budget) -> dict:
    return {
        "experiment": "targets",
        "output_dir": str(tmp_path / "out"),
        "languages": ["de", "es"],
        "data": {"source": "demo", "test_size": 30},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        "train": {"epochs": 1, "batch_size": 8, "eval_size": 4, "samples": 0},
        "sweep": {"sizes": [8, 16, 32], "workers": 1},
        "fit": {"metric": "loss", "law": "power", "bootstrap": 50},
        "budget": {"total": 60, "unit": "pairs", **budget},
    }


def _target_plan(path, rows, higher=False, q=0.9):
    pd.DataFrame(rows).to_csv(path, index=False)
    (path.with_name(path.stem + "_summary.json")).write_text(json.dumps(
        {"metric": "loss", "higher_is_better": higher, "objective": "target", "target_confidence": q}))


def test_each_language_is_trained_at_its_need_and_judged_against_target_and_interval(tmp_path, monkeypatch,
                                                                                     tmp_path_factory):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "planner-cache"))
    cfg = config_from_dict(_config(tmp_path))
    plan = tmp_path / "allocation_target.csv"
    common = {"tokens": np.nan, "share": 0.5}
    _target_plan(plan, [
        # de: a target any model reaches, an interval no run lands in; es: the reverse.
        {"language": "de", "pairs": 12, "predicted": 5.0, "predicted_low": 0.0, "predicted_high": 0.001, "target": 1e6, **common},
        {"language": "es", "pairs": 10, "predicted": 5.0, "predicted_low": 0.0, "predicted_high": 1e6, "target": 1e-6, **common},
    ])
    final = tmp_path / "final"
    checks = tc.check_targets(cfg, plan, final, progress=False)
    by = {c.language: c for c in checks}
    assert by["de"].pairs == 12 and by["es"].pairs == 10
    assert by["de"].reached and not by["de"].inside
    assert not by["es"].reached and by["es"].inside
    assert by["de"].confidence == 0.9
    run = json.loads((final / by["de"].run_dir / "metrics.json").read_text())
    assert run["n_pairs"] == 12 and run["metrics"]["loss"] == pytest.approx(by["de"].achieved)
    written = pd.read_csv(tc.write_target_checks(checks, final))
    assert list(written["language"]) == ["de", "es"] and written["reached"].tolist() == [True, False]

    # A finished check is read back, never trained again; other settings train anew.
    monkeypatch.setattr(tc, "train_one", lambda *a, **k: pytest.fail("trained a finished check again"))
    again = tc.check_targets(cfg, plan, final, progress=False)
    assert [c.achieved for c in again] == [c.achieved for c in checks]
    other = config_from_dict({**_config(tmp_path), "train": {**_config(tmp_path)["train"], "learning_rate": 0.01}})
    with pytest.raises(pytest.fail.Exception):
        tc.check_targets(other, plan, final, progress=False)


def test_a_language_without_target_or_needing_nothing_is_not_trained(tmp_path, monkeypatch):
    cfg = config_from_dict(_config(tmp_path))
    plan = tmp_path / "allocation_target.csv"
    common = {"tokens": np.nan, "share": 0.5, "predicted": 1.0, "predicted_low": 0.5, "predicted_high": 1.5}
    _target_plan(plan, [{"language": "de", "pairs": 0, "target": 2.0, **common},
                        {"language": "es", "pairs": 20, "target": np.nan, **common}])
    monkeypatch.setattr(tc, "train_one", lambda *a, **k: pytest.fail("trained"))
    assert tc.check_targets(cfg, plan, tmp_path / "final", progress=False) == []
    assert tc.target_summary([]) == "no target to check"


def test_reached_follows_the_metric_direction():
    assert tc.reached(1.2, 1.3, higher_is_better=False) and not tc.reached(1.4, 1.3, higher_is_better=False)
    assert tc.reached(31.0, 30.0, higher_is_better=True) and not tc.reached(29.0, 30.0, higher_is_better=True)


def test_targets_under_the_sum_objective_write_the_target_plan_beside_the_sum_plan(tmp_path):
    """budget.languages.<lang>.target with objective sum: allocate writes allocation.csv (the sum plan) and
    allocation_target.csv (the fewest pairs reaching each target with confidence q), its summary saying so."""
    from fits import fit_runs, save_fits

    rows = []
    for lang, (e, a, alpha) in {"de": (1.0, 6.0, 0.5), "es": (1.2, 5.0, 0.4)}.items():
        for x in (8, 16, 32, 64):
            rows.append({"language": lang, "n_pairs": x, "loss": e + a * x ** -alpha})
    out = tmp_path / "out"
    out.mkdir()
    save_fits(fit_runs(pd.DataFrame(rows), "loss", law="power", bootstrap=50, seed=0, pooling="none"), out / "fits.json")
    pd.DataFrame({"language": ["de", "es"], "train": [500, 500]}).to_csv(out / "data_stats.csv", index=False)
    cfg = config_from_dict(_config(tmp_path, target_confidence=0.8,
                                   languages={"de": {"target": 1.9}, "es": {"target": 2.0}}))
    allocate_stage(cfg, out / "fits.json", out / "data_stats.csv", out / "allocation.csv")
    summary = json.loads((out / "allocation_target_summary.json").read_text())
    assert summary["objective"] == "target" and summary["target_confidence"] == 0.8
    assert json.loads((out / "allocation_summary.json").read_text())["objective"] == "sum"
    target = pd.read_csv(out / "allocation_target.csv").set_index("language")
    # the true need of de: 1 + 6·x^-0.5 ≤ 1.9 ⇔ x ≥ 44.4; es: 1.2 + 5·x^-0.4 ≤ 2.0 ⇔ x ≥ 97.9
    assert target.loc["de", "pairs"] == pytest.approx(45, abs=3)
    assert target.loc["es", "pairs"] == pytest.approx(98, abs=6)


def test_the_report_shows_the_target_check(tmp_path):
    from report_fixture import make_output_dir  # a full set of report inputs from known laws

    out = make_output_dir(tmp_path / "out", n_languages=4, bootstrap=50, alignment=False, final_seeds=(0, 1))
    checks = [tc.TargetCheck("de", 1.9, 0.9, 45, 1.88, 1.80, 1.95, 1.87, True, True, "targets/de-45-s0"),
              tc.TargetCheck("es", 2.0, 0.9, 98, 1.99, 1.90, 2.08, 2.11, False, False, "targets/es-98-s0")]
    tc.write_target_checks(checks, out / "final")
    html = render_report(out, out / "report.html").report.read_text(encoding="utf-8")
    assert "Target plan, checked by training" in html
    assert "1 of 2 reached their target" in html and "1 of 2 landed inside" in html
