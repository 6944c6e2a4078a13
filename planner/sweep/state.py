"""Each grid point's state, derived from its trials: pure functions, no storage access.

A point is DONE when its latest COMPLETE trial is a *current* result; STALE when its only results were
trained on data that has changed since (a different data fingerprint); RUNNING, FAILED or PENDING
otherwise. What the sweep enqueues next and what `planner status` shows both come from here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from optuna.trial import FrozenTrial, TrialState

from planner.sweep.identity import (
    A_DATA, A_ERROR, A_INTERRUPTED, A_POINT, A_SESSION, A_WORKER, GridPoint, point_fingerprint,
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
