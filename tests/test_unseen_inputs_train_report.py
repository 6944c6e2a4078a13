"""Inputs `train-one`, `align-report`, `launch` and `report` had not been tried on (an adversarial audit):
each user mistake exits 2 with one `error:` paragraph naming the file, flag or row, no traceback, and is
refused before any training, so nothing is written and an existing output stays byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import Failure
from core.files import atomic_write_text
from planner.cli import main

# The same tiny config, corpus and checks as the config/sweep audit; the same report directory as the
# fit/allocate audit (its module-scoped fixtures are shared by importing them).
from test_unseen_inputs_config_sweep import ALLOCATION, _refused, _summary, _write_config
from test_unseen_inputs_fit_allocate import _copy, _refused_without_writing, fits_json, report_dir  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ------------------------------------------------------------------------------------------ train-one

def test_train_one_refuses_english_as_the_target_language(tmp_path, capsys):
    """The schema refuses `en` in `languages`; as a flag it trained and scored an English→English copy task."""
    cfg = _write_config(tmp_path)
    err = _refused(["train-one", "--config", cfg, "--language", "en", "--pairs", "20", "--no-progress"],
                   capsys, tmp_path)
    assert "--language en" in err and "source language" in err


def test_train_one_save_model_where_a_file_is_named_model(tmp_path, capsys):
    """save_pretrained only logs when its directory is a file: the run finished with exit 0 and no model."""
    cfg = _write_config(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model").write_text("keep")
    argv = ["train-one", "--config", cfg, "--language", "el", "--pairs", "20", "--no-progress", "--out", run,
            "--save-model"]
    assert "model" in _refused(argv, capsys, tmp_path)


def test_train_one_refuses_a_run_directory_whose_metrics_file_is_a_directory(tmp_path, capsys):
    """Was: trained, then exit 1 ("free disk space") with a temporary file left in the run directory."""
    cfg = _write_config(tmp_path)
    (tmp_path / "run" / "metrics.json").mkdir(parents=True)
    argv = ["train-one", "--config", cfg, "--language", "el", "--pairs", "20", "--no-progress",
            "--out", tmp_path / "run"]
    assert "metrics.json" in _refused(argv, capsys, tmp_path)


def test_a_refused_atomic_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "table.csv"
    target.mkdir()
    with pytest.raises(Failure):
        atomic_write_text(target, "a,b\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


# --------------------------------------------------------------------------------------- align-report

@pytest.mark.parametrize("languages, needle", [
    (["el", "el"], "more than once"),  # was: every row twice in alignment.csv
    (["en"], "source language"),  # was: English against itself, retrieval 1.0
], ids=["a language twice", "english"])
def test_align_report_refuses_language_flags_nobody_means(tmp_path, capsys, languages, needle):
    cfg = _write_config(tmp_path)
    flags = [x for code in languages for x in ("--language", code)]
    err = _refused(["align-report", "--config", cfg, "--pairs", "20", "--no-progress", *flags], capsys, tmp_path)
    assert needle in err


def test_align_report_checks_every_language_before_training_the_first(tmp_path, capsys):
    """Was: trained both el models into OUT/align-compare/, then refused zz."""
    cfg = _write_config(tmp_path)
    argv = ["align-report", "--config", cfg, "--pairs", "20", "--no-progress", "--language", "el", "--language", "zz"]
    assert "'zz'" in _refused(argv, capsys, tmp_path)
    assert not (tmp_path / "out").exists()


def test_align_report_checks_every_language_has_the_pairs_before_training(tmp_path, capsys):
    corpus = tmp_path / "two.jsonl"
    corpus.write_text("".join(json.dumps({"en": f"S {i}.", "el": f"Π {i}.", "hi": f"ह {i}." if i < 30 else None},
                                         ensure_ascii=False) + "\n" for i in range(80)), encoding="utf-8")
    cfg = _write_config(tmp_path, **{"languages: [el]": "languages: [el, hi]",
                                     f"source: {tmp_path / 'pairs.jsonl'}": f"source: {corpus}"})
    argv = ["align-report", "--config", cfg, "--pairs", "40", "--no-progress"]
    assert "hi" in _refused(argv, capsys, tmp_path)
    assert not (tmp_path / "out").exists()


def test_align_report_refuses_an_output_file_that_is_a_directory_before_training(tmp_path, capsys):
    """Was: trained and analysed, overwrote alignment.csv, then exit 1 on alignment.json ("free disk
    space"), leaving a table beside no description and a temporary file."""
    cfg = _write_config(tmp_path)
    alignment = tmp_path / "ao" / "alignment"
    (alignment / "alignment.json").mkdir(parents=True)
    (alignment / "alignment.csv").write_text("old table")
    argv = ["align-report", "--config", cfg, "--pairs", "20", "--no-progress", "--out", tmp_path / "ao"]
    assert "alignment.json" in _refused(argv, capsys, tmp_path)


def test_train_one_and_align_report_in_a_directory_with_spaces_and_unicode(tmp_path, capsys):
    cfg = _write_config(tmp_path)
    run = tmp_path / "my runs" / "ünï" / "el 20"
    assert main(["train-one", "--config", str(cfg), "--language", "el", "--pairs", "20", "--no-progress",
                 "--out", str(run), "--save-model"]) == 0
    assert main(["align-report", "--run", str(run), "--test-pairs", "5"]) == 0
    rows = (run / "alignment" / "alignment.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 2 * 2  # header + (before, after) × (embeddings, one layer)
    assert not list(run.rglob(".*.tmp"))


# ---------------------------------------------------------------------------------------------- launch

HEADER = ALLOCATION.splitlines(keepends=True)[0]
BAD_LAUNCHES = {  # flags, allocation.csv, summary, a word the message must contain
    "an allocation with a header and no rows": ([], HEADER, _summary(), "no rows"),
    "an allocation of zero pairs everywhere": ([], HEADER + "el,0,0,1,30,29,31\n", _summary(), "no pairs"),
    "a baseline of zero pairs everywhere": (["--baselines", "uniform"], ALLOCATION,
                                            _summary({"languages": {"el": {"pairs": 0, "predicted": 0}}}), "uniform"),
    "an interval whose low end is above its high end": ([], HEADER + "el,30,600,1,30,40,20\n", _summary(),
                                                         "predicted_low"),
    "a negative share": ([], HEADER + "el,30,600,-1,30,29,31\n", _summary(), "share"),
    "negative tokens": ([], HEADER + "el,30,-600,1,30,29,31\n", _summary(), "tokens"),
    "a metric no final run measures": ([], ALLOCATION, _summary(metric="rouge"), "rouge"),
    "a baseline named twice": (["--baselines", "uniform,uniform"], ALLOCATION, _summary(), "more than once"),
    "--dry-run with the local launcher": (["--dry-run"], ALLOCATION, _summary(), "--dry-run"),
}


@pytest.mark.parametrize("name", sorted(BAD_LAUNCHES))
def test_launch_refuses_before_training(tmp_path, capsys, name):
    """Was: a traceback from the tokenizer (no rows, zero pairs) or after every run trained (an unmeasured
    metric), or a silent run: nonsense intervals, a baseline trained and compared twice, a real training
    run for --dry-run."""
    flags, allocation, summary, needle = BAD_LAUNCHES[name]
    (tmp_path / "allocation.csv").write_text(allocation)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(summary))
    (tmp_path / "out" / "final").mkdir(parents=True)
    (tmp_path / "out" / "final" / "metrics.csv").write_text("earlier results")
    cfg = _write_config(tmp_path)
    baselines = [] if "--baselines" in flags else ["--baselines", "none"]
    argv = ["launch", "--config", cfg, "--allocation", tmp_path / "allocation.csv", *baselines, *flags]
    assert needle in _refused(argv, capsys, tmp_path)


def test_a_config_naming_a_baseline_twice_is_refused(tmp_path, capsys):
    cfg = _write_config(tmp_path, **{"baselines: [uniform]": "baselines: [uniform, uniform]"})
    assert "final.baselines" in _refused(["data", "stats", "--config", cfg], capsys, tmp_path)


@pytest.mark.parametrize("flag", ["--allocation", "--fits"])
def test_launch_names_a_directory_given_for_a_file(tmp_path, capsys, flag):
    """Was: "does not exist", of a directory that does."""
    (tmp_path / "allocation.csv").write_text(ALLOCATION)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(_summary()))
    (tmp_path / "adir").mkdir()
    cfg = _write_config(tmp_path)
    files = {"--allocation": tmp_path / "allocation.csv", "--fits": None, flag: tmp_path / "adir"}
    argv = ["launch", "--config", cfg, "--baselines", "none",
            *[x for f, path in files.items() if path for x in (f, path)]]
    assert "adir is a directory" in _refused(argv, capsys, tmp_path)


