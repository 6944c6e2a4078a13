"""Counts, elapsed time and an estimate of the time left, from point statuses: pure functions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from planner.estimate import RunCost, predict_seconds
from planner.sweep.identity import A_EVAL_S, A_TRAIN_S
from planner.sweep.state import PointState, PointStatus


def run_seconds(trial: FrozenTrial) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def finished_costs(statuses: Sequence[PointStatus]) -> list[RunCost]:
    """Where each finished run's wall time went (training, scoring, the rest): the rates that price work
    outside the sweep (`planner.estimate`)."""
    return [RunCost(s.point.total_pairs, wall, float(t.user_attrs[A_TRAIN_S]), float(t.user_attrs[A_EVAL_S]))
            for s in statuses for t in s.trials if t.state == TrialState.COMPLETE and A_TRAIN_S in t.user_attrs
            and A_EVAL_S in t.user_attrs and (wall := run_seconds(t)) is not None]


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    running: int
    failed: int
    pending: int
    run_seconds: float  # summed wall time of finished runs
    elapsed_seconds: float | None  # first run start → last activity (now while runs are running)
    remaining_seconds: float | None  # estimated wall time left at the current parallelism
    stale: int = 0  # results trained on data that has changed since: to be re-run


# Points that still need a run (the ETA counts them).
_TO_RUN = (PointState.PENDING, PointState.RUNNING, PointState.STALE)


def summarize(statuses: Sequence[PointStatus], now: float, workers: int | None = None) -> Progress:
    """Counts and times over the grid. Remaining time = predicted run times of the points not yet done
    (minus what running ones already spent) divided by the parallelism (`workers`, else runs running).
    Every finished run informs the prediction, outdated ones too: their cost has not changed."""
    counts = Counter(s.state for s in statuses)
    finished = [(s.point.total_pairs, sec) for s in statuses
                for t in s.trials if t.state == TrialState.COMPLETE and (sec := run_seconds(t)) is not None]
    starts = [t.datetime_start.timestamp() for s in statuses for t in s.trials if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for s in statuses for t in s.trials if t.datetime_complete]
    elapsed = None
    if starts:
        last = now if counts[PointState.RUNNING] or not ends else max(ends)
        elapsed = max(0.0, last - min(starts))
    remaining = None
    if finished or counts[PointState.DONE] == len(statuses):
        left = 0.0
        for s in statuses:
            if s.state in _TO_RUN:
                left += predict_seconds(finished, s.point.total_pairs) or 0.0
            if s.state == PointState.RUNNING:
                running = [t for t in s.trials if t.state == TrialState.RUNNING and t.datetime_start]
                if running:
                    left -= min(left, max(0.0, now - running[-1].datetime_start.timestamp()))
        parallel = workers or max(1, counts[PointState.RUNNING])
        remaining = left / parallel
    return Progress(
        total=len(statuses), done=counts[PointState.DONE], running=counts[PointState.RUNNING],
        failed=counts[PointState.FAILED], pending=counts[PointState.PENDING], stale=counts[PointState.STALE],
        run_seconds=sum(sec for _, sec in finished), elapsed_seconds=elapsed, remaining_seconds=remaining,
    )
