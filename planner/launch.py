"""`planner launch`: the final multilingual (MuIT) run from an allocation, and the truth test.

Reads `allocation.csv` (+ its summary, which carries every baseline's pairs at the same budget) and
`fits.json` (for prediction intervals), trains every mixture once per final seed (`final.seeds`) with the
same trainer code as the sweep, evaluates every language on the same fixed test splits, and writes:

- `final/metrics.csv`: mixture, seed, language, pairs, tokens, predicted, predicted_low, predicted_high,
  achieved, error, inside_interval (the interval is a predictive one: curve uncertainty + one run's noise)
- `final/objectives.csv`: mixture, seed, predicted_objective, achieved_objective
- `final/comparison.csv`: the plan against each baseline, paired by seed (`fits.final_stats`)
- `final/calibration.csv`: per language, how often the intervals held the achieved score

Mixtures: the plan, each baseline of `final.baselines`, the transfer-aware plan when the allocation has
one (`final.transfer_plan`: the fits had mixture proxy runs), and the reduced-budget plan on request.

A finished (mixture, seed) is never retrained: its run directory's `metrics.json` is written last, and a
relaunch reads it back. With `final.reduced_budget` the plan is also trained at the budget fraction at
which it is predicted to match uniform's objective (the allocation summary's "budget saved").

Under `--launcher accelerate|torchrun` the same command re-executes itself under that launcher (with
`--launcher local`), so the multi-GPU path runs exactly the code tested locally.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import UserError
from core.files import atomic_write_text, atomic_write_texts, check_output_dir, check_output_file
from core.plan_files import PLAN, REDUCED, TRANSFER  # noqa: F401  (re-exported: the final runs' mixture names)
from fits.final_stats import calibration_table, comparison_table, headline

METRICS_COLUMNS = [
    "mixture",
    "seed",
    "language",
    "pairs",
    "tokens",
    "predicted",
    "predicted_low",
    "predicted_high",
    "achieved",
    "error",
    "inside_interval",
]
OBJECTIVE_COLUMNS = ["mixture", "seed", "predicted_objective", "achieved_objective"]
FINAL_TABLES = ("metrics.csv", "objectives.csv", "comparison.csv", "calibration.csv")


@dataclass(frozen=True)
class Mixture:
    """One mixture to train: whole pairs per language, and what the fits predict for it."""

    name: str
    pairs: dict[str, int]
    predicted: dict[str, float]
    predicted_low: dict[str, float]
    predicted_high: dict[str, float]


def launch_command(launcher: str, num_processes: int, planner_args: Sequence[str]) -> list[str]:
    """The argv that runs `planner <planner_args>` under a multi-process launcher.

    Built as a list (never a shell string): user-supplied paths go through unchanged.
    """
    inner = ["-m", "planner", *planner_args]
    if launcher == "accelerate":
        return ["accelerate", "launch", "--num_processes", str(num_processes), *inner]
    if launcher == "torchrun":
        return ["torchrun", "--nproc-per-node", str(num_processes), *inner]
    raise ValueError(f"no command for launcher {launcher!r}")


def _fit_x(fits, fit, pairs: float) -> float:
    """`pairs` in the units the curve was fitted on (pairs or tokens)."""
    return pairs * fit.tokens_per_pair if fits.x == "tokens" else pairs


def _interval(fits, language: str, pairs: float, level: float) -> tuple[float, float]:
    """The predictive interval of one run's score at `pairs`: the fit's draws plus one run's noise (the
    allocation's intervals are made the same way, `planner.allocation.risk.predictive_draws`)."""
    fit = fits.languages.get(language) if fits is not None else None
    if fit is None or fit.boot is None or (pairs <= 0 and not fit.curve.has_offset):
        return math.nan, math.nan
    draws = np.asarray(fit.predict_draws(_fit_x(fits, fit, pairs)), dtype=float).ravel()
    sigma = (fits.population or {}).get("sigma") or fit.rmse or 0.0
    noise = np.random.default_rng([0, 1]).standard_normal(len(draws)) * float(sigma)
    tail = (1 - level) / 2
    lo, hi = np.nanquantile(draws + noise, [tail, 1 - tail])
    return float(lo), float(hi)


