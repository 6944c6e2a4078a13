"""Zero-shot points and offset curves on the scaling-curve figures, and the "What pooling did" section."""

from __future__ import annotations

import numpy as np
import pytest

from fits import load_fits
from reports import figures as F
from reports.build import ReportBuilder
from reports.inputs import load_inputs
from reports.plotting import zero_threshold
from reports.style import fmt_num
from report_fixture import synthetic_runs, true_laws


@pytest.fixture(scope="module")
def builder(rendered, tmp_path_factory):
    return ReportBuilder(load_inputs(rendered.report.parent), tmp_path_factory.mktemp("figs"))


def _zero_shot(builder, language: str) -> float:
    runs = builder.inputs.runs
    return float(runs.loc[(runs["language"] == language) & (runs["n_pairs"] == 0), "chrf"].iloc[0])


def test_zero_shot_point_and_offset_curve_are_drawn_from_zero(builder):
    assert builder.zero_axis
    panel = builder.curve_panel("ar")
    positive = panel.points_x[panel.points_x > 0]
    assert 0 in panel.points_x and panel.zero_threshold < positive.min()
    # The offset law is finite at 0: the curve starts there, near the measured zero-shot score.
    assert panel.grid[0] == 0 and np.isfinite(panel.fit[0]) and abs(panel.fit[0] - _zero_shot(builder, "ar")) < 3
    fig = F.scaling_curves_figure([panel], "training pairs", "chrF", 0.9)
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog" and ax.get_xlim()[0] <= 0
    drawn = np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    assert np.any((drawn[:, 0] == 0) & np.isclose(drawn[:, 1], _zero_shot(builder, "ar")))
    curve = max(ax.lines, key=lambda line: len(line.get_xdata()))  # the fit (the others are markers)
    assert curve.get_xdata()[0] == 0 and np.isclose(curve.get_ydata()[0], panel.fit[0])
    ticks = ax.xaxis.get_major_locator()()
    assert ticks[0] == 0 and ax.xaxis.get_major_formatter()(0, 0) == "0"


def test_without_zero_shot_runs_the_axis_stays_logarithmic(tmp_path):
    synthetic_runs(true_laws(["de", "fr"], seed=1), seed=1).to_csv(tmp_path / "runs.csv", index=False)
    b = ReportBuilder(load_inputs(tmp_path), tmp_path / "figs")
    panel = b.curve_panel("de")
    assert not b.zero_axis and panel.zero_threshold is None
    assert F.scaling_curves_figure([panel], "x", "y", 0.9).axes[0].get_xscale() == "log"


@pytest.mark.parametrize("smallest, expected", [(250, 100), (500, 200), (1000, 500), (6250, 2000), (3, 1)])
def test_zero_slot_threshold_sits_below_the_smallest_size(smallest, expected):
    assert zero_threshold(smallest) == pytest.approx(expected)


def test_pooling_section_shows_own_pooled_and_moved(rendered):
    html = rendered.report.read_text(encoding="utf-8")
    section = html[html.index('<section id="pooling">'):]
    section = section[:section.index("</section>")]
    fits = load_fits(rendered.report.parent / "fits.json")
    pop = fits.population
    assert f"One offset power law for all {int(pop['languages'])} languages" in section
    assert f"σ = {fmt_num(pop['sigma'], 3)} chrF" in section
    assert "Population prior (5% / median / 95%): α " + " / ".join(fmt_num(v, 3) for v in pop["prior"]["alpha"]) in section
    alone = 0
    for lang, lf in fits.languages.items():
        if lf.own_params is None:  # its runs alone do not identify the four-parameter offset law
            assert "do not identify the law" in section
            continue
        alone += 1
        for key in ("alpha", "offset", "x0"):
            own, pooled = lf.own_params[key], lf.params[key]
            assert f"{fmt_num(own, 3)} → {fmt_num(pooled, 3)}" in section, (lang, key)
    assert alone >= 1
    assert 'id="pooling"' in section and "<img" in section
