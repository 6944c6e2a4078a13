"""`planner sweep --submit slurm|local`: the sweep as scheduler jobs through submitit.

End to end with submitit's LocalExecutor (each job a real subprocess running the ordinary sweep against the
ledger): two jobs share the grid, a job killed mid-run (its whole process tree SIGKILLed, as Slurm kills a
job's cgroup) is retried by the next submission and nothing trains twice, and one real tiny training run
goes through a job. The Slurm path runs submitit's real SlurmExecutor against a stand-in `sbatch` that
keeps the batch script it is given. The runners below are loaded by the jobs' workers through the hidden
`--runner FILE.py:function` option and append one JSON line per run to the file named by SUBMIT_TEST_LOG.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

LOG_ENV = "SUBMIT_TEST_LOG"
THIS = Path(__file__).resolve()
POINTS = ["ar-16-s0", "ar-32-s0", "el-16-s0", "el-32-s0"]


# ------------------------------------------------------------------------------ runners (in the jobs)


@dataclass
class _Result:
    metrics: dict
    n_tokens: int
    train_seconds: float = 0.01
    eval_seconds: float = 0.0
    run_dir: str = ""
    steps: int = 1
    samples: list = field(default_factory=list)


def _record(language, n_pairs, seed, event: str) -> None:
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(json.dumps({"point": f"{language}-{n_pairs}-s{seed}", "event": event, "pid": os.getpid(),
                            "job": os.environ.get("SUBMITIT_LOCAL_JOB_ID"),
                            "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\n")


def _every_job_started(jobs: int) -> None:
    """A job's first run waits (up to a minute) until every job has one, so that however late a job starts
    on a busy machine, each gets work."""
    directory = Path(os.environ[LOG_ENV]).parent / "started"
    directory.mkdir(exist_ok=True)
    mine = directory / os.environ.get("SUBMITIT_LOCAL_JOB_ID", "?")
    if mine.exists():
        return
    mine.touch()
    deadline = time.monotonic() + 60
    while len(list(directory.iterdir())) < jobs and time.monotonic() < deadline:
        time.sleep(0.05)


def two_jobs_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    _every_job_started(2)
    _record(language, n_pairs, seed, "start")
    time.sleep(0.3)
    _record(language, n_pairs, seed, "end")
    return _Result({"loss": 1.0 / n_pairs}, n_tokens=7 * n_pairs, run_dir=str(run_dir or ""))


def hanging_once_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    """Hangs in the first attempt at ar-32 (the test kills its job there); every other run is quick."""
    _record(language, n_pairs, seed, "start")
    if (language, n_pairs) == ("ar", 32) and not any(c["event"] == "hang" for c in _calls_at(os.environ[LOG_ENV])):
        _record(language, n_pairs, seed, "hang")
        time.sleep(600)
    _record(language, n_pairs, seed, "end")
    return _Result({"loss": 1.0 / n_pairs}, n_tokens=7 * n_pairs, run_dir=str(run_dir or ""))


# ----------------------------------------------------------------------------------------- helpers


def _calls_at(path) -> list[dict]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(path))  # the jobs inherit the environment, as sbatch --export=ALL does
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    import planner.cluster as submit

    monkeypatch.setattr(submit, "POLL_SECONDS", 0.5)
    return path


def _write_config(tmp_path: Path, cluster: dict | None = None, **extra) -> Path:
    lines = [json.dumps({"source": f"Sentence {i}.", "target": f"{lang} {i}.", "language": lang})
             for lang in ("ar", "el") for i in range(60)]
    (tmp_path / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sweep = {"sizes": [16, 32], "seeds": [0], "heartbeat_seconds": 1, "grace_seconds": 3,
             "cluster": {"time_minutes": 10, **(cluster or {})}, **extra.pop("sweep", {})}
    cfg = {"experiment": "submit", "output_dir": str(tmp_path / "out"), "languages": ["ar", "el"],
           "data": {"source": str(tmp_path / "corpus.jsonl"), "test_size": 10}, "sweep": sweep, **extra}
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sweep(capsys, *args) -> tuple[int, str, str]:
    from planner.cli import main

    rc = main(["sweep", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def _trials_by_point(storage) -> dict[str, list[str]]:
    import optuna

    study = optuna.load_study(study_name="submit", storage=storage)
    out: dict[str, list[str]] = {}
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        out.setdefault(t.user_attrs["point"], []).append(t.state.name)
    return out


def _runs_csv(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _process_tree(root: int) -> list[int]:
    """`root` and every process descended from it, deepest first (read from /proc)."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parent.items() if ppid in frontier]
        tree += frontier
    return tree[::-1]


