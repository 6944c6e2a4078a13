"""The adaptive sweep's decisions, free of any storage: which runs to add next, and when to stop.

A grid gives every language and size the same compute, though the plan hinges on a few uncertain curves.
The adaptive sweep starts from a small design (every language at the two smallest sizes, plus its
zero-shot point for a pretrained model) and then repeats: fit the finished runs (the default population
fit, whose posterior draws say how uncertain each curve is), and choose the next batch of runs
(language, size, seed) with the largest expected improvement of the plan per training token
(`research.adaptive.voi`). It stops when the proxy-compute budget is spent (`sweep.budget`, training tokens of
finished + running + queued runs; default: what the grid would train), when the plan is pinned down
(`sweep.stop_when.value_interval`: the 90% posterior interval of what the best plan could still gain over
this one), or when no run is expected to change the plan.

Experimental: on its own benchmark (docs/results/adaptive-sweep.md) it plans worse than the grid at half the
grid's compute on 8 of 12 synthetic families; every adaptive sweep says so once at its start
(`EXPERIMENTAL_NOTE`).

`decide` is a function of what is known — the finished runs (a runs.csv table), the chosen runs still
without a result (queued, running or failed: their compute counts) and, among them, those still to come
(queued or running: the batch is chosen as if they will land on their expected outcome, so it does not
spend twice on what they will tell). Same inputs and seed, same decision. `research.adaptive.rounds` keeps the
decisions on the optuna ledger; `benchmarks/adaptive_sweep.py` calls `decide` in a loop with a synthetic
runner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.config import PlannerConfig
from planner.allocation.problem import LanguageLimits, build_problem
from planner.budget import allocation_limits
from research.adaptive.design import Choice, Decision, check_adaptive, default_ladder, start_points, trained_sizes
from planner.sweep.identity import GridPoint, grid_points
from research.adaptive.settings import AdaptiveSettings
from research.adaptive.voi import (
    Beliefs, Tables, believe, evsi, expected_values, first_draws, outcome_samples, regret_draws, solve_plan,
)

VOI_DRAWS = 256  # posterior draws per language behind a run's value (the fit keeps fit.bootstrap)
OUTCOMES = 32  # simulated outcomes per candidate run
INTERVAL_LEVEL = 0.9  # of the plan's value interval (stop_when.value_interval)
BUDGET_WARN_SHARE = 0.9  # a sweep.budget below this share of the grid's compute gets `budget_note`


@dataclass(frozen=True)
class Compute:
    """What a proxy run costs. Training tokens = pairs × tokens per pair × epochs (fixed-steps protocol:
    steps × batch size × tokens per pair); every run, the zero-shot point too, also evaluates, which ranks
    runs (`rank_cost`) but is not training and does not count against the budget."""

    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    eval_pairs: int = 0

    def train_tokens(self, n_pairs: float, tokens_per_pair: float) -> float:
        if n_pairs <= 0:
            return 0.0
        if self.max_steps is not None:
            return float(self.max_steps * self.batch_size * tokens_per_pair)
        return float(n_pairs * tokens_per_pair * self.epochs)

    def rank_cost(self, n_pairs: float, tokens_per_pair: float) -> float:
        return self.train_tokens(n_pairs, tokens_per_pair) + self.eval_pairs * tokens_per_pair


@dataclass(frozen=True)
class AdaptiveSpec:
    """Everything `decide` needs, without a config (the benchmark builds one from a synthetic world)."""

    languages: tuple[str, ...]
    start: tuple[GridPoint, ...]
    ladder: Mapping[str, tuple[int, ...]]  # sizes a run may be chosen at, per language
    seeds: tuple[int, ...]
    grid: tuple[GridPoint, ...]  # the grid this sweep replaces: its compute is the default budget
    compute: Compute
    budget: float | None  # training tokens; None: the grid's
    stop_interval: float | None
    plan_budget: float  # the allocation the runs inform
    plan_unit: str
    limits: Mapping[str, LanguageLimits]
    max_epochs: float
    metric: str
    law: str = "auto"
    x: str = "pairs"
    draws: int = 1000
    seed: int = 0


# ------------------------------------------------------------------------------------- from a config


def spec_from_config(cfg: PlannerConfig, a: AdaptiveSettings, pools: Mapping[str, int | None]) -> AdaptiveSpec:
    """The decision inputs of `planner sweep` (`pools`: training pairs per language, None when unknown)."""
    check_adaptive(cfg, a)

    sizes = a.ladder or default_ladder(trained_sizes(cfg))
    start = start_points(cfg, a)
    ladder = {}
    for lang in cfg.languages:
        pool = pools.get(lang)
        own = sorted(set(sizes) | {p.n_pairs for p in start if p.n_pairs > 0})
        ladder[lang] = tuple(n for n in own if pool is None or n <= pool)
    t = cfg.train
    return AdaptiveSpec(
        languages=tuple(cfg.languages), start=tuple(start), ladder=ladder, seeds=tuple(cfg.sweep.seeds),
        grid=tuple(grid_points(cfg)),
        compute=Compute(t.epochs, t.max_steps, t.batch_size, t.eval_size or cfg.data.test_size),
        budget=a.budget, stop_interval=a.value_interval,
        plan_budget=cfg.budget.total, plan_unit=cfg.budget.unit, limits=allocation_limits(cfg, dict(pools)),
        max_epochs=cfg.budget.max_epochs, metric=cfg.fit.metric, law=cfg.fit.law, x=cfg.fit.x,
        draws=cfg.fit.bootstrap, seed=cfg.seed,
    )


# ------------------------------------------------------------------------------------------- pricing


def numeric_runs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A runs table with numbers as numbers (runs.csv is read as text) and every column decide reads."""
    out = pd.DataFrame({"language": runs["language"].astype(str) if len(runs) else pd.Series(dtype=str)})
    for col in ("n_pairs", "seed", "n_tokens", metric):
        out[col] = pd.to_numeric(runs[col], errors="coerce") if col in runs else np.nan
    out["seed"] = out["seed"].fillna(0).astype(int)
    out["n_pairs"] = out["n_pairs"].astype(int)
    return out.reset_index(drop=True)


