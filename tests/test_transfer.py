"""Transfer inside a mixture: the effective-data fit (fits.transfer) and the transfer-aware plan
(planner.allocation.transfer), against known truths and an independent brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UserError
from fits import fit_runs, load_fits, save_fits
from fits.laws import Curve
from planner.allocation import allocate
from planner.allocation.curves import CurveBank
from planner.allocation.solver import solve_sum
from planner.allocation.transfer import solve_transfer, transfer_utility

TRUTH = {
    "el": (Curve("power", {"offset": 60.0, "scale": 900.0, "alpha": 0.7, "x0": 150.0}), 0.35),
    "hi": (Curve("power", {"offset": 45.0, "scale": 4000.0, "alpha": 1.1, "x0": 40.0}), 0.10),
    "tr": (Curve("power", {"offset": 70.0, "scale": 300.0, "alpha": 0.4, "x0": 900.0}), 0.60),
}


def _runs(noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Monolingual runs (with zero-shot rows) plus uniform-mixture and leave-one-out mixture runs."""
    rng = np.random.default_rng(seed)
    rows = []
    for lang, (curve, _) in TRUTH.items():
        for n in (0, 250, 500, 1000, 2000):
            rows.append(dict(language=lang, n_pairs=n, n_tokens=20 * n, chrf=float(curve.predict(n)) + noise * rng.normal()))
    mixtures = {f"uniform-{n}": {lang: n for lang in TRUTH} for n in (300, 900)}
    mixtures.update({f"without-{out}": {lang: (0 if lang == out else 600) for lang in TRUTH} for out in TRUTH})
    for name, pairs in mixtures.items():
        for lang, (curve, tau) in TRUTH.items():
            other = sum(p for other_lang, p in pairs.items() if other_lang != lang)
            y = float(curve.predict(pairs[lang] + tau * other)) + noise * rng.normal()
            rows.append(dict(language=lang, n_pairs=pairs[lang], n_tokens=20 * pairs[lang], chrf=y, mixture=name,
                             other_pairs=other, other_tokens=20 * other))
    return pd.DataFrame(rows)


def test_noiseless_mixture_runs_recover_each_languages_transfer():
    fitset = fit_runs(_runs().astype(str), "chrf", bootstrap=100, seed=0)
    assert set(fitset.transfer) == set(TRUTH)
    for lang, (_, tau) in TRUTH.items():
        t = fitset.transfer[lang]
        assert t.tau == pytest.approx(tau, abs=2e-3) and t.rows == 4  # own data > 0: fitted
        assert t.alone_rows == 1 and t.alone_gap == pytest.approx(0.0, abs=1e-2)  # the law holds at 0 here
        assert t.rms_after < 1e-2 < t.rms_before  # own data alone cannot explain the mixture runs
        assert t.draws is not None and len(t.draws) == 100
    # the per-language curves ignore the mixture rows
    assert all(lf.n_points == 5 for lf in fitset.languages.values())
    assert any("mixture proxy run" in n for n in fitset.notes)


def test_transfer_estimates_round_trip_through_fits_json(tmp_path):
    fitset = fit_runs(_runs(noise=0.3).astype(str), "chrf", bootstrap=60, seed=1)
    back = load_fits(save_fits(fitset, tmp_path / "fits.json"))
    for lang, t in fitset.transfer.items():
        assert back.transfer[lang].tau == t.tau
        np.testing.assert_array_equal(back.transfer[lang].draws, t.draws)


def test_mixture_rows_without_the_other_languages_data_are_a_user_error():
    runs = _runs().drop(columns=["other_pairs"]).astype(str)
    with pytest.raises(UserError, match="other_pairs"):
        fit_runs(runs, "chrf", bootstrap=0)


BANK = CurveBank.from_curves([c for c, _ in TRUTH.values()], np.ones(3))
COST, LO, HI, W = np.array([20.0, 35.0, 15.0]), np.zeros(3), np.full(3, np.inf), np.ones(3)


def test_without_transfer_the_plan_is_the_separable_optimum():
    budget = 60_000.0
    separable = solve_sum(BANK, COST, LO, HI, W, budget).pairs
    np.testing.assert_allclose(solve_transfer(BANK, np.zeros(3), COST, LO, HI, W, budget, separable), separable, rtol=1e-8)


