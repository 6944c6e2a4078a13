"""The sweep's ledger on real optuna storages: grid, storage resolution, atomic claims, retry rules,
stale detection, runs.csv export, ETA, and the worker loop run in-process with injected runners."""

from __future__ import annotations

import csv
import multiprocessing
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
from planner.sweep import (
    A_DATA, A_ERROR, A_HEARTBEAT, A_INTERRUPTED, A_SESSION, A_SUPERSEDED, MAX_LOST_PER_SESSION, GridPoint,
    Ledger, PointState, StorageSpec, WorkerSettings, export_runs, run_claimed, grid_points, is_silent, open_ledger,
    open_storage, point_statuses, points_to_enqueue, predict_seconds, resolve_runner, resolve_storage, runs_table,
    session_failures, stale_notices, summarize, worker_loop, write_csv_atomic,
)


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


def _pop_all(target: str, kind: str, keys: list[str], out) -> None:
    storage = open_storage(StorageSpec(kind, target), create=False)
    ledger = Ledger(storage, storage.get_study_id_from_name("race"), "race")
    got = []
    while (t := ledger.pop(set(keys))) is not None:
        got.append(t.number)
    out.put(got)


@pytest.mark.parametrize("kind", ["rdb", "journal"])
def test_concurrent_pops_never_hand_out_a_trial_twice(tmp_path, kind):
    # Without BEGIN IMMEDIATE, three processes on SQLite popped 16 of 300 trials twice.
    target = f"sqlite:///{tmp_path / 'race.db'}" if kind == "rdb" else str(tmp_path / "race.log")
    storage = open_storage(StorageSpec(kind, target), create=True)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "race")
    points = [GridPoint("ar", n, 0) for n in range(1, 61)]
    Ledger(storage, study_id, "race").enqueue(points)
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_pop_all, args=(target, kind, [p.key for p in points], queue)) for _ in range(3)]
    for p in procs:
        p.start()
    popped = [n for _ in procs for n in queue.get(timeout=120)]
    for p in procs:
        p.join()
    assert sorted(popped) == list(range(60))


@pytest.fixture
def ledger(tmp_path):
    cfg = make_cfg(tmp_path)
    return open_ledger(cfg, resolve_storage(cfg), create=True)


def test_claim_backs_off_from_a_point_running_or_done_elsewhere(ledger):
    ledger.enqueue([P, P])  # e.g. two sweeps reconciled the grid at the same moment
    first, second = ledger.pop({P.key}), ledger.pop({P.key})
    assert first.number != second.number
    assert ledger.claim(first, "s", "w1") is False  # sees `second` RUNNING
    assert ledger.claim(second, "s", "w2") is True  # `first` has stepped aside
    by_number = {t.number: t for t in ledger.trials()}
    assert by_number[first.number].state == TrialState.PRUNED and A_SUPERSEDED in by_number[first.number].user_attrs
    assert ledger.finish(second, TrialState.COMPLETE, 1.0)
    ledger.enqueue([P])
    third = ledger.pop({P.key})
    assert ledger.claim(third, "s", "w3") is False  # a finished point never reruns
    assert ledger.pop({P.key}) is None


def test_pop_follows_the_sweeps_order_not_the_queues(ledger):
    """A point re-queued late (after a lost run) still runs before points that come after it in the
    sweep's order, e.g. an adaptive start design before mixture runs queued earlier."""
    mixture, start_a, start_b = GridPoint("", 150, 0, ("ar", "el")), GridPoint("ar", 150, 0), GridPoint("el", 50, 0)
    ledger.enqueue([mixture, start_b])
    ledger.enqueue([start_a])  # re-queued last
    order = [start_a.key, start_b.key, mixture.key]
    assert [ledger.pop(order).user_attrs["point"] for _ in range(3)] == order
    assert ledger.pop(order) is None


def test_a_silent_run_is_failed_once_and_its_owner_cannot_complete_it(ledger):
    ledger.enqueue([P])
    t = ledger.pop({P.key})
    ledger.claim(t, "s", "w")
    assert ledger.fail_silent(grace_seconds=3) == []  # fresh heartbeat
    ledger.set_attrs(t, {A_HEARTBEAT: time.time() - 10})
    assert ledger.fail_silent(grace_seconds=3) == [t.number]
    assert ledger.fail_silent(grace_seconds=3) == []  # failed once, not twice
    assert ledger.finish(t, TrialState.COMPLETE, 1.0) is False  # the owner's late result is discarded
    assert points_to_enqueue([P], ledger.trials(), "s") == [P]  # and the point is retried


