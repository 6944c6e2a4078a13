"""User mistakes in files and flags: every one exits 2 with one paragraph naming the file, row or key, no
traceback, and nothing written (an existing output is left exactly as it was)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planner.cli import main

GOOD_RUNS = "language,n_pairs,n_tokens,chrf\n" + "".join(
    f"{lang},{n},{20 * n},{c - a * n ** -0.5:.3f}\n"
    for lang, c, a in (("de", 60, 500), ("hi", 40, 300)) for n in (250, 500, 1000, 2000)
)

BAD_RUNS = {
    "no language column": "lang,n_pairs,chrf\nde,250,10\n",
    "no metric column": "language,n_pairs,bleu\nde,250,10\n",
    "empty file": "",
    "header only": "language,n_pairs,chrf\n",
    "not a table": "\x00\x01\x02garbage\xff\xfe",
    "every value non-numeric": "language,n_pairs,chrf\nde,many,high\nhi,few,low\n",
    "one size per language": "language,n_pairs,chrf\nde,250,10\nhi,250,12\n",
    "mixture rows without other_pairs": "language,n_pairs,chrf,mixture\nde,250,10,u\nde,500,12,\nde,1000,13,\n",
}


def _run(argv, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, " ".join(err.split())


def _check_refused(rc: int, err: str, out: Path, before: bytes | None) -> None:
    assert rc == 2, err
    assert err.startswith("error:") and "Traceback" not in err
    if before is None:
        assert not out.exists()
    else:
        assert out.read_bytes() == before
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temporary file left behind


@pytest.mark.parametrize("name", sorted(BAD_RUNS))
def test_fit_refuses_bad_runs_tables(tmp_path, capsys, name):
    runs = tmp_path / "runs.csv"
    runs.write_bytes(BAD_RUNS[name].encode("latin-1"))
    out = tmp_path / "fits.json"
    out.write_text("old fits")
    rc, err = _run(["fit", runs, "--metric", "chrf", "--out", out], capsys)
    _check_refused(rc, err, out, b"old fits")
    assert str(runs) in err or "runs" in err.lower()


@pytest.fixture()
def fits_json(tmp_path, capsys) -> Path:
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD_RUNS)
    path = tmp_path / "fits.json"
    assert main(["fit", str(runs), "--metric", "chrf", "--bootstrap", "50", "--out", str(path)]) == 0
    capsys.readouterr()
    return path


BAD_FITS = {
    "truncated": lambda text: text[: len(text) // 2],
    "not an object": lambda text: "[1, 2, 3]",
    "NaN literal": lambda text: text.replace('"r2": ', '"r2": NaN, "x": ', 1),
    "wrong type": lambda text: text.replace('"direction": "higher"', '"direction": 3'),
    "missing params": lambda text: json.dumps({**json.loads(text), "languages": {"de": {"law": "power"}}}),
    "unknown family": lambda text: text.replace('"family": "power"', '"family": "cubic"'),
}


@pytest.mark.parametrize("name", sorted(BAD_FITS))
def test_allocate_refuses_bad_fits_files(tmp_path, capsys, fits_json, name):
    broken = tmp_path / "broken.json"
    broken.write_text(BAD_FITS[name](fits_json.read_text()))
    out = tmp_path / "allocation.csv"
    rc, err = _run(["allocate", broken, "--budget", "50000", "--out", out], capsys)
    _check_refused(rc, err, out, None)
    assert "broken.json" in err


BAD_ALLOCATE_ARGS = {
    "negative budget": ["--budget", "-5"],
    "zero budget": ["--budget", "0"],
    "nan budget": ["--budget", "nan"],
    "limits with an unknown language": ["--budget", "50000", "--limits", "LIMITS:language,min_pairs\nzz,10\n"],
    "limits with text in a number": ["--budget", "50000", "--limits", "LIMITS:language,min_pairs\nde,lots\n"],
    "limits floor above the budget": ["--budget", "100", "--limits", "LIMITS:language,min_pairs\nde,100000\n"],
    "targets without a target column": ["--budget", "50000", "--objective", "target", "--targets", "TARGETS:language,goal\nde,40\n"],
}


@pytest.mark.parametrize("name", sorted(BAD_ALLOCATE_ARGS))
def test_allocate_refuses_bad_flags_and_tables(tmp_path, capsys, fits_json, name):
    _allocate_refused(tmp_path, capsys, fits_json, BAD_ALLOCATE_ARGS[name])


def _allocate_refused(tmp_path, capsys, fits_json, args) -> str:
    """`planner allocate` with `args` (an arg "LIMITS:<csv>" or "TARGETS:<csv>" is that table written to a
    file) over an existing allocation.csv: refused and nothing written; the error paragraph."""
    argv = []
    for arg in args:
        if arg.startswith(("LIMITS:", "TARGETS:")):
            kind, text = arg.split(":", 1)
            path = tmp_path / f"{kind.lower()}.csv"
            path.write_text(text)
            arg = str(path)
        argv.append(arg)
    out = tmp_path / "allocation.csv"
    out.write_text("old plan")
    rc, err = _run(["allocate", fits_json, *argv, "--out", out], capsys)
    _check_refused(rc, err, out, b"old plan")
    return err


BAD_CONFIGS = {
    "invalid YAML": "languages: [de, hi\n",
    "a list, not a mapping": "- de\n- hi\n",
    "unknown key": "languages: [de]\ncolour: blue\n",
    "wrong type": "languages: [de]\nsweep: {sizes: many}\n",
    "python object tag": "languages: !!python/object/apply:os.system ['true']\n",
    "repeated seeds": "languages: [de]\nfinal: {seeds: [1, 1]}\n",
    "unknown baseline": "languages: [de]\nfinal: {baselines: [fair]}\n",
    "shared law with pooling": "languages: [de]\nfit: {law: shared}\n",
    "ceiling with pooling": "languages: [de]\nfit: {ceiling: 100}\n",
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_config_mistakes_exit_2_naming_the_file(tmp_path, capsys, name):
    cfg = tmp_path / "planner.yaml"
    cfg.write_text(BAD_CONFIGS[name])
    rc, err = _run(["data", "stats", "--config", cfg], capsys)
    assert rc == 2 and "Traceback" not in err and str(cfg) in err, err


BAD_ALLOCATIONS = {
    "fractional pairs": "language,pairs,tokens,share,predicted,predicted_low,predicted_high\nde,10.5,210,1,30,29,31\n",
    "negative pairs": "language,pairs,tokens,share,predicted,predicted_low,predicted_high\nde,-3,0,1,30,29,31\n",
    "missing columns": "language,pairs\nde,10\n",
    "text in pairs": "language,pairs,tokens,share,predicted,predicted_low,predicted_high\nde,ten,0,1,30,29,31\n",
}


@pytest.mark.parametrize("name", sorted(BAD_ALLOCATIONS))
def test_launch_refuses_bad_allocation_files(tmp_path, capsys, name):
    alloc = tmp_path / "allocation.csv"
    alloc.write_text(BAD_ALLOCATIONS[name])
    (tmp_path / "allocation_summary.json").write_text(json.dumps({"baselines": {}, "objective_value": 30.0}))
    cfg = tmp_path / "planner.yaml"
    cfg.write_text(f"languages: [de]\noutput_dir: {tmp_path / 'out'}\nmodel: {{name: tiny}}\n")
    rc, err = _run(["launch", "--config", cfg, "--allocation", alloc, "--baselines", "none"], capsys)
    assert rc == 2 and "Traceback" not in err and "allocation.csv" in err, err
    assert not (tmp_path / "out" / "final" / "metrics.csv").exists()


def test_report_of_a_missing_directory_exits_2(tmp_path, capsys):
    rc, err = _run(["report", tmp_path / "nowhere"], capsys)
    assert rc == 2 and "Traceback" not in err and "nowhere" in err


def test_fuzzed_runs_tables_never_crash(tmp_path, capsys):
    """Random cell corruptions of a good table: every outcome is a fit (exit 0) or a user error (exit 2)."""
    rng = np.random.default_rng(0)
    lines = GOOD_RUNS.splitlines()
    junk = ["", "nan", "-1", "1e309", "abc", "0", '"', ",,", "∞", "-0"]
    for trial in range(25):
        rows = [line.split(",") for line in lines]
        for _ in range(int(rng.integers(1, 5))):
            r, c = int(rng.integers(0, len(rows))), int(rng.integers(0, len(rows[0])))
            rows[r][c] = junk[int(rng.integers(0, len(junk)))]
        runs = tmp_path / f"runs{trial}.csv"
        runs.write_text("\n".join(",".join(r) for r in rows) + "\n")
        rc, err = _run(["fit", runs, "--metric", "chrf", "--bootstrap", "0", "--out", tmp_path / f"f{trial}.json"], capsys)
        assert rc in (0, 2) and "Traceback" not in err, (trial, err)
