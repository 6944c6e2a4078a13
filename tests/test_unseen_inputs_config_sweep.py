"""Inputs the config-reading stages had not seen (data, train-one, sweep, status, launch, run, align-report):
every user mistake exits 2 with one `error:` paragraph naming the file, key or flag, no traceback, and
writes nothing (an existing output is left exactly as it was). Each case is refused before any training."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from planner.cli import main

# A small corpus of its own (loads in milliseconds; the embedded one takes a second or two).
PAIRS = "".join(json.dumps({"en": f"Sentence {i}.", "el": f"Πρόταση {i}."}, ensure_ascii=False) + "\n" for i in range(80))


def _config(tmp_path: Path, **replace: str) -> str:
    corpus = tmp_path / "pairs.jsonl"
    if not corpus.exists():
        corpus.write_text(PAIRS, encoding="utf-8")
    text = f"""experiment: t
output_dir: {tmp_path / 'out'}
languages: [el]
data: {{source: {corpus}, test_size: 20}}
model: {{name: tiny, hidden_size: 32, layers: 1, heads: 2, vocab_size: 300, context_length: 64, threads: 1}}
train: {{epochs: 1, batch_size: 8, eval_size: 4, max_new_tokens: 4, samples: 0}}
sweep: {{sizes: [20, 40]}}
budget: {{total: 100, unit: pairs}}
final: {{seeds: [0], baselines: [uniform]}}
"""
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _write_config(tmp_path: Path, **replace: str) -> Path:
    path = tmp_path / "planner.yaml"
    path.write_text(_config(tmp_path, **replace), encoding="utf-8")
    return path


def _snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _refused(argv, capsys, root: Path) -> str:
    """Run the CLI; assert exit 2, one `error:` paragraph, no traceback, nothing under `root` changed."""
    before = _snapshot(root)
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        rc = exit_.code
    err = capsys.readouterr().err
    text = " ".join(err.split())
    assert rc == 2, err
    assert text.startswith("error:") and "Traceback" not in err, err
    assert _snapshot(root) == before, f"files changed: {err}"
    return text


# ------------------------------------------------------------------------------------------- the file

BAD_FILES = {
    "a key given twice": (b"languages: [el]\nlanguages: [hi]\n", "languages"),
    "a nested key given twice": (b"sweep: {sizes: [20], sizes: [40]}\n", "sizes"),
    "not UTF-8": (b"experiment: caf\xe9\n", "UTF-8"),
    "nested too deeply": (b"languages: " + b"[" * 3000 + b"]" * 3000 + b"\n", "planner.yaml"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_malformed_config_files_are_refused(tmp_path, capsys, name):
    content, needle = BAD_FILES[name]
    cfg = tmp_path / "planner.yaml"
    cfg.write_bytes(content)
    err = _refused(["data", "stats", "--config", cfg], capsys, tmp_path)
    assert str(cfg) in err and needle in err


def test_an_alias_bomb_under_a_real_key_is_refused_at_once(tmp_path, capsys):
    chain = "".join(f"    - &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]\n" for k in range(1, 8))
    cfg = tmp_path / "planner.yaml"
    head = "model:\n  lora:\n    target_modules:\n    - &l0 [x, x, x, x, x, x, x, x, x]\n"
    cfg.write_text(head + chain + "    - *l7\n")  # *l7 stands for 9**8 strings
    start = time.monotonic()
    err = _refused(["data", "stats", "--config", cfg], capsys, tmp_path)
    assert "model.lora.target_modules" in err and time.monotonic() - start < 5


BAD_VALUES = {
    "infinite budget": ({"total: 100": "total: .inf"}, "budget.total"),
    "infinite learning rate": ({"epochs: 1,": "epochs: 1, learning_rate: .inf,"}, "train.learning_rate"),
    "infinite epochs": ({"epochs: 1,": "epochs: .inf,"}, "train.epochs"),
    "infinite max_epochs": ({"unit: pairs": "unit: pairs, max_epochs: .inf"}, "budget.max_epochs"),
    "NaN target": ({"unit: pairs": "unit: pairs, objective: target, languages: {el: {target: .nan}}"},
                   "budget.languages.el.target"),
    "infinite final epochs": ({"seeds: [0], baselines": "seeds: [0], epochs: .inf, baselines"}, "final.epochs"),
    "negative seed": ({"experiment: t": "experiment: t\nseed: -1"}, "seed"),
    "negative sweep seed": ({"sizes: [20, 40]": "sizes: [20, 40], seeds: [-1]"}, "sweep.seeds"),
    "final seed past 2**32": ({"seeds: [0], baselines": f"seeds: [{2 ** 32}], baselines"}, "final.seeds"),
    "language with ..": ({"languages: [el]": "languages: ['..']"}, "languages"),
    "language with a slash": ({"languages: [el]": "languages: [el/../../x]"}, "languages"),
    "language with a space": ({"languages: [el]": "languages: ['e l']"}, "languages"),
    "empty language": ({"languages: [el]": "languages: ['']"}, "languages"),
    "align layer past the tiny model": ({"experiment: t": "experiment: t\nalign: {layer: 5}"}, "align.layer"),
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_bad_values_are_named(tmp_path, capsys, name):
    replace, key = BAD_VALUES[name]
    cfg = _write_config(tmp_path, **replace)
    err = _refused(["data", "stats", "--config", cfg], capsys, tmp_path)
    assert str(cfg) in err and key in err, err


def test_a_language_code_never_leads_out_of_the_output_directory(tmp_path, capsys):
    corpus = tmp_path / "long.jsonl"
    corpus.write_text("".join(json.dumps({"source": f"s {i}", "target": f"t {i}", "language": "../../escape"}) + "\n"
                              for i in range(60)))
    data = f"data: {{source: {corpus}, test_size: 20, language_names: {{'../../escape': Escape}}}}"
    cfg = _write_config(tmp_path, **{f"data: {{source: {tmp_path / 'pairs.jsonl'}, test_size: 20}}": data})
    argv = ["train-one", "--config", cfg, "--language", "../../escape", "--pairs", "0", "--no-progress"]
    assert "--language" in _refused(argv, capsys, tmp_path)
    assert not (tmp_path / "escape-0-s0").exists()  # out/runs/../../escape-0-s0


# ------------------------------------------------------------------------------------------- the data

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_as_data_source_is_refused_without_reading_it(tmp_path, capsys):
    fifo = tmp_path / "pairs.jsonl"
    os.mkfifo(fifo)  # opening it for reading would block forever
    cfg = _write_config(tmp_path)
    assert "not a regular file" in _refused(["data", "stats", "--config", cfg], capsys, tmp_path)


def test_an_unknown_home_directory_in_data_source(tmp_path, capsys):
    cfg = _write_config(tmp_path, **{f"source: {tmp_path / 'pairs.jsonl'}": "source: ~no-such-user-here/x.jsonl"})
    assert "~no-such-user-here" in _refused(["data", "stats", "--config", cfg], capsys, tmp_path)


def test_a_table_whose_header_repeats_a_column(tmp_path, capsys):
    table = tmp_path / "pairs.csv"
    table.write_text("en,el,el\n" + "".join(f"s {i},t {i},u {i}\n" for i in range(60)))
    cfg = _write_config(tmp_path, **{f"source: {tmp_path / 'pairs.jsonl'}": f"source: {table}"})
    err = _refused(["data", "stats", "--config", cfg], capsys, tmp_path)
    assert "pairs.csv" in err and "'el'" in err


@pytest.mark.parametrize("verb", ["data", "sweep"])
def test_general_instruction_files_are_checked_before_any_run(tmp_path, capsys, verb):
    general = tmp_path / "general"
    general.mkdir()
    (general / "el.jsonl").write_bytes(b'{"instruction": "caf\xe9", "output": "x"}\n')
    cfg = _write_config(tmp_path, **{"test_size: 20}": f"test_size: 20, general_dir: {general}, general_ratio: 0.5}}"})
    assert "el.jsonl" in _refused([verb, "--config", cfg], capsys, tmp_path)
    (general / "el.jsonl").unlink()
    assert "el.jsonl" in _refused([verb, "--config", cfg], capsys, tmp_path)


# ------------------------------------------------------------------------------------ sweep and status

BAD_STORAGES = {
    "unsupported scheme": ("foo://bar/baz", None),
    "corrupt SQLite file": ("{tmp}/bad.db", b"this is not sqlite" * 100),
    "corrupt journal": ("{tmp}/bad.log", b"garbage\n{not json\n"),
}


@pytest.mark.parametrize("name", sorted(BAD_STORAGES))
def test_sweep_with_a_bad_storage_writes_nothing(tmp_path, capsys, name):
    url, content = BAD_STORAGES[name]
    url = url.replace("{tmp}", str(tmp_path))
    if content is not None:
        Path(url).write_bytes(content)
    cfg = _write_config(tmp_path)
    _refused(["sweep", "--config", cfg, "--storage", url, "--no-progress"], capsys, tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"sqlite"], ids=["empty file", "another program's database"])
def test_status_never_writes_into_a_file_that_is_not_a_sweep(tmp_path, capsys, content):
    cfg = _write_config(tmp_path)
    db = tmp_path / "out" / "sweep.db"
    db.parent.mkdir()
    if content:
        with sqlite3.connect(db) as conn:
            conn.execute("create table notes (text)")
    else:
        db.write_bytes(b"")
    err = _refused(["status", "--config", cfg], capsys, tmp_path)
    assert "sweep.db" in err


def test_status_of_a_corrupt_journal(tmp_path, capsys):
    journal = tmp_path / "j.log"
    journal.write_bytes(b"garbage\n{not json\n")
    cfg = _write_config(tmp_path)
    assert "j.log" in _refused(["status", "--config", cfg, "--storage", journal], capsys, tmp_path)


def test_bad_flags_print_one_error_paragraph(tmp_path, capsys):
    cfg = _write_config(tmp_path)
    assert "--workers" in _refused(["sweep", "--config", cfg, "--workers", "two"], capsys, tmp_path)


# ---------------------------------------------------------------------------- an output that is a file

VERBS_WRITING_OUTPUT_DIR = {
    "sweep": ["sweep", "--no-progress"],
    "train-one": ["train-one", "--language", "el", "--pairs", "0", "--no-progress"],
    "run": ["run"],
    "align-report": ["align-report", "--pairs", "20", "--no-progress"],
}


@pytest.mark.parametrize("verb", sorted(VERBS_WRITING_OUTPUT_DIR))
def test_an_output_dir_that_is_a_file_is_left_alone(tmp_path, capsys, verb):
    (tmp_path / "afile").write_text("keep")
    cfg = _write_config(tmp_path, **{f"output_dir: {tmp_path / 'out'}": f"output_dir: {tmp_path / 'afile'}"})
    argv = VERBS_WRITING_OUTPUT_DIR[verb]
    assert "afile" in _refused([argv[0], "--config", cfg, *argv[1:]], capsys, tmp_path)


def test_train_one_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("keep")
    cfg = _write_config(tmp_path)
    argv = ["train-one", "--config", cfg, "--language", "el", "--pairs", "0", "--out", tmp_path / "afile"]
    assert "afile" in _refused(argv, capsys, tmp_path)


@pytest.mark.parametrize("argv", [
    ["train-one", "--language", "el", "--pairs", "20", "--seed", "-1"],
    ["train-one", "--language", "el", "--pairs", "20", "--seed", str(2 ** 32)],
    ["align-report", "--pairs", "20", "--seed", "-1"],
], ids=["train-one negative seed", "train-one seed past 2**32", "align-report negative seed"])
def test_seed_flags_out_of_range(tmp_path, capsys, argv):
    cfg = _write_config(tmp_path)
    assert "--seed" in _refused([argv[0], "--config", cfg, *argv[1:]], capsys, tmp_path)


def test_align_report_of_a_broken_checkpoint(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("garbage")
    cfg = _write_config(tmp_path)
    assert "model" in _refused(["align-report", "--config", cfg, "--model", model], capsys, tmp_path)


def test_run_with_unreadable_data_writes_nothing(tmp_path, capsys):
    cfg = _write_config(tmp_path)
    (tmp_path / "pairs.jsonl").write_text("{bad\n")
    assert "pairs.jsonl" in _refused(["run", "--config", cfg], capsys, tmp_path)


# ------------------------------------------------------------------------------------------- launch

ALLOCATION = ("language,pairs,tokens,share,predicted,predicted_low,predicted_high\n"
              "el,30,600,1,30,29,31\n")


def _summary(uniform=None, **extra) -> dict:
    """An allocation summary whose uniform baseline is `uniform` (default: 30 el pairs)."""
    uniform = {"languages": {"el": {"pairs": 30, "predicted": 30}}} if uniform is None else uniform
    return {"baselines": {"uniform": uniform}, "objective_value": 30.0, **extra}


SUMMARY_JSON = "allocation_summary.json"
UNIFORM = ["--baselines", "uniform"]
NONE = ["--baselines", "none"]
BAD_LAUNCHES = {  # flags, allocation.csv, summary, a word the message must contain
    "unknown --baselines": (["--baselines", "fair"], ALLOCATION, _summary(), "--baselines"),
    "negative --num-processes": (["--num-processes", "-1"], ALLOCATION, _summary(), "--num-processes"),
    "zero --num-processes": (["--num-processes", "0"], ALLOCATION, _summary(), "--num-processes"),
    "summary baselines not a mapping": (UNIFORM, ALLOCATION, {**_summary(), "baselines": [1]}, SUMMARY_JSON),
    "summary baseline without languages": (UNIFORM, ALLOCATION, _summary({}), SUMMARY_JSON),
    "summary baseline with text pairs": (UNIFORM, ALLOCATION, _summary({"languages": {"el": {"pairs": "many"}}}),
                                         SUMMARY_JSON),
    "summary baseline of an unknown language": (UNIFORM, ALLOCATION, _summary({"languages": {"zz": {"pairs": 3}}}),
                                                "zz"),
    "summary baseline with negative pairs": (UNIFORM, ALLOCATION, _summary({"languages": {"el": {"pairs": -3}}}),
                                             "el"),
    "summary interval level not a number": (NONE, ALLOCATION, _summary(interval_level="x"), SUMMARY_JSON),
    "summary transfer plan malformed": (NONE, ALLOCATION, _summary(transfer={"pairs": 5}), SUMMARY_JSON),
    "more pairs than the pool": (NONE, ALLOCATION.replace("el,30,", "el,99999,"), _summary(), "el"),
}


@pytest.mark.parametrize("name", sorted(BAD_LAUNCHES))
def test_launch_refuses_before_training(tmp_path, capsys, name):
    flags, allocation, summary, needle = BAD_LAUNCHES[name]
    (tmp_path / "allocation.csv").write_text(allocation)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(summary))
    cfg = _write_config(tmp_path)
    argv = ["launch", "--config", cfg, "--allocation", tmp_path / "allocation.csv", *flags]
    assert needle in _refused(argv, capsys, tmp_path)


def test_launch_into_an_output_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "allocation.csv").write_text(ALLOCATION)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(_summary()))
    cfg = _write_config(tmp_path, **{f"output_dir: {tmp_path / 'out'}": f"output_dir: {tmp_path / 'afile'}"})
    argv = ["launch", "--config", cfg, "--allocation", tmp_path / "allocation.csv", "--baselines", "none"]
    assert "afile" in _refused(argv, capsys, tmp_path)


def test_launch_under_a_launcher_that_is_not_installed_writes_nothing(tmp_path, capsys, monkeypatch):
    (tmp_path / "allocation.csv").write_text(ALLOCATION)
    (tmp_path / "allocation_summary.json").write_text(json.dumps(_summary()))
    cfg = _write_config(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    argv = ["launch", "--config", cfg, "--allocation", tmp_path / "allocation.csv", "--launcher", "torchrun"]
    assert "torchrun" in _refused(argv, capsys, tmp_path)
