"""Experiment tracking: each finished proxy or final run is also reported to MLflow, TensorBoard or
Weights & Biases (`tracking.backend`), after its run directory has been written.

One small interface (`Tracker`: start a run with its name and parameters, log metrics at a step, log the
final scores, end) with one implementation per backend; each imports its library only when chosen. A run
is reported once it has finished, from the statistics it already keeps (the per-step training loss of
`TrainStats.losses`), so the training loop carries no hook and a slow tracking server never slows a step.

Tracking never loses a run: the run's own files are written first, and any error of the backend is a
warning (`track`). Only a missing library is an error, raised before training (`require_backend`), so a
misconfigured sweep fails at its first run rather than after hours of unreported ones.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from core.errors import UserError

if TYPE_CHECKING:
    from core.config import PlannerConfig
    from trainers.coit import RunResult
    from trainers.muit import MixtureResult

# The import each backend needs, and what to install when it is missing.
_LIBRARIES = {"mlflow": ("mlflow", "pip install mlflow-skinny (or the extra: pip install 'coit-planner[tracking]')"),
              "tensorboard": ("tensorboard", "pip install tensorboard (or pip install 'coit-planner[tracking]')"),
              "wandb": ("wandb", "pip install wandb (or pip install 'coit-planner[wandb]')")}
LOSS_KEY = "train/loss"
EXTRA_LOSS_KEY = "train/extra_loss"


@dataclass
class RunRecord:
    """What is reported for one run: its name, parameters, per-step losses, final scores and timings."""

    name: str
    params: dict[str, object]
    steps: dict[str, list[float]] = field(default_factory=dict)  # metric -> value per optimizer step
    scores: dict[str, float] = field(default_factory=dict)  # evaluation ("bpb", "de/chrf", ...)
    timings: dict[str, float] = field(default_factory=dict)  # seconds, steps, tokens per second


class Tracker:
    """One run's life at a backend: start, per-step metrics, final scores, end."""

    def start(self, name: str, params: Mapping[str, object]) -> None:
        raise NotImplementedError

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        raise NotImplementedError

    def log_final(self, scores: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def end(self, failed: bool = False) -> None:
        raise NotImplementedError


def require_backend(cfg: "PlannerConfig") -> None:
    """A UserError when the configured backend's library is not installed (checked before training)."""
    backend = cfg.tracking.backend
    if backend == "none":
        return
    module, install = _LIBRARIES[backend]
    if importlib.util.find_spec(module) is None:
        raise UserError(f"tracking.backend is '{backend}', but the {module} library is not installed.",
                        f"{install}, or set tracking.backend: none.")


def mlflow_uri(cfg: "PlannerConfig") -> str:
    """`tracking.uri`, else a SQLite store in the output directory (MLflow 3 refuses its old file store)."""
    if cfg.tracking.uri:
        return cfg.tracking.uri
    return f"sqlite:///{(cfg.out / 'mlflow.db').resolve().as_posix()}"


def log_dir(cfg: "PlannerConfig") -> Path:
    """TensorBoard's log directory, or W&B's run-file directory."""
    default = "tensorboard" if cfg.tracking.backend == "tensorboard" else "wandb"
    return Path(cfg.tracking.dir) if cfg.tracking.dir else cfg.out / default


def project(cfg: "PlannerConfig") -> str:
    return cfg.tracking.project or cfg.experiment


@functools.lru_cache(maxsize=4)
def _mlflow_client(uri: str):
    """One client per store and process: opening a SQLite store checks its schema (seconds), and a sweep
    worker reports many runs."""
    from mlflow.tracking import MlflowClient

    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    # The client opens the store at once, creating or migrating its tables; sweep workers that finish their
    # first runs together would race at that (the loser fails on a duplicate column). A lock beside the
    # database lets one create them, then the rest open it. filelock comes with torch.
    from filelock import FileLock

    with FileLock(uri.removeprefix("sqlite:///") + ".lock"):
        return MlflowClient(tracking_uri=uri)


class MlflowTracker(Tracker):
    # Through MlflowClient, not the fluent `mlflow.start_run`: no process-global active run to clash with a
    # caller's own MLflow run, and the URI is this config's, not the environment's.
    def __init__(self, uri: str, experiment: str):
        self.client, self.experiment, self.run_id, self.pending = _mlflow_client(uri), experiment, None, []

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment)
        except Exception:  # another sweep worker created it meanwhile
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def start(self, name, params):
        from mlflow.entities import Param

        self.run_id = self.client.create_run(self._experiment_id(), run_name=name).info.run_id
        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_step(self, step, metrics):
        from mlflow.entities import Metric

        # Buffered: one database write per thousand values, not one per step.
        self.pending += [Metric(k, float(v), 0, step) for k, v in metrics.items()]

    def log_final(self, scores, step):
        self.log_step(step, scores)
        for i in range(0, len(self.pending), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=self.pending[i:i + 1000])
        self.pending = []

    def end(self, failed=False):
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class TensorBoardTracker(Tracker):
    """One subfolder of the log directory per run (its name), so TensorBoard lists runs side by side."""

    def __init__(self, directory: Path):
        self.directory, self.writer, self.params = directory, None, {}

    def start(self, name, params):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.directory / name))
        self.params = dict(params)
        self.writer.add_text("params", "\n".join(f"    {k}: {v}" for k, v in self.params.items()))

    def log_step(self, step, metrics):
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def log_final(self, scores, step):
        from torch.utils.tensorboard.summary import hparams

        for key, value in scores.items():
            self.writer.add_scalar(key, value, step)
        # The HParams dashboard's record (parameters beside final scores) without the extra time-stamped
        # run folder that SummaryWriter.add_hparams would create.
        values = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.params.items()}
        for summary in hparams(values, dict(scores)):
            self.writer.file_writer.add_summary(summary)

    def end(self, failed=False):
        if self.writer is not None:
            self.writer.close()


