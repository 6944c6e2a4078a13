"""The verdict on a plan (planner.allocation.verdict): the gain over a baseline with its interval, the
chance the plan is better, the paired final seeds needed to see it, and a plain "expect a tie"."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fits import fit_runs
from planner.allocation import allocate
from planner.allocation.display import format_result
from planner.allocation.verdict import Verdict, seeds_to_see


def _runs(laws: dict, noise: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for lang, (e, a, alpha) in laws.items():
        for x in (25, 50, 100, 200, 400):
            for s in (0, 1):
                rows.append({"language": lang, "n_pairs": x, "seed": s, "loss": e + a * x ** -alpha + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def test_seeds_to_see_is_the_one_sided_normal_sample_size():
    # z(0.9) = 1.2816: n = (1.2816 · 2 / 0.5)² = 26.3 → 27
    assert seeds_to_see(0.5, 2.0, 0.9) == 27
    assert seeds_to_see(0.5, 0.0, 0.9) == 1
    assert seeds_to_see(0.0, 1.0, 0.9) is None and seeds_to_see(-1.0, 1.0, 0.9) is None
    assert seeds_to_see(1e-9, 1.0, 0.9) == 1001  # capped: "more than 1,000"


def test_alike_curves_give_a_tie_in_plain_words():
    """Two languages on the same curve: any split is as good as the equal one, and the verdict says so."""
    law = (1.0, 4.0, 0.4)
    fitset = fit_runs(_runs({"de": law, "es": law}, noise=0.01), "loss", bootstrap=200, seed=0)
    plan = allocate(fitset, budget=400, unit="pairs", seed=0)
    v = Verdict(**plan.verdicts["uniform"])
    # a plan optimised on the draws is a hair better in expectation, far below what final runs could show
    assert v.tie and abs(v.gain) < 0.05 * (v.one_seed_high - v.one_seed_low)
    assert v.seeds_needed is None or v.seeds_needed > 10
    text = v.sentence("summed loss")
    assert text.startswith("expect a tie with uniform") and "an equal split is as good" in text
    assert "verdict: expect a tie" in format_result(plan)


def test_different_curves_give_a_win_with_its_interval_and_seeds():
    """A steep language beside a nearly saturated one: the plan moves pairs to the steep one, the gain's
    interval is above 0, and the seeds needed follow from the runs' noise."""
    fitset = fit_runs(_runs({"de": (1.0, 8.0, 0.5), "es": (1.0, 0.3, 0.2)}, noise=0.005), "loss", bootstrap=200, seed=0)
    plan = allocate(fitset, budget=400, unit="pairs", seed=0)
    v = Verdict(**plan.verdicts["uniform"])
    pairs = {p.language: p.pairs for p in plan.languages}
    assert pairs["de"] > pairs["es"]
    assert not v.tie and 0 < v.low <= v.gain <= v.high and v.p_better == 1.0
    # the predicted gain against uniform, recomputed from the point curves (loss: lower is better)
    uni = plan.baselines["uniform"]
    point = sum(uni.predicted.values()) - sum(p.predicted for p in plan.languages)
    assert v.gain == pytest.approx(point, rel=0.2)
    assert v.one_seed_low <= v.low and v.one_seed_high >= v.high  # run noise only widens
    assert v.seeds_needed is not None and 1 <= v.seeds_needed <= 10
    assert "the plan is predicted better than uniform" in v.sentence("summed loss")
    assert plan.summary()["verdicts"]["uniform"]["tie"] is False


def test_no_draws_no_verdict():
    law = (1.0, 4.0, 0.4)
    fitset = fit_runs(_runs({"de": law, "es": (1.0, 2.0, 0.4)}, noise=0.01), "loss", bootstrap=0, seed=0)
    assert allocate(fitset, budget=400, unit="pairs", seed=0).verdicts == {}
    assert math.isfinite(allocate(fitset, budget=400, unit="pairs", seed=0).objective_value)


def test_the_report_leads_with_the_predicted_verdict(tmp_path):
    """The summary says, before any final run, whether to expect a tie, in the verdict's own words."""
    import json

    from report_fixture import make_output_dir
    from reports import render_report

    out = make_output_dir(tmp_path / "out", n_languages=4, bootstrap=50, alignment=False, final=False)
    summary = json.loads((out / "allocation_summary.json").read_text())
    assert "uniform" in summary["verdicts"]
    expected = Verdict(**summary["verdicts"]["uniform"])
    html = render_report(out, out / "report.html").report.read_text(encoding="utf-8")
    assert "Predicted, before any final run:" in html
    assert ("expect a tie with uniform" if expected.tie else "the plan is predicted") in html