def mixtures_from_allocation(
    allocation: pd.DataFrame, summary: Mapping, baselines: Sequence[str], fits=None, level: float = 0.9
) -> list[Mixture]:
    """The plan and the requested baselines as mixtures, with predictions and intervals."""
    plan_pairs = {r.language: int(round(r.pairs)) for r in allocation.itertuples()}
    mixtures = [
        Mixture(
            PLAN,
            plan_pairs,
            {r.language: float(r.predicted) for r in allocation.itertuples()},
            {r.language: float(r.predicted_low) for r in allocation.itertuples()},
            {r.language: float(r.predicted_high) for r in allocation.itertuples()},
        )
    ]
    known = dict(summary.get("baselines", {}))
    reduced = summary.get("reduced_pairs")
    if REDUCED in baselines and not reduced:
        raise UserError(
            "The allocation summary has no reduced-budget plan (budget saved is computed for the sum objective "
            "when the plan beats uniform).",
            "Drop final.reduced_budget, or re-run `planner allocate` with the sum objective.",
        )
    if reduced:
        # Predicted on the plan's own model (in-mixture curves when it was made on them), as the allocation
        # stored it; a summary written before it did falls back to the languages' own curves.
        given = {key: summary.get(f"reduced_{key}") or {} for key in ("predicted", "predicted_low", "predicted_high")}
        langs = {lang: {"pairs": p, "predicted": given["predicted"].get(lang, math.nan),
                        "interval": (given["predicted_low"].get(lang), given["predicted_high"].get(lang))}
                 for lang, p in reduced.items()}
        known[REDUCED] = {"languages": langs}
    transfer = summary.get("transfer")
    if transfer:
        # Predicted with transfer (what this plan was chosen on), not from the languages' own curves.
        # Its interval too: the own curves' interval belongs to another model (a point outside it, before).
        known[TRANSFER] = {"languages": {
            lang: {"pairs": p, "predicted": transfer["predicted"][lang],
                   "interval": (transfer.get("predicted_low", {}).get(lang), transfer.get("predicted_high", {}).get(lang))}
            for lang, p in transfer["pairs"].items()}}
    for name in baselines:
        if name not in known:
            why = summary.get("unavailable_baselines", {}).get(name)
            raise UserError(
                f"Baseline '{name}' is not in the allocation summary"
                + (f" ({why})." if why else f"; it has {sorted(known)}."),
                "Pick baselines from that list with --baselines (comma-separated).",
            )
        langs = known[name]["languages"]
        pairs = {lang: int(round(v["pairs"])) for lang, v in langs.items()}
        intervals = {lang: _given_interval(langs[lang].get("interval")) or _interval(fits, lang, p, level)
                     for lang, p in pairs.items()}
        predicted = {lang: _point(fits, lang, p, v.get("predicted")) for (lang, v), p in zip(langs.items(), pairs.values())}
        mixtures.append(
            Mixture(
                name,
                pairs,
                predicted,
                {lang: iv[0] for lang, iv in intervals.items()},
                {lang: iv[1] for lang, iv in intervals.items()},
            )
        )
    return mixtures


def _given_interval(given) -> tuple[float, float] | None:
    """An interval the summary stored for this mixture (finite low and high), else None."""
    if not given or any(v is None or not math.isfinite(float(v)) for v in given):
        return None
    return float(given[0]), float(given[1])


def _point(fits, language: str, pairs: float, given) -> float:
    """The predicted score: the summary's where it has one, else the point fit's."""
    if given is not None and math.isfinite(float(given)):
        return float(given)
    fit = fits.languages.get(language) if fits is not None else None
    if fit is None:
        return math.nan
    return float(fit.predict(_fit_x(fits, fit, pairs)))


def objective(values: Mapping[str, float], weights: Mapping[str, float], kind: str, higher_is_better: bool) -> float:
    """The plan's objective evaluated on any per-language values (predicted or achieved).

    sum: Σ w·y; maxmin: the worst language (min for scores, max for losses); target/custom: the weighted
    mean, so mixtures stay comparable on one number.
    """
    langs = list(values)
    y = np.array([values[lang] for lang in langs], dtype=float)
    w = np.array([weights.get(lang, 1.0) for lang in langs], dtype=float)
    if kind == "maxmin":
        return float(y.min() if higher_is_better else y.max())
    if kind == "sum":
        return float((w * y).sum())
    return float((w * y).sum() / w.sum())


