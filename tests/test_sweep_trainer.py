"""Acceptance: two worker processes complete a small grid with the real CoIT trainer (tiny model, tiny
sizes), every point run exactly once. Kept apart from test_sweep_cli.py, whose fake runners take seconds."""

from __future__ import annotations

import os

import pytest

from test_sweep_cli import POINTS, planner, runs_csv, study_trials, write_config


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, PLANNER_CACHE_DIR=str(tmp_path / "cache"))


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
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


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_real_mixture_proxy_run_on_the_ledger(tmp_path, env):
    """`sweep.mixtures` with the real trainer: the mixture run trains the same prefix of each language's
    pool as that language's own run of the same size (equal token counts), scores every language, and a
    second sweep reuses it."""
    cfg = write_config(
        tmp_path,
        model={"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        train={"epochs": 1, "batch_size": 8, "eval_size": 4, "max_new_tokens": 8, "samples": 1},
        data={"test_size": 20},
        sweep={"sizes": [16, 32], "seeds": [0], "mixtures": [16], "heartbeat_seconds": 1, "grace_seconds": 2},
    )
    result = planner("sweep", "--config", cfg, "--workers", 2, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = runs_csv(tmp_path)
    own = {r["language"]: r for r in rows if not r["mixture"] and r["n_pairs"] == "16"}
    mixed = {r["language"]: r for r in rows if r["mixture"] == "uniform-16"}
    assert set(mixed) == {"ar", "el"} and len(rows) == 6
    for lang, r in mixed.items():
        other = "el" if lang == "ar" else "ar"
        assert r["n_tokens"] == own[lang]["n_tokens"] and r["other_tokens"] == own[other]["n_tokens"]
        assert r["other_pairs"] == "16" and float(r["chrf"]) >= 0
    assert (tmp_path / "out" / "mixture_runs" / "mixture-16-ar+el-s0" / "metrics.json").is_file()
    trials = study_trials(tmp_path)
    again = planner("sweep", "--config", cfg, env=env, timeout=300)
    assert again.returncode == 0 and len(study_trials(tmp_path)) == len(trials)  # nothing queued again
