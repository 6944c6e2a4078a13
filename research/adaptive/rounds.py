"""The adaptive sweep on the ledger, round by round: run what is chosen, then decide the next batch.

One `python -m research.adaptive sweep` is a loop of rounds on the planner's sweep:

1. Run. `planner.sweep.run_sweep(cfg, ..., points=AdaptivePoints(cfg, a))` queues every chosen point
   without a current result (the start design first, then every recorded batch in order, then any
   mixture runs of `sweep.mixtures`) under the storage's lock, and its workers drain the queue and exit.
   On an RDB storage (SQLite, PostgreSQL) the workers also wait for runs still RUNNING that may come
   back: a run whose worker was killed is failed by optuna's heartbeat and retried. A round that is not
   complete (a run failed, `max_failures`, a worker died) ends the sweep: exit 1, resumable. One that
   left chosen points without a result and nothing failed here runs again: another invocation sharing
   the study chose them, or took them, after this round's workers had finished (`short_round`).
2. Decide, alone. Under the planner's preparation lock (`planner.sweep.storage.exclusive`) read the
   study. If some chosen point has no current result, another invocation sharing the study decided
   meanwhile: let go and run again (1) without deciding. Otherwise `decide` a batch as large as this
   invocation's workers and record it as a COMPLETE trial of its own (`kind: adaptive decision`, no
   `point`: no worker ever runs it), export sweep_choices.csv and let go. Nothing is queued here: the next
   round's `run_sweep` reads the recorded batch (`AdaptivePoints`) and queues it.
3. Stop when a decision stops with no run chosen (budget spent, value interval narrow enough, nothing
   left worth running).

So the start design (and the mixture runs) all finish before the first decision, a decision is made on
every run chosen before it, and a decision is recorded once: a decider killed while holding the lock
records nothing (the lock dies with it), and one killed after recording leaves points that the next
`run_sweep`, of this or any invocation, queues and runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from core.config import PlannerConfig
from core.files import write_csv_atomic
from planner.budget import data_fingerprints
from planner.sweep import run_sweep
from planner.sweep.ledger import open_ledger
from planner.sweep.state import PointState, point_statuses
from planner.sweep.storage import exclusive, resolve_storage
from research.adaptive.adaptive import AdaptiveSpec, decide, spec_from_config
from research.adaptive.chosen import (
    A_DECIDED_AT, A_DECISION, A_KIND, CHOICES_CSV, KIND_DECISION, AdaptivePoints, adaptive_points,
    adaptive_summary, choices_table, decisions, results_frame,
)
from research.adaptive.design import Decision
from research.adaptive.settings import AdaptiveSettings

if TYPE_CHECKING:
    from planner.sweep import SweepReport


def pool_sizes(cfg: PlannerConfig) -> dict[str, int | None]:
    """Training pairs per language as the data loader sees them (None where it cannot read them: a
    plug-in runner's own data); they cap the sizes a run may be chosen at and the plan, as in `planner run`."""
    from core.errors import UserError
    from trainers.data import load_language

    out: dict[str, int | None] = {}
    for lang in cfg.languages:
        try:
            out[lang] = len(load_language(cfg.data, lang).train)
        except UserError:
            out[lang] = None
    return out


def export_choices(cfg: PlannerConfig, a: AdaptiveSettings, ledger, path: Path | None = None) -> Path:
    """Rewrite sweep_choices.csv (atomically) from the study (`ledger`: `planner.sweep.ledger.open_ledger`'s)."""
    path = path or cfg.out / CHOICES_CSV
    trials = ledger.trials()
    statuses = point_statuses(adaptive_points(cfg, a, trials), trials, fingerprints=ledger.fingerprints)
    table = choices_table(cfg, a, trials, statuses)
    write_csv_atomic(path, list(table.columns), table.astype(object).where(table.notna(), None).to_dict("records"))
    return path


@dataclass
class Teller:
    """What one invocation tells about its decisions: every batch, each note once (every decision repeats
    its notes), and a stop once (a stop re-confirmed is not news)."""

    notify: Callable[[str], None]
    notes_told: set[str] = field(default_factory=set)
    stop_told: str | None = None

    def tell(self, d: Decision, round_index: int) -> None:
        for note in d.notes:
            if note not in self.notes_told:
                self.notes_told.add(note)
                self.notify(f"adaptive sweep: {note}")
        if d.choices:
            runs = ", ".join(f"{c.point.key} ({c.value:.3g})" for c in d.choices)
            self.notify(f"adaptive round {round_index}: {runs}; value interval {d.value_interval:.3g}")
        elif d.stop and d.stop.split(":")[0] != self.stop_told:
            self.stop_told = d.stop.split(":")[0]
            self.notify(f"adaptive sweep: {d.stop}")


def decide_round(cfg: PlannerConfig, a: AdaptiveSettings, spec: AdaptiveSpec, ledger, batch: int,
                 teller: Teller) -> Decision | None:
    """Step 2 of the module docstring: the next batch decided, recorded and told, under the lock; None
    when a chosen point has no current result yet (someone sharing the study decided since this
    invocation's round finished): run again before deciding."""
    with exclusive(ledger.spec, cfg.experiment):
        trials = ledger.trials()
        statuses = point_statuses(adaptive_points(cfg, a, trials), trials, fingerprints=ledger.fingerprints)
        if any(s.state != PointState.DONE for s in statuses):
            return None
        round_index = 1 + sum(1 for _, d in decisions(trials) if d.choices)
        started = time.monotonic()
        # Every chosen point is done, so nothing is committed or under way beyond the finished runs.
        decision = decide(spec, results_frame(statuses), batch=batch, round_index=round_index)
        record = {**decision.record(), "round": round_index if decision.choices else None}
        ledger.study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=time.monotonic() - started,
            user_attrs={A_KIND: KIND_DECISION, A_DECISION: record, A_DECIDED_AT: time.time()}))
        export_choices(cfg, a, ledger)
    teller.tell(decision, round_index)
    return decision


