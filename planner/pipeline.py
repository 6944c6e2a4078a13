"""`planner run`: data check → sweep → fit → allocate → launch → report, resumable.

Every stage reads and writes the same plain files as its own CLI verb. A stage is skipped when its
outputs exist and its *fingerprint* — a hash of the config sections it depends on and of its input
files' bytes — matches the one recorded when it last finished (`.planner/stages.json` in the output
directory). So a re-run after Ctrl-C or a crash redoes only what is missing or out of date, and editing
e.g. `budget.total` re-runs allocate, launch and report but never the sweep. Inside the sweep the optuna
ledger additionally keeps finished proxy runs across interruptions.

Every fingerprint also covers the planner's own source code (`code_digest`): after an upgrade that changes
how curves are fitted or plans made, the fit, plan and report are made again instead of being taken for up
to date. The sweep and launch stages are entered again too, but they train nothing that already finished:
proxy runs are kept by the optuna ledger and final runs by their identity (config and mixture, not code).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from core.config import PlannerConfig, config_hash, write_resolved
from core.errors import UserError
from core.files import atomic_write_text, check_output_dir
from planner.budget import (
    allocation_settings, check_budget_languages, check_pilot_data, data_fingerprints, targets_from_config,
)
from planner.estimate import LaunchParts, format_duration, launch_parts, measured_rates, run_costs
from planner.target_check import TARGET_ALLOCATION, TARGETS_CSV, check_targets, target_summary, write_target_checks

STAMPS = Path(".planner") / "stages.json"
UNBOUNDED_BUDGET = 1e15  # the target plan beside another objective's plan: its cost is the answer, not a limit
# The packages whose code decides what a stage writes.
CODE_PACKAGES = ("core", "fits", "planner", "reports", "trainers")


def file_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.name).encode())
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()[:16]


@functools.cache
def code_digest() -> str:
    """A hash of the planner's own Python source (path and bytes of every module of `CODE_PACKAGES`)."""
    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in spec.submodule_search_locations or []:
            for path in sorted(Path(root).rglob("*.py")):
                h.update(f"{package}/{path.relative_to(root).as_posix()}".encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Stage:
    name: str
    outputs: list[Path]
    fingerprint: Callable[[], str]  # evaluated only when the stage's turn comes (inputs exist by then)
    run: Callable[[], str]  # does the work; returns a one-line summary
    summary: str = ""
    skipped: bool = False
    seconds: float = 0.0


@dataclass
class PipelineResult:
    output_dir: Path
    stages: list[Stage] = field(default_factory=list)
    seconds: float = 0.0


def _read_stamps(out: Path) -> dict:
    path = out / STAMPS
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}  # a torn stamp file only costs re-running stages, never wrong results


def _write_stamp(out: Path, name: str, fingerprint: str) -> None:
    stamps = _read_stamps(out)
    stamps[name] = fingerprint
    atomic_write_text(out / STAMPS, json.dumps(stamps, indent=2))


def checked_datasets(cfg: PlannerConfig):
    """Every language's data, checked to hold the sweep's pilot data (its largest run; the test split is set
    aside first), after the budget's per-language settings (prices, floors within caps): UserError if not.
    Caps and floors may exceed the data held: the plan's pairs beyond it are bought."""
    from trainers.data import load_languages
    from trainers.prompts import check_general_tasks

    check_budget_languages(cfg)
    datasets = load_languages(cfg.data, cfg.languages)
    check_pilot_data(cfg, datasets)
    check_general_tasks(cfg.data, cfg.languages)
    return datasets


def fit_stage(cfg: PlannerConfig, runs_csv: Path, fits_json: Path):
    """The config's fit of a runs table, saved to `fits_json`; a UserError when no language can be fitted."""
    from fits import fit_runs, read_runs_csv, save_fits

    fc = cfg.fit
    fitset = fit_runs(read_runs_csv(runs_csv), fc.metric, law=fc.law, x=fc.x, ceiling=fc.ceiling,
                      bootstrap=fc.bootstrap, seed=cfg.seed, pooling=fc.pooling)
    if not fitset.languages:
        why = "; ".join(f"{lang}: {reason}" for lang, reason in fitset.skipped.items())
        raise UserError(f"No language could be fitted ({why}).",
                        "Check runs.csv (`planner status`): each language needs two or more sizes.")
    save_fits(fitset, fits_json)
    return fitset


