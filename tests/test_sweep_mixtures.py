"""Mixture proxy runs on the sweep's ledger (`sweep.mixtures`, `sweep.leave_one_out`): the points and their
names, bad configs, and real sweeps whose runners answer from a known truth with transfer — the mixture rows
of runs.csv, the transfer τ `planner fit` recovers from them, and resumption (a finished mixture run is
never run again; one whose data changed is).

The runners below are loaded by the workers through the hidden `--runner` / `--mixture-runner` options;
each appends "<point> <pid>" to the file named by MIXTURE_TEST_LOG, so a test counts which runs ran.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.config import config_from_dict
from core.errors import UserError
from planner.sweep.identity import GridPoint, mixture_name, mixture_points, point_fingerprint

THIS = Path(__file__).resolve()
LOG_ENV = "MIXTURE_TEST_LOG"
LANGS = ("ar", "el", "hi")
# Known truth: y = c − s·(D_eff)^−α with D_eff = own + τ·others, per language.
TRUTH = {"ar": (60.0, 300.0, 0.6, 0.40), "el": (45.0, 200.0, 0.5, 0.15), "hi": (70.0, 500.0, 0.7, 0.0)}


def truth(language: str, own: float, others: float) -> float:
    c, s, alpha, tau = TRUTH.get(language, (50.0, 300.0, 0.5, 0.2))  # any other language (the adaptive test's)
    return c - s * (own + tau * others + 4.0) ** -alpha


# ------------------------------------------------------------------------------- runners (in workers)


@dataclass
class _Result:
    metrics: dict
    n_tokens: object
    train_seconds: float = 0.01
    eval_seconds: float = 0.0
    steps: int = 1
    run_dir: str = ""
    extra: dict = field(default_factory=dict)


def _log(key: str) -> None:
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(f"{key} {os.getpid()}\n")


def single_runner(cfg, language, n_pairs, seed, run_dir=None, progress=True):
    _log(f"{language}-{n_pairs}-s{seed}")
    return _Result({"chrf": truth(language, n_pairs, 0.0)}, 10 * n_pairs)


def mixture_runner(cfg, pairs, seed, run_dir=None, progress=True):
    left_out = [lang for lang, n in pairs.items() if n == 0]
    if len({n for n in pairs.values() if n > 0}) > 1:  # a probe (sweep.probes)
        _log(f"probe-{'+'.join(f'{lang}{n}' for lang, n in pairs.items())}-s{seed}")
    else:
        _log(f"mixture-{max(pairs.values())}" + (f"-without-{left_out[0]}" if left_out else "") + f"-s{seed}")
    total = sum(pairs.values())
    return _Result({lang: {"chrf": truth(lang, n, total - n)} for lang, n in pairs.items()},
                   {lang: 10 * n for lang, n in pairs.items()})


def broken_mixture_runner(cfg, pairs, seed, run_dir=None, progress=True):
    """Scores only one language of the mixture: a runner bug, recorded as the run's failure."""
    lang = sorted(pairs)[0]
    return _Result({lang: {"chrf": 1.0}}, {lang: 1})


# ----------------------------------------------------------------------------------------- helpers


def _config(tmp_path, languages=LANGS, **sweep) -> Path:
    from test_sweep_cli import write_corpus  # here: the workers load this file without the tests on sys.path

    body = {
        "experiment": "sweeptest", "output_dir": str(tmp_path / "out"), "languages": list(languages),
        "data": {"source": str(write_corpus(tmp_path / "corpus.jsonl", languages, pairs=200)), "test_size": 10},
        "sweep": {"sizes": [0, 10, 40, 120], "seeds": [0], "heartbeat_seconds": 1, "grace_seconds": 3, **sweep},
        "fit": {"bootstrap": 200},
    }
    path = tmp_path / "planner.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, **{LOG_ENV: str(tmp_path / "calls.log"), "PLANNER_CACHE_DIR": str(tmp_path / "cache")})


def planner(*args, **kwargs):
    from test_sweep_cli import planner as run_planner

    return run_planner(*args, **kwargs)