@dataclass
class RoundsResult:
    report: SweepReport  # the last round's run_sweep
    complete: bool  # every chosen run done and the decisions stopped
    runs: int  # run_sweep calls
    wall_seconds: float  # all rounds, decisions included
    summary: dict  # adaptive_summary of the study


def once(notify: Callable[[str], None]) -> Callable[[str], None]:
    """`notify`, but each distinct line once: every round's run_sweep repeats its notes about the data."""
    seen: set[str] = set()

    def tell(line: str) -> None:
        if line not in seen:
            seen.add(line)
            notify(line)
    return tell


def short_round(report: SweepReport) -> frozenset[str] | None:
    """The points a round that is not complete left without a result, when nothing failed or died in it
    (else None: the sweep stops). Two invocations sharing a study: the other may record a batch, or queue
    and start it, just after this one's workers found nothing to do. Running again takes those runs (or
    waits for them); the caller stops when a second round in a row leaves the same points (a journal's
    worker never waits for another machine's run, so running again would only spin)."""
    if report.failures or report.dead_workers or report.stopped:
        return None
    return frozenset(s.point.key for s in report.statuses if s.state != PointState.DONE)


def sweep_rounds(cfg: PlannerConfig, a: AdaptiveSettings, *, storage: str | None = None, workers: int | None = None,
                 max_failures: int | None = None, runner: str, mixture_runner: str, progress: bool = True,
                 notify: Callable[[str], None] = print) -> RoundsResult:
    """The loop of the module docstring, until a decision stops or a round is not complete."""
    started = time.monotonic()
    spec = spec_from_config(cfg, a, pool_sizes(cfg))
    points = AdaptivePoints(cfg, a)
    notify_once, teller = once(notify), Teller(notify)
    ledger, runs, short = None, 0, None
    while True:
        report = run_sweep(cfg, storage=storage, workers=workers, max_failures=max_failures, runner=runner,
                           mixture_runner=mixture_runner, progress=progress, notify=notify_once, points=points)
        runs += 1
        if ledger is None:  # the first run_sweep created the study
            fingerprints = data_fingerprints(cfg, strict=False).by_language
            ledger = open_ledger(cfg, resolve_storage(cfg, storage), create=False, fingerprints=fingerprints)
        if not report.complete:
            short, before = short_round(report), short
            if short is not None and short != before:
                continue
            export_choices(cfg, a, ledger)  # what came of the chosen runs so far
            return RoundsResult(report, False, runs, time.monotonic() - started, adaptive_summary(ledger.trials()))
        short = None
        decision = decide_round(cfg, a, spec, ledger, report.workers, teller)
        if decision is not None and decision.stop and not decision.choices:
            return RoundsResult(report, True, runs, time.monotonic() - started, adaptive_summary(ledger.trials()))


def format_adaptive(summary: dict, metric: str = "") -> str:
    """One line for the adaptive sweep and its status."""
    parts = [f"{summary['chosen']} runs chosen in {summary['rounds']} rounds"]
    if summary.get("budget"):
        parts.append(f"{summary['committed']:,.0f} of {summary['budget']:,.0f} training tokens committed")
    if summary.get("value_interval") is not None and math.isfinite(summary["value_interval"]):
        unit = f" {metric}" if metric else ""
        parts.append(f"plan's value interval {summary['value_interval']:.3g}{unit}")
    line = "adaptive: " + "; ".join(parts)
    return line + (f"; stopped: {summary['stop']}" if summary.get("stop") else "")