def tokens_per_pair(runs: pd.DataFrame, languages: Sequence[str]) -> dict[str, float]:
    """Measured tokens per pair (one epoch) of each language: the median over its finished runs; a
    language without one takes the largest of the others (pricing it high keeps the budget safe)."""
    measured = {}
    if len(runs) and "n_tokens" in runs:
        pairs = pd.to_numeric(runs["n_pairs"], errors="coerce")
        tokens = pd.to_numeric(runs["n_tokens"], errors="coerce")
        ok = (pairs > 0) & (tokens > 0)
        ratio = (tokens[ok] / pairs[ok]).groupby(runs["language"][ok]).median()
        measured = {str(k): float(v) for k, v in ratio.items()}
    fallback = max(measured.values(), default=math.nan)
    return {lang: measured.get(lang, fallback) for lang in languages}


def spent_tokens(spec: AdaptiveSpec, runs: pd.DataFrame, committed: Sequence[GridPoint],
                 tpp: Mapping[str, float]) -> float:
    """Training tokens of the finished runs (as measured) and of the runs chosen but not finished (priced)."""
    total = 0.0
    for row in runs.itertuples(index=False):
        n, tokens = float(row.n_pairs), float(row.n_tokens)
        per_pair = tokens / n if n > 0 and math.isfinite(tokens) and tokens > 0 else tpp.get(row.language, math.nan)
        total += spec.compute.train_tokens(n, per_pair)
    return total + sum(spec.compute.train_tokens(p.n_pairs, tpp.get(p.language, math.nan)) for p in committed)


def grid_tokens(spec: AdaptiveSpec, tpp: Mapping[str, float]) -> float:
    """What the grid this sweep replaces would train (nan until every language's tokens per pair is known)."""
    return sum(spec.compute.train_tokens(p.n_pairs, tpp.get(p.language, math.nan)) for p in spec.grid)


