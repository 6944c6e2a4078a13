"""The target plan, checked by training: each language alone at the pairs the plan says it needs.

The budgeting question users come with is "how many pairs does each language need to reach its target,
with confidence q?" (`budget.languages.<lang>.target`, `budget.target_confidence`). `planner run` answers it
beside the sum plan (`allocation_target.csv`) and checks the answer the cheapest way there is: one
single-language run per language at its planned need, trained and scored exactly like a proxy run (same
recipe, same test split, same instrument as the curves), then
- reached: the achieved score is at least as good as the target;
- inside: the achieved score lies in the plan's interval for that language.
Over many targets, about a share q should be reached, and about the interval's level should fall inside
it. One seed per language: a check of the plan on real runs, not a precise calibration measurement
(benchmarks/target_calibration.py measures that on synthetic truths).

Written to `final/targets.csv`; each run's directory is `final/targets/<lang>-<pairs>-s<seed>`, and a finished
run (its metrics.json under the same settings) is never trained again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from core.config import PlannerConfig, run_settings
from core.files import atomic_write_text
from planner.allocation import read_allocation, summary_path
from trainers.coit import METRICS_FILE, train_one

TARGET_ALLOCATION = "allocation_target.csv"
TARGETS_CSV = "targets.csv"
TARGET_RUNS = "targets"


@dataclass(frozen=True)
class TargetCheck:
    language: str
    target: float
    confidence: float
    pairs: int
    predicted: float
    predicted_low: float
    predicted_high: float
    achieved: float
    reached: bool  # the achieved score is at least as good as the target
    inside: bool  # the achieved score lies inside the plan's interval
    run_dir: str


def reached(achieved: float, target: float, higher_is_better: bool) -> bool:
    return achieved >= target if higher_is_better else achieved <= target


def _finished(run_dir: Path, settings: dict, metric: str) -> float | None:
    """The metric of a run that finished under the same settings, or None."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if body.get("settings") != settings or metric not in body.get("metrics", {}):
        return None
    return float(body["metrics"][metric])


def check_targets(cfg: PlannerConfig, target_csv: Path, final_dir: Path, progress: bool = True,
                  on_check: Callable[[str], None] | None = None) -> list[TargetCheck]:
    """Train each language with a target at its planned pairs (one seed: the first final seed) and compare.
    `on_check`: called with the check's name after each one is done."""
    plan = read_allocation(target_csv)
    summary = json.loads(summary_path(target_csv).read_text(encoding="utf-8"))
    higher = bool(summary.get("higher_is_better", True))
    confidence = float(summary.get("target_confidence") or cfg.budget.target_confidence)
    metric, seed = cfg.fit.metric, cfg.final.seeds[0]
    settings = run_settings(cfg)
    checks = []
    for row in plan.itertuples(index=False):
        target = getattr(row, "target", float("nan"))
        if pd.isna(target) or int(row.pairs) <= 0:
            continue  # no target, or the zero-shot model already reaches it: nothing to train
        pairs = int(row.pairs)
        run_dir = final_dir / TARGET_RUNS / f"{row.language}-{pairs}-s{seed}"
        achieved = _finished(run_dir, settings, metric)
        if achieved is None:
            result = train_one(cfg, row.language, pairs, seed, run_dir=run_dir, progress=progress)
            achieved = float(result.metrics[metric])
            stamp = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
            atomic_write_text(run_dir / METRICS_FILE, json.dumps({**stamp, "settings": settings}, indent=2) + "\n")
        lo, hi = float(row.predicted_low), float(row.predicted_high)
        checks.append(TargetCheck(row.language, float(target), confidence, pairs, float(row.predicted), lo, hi,
                                  achieved, reached(achieved, float(target), higher), lo <= achieved <= hi,
                                  str(run_dir.relative_to(final_dir))))
        if on_check is not None:
            on_check(f"target check {row.language} ({pairs} pairs)")
    return checks


def write_target_checks(checks: list[TargetCheck], final_dir: Path) -> Path:
    path = final_dir / TARGETS_CSV
    columns = list(TargetCheck.__dataclass_fields__)
    table = pd.DataFrame([asdict(c) for c in checks], columns=columns)
    atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
    return path


def target_summary(checks: list[TargetCheck]) -> str:
    """One line: how many targets the runs reached and how many landed inside their intervals."""
    if not checks:
        return "no target to check"
    q = checks[0].confidence
    return (f"target check: {sum(c.reached for c in checks)}/{len(checks)} languages reached their target "
            f"(planned for {100 * q:.0f}% confidence), {sum(c.inside for c in checks)}/{len(checks)} inside "
            "the predicted interval")
