"""Faults of the surroundings, not of the user's input: a training run that diverges, a plug-in runner that
misbehaves, a disk that refuses writes midway, a damaged or torn sweep storage. Each must end in one
paragraph and an exit code (never a traceback), keep the previous outputs whole, and never let a
broken run pass for a result.

Everything is real: `planner` processes, optuna storages, worker processes. A full disk is a file-size
limit (RLIMIT_FSIZE, with SIGXFSZ ignored so that writes fail with EFBIG) set in the child process only.
The plug-in runners below are loaded by the sweep's workers through the hidden `--runner FILE.py:function`.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

THIS = Path(__file__).resolve()
ROOT = THIS.parent.parent


# ------------------------------------------------------------------------------- runners (in workers)


@dataclass
class _Result:
    metrics: dict
    n_tokens: int
    run_dir: str
    train_seconds: float = 0.01
    eval_seconds: float = 0.0
    steps: int = 1


def good_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    return _Result({"chrf": 80.0 - 60.0 * n_pairs ** -0.5}, 9 * n_pairs, str(run_dir))


def misbehaving_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    """el-32 calls sys.exit() (as code that parses its own arguments may)."""
    if (language, n_pairs) == ("el", 32):
        sys.exit(3)
    return good_runner(cfg, language, n_pairs, seed, run_dir)


# ----------------------------------------------------------------------------------------- helpers


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, PLANNER_CACHE_DIR=str(tmp_path / "cache"))


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def planner(*args, env, limit: int | None = None, timeout=180) -> subprocess.CompletedProcess:
    """`planner ARGS` in a child process; with `limit`, no file it writes may grow beyond `limit` bytes."""
    return subprocess.run([sys.executable, "-m", "planner", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          preexec_fn=None if limit is None else _file_size_limit(limit))


def python(code: str, env, limit: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT, preexec_fn=None if limit is None else _file_size_limit(limit))


def assert_one_paragraph(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    error = result.stderr[result.stderr.index("error: "):]
    assert "\n\n" not in error.strip()
    for word in words:
        assert word in " ".join(error.split()), error


def write_config(tmp_path, sizes=(8, 16, 32), **sweep) -> Path:
    # here, not at the top: workers load this file as a runner plug-in without the tests on sys.path
    from test_sweep_cli import write_corpus

    cfg = {
        "experiment": "faults",
        "output_dir": str(tmp_path / "out"),
        "languages": ["ar", "el"],
        "data": {"source": str(write_corpus(tmp_path / "corpus.jsonl")), "test_size": 10},
        "sweep": {"sizes": list(sizes), "seeds": [0], "heartbeat_seconds": 1, "grace_seconds": 2, **sweep},
    }
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def runs_rows(tmp_path) -> list[dict]:
    from test_sweep_cli import runs_csv

    return runs_csv(tmp_path)


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.tmp"))


# --------------------------------------------------------------------------------- diverged training


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_a_diverged_proxy_run_is_a_failed_run_not_a_chrf_of_zero(tmp_path, env):
    """An absurd learning rate makes the loss NaN; the model still 'translates' (chrF ≈ 0). That used to
    be recorded in runs.csv as a complete run and fitted; it is now a failed run that names the cause."""
    cfg = {
        "experiment": "diverge", "output_dir": str(tmp_path / "out"), "languages": ["de"],
        "data": {"source": "demo", "test_size": 20},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        "train": {"epochs": 1, "batch_size": 4, "eval_size": 4, "max_new_tokens": 6, "samples": 0,
                  "learning_rate": 1e30},
        "sweep": {"sizes": [16], "seeds": [0], "workers": 1},
    }
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    one = planner("train-one", "--config", path, "--language", "de", "--pairs", 16, "--no-progress", env=env)
    assert_one_paragraph(one, 1, "training diverged", "train.learning_rate")
    assert not (tmp_path / "out" / "runs" / "de-16-s0" / "metrics.json").exists()

    result = planner("sweep", "--config", path, "--no-progress", env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "failed: de-16-s0" in result.stderr and "training diverged" in result.stderr
    assert runs_rows(tmp_path) == []  # no chrF of a broken model to fit


# ------------------------------------------------------------------------------ misbehaving runners


def test_a_misbehaving_runner_fails_its_run_and_the_others_complete(tmp_path, env):
    """sys.exit() in a plug-in used to kill the whole worker (its run marked interrupted, every later point
    left pending, and the same again in every later sweep). It is now a failed run with its reason; the
    other points complete."""
    cfg = write_config(tmp_path)
    result = planner("sweep", "--config", cfg, "--no-progress", f"--runner={THIS}:misbehaving_runner", env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "5/6 points done, 1 failed, 0 pending" in result.stdout, result.stdout + result.stderr
    failed = dict(line.split(" (trial ", 1) for line in result.stderr.splitlines() if line.startswith("  failed: "))
    assert list(failed) == ["  failed: el-32-s0"] and "SystemExit: 3" in failed["  failed: el-32-s0"]
    assert "worker stopped abnormally" not in result.stderr
    assert sorted((r["language"], r["n_pairs"]) for r in runs_rows(tmp_path)) == [
        ("ar", "16"), ("ar", "32"), ("ar", "8"), ("el", "16"), ("el", "8")]


# ---------------------------------------------------------------------------------- refused writes


RUNS = "language,n_pairs,chrf\n" + "".join(f"{lang},{n},{c - 60 * n ** -0.5:.4f}\n"
                                            for lang, c in (("de", 80), ("es", 70)) for n in (100, 200, 400, 800))


def test_a_refused_write_is_one_paragraph_and_keeps_the_previous_outputs(tmp_path, env):
    """A full disk during `fit` or `allocate` used to end in a traceback; `allocate` replaced allocation.csv
    and then failed on its summary, leaving a plan beside another budget's baselines."""
    (tmp_path / "runs.csv").write_text(RUNS)
    fits, allocation = tmp_path / "fits.json", tmp_path / "allocation.csv"
    summary = tmp_path / "allocation_summary.json"
    assert planner("fit", tmp_path / "runs.csv", "--metric", "chrf", "--out", fits, "--bootstrap", 20, env=env).returncode == 0
    assert planner("allocate", fits, "--budget", 400, "--unit", "pairs", "--out", allocation, env=env).returncode == 0
    before = {p: p.read_bytes() for p in (fits, allocation, summary)}
    assert len(before[allocation]) < 1000 < len(before[summary]) and len(before[fits]) > 3000

    refit = planner("fit", tmp_path / "runs.csv", "--metric", "chrf", "--out", fits, "--bootstrap", 30, env=env, limit=3000)
    assert_one_paragraph(refit, 1, f"Could not write {fits}", "File too large", "previous version is kept")
    realloc = planner("allocate", fits, "--budget", 600, "--unit", "pairs", "--out", allocation, env=env, limit=1000)
    assert_one_paragraph(realloc, 1, "Could not write", "File too large")
    assert {p: p.read_bytes() for p in before} == before  # both files of the pair are the old ones
    assert leftovers(tmp_path) == []


