"""The ledger: one study in one storage, read and written through the public `BaseStorage` API.

Trials move WAITING (queued) → RUNNING (claimed by one worker) → COMPLETE / FAIL / PRUNED; the package
docstring (`planner.sweep`) argues why no point runs twice and none is lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from core.config import PlannerConfig
from core.errors import UserError
from planner.sweep.identity import (
    A_DATA, A_DEVICES, A_HEARTBEAT, A_POINT, A_SESSION, A_SUPERSEDED, A_WORKER, S_RUN_HASH, GridPoint,
    point_fingerprint, run_config_hash,
)
from planner.sweep.state import is_current_result, is_silent, is_superseded
from planner.sweep.storage import StorageSpec, open_storage, retry_creation_race


# A sweep that finds a study without its settings record waits this long for the study's creator to write it.
SETTINGS_WAIT_S = 5.0


def _trial_id(trial: FrozenTrial) -> int:
    # Storage calls take the storage-wide id; FrozenTrial exposes it only under this name.
    return trial._trial_id


@dataclass
class Ledger:
    """One study in one storage. `fingerprints` (language → data fingerprint) is the data this process
    sees: recorded on the trials it queues and claims, and a result on other data does not count as done."""

    storage: BaseStorage
    study_id: int
    study_name: str
    fingerprints: Mapping[str, str] = field(default_factory=dict)

    def trials(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self.study_id, deepcopy=False, states=states)

    def _data_attrs(self, point: GridPoint) -> dict[str, Any]:
        fingerprint = point_fingerprint(point, self.fingerprints)
        return {} if fingerprint is None else {A_DATA: fingerprint}

    def enqueue(self, points: Iterable[GridPoint]) -> int:
        n = 0
        for point in points:
            attrs = {**point.user_attrs(), **self._data_attrs(point)}
            template = optuna.trial.create_trial(state=TrialState.WAITING, user_attrs=attrs)
            self.storage.create_new_trial(self.study_id, template_trial=template)
            n += 1
        return n

    def pop(self, keys: Iterable[str]) -> FrozenTrial | None:
        """Claim a WAITING trial of one of these points (compare-and-set WAITING → RUNNING): of the point
        that comes first in `keys`, the oldest. The sweep's order, not the queue's, decides what runs next:
        a point re-queued after a lost run (or a resumed sweep) keeps its place, so an adaptive sweep's
        start design never waits behind mixture runs queued before it was re-queued."""
        rank = {key: i for i, key in enumerate(keys)}
        waiting = [t for t in self.trials(states=(TrialState.WAITING,)) if t.user_attrs.get(A_POINT) in rank]
        for trial in sorted(waiting, key=lambda t: (rank[t.user_attrs[A_POINT]], t.number)):
            try:
                if self.storage.set_trial_state_values(_trial_id(trial), state=TrialState.RUNNING):
                    return trial
            except UpdateFinishedTrialError:
                continue
        return None

    def set_attrs(self, trial: FrozenTrial, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(_trial_id(trial), key, value)

    def claim(self, trial: FrozenTrial, session: str, worker: str, devices: str = "") -> bool:
        """Own a popped trial, unless its point is already running or done (on current data) elsewhere
        (see the package docstring, 1b). Records the data this worker will train on, and the GPUs it owns
        (`devices`, its CUDA_VISIBLE_DEVICES; "" on the CPU, not recorded)."""
        self.set_attrs(trial, {A_SESSION: session, A_WORKER: worker, A_HEARTBEAT: time.time(),
                               **({A_DEVICES: devices} if devices else {}),
                               **self._data_attrs(GridPoint.from_attrs(trial.user_attrs))})
        key = trial.user_attrs[A_POINT]
        for other in self.trials():
            if other.number == trial.number or other.user_attrs.get(A_POINT) != key or is_superseded(other):
                continue
            if other.state == TrialState.RUNNING or is_current_result(other, self.fingerprints):
                reason = f"trial {other.number} is {other.state.name.lower()} for the same point"
                self.set_attrs(trial, {A_SUPERSEDED: reason})
                self.finish(trial, TrialState.PRUNED)
                return False
        return True

    def finish(self, trial: FrozenTrial, state: TrialState, value: float | None = None) -> bool:
        """Finish a trial; False when someone else finished it first (it was declared lost)."""
        try:
            values = None if value is None else [value]
            self.storage.set_trial_state_values(_trial_id(trial), state=state, values=values)
            return True
        except UpdateFinishedTrialError:
            return False

    def fail_silent(self, grace_seconds: float, now: float | None = None) -> list[int]:
        """Fail RUNNING trials whose heartbeat is older than the grace period; return their numbers."""
        now = time.time() if now is None else now
        lost = []
        for trial in self.trials(states=(TrialState.RUNNING,)):
            if is_silent(trial, now, grace_seconds) and self.finish(trial, TrialState.FAIL):
                lost.append(trial.number)
        return lost


def _get_or_create_study(storage: BaseStorage, name: str, create: bool, spec: StorageSpec) -> tuple[int, bool]:
    """The study's id, and whether this call created it."""
    try:
        return storage.get_study_id_from_name(name), False
    except KeyError:
        if not create:
            raise UserError(
                f"The storage {spec.display} holds no sweep for experiment '{name}'.",
                "Run `planner sweep` first, or check `experiment` and --storage.",
            ) from None
    try:
        # The value is a run's wall seconds: a grid has nothing to optimise, but a COMPLETE trial
        # needs a finite value, and a run whose metric came out NaN is still a result for `fit`.
        return storage.create_new_study([StudyDirection.MINIMIZE], study_name=name), True
    except DuplicatedStudyError:  # another sweep created it a moment ago
        return storage.get_study_id_from_name(name), False


