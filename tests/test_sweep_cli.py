"""Acceptance tests of `planner sweep` / `planner status` as users run them: real worker processes on
real storages (an SQLite file, a journal file, a throw-away PostgreSQL server), sweeps started at the
same instant on a new storage, a worker killed with SIGKILL, an injected failure, Ctrl-C.

The runners below are loaded by the workers through the hidden `--runner FILE.py:function` option (the
seam for plugging in another trainer); each appends "<point> <pid>" to the file named by SWEEP_TEST_LOG,
so a test can count exactly which points ran, in which process, how often. Loading this file also
passes the start barrier named by SWEEP_TEST_BARRIER (see `_start_barrier`).
"""

from __future__ import annotations

import csv
import json
import os
import re
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
BARRIER_ENV = "SWEEP_TEST_BARRIER"
THIS = Path(__file__).resolve()
POINTS = {"ar-16-s0", "ar-32-s0", "el-16-s0", "el-32-s0"}
STORAGES = ["sqlite", "journal", "postgresql"]


def _start_barrier() -> None:
    """SWEEP_TEST_BARRIER="DIR:N": each sweep that loads this runner file registers in DIR and waits until N
    have, so that N sweeps open a new storage at the same instant. `run_sweep` loads the runner just
    before it opens the storage; a worker process loads it later and passes straight through."""
    spec = os.environ.get(BARRIER_ENV)
    if not spec:
        return
    directory, count = spec.rsplit(":", 1)
    Path(directory, str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(os.listdir(directory)) < int(count) and time.monotonic() < deadline:
        time.sleep(0.002)


_start_barrier()


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


def hanging_once_ar32_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    """Hangs in the first attempt at ar-32 only; its retry runs normally."""
    if (language, n_pairs) == ("ar", 32) and hanging_pid_from(os.environ[LOG_ENV]) is None:
        _log_call(language, n_pairs, seed, " HANG")
        time.sleep(600)
    return counting_runner(cfg, language, n_pairs, seed, run_dir)


# ----------------------------------------------------------------------------------------- helpers


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ, **{LOG_ENV: str(tmp_path / "calls.log"), "PLANNER_CACHE_DIR": str(tmp_path / "cache")})
    return e


