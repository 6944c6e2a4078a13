"""Each local sweep worker owns its GPUs (`sweep.devices`, `sweep.gpus_per_run`): worker k runs with
CUDA_VISIBLE_DEVICES set to its slice, the slice is recorded on every run, and a machine without GPUs
sweeps exactly as before. No GPU is needed: the ids are only passed on.

The runner below is loaded by the workers through the hidden `--runner FILE.py:function` option; it
records the CUDA_VISIBLE_DEVICES each run saw and when it ran.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

LOG_ENV = "DEVICES_TEST_LOG"
THIS = Path(__file__).resolve()


# ------------------------------------------------------------------------------- the runner (in workers)


@dataclass
class _Result:
    metrics: dict
    n_tokens: int
    train_seconds: float = 0.01
    eval_seconds: float = 0.0
    run_dir: str = ""
    steps: int = 1
    samples: list = field(default_factory=list)


def _both_workers_started(directory: Path, workers: int = 2) -> None:
    """A worker's first run waits (up to a minute) until every worker has one: both slices get runs
    however late a worker starts on a busy machine, and their first runs overlap in time."""
    directory.mkdir(exist_ok=True)
    mine = directory / str(os.getpid())
    if mine.exists():
        return
    mine.touch()
    deadline = time.monotonic() + 60
    while len(list(directory.iterdir())) < workers and time.monotonic() < deadline:
        time.sleep(0.02)


def recording_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    log = Path(os.environ[LOG_ENV])
    _both_workers_started(log.parent / "started")
    start = time.time()
    time.sleep(0.2)
    with open(log, "a") as f:
        f.write(json.dumps({"point": f"{language}-{n_pairs}-s{seed}", "pid": os.getpid(), "start": start,
                            "end": time.time(), "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\n")
    return _Result({"loss": 1.0 / n_pairs}, n_tokens=7 * n_pairs, run_dir=str(run_dir or ""))


# ----------------------------------------------------------------------------------------- helpers


def _corpus(path: Path) -> Path:
    lines = [json.dumps({"source": f"Sentence {i}.", "target": f"{lang} {i}.", "language": lang})
             for lang in ("ar", "el") for i in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_config(tmp_path: Path, **sweep) -> Path:
    cfg = {
        "experiment": "devices",
        "output_dir": str(tmp_path / "out"),
        "languages": ["ar", "el"],
        "data": {"source": str(_corpus(tmp_path / "corpus.jsonl")), "test_size": 10},
        "sweep": {"sizes": [16, 32], "seeds": [0, 1], "heartbeat_seconds": 1, "grace_seconds": 5, **sweep},
    }
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _sweep_config(**sweep):
    from core.config import config_from_dict

    return config_from_dict({"sweep": sweep}).sweep


# ------------------------------------------------------------------------------ resolving the devices


def test_auto_without_gpus_is_todays_sweep():
    from planner.resources import device_slices, local_workers

    for workers in (None, 3):
        sweep = _sweep_config(**({} if workers is None else {"workers": workers}))
        slices = device_slices(sweep, env={}, count=lambda: 0)
        assert slices == [] and local_workers(None, sweep, slices) == (workers or 1)
        assert local_workers(5, sweep, slices) == 5  # --workers still overrides; nothing to share out


def test_slices_and_the_workers_they_default_to():
    from planner.resources import device_slices, local_workers

    sweep = _sweep_config(gpus_per_run=2)
    assert device_slices(sweep, env={}, count=lambda: 4) == ["0,1", "2,3"]
    assert local_workers(None, sweep, ["0,1", "2,3"]) == 2
    assert local_workers(1, sweep, ["0,1", "2,3"]) == 1
    listed = _sweep_config(devices=[3, 1, 0, 2, 5], gpus_per_run=2)  # the order given; GPU 5 stays idle
    assert device_slices(listed, env={}, count=lambda: 0) == ["3,1", "0,2"]
    # Under a scheduler's CUDA_VISIBLE_DEVICES the ids count its entries, never the machine's other GPUs.
    assert device_slices(sweep, env={"CUDA_VISIBLE_DEVICES": "4,5,6,7"}, count=lambda: 4) == ["4,5", "6,7"]
    assert device_slices(_sweep_config(devices=[1]), env={"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"}) == ["GPU-b"]


def test_devices_that_cannot_be_shared_out_are_user_errors():
    from core.errors import UserError
    from planner.resources import device_slices, local_workers

    with pytest.raises(UserError, match="sweep.gpus_per_run is 2, but sweep.devices: auto finds 1 GPU"):
        device_slices(_sweep_config(gpus_per_run=2), env={}, count=lambda: 1)
    with pytest.raises(UserError, match="CUDA_VISIBLE_DEVICES='0,1' makes 2 GPU"):
        device_slices(_sweep_config(devices=[0, 2]), env={"CUDA_VISIBLE_DEVICES": "0,1"})
    with pytest.raises(UserError, match="sweep.workers asks for 3 workers, but .* give 2 GPU slice"):
        local_workers(None, _sweep_config(workers=3), ["0", "1"])


# ------------------------------------------------------------------------------------- planner sweep


def test_each_worker_runs_on_its_own_slice(tmp_path):
    cfg = _write_config(tmp_path, devices=[0, 1, 2, 3], gpus_per_run=2)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update({LOG_ENV: str(tmp_path / "runs.log"), "PLANNER_CACHE_DIR": str(tmp_path / "cache")})
    result = subprocess.run([sys.executable, "-m", "planner", "sweep", "--config", str(cfg), "--no-progress",
                             f"--runner={THIS}:recording_runner"], env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 worker(s)" in result.stdout and "on GPUs 0,1 | 2,3" in result.stdout, result.stdout
    runs = [json.loads(line) for line in (tmp_path / "runs.log").read_text().splitlines()]
    assert len(runs) == 8 and len({r["point"] for r in runs}) == 8
    assert {r["visible"] for r in runs} == {"0,1", "2,3"}  # only these, and both used
    assert len({r["pid"] for r in runs}) == 2
    for pid in {r["pid"] for r in runs}:  # a worker keeps its slice
        assert len({r["visible"] for r in runs if r["pid"] == pid}) == 1
    for a in runs:  # no two runs at the same time share a slice
        for b in runs:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["visible"] != b["visible"], (a, b)
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    seen = {r["point"]: r["visible"] for r in runs}
    assert len(rows) == 8
    assert all(row["devices"] == seen[f"{row['language']}-{row['n_pairs']}-s{row['seed']}"] for row in rows)


def test_status_shows_where_a_running_run_is(tmp_path):
    from optuna.trial import TrialState, create_trial

    from planner.commands.status import format_status
    from planner.sweep.identity import A_DEVICES, GridPoint
    from planner.sweep.state import point_statuses

    point = GridPoint("ar", 16, 0)
    running = create_trial(state=TrialState.RUNNING, user_attrs={**point.user_attrs(), A_DEVICES: "2,3"})
    text = format_status(point_statuses([point, GridPoint("ar", 32, 0)], [running]), time.time())
    assert "running ar-16-s0 on GPU(s) 2,3" in text


# ------------------------------------------------------------------------------------- user mistakes

MISTAKES = {
    "duplicate ids": ({"devices": [0, 1, 1]}, [], "'sweep.devices'", "must not repeat"),
    "fewer devices than one run needs": ({"devices": [0], "gpus_per_run": 2}, [], "sweep.devices lists 1",
                                         "sweep.gpus_per_run (2)"),
    "more workers than slices": ({"devices": [0, 1, 2, 3], "gpus_per_run": 2}, ["--workers", "3"],
                                 "--workers asks for 3 workers", "give 2 GPU slice(s) (0,1; 2,3)"),
    "sweep.workers above the slices": ({"devices": [0, 1], "workers": 3}, [], "sweep.workers asks for 3",
                                       "use at most 2 workers"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_device_mistakes_exit_2_in_one_paragraph(tmp_path, capsys, name):
    from planner.cli import main

    sweep, flags, *needles = MISTAKES[name]
    cfg = _write_config(tmp_path, **sweep)
    rc = main(["sweep", "--config", str(cfg), f"--runner={THIS}:recording_runner", *flags])
    err = capsys.readouterr().err
    text = " ".join(err.split())
    assert rc == 2 and text.startswith("error:") and "Traceback" not in err and "\n\n" not in err.strip(), err
    assert all(n in text for n in needles), text
    assert not (tmp_path / "out").exists()  # refused before anything was written