def test_refused_figure_and_checkpoint_writes_leave_no_partial_file(tmp_path, env):
    """A figure was written in place (a full disk left half a PNG) and a checkpoint's temporary file was
    left behind when its write failed."""
    code = f"""
import sys
from pathlib import Path
d = Path({str(tmp_path)!r})
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from reports.plotting import save_figure
fig, ax = plt.subplots()
ax.plot(range(1000), [i ** 0.5 for i in range(1000)])
try:
    save_figure(fig, d / "figures", "curve")
except Exception as err:
    print("figure:", err)
import torch
from trainers import resume
model = torch.nn.Linear(64, 64)
opt = torch.optim.AdamW(model.parameters())
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
try:
    resume.save(d / "ck" / "checkpoint.pt", "run", model, opt, sched, resume.Progress(step=1))
except Exception as err:
    print("checkpoint:", err)
"""
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "checkpoint.pt").write_bytes(b"previous")
    result = python(code, env, limit=4000)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "figures" / "curve.png").exists()
    assert (tmp_path / "ck" / "checkpoint.pt").read_bytes() == b"previous"
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["checkpoint.pt"]
    assert leftovers(tmp_path) == []
    assert "figure: Could not write" in result.stdout and "checkpoint: Could not write" in result.stdout


# --------------------------------------------------------------------------------- sweep storages


