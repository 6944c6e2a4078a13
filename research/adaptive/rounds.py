"""The adaptive sweep on the ledger: who decides the next batch, and how a decision is recorded.

Where decisions are made: in the orchestrating process of each `python -m research.adaptive sweep` (the main process, which
otherwise only draws the progress bar), never in a worker. A fit and a value-of-information pass take
seconds; in a worker they would hold up a run and need the data, the fits and the config in every worker
process. Any number of `planner sweep` invocations, on any machines, may share the study; each decides
only when (a) the queue of chosen runs is empty, (b) at least one of its own workers is idle (the batch
is the number of idle local workers: batches follow the workers), (c) something happened since its last
look (a run finished or failed, or someone else decided) and (d) nobody else is deciding.

Mutual exclusion reuses the ledger's own primitives, as claiming a run does (package docstring, 1a/1b):
the decider creates a decision trial, moves it WAITING → RUNNING by compare-and-set, writes its claim and
only then reads the other decision trials; if any other is RUNNING it backs off (PRUNED). Of two deciders,
the later reader sees the other, so at most one proceeds (both may back off; each retries after a
jittered pause). While deciding, the decision trial sends the same heartbeat as a run; a decider killed
mid-decision falls silent, any worker's `fail_silent` fails its trial after the grace period, and the next
decider takes over. A decision is recorded on its trial (then COMPLETE) *before* its runs are queued: if
the decider dies in between, the recorded points are missing from the queue and any worker's
reconciliation queues them, exactly like lost grid points. A decider declared lost while still working
cannot record (finishing is first-writer-wins) and its decision is dropped, never half-applied.

When a decision stops (budget spent, value interval narrow enough, nothing left worth running) and no run
is under way anywhere, this invocation's decisions are over: its workers drain the queue and exit.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from core.config import PlannerConfig
from research.adaptive.adaptive import decide, spec_from_config
from research.adaptive.design import Decision, start_points
from research.adaptive.chosen import (
    A_DECIDED_AT, A_DECISION, A_KIND, CHOICES_CSV, KIND_DECISION, adaptive_points, adaptive_summary,
    choices_table, decisions, is_decision, results_frame,
)
from planner.sweep.export import write_csv_atomic
from planner.sweep.identity import A_ERROR, A_HEARTBEAT, A_INTERRUPTED, A_POINT, A_SESSION, A_WORKER
from planner.sweep.ledger import Ledger
from planner.sweep.state import PointState, is_silent, point_statuses
from planner.sweep.worker import WorkerSettings, _Heartbeat
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
        self._rng = random.Random(settings.session)
        self._told: str | None = None
        self._notes_told: set[str] = set()
        self._me = f"{socket.gethostname()}:{os.getpid()}"

    def points(self, trials: Sequence[FrozenTrial] | None = None):
        return adaptive_points(self.cfg, self.a, self.ledger.trials() if trials is None else trials)

    def tick(self) -> None:
        """Decide the next batch if it is this invocation's turn (module docstring); mark the decisions
        over when one stops with nothing under way."""
        now = time.monotonic()
        if self.finished or now < self._next:
            return
        self._next = now + POLL_SECONDS
        self.ledger.fail_silent(self.settings.grace_seconds)  # a dead decider's trial too, not only runs
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
        if any(is_decision(t) and t.state == TrialState.RUNNING for t in trials):
            return  # someone is deciding; their batch will show in the queue
        marker = self._claim()
        if marker is None:
            self._next = time.monotonic() + POLL_SECONDS * (1 + 2 * self._rng.random())  # jitter: no lockstep
            return
        decision = self._decide(marker, trials, statuses, idle)
        self._seen = seen
        if decision is None:
            return
        self.last = decision
        if decision.stop and not decision.choices and not underway:
            self.finished = True

    # ------------------------------------------------------------------------------------ claiming

    def _claim(self) -> FrozenTrial | None:
        ledger = self.ledger
        template = optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={A_KIND: KIND_DECISION})
        trial_id = ledger.storage.create_new_trial(ledger.study_id, template_trial=template)
        if not ledger.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
            return None
        marker = ledger.storage.get_trial(trial_id)
        ledger.set_attrs(marker, {A_SESSION: self.settings.session, A_WORKER: self._me, A_HEARTBEAT: time.time()})
        now = time.time()
        for other in ledger.trials(states=(TrialState.RUNNING,)):
            if other._trial_id != trial_id and is_decision(other) and not is_silent(
                    other, now, self.settings.grace_seconds):
                ledger.finish(marker, TrialState.PRUNED)
                return None
        return marker

    def _decide(self, marker: FrozenTrial, trials, statuses, idle: int) -> Decision | None:
        """Decide under a heartbeat, record on the marker, then queue the batch (module docstring)."""
        ledger = self.ledger
        done = {s.point for s in statuses if s.state == PointState.DONE}
        committed = [s.point for s in statuses if s.point not in done]
        pending = [s.point for s in statuses if s.state in (PointState.RUNNING, PointState.PENDING)]
        round_index = 1 + sum(1 for _, d in decisions(trials) if d.choices)
        started = time.monotonic()
        try:
            with _Heartbeat(ledger, marker, self.settings.heartbeat_seconds):
                decision = decide(self.spec, results_frame(statuses), committed, pending, idle, round_index)
        except BaseException as err:  # a user error in the config, a bug, Ctrl-C: never leave the marker running
            key = A_INTERRUPTED if not isinstance(err, Exception) else A_ERROR
            try:
                ledger.set_attrs(marker, {key: True if key == A_INTERRUPTED else
                                          f"{type(err).__name__}: {err}"[:2000] + "\n" + traceback.format_exc()[-2000:]})
            finally:
                ledger.finish(marker, TrialState.FAIL)
            raise
        record = {**decision.record(), "round": round_index if decision.choices else None}
        try:
            ledger.set_attrs(marker, {A_DECISION: record, A_DECIDED_AT: time.time()})
        except UpdateFinishedTrialError:
            return None  # declared lost while deciding: someone else decides instead
        if not ledger.finish(marker, TrialState.COMPLETE, time.monotonic() - started):
            return None
        ledger.enqueue([c.point for c in decision.choices])
        self._note(decision, round_index)
        export_choices(self.cfg, self.a, ledger)
        return decision

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