def metrics_rows(mixture: Mixture, achieved: Mapping[str, float], tokens_per_pair: Mapping[str, float],
                 seed: int) -> list[dict]:
    rows = []
    for lang, pairs in mixture.pairs.items():
        lo, hi = mixture.predicted_low.get(lang, math.nan), mixture.predicted_high.get(lang, math.nan)
        got = achieved[lang]
        inside = bool(lo <= got <= hi) if math.isfinite(lo) and math.isfinite(hi) else None
        rows.append(
            {
                "mixture": mixture.name,
                "seed": seed,
                "language": lang,
                "pairs": pairs,
                "tokens": pairs * tokens_per_pair.get(lang, math.nan),
                "predicted": mixture.predicted.get(lang, math.nan),
                "predicted_low": lo,
                "predicted_high": hi,
                "achieved": got,
                "error": got - mixture.predicted.get(lang, math.nan),
                "inside_interval": inside,
            }
        )
    return rows


def load_allocation_inputs(allocation_csv: str | Path, fits_json: str | Path | None):
    """Read allocation.csv, its summary and (when present) fits.json; UserError for anything missing."""
    from fits import load_fits
    from planner.allocation.io import read_allocation, read_summary, summary_path

    allocation = read_allocation(allocation_csv)
    spath = summary_path(allocation_csv)
    if not spath.is_file():
        raise UserError(
            f"{spath} is missing; it holds the baselines and objective of {allocation_csv}.",
            "Re-run `planner allocate`, which writes both files.",
        )
    summary = read_summary(spath)
    fits_path = Path(fits_json) if fits_json else Path(allocation_csv).with_name("fits.json")
    fits = load_fits(fits_path) if fits_json or fits_path.is_file() else None  # --fits must name a fits file
    planned = summary.get("metric")
    if fits is not None and isinstance(planned, str) and fits.metric != planned:
        raise UserError(f"{fits_path} fits {fits.metric!r}, but {allocation_csv} was planned on {planned!r}: its "
                        "intervals would be of another metric.",
                        "Pass the fits.json the allocation came from (--fits).")
    return allocation, summary, fits


def final_mixtures(cfg, allocation_csv: str | Path, baselines: Sequence[str], fits_json=None) -> list[Mixture]:
    """The mixtures a launch trains: the plan, the baselines asked for, and (when configured and
    available) the reduced-budget and transfer-aware plans."""
    return _mixtures(cfg, *load_allocation_inputs(allocation_csv, fits_json), baselines, allocation_csv)


def _mixtures(cfg, allocation: pd.DataFrame, summary: dict, fits, baselines: Sequence[str],
              allocation_csv: str | Path) -> list[Mixture]:
    """The mixtures, with every malformed part of the allocation summary a UserError naming the file."""
    from planner.allocation.io import summary_path

    source, fix = summary_path(allocation_csv), "Rewrite it with `planner allocate`."
    wanted = list(baselines) + ([REDUCED] if cfg.final.reduced_budget else [])
    if cfg.final.transfer_plan and summary.get("transfer"):
        wanted.append(TRANSFER)
    try:
        level = float(summary.get("interval_level", 0.9))
        mixtures = mixtures_from_allocation(allocation, summary, wanted, fits, level)
    except UserError:  # already says what is wrong (a UserError is also a ValueError: not re-worded below)
        raise
    except (TypeError, LookupError, ValueError, AttributeError) as err:  # a summary of another shape
        raise UserError(f"{source} is malformed ({type(err).__name__}: {err}).", fix) from None
    if not 0 < level < 1:
        raise UserError(f"{source}: interval_level is {level}; it must be between 0 and 1.", fix)
    planned = set(allocation["language"])
    for mixture in mixtures:
        if stray := sorted(set(mixture.pairs) - planned):
            raise UserError(f"{source}: mixture '{mixture.name}' has languages {stray}, which {allocation_csv} "
                            "does not allocate to.", fix)
        if not any(mixture.pairs.values()):  # nothing to train on: the trainer would fail on an empty mixture
            where = allocation_csv if mixture.name == PLAN else source
            raise UserError(f"{where}: mixture '{mixture.name}' allocates no pairs to any language, so there is "
                            "nothing to train.", "Re-run `planner allocate` with a budget that buys some pairs.")
    return mixtures


