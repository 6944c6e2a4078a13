"""Would in-mixture curves make a finished run's final-run predictions hold? (issue 30)

On a finished output directory whose sweep had no mixture proxy runs (the embedded default), this script

1. adds uniform mixture proxy runs at `--mixtures` sizes to the directory's own sweep study with the
   planner's CLI (`planner sweep` on the run's resolved config with `sweep.mixtures` set: the settings
   hash does not cover mixtures, so only the new mixture runs train), and times them;
2. refits with `planner fit` into a separate file (`fits_mixtures_<sizes>.json`) on the per-language rows
   and these sizes' mixture rows only (`runs_mixtures_<sizes>.csv`; the study may hold mixture runs of an
   earlier call), leaving the run's `fits.json`, allocation and final tables as they were;
3. for every (mixture, seed, language) final score of `--metrics` (a `final/metrics.csv`-shaped table:
   mixture, seed, language, pairs, achieved, predicted, predicted_low, predicted_high) predicts the score
   and its 90% predictive interval twice:
   (a) from the language's own curve, as the launch did (`planner.launch.final_mixtures` on the run's
       allocation and fits.json: it must reproduce the table's predicted / low / high);
   (b) from the language's in-mixture curve at its own pairs in that final mixture, with the rule the
       transfer-aware plan uses (`planner.allocation.transfer`: the mean over the curve's posterior draws,
       and draws plus one run's noise, the larger of the in-mixture residual RMS and the proxy noise);
4. prints per language and overall coverage, mean error (achieved − predicted) and RMS, and the
   predicted plan − uniform difference (summed metric, positive = plan better) under both against the
   achieved paired mean. Also the transfer-aware plan the new fits would choose, and a what-if: (b)'s
   coverage with the law's extrapolation error added beyond the largest mixture run (the planner adds
   none to the transfer-aware intervals; `widened_predictions`).

Usage: python benchmarks/mixture_calibration.py --out OUTPUT_DIR --metrics METRICS_CSV --mixtures 20 60
       [--level 0.9] [--json FILE]
Work on a copy of the output directory: the sweep adds runs to its study and rows to its runs.csv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import load_config  # noqa: E402
from fits import load_fits  # noqa: E402
from planner.allocation import allocate  # noqa: E402
from planner.allocation.problem import build_problem  # noqa: E402
from planner.allocation.transfer import _predictive_interval, mixture_problem, transfer_utility  # noqa: E402
from planner.budget import allocation_settings  # noqa: E402
from planner.launch import final_mixtures  # noqa: E402

KEY = ["mixture", "seed", "language"]


# ---- pure steps (tested in tests/test_mixture_calibration.py) -------------------------------------------

def mixture_config(resolved: dict, out: Path, mixtures: list[int]) -> dict:
    """The run's resolved config with the mixture runs added and its output directory set to `out`.
    Nothing else changes, so the per-language runs keep their settings hash and are not retrained."""
    if not mixtures or any(int(m) <= 0 for m in mixtures):
        raise ValueError(f"mixture sizes must be positive pairs per language, got {mixtures}")
    cfg = {k: v for k, v in resolved.items() if k != "planner_version"}
    cfg["output_dir"] = str(out)
    cfg["sweep"] = {**cfg.get("sweep", {}), "mixtures": sorted({int(m) for m in mixtures})}
    return cfg


def calibration(rows: pd.DataFrame, model: str) -> pd.DataFrame:
    """Per language and overall ('all'): cases, share inside [low_<model>, high_<model>], mean error
    (achieved − pred_<model>) and its RMS."""
    err = rows["achieved"] - rows[f"pred_{model}"]
    inside = (rows["achieved"] >= rows[f"low_{model}"]) & (rows["achieved"] <= rows[f"high_{model}"])
    frame = pd.DataFrame({"language": rows["language"], "err": err, "inside": inside})

    def stats(g: pd.DataFrame) -> dict:
        return {"cases": len(g), "inside": float(g["inside"].mean()), "mean_error": float(g["err"].mean()),
                "rms": float(np.sqrt((g["err"] ** 2).mean()))}

    table = [{"language": lang, **stats(g)} for lang, g in frame.groupby("language", sort=True)]
    return pd.DataFrame(table + [{"language": "all", **stats(frame)}])


def plan_minus_uniform(rows: pd.DataFrame, column: str, higher_is_better: bool,
                       plan: str = "plan", baseline: str = "uniform") -> float:
    """Mean over paired seeds of the summed-over-languages `column`, plan − baseline, signed so that
    positive means the plan is better (for a lower-is-better metric: baseline − plan)."""
    sums = rows.pivot_table(index="seed", columns="mixture", values=column, aggfunc="sum")
    sums = sums.dropna(subset=[plan, baseline])
    diff = sums[plan] - sums[baseline]
    return float((diff if higher_is_better else -diff).mean())


def select_mixtures(runs: pd.DataFrame, wanted: set[str]) -> pd.DataFrame:
    """The per-language rows and the rows of the `wanted` mixture runs; an error when one is missing."""
    if "mixture" not in runs:
        raise SystemExit(f"runs.csv has no mixture rows; wanted {sorted(wanted)}")
    missing = wanted - set(runs["mixture"].dropna())
    if missing:
        raise SystemExit(f"runs.csv has no rows of {sorted(missing)}: did the sweep finish?")
    return runs[runs["mixture"].isna() | runs["mixture"].isin(wanted)].reset_index(drop=True)


def mixture_run_times(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per mixture proxy run of a runs table: its train and eval seconds (the same on every
    language row of the run) and its total pairs."""
    mix = runs[runs.get("mixture", pd.Series(index=runs.index, dtype=object)).notna()]
    if mix.empty:
        return pd.DataFrame(columns=["mixture", "pairs", "train_seconds", "eval_seconds"])
    return mix.groupby("mixture", sort=False).agg(pairs=("n_pairs", "sum"), train_seconds=("train_seconds", "first"),
                                                  eval_seconds=("eval_seconds", "first")).reset_index()