def test_launch_refuses_fits_of_another_metric(tmp_path, capsys, fits_json):  # noqa: F811
    """Was: the final runs' intervals drawn from a chrF curve and checked against achieved BLEU."""
    (tmp_path / "allocation.csv").write_text(ALLOCATION)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(_summary(metric="bleu")))
    (tmp_path / "fits.json").write_bytes(fits_json.read_bytes())  # a chrf fit
    cfg = _write_config(tmp_path)
    argv = ["launch", "--config", cfg, "--allocation", tmp_path / "allocation.csv", "--baselines", "none"]
    err = _refused(argv, capsys, tmp_path)
    assert "fits.json" in err and "'chrf'" in err and "'bleu'" in err


def test_launch_refuses_an_output_table_that_is_a_directory_before_training(tmp_path, capsys):
    """Was: every run trained, then exit 1 ("free disk space") when the tables were written."""
    (tmp_path / "allocation.csv").write_text(ALLOCATION)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(_summary()))
    (tmp_path / "out" / "final" / "calibration.csv").mkdir(parents=True)
    cfg = _write_config(tmp_path)
    argv = ["launch", "--config", cfg, "--allocation", tmp_path / "allocation.csv", "--baselines", "none"]
    assert "calibration.csv" in _refused(argv, capsys, tmp_path)
    assert not (tmp_path / "out" / "final" / "plan").exists()


