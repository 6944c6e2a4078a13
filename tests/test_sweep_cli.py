"""Acceptance tests of `planner sweep` / `planner status` as users run them: real worker processes on a
real SQLite (or journal) study, a worker killed with SIGKILL, an injected failure, Ctrl-C.

The runners below are loaded by the workers through the hidden `--runner FILE.py:function` option (the
seam for plugging in another trainer); each appends "<point> <pid>" to the file named by SWEEP_TEST_LOG,
so a test can count exactly which points ran, in which process, how often.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
import yaml

LOG_ENV = "SWEEP_TEST_LOG"
THIS = Path(__file__).resolve()
POINTS = {"ar-16-s0", "ar-32-s0", "el-16-s0", "el-32-s0"}


# ------------------------------------------------------------------------------- runners (in workers)


@dataclass
class _Result:
    language: str
    n_pairs: int
    seed: int
    metrics: dict
    n_tokens: int
    train_seconds: float
    eval_seconds: float
    run_dir: str
    steps: int
    samples: list = field(default_factory=list)


def _log_call(language, n_pairs, seed, tag=""):
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(f"{language}-{n_pairs}-s{seed} {os.getpid()}{tag}\n")


def counting_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    _log_call(language, n_pairs, seed)
    time.sleep(0.2)
    return _Result(language, n_pairs, seed, {"chrf": 80.0 - 60.0 * n_pairs ** -0.5}, 9 * n_pairs, 0.2, 0.0,
                   str(run_dir), 1)


def failing_el16_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    if (language, n_pairs) == ("el", 16):
        _log_call(language, n_pairs, seed)
        raise RuntimeError("injected failure for el-16")
    return counting_runner(cfg, language, n_pairs, seed, run_dir)


def always_failing_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    _log_call(language, n_pairs, seed)
    raise ValueError("always broken")


def hanging_ar32_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    """Hangs in the middle of ar-32 (so the test can kill or interrupt it there)."""
    if (language, n_pairs) == ("ar", 32):
        _log_call(language, n_pairs, seed, " HANG")
        time.sleep(600)
    return counting_runner(cfg, language, n_pairs, seed, run_dir)


# ----------------------------------------------------------------------------------------- helpers


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, **{LOG_ENV: str(tmp_path / "calls.log"), "PLANNER_CACHE_DIR": str(tmp_path / "cache")})
    return e


def write_config(tmp_path, **extra) -> Path:
    cfg = {
        "experiment": "sweeptest",
        "output_dir": str(tmp_path / "out"),
        "languages": ["ar", "el"],
        "sweep": {"sizes": [16, 32], "seeds": [0], "heartbeat_seconds": 1, "grace_seconds": 2},
        **extra,
    }
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def planner(*args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def runner_arg(name: str) -> str:
    return f"--runner={THIS}:{name}"


def calls(env) -> list[tuple[str, int]]:
    path = Path(env[LOG_ENV])
    lines = path.read_text().split("\n") if path.exists() else []
    return [(ln.split()[0], int(ln.split()[1])) for ln in lines if ln and "HANG" not in ln]


def runs_csv(tmp_path) -> list[dict]:
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def study_trials(tmp_path, storage: str | None = None):
    url = storage or f"sqlite:///{tmp_path / 'out' / 'sweep.db'}"
    return optuna.load_study(study_name="sweeptest", storage=url).get_trials(deepcopy=False)


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def hanging_pid(env) -> int | None:
    path = Path(env[LOG_ENV])
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.endswith(" HANG"):
            return int(line.split()[1])
    return None


# ------------------------------------------------------------------------------------------- tests


def test_two_workers_run_every_point_exactly_once(tmp_path, env):
    cfg = write_config(tmp_path)
    result = planner("sweep", "--config", cfg, "--workers", 2, runner_arg("counting_runner"), env=env)
    assert result.returncode == 0, result.stderr
    ran = calls(env)
    assert sorted(p for p, _ in ran) == sorted(POINTS)
    assert len({pid for _, pid in ran}) == 2  # both workers took part
    rows = runs_csv(tmp_path)
    assert sorted(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in rows) == sorted(POINTS)
    assert {r["status"] for r in rows} == {"complete"} and all(float(r["chrf"]) > 0 for r in rows)
    assert (tmp_path / "out" / "resolved_config.yaml").is_file()

    again = planner("sweep", "--config", cfg, "--workers", 2, runner_arg("counting_runner"), env=env)
    assert again.returncode == 0 and len(calls(env)) == 4  # a finished point is never rerun
    assert "4/4 points done" in again.stdout


def test_a_killed_worker_leaves_its_point_to_the_next_sweep(tmp_path, env):
    cfg = write_config(tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "planner", "sweep", "--config", str(cfg), "--workers", "1",
         runner_arg("hanging_ar32_runner")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        worker = wait_for(lambda: hanging_pid(env), what="the worker to start ar-32")
        os.kill(worker, signal.SIGKILL)  # mid-run, its trial RUNNING
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 1 and "exit code -9" in err
    left = {t.user_attrs["point"]: t.state.name for t in study_trials(tmp_path)}
    assert left == {"ar-32-s0": "RUNNING", "el-32-s0": "WAITING", "ar-16-s0": "WAITING", "el-16-s0": "WAITING"}

    second = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert second.returncode == 0, second.stderr
    assert sorted(p for p, _ in calls(env)) == sorted(POINTS)  # the killed point ran (again) once
    rows = runs_csv(tmp_path)
    assert sorted(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in rows) == sorted(POINTS)
    ar32 = [t for t in study_trials(tmp_path) if t.user_attrs["point"] == "ar-32-s0"]
    assert [t.state.name for t in ar32] == ["FAIL", "COMPLETE"]  # the lost attempt, then the retry


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path, env):
    cfg = write_config(tmp_path)
    result = planner("sweep", "--config", cfg, "--workers", 2, runner_arg("failing_el16_runner"), env=env)
    assert result.returncode == 1
    assert "el-16-s0" in result.stderr and "RuntimeError: injected failure for el-16" in result.stderr
    assert sorted(p for p, _ in calls(env)) == sorted(POINTS)  # tried once, not retried in the same sweep
    rows = runs_csv(tmp_path)
    assert sorted(f"{r['language']}-{r['n_pairs']}" for r in rows) == ["ar-16", "ar-32", "el-32"]
    failed = [t for t in study_trials(tmp_path) if t.state.name == "FAIL"]
    assert [t.user_attrs["error"] for t in failed] == ["RuntimeError: injected failure for el-16"]

    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 0, status.stderr
    assert "3/4 done, 0 running, 1 failed, 0 pending" in status.stdout
    assert "failed el-16-s0: RuntimeError: injected failure for el-16" in status.stdout

    retry = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert retry.returncode == 0 and [p for p, _ in calls(env)][4:] == ["el-16-s0"]


def test_max_failures_stops_with_exit_1(tmp_path, env):
    cfg = write_config(tmp_path)
    result = planner("sweep", "--config", cfg, "--max-failures", 2, runner_arg("always_failing_runner"), env=env)
    assert result.returncode == 1
    assert len(calls(env)) == 2 and "stopped: 2 runs failed" in result.stderr


def test_ctrl_c_stops_cleanly_and_the_run_is_retried(tmp_path, env):
    cfg = write_config(tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "planner", "sweep", "--config", str(cfg), runner_arg("hanging_ar32_runner")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        wait_for(lambda: hanging_pid(env), what="the worker to start ar-32")
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130 and "Traceback" not in err and "interrupted" in err
    (interrupted,) = [t for t in study_trials(tmp_path) if t.user_attrs["point"] == "ar-32-s0"]
    assert interrupted.state.name == "FAIL" and interrupted.user_attrs["interrupted"] is True
    # An interrupted run is retried at once (no grace period to wait for).
    second = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert second.returncode == 0 and sorted(p for p, _ in calls(env)) == sorted(POINTS)


def test_journal_storage_shared_by_two_workers(tmp_path, env):
    cfg = write_config(tmp_path)
    journal = tmp_path / "shared" / "sweep.log"
    result = planner("sweep", "--config", cfg, "--workers", 2, "--storage", journal,
                     runner_arg("counting_runner"), env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p for p, _ in calls(env)) == sorted(POINTS) and journal.is_file()
    status = planner("status", "--config", cfg, "--storage", journal, env=env)
    assert "4/4 done" in status.stdout


def test_user_errors_exit_2(tmp_path, env):
    cfg = write_config(tmp_path)
    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 2 and "No sweep storage" in status.stderr and "Traceback" not in status.stderr
    bad = planner("sweep", "--config", cfg, f"--runner={THIS}:no_such_function", env=env)
    assert bad.returncode == 2 and "no function 'no_such_function'" in bad.stderr
    zero = planner("sweep", "--config", cfg, "--workers", 0, env=env)
    assert zero.returncode == 2 and "--workers must be at least 1" in zero.stderr
