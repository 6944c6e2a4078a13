"""`planner fit` end to end: a runs.csv written by hand in, fits.json and a table out; user errors exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fits import load_fits
from planner.cli import main


def _runs_csv(tmp_path, rows=None, name="runs.csv"):
    if rows is None:
        rng = np.random.default_rng(0)
        rows = []
        for lang, (C, A, alpha) in {"de": (55, 900, 0.45), "NA": (48, 1500, 0.6)}.items():  # "NA" is a code, not a NaN
            for x in (250, 500, 1000, 2000, 4000):
                for seed in (0, 1):
                    rows.append({"language": lang, "n_pairs": x, "n_tokens": 23 * x, "seed": seed, "status": "complete",
                                 "chrf": C - A * x**-alpha + rng.normal(0, 0.3), "train_seconds": 1.5, "notes": "kept"})
        rows.append({"language": "de", "n_pairs": 8000, "chrf": 80, "status": "failed"})
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_fit_writes_fits_json_and_prints_a_table(tmp_path, capsys):
    out = tmp_path / "fits.json"
    rc = main(["fit", str(_runs_csv(tmp_path)), "--metric", "chrf", "--bootstrap", "50", "--seed", "1", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "chrf (higher is better) against pairs" in printed
    assert printed.count("\nde ") == 1 and printed.count("\nNA ") == 1 and "R²" in printed
    assert "ignored 1 run whose status is not ok/complete (failed: 1)" in printed
    fitset = load_fits(out)
    assert set(fitset.languages) == {"de", "NA"} and fitset.bootstrap == 50 and fitset.seed == 1
    assert fitset.languages["de"].tokens_per_pair == pytest.approx(23.0)
    assert json.loads(out.read_text())["planner_version"]


def test_fit_options_reach_the_fit(tmp_path, capsys):
    out = tmp_path / "fits.json"
    rc = main(["fit", str(_runs_csv(tmp_path)), "--metric", "chrf", "--pooling", "none", "--law", "power", "--x", "tokens", "--ceiling", "100",
               "--direction", "higher", "--bootstrap", "0", "--level", "0.8", "--out", str(out)])
    assert rc == 0
    fitset = load_fits(out)
    assert fitset.x == "tokens" and fitset.law_requested == "power" and fitset.ceiling == 100 and fitset.level == 0.8
    assert all(lf.curve.params["offset"] == 100 for lf in fitset.languages.values())


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--metric", "bleu"], "Unknown metric 'bleu'"),
        (["--metric", "chrf", "--x", "tokens"], "needs an 'n_tokens' column"),
        (["--metric", "chrf", "--bootstrap", "-3"], "--bootstrap must be"),
    ],
)
def test_user_errors_exit_2_with_the_column_list(tmp_path, capsys, args, expected):
    path = _runs_csv(tmp_path, rows=[{"language": "de", "n_pairs": 500, "chrf": 30.0}])
    rc = main(["fit", str(path), *args, "--out", str(tmp_path / "fits.json")])
    err = capsys.readouterr().err
    assert rc == 2 and expected in " ".join(err.split()) and "Traceback" not in err
    if "column" in expected or "metric" in expected:
        assert "its columns are: language, n_pairs, chrf" in " ".join(err.split())
    assert not (tmp_path / "fits.json").exists()


def test_missing_and_unreadable_files_exit_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "none.csv"), "--metric", "chrf", "--out", str(tmp_path / "f.json")]) == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert main(["fit", str(empty), "--metric", "chrf", "--out", str(tmp_path / "f.json")]) == 2
    no_language = _runs_csv(tmp_path, rows=[{"lang": "de", "n_pairs": 500, "chrf": 30.0}], name="bad.csv")
    assert main(["fit", str(no_language), "--metric", "chrf", "--out", str(tmp_path / "f.json")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "does not exist" in err and "not a readable CSV" in err and "its columns are: lang, n_pairs, chrf" in err