def _sweep(cfg, env, mixture_runner_name="mixture_runner", *extra):
    return planner("sweep", "--config", cfg, "--workers", 2, "--no-progress", f"--runner={THIS}:single_runner",
                   f"--mixture-runner={THIS}:{mixture_runner_name}", *extra, env=env, timeout=180)


def _calls(env) -> list[str]:
    path = Path(env[LOG_ENV])
    return [ln.split()[0] for ln in path.read_text().splitlines()] if path.exists() else []


def _rows(tmp_path) -> list[dict]:
    with open(tmp_path / "out" / "runs.csv", newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------ points


def _cfg(**sweep):
    return config_from_dict({"languages": ["vi", "el", "hi", "tr"], "sweep": {"sizes": [50, 150], **sweep}}, "(test)")


def test_mixture_points_name_every_uniform_and_leave_one_out_run():
    points = mixture_points(_cfg(mixtures=[150, 50], leave_one_out=True, seeds=[0, 1]))
    everyone = ("el", "hi", "tr", "vi")
    assert all(p.mixture == everyone and p.language == "" for p in points)
    assert {(p.n_pairs, p.without) for p in points} == {(50, ""), (150, ""), *((150, out) for out in everyone)}
    assert len(points) == 2 * 6  # every sweep seed
    assert {mixture_name(p) for p in points} == {
        "uniform-50", "uniform-150", "uniform-150-without-el", "uniform-150-without-hi", "uniform-150-without-tr",
        "uniform-150-without-vi"}
    p = next(p for p in points if p.without == "el" and p.seed == 1)
    assert p.key == "mixture-150-el+hi+tr+vi-without-el-s1" and p.total_pairs == 450
    assert p.pairs == {"el": 0, "hi": 150, "tr": 150, "vi": 150}  # el is trained without, scored all the same
    assert GridPoint.from_attrs(p.user_attrs()) == p
    assert mixture_points(_cfg()) == []


def test_leave_one_out_runs_stay_at_their_size_when_a_larger_mixture_is_added():
    """sweep.leave_one_out_size: adding a mixture size (more own data inside mixtures, as an in-mixture
    curve measured only up to 150 pairs needs when the plan goes far beyond) keeps the leave-one-out runs
    already trained — same points, same keys — instead of training four new ones at the new size."""
    before = mixture_points(_cfg(mixtures=[50, 150], leave_one_out=True))
    after = mixture_points(_cfg(mixtures=[50, 150, 400], leave_one_out=True, leave_one_out_size=150))
    assert set(after) - set(before) == {GridPoint("", 400, 0, ("el", "hi", "tr", "vi"), "")}
    assert set(before) < set(after)
    default = mixture_points(_cfg(mixtures=[50, 150, 400], leave_one_out=True))  # without it: the largest
    assert {p.n_pairs for p in default if p.without} == {400}


def test_a_probe_is_a_mixture_point_with_its_own_pairs_per_language():
    probe = {"vi": 4, "el": 44, "tr": 202, "hi": 549}
    points = mixture_points(_cfg(mixtures=[50], probes=[probe], seeds=[0, 1]))
    probes = [p for p in points if p.composition]
    assert [p.seed for p in probes] == [0, 1]
    p = probes[0]
    assert p.mixture == ("el", "hi", "tr", "vi") and p.composition == (44, 549, 202, 4) and p.n_pairs == 0
    assert p.pairs == {"el": 44, "hi": 549, "tr": 202, "vi": 4} and p.total_pairs == 799
    assert p.key == "mixture-el44+hi549+tr202+vi4-s0" and mixture_name(p) == "probe-el44+hi549+tr202+vi4"
    assert GridPoint.from_attrs(p.user_attrs()) == p
    uniform = next(q for q in points if not q.composition and q.seed == 0)  # the uniform mixture is unchanged
    assert uniform.key == "mixture-50-el+hi+tr+vi-s0" and "composition" not in uniform.user_attrs()
    # a language trained without (0 pairs) is still one of the probe's, scored
    zero = mixture_points(_cfg(probes=[{"vi": 0, "el": 44, "tr": 202, "hi": 549}]))[0]
    assert zero.pairs["vi"] == 0 and zero.key == "mixture-el44+hi549+tr202+vi0-s0"
    cfg = _cfg(probes=[probe], sizes=[50, 150])
    assert cfg.sweep.largest_pairs == 549 and cfg.sweep.has_mixture_runs


def test_a_mixture_runs_fingerprint_follows_every_one_of_its_languages():
    p = GridPoint("", 50, 0, ("el", "hi"), without="el")  # el's test split is scored: its data count too
    base = point_fingerprint(p, {"el": "a", "hi": "b", "tr": "c"})
    assert base is not None and base != point_fingerprint(p, {"el": "a", "hi": "B", "tr": "c"})
    assert base == point_fingerprint(p, {"el": "a", "hi": "b", "tr": "changed"})  # not in the mixture
    assert point_fingerprint(p, {"el": "a"}) is None  # a language that cannot be fingerprinted
    assert point_fingerprint(GridPoint("el", 50, 0), {"el": "a"}) == "a"


@pytest.mark.parametrize("body, message", [
    ({"languages": ["el", "hi"], "sweep": {"leave_one_out": True, "mixtures": [50]}}, "at least three languages"),
    ({"languages": ["el"], "sweep": {"mixtures": [50]}}, "at least two languages"),
    ({"languages": ["el", "hi", "tr"], "sweep": {"leave_one_out": True}}, "needs sweep.mixtures"),
    ({"languages": ["el", "hi"], "sweep": {"mixtures": [0]}}, "positive"),
    ({"languages": ["el", "hi"], "sweep": {"mixtures": [50, 50]}}, "must not repeat"),
    ({"languages": ["el", "hi", "tr"], "sweep": {"leave_one_out": True, "mixtures": [50, 150], "leave_one_out_size": 100}},
     "not one of sweep.mixtures"),
    ({"languages": ["el", "hi", "tr"], "sweep": {"mixtures": [50, 150], "leave_one_out_size": 150}},
     "needs sweep.leave_one_out"),
    ({"languages": ["el", "hi", "tr"], "sweep": {"probes": [{"el": 10, "hi": 20}]}}, r"missing \['tr'\]"),
    ({"languages": ["el", "hi"], "sweep": {"probes": [{"el": 10, "hi": 20, "xx": 5}]}}, r"not configured \['xx'\]"),
    ({"languages": ["el", "hi"], "sweep": {"probes": [{"el": -1, "hi": 20}]}}, "integers ≥ 0"),
    ({"languages": ["el", "hi"], "sweep": {"probes": [{"el": 0, "hi": 0}]}}, "at least one positive"),
    ({"languages": ["el", "hi"], "sweep": {"probes": [{"el": 1, "hi": 2}, {"hi": 2, "el": 1}]}}, "must not repeat"),
    ({"languages": ["el"], "sweep": {"probes": [{"el": 10}]}}, "at least two languages"),
    ({"languages": ["el", "hi"], "sweep": {"mixtures": [50], "probes": [{"el": 50, "hi": 50}]}}, "already runs"),
    ({"languages": ["el", "hi"], "sweep": {"probes": [{"el": "many", "hi": 2}]}}, "integer"),
])
def test_mixture_configs_that_cannot_work_are_user_errors(body, message):
    with pytest.raises(UserError, match=message):
        config_from_dict(body, "(test)")


# ------------------------------------------------------------------------------ sweeps on a ledger


def test_mixture_runs_go_through_the_ledger_and_planner_fit_recovers_the_transfer(tmp_path, env):
    cfg = _config(tmp_path, mixtures=[20, 80], leave_one_out=True)
    result = _sweep(cfg, env)
    assert result.returncode == 0, result.stderr
    assert "17/17 points done" in result.stdout
    calls = _calls(env)
    mixtures = sorted(c for c in calls if c.startswith("mixture-"))
    assert mixtures == ["mixture-20-s0", "mixture-80-s0", "mixture-80-without-ar-s0", "mixture-80-without-el-s0",
                        "mixture-80-without-hi-s0"]
    assert len(calls) == len(set(calls)) == 12 + 5  # every point once
    rows = _rows(tmp_path)
    mixed = [r for r in rows if r["mixture"]]
    assert len(rows) == 12 + len(mixed) and len(mixed) == 5 * 3  # every run scores every language
    by_name = {}
    for r in mixed:
        by_name.setdefault(r["mixture"], {})[r["language"]] = r
    assert set(by_name) == {"uniform-20", "uniform-80", "uniform-80-without-ar", "uniform-80-without-el",
                            "uniform-80-without-hi"}
    r = by_name["uniform-80-without-el"]["ar"]
    assert (int(r["n_pairs"]), int(r["n_tokens"]), int(r["other_pairs"]), int(r["other_tokens"])) == (80, 800, 80, 800)
    assert float(r["chrf"]) == pytest.approx(truth("ar", 80, 80))
    r = by_name["uniform-80-without-el"]["el"]  # the left-out language: the others' data alone
    assert (int(r["n_pairs"]), int(r["n_tokens"]), int(r["other_pairs"]), int(r["other_tokens"])) == (0, 0, 160, 1600)
    assert float(r["chrf"]) == pytest.approx(truth("el", 0, 160))
    assert not any(r["mixture"] for r in rows[:12])  # per-language rows first, unchanged

    fit = planner("fit", tmp_path / "out" / "runs.csv", "--metric", "chrf", "--bootstrap", 200,
                  "--out", tmp_path / "out" / "fits.json", env=env)
    assert fit.returncode == 0, fit.stderr
    from fits import load_fits

    fitset = load_fits(tmp_path / "out" / "fits.json")
    for lang, (*_, tau) in TRUTH.items():
        t = fitset.transfer[lang]
        assert t.rows == 4  # two uniform runs and the two leave-one-out runs that kept its data
        assert t.tau == pytest.approx(tau, abs=0.06)
        assert t.own_min == 20  # the floor stays: the run without its data is a check, not fitted
        assert t.alone_rows == 1 and np.isfinite(t.alone_gap)  # the check (exactness: tests/test_transfer.py)
    # resumed: nothing runs again
    again = _sweep(cfg, env)
    assert again.returncode == 0, again.stderr
    assert len(_calls(env)) == 17


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_a_probe_goes_through_the_ledger_and_its_rows_sit_off_the_uniform_line(tmp_path, env):
    """A probe added to a finished sweep trains just the probe; its rows carry each language's own and the
    others' pairs, the transfer fit uses them (one row more per language that had its own data) and a
    second sweep trains nothing."""
    cfg = _config(tmp_path, sizes=[0, 10, 40], mixtures=[20])
    assert _sweep(cfg, env).returncode == 0
    before = len(_calls(env))
    body = yaml.safe_load(cfg.read_text())
    body["sweep"]["probes"] = [{"ar": 100, "el": 5, "hi": 0}]
    cfg.write_text(yaml.safe_dump(body))
    result = _sweep(cfg, env)
    assert result.returncode == 0, result.stderr
    assert _calls(env)[before:] == ["probe-ar100+el5+hi0-s0"]
    probe = {r["language"]: r for r in _rows(tmp_path) if r["mixture"] == "probe-ar100+el5+hi0"}
    assert list(probe) == ["ar", "el", "hi"]
    for lang, own in (("ar", 100), ("el", 5), ("hi", 0)):
        r = probe[lang]
        assert (int(r["n_pairs"]), int(r["other_pairs"]), int(r["n_tokens"]), int(r["other_tokens"])) == (
            own, 105 - own, 10 * own, 10 * (105 - own))
        assert float(r["chrf"]) == pytest.approx(truth(lang, own, 105 - own))
    assert _rows(tmp_path)[-1]["mixture"] == "probe-ar100+el5+hi0"  # after the uniform mixtures' rows
    fit = planner("fit", tmp_path / "out" / "runs.csv", "--metric", "chrf", "--bootstrap", 200,
                  "--out", tmp_path / "out" / "fits.json", env=env)
    assert fit.returncode == 0, fit.stderr
    from fits import load_fits

    transfer = load_fits(tmp_path / "out" / "fits.json").transfer
    assert {lang: t.rows for lang, t in transfer.items()} == {"ar": 2, "el": 2, "hi": 1}
    assert (transfer["el"].own_min, transfer["hi"].alone_rows) == (5, 1)  # measured down to el's 5 pairs
    assert _sweep(cfg, env).returncode == 0 and len(_calls(env)) == before + 1


def test_a_mixture_run_whose_data_changed_is_run_again(tmp_path, env):
    cfg = _config(tmp_path, languages=("ar", "el"), sizes=[10, 40], mixtures=[20])
    assert _sweep(cfg, env).returncode == 0
    body = yaml.safe_load(cfg.read_text())
    corpus = Path(body["data"]["source"])
    lines = corpus.read_text().splitlines()
    corpus.write_text("\n".join(ln.replace("el sentence 7.", "el sentence seven.") for ln in lines) + "\n")
    again = _sweep(cfg, env)
    assert again.returncode == 0, again.stderr
    rerun = _calls(env)[5:]
    assert sorted(rerun) == ["el-10-s0", "el-40-s0", "mixture-20-s0"]  # ar's own runs stand
    status = planner("status", "--config", cfg, env=env)
    assert "ar+el" in status.stdout and "5/5 done" in status.stdout


def test_a_mixture_runner_that_misses_a_language_fails_that_run_only(tmp_path, env):
    cfg = _config(tmp_path, languages=("ar", "el"), sizes=[10, 40], mixtures=[20])
    result = _sweep(cfg, env, "broken_mixture_runner")
    assert result.returncode == 1
    assert "mixture-20-ar+el-s0" in result.stderr and "each of ar, el" in result.stderr
    rows = _rows(tmp_path)
    assert len(rows) == 4 and "mixture" not in rows[0]  # the grid's rows stand; no mixture columns
    from test_sweep_cli import study_trials

    failed = [t for t in study_trials(tmp_path) if t.state.name == "FAIL"]
    assert [t.user_attrs["point"] for t in failed] == ["mixture-20-ar+el-s0"]


def slow_mixture_runner(cfg, pairs, seed, run_dir=None, progress=True):
    import time

    time.sleep(4.0)
    return mixture_runner(cfg, pairs, seed, run_dir, progress)


@pytest.mark.slow  # trains for real or runs whole sweeps: CI's `-m slow` run
def test_an_adaptive_sweep_decides_beside_mixture_runs(tmp_path, env):
    """The adaptive design decides beside the mixture runs (a fixed design queued from the start): its chosen
    runs run, and the mixtures never count against the budget. (Workers take trials in queue order,
    optuna's, so a batch chosen while mixture runs are queued runs after them.)"""
    from test_adaptive_sweep import THIS as ADAPTIVE, planner as adaptive, write_config

    cfg = write_config(tmp_path, workers=2, budget=30000, mixtures=[16, 32], leave_one_out=True)
    env = dict(env, ADAPTIVE_TEST_LOG=str(tmp_path / "adaptive.log"))
    result = adaptive("sweep", "--config", cfg, "--workers", 2, "--no-progress", f"--runner={ADAPTIVE}:synthetic_runner",
                     f"--mixture-runner={THIS}:slow_mixture_runner", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out" / "sweep_choices.csv", newline="") as f:
        chosen = [r for r in csv.DictReader(f) if r["round"] != "0"]
    assert chosen
    import optuna

    trials = optuna.load_study(study_name="adaptivetest",
                               storage=f"sqlite:///{tmp_path / 'out' / 'sweep.db'}").get_trials(deepcopy=False)
    started = {t.user_attrs.get("point"): t.datetime_start for t in trials if t.state.name == "COMPLETE"}
    mixture_starts = [v for k, v in started.items() if k and k.startswith("mixture-")]
    assert len(mixture_starts) == 6
    assert all(f"{r['language']}-{r['n_pairs']}-s{r['seed']}" in started for r in chosen)
    ran = [ln.split()[0] for ln in (tmp_path / "adaptive.log").read_text().splitlines()]
    assert sum(int(p.split("-")[1]) * 90 for p in ran) <= 30000  # per-language runs only: 9 tokens/pair × 10 epochs
    assert len([r for r in _rows(tmp_path) if r["mixture"]]) == 6 * 4
