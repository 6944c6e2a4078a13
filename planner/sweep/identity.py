"""What identifies a proxy run: its grid point, the settings it was trained under, and its data.

A grid point (`language`, `n_pairs`, `seed`) names a run; a mixture point (`mixture`: the languages of a
uniform mixture, `n_pairs` each) names one model scored on every language of its mixture; a probe is a
mixture point with its own pairs per language (`composition`, `n_pairs` 0). Two hashes say whether an old
result still answers it: the study's settings hash (`run_config_hash`; a study refuses a config whose hash
differs) and, per language, a fingerprint of the data (training pool and test split) recorded on every
trial: the settings hash cannot see a corpus file edited in place, the fingerprint can.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from core.config import PlannerConfig, run_settings

# Trial user attributes (the trial's record; shown as-is by optuna-dashboard).
A_POINT, A_LANGUAGE, A_PAIRS, A_SEED = "point", "language", "n_pairs", "seed"
A_SESSION, A_WORKER = "session", "worker"
# The GPUs the claiming worker owned, as its CUDA_VISIBLE_DEVICES ("2,3"); absent when it ran on the CPU.
A_DEVICES = "devices"
# A run's result, under the runner's field names (`planner.runners.result_record`).
A_METRICS, A_TOKENS, A_TRAIN_S, A_EVAL_S, A_STEPS, A_RUN_DIR = (
    "metrics", "n_tokens", "train_seconds", "eval_seconds", "steps", "run_dir",
)
A_ERROR, A_TRACEBACK, A_INTERRUPTED = "error", "traceback", "interrupted"
# The fingerprint of the language's data (training pool + test split) the trial was queued for or ran on.
A_DATA = "data_fingerprint"
# A mixture point's languages (a list; absent on a per-language point), its left-out language ("" if none)
# and a probe's pairs per language (a list aligned with the languages; absent on a uniform mixture).
A_MIXTURE, A_WITHOUT, A_COMPOSITION = "mixture", "without", "composition"
# Study user attribute: the hash of every setting that changes a run's result.
S_RUN_HASH = "run_config_hash"


@dataclass(frozen=True, order=True)
class GridPoint:
    language: str  # "" for a mixture point
    n_pairs: int  # pairs of the language; of a mixture point, of each of its languages
    seed: int
    mixture: tuple[str, ...] = ()  # a mixture point's languages, all scored (sorted); () for a per-language run
    without: str = ""  # a leave-one-out mixture's language trained with 0 pairs (still scored)
    composition: tuple[int, ...] = ()  # a probe's pairs per language of `mixture` (then n_pairs is 0)

    @property
    def key(self) -> str:
        """Also the run directory's name: `<lang>-<pairs>-s<seed>`,
        `mixture-<pairs>-<l1+l2…>[-without-<l>]-s<seed>`, or a probe's `mixture-<l1><pairs1>+…-s<seed>`."""
        if self.composition:
            return f"mixture-{composition_label(self.pairs)}-s{self.seed}"
        if self.mixture:
            left_out = f"-without-{self.without}" if self.without else ""
            return f"mixture-{self.n_pairs}-{'+'.join(self.mixture)}{left_out}-s{self.seed}"
        return f"{self.language}-{self.n_pairs}-s{self.seed}"

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages whose data the run trains or is scored on."""
        return self.mixture or (self.language,)

    @property
    def pairs(self) -> dict[str, int]:
        """Training pairs per language (a mixture's left-out language: 0)."""
        if self.composition:
            return dict(zip(self.mixture, self.composition))
        return {lang: 0 if lang == self.without else self.n_pairs for lang in self.languages}

    @property
    def total_pairs(self) -> int:
        """What the run trains on, all languages together (what its run time grows with)."""
        return sum(self.pairs.values())

    def user_attrs(self) -> dict[str, Any]:
        attrs = {A_POINT: self.key, A_LANGUAGE: self.language, A_PAIRS: self.n_pairs, A_SEED: self.seed}
        if self.mixture:
            attrs |= {A_MIXTURE: list(self.mixture), A_WITHOUT: self.without}
        if self.composition:
            attrs[A_COMPOSITION] = list(self.composition)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "GridPoint":
        return cls(str(attrs.get(A_LANGUAGE, "")), int(attrs[A_PAIRS]), int(attrs[A_SEED]),
                   tuple(attrs.get(A_MIXTURE) or ()), str(attrs.get(A_WITHOUT) or ""),
                   tuple(int(n) for n in attrs.get(A_COMPOSITION) or ()))


def composition_label(pairs: Mapping[str, int]) -> str:
    """`el44+ja549+tr202+vi4`: a probe's pairs per language, in its languages' (sorted) order."""
    return "+".join(f"{lang}{n}" for lang, n in pairs.items())


def mixture_name(point: GridPoint) -> str:
    """runs.csv's `mixture` value: `uniform-<pairs>`, `uniform-<pairs>-without-<code>`, or a probe's
    `probe-<code><pairs>+…`."""
    if point.composition:
        return f"probe-{composition_label(point.pairs)}"
    return f"uniform-{point.n_pairs}" + (f"-without-{point.without}" if point.without else "")


def mixture_points(cfg: PlannerConfig) -> list[GridPoint]:
    """The mixture proxy runs of `sweep.mixtures` (every language, N pairs each), the probes of
    `sweep.probes` (their own pairs per language) and, with `sweep.leave_one_out`, one run without each
    language's data at `sweep.leave_one_out_size` (default the largest; that language is still scored: its
    row measures what the others' data alone do for it); every sweep seed."""
    everyone = tuple(sorted(cfg.languages))
    groups = [(n, "") for n in cfg.sweep.mixtures]
    if cfg.sweep.leave_one_out_pairs is not None:
        groups += [(cfg.sweep.leave_one_out_pairs, out) for out in cfg.languages]
    points = [GridPoint("", n, s, everyone, out) for n, out in groups for s in cfg.sweep.seeds]
    return points + [GridPoint("", 0, s, everyone, "", tuple(probe[lang] for lang in everyone))
                     for probe in cfg.sweep.probes for s in cfg.sweep.seeds]


def grid_points(cfg: PlannerConfig) -> list[GridPoint]:
    """languages × sizes × seeds, largest size first: the longest runs start first, so parallel workers
    do not end the sweep waiting on one big run (longest-processing-time-first scheduling)."""
    points = [GridPoint(lang, n, s) for lang in cfg.languages for n in cfg.sweep.sizes for s in cfg.sweep.seeds]
    return sorted(points, key=lambda p: point_order(cfg, p))


def point_order(cfg: PlannerConfig, point: GridPoint) -> tuple:
    """Longest run first; then configured language order (mixtures after single languages), seed."""
    first = cfg.languages.index(point.language) if point.language in cfg.languages else len(cfg.languages)
    return (-point.total_pairs, first, point.without, point.composition, point.seed)


def _fixed(points: tuple[GridPoint, ...], trials: Sequence[Any] = ()) -> list[GridPoint]:
    return list(points)


def sweep_points(cfg: PlannerConfig) -> Callable[[Sequence[Any]], list[GridPoint]]:
    """The grid and the mixture proxy runs in the sweep's order, as the `points` seam of `run_sweep` takes
    them: a picklable function of the study's trials (research code plugs in a design that grows with
    its results; the grid ignores them)."""
    return partial(_fixed, tuple(sorted(grid_points(cfg) + mixture_points(cfg), key=lambda p: point_order(cfg, p))))


def run_dir_for(cfg: PlannerConfig, point: GridPoint) -> Path:
    from trainers.coit import default_run_dir  # light: trainers.coit imports torch only inside train_one

    if point.mixture:
        return cfg.out / "mixture_runs" / point.key
    return default_run_dir(cfg, point.language, point.n_pairs, point.seed)


def point_fingerprint(point: GridPoint, fingerprints: Mapping[str, str]) -> str | None:
    """The data fingerprint a run of this point trains and is scored on: its language's, or for a mixture a
    hash of its languages' (None when any of them has none: then it is never judged outdated)."""
    found = [fingerprints.get(lang) for lang in point.languages]
    if any(f is None for f in found):
        return None
    if not point.mixture:
        return found[0]
    return hashlib.sha256("+".join(found).encode()).hexdigest()[:16]


def run_config_hash(cfg: PlannerConfig) -> str:
    """Hash of everything a proxy run's result depends on (not the orchestration: sweep, fit, budget,
    final; not model.threads, which workers set). A study keeps it so that results trained under other
    settings are never silently mixed with new ones."""
    # Not the top-level seed: proxy runs use sweep.seeds; the top-level one seeds the bootstrap and solver.
    return hashlib.sha256(json.dumps(run_settings(cfg), sort_keys=True).encode()).hexdigest()[:16]
