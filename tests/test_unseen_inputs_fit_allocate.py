"""Inputs `fit`, `allocate` and `report` had not been tried on (an adversarial audit): each user mistake
exits 2 with one `error:` paragraph naming the file, row or flag, no traceback, and nothing written; each
valid but unusual input works, with no NaN or inf in what is written."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pytest

from planner.cli import main

from test_bad_inputs import GOOD_RUNS, _allocate_refused, _check_refused, _run  # the same runs and the same checks


@pytest.fixture(scope="module")
def fits_json(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fits")
    (root / "runs.csv").write_text(GOOD_RUNS)
    path = root / "fits.json"
    assert main(["fit", str(root / "runs.csv"), "--metric", "chrf", "--bootstrap", "20", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory, fits_json) -> Path:
    """runs.csv, fits.json, allocation.csv and its summary: what `planner report` reads."""
    root = tmp_path_factory.mktemp("report")
    (root / "runs.csv").write_text(GOOD_RUNS)
    (root / "fits.json").write_bytes(fits_json.read_bytes())
    assert main(["allocate", str(root / "fits.json"), "--budget", "50000", "--out", str(root / "allocation.csv")]) == 0
    return root


# ------------------------------------------------------------------------------------------------ fit

BAD_RUNS = {
    "a repeated metric column": ("language,n_pairs,n_tokens,chrf,chrf\n" + "".join(
        f"{line},1\n" for line in GOOD_RUNS.splitlines()[1:]), "chrf"),
    "a repeated language column": ("language,language,n_pairs,n_tokens,chrf\n" + "".join(
        f"x,{line}\n" for line in GOOD_RUNS.splitlines()[1:]), "language"),
    "rows longer than the header": ("language,n_pairs,n_tokens,chrf\n" + "".join(
        f"{line},\n" for line in GOOD_RUNS.splitlines()[1:]), "header"),
    "a metric too large to fit": (GOOD_RUNS.replace("de,250,5000,28.377", "de,250,5000,1e200"), "1e+200"),
}


@pytest.mark.parametrize("name", sorted(BAD_RUNS))
def test_fit_refuses_malformed_runs_tables(tmp_path, capsys, name):
    text, named = BAD_RUNS[name]
    runs = tmp_path / "runs.csv"
    runs.write_text(text)
    out = tmp_path / "fits.json"
    out.write_text("old fits")
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "10", "--out", out], capsys)
    _check_refused(rc, err, out, b"old fits")
    assert (str(runs) in err or "runs table" in err) and named in err, err


def test_fit_of_languages_with_different_numbers_of_runs_prints_no_numpy_warning(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS + "de,4000,80000,52.1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "10", "--out", tmp_path / "fits.json"], capsys)
    assert rc == 0 and err == "", err


def test_fit_refuses_a_negative_seed(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    out = tmp_path / "fits.json"
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "10", "--seed", "-1", "--out", out], capsys)
    _check_refused(rc, err, out, None)
    assert "seed" in err


@pytest.mark.parametrize("where", ["a directory", "inside a file"])
def test_fit_refuses_an_unwritable_output_path_before_fitting(tmp_path, capsys, where):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    (tmp_path / "taken").mkdir()
    (tmp_path / "afile").write_text("x")
    out = tmp_path / ("taken" if where == "a directory" else "afile/fits.json")
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "10", "--out", out], capsys)
    assert rc == 2 and err.startswith("error:") and "Traceback" not in err, err
    assert "taken" in err or "afile" in err
    assert (tmp_path / "afile").read_text() == "x" and not any((tmp_path / "taken").iterdir())
    assert not list(tmp_path.glob(".*.tmp"))


def test_fit_warns_when_a_pooled_language_gets_worse_or_stays_flat(tmp_path, capsys):
    """A language whose scores fall with more data, or never change, is valid data; the default (pooled) fit
    must say so, as the per-language fit does, instead of showing its curve without comment."""
    sizes = (250, 500, 1000, 2000)
    falling = "".join(f"sw,{n},{20 * n},{30 + 300 * n ** -0.5:.3f}\n" for n in sizes)
    flat = "".join(f"zu,{n},{20 * n},33.0\n" for n in sizes)
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS + falling + flat)
    out = tmp_path / "fits.json"
    assert main(["fit", str(runs), "--metric", "chrf", "--bootstrap", "10", "--out", str(out)]) == 0
    langs = json.loads(out.read_text())["languages"]
    assert langs["sw"]["worsens_with_data"] is True and not langs["de"]["worsens_with_data"]
    assert any("gets worse with more data" in w for w in langs["sw"]["warnings"])
    assert any(w.startswith("flat: no improvement") for w in langs["zu"]["warnings"])
    assert not any("worse" in w or "flat" in w for w in langs["de"]["warnings"] + langs["hi"]["warnings"])
    assert "gets worse with more data" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- allocate

BAD_FITS = {
    "a parameter that overflows to infinity": lambda d: d["languages"]["de"]["params"].update(alpha="INF"),
    "a count that overflows to infinity": lambda d: d["languages"]["de"].update(n_points="INF"),
    "a draw that overflows to infinity": lambda d: d["languages"]["hi"]["bootstrap_params"]["offset"].__setitem__(0, "INF"),
    "an x that is neither pairs nor tokens": lambda d: d.update(x="bananas"),
    "bootstrap draws that are empty lists": lambda d: d["languages"]["de"].update(
        bootstrap_params={k: [] for k in d["languages"]["de"]["bootstrap_params"]}),
    "an interval level outside (0, 1)": lambda d: d.update(level=5),
    "a language with an empty name": lambda d: d["languages"].update({" ": d["languages"].pop("de")}),
    "another file format": lambda d: d.update(format="coit-planner/fits@9"),
}


@pytest.mark.parametrize("name", sorted(BAD_FITS))
def test_allocate_refuses_fits_files_with_impossible_values(tmp_path, capsys, fits_json, name):
    data = json.loads(fits_json.read_text())
    BAD_FITS[name](data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data).replace('"INF"', "1e400"))  # valid JSON whose number overflows
    out = tmp_path / "allocation.csv"
    out.write_text("old plan")
    rc, err = _run(["allocate", broken, "--budget", "50000", "--risk", "mean", "--out", out], capsys)
    _check_refused(rc, err, out, b"old plan")
    assert "broken.json" in err


BAD_ALLOCATE_ARGS = {
    "a budget that buys less than one pair": (["--budget", "0.5", "--unit", "pairs"], "one pair"),
    "a budget that underflows the solver": (["--budget", "1e-300"], "one pair"),
    "a pair priced beyond the budget": (["--budget", "50000", "--limits", "LIMITS:language,tokens_per_pair\nde,1e300\nhi,1e300\n"], "one pair"),
    "a budget beyond what any plan can use": (["--budget", "1e17", "--unit", "pairs"], "max_pairs"),
    "a negative seed": (["--budget", "50000", "--seed", "-1"], "--seed"),
    "a seed beyond 2**32": (["--budget", "50000", "--seed", str(2**40), "--solver", "optuna", "--trials", "3"], "--seed"),
    "a limits row longer than its header": (["--budget", "50000", "--limits", "LIMITS:language,min_pairs\nde,1,2\n"], "limits.csv"),
}


@pytest.mark.parametrize("name", sorted(BAD_ALLOCATE_ARGS))
def test_allocate_refuses_unusable_budgets_seeds_and_limits(tmp_path, capsys, fits_json, name):
    args, named = BAD_ALLOCATE_ARGS[name]
    err = _allocate_refused(tmp_path, capsys, fits_json, args)
    assert named in err, err


def test_allocate_leaves_both_outputs_alone_when_the_summary_cannot_be_written(tmp_path, capsys, fits_json):
    out = tmp_path / "allocation.csv"
    out.write_text("old plan")
    (tmp_path / "allocation_summary.json").mkdir()  # the summary's path is taken by a directory
    rc, err = _run(["allocate", fits_json, "--budget", "50000", "--out", out], capsys)
    _check_refused(rc, err, out, b"old plan")
    assert "allocation_summary.json" in err


@pytest.mark.parametrize("where", ["a directory", "inside a file"])
def test_allocate_refuses_an_unwritable_output_path(tmp_path, capsys, fits_json, where):
    (tmp_path / "taken").mkdir()
    (tmp_path / "afile").write_text("x")
    out = tmp_path / ("taken" if where == "a directory" else "afile/allocation.csv")
    rc, err = _run(["allocate", fits_json, "--budget", "50000", "--out", out], capsys)
    assert rc == 2 and err.startswith("error:") and "Traceback" not in err, err
    assert (tmp_path / "afile").read_text() == "x" and not any((tmp_path / "taken").iterdir())


def test_allocate_gives_nothing_to_a_language_priced_far_beyond_the_budget(tmp_path, capsys, fits_json):
    """de's pair costs more than the whole budget, hi's does not: the sum objective gives hi the budget and de
    none; maxmin, which could never raise de, is refused rather than leaving the budget unspent."""
    limits = tmp_path / "limits.csv"
    limits.write_text("language,tokens_per_pair\nde,1e15\n")
    out = tmp_path / "allocation.csv"
    rc, err = _run(["allocate", fits_json, "--budget", "50000", "--limits", limits, "--objective", "maxmin",
                    "--out", out], capsys)
    _check_refused(rc, err, out, None)
    assert "maxmin" in err and "de" in err
    rc, err = _run(["allocate", fits_json, "--budget", "50000", "--limits", limits, "--out", out], capsys)
    assert rc == 0, err
    rows = {line.split(",")[0]: line.split(",")[1] for line in out.read_text().splitlines()[1:]}
    assert rows == {"de": "0", "hi": "2500"}
    assert _no_nan_or_inf(out.read_text() + (tmp_path / "allocation_summary.json").read_text())


def test_allocate_refuses_a_directory_it_may_not_write_in(tmp_path, capsys, fits_json, monkeypatch):
    """A read-only directory (simulated: the tests may run as root, whom permissions do not stop)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw))
    rc, err = _run(["allocate", fits_json, "--budget", "50000", "--out", locked / "allocation.csv"], capsys)
    assert rc == 2 and err.startswith("error:") and "locked" in err, err
    assert not any(locked.iterdir())