def budget_tokens(spec: AdaptiveSpec, tpp: Mapping[str, float]) -> float:
    return float(spec.budget) if spec.budget is not None else grid_tokens(spec, tpp)


EXPERIMENTAL_NOTE = (
    "the adaptive sweep is research code: on its own benchmark (docs/results/adaptive-sweep.md; "
    "docs/adaptive-sweep.md) it planned worse than the grid on 8 of 12 synthetic truth families when given "
    "half the grid's compute, and better on none; with the grid's compute it was better or tied on 10 of 12. "
    "The planner runs the grid (`planner sweep`)."
)  # told once at the start of every adaptive sweep (research.adaptive.__main__)


def budget_note(budget: float, grid: float) -> tuple[str, ...]:
    """A warning when `sweep.budget` is well below the grid's compute: measured on the truth families
    (docs/results/adaptive-sweep.md), the adaptive sweep then planned worse than the grid on most, and no choice
    of runs within half the grid's compute, not even an oracle's, matched the grid on every family."""
    if not (math.isfinite(grid) and grid > 0 and budget < BUDGET_WARN_SHARE * grid):
        return ()
    return (f"sweep.budget is {budget / grid:.0%} of the grid's compute ({grid:,.0f} training tokens). Measured on "
            f"the truth families (docs/results/adaptive-sweep.md): with 50–70% of the grid's compute the adaptive sweep "
            f"planned worse than the grid on 8–9 of 12, and no choice of runs within 50%, not even an oracle's, "
            f"matched the grid on every family; with the grid's compute it was better or tied on 10 of 12. Leave "
            f"sweep.budget unset to spend the grid's compute.",)


# -------------------------------------------------------------------------------------------- decide


def decide(spec: AdaptiveSpec, runs: pd.DataFrame, committed: Sequence[GridPoint] = (),
           pending: Sequence[GridPoint] = (), batch: int = 1, round_index: int = 1) -> Decision:
    """The next batch of at most `batch` runs, or why none (see the module docstring)."""
    from fits import fit_runs

    runs = numeric_runs(runs, spec.metric)
    tpp = tokens_per_pair(runs, spec.languages)
    spent = spent_tokens(spec, runs, committed, tpp)
    budget = budget_tokens(spec, tpp)
    stop = lambda why, **kw: Decision((), why, spent, budget if math.isfinite(budget) else None,
                                      results=len(runs), **kw)
    if not math.isfinite(spent + budget):
        return stop("no finished run yet to measure tokens per pair")
    # A user error here (a metric the runs do not report) is the config's, and stops the sweep (exit 2).
    fitset = fit_runs(runs, spec.metric, law=spec.law, x=spec.x, bootstrap=spec.draws, seed=spec.seed,
                      pooling="population")
    fitted = [lang for lang in spec.languages if lang in fitset.languages]
    notes = budget_note(budget, grid_tokens(spec, tpp)) if spec.budget is not None else ()
    notes += tuple(f"{lang}: not fitted ({why})" for lang, why in fitset.skipped.items())
    if not fitted:
        return stop("no language could be fitted", notes=notes)
    problem = build_problem(fitset, spec.plan_budget, spec.plan_unit, {k: spec.limits[k] for k in fitted
                                                                      if k in spec.limits}, spec.max_epochs)
    if problem.draws is None:
        return stop("the fit has no posterior draws", notes=notes)
    langs = list(problem.languages)
    args = (problem.weights, problem.cost, problem.lo, problem.hi, problem.budget)
    everything = Beliefs.uniform(problem.draws, *args)
    plan = solve_plan(Tables.build(everything))
    regret = regret_draws(everything, plan)
    interval, expected = float(np.quantile(regret, INTERVAL_LEVEL)), float(regret.mean())
    pinned = dict(value_interval=interval, expected_regret=expected, plan=dict(zip(langs, map(float, plan))),
                  notes=notes)
    if spec.stop_interval is not None and interval <= spec.stop_interval:
        return stop(f"the plan's value interval ({interval:.3g}) is within stop_when.value_interval "
                    f"({spec.stop_interval:g})", **pinned)

    sigma = max(float(fitset.population.get("sigma") or 0.0), 1e-6)
    beliefs = Beliefs.uniform(first_draws(problem.draws, VOI_DRAWS), *args)
    # Zero-shot points are measured once, in the start design; a law without an offset cannot predict them.
    for p in pending:
        if p.language in langs and p.n_pairs > 0:
            i = langs.index(p.language)
            beliefs = believe(beliefs, i, beliefs.predict(i, [p.n_pairs])[:, 0], sigma)
    taken = {(r.language, int(r.n_pairs), int(r.seed)) for r in runs.itertuples(index=False)}
    taken |= {(p.language, p.n_pairs, p.seed) for p in committed}
    chosen: list[Choice] = []
    why_not = None
    for step in range(batch):
        left = budget - spent - sum(c.cost for c in chosen)
        best = _best_candidate(spec, beliefs, langs, taken, tpp, left, sigma, seed=(spec.seed, round_index, step))
        if best is None:
            why_not = f"the budget is spent: {budget - left:,.0f} of {budget:,.0f} training tokens committed"
            break
        choice, lang_index, pred, value_now = best
        if choice.value <= 1e-9 * (1.0 + abs(value_now)):  # rounding, not information
            why_not = "no run is expected to change the plan"
            break
        chosen.append(choice)
        taken.add((choice.point.language, choice.point.n_pairs, choice.point.seed))
        beliefs = believe(beliefs, lang_index, pred, sigma)
    return Decision(tuple(chosen), why_not if not chosen else None, spent, budget, results=len(runs), **pinned)