class WandbTracker(Tracker):
    def __init__(self, directory: Path, project_name: str, mode: str):
        self.directory, self.project, self.mode, self.run = directory, project_name, mode, None

    def start(self, name, params):
        import wandb

        self.directory.mkdir(parents=True, exist_ok=True)  # W&B does not create it
        self.run = wandb.init(project=self.project, name=name, dir=str(self.directory), mode=self.mode,
                              config=dict(params),
                              settings=wandb.Settings(silent=True, console="off"))

    def log_step(self, step, metrics):
        self.run.log(dict(metrics), step=step)

    def log_final(self, scores, step):
        self.run.summary.update(dict(scores))

    def end(self, failed=False):
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)


def make_tracker(cfg: "PlannerConfig") -> Tracker | None:
    backend = cfg.tracking.backend
    if backend == "mlflow":
        return MlflowTracker(mlflow_uri(cfg), project(cfg))
    if backend == "tensorboard":
        return TensorBoardTracker(log_dir(cfg))
    if backend == "wandb":
        return WandbTracker(log_dir(cfg), project(cfg), cfg.tracking.mode)
    return None


def send(tracker: Tracker, record: RunRecord) -> None:
    """Report one finished run: parameters, every step's metrics, then scores and timings at the last step."""
    tracker.start(record.name, record.params)
    try:
        length = max((len(v) for v in record.steps.values()), default=0)
        for step in range(length):
            values = {k: v[step] for k, v in record.steps.items() if step < len(v) and math.isfinite(v[step])}
            if values:
                tracker.log_step(step, values)
        tracker.log_final({**record.scores, **record.timings}, max(length - 1, 0))
    except BaseException:
        tracker.end(failed=True)
        raise
    tracker.end()


def track(cfg: "PlannerConfig", record: RunRecord) -> bool:
    """Send `record` to the configured backend. Never raises: a backend's error is a warning naming the
    run (its files are already written). True when it was reported."""
    if cfg.tracking.backend == "none":
        return False
    try:
        send(make_tracker(cfg), record)
        return True
    except Exception as err:  # noqa: BLE001 — whatever the backend throws, the run itself is done
        warnings.warn(f"tracking: run {record.name} was not reported to {cfg.tracking.backend}: "
                      f"{type(err).__name__}: {err}", RuntimeWarning, stacklevel=2)
        return False


# ------------------------------------------------------------------------------------ what a run reports


def _numbers(values: Mapping[str, object], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a mapping (a zero-shot run's NaN training loss is no score)."""
    return {prefix + k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _flat(value, prefix: str) -> dict[str, object]:
    if isinstance(value, Mapping):
        out = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(value) if isinstance(value, (list, tuple)) else value}


def recipe_params(cfg: "PlannerConfig") -> dict[str, object]:
    """The settings the run's result depends on (`run_settings`, flattened: "train.lr", ...) and their
    hash, equal to the sweep study's settings hash, to group runs trained under one recipe."""
    from core.config import run_settings

    settings = run_settings(cfg)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return {"experiment": cfg.experiment, "settings_hash": digest, **_flat(settings, "")}


def run_name(cfg: "PlannerConfig", run_dir: str | Path) -> str:
    """The run directory relative to the output directory ("runs/de-60-s0", "final/plan/s0"): unique per run."""
    path = Path(run_dir)
    try:
        return path.resolve().relative_to(cfg.out.resolve()).as_posix()
    except ValueError:
        return path.name


def _step_metrics(losses: Sequence[float], extra_losses: Sequence[float]) -> dict[str, list[float]]:
    steps = {LOSS_KEY: [float(v) for v in losses]}
    if extra_losses:
        steps[EXTRA_LOSS_KEY] = [float(v) for v in extra_losses]
    return steps


def proxy_record(cfg: "PlannerConfig", result: "RunResult") -> RunRecord:
    """A proxy run (`trainers.coit.train_one`): its language, size and seed, scores as in metrics.json."""
    train = result.train
    return RunRecord(
        name=run_name(cfg, result.run_dir),
        params={"kind": "proxy", "language": result.language, "n_pairs": result.n_pairs, "seed": result.seed,
                "n_tokens": result.n_tokens, **recipe_params(cfg)},
        steps=_step_metrics(train.get("losses", []), train.get("extra_losses", [])),
        scores=_numbers(result.metrics),
        timings=_numbers({"train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds,
                          "steps": result.steps, "tokens_per_second": train.get("tokens_per_second", 0.0)},
                         "time/"),
    )


def mixture_record(cfg: "PlannerConfig", result: "MixtureResult", stats, seed: int) -> RunRecord:
    """A mixture run (`trainers.muit.train_mixture`: a final run or a mixture proxy run): pairs per
    language, and every language's scores as "<lang>/<metric>"."""
    scores = {}
    for lang, metrics in result.metrics.items():
        scores.update(_numbers(metrics, f"{lang}/"))
    return RunRecord(
        name=run_name(cfg, result.run_dir),
        params={"kind": "mixture", "mixture": result.name, "seed": seed,
                **{f"pairs.{lang}": n for lang, n in result.counts.items()}, **recipe_params(cfg)},
        steps=_step_metrics(stats.losses, stats.extra_losses),
        scores=scores,
        timings=_numbers({"train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds,
                          "steps": result.steps, "tokens_per_second": stats.tokens_per_second}, "time/"),
    )

