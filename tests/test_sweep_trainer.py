"""Acceptance: two worker processes complete a small grid with the real CoIT trainer (tiny model, tiny
sizes), every point run exactly once. Kept apart from test_sweep_cli.py, whose fake runners take seconds."""

from __future__ import annotations

import os

import pytest

from test_sweep_cli import POINTS, planner, runs_csv, study_trials, write_config


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, PLANNER_CACHE_DIR=str(tmp_path / "cache"))


def test_real_trainer_two_workers(tmp_path, env):
    """The acceptance grid with the real CoIT trainer: tiny model, tiny sizes, two workers."""
    cfg = write_config(
        tmp_path,
        model={"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        train={"epochs": 1, "batch_size": 8, "eval_size": 4, "max_new_tokens": 8, "samples": 1},
        data={"test_size": 20},
    )
    result = planner("sweep", "--config", cfg, "--workers", 2, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    trials = study_trials(tmp_path)
    assert sorted(t.user_attrs["point"] for t in trials) == sorted(POINTS)  # one trial per point
    assert {t.state.name for t in trials} == {"COMPLETE"}
    rows = runs_csv(tmp_path)
    assert len(rows) == 4 and all(r["chrf"] and int(r["n_tokens"]) > 0 for r in rows)
    assert all((tmp_path / "out" / "runs" / p).is_dir() for p in POINTS)


def test_a_language_too_small_for_the_grid_fails_before_any_run(tmp_path, env):
    cfg = write_config(tmp_path, sweep={"sizes": [16, 10_000_000], "seeds": [0]})
    result = planner("sweep", "--config", cfg, env=env)
    assert result.returncode == 2 and "Not enough training pairs" in result.stderr
    assert not (tmp_path / "out" / "sweep.db").exists()  # nothing was started