def test_a_run_that_ends_after_being_declared_lost_is_discarded(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    ledger.enqueue([P])
    t = ledger.pop({P.key})
    ledger.claim(t, "s", "slow")

    def runner(*args, **kwargs):
        assert ledger.finish(t, TrialState.FAIL)  # another worker gave up on us meanwhile
        return fake_runner([])(*args, **kwargs)

    assert run_claimed(ledger, t, cfg, runner, heartbeat_seconds=1) == PointState.PENDING
    (after,) = ledger.trials()
    assert after.state == TrialState.FAIL and "metrics" not in after.user_attrs
    assert points_to_enqueue([P], ledger.trials(), "s") == [P]


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
    ([(TrialState.FAIL, {A_ERROR: "boom", A_SESSION: "now"})], False),  # raised in this sweep: not again
    ([(TrialState.FAIL, {A_ERROR: "boom", A_SESSION: "before"})], True),  # a later sweep retries
    ([(TrialState.FAIL, {A_SESSION: "now"})], True),  # lost (worker killed): retried
    ([(TrialState.FAIL, {A_SESSION: "now"})] * MAX_LOST_PER_SESSION, False),  # …but not forever
    ([(TrialState.FAIL, {A_INTERRUPTED: True, A_SESSION: "now"})] * 3, True),  # Ctrl-C is not the run's fault
    ([(TrialState.PRUNED, {A_SUPERSEDED: "dup"})], True),  # a duplicate that never ran
    ([(TrialState.FAIL, {A_ERROR: "boom", A_SESSION: "now"}), (TrialState.COMPLETE, {})], False),
])
def test_which_points_are_enqueued(trials, expected):
    ts = [trial(P, state, i, **attrs) for i, (state, attrs) in enumerate(trials)]
    assert points_to_enqueue([P], ts, session="now") == ([P] if expected else [])


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


def test_silence_uses_the_heartbeat_else_the_start_time():
    now = time.time()
    assert not is_silent(trial(P, TrialState.RUNNING, **{A_HEARTBEAT: now - 2}), now, 3)
    assert is_silent(trial(P, TrialState.RUNNING, **{A_HEARTBEAT: now - 4}), now, 3)
    started = trial(P, TrialState.RUNNING)
    started.datetime_start = datetime.now() - timedelta(seconds=10)
    assert is_silent(started, now, 3) and not is_silent(started, now, 30)


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


def test_stale_points_are_rerun_once_per_session_and_left_out_of_runs_csv():
    q = GridPoint("el", 16, 0)
    trials = [trial(P, TrialState.COMPLETE, 0, metrics={"chrf": 1.0}, **{A_DATA: "old-data"}),
              trial(q, TrialState.COMPLETE, 1, metrics={"chrf": 2.0})]
    fingerprints = {"ar": "new-data", "el": "el-data"}
    assert points_to_enqueue([P, q], trials, "s", fingerprints) == [P]  # el unchanged: not re-run
    _, rows = runs_table(point_statuses([P, q], trials, fingerprints=fingerprints))
    assert [r["language"] for r in rows] == ["el"]  # the outdated Arabic result is not a result
    # This session re-ran it, but the result is outdated again (another machine's data differs, or the
    # file changed meanwhile): not re-run again by the same session, or machines could loop forever.
    rerun = trial(P, TrialState.COMPLETE, 2, **{A_DATA: "third-data", A_SESSION: "s"})
    assert points_to_enqueue([P, q], [*trials, rerun], "s", fingerprints) == []
    assert points_to_enqueue([P, q], [*trials, rerun], "next", fingerprints) == [P]


def test_stale_notice_names_the_language_the_runs_and_why():
    points = [GridPoint("el", 32, 0), GridPoint("el", 16, 0)]
    assert stale_notices({"el": points}) == ["el: data changed since its runs; re-running 2 runs (el-32-s0, el-16-s0)"]
    assert stale_notices({"hi": points[:1]}) == ["hi: data changed since its runs; re-running 1 run (el-32-s0)"]
    assert stale_notices({}) == []


