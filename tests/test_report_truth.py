"""The report's truth test: the paired verdict leads the summary, the final runs show every seed, the plan
says why and how much budget it saves, and one seed or old-format files are read honestly."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from fits import fit_runs, save_fits
from planner.allocation import allocate, read_allocation, read_summary, write_allocation
from reports import render_report
from reports.build import ReportBuilder
from reports.final_sections import calibration_sentence, final_section, verdict_sentence
from reports.html import render_section
from reports.inputs import load_inputs
from reports.style import fmt_difference, fmt_num, fmt_pct
from reports.summary import summary_section
from report_fixture import make_output_dir, synthetic_runs, true_laws


def _section(page: str, ident: str) -> str:
    start = page.index(f'<section id="{ident}">')
    return page[start:page.index("</section>", start)]


def test_the_paired_verdict_leads_the_summary(rendered, page):
    comparison = pd.read_csv(rendered.report.parent / "final" / "comparison.csv")
    objective = comparison[comparison["scope"] == "(objective)"]
    assert len(objective) >= 2 and (objective["n_seeds"] == 3).all()
    summary = _section(page, "summary")
    # The verdict is the summary's first block, before the headline numbers and every other section.
    assert re.search(r'<h2>Summary</h2>\s*<div class="verdict"', summary)
    words = {"beat": "beat", "lost": "lost to", "tied": "tied with"}
    for _, r in objective.iterrows():
        interval = "[" + fmt_difference(r["mean_difference"], r["low"], r["high"]).split(" [")[1]
        who = "The plan" if r["mixture"] == "plan" else "The plan at "
        line = re.search(rf'<li class="(\w*)"><span class="mark">.</span>({re.escape(who)}[^<]*'
                         rf'{words[r["verdict"]]} {re.escape(r["baseline"])}[^<]*)</li>', summary)
        assert line, f"no verdict line for {r['mixture']} vs {r['baseline']}"
        assert interval in line.group(2) and "over 3 paired seeds" in line.group(2)
        assert line.group(1) == {"beat": "good", "lost": "bad"}.get(r["verdict"], "")
    assert summary.index('class="verdict"') < summary.index('class="headline"')


def test_budget_saved_is_a_headline_number(rendered, page):
    summary = read_summary(rendered.report.parent / "allocation_summary.json")
    assert summary["unit"] == "tokens" and 0 < summary["budget_saved"] < 1
    head = _section(page, "summary")
    card = re.search(r'<div class="label">Budget saved</div><div class="value">([^<]+)</div>'
                     r'<div class="detail">([^<]+)</div>', head)
    assert card and card.group(1) == fmt_pct(summary["budget_saved"], 0)
    assert f"matches uniform&#x27;s predicted objective at {fmt_pct(1 - summary['budget_saved'], 0)} of the budget" in card.group(2)


def test_why_lines_one_per_language(rendered, page):
    allocation = read_allocation(rendered.report.parent / "allocation.csv")
    table = page[page.index('<table id="why">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr><td>(\w+)[^<]*</td><td class=\"num\">([^<]*)</td><td>(.*?)</td></tr>", table)
    assert [r[0] for r in rows] == list(allocation["language"])
    for (_, head, reasons), why in zip(rows, allocation["why"]):
        expected_head, _, expected = why.partition(": ")
        assert head == expected_head
        assert reasons.split("<br>") == [r.replace("'", "&#x27;") for r in expected.split("; ")]


def test_final_runs_show_every_seed_calibration_and_the_reduced_plan(rendered, page):
    final = _section(page, "final")
    metrics = pd.read_csv(rendered.report.parent / "final" / "metrics.csv")
    row = metrics[(metrics["mixture"] == "plan") & (metrics["language"] == "ar")].sort_values("seed")
    assert "seeds " + ", ".join(fmt_num(v, 4) for v in row["achieved"]) in final
    objectives = pd.read_csv(rendered.report.parent / "final" / "objectives.csv")
    reduced = objectives[objectives["mixture"] == "plan-reduced"]["achieved_objective"]
    uniform = objectives[objectives["mixture"] == "uniform"]["achieved_objective"]
    share = 1 - read_summary(rendered.report.parent / "allocation_summary.json")["budget_saved"]
    assert (f"The plan at {fmt_pct(share, 0)} of the budget: achieved objective {fmt_num(reduced.mean(), 4)} "
            f"(mean of 3 seeds) against uniform&#x27;s {fmt_num(uniform.mean(), 4)} at the full budget") in final
    calibration = pd.read_csv(rendered.report.parent / "final" / "calibration.csv")
    table = final[final.index('<table id="calibration">'):]
    for _, r in calibration.iterrows():
        label = "all languages" if r["language"] == "(all)" else r["language"]
        assert re.search(rf"<td>{re.escape(label)}</td><td class=\"num\">{int(r['cases'])}</td>"
                         rf"<td class=\"num\">{re.escape(fmt_pct(r['coverage'], 0))}</td>", table)
    assert '<table id="comparison">' in final and 'id="paired_differences"' in final


@pytest.mark.parametrize("verdict, expected", [
    ("beat", "The plan beat uniform: +1.20 chrF on the objective, mean over 3 paired seeds, 90% interval [+0.40, +2.00]."),
    ("lost", "The plan lost to uniform: +1.20 chrF"),
    ("tied", "The plan tied with uniform: +1.20 chrF"),
    ("cannot tell (one seed)", "The plan vs uniform: +1.20 chrF with one final seed: cannot tell."),
])
def test_verdict_sentences(rendered, tmp_path, verdict, expected):
    builder = ReportBuilder(load_inputs(rendered.report.parent), tmp_path)
    row = {"mixture": "plan", "baseline": "uniform", "n_seeds": 3, "mean_difference": 1.2, "low": 0.4, "high": 2.0,
           "verdict": verdict}
    assert verdict_sentence(builder, row).startswith(expected)


@pytest.mark.parametrize("coverage, expected", [(0.65, "too narrow"), (0.9, "within chance"), (1.0, "wider")])
def test_calibration_is_judged_against_the_nominal_level(coverage, expected):
    text = calibration_sentence({"cases": 60, "coverage": coverage, "mean_error": 0.1, "rms_error": 1.0}, 0.9, "chrF")
    assert expected in text and f"{coverage:.0%} of 60" in text


def test_one_final_seed_says_it_cannot_tell(tmp_path):
    out = make_output_dir(tmp_path / "out", n_languages=4, bootstrap=50, final_seeds=(0,), alignment=False)
    builder = ReportBuilder(load_inputs(out), tmp_path / "figs")
    # Only the two sections that speak about the final runs are rendered: the rest is seed-independent.
    html = "".join(render_section(make(builder), tmp_path) for make in (summary_section, final_section))
    summary = _section(html, "summary")
    verdict = summary[summary.index('<div class="verdict"'):summary.index("</div>")]
    lines = re.findall(r"<li[^>]*>(.*?)</li>", verdict)
    assert lines and all("with one final seed: cannot tell." in line for line in lines)
    assert not any("interval [" in line or " beat " in line for line in lines)
    assert "One seed cannot tell a plan from a baseline" in verdict
    assert "With one seed there is no interval" in _section(html, "final")


def _old_format_dir(path):
    """What earlier planner versions wrote: per-language fits without pooling keys, an allocation without
    why-lines or budget saved, and final tables of one seed without a seed column or comparison files."""
    laws = true_laws(["de", "fr", "sw"], seed=2)
    runs = synthetic_runs(laws, seed=2)
    path.mkdir()
    runs.to_csv(path / "runs.csv", index=False)
    fitset = fit_runs(runs, "chrf", bootstrap=50, seed=2, pooling="none")
    save_fits(fitset, path / "fits.json")
    data = json.loads((path / "fits.json").read_text())
    for key in ("pooling", "population", "transfer"):
        data.pop(key, None)
    for entry in data["languages"].values():
        for key in ("own_params", "moved", "ess"):
            entry.pop(key, None)
    (path / "fits.json").write_text(json.dumps(data))
    plan = allocate(fitset, 3000, "pairs", risk="mean")
    write_allocation(plan, path / "allocation.csv")
    pd.read_csv(path / "allocation.csv").drop(columns=["why"]).to_csv(path / "allocation.csv", index=False)
    summary = json.loads((path / "allocation_summary.json").read_text())
    for key in ("budget_saved", "reduced_budget", "reduced_pairs"):
        summary.pop(key, None)
    (path / "allocation_summary.json").write_text(json.dumps(summary))
    rows, objectives = [], []
    for name, pairs in (("plan", {p.language: p.pairs for p in plan.languages}), ("uniform", plan.baselines["uniform"].pairs)):
        achieved = {lang: float(laws[lang].chrf(n)) for lang, n in pairs.items()}
        rows += [{"mixture": name, "language": lang, "pairs": n, "predicted": achieved[lang] - 0.5,
                  "achieved": achieved[lang], "inside_interval": True} for lang, n in pairs.items()]
        objectives.append({"mixture": name, "predicted_objective": sum(achieved.values()) - 1.5,
                           "achieved_objective": sum(achieved.values())})
    (path / "final").mkdir()
    pd.DataFrame(rows).to_csv(path / "final" / "metrics.csv", index=False)
    pd.DataFrame(objectives).to_csv(path / "final" / "objectives.csv", index=False)
    return path


def test_old_format_inputs_still_render(tmp_path):
    out = _old_format_dir(tmp_path / "old")
    result = render_report(out)
    html = result.report.read_text(encoding="utf-8")
    assert re.findall(r'<section id="([^"]+)"', html) == ["summary", "curves", "comparison", "allocation", "marginal",
                                                         "final", "runs", "environment"]
    summary = _section(html, "summary")
    assert "with one final seed: cannot tell." in summary  # the comparison is derived; one seed is one seed
    assert "final/comparison.csv — derived here from final/metrics.csv" in summary
    assert "Budget saved" not in summary and '<table id="why">' not in html
    builder = ReportBuilder(load_inputs(out), tmp_path / "figs")
    assert builder.zero_axis is False and builder.final.seeds == [0]
    assert builder.curve_panel("de").zero_threshold is None


def test_mixture_proxy_rows_are_not_points_of_a_language_curve(tmp_path):
    runs = synthetic_runs(true_laws(["de", "fr"], seed=1), seed=1)
    mixed = pd.DataFrame([{"language": "de", "n_pairs": 500, "n_tokens": 10000, "seed": 0, "chrf": 99.0,
                           "status": "complete", "mixture": "m1", "other_pairs": 500}])
    pd.concat([runs, mixed]).to_csv(tmp_path / "runs.csv", index=False)
    builder = ReportBuilder(load_inputs(tmp_path), tmp_path / "figs")
    panel = builder.curve_panel("de")
    assert len(panel.points_x) == 8 and not np.any(panel.points_y == 99.0)


def test_the_achieved_gain_compares_the_seeds_both_mixtures_were_trained_with(tmp_path):
    """Uniform trained with more seeds than the plan (more seeds added to one comparison later): the headline
    gain must pair the same seeds as the verdict beside it, not the plan's 3 against uniform's 6."""
    from reports.final_sections import achieved_gain_metric

    out = make_output_dir(tmp_path / "out", n_languages=4, bootstrap=50, final_seeds=(0, 1, 2), alignment=False)
    path = out / "final" / "objectives.csv"
    objectives = pd.read_csv(path)
    extra = objectives[objectives["mixture"] == "uniform"].assign(seed=lambda d: d["seed"] + 3,
                                                                  achieved_objective=1e6)
    pd.concat([objectives, extra], ignore_index=True).to_csv(path, index=False)
    builder = ReportBuilder(load_inputs(out), tmp_path / "figs")
    metric = achieved_gain_metric(builder)
    by = objectives.set_index(["mixture", "seed"])["achieved_objective"]
    means = {m: by[m].mean() for m in builder.final.baselines}  # seeds 0-2: the extra seeds left out
    best = max(means, key=means.get)
    assert float(metric.value.replace("−", "-")) == pytest.approx(by["plan"].mean() - means[best], rel=2e-3)
    assert f"vs {best} {fmt_num(means[best], 4)} (mean of 3 paired seeds)" in metric.detail


@pytest.mark.parametrize("mean, higher, mixture_runs, expected, absent", [
    # bits per byte (lower is better), achieved below predicted everywhere, no mixture proxy runs: transfer
    (-0.073, False, False, ["one shift", "better in the final mixtures", "only mixture proxy runs measure"], []),
    # the same misses with mixture runs in the table: the shift is named, not blamed on missing mixture runs
    (-0.073, False, True, ["one shift", "better"], ["only mixture proxy runs"]),
    # scores (higher is better) that fell short everywhere: worse, and no transfer story
    (-0.073, True, False, ["one shift", "worse in the final mixtures"], ["transfer"]),
    # scattered misses (mean small against the RMS): no shift sentence
    (-0.02, False, False, [], ["one shift"]),
])
def test_calibration_names_a_one_sided_shift(mean, higher, mixture_runs, expected, absent):
    row = {"cases": 40, "coverage": 0.2, "mean_error": mean, "rms_error": 0.076}
    text = calibration_sentence(row, 0.9, "bpb", higher, mixture_runs)
    assert "too narrow" in text
    assert all(e in text for e in expected) and not any(a in text for a in absent)


def test_calibration_within_chance_adds_no_shift_sentence():
    row = {"cases": 40, "coverage": 0.9, "mean_error": -0.07, "rms_error": 0.076}
    assert "one shift" not in calibration_sentence(row, 0.9, "bpb", False, False)
