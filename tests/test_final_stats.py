"""Paired verdicts and calibration of the final runs (fits.final_stats), against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fits.final_stats import OBJECTIVE_SCOPE, calibration_table, comparison_table, headline, paired_interval, verdict


def _tables(plan_scores, base_scores, lang_plan=None, lang_base=None):
    objs = [{"mixture": "plan", "seed": s, "achieved_objective": v} for s, v in enumerate(plan_scores)]
    objs += [{"mixture": "uniform", "seed": s, "achieved_objective": v} for s, v in enumerate(base_scores)]
    lang_plan = lang_plan or plan_scores
    lang_base = lang_base or base_scores
    mets = [{"mixture": "plan", "seed": s, "language": "el", "achieved": v} for s, v in enumerate(lang_plan)]
    mets += [{"mixture": "uniform", "seed": s, "language": "el", "achieved": v} for s, v in enumerate(lang_base)]
    return pd.DataFrame(objs), pd.DataFrame(mets)


def test_paired_interval_is_the_t_interval_of_the_differences():
    d = np.array([1.0, 3.0, 2.5, 0.5])
    mean, lo, hi = paired_interval(d, 0.9)
    half = stats.t.ppf(0.95, 3) * d.std(ddof=1) / 2
    assert mean == pytest.approx(1.75) and lo == pytest.approx(1.75 - half) and hi == pytest.approx(1.75 + half)
    assert all(math.isnan(v) for v in paired_interval(np.array([2.0]), 0.9)[1:])


@pytest.mark.parametrize("plan, base, want", [
    ([42, 44, 43], [40, 41.5, 40.5], "beat"),
    ([38, 39, 38.5], [40, 41.5, 40.5], "lost"),
    ([41, 39, 42], [40, 41.5, 40.5], "tied"),
    ([42], [40], "cannot tell (one seed)"),
])
def test_verdicts_read_the_paired_interval(plan, base, want):
    objs, mets = _tables(plan, base)
    table = comparison_table(objs, mets, ["plan"], ["uniform"], higher_is_better=True)
    row = table[table["scope"] == OBJECTIVE_SCOPE].iloc[0]
    assert row["verdict"] == want and row["n_seeds"] == len(plan)
    assert row["mean_difference"] == pytest.approx(np.mean(np.array(plan) - np.array(base)))
    assert [row[f"seed_{s}"] for s in range(len(plan))] == pytest.approx(list(np.array(plan) - np.array(base)))


def test_pairing_is_by_seed_and_a_loss_counts_lower_as_better():
    # Seed noise shared by both mixtures cancels in the pairs: a consistent 0.5 gain under large swings.
    objs, mets = _tables([10.0, 20.0, 30.0], [10.5, 20.5, 30.5])
    table = comparison_table(objs, mets, ["plan"], ["uniform"], higher_is_better=False)
    row = table[table["scope"] == OBJECTIVE_SCOPE].iloc[0]
    assert row["verdict"] == "beat" and row["mean_difference"] == pytest.approx(0.5)


def test_per_language_rows_follow_the_objective_rows():
    objs, mets = _tables([42, 44, 43], [40, 41, 40], lang_plan=[10, 10, 10], lang_base=[12, 11, 12])
    table = comparison_table(objs, mets, ["plan"], ["uniform"], True)
    el = table[table["scope"] == "el"].iloc[0]
    assert el["verdict"] == "lost" and el["mean_difference"] == pytest.approx(-5 / 3)


def test_headline_says_one_seed_cannot_tell_and_names_the_interval():
    objs, mets = _tables([42], [40])
    assert "cannot tell" in headline(comparison_table(objs, mets, ["plan"], ["uniform"], True), "chrF", 0.9)[0]
    objs, mets = _tables([42, 44, 43], [40, 41.5, 40.5])
    text = headline(comparison_table(objs, mets, ["plan"], ["uniform"], True), "chrF", 0.9)[0]
    assert text.startswith("the plan beat uniform: +2.33 chrF over 3 paired seeds, 90% interval [+1.")


def test_calibration_counts_cases_inside_their_interval():
    mets = pd.DataFrame({
        "language": ["el", "el", "hi", "hi"], "achieved": [10.0, 14.0, 5.0, 5.5],
        "predicted": [11.0, 11.0, 5.0, 5.0], "predicted_low": [9.0, 9.0, 4.0, 4.0], "predicted_high": [13.0, 13.0, 6.0, np.nan],
    })
    table = calibration_table(mets).set_index("language")
    assert table.loc["el", "coverage"] == 0.5 and table.loc["el", "cases"] == 2
    assert table.loc["hi", "cases"] == 1 and table.loc["hi", "coverage"] == 1.0  # no interval, no case
    assert table.loc["(all)", "coverage"] == pytest.approx(2 / 3)
    assert table.loc["el", "mean_error"] == pytest.approx(1.0)
