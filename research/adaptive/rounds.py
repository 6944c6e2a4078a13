"""The adaptive sweep on the ledger: who decides the next batch, and how a decision is recorded.

Decisions are made in the orchestrating process of each `python -m research.adaptive sweep` (never in a
worker: a fit and a value-of-information pass take seconds, and would need the data and fits in every
worker). Any number of them may share the study; each decides only when (a) no chosen run is queued,
(b) at least one of its own workers is idle (the batch is the number of idle local workers), (c)
something happened since its last look (a run finished or failed, or someone else decided).

Mutual exclusion is the planner's own preparation lock (`planner.sweep.storage.exclusive`): a decider takes it,
checks that nobody decided since it looked, decides, records the decision as a COMPLETE trial of its own
(`kind: adaptive decision`, no `point`: no worker ever runs it) and queues the batch, then lets go. A
decider killed while holding it records nothing (the lock dies with it); one killed between recording
and queueing leaves recorded points without trials, which the next decider (or the next sweep's
preparation) queues.

When a decision stops (budget spent, value interval narrow enough, nothing left worth running) and no run
is under way anywhere, this invocation's decisions are over: its workers drain the queue and exit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from core.config import PlannerConfig
from research.adaptive.adaptive import decide, spec_from_config
from research.adaptive.design import Decision, start_points
from research.adaptive.chosen import (
    A_DECIDED_AT, A_DECISION, A_KIND, CHOICES_CSV, KIND_DECISION, adaptive_points, adaptive_summary,
    choices_table, decisions, results_frame,
)
from core.files import write_csv_atomic
from planner.sweep.identity import A_POINT, A_WORKER
from planner.sweep.ledger import Ledger
from planner.sweep.state import PointState, by_point, point_statuses
from planner.sweep.storage import exclusive
from planner.sweep.worker import WorkerSettings
from research.adaptive.settings import AdaptiveSettings

POLL_SECONDS = 1.0  # how often the orchestrator looks at the study (runs take minutes; a look costs reads)


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


def export_choices(cfg: PlannerConfig, a: AdaptiveSettings, ledger: Ledger, path: Path | None = None) -> Path:
    """Rewrite sweep_choices.csv (atomically) from the study."""
    path = path or cfg.out / CHOICES_CSV
    trials = ledger.trials()
    statuses = point_statuses(adaptive_points(cfg, a, trials), trials, fingerprints=ledger.fingerprints)
    table = choices_table(cfg, a, trials, statuses)
    write_csv_atomic(path, list(table.columns), table.astype(object).where(table.notna(), None).to_dict("records"))
    return path


class AdaptiveController:
    """The decision loop of one `planner sweep` invocation: `tick()` from the orchestrator's poll loop."""

    def __init__(self, cfg: PlannerConfig, a: AdaptiveSettings, ledger: Ledger, settings: WorkerSettings, workers: int,
                 worker_ids: Callable[[], set[str]], notify: Callable[[str], None] = lambda _: None):
        self.cfg, self.a, self.ledger, self.settings, self.workers = cfg, a, ledger, settings, workers
        self.worker_ids, self.notify = worker_ids, notify
        self.spec = spec_from_config(cfg, a, pool_sizes(cfg))
        self.start_keys = {p.key for p in start_points(cfg, a)}
        self.finished = False
        self.last: Decision | None = None
        self._seen: tuple | None = None
        self._next = 0.0
        self._told: str | None = None
        self._notes_told: set[str] = set()

    def points(self, trials: Sequence[FrozenTrial] | None = None):
        return adaptive_points(self.cfg, self.a, self.ledger.trials() if trials is None else trials)

    def tick(self) -> None:
        """Decide the next batch if it is this invocation's turn (module docstring); mark the decisions
        over when one stops with nothing under way."""
        now = time.monotonic()
        if self.finished or now < self._next:
            return
        self._next = now + POLL_SECONDS
        trials = self.ledger.trials()
        points = self.points(trials)
        keys = {p.key for p in points}
        if any(t.state == TrialState.WAITING and t.user_attrs.get(A_POINT) in keys for t in trials):
            return  # the workers have work
        statuses = point_statuses(points, trials, self.settings.session, self.ledger.fingerprints)
        underway = any(s.state in (PointState.RUNNING, PointState.PENDING, PointState.STALE) for s in statuses)
        if any(s.point.key in self.start_keys and s.state in (PointState.RUNNING, PointState.PENDING,
                                                              PointState.STALE) for s in statuses):
            return  # every language's start runs first: a fit needs them
        ids = self.worker_ids()
        # Busy with the adaptive design's runs only: a worker on a mixture run (a fixed design, queued
        # behind the chosen runs) would otherwise starve the decisions until every mixture run was claimed.
        busy = sum(1 for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get(A_WORKER) in ids
                   and t.user_attrs.get(A_POINT) in keys)
        idle = self.workers - busy
        if idle <= 0:
            return
        # What a decision depends on: finished runs and batches chosen. A recorded stop is not news (two
        # orchestrators would otherwise answer each other's stops for as long as a run is under way).
        seen = (tuple(sorted((t.number, t.state.value) for t in trials if A_POINT in t.user_attrs
                             and t.state in (TrialState.COMPLETE, TrialState.FAIL))),
                sum(1 for _, d in decisions(trials) if d.choices))
        if seen == self._seen:  # nothing new since the last decision
            if self.last is not None and self.last.stop and not underway:
                self.finished = True
            return
        with exclusive(self.ledger.spec, self.cfg.experiment):
            now_trials = self.ledger.trials()
            if len(decisions(now_trials)) != len(decisions(trials)):
                return  # someone decided since this look; look again
            decision = self._decide(trials, statuses, idle)
        self._seen = seen
        self.last = decision
        if decision.stop and not decision.choices and not underway:
            self.finished = True

    def _decide(self, trials, statuses, idle: int) -> Decision:
        """Decide, record the decision, queue its batch (under the lock: module docstring)."""
        ledger = self.ledger
        known = by_point(trials)  # recorded points of a decider killed before it queued them
        ledger.enqueue([p for p in self.points(trials) if p.key not in known and p.key in self._chosen_keys(trials)])
        done = {s.point for s in statuses if s.state == PointState.DONE}
        committed = [s.point for s in statuses if s.point not in done]
        pending = [s.point for s in statuses if s.state in (PointState.RUNNING, PointState.PENDING)]
        round_index = 1 + sum(1 for _, d in decisions(trials) if d.choices)
        started = time.monotonic()
        decision = decide(self.spec, results_frame(statuses), committed, pending, idle, round_index)
        record = {**decision.record(), "round": round_index if decision.choices else None}
        ledger.study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=time.monotonic() - started,
            user_attrs={A_KIND: KIND_DECISION, A_DECISION: record, A_DECIDED_AT: time.time()}))
        ledger.enqueue([c.point for c in decision.choices])
        self._note(decision, round_index)
        export_choices(self.cfg, self.a, ledger)
        return decision

    @staticmethod
    def _chosen_keys(trials) -> set[str]:
        return {c.point.key for _, d in decisions(trials) for c in d.choices}

    def _note(self, d: Decision, round_index: int) -> None:
        for note in d.notes:  # once per sweep: every decision repeats its notes
            if note not in self._notes_told:
                self._notes_told.add(note)
                self.notify(f"adaptive sweep: {note}")
        if d.choices:
            runs = ", ".join(f"{c.point.key} ({c.value:.3g})" for c in d.choices)
            self.notify(f"adaptive round {round_index}: {runs}; value interval {d.value_interval:.3g}")
        elif d.stop and d.stop.split(":")[0] != self._told:  # a stop re-confirmed is not news
            self._told = d.stop.split(":")[0]
            self.notify(f"adaptive sweep: {d.stop}")

    def summary(self) -> dict:
        out = adaptive_summary(self.ledger.trials())
        out["finished"] = self.finished
        return out


def format_adaptive(summary: dict, metric: str = "") -> str:
    """One line for `planner sweep` and `planner status`."""
    parts = [f"{summary['chosen']} runs chosen in {summary['rounds']} rounds"]
    if summary.get("budget"):
        parts.append(f"{summary['committed']:,.0f} of {summary['budget']:,.0f} training tokens committed")
    if summary.get("value_interval") is not None and math.isfinite(summary["value_interval"]):
        unit = f" {metric}" if metric else ""
        parts.append(f"plan's value interval {summary['value_interval']:.3g}{unit}")
    line = "adaptive: " + "; ".join(parts)
    return line + (f"; stopped: {summary['stop']}" if summary.get("stop") else "")