def test_a_claim_does_not_back_off_from_an_outdated_result(tmp_path):
    cfg = make_cfg(tmp_path)
    spec = resolve_storage(cfg)
    old = open_ledger(cfg, spec, create=True, fingerprints={"ar": "old-data"})
    old.enqueue([P])
    first = old.pop({P.key})
    assert first.user_attrs[A_DATA] == "old-data"  # recorded when queued…
    assert old.claim(first, "s1", "w") and old.finish(first, TrialState.COMPLETE, 1.0)
    new = open_ledger(cfg, spec, create=True, fingerprints={"ar": "new-data"})
    assert points_to_enqueue([P], new.trials(), "s2", new.fingerprints) == [P]
    new.enqueue([P])
    second = new.pop({P.key})
    assert new.claim(second, "s2", "w") is True  # the done trial is on other data: not a reason to step aside
    (claimed,) = [t for t in new.trials() if t.number == second.number]
    assert claimed.user_attrs[A_DATA] == "new-data"  # …and again by the worker that claims it


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
    assert resolve_runner("planner.sweep:grid_points") is grid_points
    plugin = tmp_path / "my_trainer.py"
    plugin.write_text("def train(cfg, language, n_pairs, seed, run_dir=None, progress=True):\n    return 1\n")
    assert resolve_runner(f"{plugin}:train")(None, "ar", 1, 0) == 1
    for bad in ("nocolon", "planner.sweep:nope", "no_such_module_xyz:f", f"{tmp_path}/missing.py:f"):
        with pytest.raises(UserError):
            resolve_runner(bad)


def _settings(session: str, max_failures: int | None = None) -> WorkerSettings:
    return WorkerSettings(session=session, max_failures=max_failures, heartbeat_seconds=1, grace_seconds=3)


def test_worker_loop_completes_the_grid_once_and_records_failures(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    points = grid_points(cfg)
    calls: list[str] = []
    worker_loop(ledger, cfg, fake_runner(calls, fail={"el-16-s0"}), _settings("one"))
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
    worker_loop(ledger, cfg, fake_runner(calls), _settings("two"))
    assert calls == ["el-16-s0"]
    assert all(s.state == PointState.DONE for s in point_statuses(points, ledger.trials()))


def test_max_failures_stops_the_sweep(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    calls: list[str] = []
    everything = {p.key for p in grid_points(cfg)}
    worker_loop(ledger, cfg, fake_runner(calls, fail=everything), _settings("s", max_failures=2))
    assert len(calls) == 2 and len(session_failures(ledger.trials(), "s")) == 2


def test_worker_waits_for_a_lost_run_and_retries_it(tmp_path, ledger):
    cfg = make_cfg(tmp_path, sizes=[16])
    points = grid_points(cfg)
    # A run claimed by a worker that then died: RUNNING, heartbeat already 2 s old.
    ledger.enqueue(points[:1])
    dead = ledger.pop({points[0].key})
    ledger.claim(dead, "old", "gone:1")
    ledger.set_attrs(dead, {A_HEARTBEAT: time.time() - 2})
    calls: list[str] = []
    started = time.monotonic()
    worker_loop(ledger, cfg, fake_runner(calls), _settings("new"))
    assert sorted(calls) == sorted(p.key for p in points)  # the lost point ran once, after the grace
    assert time.monotonic() - started >= 0.9
    states = [t.state for t in ledger.trials() if t.user_attrs["point"] == points[0].key]
    assert states == [TrialState.FAIL, TrialState.COMPLETE]


def test_status_table(tmp_path, ledger):
    cfg = make_cfg(tmp_path)
    worker_loop(ledger, cfg, fake_runner([], fail={"el-16-s0"}), _settings("s"))
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

    from planner.sweep.orchestrate import InterruptFlag

    before = signal.getsignal(signal.SIGINT)
    with InterruptFlag() as flag:
        flag.check()  # nothing yet
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)
        except KeyboardInterrupt:
            pass  # swallowed, as a finalizer would
        with pytest.raises(KeyboardInterrupt):
            flag.check()
    assert signal.getsignal(signal.SIGINT) is before
