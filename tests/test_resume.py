"""A final run killed with SIGKILL mid-training resumes from its checkpoint and gets the numbers of the
uninterrupted run (same machine, same config, same seed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from planner.cli import main
from trainers import resume

ROOT = Path(__file__).resolve().parent.parent


def _config(out: Path) -> dict:
    return {
        "experiment": "resume",
        "output_dir": str(out),
        "languages": ["de", "es"],
        "data": {"source": "demo", "test_size": 20},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        "train": {"epochs": 1, "batch_size": 4, "eval_size": 4, "max_new_tokens": 6, "samples": 0},
        "sweep": {"sizes": [16, 32, 64], "seeds": [0], "workers": 1},
        "fit": {"metric": "loss", "law": "power", "bootstrap": 50},
        "budget": {"total": 240, "unit": "pairs", "max_epochs": 1},
        "final": {"baselines": [], "seeds": [0], "epochs": 2, "checkpoint_steps": 5},
    }


def test_checkpoint_file_round_trip_and_refuses_other_runs(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    model(torch.ones(1, 3)).sum().backward()
    opt.step(), sched.step()
    path = tmp_path / "ck.pt"
    resume.save(path, "run-a", model, opt, sched, resume.Progress(step=7, tokens=11, losses=[0.5, 0.25]))
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically: no temporary file left behind
    assert resume.load(path, "run-b") is None  # another run's checkpoint is never resumed
    body = resume.load(path, "run-a")
    fresh = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (1 + s))
    prog = resume.restore(body, fresh, opt2, sched2)
    assert prog.step == 7 and prog.losses == [0.5, 0.25]
    assert torch.equal(fresh.weight, model.weight) and sched2.last_epoch == sched.last_epoch
    path.write_bytes(b"not a checkpoint")
    assert resume.load(path, "run-a") is None  # unreadable: start over, never crash


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkilled_launch_resumes_mid_run_with_identical_metrics(tmp_path):
    out = tmp_path / "out"
    cfg_path = tmp_path / "planner.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(out)), encoding="utf-8")
    # Plan first (sweep, fit, allocate), then run the final launch in a child process and kill it.
    for argv in (["sweep", "--config", str(cfg_path)],
                 ["fit", str(out / "runs.csv"), "--metric", "loss", "--law", "power", "--out", str(out / "fits.json")],
                 ["allocate", str(out / "fits.json"), "--budget", "240", "--unit", "pairs",
                  "--out", str(out / "allocation.csv")]):
        assert main(argv) == 0
    launch = [sys.executable, "-m", "planner", "launch", "--config", str(cfg_path),
              "--allocation", str(out / "allocation.csv"), "--fits", str(out / "fits.json")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    checkpoint = out / "final" / "plan" / "s0" / "checkpoint.pt"
    proc = subprocess.Popen(launch, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not checkpoint.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert checkpoint.is_file(), "the run finished or failed before its first checkpoint"
    saved_step = torch.load(checkpoint, weights_only=True)["progress"]["step"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "final" / "plan" / "s0" / "metrics.json").is_file()  # killed mid-run

    # resume: the run continues from its checkpoint, then forgets it
    done = subprocess.run(launch, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads((out / "final" / "plan" / "s0" / "metrics.json").read_text())
    assert not checkpoint.exists()
    resumed_metrics = pd.read_csv(out / "final" / "metrics.csv")

    # the uninterrupted run of the same mixture and seed, from nothing
    import shutil

    shutil.rmtree(out / "final")
    again = subprocess.run(launch, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    whole = json.loads((out / "final" / "plan" / "s0" / "metrics.json").read_text())
    assert saved_step >= 5 and resumed["steps"] == whole["steps"] > saved_step
    assert resumed["metrics"] == whole["metrics"]  # bit-identical metrics
    assert resumed["train"]["final_loss"] == whole["train"]["final_loss"]
    pd.testing.assert_frame_equal(resumed_metrics, pd.read_csv(out / "final" / "metrics.csv"))

