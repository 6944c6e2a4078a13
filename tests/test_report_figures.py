"""The plan's figures tell the truth about the plan (issue 32): each test reads the drawn artists.

1. The marginal-gain chart under the default risk rule (expected) plots the curve the plan optimised, so
   every interior language's plan point sits on the λ line.
2. A language planned 0 pairs is drawn at 0 on a zero-slot axis, without a warning.
3. The plan's and the baselines' predicted intervals are the same kind (predictive: with one run's noise).
4. A target plan is drawn beside baselines at its own spend, not at the full budget.
Plus the fit table's flags: a flagged parameter carries the mark and its reason.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from fits import fit_runs, save_fits
from fits.flags import fit_flags
from planner.allocation import LanguageLimits, allocate, write_allocation
from reports import plan_figures as PF
from reports.build import ReportBuilder
from reports.fit_sections import FLAG_MARK, flags_text, params_text
from reports.inputs import load_inputs
from reports.plan_mixtures import mixtures
from reports.plotting import figure_bytes
from report_fixture import synthetic_runs, true_laws


def _write(out: Path, runs, fitset, plan) -> ReportBuilder:
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    save_fits(fitset, out / "fits.json")
    write_allocation(plan, out / "allocation.csv")
    return ReportBuilder(load_inputs(out), out / "figs")


@pytest.fixture(scope="module")
def sum_plan(tmp_path_factory):
    """A pair budget under the default risk rule (expected, over 200 posterior draws); 'sw' weighs so
    little that the plan gives it 0 pairs."""
    laws = true_laws(["de", "fr", "ja", "sw"], seed=3)
    runs = synthetic_runs(laws, seed=3)
    fitset = fit_runs(runs, "chrf", bootstrap=200, seed=3)
    plan = allocate(fitset, 3000, "pairs", limits={"sw": LanguageLimits(weight=1e-5)})
    assert plan.risk == "expected"
    return plan, _write(tmp_path_factory.mktemp("sum_plan"), runs, fitset, plan)


def _marginal(builder):
    lines = [builder.marginal_line(lang, builder.fits[lang]) for lang in builder.alloc.languages]
    return lines, PF.marginal_figure(lines, builder.alloc.lam, "pairs", "gain")


def test_under_risk_expected_the_plan_points_sit_on_the_lambda_line(sum_plan):
    plan, builder = sum_plan
    lines, fig = _marginal(builder)
    ax = fig.axes[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    interior = [p for p in plan.languages if p.at_bound is None]
    assert len(interior) == 3
    for p in interior:
        line = next(line for line in lines if line.language == p.language)
        point = points[np.isclose(points[:, 0], line.plan_x)]
        assert point[0, 1] == pytest.approx(plan.lam, rel=1e-5)  # on the dashed line
        drawn = next(a for a in ax.get_lines() if a.get_label() == p.language)
        x, y = drawn.get_xdata(), drawn.get_ydata()
        # The drawn curve crosses λ at the plan: it is the curve the solver equalised.
        assert np.interp(np.log(line.plan_x), np.log(x), np.log(y)) == pytest.approx(np.log(plan.lam), abs=1e-3)


def test_a_language_planned_zero_pairs_sits_at_zero_on_a_zero_slot_axis(sum_plan):
    plan, builder = sum_plan
    sw = next(p for p in plan.languages if p.language == "sw")
    assert sw.pairs == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, fig = _marginal(builder)
        figure_bytes(fig, "png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    at_zero = points[points[:, 0] == 0]
    assert len(at_zero) == 1 and at_zero[0, 1] == pytest.approx(sw.marginal_gain, rel=1e-6)
    assert "0" in [t.get_text() for t in ax.get_xticklabels()]


def _errorbar_widths(ax) -> list[np.ndarray]:
    """Per mixture drawn, the length of each interval whisker on the prediction panel, in drawing order."""
    return [np.array([abs(seg[1][1] - seg[0][1]) for seg in c.lines[2][0].get_segments()])
            for c in ax.containers if hasattr(c, "has_yerr") and c.has_yerr]


def test_the_plan_and_the_baselines_have_the_same_kind_of_interval(rendered, tmp_path):
    """A baseline that allocates exactly what the plan does gets the plan's interval (up to the draws'
    sampling): both carry one run's noise, not the curve's uncertainty alone."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("runs.csv", "fits.json", "allocation.csv", "allocation_summary.json"):
        shutil.copy(rendered.report.parent / name, out / name)
    summary = json.loads((out / "allocation_summary.json").read_text(encoding="utf-8"))
    plan = summary["languages"] if "languages" in summary else None
    table = load_inputs(out).allocation.set_index("language")
    copy = {"objective_value": summary.get("objective_value"),
            "languages": {lang: {"pairs": float(r["pairs"]), "tokens": float(r["tokens"]), "predicted": float(r["predicted"])}
                          for lang, r in table.iterrows()}}
    summary["baselines"] = {"same-as-plan": copy, **summary["baselines"]}
    (out / "allocation_summary.json").write_text(json.dumps(summary), encoding="utf-8")
    builder = ReportBuilder(load_inputs(out), tmp_path / "figs")
    langs = builder.alloc.languages
    series, _ = mixtures(builder, langs)
    assert [m.name for m in series][:2] == ["plan", "same-as-plan"] and plan is None
    fig = PF.allocation_figure(langs, series, "tokens", "chrF")
    widths = _errorbar_widths(fig.axes[1])
    ratio = widths[1] / widths[0]
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.1)
    # The curve's own interval is far narrower: that is what the baselines used to show.
    curve_only = np.array([np.subtract(*builder.fits[lang].predict_interval(np.array([float(table.loc[lang, "pairs"])]),
                                                                            builder.level)[::-1])[0] for lang in langs])
    assert np.all(widths[1] > 1.5 * curve_only)