def allocate_stage(cfg: PlannerConfig, fits_json: Path, data_stats: Path, allocation_csv: Path):
    """The config's allocation of a fits file, written to `allocation_csv` (+ its summary). Available pairs
    per language = its training pool, as the data stage recorded it in `data_stats`. When the config sets
    targets under another objective, the target plan (the fewest pairs reaching each target with
    confidence `budget.target_confidence`) is written beside it as `allocation_target.csv`."""
    from fits import load_fits
    from planner.allocation import allocate, write_allocation

    pools = pd.read_csv(data_stats, index_col="language")["train"].astype(int).to_dict()
    b = cfg.budget
    fitset, common = load_fits(fits_json), allocation_settings(cfg, pools)
    targets = common["targets"]
    plan = allocate(fitset, objective=b.objective, **common)
    write_allocation(plan, allocation_csv)
    if targets and b.objective != "target":
        # What reaching the targets costs, whatever the sum plan's budget: the data held bounds it, not the budget.
        # Checked by training each language alone (final/targets.csv): on its own curve, not in-mixture ones.
        need = allocate(fitset, objective="target", inside_mixture=False, **{**common, "budget": UNBOUNDED_BUDGET})
        write_allocation(need, allocation_csv.with_name(TARGET_ALLOCATION))
    return plan


def _purchase_summary(plan) -> str:
    """The pairs the plan takes beyond the pools (caps above the data held): the final runs train only data
    in hand, so they must be bought and added to the data source first."""
    if not plan.to_buy:
        return ""
    from core.units import money

    cost = f" ({money(plan.to_buy_cost, plan.currency)})" if plan.to_buy_cost is not None else ""
    return (f"; to buy {plan.to_buy:,.0f} pairs{cost} beyond the pools (allocation.csv to_buy): the final runs "
            "need them in the data source")


def launch_pricer(cfg: PlannerConfig) -> Callable[[list], LaunchParts | None]:
    """The launch stage's work priced from finished proxy runs (their `RunCost`s); None before any."""
    from trainers.coit import pair_tokens
    from trainers.data import load_languages
    from trainers.model import load_tokenizer

    tokens_per_pair = None
    if cfg.budget.unit == "tokens":  # the data's mean, from a sample of each pool (the plan's own mix differs)
        tokenizer, sample = load_tokenizer(cfg), []
        for data in load_languages(cfg.data, cfg.languages).values():
            sample += data.train[:100]
        tokens_per_pair = pair_tokens(tokenizer, sample) / max(len(sample), 1)
    threads = cfg.model.threads or os.cpu_count() or 1

    def parts(costs) -> LaunchParts | None:
        rates = measured_rates(costs, cfg.data.test_size)
        return None if rates is None else launch_parts(cfg, rates, tokens_per_pair, threads)

    return parts


def launch_estimator(cfg: PlannerConfig) -> Callable[[list], float | None]:
    """The launch stage's seconds as a function of the sweep's finished runs (for the whole-run ETA)."""
    parts = launch_pricer(cfg)
    return lambda costs: None if (p := parts(costs)) is None else p.total


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LaunchClock:
    """The time left of the launch stage, told after each final run and target check: priced from the
    proxy runs at the start (`LaunchParts`), rescaled by the final runs this launch trained."""

    def __init__(self, parts: LaunchParts | None, log=print, now: Callable[[], float] = time.monotonic):
        self.parts, self.log, self.now, self.measured, self.runs, self.checks = parts, log, now, [], 0, 0
        self.started = now()

    def final_run_done(self, name: str) -> None:
        self.measured.append(self.now() - self.started)
        self.runs += 1
        self._tell(name)

    def check_done(self, name: str) -> None:
        self.checks += 1
        self._tell(name)

    def _tell(self, name: str) -> None:
        self.started = self.now()
        if self.parts is not None:
            left = self.parts.left(self.measured, self.runs, self.checks)
            self.log(f"launch: {name} done; about {format_duration(left)} left of the launch")