# ---------------------------------------------------------------------------------------------- report

FINAL = "mixture,seed,language,pairs,tokens,predicted,predicted_low,predicted_high,achieved,error,inside_interval\n"
ALIGN = "stage,language,layer,cos_true,cos_random,retrieval_en_x,retrieval_x_en\n"
BAD_REPORT_FILES = {  # file, its content (None: a directory), a word the message must contain
    "a resolved config that is not UTF-8": ("resolved_config.yaml", b"experiment: caf\xe9\n", "UTF-8"),
    "an infinite achieved score": ("final/metrics.csv", FINAL + "plan,0,de,100,2000,40,38,42,inf,1,True\n", "achieved"),
    "a final run listed twice": ("final/metrics.csv", FINAL + "plan,0,de,100,2000,40,38,42,41,1,True\n"
                                 "plan,0,de,100,2000,40,38,42,43,3,True\n", "repeats"),
    "negative final pairs": ("final/metrics.csv", FINAL + "plan,0,de,-100,2000,40,38,42,41,1,True\n", "pairs"),
    "an infinite alignment cosine": ("alignment/alignment.csv", ALIGN + "before,de,0,inf,0.1,1,1\n", "cos_true"),
    "an alignment row twice": ("alignment/alignment.csv", ALIGN + "before,de,0,0.5,0.1,1,1\nbefore,de,0,0.9,0.1,1,1\n",
                               "repeats"),
    "an allocation with a header and no rows": ("allocation.csv", HEADER, "no rows"),
    "runs.csv that is a directory": ("runs.csv", None, "runs.csv"),
    "fits.json that is a directory": ("fits.json", None, "fits.json"),
}


@pytest.mark.parametrize("name", sorted(BAD_REPORT_FILES))
def test_report_refuses_broken_inputs_before_writing(tmp_path, capsys, report_dir, name):  # noqa: F811
    """Was: a traceback (non-UTF-8 config), or a report showing ∞, counting one run as two seeds, or
    leaving out an input that is a directory as if it were absent."""
    file, content, named = BAD_REPORT_FILES[name]
    root = _copy(report_dir, tmp_path / "out")
    path = root / file
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.unlink()
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    (root / "report.md").write_text("the last report")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    rc, err = _run_report(root, capsys)
    _refused_without_writing(rc, err, root, before)
    assert named in err, err


def test_report_refuses_fits_of_another_metric_than_the_allocation(tmp_path, capsys, report_dir):  # noqa: F811
    """Was: the chrF plan drawn and tabled as 'predicted BLEU'."""
    root = _copy(report_dir, tmp_path / "out")
    fits = root / "fits.json"
    fits.write_text(fits.read_text().replace('"metric": "chrf"', '"metric": "bleu"'))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    rc, err = _run_report(root, capsys)
    _refused_without_writing(rc, err, root, before)
    assert "'bleu'" in err and "'chrf'" in err


def test_report_reads_a_runs_table_with_a_bom_and_crlf_lines(tmp_path, capsys, report_dir):  # noqa: F811
    root = _copy(report_dir, tmp_path / "out")
    runs = root / "runs.csv"
    runs.write_bytes(b"\xef\xbb\xbf" + runs.read_bytes().replace(b"\n", b"\r\n"))
    rc, err = _run_report(root, capsys)
    assert rc == 0, err
    assert "| de" in (root / "report.md").read_text(encoding="utf-8")


def _run_report(root: Path, capsys) -> tuple[int, str]:
    rc = main(["report", str(root), "--format", "md"])
    return rc, " ".join(capsys.readouterr().err.split())