def _wait_until(predicate, seconds: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# ------------------------------------------------------------------------------- config and planning


def test_cluster_config_and_local_gpu_slices():
    from core.config import config_from_dict
    from core.errors import UserError
    from planner.cluster import local_job_devices

    sweep = config_from_dict({"sweep": {"gpus_per_run": 2, "cluster": {"gpus_per_job": 4, "jobs": 3}}}).sweep
    assert sweep.cluster.jobs == 3 and sweep.cluster.gpus_per_job == 4
    with pytest.raises(UserError, match=r"gpus_per_job \(3\) must be a multiple of sweep.gpus_per_run \(2\)"):
        config_from_dict({"sweep": {"gpus_per_run": 2, "cluster": {"gpus_per_job": 3}}})
    with pytest.raises(UserError, match="unknown key 'sweep.cluster.gpus'"):
        config_from_dict({"sweep": {"cluster": {"gpus": 1}}})
    # Local jobs on one 8-GPU machine never share a GPU; on a machine without GPUs every job gets "".
    slices = [str(i) for i in range(8)]
    assert local_job_devices(slices, 8, 1) == slices
    assert local_job_devices(slices, 2, 4) == ["0,1,2,3", "4,5,6,7"]
    assert local_job_devices([], 3, 1) == ["", "", ""]
    with pytest.raises(UserError, match=r"3 job\(s\) × 4 GPU slice\(s\).*give 8 slice"):
        local_job_devices(slices, 3, 4)


def test_each_job_gets_its_own_gpus(tmp_path, monkeypatch):
    """Local jobs take consecutive slices of sweep.devices; Slurm jobs take the scheduler's allocation
    (None: left to it); a CPU-only job hides every GPU ("") under either."""
    from core.config import load_config
    from planner.cluster import plan_submission

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    journal = str(tmp_path / "sweep.log")

    def plan(mode, **cluster):
        cfg = load_config(_write_config(tmp_path, cluster={"jobs": 2, **cluster}, sweep={"devices": [0, 1, 2, 3]}))
        p = plan_submission(cfg, mode, journal, None)
        return p.job_devices, p.workers_per_job, p.gpus_per_job

    assert plan("local", gpus_per_job=2) == (["0,1", "2,3"], 2, 2)
    assert plan("local") == (["0", "1"], 1, 1)
    assert plan("local", gpus_per_job=0) == (["", ""], 1, 0)
    assert plan("slurm", gpus_per_job=4) == ([None, None], 4, 4)
    assert plan("slurm", gpus_per_job=0) == (["", ""], 1, 0)
    assert not (tmp_path / "sweep.log").exists() and not (tmp_path / "out").exists()  # planning writes nothing


def test_the_plan_masks_the_password_and_lists_the_points(tmp_path):
    from core.config import load_config
    from planner.sweep.storage import StorageSpec
    from planner.cluster import SubmitPlan

    cfg = load_config(_write_config(tmp_path, cluster={"partition": "gpu", "account": "lab", "cpus_per_job": 8,
                                                       "mem_gb": 32, "slurm_params": {"qos": "high"}}))
    plan = SubmitPlan(mode="slurm", jobs=4, gpus_per_job=2, workers_per_job=2, job_devices=[None] * 4,
                      folder=tmp_path / "jobs", storage=StorageSpec("rdb", "postgresql://ann:s3cret@db.example.org/p"),
                      total=20, done=5, running=["ar-16-s0"], to_run=[f"el-{n}-s0" for n in range(14)], failed=2,
                      new_ledger=False)
    text = "\n".join(plan.describe(cfg))
    assert "4 slurm job(s), each: 2 GPU(s), 2 worker(s), 8 CPU(s), 32 GB, 10 min, partition gpu, account lab, " \
           "--qos=high" in text
    assert "postgresql://ann:***@db.example.org/p" in text and "s3cret" not in text
    assert "points: 20, done 5, running 1, to run 14 (el-0-s0, " in text and "el-11-s0 and 2 more)" in text
    assert "2 failed before, retried" in text


def test_dry_run_submits_nothing_and_writes_nothing(tmp_path, capsys, log):
    """No sbatch here, and none needed: the dry run reads the (missing) journal and stops."""
    cfg = _write_config(tmp_path, cluster={"jobs": 3, "gpus_per_job": 2, "partition": "gpu"})
    journal = tmp_path / "shared" / "sweep.log"
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "slurm", "--dry-run", "--storage", journal,
                          f"--runner={THIS}:two_jobs_runner")
    assert rc == 0, err
    assert "3 slurm job(s), each: 2 GPU(s), 2 worker(s), 10 min, partition gpu" in out
    assert f"storage: {journal} (new: nothing run yet)" in out
    assert f"job logs: {tmp_path / 'out' / 'jobs'}" in out
    assert "points: 4, done 0, running 0, to run 4 (ar-32-s0, el-32-s0, ar-16-s0, el-16-s0)" in out
    assert "nothing submitted" in out and "submitted: job" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "planner.yaml"]  # no out/, no journal


