"""The report rendered from a complete synthetic output directory (real fits, real allocation)."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from fits import fit_runs, load_fits
from planner.allocation import allocate, read_allocation, read_summary
from reports import figures as F
from reports import render_report
from reports.build import ReportBuilder
from reports.inputs import load_inputs
from report_fixture import synthetic_runs, true_laws

SECTIONS = ["summary", "curves", "pooling", "comparison", "allocation", "marginal", "final", "alignment", "runs",
            "environment"]


def _embedded_pngs(html: str) -> list[tuple[bytes, int, int]]:
    found = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" width="(\d+)" height="(\d+)"', html)
    return [(base64.b64decode(data, validate=True), int(w), int(h)) for data, w, h in found]


def test_every_section_is_present_in_order(rendered, page):
    assert rendered.missing == []
    assert re.findall(r'<section id="([^"]+)"', page) == SECTIONS
    for table in ("plan-compact", "fits", "pooling", "why", "plan-full", "baselines", "comparison", "final-objectives",
                  "final-metrics", "calibration", "alignment", "runs", "versions"):
        assert f'<table id="{table}">' in page
    assert "resolved_config.yaml" in page and "planner_version" in page


def test_every_embedded_image_decodes(rendered, page):
    images = _embedded_pngs(page)
    assert len(images) == len(rendered.figures) == 8
    for data, css_w, css_h in images:
        Image.open(io.BytesIO(data)).verify()  # checks the PNG's chunks and CRCs
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.size[0] > 600 and image.size[1] > 300
        # Shown at its natural size: 150 dpi pixels as 96 CSS px per inch.
        assert abs(css_w - image.size[0] * 96 / 150) <= 1 and abs(css_h - image.size[1] * 96 / 150) <= 1
        # Not a blank canvas: a real chart has many colours.
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50
    for fig in rendered.figures:
        assert fig.png.read_bytes() in [d for d, _, _ in images]
        ET.parse(fig.svg)  # the SVG beside it is well-formed XML


def test_summary_states_the_plan_and_its_gain(rendered, page):
    summary = read_summary(rendered.report.parent / "allocation_summary.json")
    head = page[page.index('id="summary"'):page.index('id="curves"')]
    assert "Gain over best baseline" in head and f"vs {summary['best_baseline']}" in head
    gain = summary["gain_over_best_baseline"]
    assert (f"+{gain:.3g}" if gain >= 0 else f"−{abs(gain):.3g}") in head
    allocation = read_allocation(rendered.report.parent / "allocation.csv")
    for _, row in allocation.iterrows():
        assert f"{int(row['pairs']):,}" in head


def test_fit_warnings_sit_next_to_their_language(rendered, page):
    fits = load_fits(rendered.report.parent / "fits.json")
    table = page[page.index('<table id="fits">'):]
    table = table[:table.index("</table>")]
    flagged = [(lang, lf.warnings[0]) for lang, lf in fits.languages.items() if lf.warnings]
    (skipped,) = fits.skipped
    assert flagged  # the two-size language leans on the population prior, and says so
    for lang, text in flagged + [(skipped, fits.skipped[skipped])]:
        row = re.search(rf'<tr><td><span class="flag"[^>]*>⚠</span> {lang} \(.*?</tr><tr class="warn-row">(.*?)</tr>',
                        table, re.S)
        assert row, f"no warning row under {lang}"
        assert text.split(":")[0].replace(">", "&gt;").replace("<", "&lt;") in row.group(1)


def test_markdown_summary_has_the_tables_and_links_existing_figures(rendered):
    md = rendered.markdown.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert len(links) == len(rendered.figures)
    for link in links + re.findall(r"\[SVG\]\(([^)]+)\)", md):
        assert (rendered.markdown.parent / link).is_file()
    for heading in ("## Summary", "## Scaling curves per language", "## The allocation and its baselines",
                    "## What pooling did", "## Predicted vs achieved (final runs)", "## Run ledger"):
        assert heading in md
    assert md.count("|---") >= 9  # one per table


@pytest.mark.parametrize("fit_x, unit, budget", [("pairs", "pairs", 6000), ("pairs", "tokens", 150_000),
                                                 ("tokens", "pairs", 6000), ("tokens", "tokens", 150_000)])
def test_marginal_gain_curves_cross_lambda_at_the_plan(tmp_path, fit_x, unit, budget):
    """The chart's unit conversions agree with the solver: every interior language's curve meets λ at its
    planned amount, and the gain there is the solver's own `marginal_gain`."""
    laws = true_laws(["de", "fr", "ja", "sw"], seed=3)
    runs = synthetic_runs(laws, seed=3)
    fitset = fit_runs(runs, "chrf", x=fit_x, bootstrap=0, seed=3)
    plan = allocate(fitset, budget, unit)
    out = tmp_path / "out"
    out.mkdir()
    runs.to_csv(out / "runs.csv", index=False)
    from fits import save_fits
    from planner.allocation import write_allocation

    save_fits(fitset, out / "fits.json")
    write_allocation(plan, out / "allocation.csv")
    builder = ReportBuilder(load_inputs(out), tmp_path / "figs")
    interior = [p for p in plan.languages if p.at_bound is None]
    assert interior and plan.lam is not None
    for p in plan.languages:
        line = builder.marginal_line(p.language, builder.fits[p.language])
        assert line.plan_gain == pytest.approx(p.marginal_gain, rel=1e-6)
        if p.at_bound is None:
            assert line.plan_gain == pytest.approx(plan.lam, rel=1e-6)
        # The plotted curve passes through the plan point (same function, same units).
        assert np.interp(np.log(line.plan_x), np.log(line.grid), np.log(line.gain)) == pytest.approx(
            np.log(line.plan_gain), abs=1e-3)