def test_a_damaged_sqlite_ledger_is_one_paragraph(tmp_path, env):
    """A page of sweep.db overwritten (a disk fault): `status` and `sweep` ended in a traceback."""
    cfg = write_config(tmp_path)
    assert planner("sweep", "--config", cfg, "--no-progress", f"--runner={THIS}:good_runner", env=env).returncode == 0
    db = tmp_path / "out" / "sweep.db"
    with closing(sqlite3.connect(db)) as conn:  # where the trials table lies: the schema stays readable
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'trials'").fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * page_size)
    status = planner("status", "--config", cfg, env=env)
    assert_one_paragraph(status, 1, "The sweep storage", "database disk image is malformed", "restore it")
    sweep = planner("sweep", "--config", cfg, "--no-progress", f"--runner={THIS}:good_runner", env=env)
    assert_one_paragraph(sweep, 1, "The sweep storage", "database disk image is malformed")


def test_a_full_disk_under_the_sweep_storage_is_one_paragraph(tmp_path, env):
    """sweep.db cannot grow: the sweep process itself used to end in a traceback, and when the queue still
    fitted, a worker died with one in its log and the sweep said only "worker stopped abnormally". Either
    way one paragraph names the storage. The runs recorded before are kept, and once there is room the
    same command completes the grid."""
    cfg = write_config(tmp_path, sizes=(8, 16))
    runner = f"--runner={THIS}:good_runner"
    assert planner("sweep", "--config", cfg, "--no-progress", runner, env=env).returncode == 0
    size = (tmp_path / "out" / "sweep.db").stat().st_size  # whether queueing or a worker's first record hits it
    bigger = write_config(tmp_path, sizes=tuple(range(8, 20)))  # 20 more points to queue: the file must grow
    full = planner("sweep", "--config", bigger, "--no-progress", runner, env=env, limit=size)
    assert_one_paragraph(full, 1, "The sweep storage", "disk I/O error", "finished runs are kept")
    again = planner("sweep", "--config", bigger, "--no-progress", runner, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(runs_rows(tmp_path)) == 24


def test_a_journal_record_cut_short_is_dropped_not_glued_to_the_next(tmp_path, env):
    """A journal whose last record was cut short (a full disk, a crash mid-append): optuna skips that line,
    but the next append was glued onto it, and the journal could never be replayed again: every run lost.
    Now the torn record is cut before appending, and a refused append leaves no torn record at all."""
    journal = tmp_path / "out" / "sweep.log"
    cfg = write_config(tmp_path, storage=str(journal))
    runner = f"--runner={THIS}:good_runner"
    assert planner("sweep", "--config", cfg, "--no-progress", runner, env=env).returncode == 0
    whole = journal.read_bytes()
    journal.write_bytes(whole[: len(whole) * 2 // 3 + 7])  # cut inside a record
    assert planner("sweep", "--config", cfg, "--no-progress", runner, env=env).returncode == 0
    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 0 and "6/6 done" in status.stdout, status.stdout + status.stderr
    assert len(runs_rows(tmp_path)) == 6

    bigger = write_config(tmp_path, sizes=(8, 16, 24, 32, 40, 48), seeds=[0, 1, 2], storage=str(journal))
    full = planner("sweep", "--config", bigger, "--no-progress", runner, env=env, limit=journal.stat().st_size + 6000)
    assert full.returncode == 1
    assert "Traceback" not in full.stderr and journal.read_bytes().endswith(b"\n")
    again = planner("sweep", "--config", bigger, "--no-progress", runner, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "36/36 points done" in again.stdout