def test_points_are_queued_once_and_a_dry_run_reads_the_ledger_without_writing(tmp_path, capsys, log):
    """The submitter queues the grid before any job exists; queuing again adds nothing; a dry run on that
    ledger counts its points and leaves the file as it was."""
    from core.config import load_config
    from planner.sweep.storage import resolve_storage
    from planner.cluster import queue_points

    cfg_path = _write_config(tmp_path)
    journal = tmp_path / "sweep.log"
    spec = resolve_storage(load_config(cfg_path), str(journal))
    runner = f"{THIS}:two_jobs_runner"
    assert queue_points(load_config(cfg_path), spec, runner, runner) == 4
    assert queue_points(load_config(cfg_path), spec, runner, runner) == 0  # waiting points are not queued twice
    before = (journal.stat().st_mtime_ns, journal.read_bytes())
    rc, out, err = _sweep(capsys, "--config", cfg_path, "--submit", "local", "--dry-run", "--storage", journal,
                          f"--runner={runner}")
    assert rc == 0, err
    assert f"storage: {journal}\n" in out  # not "new"
    assert "points: 4, done 0, running 0, to run 4" in out
    assert (journal.stat().st_mtime_ns, journal.read_bytes()) == before
    assert not (tmp_path / "out" / "jobs").exists()


def test_slurm_refuses_a_local_sqlite_ledger(tmp_path, capsys, log):
    cfg = _write_config(tmp_path)
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "slurm", f"--runner={THIS}:two_jobs_runner")
    text = " ".join(err.split())
    assert rc == 2 and text.startswith("error:") and "Traceback" not in err
    assert "--submit slurm needs a storage every node can share" in text and "journal file" in text
    assert not (tmp_path / "out").exists()
    rc, _, err = _sweep(capsys, "--config", cfg, "--wait")
    assert rc == 2 and "go with --submit" in err
    rc, _, err = _sweep(capsys, "--config", cfg, "--submit", "local", "--workers", 2)
    assert rc == 2 and "Use --jobs N" in " ".join(err.split())