def _candidates(spec: AdaptiveSpec, lang: str, taken: set) -> list[GridPoint]:
    """Where a language's next run may go: a ladder size at or above its largest run so far, at the first
    seed not yet run or chosen there (at its largest size that is a replicate). A plan extrapolates from
    a language's largest run, so a run below it tells the plan little; on the truth families, filling in
    below made plans worse than extending (benchmarks/adaptive_sweep.py, docs/adaptive-sweep.md)."""
    top = max((n for (other, n, _) in taken if other == lang), default=0)
    out = []
    for n in spec.ladder.get(lang, ()):
        seed = next((s for s in spec.seeds if (lang, n, s) not in taken), None)
        if n >= top and seed is not None:
            out.append(GridPoint(lang, n, seed))
    return out


def _best_candidate(spec, beliefs: Beliefs, langs, taken, tpp, left: float, sigma: float, seed):
    """The affordable candidate with the largest value per token: (Choice, language index, its prediction
    per draw, the plan's expected value now), or None when nothing fits in what is left of the budget."""
    tables = Tables.build(beliefs)
    plan = solve_plan(tables)
    best = None
    for i, lang in enumerate(langs):
        cands = [p for p in _candidates(spec, lang, taken)
                 if spec.compute.train_tokens(p.n_pairs, tpp[lang]) <= left * (1 + 1e-12)]
        if not cands:
            continue
        pred = beliefs.predict(i, [p.n_pairs for p in cands])  # (R, C)
        rng = np.random.default_rng([*seed, i])
        picks, eps = outcome_samples(beliefs.weights[:, i], OUTCOMES, rng)
        values = evsi(tables, i, pred, sigma, picks, eps, plan)
        for c, (p, v) in enumerate(zip(cands, values)):
            rank = spec.compute.rank_cost(p.n_pairs, tpp[lang])
            score = v / rank if rank > 0 else math.inf
            key = (score, -rank)  # ties: the cheaper run
            if best is None or key > best[0]:
                choice = Choice(p, spec.compute.train_tokens(p.n_pairs, tpp[lang]), float(v), rank)
                best = (key, choice, i, pred[:, c])
    if best is None:
        return None
    return (*best[1:], float(expected_values(beliefs, plan)[0]))
