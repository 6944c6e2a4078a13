"""Results follow the data: editing one language's corpus in place makes exactly that language's results
stale, `planner status` says so, and the next `planner sweep` re-runs that language only (real worker
processes, a real SQLite study, a JSONL corpus edited in place)."""

from __future__ import annotations

import json
import os

import pytest

from test_sweep_cli import LOG_ENV, POINTS, calls, planner, point_keys, runner_arg, runs_csv, study_trials, write_config

EL_POINTS = sorted(p for p in POINTS if p.startswith("el-"))


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, **{LOG_ENV: str(tmp_path / "calls.log"), "PLANNER_CACHE_DIR": str(tmp_path / "cache")})


def edit_language_in_place(corpus, language: str) -> None:
    """Change one translation of `language` (the file keeps its name, size class and other lines)."""
    lines = corpus.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record["language"] == language:
            record["target"] += " (corrected)"
            lines[i] = json.dumps(record)
            break
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_editing_one_languages_data_reruns_that_language_only(tmp_path, env):
    cfg = write_config(tmp_path)
    first = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert first.returncode == 0, first.stderr
    assert sorted(p for p, _ in calls(env)) == sorted(POINTS)
    before = {t.user_attrs["point"]: t.user_attrs["data_fingerprint"] for t in study_trials(tmp_path)}

    edit_language_in_place(tmp_path / "corpus.jsonl", "el")
    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 0, status.stderr
    assert "2/4 done, 0 running, 0 failed, 0 pending, 2 stale" in status.stdout
    assert all(f"stale {p}: its el data changed since the run" in status.stdout for p in EL_POINTS)
    assert "`planner sweep` re-runs stale ones." in status.stdout

    again = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert again.returncode == 0, again.stderr
    assert "el: data changed since its runs; re-running 2 runs (el-32-s0, el-16-s0)" in again.stdout
    assert "ar:" not in again.stdout
    assert sorted(p for p, _ in calls(env)[4:]) == EL_POINTS  # Greek re-ran, Arabic did not
    assert "4/4 points done" in again.stdout

    rows = runs_csv(tmp_path)
    assert point_keys(rows) == sorted(POINTS)  # one row per point: the new Greek results, not the old ones
    latest = {t.user_attrs["point"]: t for t in study_trials(tmp_path) if t.state.name == "COMPLETE"}
    assert {r["run_dir"].rsplit("/", 1)[-1]: int(r["trial"]) for r in rows} == {k: t.number for k, t in latest.items()}
    after = {k: t.user_attrs["data_fingerprint"] for k, t in latest.items()}
    assert all(after[p] != before[p] for p in EL_POINTS) and all(after[p] == before[p] for p in POINTS - set(EL_POINTS))


def test_a_plugin_runner_whose_data_cannot_be_read_still_sweeps(tmp_path, env):
    """A plug-in runner may bring its own data: a data source the planner cannot read is not an error
    for it; its results are simply not checked for changed data, and the sweep says so."""
    cfg = write_config(tmp_path, data={"source": str(tmp_path / "elsewhere.jsonl")})
    result = planner("sweep", "--config", cfg, runner_arg("counting_runner"), env=env)
    assert result.returncode == 0, result.stderr
    assert "not checked for changed data" in result.stdout and "does not exist" in result.stdout
    assert sorted(p for p, _ in calls(env)) == sorted(POINTS)
    assert all("data_fingerprint" not in t.user_attrs for t in study_trials(tmp_path))
    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 0 and "4/4 done" in status.stdout