def test_slurm_submission_queues_once_and_sends_one_job_array(tmp_path, capsys, log, monkeypatch):
    """submitit's real SlurmExecutor against a stand-in sbatch that keeps its batch script: the grid is
    queued in the shared journal before the jobs exist, and the script asks for what sweep.cluster says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"srun": "exit 0", "sbatch": f'cp "$1" {tmp_path}/batch.sh; echo "Submitted batch job 4242"'}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = _write_config(tmp_path, cluster={"jobs": 2, "gpus_per_job": 2, "cpus_per_job": 8, "mem_gb": 16,
                                           "partition": "gpu", "account": "lab", "slurm_params": {"qos": "high"},
                                           "setup": ["module load cuda/12.1"]})
    journal = tmp_path / "shared" / "sweep.log"
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "slurm", "--storage", journal,
                          f"--runner={THIS}:two_jobs_runner")
    assert rc == 0, err
    assert "submitted: job 4242_0, job 4242_1" in out and "planner status" in out
    script = (tmp_path / "batch.sh").read_text()
    for line in ("--array=0-1", "--gpus-per-node=2", "--cpus-per-task=8", "--mem=16GB", "--time=10",
                 "--partition=gpu", "--account=lab", "--qos=high", "--ntasks-per-node=1", "--nodes=1",
                 "--signal=USR2@", "--job-name=planner-sweep-submit"):
        assert line in script, (line, script)
    assert "module load cuda/12.1" in script
    assert _trials_by_point(_journal(journal)) == {p: ["WAITING"] for p in POINTS}  # queued once, by the submitter
    assert list((tmp_path / "out" / "jobs").glob("*_submitted.pkl"))  # the pickled job the nodes will run
    assert _calls_at(log) == []  # nothing ran here


def _journal(path: Path):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


# ---------------------------------------------------------------------------------- local jobs, end to end


def test_two_local_jobs_share_the_grid_each_point_once(tmp_path, capsys, log):
    cfg = _write_config(tmp_path, cluster={"jobs": 2})
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "local", "--wait", f"--runner={THIS}:two_jobs_runner")
    assert rc == 0, (out, err)
    assert "2 local job(s), each: no GPU, 1 worker(s)" in out and "sweep: 4/4 points done" in out
    ends = [c for c in _calls_at(log) if c["event"] == "end"]
    assert sorted(c["point"] for c in ends) == POINTS  # every point exactly once
    assert len({c["job"] for c in ends}) == 2  # both jobs took runs
    assert {c["visible"] for c in ends} == {""}  # no GPU here: each job hides the machine's (none) from its runs
    assert _trials_by_point(f"sqlite:///{tmp_path / 'out' / 'sweep.db'}") == {p: ["COMPLETE"] for p in POINTS}
    assert sorted(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in _runs_csv(tmp_path)) == POINTS


@pytest.mark.slow  # three Python processes per job start and import the planner
def test_a_killed_job_is_retried_by_the_next_submission_and_nothing_trains_twice(tmp_path, capsys, log):
    cfg = _write_config(tmp_path)
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "local", f"--runner={THIS}:hanging_once_runner")
    assert rc == 0, err
    job_id = int(out.split("submitted: job ")[1].split(";")[0])
    _wait_until(lambda: any(c["event"] == "hang" for c in _calls_at(log)), what="the job to start ar-32")
    hanging = next(c["pid"] for c in _calls_at(log) if c["event"] == "hang")
    tree = _process_tree(job_id)
    assert hanging in tree  # the run's worker is the job's
    for pid in tree:  # all of it at once, as Slurm kills a job: no process gets to record anything
        os.kill(pid, signal.SIGKILL)
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "local", "--wait", f"--runner={THIS}:hanging_once_runner")
    assert rc == 0, (out, err)
    calls = _calls_at(log)
    assert sorted(c["point"] for c in calls if c["event"] == "end") == POINTS  # finished once each
    assert [c["point"] for c in calls if c["event"] == "start"].count("ar-32-s0") == 2  # killed, then retried
    trials = _trials_by_point(f"sqlite:///{tmp_path / 'out' / 'sweep.db'}")
    assert trials["ar-32-s0"] == ["FAIL", "COMPLETE"]  # lost with its job, then run by the next one
    assert all(states.count("COMPLETE") == 1 for states in trials.values())
    assert len(_runs_csv(tmp_path)) == 4


@pytest.mark.slow  # three Python processes per job start and import the planner
def test_a_real_tiny_run_trains_in_a_submitted_job(tmp_path, capsys, log):
    cfg = _write_config(
        tmp_path, sweep={"sizes": [16]}, data={"source": str(tmp_path / "corpus.jsonl"), "test_size": 20},
        model={"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        train={"epochs": 1, "batch_size": 8, "eval_size": 4, "max_new_tokens": 8, "samples": 1},
    )
    rc, out, err = _sweep(capsys, "--config", cfg, "--submit", "local", "--wait")
    assert rc == 0, (out, err)
    rows = _runs_csv(tmp_path)
    assert sorted(r["language"] for r in rows) == ["ar", "el"]
    assert all(float(r["loss"]) > 0 and int(r["n_tokens"]) > 0 for r in rows)
    assert all((tmp_path / "out" / "runs" / p).is_dir() for p in ("ar-16-s0", "el-16-s0"))
