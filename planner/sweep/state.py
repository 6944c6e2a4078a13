"""Each grid point's state, derived from its trials: pure functions, no storage access.

A point is DONE when its latest COMPLETE trial is a *current* result; STALE when its only results were
trained on data that has changed since (a different data fingerprint); RUNNING, FAILED or PENDING
otherwise. What the sweep enqueues next and what `planner status` shows both come from here, and so do
the counts, elapsed time and time left of the progress bar and `planner status` (`summarize`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from optuna.trial import FrozenTrial, TrialState

from planner.estimate import RunCost, predict_seconds
from planner.sweep.identity import (
    A_DATA, A_ERROR, A_EVAL_S, A_INTERRUPTED, A_POINT, A_SESSION, A_TRAIN_S, A_WORKER, GridPoint, point_fingerprint,
)

# A point lost this often in one sweep (its worker killed each time) is FAILED, not retried again by it.
MAX_LOST_PER_SESSION = 2


class PointState(str, Enum):
    DONE = "done"
    RUNNING = "running"
    FAILED = "failed"
    PENDING = "pending"
    STALE = "stale"  # has results, all trained on data that has changed since


@dataclass(frozen=True)
class PointStatus:
    point: GridPoint
    state: PointState
    trials: tuple[FrozenTrial, ...]  # this point's trials, oldest first
    error: str | None = None  # the latest failure's message when FAILED
    result: FrozenTrial | None = None  # the latest COMPLETE trial on current data: the point's result
    outdated: FrozenTrial | None = None  # when STALE: the latest result, trained on other data


def is_error(trial: FrozenTrial) -> bool:
    """The run raised (as opposed to being lost or interrupted, which are retried)."""
    return trial.state == TrialState.FAIL and A_ERROR in trial.user_attrs


def is_outdated(trial: FrozenTrial, fingerprints: Mapping[str, str]) -> bool:
    """Was this trial trained on other data than the language's current data? Unknown is not outdated:
    a trial without a fingerprint (recorded before fingerprints existed) or a language whose data cannot
    be fingerprinted now is taken as current."""
    have = trial.user_attrs.get(A_DATA)
    if have is None:
        return False
    want = point_fingerprint(GridPoint.from_attrs(trial.user_attrs), fingerprints)
    return want is not None and have != want


def by_point(trials: Iterable[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    groups: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in sorted(trials, key=lambda t: t.number):
        if A_POINT in t.user_attrs:
            groups[t.user_attrs[A_POINT]].append(t)
    return groups


def point_status(point: GridPoint, ts: Sequence[FrozenTrial], session: str | None = None,
                 fingerprints: Mapping[str, str] | None = None) -> PointStatus:
    """One point's state from its trials (oldest first). FAILED means the latest attempt raised (or, within
    `session`, the point was lost too often); a point whose worker was lost is PENDING, since it will be
    retried; a point whose results are all outdated is STALE until a re-run starts."""
    fingerprints = fingerprints or {}
    ts = tuple(ts)
    complete = [t for t in ts if t.state == TrialState.COMPLETE]
    current = [t for t in complete if not is_outdated(t, fingerprints)]
    outdated = complete[-1] if complete and not current else None
    states = {t.state for t in ts}
    waiting_state = PointState.STALE if outdated is not None else PointState.PENDING
    if current:
        return PointStatus(point, PointState.DONE, ts, result=current[-1])
    if TrialState.RUNNING in states:
        return PointStatus(point, PointState.RUNNING, ts, outdated=outdated)
    if TrialState.WAITING in states or not ts or ts[-1].state == TrialState.COMPLETE:
        return PointStatus(point, waiting_state, ts, outdated=outdated)
    mine = [t for t in ts if session is not None and t.user_attrs.get(A_SESSION) == session]
    lost = [t for t in mine if t.state == TrialState.FAIL and not {A_ERROR, A_INTERRUPTED} & t.user_attrs.keys()]
    if is_error(ts[-1]) or any(map(is_error, mine)) or len(lost) >= MAX_LOST_PER_SESSION:
        attrs = ts[-1].user_attrs
        error = str(attrs[A_ERROR]) if A_ERROR in attrs else (
            f"worker {attrs.get(A_WORKER, '?')} stopped (killed or lost) during the run")
        return PointStatus(point, PointState.FAILED, ts, error, outdated=outdated)
    return PointStatus(point, waiting_state, ts, outdated=outdated)


def point_statuses(points: Sequence[GridPoint], trials: Iterable[FrozenTrial], session: str | None = None,
                   fingerprints: Mapping[str, str] | None = None) -> list[PointStatus]:
    """Each grid point's state (see `point_status`)."""
    groups = by_point(trials)
    return [point_status(p, groups.get(p.key, ()), session, fingerprints) for p in points]


def points_to_enqueue(points: Sequence[GridPoint], trials: Iterable[FrozenTrial],
                      fingerprints: Mapping[str, str] | None = None) -> list[GridPoint]:
    """Points with no current result and no RUNNING or WAITING trial: what a sweep queues when it starts
    (and only then, so a run that raised, or an outdated result re-run, is retried once per invocation:
    a deterministic bug does not loop, and machines that disagree about the data cannot re-run each
    other's results forever)."""
    fingerprints = fingerprints or {}
    groups = by_point(trials)
    busy = (TrialState.RUNNING, TrialState.WAITING)
    return [p for p in points if not any(t.state in busy or t.state == TrialState.COMPLETE and not
                                         is_outdated(t, fingerprints) for t in groups.get(p.key, []))]


def session_failures(trials: Iterable[FrozenTrial], session: str) -> list[FrozenTrial]:
    """Runs that raised in this sweep invocation (what `max_failures` counts)."""
    return [t for t in trials if is_error(t) and t.user_attrs.get(A_SESSION) == session]


def stale_by_language(statuses: Iterable[PointStatus]) -> dict[str, list[GridPoint]]:
    """The STALE points of each language, in grid order: what a sweep re-runs because data changed. Mixture
    runs, which use several languages' data, are listed under "mixtures"."""
    groups: dict[str, list[GridPoint]] = defaultdict(list)
    for s in statuses:
        if s.state == PointState.STALE:
            groups[s.point.language or "mixtures"].append(s.point)
    return dict(groups)


def run_seconds(trial: FrozenTrial) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def run_cost(trial: FrozenTrial) -> RunCost | None:
    """Where a finished run's wall time went (training, scoring, the rest), or None if not recorded."""
    wall = run_seconds(trial)
    if trial.state != TrialState.COMPLETE or wall is None or not {A_TRAIN_S, A_EVAL_S} <= trial.user_attrs.keys():
        return None
    return RunCost(GridPoint.from_attrs(trial.user_attrs).total_pairs, wall, float(trial.user_attrs[A_TRAIN_S]),
                   float(trial.user_attrs[A_EVAL_S]))


def finished_costs(statuses: Sequence[PointStatus]) -> list[RunCost]:
    """The finished runs' costs: the rates that price work outside the sweep (`planner.estimate`)."""
    return [c for s in statuses for t in s.trials if (c := run_cost(t)) is not None]


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
