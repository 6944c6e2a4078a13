"""The adaptive sweep against known truths: the value-of-information math against brute force, the
decisions on synthetic languages whose curves are known (runs go where the plan is uncertain, never to a
pinned language; the budget is never exceeded; same inputs, same choices), and the sweep on a real optuna
ledger with real worker processes (resumable after SIGKILL, several sweeps sharing one study).

The runner below is loaded by the workers through `--runner FILE.py:synthetic_runner`: it answers every
proxy run from a known curve plus noise fixed per run, and appends "<point> <pid>" to the file named by
ADAPTIVE_TEST_LOG, so a test counts exactly which runs ran and how often.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from core.config import config_from_dict
from core.errors import UserError
from fits.laws import Curve
from planner.allocation.curves import CurveBank, ExpectedCurves
from planner.allocation.problem import LanguageLimits
from planner.allocation.solver import solve_sum
from research.adaptive.adaptive import AdaptiveSpec, Compute, budget_note, decide
from research.adaptive.design import check_adaptive, default_ladder, start_design
from research.adaptive.settings import adaptive_settings
from planner.sweep.identity import GridPoint
from research.adaptive.voi import (
    Beliefs, Tables, evsi, expected_values, outcome_samples, posterior_weights, regret_draws, solve_plan,
)

THIS = Path(__file__).resolve()
LOG_ENV = "ADAPTIVE_TEST_LOG"
HANG_ENV = "ADAPTIVE_TEST_HANG"  # a file: while it does not exist, runs above 32 pairs hang (to be killed)
CURVES = {"ar": (60.0, 0.5), "el": (40.0, 0.9), "hi": (70.0, 0.3), "tr": (50.0, 0.6)}


# ------------------------------------------------------------------------------ the runner (in workers)


@dataclass
class _Result:
    metrics: dict
    n_tokens: int
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    steps: int = 1
    run_dir: str = ""


def truth(language: str, n_pairs: int, seed: int) -> float:
    c, alpha = CURVES[language]
    noise = np.random.default_rng(zlib.crc32(f"{language}-{n_pairs}-{seed}".encode())).standard_normal()
    return c - (c - 5.0) * (max(n_pairs, 1) / 16.0) ** -alpha + 0.5 * noise


def synthetic_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    hang = os.environ.get(HANG_ENV)
    if hang and n_pairs > 32 and not Path(hang).exists():
        with open(os.environ[LOG_ENV], "a") as f:
            f.write(f"{language}-{n_pairs}-s{seed} {os.getpid()} HANG\n")
        time.sleep(600)
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(f"{language}-{n_pairs}-s{seed} {os.getpid()}\n")
    time.sleep(0.05)
    return _Result({"chrf": truth(language, n_pairs, seed)}, 9 * n_pairs)


# ------------------------------------------------------------------------------------------- the math


def _draw_bank(rng, languages: int, draws: int) -> CurveBank:
    curves = []
    for _ in range(languages):
        ceiling = rng.uniform(40, 80) + rng.normal(0, 3, draws)
        alpha = np.exp(rng.normal(np.log(0.4), 0.3, draws))
        curves.append(Curve("power", {"offset": ceiling, "scale": (ceiling - 10) * 250 ** alpha, "alpha": alpha}))
    return CurveBank.from_curves(curves, np.ones(languages))


def test_tabulated_plan_matches_the_exact_solver():
    rng = np.random.default_rng(0)
    bank = _draw_bank(rng, 6, 200)
    cost = rng.uniform(15, 60, 6)
    lo, hi = np.array([0, 500, 0, 0, 0, 0.0]), np.array([np.inf, np.inf, 1500, np.inf, np.inf, np.inf])
    budget = 3000 * 6 * cost.mean()
    beliefs = Beliefs.uniform(bank, np.ones(6), cost, lo, hi, budget)
    ours = solve_plan(Tables.build(beliefs))
    exact = solve_sum(ExpectedCurves.from_bank(bank), cost, lo, hi, np.ones(6), budget).pairs
    assert ours @ cost <= budget * (1 + 1e-9)
    assert ours[2] == pytest.approx(1500) and ours[1] >= 500
    np.testing.assert_allclose(ours, exact, rtol=1e-3)
    assert expected_values(beliefs, ours)[0] == pytest.approx(expected_values(beliefs, exact)[0], rel=1e-8)


def test_evsi_matches_a_brute_force_monte_carlo_on_a_toy_problem():
    """Two languages, one budget: the exact expected value of sample information is the mean over
    simulated outcomes of the best plan's gain under the reweighted draws, found here by a dense search
    of the only free variable (the first language's pairs); `evsi` re-plans with tables and bisection."""
    rng = np.random.default_rng(1)
    bank = _draw_bank(rng, 2, 60)
    cost, budget = np.array([1.0, 1.0]), 6000.0
    beliefs = Beliefs.uniform(bank, np.ones(2), cost, np.zeros(2), np.full(2, np.inf), budget)
    tables = Tables.build(beliefs)
    plan = solve_plan(tables)
    sizes = np.array([1000.0, 4000.0])
    pred, sigma = beliefs.predict(0, sizes), 1.5
    picks, eps = outcome_samples(beliefs.weights[:, 0], 24, np.random.default_rng(2))
    fast = evsi(tables, 0, pred, sigma, picks, eps, plan)

    x0 = np.linspace(1.0, budget - 1.0, 40001)
    pairs = np.stack([x0, budget - x0], axis=-1)
    util = bank.utility(pairs[:, None, :])  # (X, R, 2)
    w1 = beliefs.weights[:, 1]
    brute = np.zeros(len(sizes))
    for c in range(len(sizes)):
        for m in range(len(picks)):
            y = pred[picks[m], c] + sigma * eps[m]
            w0 = posterior_weights(beliefs.weights[:, 0], pred[:, c], np.array(y), sigma)
            value = util[:, :, 0] @ w0 + util[:, :, 1] @ w1
            now = expected_values(beliefs, plan, 0, w0[None, :])[0]
            brute[c] += max(value.max() - now, 0.0) / len(picks)
    assert np.all(fast >= 0) and brute.max() > 1e-3  # the toy is not trivial
    np.testing.assert_allclose(fast, brute, rtol=0.02, atol=1e-6)


def test_a_run_is_worthless_when_every_draw_agrees():
    rng = np.random.default_rng(3)
    bank = _draw_bank(rng, 3, 1)
    same = CurveBank(**{k: (np.repeat(v, 50, axis=0) if k not in ("is_power", "x_per_pair", "sign") else v)
                        for k, v in bank.__dict__.items()})
    beliefs = Beliefs.uniform(same, np.ones(3), np.ones(3), np.zeros(3), np.full(3, np.inf), 9000.0)
    tables = Tables.build(beliefs)
    plan = solve_plan(tables)
    picks, eps = outcome_samples(beliefs.weights[:, 1], 16, rng)
    assert np.all(evsi(tables, 1, beliefs.predict(1, [2000.0, 8000.0]), 1.0, picks, eps, plan) < 1e-9)
    assert np.all(regret_draws(beliefs, plan) < 1e-6)
    wide = Beliefs.uniform(_draw_bank(rng, 3, 50), np.ones(3), np.ones(3), np.zeros(3), np.full(3, np.inf), 9000.0)
    assert regret_draws(wide, solve_plan(Tables.build(wide))).mean() > 1e-3


# ---------------------------------------------------------------------------------------- decisions


def _spec(languages, tpp: dict, budget=None, stop=None, seeds=(0,), ladder=None, sizes=(250, 500, 1000, 2000)):
    start = start_design(languages, sizes[:2], seeds, False)
    grid = [GridPoint(lang, n, s) for lang in languages for n in sizes for s in seeds]
    ladder = ladder or default_ladder(list(sizes))
    plan_budget = 3000.0 * sum(tpp.values())
    return AdaptiveSpec(
        languages=tuple(languages), start=tuple(start), ladder={lang: tuple(ladder) for lang in languages},
        seeds=tuple(seeds), grid=tuple(grid), compute=Compute(1.0, None, 16, 100), budget=budget,
        stop_interval=stop, plan_budget=plan_budget, plan_unit="tokens",
        limits={lang: LanguageLimits(tokens_per_pair=t) for lang, t in tpp.items()}, max_epochs=1.0,
        metric="chrf", draws=400,
    )


TRUE = {"pin": (45.0, 0.5, 1.0), "u1": (70.0, 0.25, 40.0), "u2": (35.0, 0.9, 40.0), "u3": (55.0, 0.45, 40.0)}


def _run(point: GridPoint, noise: float = 0.5) -> dict:
    c, alpha, tpp = TRUE[point.language]
    eps = np.random.default_rng(zlib.crc32(point.key.encode())).standard_normal()
    y = c - (c - 8.0) * (point.n_pairs / 250.0) ** -alpha + noise * eps
    return {"language": point.language, "n_pairs": point.n_pairs, "n_tokens": point.n_pairs * tpp,
            "seed": point.seed, "chrf": y}


def test_runs_go_where_the_plan_is_uncertain_not_to_a_pinned_language():
    """'pin' is measured at every ladder size with two seeds: its curve is known. It is also 40× cheaper
    per pair than the others, so a rule that favoured cheap runs would pick it first. The others have
    only the start design."""
    langs = list(TRUE)
    spec = _spec(langs, {k: v[2] for k, v in TRUE.items()}, budget=1e9, seeds=(0, 1, 2))
    points = [p for p in spec.start if p.language != "pin"]
    points += [GridPoint("pin", n, s) for n in spec.ladder["pin"] for s in (0, 1)]
    decision = decide(spec, pd.DataFrame([_run(p) for p in points]), batch=4)
    assert decision.stop is None and len(decision.choices) == 4
    uncertain = [c for c in decision.choices if c.point.language != "pin"]
    # The uncertain languages come first, each of them. Once the fit keeps every draw's ceiling within the
    # metric's bound (fits/bayes.py), the known curve's run far beyond its ladder is worth a little too,
    # and may fill the batch's last place: worth a tenth of any uncertain run at most.
    assert {c.point.language for c in decision.choices[:3]} == {"u1", "u2", "u3"}
    assert all(c.value > 0 for c in decision.choices)
    assert all(c.value < 0.1 * min(u.value for u in uncertain) for c in decision.choices if c.point.language == "pin")
    assert decision.value_interval > 0 and decision.expected_regret > 0


def test_the_budget_is_never_exceeded():
    langs = list(TRUE)
    tpp = {k: v[2] for k, v in TRUE.items()}
    grid_tokens = sum(n * tpp[lang] for lang in langs for n in (250, 500, 1000, 2000))
    budget = 0.5 * grid_tokens
    spec = _spec(langs, tpp, budget=budget)
    design = list(spec.start)
    rows = [_run(p) for p in design]
    for round_index in range(1, 30):
        d = decide(spec, pd.DataFrame(rows), batch=2, round_index=round_index)
        assert d.budget == budget
        assert d.spent + sum(c.cost for c in d.choices) <= budget * (1 + 1e-9)
        if not d.choices:
            break
        design += [c.point for c in d.choices]
        rows += [_run(c.point) for c in d.choices]
    assert "budget is spent" in d.stop
    # a budget well below the grid's compute is worth a warning, with the share and the grid's tokens
    warned = [n for n in d.notes if n.startswith("sweep.budget is 50% of the grid's compute")]
    assert len(warned) == 1 and f"({grid_tokens:,.0f} training tokens)" in warned[0]
    spent = sum(r["n_tokens"] for r in rows)  # one epoch: training tokens = the runs' tokens
    assert spent <= budget and spent > 0.6 * budget  # it spent most of it, but never more
    # A run under way counts as spent: with the same design and a large run pending, less is left.
    pending = GridPoint("u1", 8000, 0)
    d2 = decide(spec, pd.DataFrame(rows), committed=[pending], pending=[pending], batch=2, round_index=99)
    assert d2.spent == pytest.approx(spent + 8000 * tpp["u1"]) and not d2.choices


def test_a_decision_note_is_told_once_per_sweep():
    from research.adaptive.design import Choice, Decision
    from research.adaptive.rounds import Teller

    told: list[str] = []
    teller = Teller(told.append)
    run = Choice(GridPoint("u1", 2000, 0), 1.0, 0.5, 1.0)
    for round_index in (1, 2):
        teller.tell(Decision((run,), None, 0.0, 10.0, 0.3, 0.1, 4, notes=("sweep.budget is low",)), round_index)
    assert told.count("adaptive sweep: sweep.budget is low") == 1 and sum("adaptive round" in t for t in told) == 2
    assert told[-1].startswith("adaptive round 2: u1-2000-s0 (0.5)")
    for _ in range(2):  # a stop re-confirmed is not news
        teller.tell(Decision((), "the budget is spent: 10 of 10", 10.0, 10.0, 0.3, 0.1, 5), 3)
    assert told.count("adaptive sweep: the budget is spent: 10 of 10") == 1


def test_a_round_left_short_by_another_sweep_runs_again_and_one_that_failed_stops():
    from types import SimpleNamespace

    from planner.sweep.state import PointState, PointStatus
    from research.adaptive.rounds import short_round

    done, chosen = GridPoint("ar", 16, 0), GridPoint("ar", 64, 0)
    statuses = [PointStatus(done, PointState.DONE, ()), PointStatus(chosen, PointState.PENDING, ())]
    report = SimpleNamespace(statuses=statuses, failures=[], dead_workers=[], stopped=False)
    assert short_round(report) == {"ar-64-s0"}
    assert short_round(SimpleNamespace(**{**vars(report), "failures": ["a run raised"]})) is None
    assert short_round(SimpleNamespace(**{**vars(report), "dead_workers": ["worker 0 (exit -9)"]})) is None


def test_same_inputs_and_seed_same_choices_and_stop_when():
    langs = ["u1", "u2", "u3"]
    tpp = {k: TRUE[k][2] for k in langs}
    spec = _spec(langs, tpp)
    runs = pd.DataFrame([_run(p) for p in spec.start])
    a = decide(spec, runs, batch=2, round_index=3)
    b = decide(spec, runs.sample(frac=1.0, random_state=1), batch=2, round_index=3)  # row order is irrelevant
    assert a.record() == b.record() and len(a.choices) == 2
    assert not any("sweep.budget" in n for n in a.notes)  # the default budget (the grid's compute) is not warned about
    assert budget_note(0.95 * a.budget, a.budget) == () and len(budget_note(0.85 * a.budget, a.budget)) == 1
    assert a.budget == pytest.approx(sum(n * tpp[lang] for lang in langs for n in (250, 500, 1000, 2000)))
    loose = decide(_spec(langs, tpp, stop=10 * a.value_interval), runs, batch=2)
    assert not loose.choices and "value interval" in loose.stop
    tight = decide(_spec(langs, tpp, stop=0.5 * a.value_interval), runs, batch=2)
    assert tight.choices and tight.stop is None


def test_configs_the_adaptive_sweep_cannot_use_are_user_errors():
    # The planner refuses the adaptive keys with a pointer to where the adaptive sweep went.
    for sweep in ({"strategy": "adaptive"}, {"budget": 1e6}, {"stop_when": {"value_interval": 0.5}}):
        with pytest.raises(UserError, match="adaptive sweep is research code now.*docs/adaptive-sweep.md"):
            config_from_dict({"sweep": sweep})
    assert config_from_dict({"sweep": {"strategy": "grid"}}).sweep == config_from_dict({}).sweep
    a = adaptive_settings({})
    check_adaptive(config_from_dict({}), a)
    for extra, message in [({"fit": {"pooling": "none", "law": "power"}}, "pooling"),
                           ({"budget": {"objective": "maxmin"}}, "sum objective"),
                           ({"fit": {"bootstrap": 10}}, "bootstrap")]:
        with pytest.raises(UserError, match=message):
            check_adaptive(config_from_dict(extra), a)
    with pytest.raises(UserError, match="start_sizes"):
        adaptive_settings({"start_sizes": [0]})
    assert config_from_dict({"sweep": {"sizes": [0, 50, 150]}}).sweep.sizes == [0, 50, 150]
    with pytest.raises(UserError, match="at least one positive"):
        config_from_dict({"sweep": {"sizes": [0]}})


# ------------------------------------------------------------------------------- on the ledger (CLI)


@pytest.fixture
def env(tmp_path):
    # One BLAS thread for the sweeps' fits: they are many small matrix problems, which BLAS threads slow
    # down several-fold on a busy machine (the decisions, not the runs, are what this test waits for).
    return dict(os.environ, **{LOG_ENV: str(tmp_path / "calls.log"), "PLANNER_CACHE_DIR": str(tmp_path / "cache"),
                               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})


def write_config(tmp_path, budget=None, **sweep) -> Path:
    langs = list(CURVES)
    lines = [json.dumps({"source": f"Sentence number {i}.", "target": f"{lang} sentence {i}.", "language": lang})
             for lang in langs for i in range(400)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = {
        "experiment": "adaptivetest", "output_dir": str(tmp_path / "out"), "languages": langs,
        "data": {"source": str(corpus), "test_size": 10},
        "sweep": {"sizes": [16, 32, 64], "seeds": [0], "heartbeat_seconds": 1,
                  "grace_seconds": 3, **sweep},
        "fit": {"bootstrap": 400},
        "budget": {"total": 600, "unit": "pairs"},
    }
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(cfg))
    (tmp_path / "adaptive.yaml").write_text(yaml.safe_dump({"budget": budget}))
    return path


def planner(verb, *args, env, timeout=180) -> subprocess.CompletedProcess:
    """`python -m research.adaptive VERB` with the adaptive settings written beside the config."""
    extra = ["--adaptive", str(Path(args[1]).parent / "adaptive.yaml")]
    return subprocess.run([sys.executable, "-m", "research.adaptive", verb, *map(str, args), *extra], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=THIS.parents[1])


def spawn(cfg, env, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "research.adaptive", "sweep", "--config", str(cfg),
                             "--adaptive", str(Path(cfg).parent / "adaptive.yaml"), "--no-progress", RUNNER],
                            env=env, cwd=THIS.parents[1], **kwargs)