def write_corpus(path: Path, languages=("ar", "el"), pairs: int = 50) -> Path:
    """A small JSONL corpus, one pair per line with its language: loads in milliseconds, so the
    sweep's data fingerprints cost nothing here."""
    lines = [json.dumps({"source": f"Sentence number {i}.", "target": f"{lang} sentence {i}.", "language": lang})
             for lang in languages for i in range(pairs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_config(tmp_path, **extra) -> Path:
    cfg = {
        "experiment": "sweeptest",
        "output_dir": str(tmp_path / "out"),
        "languages": ["ar", "el"],
        "data": {"source": str(write_corpus(tmp_path / "corpus.jsonl")), "test_size": 10},
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
    """The study's trials, read with optuna itself (not through the code under test)."""
    url = storage or f"sqlite:///{tmp_path / 'out' / 'sweep.db'}"
    if "://" not in url:  # a journal file
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        url = JournalStorage(JournalFileBackend(url))
    return optuna.load_study(study_name="sweeptest", storage=url).get_trials(deepcopy=False)


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def hanging_pid_from(log_path: str) -> int | None:
    path = Path(log_path)
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.endswith(" HANG"):
            return int(line.split()[1])
    return None


def hanging_pid(env) -> int | None:
    return hanging_pid_from(env[LOG_ENV])


def takes_ctrl_c(pid: int) -> set[int]:
    """The threads of a process that do not block SIGINT (Linux: /proc/PID/task/TID/status)."""
    takers = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)", status, re.M).group(1), 16)
        if not blocked & (1 << (signal.SIGINT - 1)):
            takers.add(int(tid))
    return takers


def point_keys(rows) -> list[str]:
    return sorted(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in rows)


# ------------------------------------------------------------------------------------------ storages


@pytest.fixture(scope="session")
def pg_server():
    """One throw-away PostgreSQL server for the session (tests/pg_server.py); each test takes a new database."""
    from pg_server import start_or_skip

    server = start_or_skip()
    yield server
    server.stop()


@pytest.fixture
def storage(request, tmp_path) -> str:
    """A new, empty storage of the parametrised kind, as the --storage value users pass."""
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'sweep.db'}"
    if kind == "journal":
        return str(tmp_path / "shared" / "sweep.log")
    server = request.getfixturevalue("pg_server")
    return server.url(server.new_database())


def spawn_sweep(cfg, env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "planner", "sweep", "--config", str(cfg), *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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
        worker = wait_for(lambda: hanging_pid(env), what="the worker to start ar-32")
        # Only the worker's main thread may take the signal: delivered to another of its threads (a library
        # pool, the heartbeat), it would not interrupt the runner's sleep and the run would go unrecorded.
        assert takes_ctrl_c(worker) == {worker}
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130 and "Traceback" not in err and "interrupted" in err, (first.returncode, err[-3000:])
    (interrupted,) = [t for t in study_trials(tmp_path) if t.user_attrs["point"] == "ar-32-s0"]
    assert interrupted.state.name == "FAIL" and interrupted.user_attrs["interrupted"] is True
    # An interrupted run is retried at once (no grace period to wait for).
    second = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert second.returncode == 0 and sorted(p for p, _ in calls(env)) == sorted(POINTS)


def test_user_errors_exit_2(tmp_path, env):
    cfg = write_config(tmp_path)
    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 2 and "No sweep storage" in status.stderr and "Traceback" not in status.stderr
    bad = planner("sweep", "--config", cfg, f"--runner={THIS}:no_such_function", env=env)
    assert bad.returncode == 2 and "no function 'no_such_function'" in bad.stderr
    zero = planner("sweep", "--config", cfg, "--workers", 0, env=env)
    assert zero.returncode == 2 and "--workers must be at least 1" in zero.stderr


# ------------------------------------------------------------------------- storages: sqlite, journal, postgresql


# SQLite in the default suite; the journal and PostgreSQL (about 35 s together) in CI's `-m slow` run.
@pytest.mark.parametrize("storage", ["sqlite", *(pytest.param(s, marks=pytest.mark.slow) for s in STORAGES[1:])],
                         indirect=True)
def test_sweeps_started_at_the_same_instant_share_a_new_storage(tmp_path, env, storage):
    """Four `planner sweep` processes open a storage that does not exist yet at the same instant (a
    barrier just before the storage is opened): all create-or-open it without error, and every grid
    point runs exactly once."""
    sweeps = 4
    cfg = write_config(tmp_path, sweep={"sizes": [8, 16, 32], "seeds": [0], "heartbeat_seconds": 1,
                                        "grace_seconds": 2})
    points = {f"{lang}-{n}-s0" for lang in ("ar", "el") for n in (8, 16, 32)}
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = dict(env, **{BARRIER_ENV: f"{barrier}:{sweeps}"})
    procs = [spawn_sweep(cfg, env, "--workers", 1, "--storage", storage, "--no-progress",
                         runner_arg("counting_runner")) for _ in range(sweeps)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    assert len(os.listdir(barrier)) >= sweeps  # every sweep reached the barrier before any opened the storage
    assert sorted(p for p, _ in calls(env)) == sorted(points)  # each point once, across all processes
    assert point_keys(runs_csv(tmp_path)) == sorted(points)
    trials = study_trials(tmp_path, storage)
    assert sorted(t.user_attrs["point"] for t in trials if t.state.name == "COMPLETE") == sorted(points)
    status = planner("status", "--config", cfg, "--storage", storage, env=env)
    assert status.returncode == 0 and "6/6 done, 0 running, 0 failed, 0 pending, 0 stale" in status.stdout


@pytest.mark.parametrize("storage", STORAGES, indirect=True)
def test_a_worker_killed_mid_run_is_retried_after_the_grace_period(tmp_path, env, storage):
    """Two sweeps share the storage; one's worker is SIGKILLed in the middle of ar-32. The other sweep's
    worker fails the lost run (optuna's heartbeat after the grace period; on a journal, its worker's
    process gone from this machine), optuna's retry callback queues it again and that worker runs it:
    nothing lost, nothing run twice, the killed sweep exits 1 naming its dead worker."""
    cfg = write_config(tmp_path)
    grace = 2
    procs = [spawn_sweep(cfg, env, "--workers", 1, "--storage", storage, "--no-progress",
                         runner_arg("hanging_once_ar32_runner")) for _ in range(2)]
    try:
        victim = wait_for(lambda: hanging_pid(env), what="a worker to start ar-32")
        os.kill(victim, signal.SIGKILL)  # mid-run: its trial stays RUNNING, its heartbeat stops
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    killed_err = next(err for p, (_, err) in zip(procs, outputs) if p.returncode == 1)
    assert "exit code -9" in killed_err
    assert sorted(p for p, _ in calls(env)) == sorted(POINTS)  # the killed attempt is not a finished run
    assert point_keys(runs_csv(tmp_path)) == sorted(POINTS)
    by_point: dict[str, list] = {}
    for t in sorted(study_trials(tmp_path, storage), key=lambda t: t.number):
        if "point" in t.user_attrs:  # (a worker that lost the race for the last queued trial: a pruned blank)
            by_point.setdefault(t.user_attrs["point"], []).append(t)  # one process queued: no duplicates
    assert {k: [t.state.name for t in ts] for k, ts in by_point.items()} == {
        "ar-32-s0": ["FAIL", "COMPLETE"], "ar-16-s0": ["COMPLETE"], "el-16-s0": ["COMPLETE"], "el-32-s0": ["COMPLETE"],
    }
    lost, retry = by_point["ar-32-s0"]
    assert "error" not in lost.user_attrs  # lost, not raised
    if not storage.endswith(".log"):  # optuna's heartbeat: failed once silent for the grace period
        assert (retry.datetime_start - lost.datetime_start).total_seconds() > grace
    # (a journal has no heartbeat: its worker's process, gone from this machine, is what tells)
    assert retry.system_attrs.get("failed_trial") == lost.number  # re-queued by optuna's retry callback


def test_postgresql_mistakes_are_user_errors_at_once(tmp_path, env, pg_server):
    """A refused password, a database the user may not create tables in and a closed port are user
    errors (exit 2, one paragraph, password masked), reported at once, not retried as a race."""
    from pg_server import _free_port

    cfg = write_config(tmp_path)
    database = pg_server.new_database()
    pg_server.execute("CREATE DATABASE not_ours")  # owned by the superuser: `planner` may not create tables
    cases = [
        (pg_server.url(database, password="wrong-pw"), "password authentication failed"),
        (pg_server.url("not_ours"), "permission denied"),
        (pg_server.url(database).replace(f":{pg_server.port}/", f":{_free_port()}/"), "Connection refused"),
    ]
    for url, words in cases:
        started = time.monotonic()
        result = planner("sweep", "--config", cfg, "--storage", url, runner_arg("counting_runner"), env=env)
        assert result.returncode == 2, result.stderr
        message = " ".join(result.stderr.split())  # the CLI wraps its one paragraph
        assert words in message and "Cannot open the sweep storage" in message
        assert "Traceback" not in message and "wrong-pw" not in message
        assert time.monotonic() - started < 20  # the race retries (up to 30 s) did not kick in
    assert calls(env) == []


def test_the_documented_multi_machine_recipe_is_the_tested_one():
    """docs/own-data.md's PostgreSQL recipe: its SQL is what the test server runs, its URL has the form
    the tests use, and its commands are the ones the tests run (--storage URL on every machine)."""
    from pg_server import RECIPE_PASSWORD, RECIPE_ROLE, RECIPE_SQL, URL_FORM

    doc = (THIS.parents[1] / "docs" / "own-data.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Running the sweep on several machines"):]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    assert [line.strip().rstrip(";") for line in sql.splitlines() if line.strip()] == RECIPE_SQL
    url = URL_FORM.format(user=RECIPE_ROLE, password=RECIPE_PASSWORD, host="db.example.org", port=5432,
                          database="planner")
    commands = re.findall(r"^planner .*$", section, re.M)
    assert f"planner sweep --config planner.yaml --storage {url}" in commands
    assert f"planner status --config planner.yaml --storage {url}" in commands
