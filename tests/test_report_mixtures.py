"""The report's section on mixtures: the transfer fit of mixture proxy runs (τ per language, the curves
the plan was made on), rendered from real producers' files (`fits.fit_runs`, `planner.allocation.allocate`).
A grid sweep without mixtures does not show it (the shared fixture report: tests/test_report.py)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from fits import fit_runs, save_fits
from planner.allocation import allocate, write_allocation
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
    return fitset, render_report(out)


def test_transfer_section_shows_each_languages_tau_and_the_curves_the_plan_was_made_on(report):
    fitset, rendered = report
    page = rendered.report.read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)"', page)
    assert sections.index("allocation") < sections.index("transfer") < sections.index("runs")
    assert "sweep" not in sections  # the adaptive sweep's choices are research code, not the report's
    table = page[page.index('<table id="transfer">'):]
    table = table[:table.index("</table>")]
    for lang in TRUTH:
        assert f"{fitset.transfer[lang].tau:.3f}" in table
    assert "5 mixture proxy runs" in page  # two uniform and three leave-one-out runs
    # every language has an in-mixture curve: the plan is made on them, with no transfer-aware plan beside it
    assert "The plan was planned and predicted on: in-mixture curves." in page
    assert "transfer-aware plan: pairs" not in table and "plan: pairs" in table


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