def test_many_languages_are_paged(rendered, tmp_path, monkeypatch):
    """Page sizes shrunk so six languages need two pages of each per-language figure (the same code pages
    100 languages at the real sizes, see benchmarks/report_render_time.py)."""
    monkeypatch.setattr(F, "CURVES_PER_PAGE", 4)
    monkeypatch.setattr(F, "LINES_PER_CHART", 4)
    monkeypatch.setattr(F, "BARS_PER_PAGE", 4 * 7)  # 4 languages × (plan + 6 baselines)
    monkeypatch.setattr(F, "ROWS_PER_PAGE", 3)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("runs.csv", "fits.json", "allocation.csv", "allocation_summary.json"):
        (out / name).write_bytes((rendered.report.parent / name).read_bytes())
    result = render_report(out, out=tmp_path / "paged.html")
    assert [f.id for f in result.figures] == [
        "scaling_curves_1", "scaling_curves_2", "pooling_1", "pooling_2", "comparison_1", "comparison_2",
        "allocation_1", "allocation_2", "marginal_gain_1", "marginal_gain_2"]
    # Balanced pages that name their languages: 6 curve panels as 3 + 3, 5 allocated languages as 3 + 2.
    titles = [f.title for f in result.figures]
    assert titles[0] == "Scaling curves (1/2: ar–hi)" and titles[1] == "Scaling curves (2/2: tr–zh)"
    assert titles[2] == "Own vs pooled estimates (1/2: ar–hi)" and titles[3] == "Own vs pooled estimates (2/2: tr–vi)"
    assert titles[6] == "Plan vs baselines (1/2: ar–hi)" and titles[7] == "Plan vs baselines (2/2: tr–vi)"
    html = result.report.read_text(encoding="utf-8")
    assert len(_embedded_pngs(html)) == 10
    # Re-rendering a smaller directory into the same place removes the pages that no longer exist.
    runs_only = tmp_path / "runs_only"
    runs_only.mkdir()
    (runs_only / "runs.csv").write_bytes((rendered.report.parent / "runs.csv").read_bytes())
    again = render_report(runs_only, out=result.report)
    assert sorted(p.name for p in (tmp_path / "paged_figures").iterdir()) == sorted(
        p.name for f in again.figures for p in (f.png, f.svg))