def run_final(cfg, allocation_csv: str | Path, baselines: Sequence[str], fits_json=None, progress: bool = True,
              only_finished: bool = False, on_run: Callable[[str], None] | None = None) -> Path:
    """Train and evaluate every mixture once per final seed; write the tables of the module docstring.
    `only_finished`: train nothing, tabulate the runs already finished (a partial comparison). `on_run`:
    called with the run's name after each final run is done (trained or read back). Returns final/."""
    from core.config import RESOLVED_CONFIG_NAME, write_resolved
    from planner.allocation.io import summary_path
    from trainers.data import check_capacity, load_languages
    from trainers.evaluate import measured_metrics
    from trainers.muit import mixture_pairs
    from trainers.train import distributed_state

    final_dir = check_output_dir(cfg.out / "final", "The final runs' directory")
    for name in (*FINAL_TABLES, "launch.json", RESOLVED_CONFIG_NAME):  # not after hours of training
        check_output_file(final_dir / name, "The final runs' output file")
    allocation, summary, fits = load_allocation_inputs(allocation_csv, fits_json)
    metric = summary.get("metric", cfg.fit.metric)
    if metric not in measured_metrics(cfg):
        raise UserError(f"{summary_path(allocation_csv)} was planned on the metric {metric!r}, which a final run does "
                        f"not measure under this config (it measures {', '.join(measured_metrics(cfg))}).",
                        "Re-run `planner fit`/`planner allocate` on a measured metric (or set "
                        "train.comet_checkpoint for comet).")
    unknown = sorted(set(allocation["language"]) - set(cfg.languages))
    if unknown:
        raise UserError(
            f"{allocation_csv} allocates to {unknown}, which are not in the config's languages {cfg.languages}.",
            "Use the config the allocation was planned for (--config).",
        )
    mixtures = _mixtures(cfg, allocation, summary, fits, baselines, allocation_csv)
    languages = list(allocation["language"])
    datasets = load_languages(cfg.data, languages)
    check_capacity(datasets, 0)
    for mixture in mixtures:  # every mixture's pairs exist (UserError if not), before the first run trains
        mixture_pairs(datasets, mixture.pairs, cfg.budget.max_epochs)
    tokens_per_pair = {
        lang: (fits.languages[lang].tokens_per_pair or math.nan) if fits and lang in fits.languages else math.nan
        for lang in languages
    }
    weights = {r.language: float(getattr(r, "weight", 1.0) or 1.0) for r in allocation.itertuples()}
    kind = summary.get("objective", "sum")
    higher = bool(summary.get("higher_is_better", True))

    # The process group (under a multi-process launch) is made here, with its timeout; only rank 0 writes.
    main = distributed_state(cfg.final.barrier_timeout_minutes).is_main_process
    final_dir.mkdir(parents=True, exist_ok=True)
    if main:
        write_resolved(cfg, final_dir)
    level = float(summary.get("interval_level", 0.9))
    rows, objectives = [], []
    # Seed-major: an interrupted launch leaves whole seeds, each a paired comparison of every mixture.
    for seed in cfg.final.seeds:
        for mixture in mixtures:
            result = final_run(cfg, datasets, mixture.name, mixture.pairs, seed, progress, train=not only_finished)
            if result is None:  # not finished (only_finished), or a non-main process of a multi-process launch
                continue
            achieved = {lang: result.metrics[lang][metric] for lang in mixture.pairs}
            rows += metrics_rows(mixture, achieved, tokens_per_pair, seed)
            objectives.append({
                "mixture": mixture.name,
                "seed": seed,
                "predicted_objective": objective(mixture.predicted, weights, kind, higher),
                "achieved_objective": objective(achieved, weights, kind, higher),
            })
            # Written after every run, so an interrupted launch keeps what finished.
            write_final_tables(final_dir, rows, objectives, mixtures, higher, level)
            if on_run is not None:
                on_run(f"{mixture.name} seed {seed}")
    if main:
        atomic_write_text(
            final_dir / "launch.json",
            json.dumps({"allocation": str(allocation_csv), "mixtures": [m.name for m in mixtures], "metric": metric,
                        "seeds": list(cfg.final.seeds)}, indent=2),
        )
    return final_dir


