"""The report's sections on mixtures and the adaptive sweep: the transfer fit of mixture proxy runs (τ per
language beside the transfer-aware plan) and the runs an adaptive sweep chose, rendered from real
producers' files (`fits.fit_runs`, `planner.allocation.allocate`, a sweep_choices.csv as the sweep writes
it). A grid sweep without mixtures shows neither (the shared fixture report: tests/test_report.py)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from fits import fit_runs, save_fits
from planner.allocation import allocate, write_allocation
from planner.sweep.chosen import CHOICE_COLUMNS
from test_transfer import TRUTH, _runs


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from reports import render_report

    out = tmp_path_factory.mktemp("mixtures")
    runs = _runs(noise=0.2)
    mixed = runs["mixture"].notna()
    # as the sweep writes them: each row of a mixture run carries the whole run's time and directory
    runs["train_seconds"] = (runs["n_pairs"] > 0) * 60.0
    runs.loc[mixed, "train_seconds"] = 600.0
    runs["run_dir"] = [f"mixture_runs/{m}" if isinstance(m, str) else f"runs/{lang}-{n}"
                       for m, lang, n in zip(runs["mixture"], runs["language"], runs["n_pairs"])]
    runs.to_csv(out / "runs.csv", index=False)
    fitset = fit_runs(runs.astype(str), "chrf", bootstrap=200, seed=0)
    save_fits(fitset, out / "fits.json")
    write_allocation(allocate(fitset, 120_000, "tokens", seed=0), out / "allocation.csv")
    choices = [dict(zip(CHOICE_COLUMNS, [i + 1, 0, lang, n, 0, "start design", None, None, None, "done", 30.0,
                                         None, None, None, None]))
               for i, (lang, n) in enumerate((lang, n) for lang in TRUTH for n in (250, 500))]
    choices.append(dict(zip(CHOICE_COLUMNS, [7, 1, "tr", 2000, 0, "value of information", 0.8, 40_000, 20.0,
                                             "done", 61.0, 1.5, 30_000, 100_000, 1.7e9])))
    pd.DataFrame(choices, columns=CHOICE_COLUMNS).to_csv(out / "sweep_choices.csv", index=False)
    return fitset, render_report(out)


def test_transfer_section_shows_each_languages_tau_and_the_transfer_aware_plan(report):
    fitset, rendered = report
    page = rendered.report.read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)"', page)
    assert sections.index("allocation") < sections.index("transfer") < sections.index("sweep") < sections.index("runs")
    table = page[page.index('<table id="transfer">'):]
    table = table[:table.index("</table>")]
    for lang in TRUTH:
        assert f"{fitset.transfer[lang].tau:.3f}" in table
    assert "5 mixture proxy runs" in page  # two uniform and three leave-one-out runs


def test_sweep_section_lists_the_chosen_runs_in_order(report):
    _, rendered = report
    page = rendered.report.read_text(encoding="utf-8")
    table = page[page.index('<table id="sweep-choices">'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr") == 1 + 7 and "value of information" in table
    assert "chose 1 more in 1 rounds" in page and "tr 1" in page
    assert any(f.id == "sweep_choices" for f in rendered.figures)


def test_run_ledger_counts_a_mixture_runs_time_once_not_in_every_language(report):
    _, rendered = report
    page = rendered.report.read_text(encoding="utf-8")
    ledger = page[page.index('<table id="runs">'):]
    ledger = ledger[:ledger.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", ledger, flags=re.S)
    cells = {re.sub(r"<[^>]+>", "", r.split("</td>")[0]).strip(): re.sub(r"<[^>]+>", " ", r) for r in rows[1:]}
    for lang in TRUTH:  # 4 own trained runs × 60 s; the mixture runs' 5 × 600 s are not added to it
        assert "4.0 min" in cells[lang], cells[lang]
    assert "mixture runs" in cells and "50.0 min" in cells["mixture runs"]  # 5 runs, each once
