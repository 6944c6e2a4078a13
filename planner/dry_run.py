"""`planner run --dry-run`: what a run would do — the stages to run, the proxy and final runs, the compute
they train, and the time they would take where this machine has timed a run — without writing anything.

Times come only from measurement: the finished proxy runs of the output directory's runs.csv (their
`train_seconds` and `eval_seconds`) give this machine's rates (`planner.estimate`). Before any run has
finished there is nothing to time, and the dry run says so rather than guess: the sweep's progress bar
prices the whole run once its first runs are done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from core.config import PlannerConfig
from core.plan_files import RUNS_CSV
from planner.estimate import final_pairs, format_duration, launch_seconds, measured_rates, run_costs
from planner.pipeline import build_stages, up_to_date
from planner.sweep.identity import GridPoint, grid_points, mixture_points


@dataclass
class DryRun:
    points: list[GridPoint]
    done: set[str]  # keys of the points runs.csv already holds
    trained_examples: float  # examples the missing proxy runs train (pairs × epochs)
    final_runs: int
    final_pairs: float | None  # pairs of one final mixture (None: a token budget without a measured rate)
    target_runs: int
    rates_from: int = 0  # finished runs that timed this machine (0: no time estimate)
    sweep_seconds: float | None = None
    launch_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[GridPoint]:
        return [p for p in self.points if p.key not in self.done]


def _finished(cfg: PlannerConfig) -> pd.DataFrame:
    path = cfg.out / RUNS_CSV
    if not path.is_file():
        return pd.DataFrame(columns=["language", "n_pairs", "seed"])
    runs = pd.read_csv(path)
    if "status" in runs.columns:
        runs = runs[runs["status"].isin(["complete", "ok"])]
    return runs


def _done_keys(runs: pd.DataFrame) -> set[str]:
    if "mixture" in runs.columns:
        runs = runs[runs["mixture"].isna() | (runs["mixture"] == "")]
    return {GridPoint(str(r.language), int(r.n_pairs), int(r.seed)).key for r in runs.itertuples()}


def plan_run(cfg: PlannerConfig, threads: int, workers: int) -> DryRun:
    """What `planner run` would train for `cfg`, and how long, from what the output directory holds."""
    runs = _finished(cfg)
    points = grid_points(cfg) + mixture_points(cfg)
    done = _done_keys(runs)
    missing = [p for p in points if p.key not in done]
    fixed_steps = cfg.train.max_steps is not None  # a run then takes max_steps, not epochs of its pairs
    epochs = 1.0 if fixed_steps else cfg.train.epochs
    tokens_per_pair = None
    if {"n_tokens", "n_pairs"} <= set(runs.columns) and (runs["n_pairs"] > 0).any():
        trained = runs[runs["n_pairs"] > 0]
        tokens_per_pair = float(trained["n_tokens"].sum() / trained["n_pairs"].sum())
    pairs = final_pairs(cfg, tokens_per_pair) or None  # None: a token budget before any run measured its tokens
    targets = sum(1 for b in cfg.budget.languages.values() if b.target is not None) if cfg.final.target_check else 0
    mixtures = 1 + len(cfg.final.baselines) + int(cfg.final.reduced_budget)
    examples = math.nan if fixed_steps else sum(p.total_pairs for p in missing) * epochs
    result = DryRun(points, done, examples, mixtures * len(cfg.final.seeds), pairs, targets)
    if fixed_steps:
        result.notes.append(f"train.max_steps {cfg.train.max_steps}: every run takes that many steps")
    costs = run_costs(runs)
    rates = measured_rates(costs, cfg.data.test_size)
    if rates is None:
        result.notes.append("no proxy run has finished in this output directory, so nothing has timed this machine: "
                            "the sweep's progress bar prices the whole run once its first runs are done")
        return result
    result.rates_from = len(costs)
    per_run = [rates.overhead + p.total_pairs * rates.per_pair * epochs
               + len(p.languages) * cfg.data.test_size * rates.per_sentence for p in missing]
    result.sweep_seconds = sum(per_run) / max(1, workers)
    result.launch_seconds = launch_seconds(cfg, rates, tokens_per_pair, threads)
    return result


def format_dry_run(cfg: PlannerConfig, dry: DryRun, stages: list[tuple[str, bool]]) -> str:
    lines = [f"planner run --dry-run: {cfg.experiment} into {cfg.out}/ (nothing is written)"]
    lines += [f"  {name:<9} {'up to date, skipped' if fresh else 'would run'}" for name, fresh in stages]
    by_language: dict[str, list[GridPoint]] = {}
    for p in dry.missing:
        by_language.setdefault(p.language or "mixture", []).append(p)
    lines.append(f"proxy runs: {len(dry.points)} ({len(dry.points) - len(dry.missing)} done, {len(dry.missing)} to train)")
    for lang, pts in by_language.items():
        sizes = sorted({p.total_pairs for p in pts})
        lines.append(f"  {lang}: {len(pts)} runs at {', '.join(f'{n:,}' for n in sizes)} pairs")
    if dry.trained_examples == dry.trained_examples:  # not NaN (fixed-steps recipes count steps, not pairs)
        lines.append(f"  training: {dry.trained_examples:,.0f} examples in all ({_count(cfg.train.epochs, 'epoch')} of "
                     "each run's pairs)")
    pairs = "the budget's pairs" if dry.final_pairs is None else f"{dry.final_pairs:,.0f} pairs"
    lines.append(f"final runs: {dry.final_runs} (the plan, {_count(len(cfg.final.baselines), 'baseline')}"
                 + (", the reduced plan" if cfg.final.reduced_budget else "")
                 + f"; {_count(len(cfg.final.seeds), 'seed')}), each {pairs}"
                 + (f"; {_count(dry.target_runs, 'target check')} (one language alone at its need)" if dry.target_runs else ""))
    if dry.sweep_seconds is not None:
        fresh = dict(stages)  # a stage that is up to date costs nothing
        timed = [f"{name} ~{format_duration(seconds)}" for name, seconds in
                 (("sweep", dry.sweep_seconds), ("launch", dry.launch_seconds)) if not fresh.get(name)]
        lines.append(f"time on this machine (rates from {dry.rates_from} finished runs): "
                     + (", ".join(timed) or "nothing to train"))
    lines += [f"note: {n}" for n in dry.notes]
    return "\n".join(lines)


def _count(n: float, noun: str) -> str:
    return f"{n:g} {noun}" + ("" if n == 1 else "s")


def stage_states(cfg: PlannerConfig) -> list[tuple[str, bool]]:
    """Each stage of `planner run` and whether it is up to date (run_pipeline's rule); once one stage would
    run, every later one would too: its inputs are about to change."""
    states, stale = [], False
    for stage in build_stages(cfg, progress=False):
        fresh = not stale and up_to_date(stage, cfg.out)
        stale = stale or not fresh
        states.append((stage.name, fresh))
    return states