def run_identity(cfg, pairs: Mapping[str, int], seed: int) -> str:
    """What a final run's result depends on: the data/model/train/align settings, its epochs, the mixture
    and the seed — not `model.threads`, which decides how fast it runs (a launch split over processes
    with other thread counts reuses the same runs). A saved result is reused only under the same identity."""
    from trainers.muit import mixture_identity

    return mixture_identity(cfg, pairs, seed, epochs=cfg.final.epochs, max_epochs=cfg.budget.max_epochs)


def final_run(cfg, datasets, name: str, pairs: Mapping[str, int], seed: int, progress: bool = True,
              train: bool = True):
    """One final run, `final/<name>/s<seed>`: its saved result when it finished under the same identity,
    else (with `train`) trained now, resuming from its checkpoint if it has one. None when not finished
    and not trained, and on non-main processes of a multi-process launch."""
    from trainers.muit import saved_or_trained

    return saved_or_trained(cfg, datasets, pairs, seed, cfg.out / "final" / name / f"s{seed}", f"{name} seed {seed}",
                            run_identity(cfg, pairs, seed), progress, train)


def write_final_tables(final_dir: Path, rows, objectives, mixtures, higher: bool, level: float) -> None:

    metrics = pd.DataFrame(rows, columns=METRICS_COLUMNS)
    objs = pd.DataFrame(objectives, columns=OBJECTIVE_COLUMNS)
    tables = {final_dir / "metrics.csv": metrics.to_csv(index=False),
              final_dir / "objectives.csv": objs.to_csv(index=False)}
    names = [m.name for m in mixtures]
    plans = [n for n in names if n in (PLAN, REDUCED, TRANSFER)]
    baselines = [n for n in names if n not in plans]
    if plans and baselines:
        comparison = comparison_table(objs, metrics, plans, baselines, higher, level)
        tables[final_dir / "comparison.csv"] = comparison.to_csv(index=False)
    tables[final_dir / "calibration.csv"] = calibration_table(metrics).to_csv(index=False)
    atomic_write_texts(tables)  # all or none: a full disk must not leave tables of different runs side by side


def launcher_argv(cfg, allocation_csv, fits_json, config_path) -> list[str]:
    """`planner launch` for the config's launcher (accelerate/torchrun), each process running it locally."""
    inner = ["launch", "--config", str(config_path), "--allocation", str(allocation_csv), "--launcher", "local",
             "--baselines", ",".join(cfg.final.baselines) or "none"]
    if fits_json:
        inner += ["--fits", str(fits_json)]
    return launch_command(cfg.final.launcher, cfg.final.num_processes, inner)


def run_under_launcher(cfg, allocation_csv, fits_json=None) -> Path:
    """Run the final runs under `final.launcher` from the resolved config; fail loudly if it fails."""
    import subprocess

    from core.config import RESOLVED_CONFIG_NAME, write_resolved
    from trainers.scale import batch_layout

    # A global batch the processes cannot split is refused here, not by every process after it started.
    batch_layout(cfg.train.batch_size, cfg.final.num_processes, cfg.train.micro_batch_size)
    final_dir = check_output_dir(cfg.out / "final", "The final runs' directory")
    cmd = launcher_argv(cfg, allocation_csv, fits_json, final_dir / RESOLVED_CONFIG_NAME)
    program = which(cmd[0])  # a launcher that is not installed: refused before anything is written
    write_resolved(cfg, final_dir)
    code = subprocess.call([program, *cmd[1:]])
    if code != 0:
        raise UserError(
            f"The final runs under {cfg.final.launcher} exited with code {code}.",
            "See its output above; `planner launch --dry-run` prints the command to run it by hand.",
        )
    return final_dir


def which(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise UserError(
            f"--launcher needs `{program}` on PATH, and it is not installed here.",
            "Install it (accelerate ships `accelerate`; torch ships `torchrun`) or use --launcher local.",
        )
    return path


def verdict_lines(final_dir: Path, metric: str) -> list[str]:
    """The paired verdicts of a finished launch (empty when there is nothing to compare)."""

    path = Path(final_dir) / "comparison.csv"
    if not path.is_file():
        return []
    return headline(pd.read_csv(path), metric, 0.9)
