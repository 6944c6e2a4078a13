"""A fourth adversarial audit: where outputs land (an input of the same command, a symbolic link, a FIFO or
device, an existing file's permissions) and values out of any sensible range (pair counts, draws, law
parameters, booleans for numbers, scores above the metric's maximum). Each mistake exits 2 with one
`error:` paragraph and writes nothing; each legitimate case writes where and how the user expects."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from core.files import atomic_write_text, check_output_file
from core.errors import UserError
from planner.cli import main

from test_bad_inputs import GOOD_RUNS, _check_refused, _run


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fitted")
    (root / "runs.csv").write_text(GOOD_RUNS)
    assert main(["fit", str(root / "runs.csv"), "--metric", "chrf", "--bootstrap", "20", "--out", str(root / "fits.json")]) == 0
    assert main(["allocate", str(root / "fits.json"), "--budget", "50000", "--out", str(root / "allocation.csv")]) == 0
    return root


def _copy_dir(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("runs.csv", "fits.json", "allocation.csv", "allocation_summary.json"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


# ------------------------------------------------------------------------------- an output that is an input


def test_fit_refuses_to_write_over_its_own_runs_file(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "20", "--out", runs], capsys)
    _check_refused(rc, err, runs, GOOD_RUNS.encode())
    assert "also an input" in err


def test_allocate_refuses_to_write_over_its_fits_or_limits(tmp_path, capsys, fitted):
    fits = tmp_path / "fits.json"
    fits.write_bytes((fitted / "fits.json").read_bytes())
    before = fits.read_bytes()
    rc, err = _run(["allocate", fits, "--budget", "50000", "--out", fits], capsys)
    _check_refused(rc, err, fits, before)
    limits = tmp_path / "limits.csv"
    limits.write_text("language,max_pairs\nde,5000\nhi,5000\n")
    rc, err = _run(["allocate", fits, "--budget", "50000", "--limits", limits, "--out", limits], capsys)
    _check_refused(rc, err, limits, b"language,max_pairs\nde,5000\nhi,5000\n")
    assert "also an input" in err


@pytest.mark.parametrize("name", ["runs.csv", "fits.json", "allocation.csv"])
def test_report_refuses_to_write_over_a_file_it_reads(tmp_path, capsys, fitted, name):
    root = _copy_dir(fitted, tmp_path / "out")
    before = (root / name).read_bytes()
    rc, err = _run(["report", root, "--out", root / name], capsys)
    _check_refused(rc, err, root / name, before)
    assert not (root / Path(name).with_suffix(".md")).exists()


def test_a_markdown_report_must_be_named_md(tmp_path, capsys, fitted):
    root = _copy_dir(fitted, tmp_path / "out")
    rc, err = _run(["report", root, "--format", "md", "--out", tmp_path / "summary.txt"], capsys)
    assert rc == 2 and "does not end in .md" in err and not list(tmp_path.glob("summary*"))


# ----------------------------------------------------------------------------- links, devices, permissions


def test_a_symbolic_link_is_written_through(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target.name)
    assert main(["fit", str(runs), "--metric", "chrf", "--bootstrap", "20", "--out", str(link)]) == 0
    assert link.is_symlink() and json.loads(target.read_text())["metric"] == "chrf"


def test_a_fifo_or_a_device_is_never_replaced(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    fifo = tmp_path / "fits.json"
    os.mkfifo(fifo)
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "20", "--out", fifo], capsys)
    assert rc == 2 and "FIFO" in err and stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(UserError, match="a device"):  # /dev/null replaced by a file would break the machine
        check_output_file("/dev/null", "The output")
    with pytest.raises(UserError, match="a device"):
        atomic_write_text("/dev/null", "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_rewritten_file_keeps_its_permissions_and_a_new_one_follows_the_umask(tmp_path, monkeypatch):
    kept = tmp_path / "kept.csv"
    kept.write_text("old")
    kept.chmod(0o640)
    atomic_write_text(kept, "new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new"
    monkeypatch.setattr("core.files._UMASK", 0o027)  # the process's umask, as read when core.files loaded
    fresh = atomic_write_text(tmp_path / "fresh.csv", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # not the temporary file's private 0600


# ---------------------------------------------------------------------------------------- out of range


@pytest.mark.parametrize("column, value", [("n_pairs", "1e155"), ("n_tokens", "1e200")])
def test_fit_and_report_refuse_a_pair_or_token_count_beyond_any_training_set(tmp_path, capsys, column, value):
    lines = GOOD_RUNS.splitlines()
    cells = lines[3].split(",")
    cells[lines[0].split(",").index(column)] = value
    lines[3] = ",".join(cells)
    runs = tmp_path / "runs.csv"
    runs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "fits.json"
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "20", "--out", out], capsys)
    _check_refused(rc, err, out, None)
    assert "Row 4" in err and column in err
    rc, err = _run(["report", tmp_path], capsys)
    assert rc == 2 and "Traceback" not in err and column in err and not (tmp_path / "report.html").exists()


def test_fit_refuses_more_draws_than_memory_holds(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    out = tmp_path / "fits.json"
    rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", str(10**11), "--out", out], capsys)
    _check_refused(rc, err, out, None)
    assert "--bootstrap" in err and "100,000" in err


LAW_EDITS = {
    "an exponent of 1e308": (lambda d: d["languages"]["de"]["params"].update(alpha=1e308), "params.alpha"),
    "a negative exponent": (lambda d: d["languages"]["de"]["params"].update(alpha=-0.5), "params.alpha"),
    "a negative scale": (lambda d: d["languages"]["hi"]["params"].update(scale=-3.0), "params.scale"),
    "negative offsets x0 in the draws": (
        lambda d: d["languages"]["de"]["bootstrap_params"].update(
            x0=[-50.0] * len(d["languages"]["de"]["bootstrap_params"]["alpha"])), "bootstrap_params.x0"),
}


@pytest.mark.parametrize("name", sorted(LAW_EDITS))
def test_allocate_refuses_law_parameters_outside_their_domain(tmp_path, capsys, fitted, name):
    data = json.loads((fitted / "fits.json").read_text())
    edit, field = LAW_EDITS[name]
    edit(data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    out = tmp_path / "allocation.csv"
    rc, err = _run(["allocate", broken, "--budget", "50000", "--out", out], capsys)
    _check_refused(rc, err, out, None)
    assert field in err


@pytest.mark.parametrize("yaml_text, named", [
    ("train:\n  batch_size: true\n", "batch_size"),
    ("fit:\n  bootstrap: false\n", "bootstrap"),
    ("experiment: ''\n", "experiment"),
    ("fit:\n  bootstrap: 1000000\n", "fit.bootstrap"),
])
def test_configs_with_booleans_for_numbers_or_an_empty_name_are_refused(tmp_path, capsys, yaml_text, named):
    cfg = tmp_path / "planner.yaml"
    cfg.write_text(yaml_text)
    rc, err = _run(["run", "--config", cfg], capsys)
    assert rc == 2 and named in err and "Traceback" not in err
    assert not (tmp_path / "outputs").exists()


def test_scores_above_the_metric_maximum_are_fitted_with_a_note(tmp_path, capsys):
    runs = tmp_path / "runs.csv"
    text = "language,n_pairs,chrf\n" + "".join(f"{lang},{n},{y}\n" for lang, base in (("de", 110), ("hi", 20))
                                                 for n, y in ((250, base), (500, base + 5), (1000, base + 8)))
    runs.write_text(text)
    out = tmp_path / "fits.json"
    assert main(["fit", str(runs), "--metric", "chrf", "--bootstrap", "20", "--out", str(out)]) == 0
    notes = json.loads(out.read_text())["notes"]
    assert any("3 runs score above chrf's maximum of 100" in n for n in notes), notes


@pytest.mark.parametrize("argv, says", [
    (["fit", "DIR", "--metric", "chrf", "--out", "OUT"], "is a directory, not a file"),
    (["fit", "/dev/null", "--metric", "chrf", "--out", "OUT"], "is not a regular file"),
    (["report", "FILE"], "is a file, not a directory"),
    (["run", "--config", "DIR"], "is a directory, not a file"),
])
def test_a_directory_for_a_file_or_a_file_for_a_directory_is_named_as_such(tmp_path, capsys, argv, says):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file.csv").write_text(GOOD_RUNS)
    subs = {"DIR": tmp_path / "dir", "FILE": tmp_path / "file.csv", "OUT": tmp_path / "fits.json"}
    rc, err = _run([subs.get(a, a) for a in argv], capsys)
    assert rc == 2 and says in err and "does not exist" not in err
