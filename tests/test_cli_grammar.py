"""One CLI grammar: every verb states its exit codes, takes --config/--output-dir, reads its input from the
output directory and writes its output beside its input by default, and a reader that leaves the pipe
early never costs a verb its files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


import numpy as np
import pandas as pd
import pytest

from fits import load_fits
from planner.cli import EXIT_CODES, VERBS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _verb_parsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    return parser, {verb: sub.choices[verb] for verb in VERBS}


def _runs(path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = [{"language": lang, "n_pairs": x, "seed": s, "bpb": E + A * x**-0.4 + rng.normal(0, 0.01)}
            for lang, (E, A) in {"el": (1.0, 4.0), "hi": (0.8, 5.0)}.items() for x in (20, 60, 180, 540) for s in (0, 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_every_help_ends_with_the_exit_codes():
    parser, verbs = _verb_parsers()
    assert EXIT_CODES.split()[-1] in parser.format_help().split()[-1]
    for verb, verb_parser in verbs.items():
        text = " ".join(verb_parser.format_help().split())
        assert text.endswith(" ".join(EXIT_CODES.split())), verb


def test_every_verb_takes_config_and_output_dir():
    _, verbs = _verb_parsers()
    missing = [verb for verb, p in verbs.items()
               if not {"--config", "--output-dir"} <= {s for a in p._actions for s in a.option_strings}]
    assert missing == []


def test_fit_reads_the_output_dir_and_defaults_to_the_configs_metric(tmp_path, capsys):
    _runs(tmp_path / "exp" / "runs.csv")
    assert main(["fit", "--output-dir", str(tmp_path / "exp"), "--bootstrap", "20"]) == 0
    fitset = load_fits(tmp_path / "exp" / "fits.json")  # the demo preset's metric, beside its input
    assert fitset.metric == "bpb" and set(fitset.languages) == {"el", "hi"}
    runs = _runs(tmp_path / "elsewhere" / "mine.csv")
    assert main(["fit", str(runs), "--metric", "bpb", "--bootstrap", "20"]) == 0
    assert (tmp_path / "elsewhere" / "fits.json").is_file()
    assert "wrote" in capsys.readouterr().out


def test_a_reader_that_leaves_early_does_not_cost_the_files(tmp_path):
    """`planner allocate … | head -1`: the table is printed before the files are written; the reader closes
    the pipe after one line, and the verb must still write both files and exit 0."""
    _runs(tmp_path / "runs.csv")
    assert main(["fit", str(tmp_path / "runs.csv"), "--bootstrap", "20"]) == 0
    out = tmp_path / "plan.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner.cli", "allocate", str(tmp_path / "fits.json"), "--budget", "400",
         "--unit", "pairs", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, stderr
    assert "BrokenPipe" not in stderr and "Traceback" not in stderr
    assert out.is_file() and (tmp_path / "plan_summary.json").is_file()


def test_report_reads_inputs_named_elsewhere(tmp_path, capsys):
    """Comparing two objectives no longer needs a folder each: the report takes its inputs by name."""
    _runs(tmp_path / "runs.csv")
    assert main(["fit", str(tmp_path / "runs.csv"), "--bootstrap", "20"]) == 0
    for objective in ("sum", "maxmin"):
        assert main(["allocate", "--output-dir", str(tmp_path), "--budget", "400", "--unit", "pairs",
                     "--objective", objective, "--out", str(tmp_path / f"{objective}.csv")]) == 0
    report_dir = tmp_path / "maxmin_report"
    assert main(["report", str(report_dir), "--runs", str(tmp_path / "runs.csv"), "--fits", str(tmp_path / "fits.json"),
                 "--allocation", str(tmp_path / "maxmin.csv"), "--format", "md"]) == 0
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "maxmin" in text.lower() and not (tmp_path / "report.md").exists()


def test_the_libraries_raise_value_errors_the_cli_turns_into_exit_2(tmp_path, capsys):
    """A bad input to the math is an ordinary ValueError for a caller using the packages as a library; only
    the CLI gives it its exit code and one paragraph."""
    from fits import fit_runs
    from planner.allocation import allocate

    runs = pd.read_csv(_runs(tmp_path / "runs.csv"))
    with pytest.raises(ValueError, match="no such metric column"):
        fit_runs(runs, "chrf")
    fitset = fit_runs(runs, "bpb", bootstrap=20)
    with pytest.raises(ValueError, match="budget"):
        allocate(fitset, budget=-5, unit="pairs")
    assert main(["fit", str(tmp_path / "runs.csv"), "--metric", "chrf"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