# ---- the planner's pieces --------------------------------------------------------------------------------

def planner(args: list[str]) -> float:
    """Run one planner verb with this interpreter (argument list, no shell); its wall seconds."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "planner", *args], check=True, cwd=ROOT)
    return time.monotonic() - start


def own_predictions(cfg, out: Path, level: float) -> pd.DataFrame:
    """(a): each final mixture's per-language prediction and interval exactly as `planner launch` made
    them (from the run's allocation.csv, its summary and its fits.json)."""
    rows = []
    for mixture in final_mixtures(cfg, out / "allocation.csv", list(cfg.final.baselines), out / "fits.json"):
        for lang in mixture.pairs:
            rows.append({"mixture": mixture.name, "language": lang, "pred_own": mixture.predicted[lang],
                         "low_own": mixture.predicted_low[lang], "high_own": mixture.predicted_high[lang]})
    return pd.DataFrame(rows)


def in_mixture_problem(cfg, out: Path, fitset):
    """The allocation problem of the config on `fitset`, its curves, draws and noise replaced by the
    in-mixture fits (`planner.allocation.transfer.mixture_problem`: the transfer-aware plan's model)."""
    pools = pd.read_csv(out / "data_stats.csv", index_col="language")["train"].astype(int).to_dict()
    s = allocation_settings(cfg, pools)
    problem = build_problem(fitset, s["budget"], s["unit"], s["limits"], s["max_epochs"], s["currency"], s["price_key"])
    missing = [lang for lang in problem.languages
               if lang not in fitset.transfer or fitset.transfer[lang].mixture_fit is None]
    if missing:
        raise SystemExit(f"no in-mixture curve for {missing}: each needs mixture rows at two own-data sizes")
    return mixture_problem(problem, fitset, [fitset.transfer[lang].mixture_fit for lang in problem.languages])


def inside_predictions(problem, pairs_by_mixture: dict[str, dict[str, float]], level: float) -> pd.DataFrame:
    """(b): per mixture and language, the in-mixture prediction at the language's own pairs there: the
    mean over the posterior draws (the transfer-aware plan's point under risk expected) and the central
    `level` interval of draws plus one run's noise (its `_predictive_interval` with τ = 0)."""
    langs, zero = problem.languages, np.zeros(len(problem.languages))
    rows = []
    for name, by_lang in pairs_by_mixture.items():
        pairs = np.array([float(by_lang[lang]) for lang in langs])
        pred = problem.sign * transfer_utility(problem.draws, zero, pairs)
        low, high = _predictive_interval(problem, zero, pairs, level)
        rows += [{"mixture": name, "language": lang, "pred_mix": p, "low_mix": lo, "high_mix": hi}
                 for lang, p, lo, hi in zip(langs, pred, low, high)]
    return pd.DataFrame(rows)


def widened_predictions(problem, fitset, pairs_by_mixture: dict[str, dict[str, float]], level: float) -> pd.DataFrame:
    """(b)'s intervals with the own curves' extrapolation error added beyond the most own data each
    language had in a mixture run. A what-if when measured (the planner then added none there: per-draw
    pairs were not widened, and `mixture_problem` kept the own runs' largest size); the planner's own rule
    since, so (b) now equals it where the in-mixture fits have no backtest of their own."""
    from planner.allocation.risk import predictive_draws, quantiles

    most = np.array([max(fitset.transfer[lang].mixture_fit.sizes) for lang in problem.languages], float)
    wide = replace(problem, largest_run=most / problem.curves.x_per_pair)
    rows = []
    for name, by_lang in pairs_by_mixture.items():
        pairs = np.array([float(by_lang[lang]) for lang in problem.languages])
        low, high = quantiles(predictive_draws(wide, pairs), level)
        pred = problem.sign * transfer_utility(problem.draws, np.zeros(len(pairs)), pairs)
        rows += [{"mixture": name, "language": lang, "pred_mix": p, "low_mix": lo, "high_mix": hi}
                 for lang, p, lo, hi in zip(problem.languages, pred, low, high)]
    return pd.DataFrame(rows)


def gain_draws(problem, plan: dict, baseline: dict) -> np.ndarray:
    """Per posterior draw, the summed predicted plan − baseline (positive = plan better), no run noise."""
    langs = problem.languages
    p = np.array([float(plan[lang]) for lang in langs])
    b = np.array([float(baseline[lang]) for lang in langs])
    return (problem.draws.utility(p[None, :]) - problem.draws.utility(b[None, :])).sum(-1)


# ---- printing ----------------------------------------------------------------------------------------------

def table_lines(own: pd.DataFrame, mix: pd.DataFrame) -> list[str]:
    lines = ["| language | cases | inside (a) own | inside (b) in-mixture | mean error (a) | mean error (b) "
             "| RMS (a) | RMS (b) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for a, b in zip(own.itertuples(), mix.itertuples()):
        lines.append(f"| {a.language} | {a.cases} | {a.inside:.0%} | {b.inside:.0%} | {a.mean_error:+.3f} | "
                     f"{b.mean_error:+.3f} | {a.rms:.3f} | {b.rms:.3f} |")
    return lines


def curve_lines(fitset, problem) -> list[str]:
    lines = ["| language | in-mixture law | own sizes in mixtures | residual RMS | proxy noise | noise used |",
             "|---|---|---|---:|---:|---:|"]
    proxy = (fitset.population or {}).get("sigma")
    for lang, noise in zip(problem.languages, problem.noise):
        f = fitset.transfer[lang].mixture_fit
        sizes = "/".join(f"{s:g}" for s in f.sizes)
        lines.append(f"| {lang} | {f.law} | {sizes} | {f.rmse:.4f} | {proxy if proxy is None else f'{proxy:.4f}'} "
                     f"| {noise:.4f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a finished output directory (work on a copy)")
    ap.add_argument("--metrics", type=Path, required=True, help="the final runs' scores (final/metrics.csv shape)")
    ap.add_argument("--mixtures", type=int, nargs="+", required=True, help="uniform mixture sizes, pairs per language")
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    tag = "_".join(str(m) for m in sorted(set(args.mixtures)))
    resolved = yaml.safe_load((out / "resolved_config.yaml").read_text(encoding="utf-8"))
    config_path = out / f"mixture_calibration_{tag}.yaml"
    config_path.write_text(yaml.safe_dump(mixture_config(resolved, out, args.mixtures), sort_keys=False),
                           encoding="utf-8")
    cfg = load_config(config_path)

    sweep_s = planner(["sweep", "--config", str(config_path), "--output-dir", str(out), "--no-progress"])
    # Fit on the per-language rows and these sizes' mixture rows only: the study may hold other mixture
    # runs from an earlier call with other sizes, and runs.csv may list them.
    wanted = {f"uniform-{m}" for m in args.mixtures}
    runs = select_mixtures(pd.read_csv(out / "runs.csv"), wanted)
    runs_path, fits_path = out / f"runs_mixtures_{tag}.csv", out / f"fits_mixtures_{tag}.json"
    runs.to_csv(runs_path, index=False)
    fit_s = planner(["fit", "--config", str(config_path), "--output-dir", str(out), str(runs_path),
                     "--out", str(fits_path)])
    times = mixture_run_times(runs)

    finals = pd.read_csv(args.metrics)
    fitset = load_fits(fits_path)
    problem = in_mixture_problem(cfg, out, fitset)
    pairs = {name: dict(zip(g["language"], g["pairs"])) for name, g in finals.groupby("mixture")}
    own = own_predictions(cfg, out, args.level)
    mix = inside_predictions(problem, pairs, args.level)
    rows = finals.merge(own, on=["mixture", "language"], how="left").merge(mix, on=["mixture", "language"], how="left")
    reproduced = float(np.nanmax(np.abs(rows[["pred_own", "low_own", "high_own"]].to_numpy()
                                        - rows[["predicted", "predicted_low", "predicted_high"]].to_numpy())))
    cal_own, cal_mix = calibration(rows, "own"), calibration(rows, "mix")
    widened = widened_predictions(problem, fitset, pairs, args.level)
    wide = finals.merge(widened, on=["mixture", "language"], how="left")
    cal_wide = calibration(wide, "mix").set_index("language")
    hib = bool(fitset.higher_is_better)
    achieved_gain = plan_minus_uniform(rows, "achieved", hib)
    own_gain, mix_gain = plan_minus_uniform(rows, "pred_own", hib), plan_minus_uniform(rows, "pred_mix", hib)
    gains = gain_draws(problem, pairs["plan"], pairs["uniform"])
    tail = (1 - args.level) / 2
    gain_lo, gain_hi = np.nanquantile(gains, [tail, 1 - tail])
    pools = pd.read_csv(out / "data_stats.csv", index_col="language")["train"].astype(int).to_dict()
    aware = allocate(fitset, objective="sum", **allocation_settings(cfg, pools)).transfer or {}

    print(f"output dir: {out.name}; mixtures {sorted(set(args.mixtures))}; {len(rows)} final scores; "
          f"{os.cpu_count()} CPU cores")
    print(f"planner sweep {sweep_s:.0f} s wall (only the new mixture runs train), planner fit {fit_s:.0f} s")
    for t in times.itertuples():
        print(f"  {t.mixture}: {t.pairs:g} training pairs, train {t.train_seconds:.0f} s, eval {t.eval_seconds:.0f} s")
    print(f"(a) reproduces the metrics table's predicted/low/high to {reproduced:.2g}")
    print("\nIn-mixture curves (noise used = the larger of residual RMS and proxy noise):")
    print("\n".join(curve_lines(fitset, problem)))
    print(f"\nPredicted against achieved in the final mixtures, {args.level:.0%} predictive intervals:")
    print("\n".join(table_lines(cal_own, cal_mix)))
    print("what-if (not the planner's rule), (b) widened beyond the largest mixture run instead of the largest "
          "own run: inside " + ", ".join(f"{lang} {r.inside:.0%}" for lang, r in cal_wide.iterrows()))
    print("\nPer mixture and language, mean over seeds (achieved; (a) own; (b) in-mixture [interval]):")
    means = rows.groupby(["mixture", "language"]).agg(
        pairs=("pairs", "first"), achieved=("achieved", "mean"), own=("pred_own", "first"),
        mix=("pred_mix", "first"), low=("low_mix", "first"), high=("high_mix", "first")).reset_index()
    for r in means.itertuples():
        print(f"  {r.mixture:8s} {r.language} {r.pairs:4d} pairs: achieved {r.achieved:.3f}; (a) {r.own:.3f}; "
              f"(b) {r.mix:.3f} [{r.low:.3f}, {r.high:.3f}]")
    print(f"\nplan - uniform, summed {fitset.metric} (positive = plan better): achieved {achieved_gain:+.3f} "
          f"(paired mean); predicted (a) own {own_gain:+.3f}; (b) in-mixture {mix_gain:+.3f} "
          f"[{gain_lo:+.3f}, {gain_hi:+.3f}] over the draws")
    if aware:
        p = ", ".join(f"{lang} {v:.0f}" for lang, v in aware["pairs"].items())
        sign = 1 if hib else -1
        gain = sign * (aware["objective_value"] - aware["uniform_objective_value"])
        print(f"transfer-aware plan on these fits ({aware['model']}): {p}; predicted over uniform {gain:+.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "mixtures": sorted(set(args.mixtures)), "sweep_seconds": sweep_s, "fit_seconds": fit_s,
            "mixture_runs": times.to_dict("records"), "reproduced_max_abs": reproduced,
            "own": cal_own.to_dict("records"), "in_mixture": cal_mix.to_dict("records"),
            "in_mixture_widened": cal_wide.reset_index().to_dict("records"),
            "gain": {"achieved": achieved_gain, "own": own_gain, "in_mixture": mix_gain,
                     "in_mixture_interval": [float(gain_lo), float(gain_hi)]},
            "transfer_plan": aware}, indent=2, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