RUNNER = f"--runner={THIS}:synthetic_runner"


def calls(env) -> list[str]:
    path = Path(env[LOG_ENV])
    return [ln.split()[0] for ln in path.read_text().splitlines() if ln and "HANG" not in ln] if path.exists() else []


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_adaptive_sweep_on_the_ledger_with_worker_processes_resumes_without_rerunning(tmp_path, env):
    cfg = write_config(tmp_path, workers=2, budget=30000)
    first = planner("sweep", "--config", cfg, "--no-progress", RUNNER, env=env)
    assert first.returncode == 0, first.stderr
    ran = calls(env)
    assert len(ran) == len(set(ran))  # no run twice
    choices = read_csv(tmp_path / "out" / "sweep_choices.csv")
    assert sorted(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in choices) == sorted(ran)
    chosen = [r for r in choices if r["round"] != "0"]
    assert chosen and all(float(r["value"]) > 0 for r in chosen)
    assert {r["status"] for r in choices} == {"done"}
    # The budget: every run's training tokens (9 per pair × 10 epochs) within 30,000, start design included.
    assert sum(int(p.split("-")[1]) * 90 for p in ran) <= 30000
    assert "adaptive: " in first.stdout and "stopped: " in first.stdout
    # Experimental: said once, at the start, before any decision is told.
    told = first.stdout.splitlines()
    experimental = [i for i, line in enumerate(told) if line.startswith("the adaptive sweep is research code: ")]
    decisions_told = [i for i, line in enumerate(told) if line.startswith("adaptive ")]  # rounds and stops
    assert len(experimental) == 1 and decisions_told and experimental[0] < decisions_told[0]
    rows = read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in rows) == sorted(ran)

    again = planner("sweep", "--config", cfg, "--no-progress", RUNNER, env=env)
    assert again.returncode == 0, again.stderr
    assert calls(env) == ran  # resumed: nothing reran, no new run chosen
    status = planner("status", "--config", cfg, env=env)
    assert status.returncode == 0 and f"{len(ran)}/{len(ran)} done" in status.stdout
    assert "adaptive: " in status.stdout and f"{len(chosen)} runs chosen" in status.stdout


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_a_sweep_killed_mid_run_keeps_its_decisions_and_resumes(tmp_path, env):
    """SIGKILL of the whole `planner sweep` (orchestrator and workers) while a chosen run hangs: the next
    sweep keeps the recorded decision, retries the lost run after the grace period, and finishes."""
    cfg = write_config(tmp_path, workers=1, budget=30000)
    env = dict(env, **{HANG_ENV: str(tmp_path / "release")})
    proc = spawn(cfg, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        log = Path(env[LOG_ENV])
        deadline = time.monotonic() + 120
        while not (log.exists() and "HANG" in log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "HANG" in log.read_text(), "no chosen run started"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    hung = next(ln.split()[0] for ln in log.read_text().splitlines() if "HANG" in ln)
    before = read_csv(tmp_path / "out" / "sweep_choices.csv")
    assert hung in {f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in before if r["round"] == "1"}

    (tmp_path / "release").touch()
    resumed = planner("sweep", "--config", cfg, "--no-progress", RUNNER, env=env)
    assert resumed.returncode == 0, resumed.stderr
    after = read_csv(tmp_path / "out" / "sweep_choices.csv")
    assert after[: len(before)] == [{**r, "status": a["status"], "result": a["result"]} for r, a in
                                    zip(before, after)]  # the recorded choices stand, in order
    ran = calls(env)
    assert ran.count(hung) == 1 and len(ran) == len(set(ran)) == len(after)
    assert {r["status"] for r in after} == {"done"}


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_two_sweeps_sharing_a_study_never_run_or_choose_a_point_twice(tmp_path, env):
    cfg = write_config(tmp_path, workers=1, budget=36000)
    procs = [spawn(cfg, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ran = calls(env)
    assert len(ran) == len(set(ran))
    choices = read_csv(tmp_path / "out" / "sweep_choices.csv")
    keys = [f"{r['language']}-{r['n_pairs']}-s{r['seed']}" for r in choices]
    assert len(keys) == len(set(keys)) and sorted(keys) == sorted(ran)
    assert sum(int(p.split("-")[1]) * 90 for p in ran) <= 36000


def test_the_report_section_lists_the_choices_in_order():
    from research.adaptive.sweep_choices import sweep_choices_section

    rows = [{"order": 1, "round": 0, "language": "el", "n_pairs": 32, "seed": 0, "why": "start design",
             "status": "done", "result": 20.0},
            {"order": 2, "round": 1, "language": "hi", "n_pairs": 128, "seed": 0, "why": "value of information",
             "value": 0.25, "cost_tokens": 11520, "value_per_million_tokens": 21.7, "status": "done",
             "result": 30.0, "value_interval_before": 1.9, "spent_before": 20000, "budget": 40000},
            {"order": 3, "round": 2, "language": "el", "n_pairs": 64, "seed": 0, "why": "value of information",
             "value": 0.1, "cost_tokens": 5760, "value_per_million_tokens": 17.4, "status": "running",
             "value_interval_before": 1.2, "spent_before": 31520, "budget": 40000}]
    section = sweep_choices_section(pd.DataFrame(rows))
    assert list(section.table["#"]) == ["1", "2", "3"] and list(section.table["language"]) == ["el", "hi", "el"]
    assert "chose 2 more in 2 rounds" in section.summary and "37,280 of a budget of 40,000" in section.summary
    assert len(section.figure.axes) >= 2
    assert sweep_choices_section(pd.DataFrame()) is None