def test_allocate_one_language_with_a_huge_budget_is_capped_or_refused_never_crashes(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text("".join(GOOD_RUNS.splitlines(keepends=True)[:5]))  # header + de only
    fits = tmp_path / "fits.json"
    assert main(["fit", str(runs), "--metric", "chrf", "--bootstrap", "10", "--out", str(fits)]) == 0
    out = tmp_path / "allocation.csv"
    rc, err = _run(["allocate", fits, "--budget", "1e15", "--unit", "pairs", "--out", out], capsys)
    assert rc == 2 and err.startswith("error:") and "max_pairs" in err, err
    limits = tmp_path / "limits.csv"
    limits.write_text("language,max_pairs\nde,5000\n")
    rc, err = _run(["allocate", fits, "--budget", "1e15", "--unit", "pairs", "--limits", limits, "--out", out], capsys)
    assert rc == 0, err
    assert _no_nan_or_inf(out.read_text() + (tmp_path / "allocation_summary.json").read_text())


# --------------------------------------------------------------------------------------------- report


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("runs.csv", "fits.json", "allocation.csv", "allocation_summary.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def _set_cell(csv_text: str, row: int, column: str, value: str) -> str:
    """The CSV text with one cell replaced (row 1 is the first data row; cells hold no commas)."""
    lines = csv_text.splitlines()
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


def _no_nan_or_inf(text: str) -> bool:
    return not re.search(r"\b(nan|inf|infinity)\b", text.lower())


def _refused_without_writing(rc: int, err: str, root: Path, before: dict) -> None:
    assert rc == 2 and err.startswith("error:") and "Traceback" not in err, err
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # no report, no figures, no temporary files


BAD_REPORT_DIRS = {
    "a summary whose baselines are not an object": (
        "allocation_summary.json", lambda t: json.dumps({**json.loads(t), "baselines": 5}), "baselines"),
    "a summary whose baseline languages are a list": (
        "allocation_summary.json",
        lambda t: json.dumps({**json.loads(t), "baselines": {"uniform": {"objective_value": 1, "languages": [1]}}}),
        "uniform"),
    "an allocation with an infinite share": ("allocation.csv", lambda t: _set_cell(t, 1, "share", "inf"), "share"),
    "an allocation with an infinite prediction": (
        "allocation.csv", lambda t: _set_cell(t, 2, "predicted", "-inf"), "predicted"),
}


@pytest.mark.parametrize("name", sorted(BAD_REPORT_DIRS))
def test_report_refuses_broken_inputs_before_writing(tmp_path, capsys, report_dir, name):
    file, corrupt, named = BAD_REPORT_DIRS[name]
    root = _copy(report_dir, tmp_path / "out")
    (root / file).write_text(corrupt((root / file).read_text()))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    rc, err = _run(["report", root], capsys)
    _refused_without_writing(rc, err, root, before)
    assert file in err and named in err, err


@pytest.mark.parametrize("taken", ["report.html", "report.md", "report_figures"])
def test_report_refuses_an_output_path_taken_before_rendering(tmp_path, capsys, report_dir, taken):
    root = _copy(report_dir, tmp_path / "out")
    if taken == "report_figures":
        (root / taken).write_text("not a directory")
    else:
        (root / taken).mkdir()
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    rc, err = _run(["report", root], capsys)
    _refused_without_writing(rc, err, root, before)
    assert taken in err


def test_report_keeps_a_language_called_NA_and_skips_rows_without_language(tmp_path, capsys, report_dir):
    """"NA" is a language code (Namibia's), not a missing value; a row with no language is ignored as the
    fit ignores it."""
    root = _copy(report_dir, tmp_path / "out")
    runs = GOOD_RUNS.replace("\nhi,", "\nNA,") + ",4000,80000,50\n"
    (root / "runs.csv").write_text(runs)
    assert main(["fit", str(root / "runs.csv"), "--metric", "chrf", "--bootstrap", "10", "--out", str(root / "fits.json")]) == 0
    assert main(["allocate", str(root / "fits.json"), "--budget", "50000", "--out", str(root / "allocation.csv")]) == 0
    capsys.readouterr()
    rc, err = _run(["report", root, "--format", "md"], capsys)
    assert rc == 0, err
    md = (root / "report.md").read_text()
    assert "| NA" in md and _no_nan_or_inf(md)
