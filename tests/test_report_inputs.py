"""`planner report` on partial or broken output directories: what is shown, what is said, what is refused."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from planner.cli import main
from core.errors import UserError
from reports import render_report
from reports.style import fmt_difference, fmt_interval, fmt_num, fmt_pct, fmt_signed, language_colors


def _runs(path, languages=("de", "fr"), sizes=(100, 200, 400, 800), seeds=(0, 1)):
    rng = np.random.default_rng(0)
    rows = [
        {"language": lang, "n_pairs": n, "n_tokens": 20 * n, "seed": s,
         "chrf": 60 - 80 * n ** -0.4 + rng.normal(0, 0.3), "status": "complete", "train_seconds": 3.0}
        for lang in languages for n in sizes for s in seeds
    ]
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / "runs.csv", index=False)
    return path


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', html)


def test_runs_only_renders_points_ledger_and_names_absent_inputs(tmp_path):
    out = _runs(tmp_path / "out")
    result = render_report(out)
    html = result.report.read_text(encoding="utf-8")
    assert _section_ids(html) == ["summary", "curves", "comparison", "runs", "environment"]
    for absent in ("fits.json", "allocation.csv", "final/metrics.csv", "alignment/alignment.csv"):
        assert absent in result.missing and absent in html
    # The ledger counts every run per language.
    ledger = html[html.index('id="runs"'):]
    assert re.search(r"<td>de</td><td class=\"num\">8</td><td class=\"num\">8</td><td class=\"num\">0</td>", ledger)
    assert result.markdown.read_text(encoding="utf-8").count("![") == len(result.figures) == 2


def test_strings_from_files_are_escaped(tmp_path):
    # '$' would start matplotlib's math mode (and fail to parse): drawn literally instead.
    out = _runs(tmp_path / "out", languages=("<script>alert(1)</script>", "de$_{x"))
    result = render_report(out)
    html = result.report.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = result.markdown.read_text(encoding="utf-8")
    assert "<script>" not in md


@pytest.mark.parametrize(
    "content, expected",
    [
        ("language,chrf\nde,50\n", "lacks the column(s) n_pairs"),
        ("language,n_pairs,chrf\nde,100,50\nde,lots,51\n", "column 'n_pairs', row 3"),
    ],
)
def test_broken_runs_csv_is_a_user_error_naming_the_problem(tmp_path, content, expected):
    (tmp_path / "runs.csv").write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(expected)):
        render_report(tmp_path)


def test_cli_errors_are_one_paragraph_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # the CLI wraps the paragraph
    assert err.startswith("error:") and "does not exist" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "holds none of the files" in " ".join(capsys.readouterr().err.split())


def test_cli_writes_markdown_only_when_asked(tmp_path, capsys):
    out = _runs(tmp_path / "out")
    assert main(["report", str(out), "--format", "md"]) == 0
    assert (out / "report.md").is_file() and not (out / "report.html").exists()
    assert (out / "report_figures" / "scaling_curves.svg").is_file()
    assert "report.md" in capsys.readouterr().out


def test_number_formatting():
    assert fmt_num(1234567) == "1,234,567"
    assert fmt_num(0.012345) == "0.0123"
    assert fmt_num(45.678) == "45.7"
    assert fmt_num(float("nan")) == "" and fmt_num(None) == ""
    assert fmt_num(3.2e-7) == "3.20e-07"
    assert fmt_interval(50.0, 48.26, 51.74) == "50 [48.3, 51.7]"
    assert fmt_interval(50.5, None, 1) == "50.5"
    assert fmt_pct(0.256) == "25.6%"
    assert fmt_signed(-2.5) == "−2.50" and fmt_signed(9.19) == "+9.19"
    # A difference and its interval share their decimals, whatever their size.
    assert fmt_difference(1.2, 0.4, 2.0) == "+1.20 [+0.40, +2.00]"
    assert fmt_difference(-0.058, -0.099, -0.0169) == "−0.0580 [−0.0990, −0.0169]"
    assert fmt_difference(12.5, None, None) == "+12.5" and fmt_difference(None) == ""


def test_language_colours_are_stable_and_distinct():
    a = language_colors(["zh", "ar", "de"])
    b = language_colors(["de", "zh", "ar", "ar"])
    assert a == b and len(set(a.values())) == 3
    many = language_colors([f"l{i:03d}" for i in range(100)])
    assert len(set(many.values())) == 100


def test_rendering_is_deterministic(tmp_path):
    out = _runs(tmp_path / "out")
    first = render_report(out)
    png, svg = [f.png.read_bytes() for f in first.figures], [f.svg.read_bytes() for f in first.figures]
    html = first.report.read_bytes()
    second = render_report(out)
    assert [f.png.read_bytes() for f in second.figures] == png
    assert [f.svg.read_bytes() for f in second.figures] == svg
    assert second.report.read_bytes() == html


def test_loss_metric_with_partial_inputs(tmp_path):
    """A lower-is-better metric; an allocation without its summary; a final run without objectives; an
    alignment table without retrieval columns. Every section the inputs support is drawn."""
    from fits import fit_runs, save_fits
    from planner.allocation import allocate, write_allocation

    rng = np.random.default_rng(5)
    rows = [{"language": lang, "n_pairs": n, "seed": s, "loss": 1.5 + a * n ** -0.5 + rng.normal(0, 0.01)}
            for lang, a in (("de", 20.0), ("fr", 35.0), ("sw", 60.0)) for n in (100, 200, 400, 800) for s in (0, 1)]
    runs = pd.DataFrame(rows)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    fitset = fit_runs(runs, "loss", law="power", bootstrap=50, seed=0)
    save_fits(fitset, tmp_path / "fits.json")
    plan = allocate(fitset, 3000, "pairs")
    write_allocation(plan, tmp_path / "allocation.csv")
    (tmp_path / "allocation_summary.json").unlink()
    (tmp_path / "final").mkdir()
    pd.DataFrame([{"mixture": "plan", "language": p.language, "pairs": p.pairs, "predicted": p.predicted,
                   "achieved": p.predicted + 0.01} for p in plan.languages]).to_csv(tmp_path / "final/metrics.csv", index=False)
    (tmp_path / "alignment").mkdir()
    pd.DataFrame([{"stage": "after", "language": lang, "layer": layer, "cos_true": 0.5 + 0.05 * layer, "cos_random": 0.2}
                  for lang in ("de", "fr") for layer in range(4)]).to_csv(tmp_path / "alignment/alignment.csv", index=False)

    result = render_report(tmp_path)
    html = result.report.read_text(encoding="utf-8")
    assert _section_ids(html) == ["summary", "curves", "pooling", "comparison", "allocation", "marginal", "final",
                                  "alignment", "runs", "environment"]
    assert "allocation_summary.json" in result.missing and "final/objectives.csv" in result.missing
    assert "chosen to minimise" in html and "E = " in html  # a loss: minimised, with a floor E
    fits_table = html[html.index('<table id="fits">'):]
    assert fits_table.index("E = ") < fits_table.index("</table>")
    assert '<table id="final-metrics">' in html and '<table id="final-objectives">' not in html
    assert "cos true − random (after)" in html and "retrieval" not in html[html.index('<table id="alignment">'):]
