"""The sweep's ledger on real optuna storages: grid, storage resolution, optuna's atomic pop, the
preparation lock (one process queues), optuna's heartbeat and retry, stale detection, runs.csv export, ETA,
and the worker loop run in-process with injected runners."""

from __future__ import annotations

import csv
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from planner.commands.status import format_status
from core.config import config_from_dict
from core.errors import UserError
from planner.sweep.identity import (
    A_DATA, A_ERROR, A_INTERRUPTED, A_SESSION, A_WORKER, GridPoint, grid_points, sweep_points,
)
from planner.sweep.state import PointState, point_statuses, points_to_enqueue, session_failures
from planner.sweep.storage import StorageSpec, open_storage, resolve_storage
from planner.sweep.worker import WorkerSettings, run_next, worker_loop
from core.files import write_csv_atomic
from planner.sweep.export import export_runs, runs_table
from planner.sweep.ledger import open_ledger, prepare
from planner.estimate import predict_seconds
from planner.runners import resolve_runner
from planner.sweep.orchestrate import stale_notices
from planner.sweep.state import summarize


def make_cfg(tmp_path: Path, **sweep) -> object:
    return config_from_dict({
        "experiment": "t",
        "output_dir": str(tmp_path / "out"),
        "languages": ["ar", "el"],
        "sweep": {"sizes": [16, 32], "seeds": [0], "heartbeat_seconds": 1, "grace_seconds": 3, **sweep},
    })


@dataclass
class FakeResult:
    language: str
    n_pairs: int
    seed: int
    metrics: dict
    n_tokens: int
    train_seconds: float = 0.01
    eval_seconds: float = 0.0
    run_dir: str = ""
    steps: int = 1
    samples: list = field(default_factory=list)


def chrf_law(n_pairs: int) -> float:
    return 80.0 - 60.0 * n_pairs ** -0.5


def fake_runner(calls: list, fail: set[str] = frozenset()):
    def run(cfg, language, n_pairs, seed, run_dir=None, progress=True):
        key = f"{language}-{n_pairs}-s{seed}"
        calls.append(key)
        if key in fail:
            raise RuntimeError(f"injected failure at {key}")
        return FakeResult(language, n_pairs, seed, {"chrf": chrf_law(n_pairs), "loss": 1.0 / n_pairs},
                          n_tokens=7 * n_pairs, run_dir=str(run_dir))
    return run


def trial(point: GridPoint, state: TrialState, number: int = 0, **attrs) -> optuna.trial.FrozenTrial:
    t = create_trial(
        state=state, value=1.0 if state == TrialState.COMPLETE else None,
        user_attrs={**point.user_attrs(), **attrs},
    )
    t.number = number
    return t


P = GridPoint("ar", 16, 0)


# ---------------------------------------------------------------------------------------------- grid


def test_grid_is_the_full_product_largest_size_first(tmp_path):
    cfg = make_cfg(tmp_path, sizes=[32, 16, 64], seeds=[0, 1])
    points = grid_points(cfg)
    assert len(points) == 2 * 3 * 2 == len(set(points))
    assert [p.n_pairs for p in points] == sorted((p.n_pairs for p in points), reverse=True)
    assert points[0] == GridPoint("ar", 64, 0) and points[0].key == "ar-64-s0"


# ------------------------------------------------------------------------------------------- storage


def test_storage_resolution(tmp_path):
    cfg = make_cfg(tmp_path)
    default = resolve_storage(cfg)
    assert default.kind == "rdb" and default.local_file == (tmp_path / "out" / "sweep.db").resolve()
    assert resolve_storage(cfg, str(tmp_path / "s.log")).kind == "journal"
    assert resolve_storage(cfg, str(tmp_path / "s.journal")).local_file == tmp_path / "s.journal"
    assert resolve_storage(cfg, str(tmp_path / "s.db")).target == f"sqlite:///{tmp_path / 's.db'}"
    pg = resolve_storage(make_cfg(tmp_path, storage="postgresql://me:secret@db:5432/sweeps"))
    assert pg.kind == "rdb" and pg.local_file is None
    assert "secret" not in pg.display and "db:5432" in pg.display
    for bad in ("sweeps", "sqlite:///:memory:"):
        with pytest.raises(UserError):
            resolve_storage(cfg, bad)