def build_stages(cfg: PlannerConfig, progress: bool = True) -> list[Stage]:
    out = cfg.out
    runs_csv, fits_json = out / "runs.csv", out / "fits.json"
    allocation_csv = out / "allocation.csv"
    summary_json = out / "allocation_summary.json"
    final_metrics = out / "final" / "metrics.csv"
    report_html = out / "report.html"
    data_stats = out / "data_stats.csv"

    def data() -> str:
        from trainers.data import corpus_stats

        datasets = checked_datasets(cfg)
        stats = corpus_stats(datasets)  # indexed by language code
        atomic_write_text(data_stats, stats.to_csv())
        return f"{len(datasets)} languages, training pools {stats['train'].min():,}–{stats['train'].max():,} pairs"

    def sweep() -> str:
        from planner.sweep import run_sweep

        report = run_sweep(cfg, progress=progress, after=launch_estimator(cfg))
        if not report.complete:
            failed = "; ".join(
                f"{t.user_attrs.get('point', '?')}: {t.user_attrs.get('error', '')}"[:200] for t in report.failures[:3]
            )
            raise UserError(
                f"The sweep finished {report.progress.done} of {report.progress.total} runs"
                + (f" (failures: {failed})" if failed else "") + ".",
                "See `planner status` and the worker logs in the output directory, fix the cause, and run "
                "`planner run` again: finished runs are kept and only the missing ones run.",
            )
        mixed = sum(1 for st in report.statuses if st.point.mixture)
        return (f"{report.progress.total} proxy runs" + (f" ({mixed} of them mixture runs)" if mixed else "")
                + f" in {runs_csv}")

    def fit() -> str:
        fitset = fit_stage(cfg, runs_csv, fits_json)
        laws = ", ".join(f"{lang}: {f.law}" for lang, f in fitset.languages.items())
        return f"{len(fitset.languages)} curves ({laws})" + (f"; skipped {sorted(fitset.skipped)}" if fitset.skipped else "")

    def allocate() -> str:
        plan = allocate_stage(cfg, fits_json, data_stats, allocation_csv)
        gain = plan.gain_over_best_baseline
        return (f"plan {dict((p.language, int(p.pairs)) for p in plan.languages)}"
                + (f", {gain:+.3g} over best baseline ({plan.best_baseline})" if gain is not None else "")
                + _purchase_summary(plan))

    def launch() -> str:
        from planner.launch import run_final, run_under_launcher

        clock = None
        if progress and runs_csv.is_file():
            clock = LaunchClock(launch_pricer(cfg)(run_costs(pd.read_csv(runs_csv))), _stderr)
        if cfg.final.launcher == "local":
            final_dir = run_final(cfg, allocation_csv, cfg.final.baselines, fits_json, progress=progress,
                                  on_run=clock and clock.final_run_done)
        else:  # the same `planner launch` entry point, under accelerate/torchrun, from the resolved config
            final_dir = run_under_launcher(cfg, allocation_csv, fits_json)
        from planner.launch import verdict_lines

        mixtures = pd.read_csv(final_dir / "objectives.csv")["mixture"].nunique() if (final_dir / "objectives.csv").is_file() else 0
        runs = mixtures * len(cfg.final.seeds)
        verdicts = "; ".join(verdict_lines(final_dir, cfg.fit.metric))
        checked = ""
        target_plan = allocation_csv if cfg.budget.objective == "target" else out / TARGET_ALLOCATION
        if cfg.final.target_check and target_plan.is_file():
            checks = check_targets(cfg, target_plan, final_dir, progress=progress, on_check=clock and clock.check_done)
            write_target_checks(checks, final_dir)
            checked = f"; {target_summary(checks)}"
        return f"{runs} final runs in {final_dir}" + (f" — {verdicts}" if verdicts else "") + checked

    def report() -> str:
        from reports import render_report

        return str(render_report(out, report_html).report)

    def sections(*names: str) -> str:
        return config_hash(cfg, *names)

    target_plan_wanted = bool(targets_from_config(cfg)) and cfg.budget.objective != "target"

    return [
        Stage("data", [data_stats], lambda: sections("data", "languages", "sweep", "budget"), data),
        Stage("sweep", [runs_csv], lambda: sections("data", "model", "train", "align", "languages", "sweep")
              # the data too: an in-place edit of the corpus re-runs the stage, which re-runs the stale languages
              + data_fingerprints(cfg, strict=True).digest, sweep),
        Stage("fit", [fits_json], lambda: sections("fit", "seed") + file_digest(runs_csv), fit),
        Stage("allocate", [allocation_csv, summary_json] + ([out / TARGET_ALLOCATION] if target_plan_wanted else []),
              lambda: sections("budget", "seed") + file_digest(fits_json, data_stats), allocate),
        Stage("launch", [final_metrics] + ([out / "final" / TARGETS_CSV] if target_plan_wanted and cfg.final.target_check else []),
              lambda: sections("data", "model", "train", "align", "final", "budget")
              + file_digest(allocation_csv, summary_json, out / TARGET_ALLOCATION), launch),
        Stage("report", [report_html],
              lambda: file_digest(runs_csv, fits_json, allocation_csv, summary_json, final_metrics,
                                  out / "final" / "objectives.csv", out / "final" / "comparison.csv",
                                  out / "final" / "calibration.csv", out / "alignment" / "alignment.csv",
                                  out / TARGET_ALLOCATION, out / "final" / TARGETS_CSV), report),
    ]