def test_report_reads_a_runs_table_written_by_hand(tmp_path):
    """No status, seed or n_tokens columns: still plotted and summarised."""
    laws = true_laws(["de", "fr"], seed=1)
    runs = synthetic_runs(laws, seed=1)[["language", "n_pairs", "chrf"]]
    runs.to_csv(tmp_path / "runs.csv", index=False)
    result = render_report(tmp_path)
    assert len(result.figures) == 2
    html = result.report.read_text(encoding="utf-8")
    assert '<td>de</td><td class="num">8</td><td class="num">8</td>' in html


def test_a_target_plan_shows_each_target_and_the_share_of_draws_reaching_it(tmp_path):
    """objective target: the plan table gains the target and the share of the fits' draws that reach it
    at the planned pairs (allocation.csv's p_reach), which is at least the confidence asked for."""
    from fits import save_fits
    from planner.allocation import write_allocation

    laws = true_laws(["de", "fr"], seed=2)
    synthetic_runs(laws, seed=2).to_csv(tmp_path / "runs.csv", index=False)
    fitset = fit_runs(synthetic_runs(laws, seed=2), "chrf", bootstrap=200, seed=0)
    save_fits(fitset, tmp_path / "fits.json")
    targets = {lang: float(law.chrf(3000.0)) for lang, law in laws.items()}
    plan = allocate(fitset, 1e9, "tokens", objective="target", targets=targets, target_confidence=0.8)
    write_allocation(plan, tmp_path / "allocation.csv")
    table = read_allocation(tmp_path / "allocation.csv")
    assert (table.p_reach >= 0.8).all()
    html = render_report(tmp_path).report.read_text(encoding="utf-8")
    assert "reached by (draws)" in html and "the fewest that reach its target with the plan" in html
    assert "what doubling its equal share would buy" not in html  # the sum objective's reasons
    for p in plan.languages:
        assert f'<td class="num">{100 * p.p_reach:.0f}%</td>' in html


def test_a_verdict_in_markdown_marks_wins_and_losses_and_adds_no_second_bullet():
    from pathlib import Path

    from reports.document import Verdict, VerdictLine
    from reports.markdown import _block

    text = _block(Verdict("Verdict", [VerdictLine("tied", ""), VerdictLine("won", "good"), VerdictLine("lost", "bad")]),
                  Path("."))
    assert "> - tied" in text and "> - ✓ won" in text and "> - ✗ lost" in text and "•" not in text


def test_a_mode_outside_its_interval_is_reported_as_the_draws_median():
    """A skewed posterior's mode can fall outside the draws' interval (the default's Greek asymptote
    E = -0.027 beside [-0.011, 0.743]): the table shows the draws' median with it and names the mode."""
    from types import SimpleNamespace

    import numpy as np

    from reports.fit_sections import params_text

    boot = SimpleNamespace(params={"offset": np.array([-0.011, 0.1, 0.2, 0.3, 0.74]),
                                   "scale": np.array([2.2, 2.5, 2.7, 2.8, 2.86]),
                                   "alpha": np.array([0.12, 0.13, 0.14, 0.2, 0.24])})
    lf = SimpleNamespace(family="power", params={"offset": -0.0273, "scale": 2.75, "alpha": 0.127},
                         intervals={"offset": (-0.0113, 0.743), "scale": (2.18, 2.86), "alpha": (0.121, 0.239)},
                         boot=boot)
    lines = params_text(lf, higher=False).split("\n")
    assert lines[0].startswith("E = 0.200 [") and "draws' median; mode -0.0273" in lines[0]
    assert lines[1].startswith("A = 2.75 [") and "median" not in lines[1]  # inside its interval: the mode
    assert "median" not in lines[2]