def test_reading_a_missing_storage_is_a_user_error_and_creates_nothing(tmp_path):
    spec = StorageSpec("rdb", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(UserError, match="No sweep storage"):
        open_storage(spec, create=False)
    assert not (tmp_path / "none.db").exists()


def _pop_all(target: str, kind: str, out) -> None:
    """optuna's own pop, as a worker's `Study.optimize` does it (`Study.ask` takes a WAITING trial)."""
    study = optuna.load_study(study_name="race", storage=open_storage(StorageSpec(kind, target), create=False))
    got = []
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        t = study.ask()
        if "point" in t.user_attrs:
            got.append(t.number)
        else:  # another process took the last one first; ask() made a fresh trial
            study.tell(t, state=TrialState.PRUNED)
    out.put(got)


@pytest.mark.parametrize("kind", ["rdb", "journal"])
def test_concurrent_pops_never_hand_out_a_trial_twice(tmp_path, kind):
    # Without BEGIN IMMEDIATE, three processes on SQLite popped 16 of 300 trials twice.
    target = f"sqlite:///{tmp_path / 'race.db'}" if kind == "rdb" else str(tmp_path / "race.log")
    study = optuna.create_study(study_name="race", storage=open_storage(StorageSpec(kind, target), create=True))
    for n in range(1, 61):
        study.enqueue_trial({}, user_attrs=GridPoint("ar", n, 0).user_attrs())
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_pop_all, args=(target, kind, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    popped = [n for _ in procs for n in queue.get(timeout=120)]
    for p in procs:
        p.join()
    assert sorted(popped) == list(range(60))


def _prepare_in_process(cfg, spec, out) -> None:
    _, queued = prepare(cfg, spec, sweep_points(cfg), {})
    out.put(queued)


@pytest.mark.parametrize("kind", ["rdb", "journal"])
def test_sweeps_preparing_at_once_queue_each_point_once(tmp_path, kind):
    """Four processes prepare one new study at the same moment: the lock lets one queue the grid and the
    others find it queued (no point twice, so no worker ever has to step aside)."""
    cfg = make_cfg(tmp_path, sizes=[8, 16, 32, 64])
    spec = resolve_storage(cfg, str(tmp_path / ("s.db" if kind == "rdb" else "s.log")))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_prepare_in_process, args=(cfg, spec, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    queued = sorted(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join()
    assert queued == [0, 0, 0, 8]
    trials = open_ledger(cfg, spec, create=False).trials()
    assert sorted(t.user_attrs["point"] for t in trials) == sorted(p.key for p in grid_points(cfg))


@pytest.fixture
def ledger(tmp_path):
    cfg = make_cfg(tmp_path)
    return open_ledger(cfg, resolve_storage(cfg), create=True)


def test_workers_take_points_in_the_sweeps_order(tmp_path):
    """prepare queues in the sweep's order (largest runs first) and optuna pops the oldest queued trial."""
    cfg = make_cfg(tmp_path)
    ledger, queued = prepare(cfg, resolve_storage(cfg), sweep_points(cfg), {})
    calls: list[str] = []
    while run_next(ledger, cfg, fake_runner(calls), _settings("s")) is not None:
        pass
    assert queued == 4 and calls == [p.key for p in grid_points(cfg)] == ["ar-32-s0", "el-32-s0", "ar-16-s0", "el-16-s0"]


def test_a_silent_run_is_failed_once_retried_and_its_owner_cannot_complete_it(ledger):
    """optuna's RDB heartbeat: a RUNNING trial whose heartbeat is older than the grace period (3 s) is failed
    by `fail_lost` and re-queued by optuna's retry callback, once; the owner's late result is refused."""
    ledger.enqueue([P])
    t = ledger.study.ask()
    ledger.storage.record_heartbeat(t._trial_id)
    ledger.fail_lost()
    assert ledger.trials(states=(TrialState.FAIL,)) == []  # fresh heartbeat
    time.sleep(4.0)
    ledger.fail_lost()
    ledger.fail_lost()  # failed once, not twice
    states = [x.state for x in ledger.trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]  # re-queued: the same point, a new trial
    assert ledger.trials()[1].user_attrs["point"] == P.key
    with pytest.raises(Exception):
        ledger.study.tell(t, 1.0)  # the owner's late result is discarded


def test_a_journal_run_whose_worker_died_here_is_failed_and_retried(tmp_path):
    """A journal has no heartbeat: a RUNNING trial whose worker process on this machine is gone is failed and
    re-queued; a live worker's, or another machine's, is left alone."""
    import socket
    import subprocess
    import sys

    cfg = make_cfg(tmp_path)
    ledger = open_ledger(cfg, resolve_storage(cfg, str(tmp_path / "s.log")), create=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = socket.gethostname()
    for worker in (f"{here}:{gone.stdout.strip()}", f"{here}:{os.getpid()}", "elsewhere:1"):
        ledger.enqueue([P])
        t = ledger.study.ask()
        ledger.set_attrs(t._trial_id, {A_WORKER: worker})
    ledger.fail_lost()
    assert [x.state for x in ledger.trials()] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING,
                                                  TrialState.WAITING]
    running = ledger.trials(states=(TrialState.RUNNING,))
    assert [ledger.may_come_back(x) for x in running] == [True, False]  # never waited for from here


def test_a_run_has_a_heartbeat_before_it_starts(tmp_path, ledger):
    """optuna fails a RUNNING trial as lost only once it has beaten: a worker killed before optuna's heartbeat
    thread first beat (seen under load) left its point RUNNING for ever. The worker beats before the run."""
    import sqlite3

    cfg = make_cfg(tmp_path)
    ledger.enqueue([P])
    beats: list[int] = []

    def runner(*args, **kwargs):
        (mine,) = ledger.trials(states=(TrialState.RUNNING,))
        with sqlite3.connect(ledger.spec.local_file) as conn:
            beats.extend(conn.execute("SELECT count(*) FROM trial_heartbeats WHERE trial_id = ?",
                                      (mine._trial_id,)).fetchone())
        return fake_runner([])(*args, **kwargs)

    assert run_next(ledger, cfg, runner, _settings("s")) == PointState.DONE
    assert beats == [1]


def test_a_run_that_ends_after_being_declared_lost_is_discarded(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    ledger.enqueue([P])

    def runner(*args, **kwargs):
        (mine,) = ledger.trials(states=(TrialState.RUNNING,))
        ledger.storage.set_trial_state_values(mine._trial_id, TrialState.FAIL)  # another worker gave up on us
        return fake_runner([])(*args, **kwargs)

    assert run_next(ledger, cfg, runner, _settings("s")) == PointState.PENDING
    (after,) = ledger.trials()
    assert after.state == TrialState.FAIL and "metrics" not in after.user_attrs
    assert points_to_enqueue([P], ledger.trials()) == [P]


def test_a_study_refuses_results_trained_under_other_settings(tmp_path):
    cfg = make_cfg(tmp_path)
    open_ledger(cfg, resolve_storage(cfg), create=True)
    threads_only = cfg.model_copy(deep=True)
    threads_only.model.threads = 3  # set per worker; not a different experiment
    open_ledger(threads_only, resolve_storage(cfg), create=True)
    changed = cfg.model_copy(deep=True)
    changed.train.epochs = 3.0
    with pytest.raises(UserError, match="different data/model/train"):
        open_ledger(changed, resolve_storage(cfg), create=True)


# ----------------------------------------------------------------------------------- retry rules (pure)


@pytest.mark.parametrize("trials, expected", [
    ([], True),
    ([(TrialState.COMPLETE, {})], False),
    ([(TrialState.WAITING, {})], False),
    ([(TrialState.RUNNING, {})], False),
    ([(TrialState.FAIL, {A_ERROR: "boom", A_SESSION: "before"})], True),  # the next sweep retries a run that raised
    ([(TrialState.FAIL, {A_SESSION: "before"})] * 3, True),  # lost (worker killed) too often last time: again
    ([(TrialState.FAIL, {A_INTERRUPTED: True, A_SESSION: "now"})] * 3, True),  # Ctrl-C is not the run's fault
    ([(TrialState.PRUNED, {})], True),  # never ran
    ([(TrialState.FAIL, {A_ERROR: "boom", A_SESSION: "now"}), (TrialState.COMPLETE, {})], False),
])
def test_which_points_are_enqueued(trials, expected):
    """What a sweep queues when it starts (the only time it queues: a run that raises is not retried by the
    sweep it raised in, and a lost one is re-queued by optuna's retry callback, a bounded number of times)."""
    ts = [trial(P, state, i, **attrs) for i, (state, attrs) in enumerate(trials)]
    assert points_to_enqueue([P], ts) == ([P] if expected else [])


def test_point_states_and_errors():
    q, r, s = GridPoint("el", 16, 0), GridPoint("ar", 32, 0), GridPoint("el", 32, 0)
    trials = [
        trial(P, TrialState.FAIL, 0, **{A_ERROR: "ValueError: x", A_SESSION: "a"}),
        trial(P, TrialState.COMPLETE, 1),
        trial(q, TrialState.FAIL, 2, **{A_ERROR: "RuntimeError: injected", A_SESSION: "a"}),
        trial(r, TrialState.FAIL, 3, **{A_SESSION: "a"}),  # lost, will be retried
        trial(s, TrialState.RUNNING, 4),
    ]
    states = {st.point: (st.state, st.error) for st in point_statuses([P, q, r, s], trials)}
    assert states == {
        P: (PointState.DONE, None), q: (PointState.FAILED, "RuntimeError: injected"),
        r: (PointState.PENDING, None), s: (PointState.RUNNING, None),
    }
    assert [t.number for t in session_failures(trials, "a")] == [0, 2]


# ------------------------------------------------------------------------------ changed data (pure)

OLD, NEW = {"ar": "old-data"}, {"ar": "new-data"}


@pytest.mark.parametrize("trials, fingerprints, state, result", [
    ([(TrialState.COMPLETE, {A_DATA: "old-data"})], OLD, PointState.DONE, 0),
    ([(TrialState.COMPLETE, {A_DATA: "old-data"})], NEW, PointState.STALE, None),
    ([(TrialState.COMPLETE, {})], NEW, PointState.DONE, 0),  # recorded before fingerprints: taken as current
    ([(TrialState.COMPLETE, {A_DATA: "old-data"})], {}, PointState.DONE, 0),  # data unreadable now: not judged
    ([(TrialState.COMPLETE, {A_DATA: "old-data"}), (TrialState.WAITING, {})], NEW, PointState.STALE, None),
    ([(TrialState.COMPLETE, {A_DATA: "old-data"}), (TrialState.RUNNING, {})], NEW, PointState.RUNNING, None),
    ([(TrialState.COMPLETE, {A_DATA: "old-data"}), (TrialState.FAIL, {A_ERROR: "boom", A_SESSION: "x"})],
     NEW, PointState.FAILED, None),
    ([(TrialState.COMPLETE, {A_DATA: "old-data"}), (TrialState.COMPLETE, {A_DATA: "new-data"})], NEW,
     PointState.DONE, 1),
    # data edited and then restored: the older result, on that data, is current again
    ([(TrialState.COMPLETE, {A_DATA: "old-data"}), (TrialState.COMPLETE, {A_DATA: "new-data"})], OLD,
     PointState.DONE, 0),
])
def test_a_result_on_other_data_is_stale(trials, fingerprints, state, result):
    ts = [trial(P, st, i, **attrs) for i, (st, attrs) in enumerate(trials)]
    (status,) = point_statuses([P], ts, fingerprints=fingerprints)
    assert status.state == state
    assert (status.result.number if status.result else None) == result
    if state == PointState.STALE:
        assert status.outdated.number == 0


def test_stale_points_are_rerun_and_left_out_of_runs_csv():
    q = GridPoint("el", 16, 0)
    trials = [trial(P, TrialState.COMPLETE, 0, metrics={"chrf": 1.0}, **{A_DATA: "old-data"}),
              trial(q, TrialState.COMPLETE, 1, metrics={"chrf": 2.0})]
    fingerprints = {"ar": "new-data", "el": "el-data"}
    assert points_to_enqueue([P, q], trials, fingerprints=fingerprints) == [P]  # el unchanged: not re-run
    _, rows = runs_table(point_statuses([P, q], trials, fingerprints=fingerprints))
    assert [r["language"] for r in rows] == ["el"]  # the outdated Arabic result is not a result
    # A sweep queues only when it starts: a re-run whose result is outdated again (another machine's data
    # differs, or the file changed meanwhile) waits for the next sweep, so machines cannot loop forever.
    rerun = trial(P, TrialState.COMPLETE, 2, **{A_DATA: "third-data", A_SESSION: "s"})
    assert points_to_enqueue([P, q], [*trials, rerun], fingerprints=fingerprints) == [P]


def test_stale_notice_names_the_language_the_runs_and_why():
    points = [GridPoint("el", 32, 0), GridPoint("el", 16, 0)]
    assert stale_notices({"el": points}) == ["el: data changed since its runs; re-running 2 runs (el-32-s0, el-16-s0)"]
    assert stale_notices({"hi": points[:1]}) == ["hi: data changed since its runs; re-running 1 run (el-32-s0)"]
    assert stale_notices({}) == []


def test_a_point_whose_result_is_outdated_is_queued_and_run_on_the_new_data(tmp_path):
    cfg = make_cfg(tmp_path, sizes=[16])
    spec = resolve_storage(cfg)
    old, _ = prepare(cfg, spec, sweep_points(cfg), {"ar": "old-data"})
    assert {t.user_attrs.get(A_DATA) for t in old.trials() if t.user_attrs["language"] == "ar"} == {"old-data"}
    worker_loop(old, cfg, fake_runner([]), _settings("s1"))  # recorded when queued, and by the worker
    new, queued = prepare(cfg, spec, sweep_points(cfg), {"ar": "new-data"})
    assert queued == 1  # only ar's result is outdated
    calls: list[str] = []
    worker_loop(new, cfg, fake_runner(calls), _settings("s2"))
    (latest,) = [t for t in new.trials() if t.user_attrs["point"] == P.key][-1:]
    assert calls == [P.key] and latest.user_attrs[A_DATA] == "new-data" and latest.state == TrialState.COMPLETE


# ------------------------------------------------------------------------------------------ runs.csv


def test_runs_table_one_row_per_done_point_from_its_latest_result():
    q = GridPoint("el", 16, 0)
    trials = [
        trial(P, TrialState.COMPLETE, 0, metrics={"chrf": 10.0}, n_tokens=5, train_seconds=1.5),
        trial(P, TrialState.COMPLETE, 3, metrics={"chrf": 20.0, "bleu": 3.0}, n_tokens=5, train_seconds=2.5),
        trial(q, TrialState.FAIL, 1, **{A_ERROR: "x"}),
    ]
    columns, rows = runs_table(point_statuses([P, q], trials))
    assert columns[:4] == ["language", "n_pairs", "n_tokens", "seed"]
    assert columns[4:8] == ["chrf", "bleu", "status", "train_seconds"]
    assert rows == [{
        "language": "ar", "n_pairs": 16, "n_tokens": 5, "seed": 0, "chrf": 20.0, "bleu": 3.0,
        "status": "complete", "train_seconds": 2.5, "eval_seconds": None, "steps": None, "run_dir": None,
        "trial": 3,
    }]


def test_csv_write_is_atomic(tmp_path):
    path = tmp_path / "runs.csv"
    write_csv_atomic(path, ["a", "b"], [{"a": 1, "b": None}])
    assert path.read_text() == "a,b\n1,\n"
    with pytest.raises(ValueError):  # a row that does not fit the columns fails mid-write…
        write_csv_atomic(path, ["a"], [{"a": 2}, {"zzz": 3}])
    assert path.read_text() == "a,b\n1,\n"  # …and the old file is untouched, no temporary left behind
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


# ----------------------------------------------------------------------------------------------- ETA


def test_run_time_prediction_recovers_a_linear_cost():
    done = [(n, 2.0 + 0.01 * n) for n in (100, 200, 400)]
    assert predict_seconds(done, 1000) == pytest.approx(12.0)
    assert predict_seconds([(100, 5.0)], 300) == pytest.approx(15.0)  # one size: proportional
    assert predict_seconds([], 300) is None


def test_summary_counts_elapsed_and_remaining():
    t0 = datetime(2024, 1, 1, 12, 0, 0)
    points = [GridPoint("ar", n, 0) for n in (100, 200, 400, 800)]
    trials = []
    for i, n in enumerate((100, 200)):
        t = trial(points[i], TrialState.COMPLETE, i)
        t.datetime_start, t.datetime_complete = t0, t0 + timedelta(seconds=2 + 0.01 * n)
        trials.append(t)
    statuses = point_statuses(points, trials)
    prog = summarize(statuses, now=(t0 + timedelta(seconds=100)).timestamp(), workers=2)
    assert (prog.total, prog.done, prog.pending, prog.running, prog.failed) == (4, 2, 2, 0, 0)
    assert prog.run_seconds == pytest.approx(3.0 + 4.0)
    assert prog.elapsed_seconds == pytest.approx(4.0)  # first start → last finish
    assert prog.remaining_seconds == pytest.approx(((2 + 4) + (2 + 8)) / 2)


# ------------------------------------------------------------------------------------ worker loop


def test_resolve_runner(tmp_path):
    assert resolve_runner("planner.sweep.identity:grid_points") is grid_points
    plugin = tmp_path / "my_trainer.py"
    plugin.write_text("def train(cfg, language, n_pairs, seed, run_dir=None, progress=True):\n    return 1\n")
    assert resolve_runner(f"{plugin}:train")(None, "ar", 1, 0) == 1
    for bad in ("nocolon", "planner.sweep:nope", "no_such_module_xyz:f", f"{tmp_path}/missing.py:f"):
        with pytest.raises(UserError):
            resolve_runner(bad)


def _settings(session: str, max_failures: int | None = None) -> WorkerSettings:
    return WorkerSettings(session=session, max_failures=max_failures, poll_seconds=0.2)


def _sweep(cfg, ledger, runner, session: str, max_failures: int | None = None) -> None:
    """What one `planner sweep` does in-process: prepare (queue the missing points), then one worker."""
    prepare(cfg, resolve_storage(cfg), sweep_points(cfg), ledger.fingerprints)
    worker_loop(ledger, cfg, runner, _settings(session, max_failures))


def test_worker_loop_completes_the_grid_once_and_records_failures(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    points = grid_points(cfg)
    calls: list[str] = []
    _sweep(cfg, ledger, fake_runner(calls, fail={"el-16-s0"}), "one")
    assert sorted(calls) == sorted(p.key for p in points)  # each point once; the failure not retried
    statuses = {s.point.key: s for s in point_statuses(points, ledger.trials())}
    assert statuses["el-16-s0"].state == PointState.FAILED
    assert statuses["el-16-s0"].error == "RuntimeError: injected failure at el-16-s0"
    assert all(s.state == PointState.DONE for k, s in statuses.items() if k != "el-16-s0")
    done = statuses["ar-32-s0"].result.user_attrs
    assert done["metrics"] == {"chrf": chrf_law(32), "loss": 1 / 32} and done["n_tokens"] == 7 * 32
    assert done["run_dir"] == str(cfg.out / "runs" / "ar-32-s0")

    assert export_runs(ledger, points, cfg.out / "runs.csv") == 3
    with open(cfg.out / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["language"], int(r["n_pairs"])) for r in rows) == [("ar", 16), ("ar", 32), ("el", 32)]
    assert all(float(r["chrf"]) == pytest.approx(chrf_law(int(r["n_pairs"]))) for r in rows)

    calls.clear()  # a later sweep retries only the failed point
    _sweep(cfg, ledger, fake_runner(calls), "two")
    assert calls == ["el-16-s0"]
    assert all(s.state == PointState.DONE for s in point_statuses(points, ledger.trials()))


def test_max_failures_stops_the_sweep(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    calls: list[str] = []
    everything = {p.key for p in grid_points(cfg)}
    _sweep(cfg, ledger, fake_runner(calls, fail=everything), "s", max_failures=2)
    assert len(calls) == 2 and len(session_failures(ledger.trials(), "s")) == 2


def test_worker_waits_for_a_lost_run_and_retries_it(tmp_path):
    cfg = make_cfg(tmp_path, sizes=[16])
    ledger, _ = prepare(cfg, resolve_storage(cfg), sweep_points(cfg), {})
    # A run taken by a worker that then died: RUNNING, its heartbeat stopped.
    dead = ledger.study.ask()
    ledger.storage.record_heartbeat(dead._trial_id)
    calls: list[str] = []
    started = time.monotonic()
    worker_loop(ledger, cfg, fake_runner(calls), _settings("new"))
    assert sorted(calls) == sorted(p.key for p in grid_points(cfg))  # the lost point ran once, after the grace
    assert time.monotonic() - started >= 2.5
    states = [t.state for t in ledger.trials() if t.user_attrs["point"] == dead.user_attrs["point"]]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]


def test_status_table(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    _sweep(cfg, ledger, fake_runner([], fail={"el-16-s0"}), "s")
    text = format_status(point_statuses(grid_points(cfg), ledger.trials()), time.time())
    lines = text.splitlines()
    assert lines[0].split() == ["language", "pairs", "done", "running", "failed", "pending", "stale", "mean", "run"]
    assert lines[2].split()[:6] == ["ar", "16", "1", "0", "0", "0"]
    assert lines[4].split()[:6] == ["el", "16", "0", "0", "1", "0"]
    assert "3/4 done, 0 running, 1 failed, 0 pending, 0 stale" in text
    assert "failed el-16-s0: RuntimeError: injected failure at el-16-s0" in text


def test_a_ctrl_c_swallowed_where_it_landed_still_stops_the_sweep():
    """Python raises KeyboardInterrupt wherever the orchestrator's main thread is when SIGINT is handled; in a
    finalizer it is printed as ignored and lost (once, a sweep then reported its interrupted worker as
    "stopped abnormally", exit 1). The orchestrator's flag remembers it and raises it again at its next check."""
    import os
    import signal
    import time

    from core.signals import interrupt_flag

    before = signal.getsignal(signal.SIGINT)
    with interrupt_flag() as check:
        check()  # nothing yet
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)
        except KeyboardInterrupt:
            pass  # swallowed, as a finalizer would
        with pytest.raises(KeyboardInterrupt):
            check()
    assert signal.getsignal(signal.SIGINT) is before
