"""The truth test: does the plan beat an equal split on real training of the pretrained default?

Runs the embedded default experiment (`core/demo.yaml`: CoIT of SmolLM2-135M-Instruct, token budget)
end to end and trains every compared mixture with several final seeds:

1. the sweep of per-language proxy runs (the demo grid, zero-shot point included);
2. mixture proxy runs on the same ledger (`sweep.mixtures`: the uniform mixture at `--mixture-sizes` pairs
   per language, and with `--leave-one-out` one run without each language), each language scored inside
   them — mixture rows of runs.csv (`mixture`, `other_pairs`, `other_tokens`; README "File contracts");
3. the default fit on that table (per-language curves, plus each language's transfer τ from the mixture
   rows) and the default allocation: the per-language plan, the transfer-aware plan, the plan at its
   "budget saved" fraction and every baseline's prediction;
4. final runs, seed-major: for each seed, the plan, the transfer-aware plan, uniform, the heuristic
   baseline predicted best, and the plan at the reduced budget;
5. the paired comparison (`final/comparison.csv`: plan − baseline per seed, mean, 90% t interval), the
   calibration table and the report; the markdown table the README shows is printed and written to
   `benchmarks/results/truth_test.md`, the comparison to `benchmarks/results/truth_test_comparison.csv`, every
   final run's per-language scores to `benchmarks/results/truth_test_metrics.csv` (`--name` changes the stem).

Every step resumes: the sweep (mixture runs included) from its study, final runs from their saved results (a
finished run with the same identity is never trained again) and checkpoints. So it can run in the
background for hours and be restarted after an interruption; `--table-only` writes the tables from
whatever has finished (the comparison pairs the seeds both mixtures have).

Usage: python benchmarks/truth_test.py [--out outputs/truth-test] [--seeds 0 1 2]
       [--mixture-sizes 20 60] [--leave-one-out] [--leave-one-out-size 150] [--table-only]
       [--languages es fr ja zh] [--baselines uniform] [--no-reduced] [--name truth_test_cjk]
       [--only plan-transfer uniform] [--probe el=44 ja=549 tr=202 vi=4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_config(out: Path, seeds: list[int], mixtures: list[int] | None, leave_one_out: bool,
                languages: list[str] | None = None, reduced: bool = True, leave_one_out_size: int | None = None,
                probes: list[dict[str, int]] | None = None):
    from core.config import config_from_dict, load_config

    body = load_config(preset="demo").model_dump(mode="json")
    body["output_dir"] = str(out)
    if languages:
        body["languages"] = languages
        # the demo's per-language targets and limits belong to its own languages
        body["budget"]["languages"] = {k: v for k, v in body["budget"]["languages"].items() if k in languages}
    if mixtures is None:  # the config's own
        mixtures = body["sweep"]["mixtures"]
    body["sweep"].update(mixtures=mixtures, leave_one_out=leave_one_out and bool(mixtures),
                         leave_one_out_size=leave_one_out_size, probes=probes or [])
    # The transfer-aware plan is fitted on the mixture proxy runs: none without them.
    body["final"].update(seeds=seeds, reduced_budget=reduced, transfer_plan=bool(mixtures or probes))
    body["final"].pop("seed", None)
    return config_from_dict(body, "(truth test)")


def fit_and_allocate(cfg) -> dict:
    """The pipeline's own fit and allocate stages, on the sweep's runs table (with its mixture rows)."""
    from planner.pipeline import allocate_stage, fit_stage

    fit_stage(cfg, cfg.out / "runs.csv", cfg.out / "fits.json")
    allocate_stage(cfg, cfg.out / "fits.json", cfg.out / "data_stats.csv", cfg.out / "allocation.csv")
    return json.loads((cfg.out / "allocation_summary.json").read_text())


def best_heuristic(summary: dict) -> str:
    """The heuristic baseline with the best predicted objective (what a careful user would try), among
    those whose mixture differs from uniform's (UniMax is uniform when no language's pool binds)."""
    higher = summary.get("objective_higher_is_better", True)
    uniform = {lang: round(v["pairs"]) for lang, v in summary["baselines"]["uniform"]["languages"].items()}
    scored = {name: b["objective_value"] for name, b in summary["baselines"].items()
              if name != "uniform" and b.get("objective_value") is not None
              and {lang: round(v["pairs"]) for lang, v in b["languages"].items()} != uniform}
    return (max if higher else min)(scored, key=scored.get)


def write_tables(cfg, metric: str, name: str = "truth_test") -> str:
    final = cfg.out / "final"
    if not (final / "objectives.csv").is_file():
        return "no final run has finished yet"
    objectives = pd.read_csv(final / "objectives.csv")
    summary = json.loads((cfg.out / "allocation_summary.json").read_text())
    lines = [f"Achieved summed {metric} over {', '.join(cfg.languages)} (budget {cfg.budget.total:,.0f} "
             f"{cfg.budget.unit}; {os.cpu_count()} cores); mean over seeds, with each seed's value.", "",
             "| mixture | seeds | predicted | achieved mean | per seed |", "|---|---:|---:|---:|---|"]
    for mixture, g in objectives.groupby("mixture", sort=False):
        per_seed = ", ".join(f"{v:.2f}" for v in g.sort_values("seed")["achieved_objective"])
        lines.append(f"| {mixture} | {len(g)} | {g['predicted_objective'].mean():.2f} | "
                     f"{g['achieved_objective'].mean():.2f} | {per_seed} |")
    if (final / "comparison.csv").is_file():
        from fits.final_stats import OBJECTIVE_SCOPE

        comp = pd.read_csv(final / "comparison.csv")
        comp.to_csv(RESULTS / f"{name}_comparison.csv", index=False)
        lines += ["", "Paired difference of the achieved objective (plan − baseline, same seed), 90% t interval:", "",
                  "| plan | baseline | seeds | mean difference | 90% interval | verdict |", "|---|---|---:|---:|---|---|"]
        for r in comp[comp["scope"] == OBJECTIVE_SCOPE].itertuples():
            interval = "—" if pd.isna(r.low) else f"[{r.low:+.2f}, {r.high:+.2f}]"
            lines.append(f"| {r.mixture} | {r.baseline} | {r.n_seeds} | {r.mean_difference:+.2f} | {interval} | {r.verdict} |")
    if summary.get("budget_saved") is not None:
        trained = "plan-reduced" in set(objectives["mixture"])
        lines += ["", f"Budget saved (predicted): the plan matches uniform's predicted objective at "
                  f"{1 - summary['budget_saved']:.0%} of the budget ({summary['reduced_budget']:,.0f} {summary['unit']}); "
                  + ("the plan-reduced row is that plan trained." if trained else "that plan was not trained here.")]
    if (final / "calibration.csv").is_file():
        cal = pd.read_csv(final / "calibration.csv")
        lines += ["", "Calibration of the predicted intervals:", "", "| " + " | ".join(cal.columns) + " |",
                  "|" + "---|" * len(cal.columns)]
        lines += ["| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |"
                  for row in cal.itertuples(index=False)]
    lines += target_lines(final)
    if (final / "metrics.csv").is_file():  # every final run's per-language scores, for the README's numbers
        pd.read_csv(final / "metrics.csv").to_csv(RESULTS / f"{name}_metrics.csv", index=False)
    if (cfg.out / "runs.csv").is_file() and (cfg.out / "allocation_summary.json").is_file():
        ship_ledger(cfg.out, name)
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(text, encoding="utf-8")
    return text


def check_target_plan(cfg, progress: bool) -> None:
    """The target plan (when the config sets targets) checked by training, as `planner run` does."""
    from planner.target_check import TARGET_ALLOCATION, check_targets, write_target_checks

    if (cfg.out / TARGET_ALLOCATION).is_file():
        write_target_checks(check_targets(cfg, cfg.out / TARGET_ALLOCATION, cfg.out / "final", progress), cfg.out / "final")


def target_lines(final: Path) -> list[str]:
    if not (final / "targets.csv").is_file():
        return []
    t = pd.read_csv(final / "targets.csv")
    q = float(t["confidence"].iloc[0]) if len(t) else float("nan")
    lines = ["", f"Target plan checked by training (each language alone at its planned need, confidence {q:.0%}):", "",
             "| language | target | pairs | predicted [interval] | achieved | reached | inside |", "|---|---:|---:|---|---:|---|---|"]
    lines += [f"| {r.language} | {r.target:.3f} | {r.pairs} | {r.predicted:.3f} [{r.predicted_low:.3f}, "
              f"{r.predicted_high:.3f}] | {r.achieved:.3f} | {r.reached} | {r.inside} |" for r in t.itertuples()]
    return lines + ["", f"Reached {int(t['reached'].sum())}/{len(t)}; inside the interval {int(t['inside'].sum())}/{len(t)}."]


def ship_ledger(out: Path, name: str) -> None:
    """The proxy runs the plans rest on (`<name>_runs.csv`, run directories relative to the output directory's
    parent, so the shipped table names no path of the machine it ran on) and the allocation summary."""
    runs = pd.read_csv(out / "runs.csv")
    if "run_dir" in runs:
        runs["run_dir"] = [os.path.relpath(d, out.parent) if isinstance(d, str) and os.path.isabs(d) else d
                           for d in runs["run_dir"]]
    runs.to_csv(RESULTS / f"{name}_runs.csv", index=False)
    shutil.copyfile(out / "allocation_summary.json", RESULTS / f"{name}_allocation_summary.json")


def check_baselines(names: list[str] | None) -> None:
    """Refuse an unknown or repeated baseline before anything trains (the launch would refuse it only after
    the sweep and the fit)."""
    from core.config import BASELINE_NAMES, baseline_name_problems
    from core.errors import UserError

    unknown, repeated = baseline_name_problems(names or [])
    if unknown:
        raise UserError(f"--baselines names unknown baselines {unknown}.",
                        f"Choose from {', '.join(BASELINE_NAMES)} (space-separated).")
    if repeated:
        raise UserError(f"--baselines names {repeated} more than once.", "Name each baseline once.")


def chosen_baselines(names: list[str] | None, summary: dict) -> list[str]:
    """The baselines to train: those named, else uniform and the best-predicted heuristic."""
    return names or ["uniform", best_heuristic(summary)]


PRIORITY = ("plan", "uniform", "plan-transfer")  # then the heuristic baseline, then plan-reduced


def _train_job(job: tuple) -> str:
    """One final run, exactly as `planner launch` trains it (`planner.launch.final_run`: same directory and
    identity, so the launch's last pass reuses it), in a single-thread process."""
    body, name, pairs, seed = job
    import torch
    from transformers.utils import logging as hf_logging

    from core.config import config_from_dict
    from planner.launch import final_run
    from trainers.data import load_languages

    hf_logging.disable_progress_bar()  # one line per finished run in the log, not a bar per model load
    torch.set_num_threads(1)
    body["model"]["threads"] = 1  # not part of a final run's identity
    cfg = config_from_dict(body, "(truth test)")
    final_run(cfg, load_languages(cfg.data, list(pairs)), name, pairs, seed, progress=False)
    log(f"final run {name} seed {seed} done")
    return f"{name}/s{seed}"


def final_in_parallel(cfg, baselines: list[str], processes: int, only: list[str] | None = None) -> None:
    """Every (mixture, seed) final run in `processes` single-thread processes (on a small CPU two such
    processes train more tokens per second than one two-thread process), most important first: plan
    and uniform on every seed, then the transfer-aware plan, the heuristic baseline, the reduced plan.
    Stopped early, the finished runs still make paired comparisons (`--table-only`). `only`: train just
    these mixtures (more seeds for one comparison)."""
    import multiprocessing as mp

    from planner.launch import final_mixtures

    mixtures = final_mixtures(cfg, cfg.out / "allocation.csv", baselines, cfg.out / "fits.json")
    if only:
        check_only(only, [m.name for m in mixtures])
        mixtures = [m for m in mixtures if m.name in only]
    rank = {name: i for i, name in enumerate(PRIORITY)}
    ordered = sorted(mixtures, key=lambda m: rank.get(m.name, len(PRIORITY) + (m.name == "plan-reduced")))
    jobs = []
    for group in ([m for m in ordered if m.name in ("plan", "uniform")], *[[m] for m in ordered if m.name not in ("plan", "uniform")]):
        jobs += [(cfg.model_dump(mode="json"), m.name, dict(m.pairs), s) for s in cfg.final.seeds for m in group]
    with mp.get_context("spawn").Pool(processes, maxtasksperchild=1) as pool:
        for _ in pool.imap_unordered(_train_job, jobs):
            pass


def parse_probe(words: list[str]) -> dict[str, int]:
    """`el=44 ja=549 …` → {"el": 44, "ja": 549, …} (the config then checks the languages and the pairs)."""
    from core.errors import UserError

    probe = {}
    for word in words:
        code, sep, pairs = word.partition("=")
        if not sep or not pairs.strip().isdigit() or code in probe:
            raise UserError(f"--probe {' '.join(words)}: expected each language once as CODE=PAIRS (e.g. el=44)")
        probe[code] = int(pairs)
    return probe


def check_only(only: list[str], names: list[str]) -> None:
    """`--only` names mixtures this experiment trains, or it is refused in one line."""
    from core.errors import UserError

    unknown = [n for n in only if n not in names]
    if unknown:
        raise UserError(f"--only {' '.join(unknown)}: not a mixture of this experiment (it trains {', '.join(names)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "truth-test")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--mixture-sizes", type=int, nargs="*", default=None,
                    help="sweep.mixtures: uniform-mixture proxy runs at these pairs per language (default: the "
                    "config's; none: no mixture runs, no in-mixture curves and no transfer-aware plan)")
    ap.add_argument("--languages", nargs="+", default=None,
                    help="another language set of the embedded corpus (default: the demo's)")
    ap.add_argument("--baselines", nargs="+", default=None,
                    help="baselines to train (default: uniform and the best-predicted heuristic)")
    ap.add_argument("--no-reduced", action="store_true", help="do not train the plan at its reduced budget")
    ap.add_argument("--name", default="truth_test",
                    help="results file stem under benchmarks/results/ (default truth_test)")
    ap.add_argument("--leave-one-out", action="store_true",
                    help="sweep.leave_one_out: also one mixture proxy run without each language")
    ap.add_argument("--leave-one-out-size", type=int, default=None,
                    help="sweep.leave_one_out_size: the mixture size of those runs (default the largest)")
    ap.add_argument("--probe", nargs="+", action="append", default=None, metavar="CODE=PAIRS",
                    help="sweep.probes: a mixture proxy run at these pairs per language (every language named; "
                    "e.g. the transfer-aware plan's allocation); repeat the flag for more")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--only", nargs="+", default=None, metavar="MIXTURE",
                    help="train only these mixtures (e.g. plan-transfer uniform, to add seeds to one comparison); "
                    "the tables still show every mixture's finished runs")
    ap.add_argument("--parallel", type=int, default=2, help="final runs in this many 1-thread processes, "
                    "one seed each (default 2; 1 = one after another in this process)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    check_baselines(args.baselines)
    if args.only:  # before the sweep; the mixtures this run trains are checked again once planned
        from core.config import BASELINE_NAMES
        from core.plan_files import PLAN, REDUCED, TRANSFER

        check_only(args.only, [PLAN, TRANSFER, REDUCED, *BASELINE_NAMES])
    cfg = make_config(args.out.resolve(), args.seeds, args.mixture_sizes, args.leave_one_out,
                      args.languages, reduced=not args.no_reduced, leave_one_out_size=args.leave_one_out_size,
                      probes=[parse_probe(words) for words in args.probe or []])
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        from planner.launch import run_final

        baselines = chosen_baselines(args.baselines, json.loads((cfg.out / "allocation_summary.json").read_text()))
        run_final(cfg, cfg.out / "allocation.csv", baselines, cfg.out / "fits.json", progress=False,
                  only_finished=True)
        print(write_tables(cfg, cfg.fit.metric, args.name))
        return 0
    progress = not args.no_progress
    from planner.pipeline import build_stages
    from planner.sweep import run_sweep

    started = time.monotonic()
    stages = {s.name: s for s in build_stages(cfg, progress=progress)}
    log("data: " + stages["data"].run())
    report = run_sweep(cfg, progress=progress)
    if not report.complete:
        log(f"the sweep finished {report.progress.done}/{report.progress.total} runs; run again to retry")
        return 1
    log(f"sweep: {report.progress.total} proxy runs, mixture runs included ({time.monotonic() - started:.0f} s)")
    summary = fit_and_allocate(cfg)
    baselines = chosen_baselines(args.baselines, summary)
    plan = pd.read_csv(cfg.out / "allocation.csv")
    log(f"plan: {dict(zip(plan['language'], plan['pairs']))}; baselines trained: {', '.join(baselines)}")

    from planner.launch import run_final
    from reports import render_report

    if args.parallel > 1 or args.only:
        final_in_parallel(cfg, baselines, max(args.parallel, 1), args.only)
    # Every run is done by now when run in parallel (this pass reuses them and writes the tables); with
    # --only it trains nothing else.
    run_final(cfg, cfg.out / "allocation.csv", baselines, cfg.out / "fits.json", progress=progress,
              only_finished=bool(args.only))
    check_target_plan(cfg, progress)
    render_report(cfg.out, cfg.out / "report.html")
    print(write_tables(cfg, cfg.fit.metric, args.name))
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


def cli(argv: list[str] | None = None) -> int:
    """`main` with the planner's contract for bad input: one clear line and exit 2, no traceback."""
    from core.errors import UserError

    try:
        return main(argv)
    except UserError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(cli())
