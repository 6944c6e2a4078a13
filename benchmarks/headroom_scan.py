"""Where could a plan beat an equal split? Predicted headroom for every language set of real sweeps.

Reads one or more `runs.csv` tables of per-language proxy runs made with the same recipe (by default
the two SmolLM2 sweeps this project ships: el/hi/tr/vi and es/fr/ja/zh, the demo's grid, seed 0) and,
for every set of `--size` languages among them, does what `planner fit` and `planner allocate` would do
on that set's runs alone (the default fit: pooled, law chosen by backtest, 1,000 posterior draws; the
default sum plan at `--budget` tokens), then reports:

- **plan − uniform, predicted**: the plan's expected summed chrF minus uniform's (equal tokens), as the
  allocation summary states it;
- **headroom**: under each posterior draw, that draw's own best allocation minus uniform (median and
  90% of draws; `mixture_backtest.best_over_uniform`) — an upper bound on what any plan could be
  expected to gain;
- **moved**: the share of the budget the plan moves away from uniform (half the L1 distance of shares).

A set whose headroom is small beside the paired noise of the final runs (on the shipped truth tests the
90% interval of plan − uniform over three seeds is ±3.8 to ±5.9 summed chrF) is unlikely to show a plan
beating uniform, however good the plan is. The largest of many sets'
headroom is biased upward (the set is picked on the same noisy runs), so a set chosen here is then
trained with fresh final seeds (`benchmarks/truth_test.py --languages ...`).

Usage: python benchmarks/headroom_scan.py [--runs A.csv B.csv] [--size 4] [--budget 30000]
       (writes benchmarks/results/headroom_scan.{md,csv})
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"

from fits import fit_runs  # noqa: E402
from mixture_backtest import best_over_uniform  # noqa: E402
from planner.allocation import allocate  # noqa: E402
from research.adaptive.adaptive import tokens_per_pair  # noqa: E402  (median tokens per pair of trained runs)


def scan_one(runs: pd.DataFrame, languages: tuple[str, ...], budget: float, seed: int = 0) -> dict:
    """The default fit and sum plan on `languages`' runs alone, and what they say about uniform."""
    sub = runs[runs["language"].isin(languages)]
    fitset = fit_runs(sub.astype(str), "chrf", bootstrap=1000, seed=seed)
    result = allocate(fitset, budget=budget, unit="tokens")
    summary = result.summary()
    uniform = summary["baselines"]["uniform"]
    langs = sorted(languages)
    tpp = tokens_per_pair(sub, langs)
    plan = {r.language: float(r.pairs) for r in result.languages}
    plan_tokens = np.array([plan[lang] * tpp[lang] for lang in langs])
    moved = 0.5 * float(np.abs(plan_tokens / plan_tokens.sum() - 1 / len(langs)).sum())
    med, low, high = best_over_uniform([fitset.languages[lang] for lang in langs],
                                       np.array([tpp[lang] for lang in langs]), budget)
    return {"languages": " ".join(langs), "law": fitset.population.get("law", ""),
            "plan_minus_uniform": summary["objective_value"] - uniform["objective_value"],
            "headroom_median": med, "headroom_low": low, "headroom_high": high, "moved": moved,
            "plan": " / ".join(f"{round(plan[lang])}" for lang in langs),
            "uniform": " / ".join(f"{round(uniform['languages'][lang]['pairs'])}" for lang in langs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, nargs="+", default=[RESULTS / "smollm2_runs.csv",
                                                             RESULTS / "smollm2_runs_es_fr_ja_zh.csv"])
    ap.add_argument("--size", type=int, default=4, help="languages per set (default 4, the demo's)")
    ap.add_argument("--budget", type=float, default=30000.0, help="tokens (default: the demo's 30,000)")
    ap.add_argument("--out", type=Path, default=RESULTS / "headroom_scan")
    args = ap.parse_args(argv)

    runs = pd.concat([pd.read_csv(p) for p in args.runs], ignore_index=True)
    if "mixture" in runs:
        runs = runs[runs["mixture"].isna()]
    if "status" in runs:
        runs = runs[runs["status"].fillna("complete") == "complete"]
    missing = {"language", "n_pairs", "n_tokens", "chrf"} - set(runs.columns)
    if missing:  # the budget is in tokens, so each language's tokens per pair must be known
        print(f"Error: the runs tables lack the columns {sorted(missing)}.", file=sys.stderr)
        return 2
    languages = sorted(runs["language"].unique())
    if not 2 <= args.size <= len(languages):
        print(f"Error: --size must be between 2 and the {len(languages)} languages of the runs; got {args.size}.",
              file=sys.stderr)
        return 2
    sets = list(itertools.combinations(languages, args.size))
    started, rows = time.monotonic(), []
    for i, subset in enumerate(sets, 1):
        rows.append(scan_one(runs, subset, args.budget))
        print(f"[{i}/{len(sets)}, {time.monotonic() - started:.0f} s] {rows[-1]['languages']}: plan − uniform "
              f"{rows[-1]['plan_minus_uniform']:+.2f}, headroom {rows[-1]['headroom_median']:+.2f}", file=sys.stderr)
    table = pd.DataFrame(rows).sort_values("headroom_median", ascending=False)
    table.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.4f")
    lines = [f"Predicted headroom over an equal split, every {args.size}-language set of "
             f"{', '.join(languages)} ({', '.join(p.name for p in args.runs)}; budget {args.budget:,.0f} tokens; "
             f"{os.cpu_count()} cores, {time.monotonic() - started:.0f} s). Plan and uniform in pairs, languages "
             "in alphabetical order. Sorted by headroom.", "",
             "| languages | law | plan | uniform | moved | plan − uniform, predicted | headroom, median [90% of draws] |",
             "|---|---|---|---|---:|---:|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.languages} | {r.law} | {r.plan} | {r.uniform} | {r.moved:.0%} | {r.plan_minus_uniform:+.2f} | "
                     f"{r.headroom_median:+.2f} [{r.headroom_low:+.2f}, {r.headroom_high:+.2f}] |")
    text = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