def test_a_target_plan_is_drawn_beside_baselines_at_its_own_spend(tmp_path):
    laws = true_laws(["de", "fr", "ja"], seed=2)
    runs = synthetic_runs(laws, seed=2)
    fitset = fit_runs(runs, "chrf", bootstrap=200, seed=0)
    targets = {lang: float(law.chrf(3000.0)) for lang, law in laws.items()}
    plan = allocate(fitset, 900_000, "tokens", objective="target", targets=targets, target_confidence=0.8)
    assert plan.spent < plan.budget / 2  # the baselines at the full budget spend over twice as much
    builder = _write(tmp_path / "out", runs, fitset, plan)
    langs = builder.alloc.languages
    series, left_out = mixtures(builder, langs)
    fig = PF.allocation_figure(langs, series, "tokens", "chrF")
    bars = {c.get_label(): c.datavalues for c in fig.axes[0].containers if hasattr(c, "datavalues")}
    assert set(bars) == {"plan", "uniform", "unimax"} and left_out == {}
    for name, heights in bars.items():
        assert float(np.sum(heights)) == pytest.approx(plan.spent, rel=1e-6), name
    # Uniform at the plan's spend: equal tokens per language, predicted on the same curves as the plan.
    assert np.ptp(bars["uniform"]) < 0.001 * np.mean(bars["uniform"])
    uniform = next(m for m in series if m.name == "uniform")
    pairs = bars["uniform"] / np.array([fitset.languages[lang].tokens_per_pair for lang in langs])
    expected = [np.mean(fitset.languages[lang].predict_draws(np.array([p]))) for lang, p in zip(langs, pairs)]
    assert uniform.predicted == pytest.approx(expected, rel=1e-3)


def test_a_flagged_parameter_carries_the_mark_and_its_reason(page):
    from fits.laws import Curve
    from fits.results import LanguageFit

    lf = LanguageFit(language="hi", law="power", curve=Curve("power", {"offset": 45.3, "scale": 7.2e18, "alpha": 3.86}),
                     boot=None, intervals={"alpha": (0.0109, 3.61)}, r2=0.9, rmse=0.5, residuals=[], backtest=None,
                     n_points=8, sizes=[250.0, 500.0, 1000.0, 2000.0], tokens_per_pair=None, warnings=[], candidates={})
    flags = fit_flags(lf)
    lines = params_text(lf, True, flags).split("\n")
    assert lines[0] == "C = 45.3"
    assert lines[1].startswith("A = 7,200,000,") and lines[1].endswith(f"{FLAG_MARK} A beyond the data's scale")
    assert lines[2].endswith(f"{FLAG_MARK} α at its bound")
    assert flags_text(flags).count(FLAG_MARK) == 2 and "not a measured rate" in flags_text(flags)
    table = page[page.index('<table id="fits">'):]
    assert ">flags</th>" in table[:table.index("</tr>")]


def test_a_money_plan_is_drawn_and_named_in_money(tmp_path):
    """Under a money budget a pair costs its language's price: the marginal gains per unit of money sit on
    λ, and the report names the budget with its currency (not the bare word 'money')."""
    laws = true_laws(["de", "fr", "ja"], seed=4)
    runs = synthetic_runs(laws, seed=4)
    fitset = fit_runs(runs, "chrf", bootstrap=100, seed=4)
    prices = {"de": 0.05, "fr": 0.08, "ja": 0.20}
    plan = allocate(fitset, 150.0, "money", currency="EUR",
                    limits={lang: LanguageLimits(price_per_pair=p, max_pairs=50_000) for lang, p in prices.items()})
    builder = _write(tmp_path / "money", runs, fitset, plan)
    assert builder.alloc.budget_text() == "150.00 EUR"
    for lang, price in prices.items():
        assert builder.alloc.cost_per_pair(lang, 99.0) == pytest.approx(price)
    lines, fig = _marginal(builder)
    points = np.concatenate([c.get_offsets() for c in fig.axes[0].collections])
    for p in (p for p in plan.languages if p.at_bound is None):
        line = next(line for line in lines if line.language == p.language)
        assert points[np.isclose(points[:, 0], line.plan_x)][0, 1] == pytest.approx(plan.lam, rel=1e-5)