def test_transfer_aware_plan_matches_brute_force():
    budget, tau = 60_000.0, np.array([v for _, v in TRUTH.values()])
    start = solve_sum(BANK, COST, LO, HI, W, budget).pairs
    plan = solve_transfer(BANK, tau, COST, LO, HI, W, budget, start)
    assert float(plan @ COST) <= budget * (1 + 1e-9)
    best = max(
        transfer_utility(BANK, tau, np.array([f1, f2, 1 - f1 - f2]) * budget / COST).sum()
        for f1 in np.linspace(0, 1, 201) for f2 in np.linspace(0, 1 - f1, 201)
    )
    assert transfer_utility(BANK, tau, plan).sum() >= best - 1e-6


def test_allocate_reports_the_transfer_aware_plan_beside_the_plan():
    """A plan trained one language at a time (inside_mixture=False) stays on the own curves, and τ's plan
    comes beside it."""
    runs = _runs(noise=0.2)
    runs = runs[~runs["mixture"].fillna("").str.startswith("without-")]
    fitset = fit_runs(runs.astype(str), "chrf", bootstrap=100, seed=0)
    result = allocate(fitset, budget=120_000, unit="tokens", inside_mixture=False)
    t = result.transfer
    assert set(t["pairs"]) == set(TRUTH) and set(t["tau"]) == set(TRUTH)
    assert sum(p * 20 for p in t["pairs"].values()) <= 120_000
    assert t["objective_value"] >= t["uniform_objective_value"]
    assert result.summary()["transfer"] == t


def test_transfer_aware_plan_stays_inside_the_measured_mixture_design():
    """The plan never leaves a language with less own data than its mixture runs measured: τ's floor is
    the least own data it was fitted on. A plan on in-mixture curves is floored where those were measured:
    with leave-one-out runs a language was measured with none of its own data too, so at 0."""
    runs = _runs(noise=0.2)
    runs = runs[~runs["mixture"].fillna("").str.startswith("without-")]
    fitset = fit_runs(runs.astype(str), "chrf", bootstrap=100, seed=0)
    assert {t.own_min for t in fitset.transfer.values()} == {300.0}
    t = allocate(fitset, budget=120_000, unit="tokens", inside_mixture=False).transfer
    assert all(p >= 300 for p in t["pairs"].values()) and t["floors"] == {lang: 300.0 for lang in TRUTH}
    # With leave-one-out runs every language has an in-mixture curve, measured with none of its own data
    # too: the plan itself is made on those, floored at their smallest size, 0.
    loo_fits = fit_runs(_runs(noise=0.2).astype(str), "chrf", bootstrap=100, seed=0)
    with_loo = allocate(loo_fits, budget=120_000, unit="tokens")
    assert with_loo.curves == "in-mixture curves" and with_loo.transfer is None
    assert all(min(loo_fits.transfer[lang].mixture_fit.sizes) == 0 for lang in TRUTH)
    assert not [n for n in with_loo.warnings if "its smallest run" in n]


def test_rows_without_own_data_check_the_law_instead_of_bending_tau():
    """A language scored with none of its own data whose score the others' data do not lift (as measured
    on the default): τ from the rows with own data is unchanged, and `alone_gap` reports the shortfall."""
    runs = _runs()
    alone = runs["mixture"].fillna("").str.startswith("without-") & (runs["n_pairs"] == 0)
    zero_shot = {lang: float(curve.predict(0)) for lang, (curve, _) in TRUTH.items()}
    truth_alone = runs.loc[alone].apply(lambda r: float(TRUTH[r["language"]][0].predict(
        TRUTH[r["language"]][1] * r["other_pairs"])), axis=1)
    runs.loc[alone, "chrf"] = runs.loc[alone, "language"].map(zero_shot)  # no lift without own data
    fitset = fit_runs(runs.astype(str), "chrf", bootstrap=50, seed=0)
    for lang, (_, tau) in TRUTH.items():
        t = fitset.transfer[lang]
        assert t.tau == pytest.approx(tau, abs=2e-3)
        expected_gap = zero_shot[lang] - float(truth_alone[runs.loc[alone, "language"] == lang].iloc[0])
        assert t.alone_gap == pytest.approx(expected_gap, abs=1e-2) and t.alone_gap < 0

