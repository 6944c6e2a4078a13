"""The ledger: one optuna study, used as optuna intends (docs/sweep.md).

One process at a time prepares the study (`prepare`, under the storage's lock): creates or loads it,
records or checks the settings hash, fails runs whose workers died, and enqueues every point without a
current result. Workers only take queued trials (`Study.optimize` pops WAITING trials; `worker`).
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, TrialState

from core.config import PlannerConfig
from core.errors import UserError
from planner.sweep.identity import A_DATA, A_WORKER, S_RUN_HASH, GridPoint, point_fingerprint, run_config_hash
from planner.sweep.state import MAX_LOST_PER_SESSION, points_to_enqueue
from planner.sweep.storage import StorageSpec, exclusive, open_storage

# A run lost (its worker killed) is re-queued by optuna's retry callback at most this often; the next
# `planner sweep` queues it afresh. A run that always kills its worker (out of memory) does not loop.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ExperimentalWarning)
    RETRY = RetryHeartbeatStaleTrialCallback(max_retry=MAX_LOST_PER_SESSION)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(trial: FrozenTrial) -> bool:
    """A RUNNING trial whose worker ran on this machine and is gone (a journal has no heartbeat)."""
    host, _, pid = str(trial.user_attrs.get(A_WORKER, "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        pass
    return False


@dataclass
class Ledger:
    """One study. `fingerprints` (language → data fingerprint) is the data this process sees: recorded on
    the trials it queues and runs, and a result on other data does not count as done."""

    study: optuna.Study
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    spec: StorageSpec | None = None

    @property
    def storage(self):
        return self.study._storage

    @property
    def heartbeat(self) -> bool:
        """Whether the storage fails silent runs itself (optuna's RDB heartbeat); a journal has none."""
        return self.spec is None or self.spec.kind == "rdb"

    def trials(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states)

    def data_attrs(self, point: GridPoint) -> dict[str, Any]:
        fingerprint = point_fingerprint(point, self.fingerprints)
        return {} if fingerprint is None else {A_DATA: fingerprint}

    def enqueue(self, points: Iterable[GridPoint]) -> int:
        n = 0
        for n, point in enumerate(points, 1):
            self.study.enqueue_trial({}, user_attrs={**point.user_attrs(), **self.data_attrs(point)})
        return n

    def set_attrs(self, trial_id: int, attrs: Mapping[str, Any]) -> None:
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, value)

    def fail_lost(self) -> None:
        """Fail the runs whose workers are gone and re-queue them (optuna's retry callback). On an RDB
        storage that is optuna's own heartbeat check; a journal has none, so a run is judged by its worker's
        process, on this machine only (docs/sweep.md: a run lost on another machine waits for the next
        `planner sweep` there, or on any machine once the trial is failed by hand)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            if self.heartbeat:
                fail_stale_trials(self.study)
                return
            for trial in self.trials(states=(TrialState.RUNNING,)):
                if _dead_here(trial):
                    try:
                        if self.storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                            RETRY(self.study, self.storage.get_trial(trial._trial_id))
                    except UpdateFinishedTrialError:
                        pass

    def may_come_back(self, trial: FrozenTrial) -> bool:
        """A RUNNING trial a worker should wait for before it exits: it may finish, or be failed and
        re-queued. On a journal, only this machine's (others' could never be judged from here)."""
        if self.heartbeat:
            return True
        host = str(trial.user_attrs.get(A_WORKER, "")).rpartition(":")[0]
        return host in ("", socket.gethostname())


def open_ledger(
    cfg: PlannerConfig, spec: StorageSpec, create: bool, fingerprints: Mapping[str, str] | None = None,
) -> Ledger:
    """The study named after `experiment`. `create`: create it if missing (call under `exclusive`, as
    `prepare` does) and record this config's settings hash on it, or refuse a study recorded under another
    (under the lock, so of two configs started together the first stands); else a missing study is a user
    error. The heartbeat is on either way (`sweep.heartbeat_seconds`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports the study itself; no INFO chatter
    grace = cfg.sweep.grace_seconds or 4 * cfg.sweep.heartbeat_seconds
    # optuna fails a run silent for the grace period and calls the retry callback
    beat = dict(heartbeat_interval=cfg.sweep.heartbeat_seconds, grace_period=grace, heartbeat_stale_trial_callback=RETRY)
    storage = open_storage(spec, create=create, heartbeat=beat)
    name = cfg.experiment
    if not create:
        try:
            return Ledger(optuna.load_study(study_name=name, storage=storage), dict(fingerprints or {}), spec)
        except KeyError:
            raise UserError(f"The storage {spec.display} holds no sweep for experiment '{name}'.",
                            "Run `planner sweep` first, or check `experiment` and --storage.") from None
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
    want, have = run_config_hash(cfg), study.user_attrs.get(S_RUN_HASH)
    if have is None:
        study.set_user_attr(S_RUN_HASH, want)
    elif have != want:
        raise UserError(
            f"The sweep '{name}' in {spec.display} was run with different data/model/train "
            f"settings (settings hash {have}, this config {want}); mixing their results would be wrong.",
            "Give this config a new `experiment` name (or output_dir for the default storage), or restore "
            "the settings it was run with.",
        )
    return Ledger(study, dict(fingerprints or {}), spec)


def prepare(cfg: PlannerConfig, spec: StorageSpec, points_of, fingerprints: Mapping[str, str]) -> tuple[Ledger, int]:
    """What one `planner sweep` does before its workers start, alone (the storage's lock): open or create
    the study, check its settings, fail lost runs, and queue every point (`points_of`: the study's trials
    → the sweep's points) without a current result or a queued or running trial. Returns the ledger and
    how many points were queued."""
    with exclusive(spec, cfg.experiment):
        ledger = open_ledger(cfg, spec, create=True, fingerprints=fingerprints)
        ledger.fail_lost()
        trials = ledger.trials()
        queued = ledger.enqueue(points_to_enqueue(points_of(trials), trials, fingerprints=fingerprints))
    return ledger, queued