def up_to_date(stage: Stage, out: Path) -> bool:
    """Its outputs exist and were written for what its fingerprint covers now (and by this code)."""
    return (all(p.is_file() for p in stage.outputs)
            and _read_stamps(out).get(stage.name) == stage.fingerprint() + code_digest())


def run_pipeline(cfg: PlannerConfig, progress: bool = True, log=print) -> PipelineResult:
    """Run every stage whose outputs are missing or out of date; see the module docstring."""
    out = check_output_dir(cfg.out, "output_dir")
    checked_datasets(cfg)  # unreadable or too little data: refused before anything is written (cached after)
    out.mkdir(parents=True, exist_ok=True)
    write_resolved(cfg, out)
    result = PipelineResult(out)
    start = time.perf_counter()
    stages = build_stages(cfg, progress)
    for i, stage in enumerate(stages, 1):
        head = f"[{i}/{len(stages)}] {stage.name}"
        if up_to_date(stage, out):
            stage.skipped, stage.summary = True, "up to date"
            log(f"{head}: up to date, skipped")
        else:
            log(f"{head} …")
            t0 = time.perf_counter()
            stage.summary = stage.run()
            stage.seconds = time.perf_counter() - t0
            _write_stamp(out, stage.name, stage.fingerprint() + code_digest())
            log(f"{head}: {stage.summary} ({stage.seconds:.0f} s)")
        result.stages.append(stage)
    result.seconds = time.perf_counter() - start
    return result


def format_summary(result: PipelineResult) -> str:
    out = result.output_dir
    lines = [f"done in {result.seconds:.0f} s — outputs in {out}/"]
    for stage in result.stages:
        state = "skipped (up to date)" if stage.skipped else f"{stage.seconds:.0f} s"
        files = ", ".join(str(p.relative_to(out)) for p in stage.outputs)
        lines.append(f"  {stage.name:<9} {state:<22} {files}")
    lines.append(f"open {out / 'report.html'}")
    return "\n".join(lines)


def main_run(cfg: PlannerConfig) -> int:
    result = run_pipeline(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_summary(result))
    return 0