def open_ledger(
    cfg: PlannerConfig, spec: StorageSpec, create: bool, fingerprints: Mapping[str, str] | None = None,
) -> Ledger:
    """The study named after `experiment`, created when asked; refuses a study trained under other settings."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports the study itself; no INFO chatter
    storage = open_storage(spec, create=create)
    name = cfg.experiment
    study_id, created = retry_creation_race(lambda: _get_or_create_study(storage, name, create, spec),
                                            f"opening study '{name}' in {spec.display}")
    ledger = Ledger(storage, study_id, name, dict(fingerprints or {}))
    if create:
        retry_creation_race(lambda: check_run_hash(ledger, cfg, spec, created),
                            f"recording the settings of '{name}'")
    return ledger


def _recorded_hash(ledger: Ledger) -> str | None:
    return ledger.storage.get_study_user_attrs(ledger.study_id).get(S_RUN_HASH)


def check_run_hash(
    ledger: Ledger, cfg: PlannerConfig, spec: StorageSpec, created: bool = False, wait_s: float = SETTINGS_WAIT_S,
) -> None:
    """Record this config's settings hash on the study it created, or refuse a study recorded under
    another one.

    Only the creator writes: two sweeps that start together on a new storage would otherwise both find
    the record missing and both write it, and on a journal file (last write wins) each could read back
    its own. The others wait for the creator's record. If none appears (the creator died in between,
    or the study came from elsewhere) they write it themselves and read it back, so that at worst the
    first stored record stands on SQL storages (a second insert of the key is dropped)."""
    want = run_config_hash(cfg)
    if created:
        ledger.storage.set_study_user_attr(ledger.study_id, S_RUN_HASH, want)
        return
    deadline = time.monotonic() + wait_s
    while (have := _recorded_hash(ledger)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if have is None:
        ledger.storage.set_study_user_attr(ledger.study_id, S_RUN_HASH, want)
        have = _recorded_hash(ledger)
    if have != want:
        raise UserError(
            f"The sweep '{ledger.study_name}' in {spec.display} was run with different data/model/train "
            f"settings (settings hash {have}, this config {want}); mixing their results would be wrong.",
            "Give this config a new `experiment` name (or output_dir for the default storage), or restore "
            "the settings it was run with.",
        )
