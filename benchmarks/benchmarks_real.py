"""Truth families around real proxy curves, for benchmarks/plan_regret.py.

Each `benchmarks/results/<name>_runs.csv` (a runs table a real sweep wrote, in the `runs.csv` contract) becomes
a family `real-<name>`: the project's own default fit of those runs gives one curve per language (that is
the closest thing to a truth a real sweep offers); each world perturbs every curve's parameters and token
prices by up to ±15% and plays the same sweep design (the sizes of the table, its number of seeds, its
zero-shot point) with the residual noise the fit measured. The tables shipped:

- `smollm2_runs.csv` — the pretrained default (SmolLM2-135M-Instruct, LoRA, chat format), 4 languages ×
  {0, 50, 150, 400} pairs, seed 0 (the sweep of benchmarks/truth_test.py);
- `tiny_runs.csv` — the from-scratch tiny model of the quick preset, 3 languages, an adaptive sweep's runs;
- `demo_adaptive_runs.csv` — the pretrained default's adaptive sweep (`benchmarks/demo_adaptive.yaml`),
  unequal sizes per language (its mixture proxy rows are not part of the per-language curves);
- `demo_ledger2_runs.csv` — the second, independent ledger of the default (0, 50, 150 pairs, sweep seed 1).

Curves a real sweep measured can be flat or fall with data (Hindi and Vietnamese at 50–150 pairs in the
pretrained model's first measurements); the worlds keep what the fit says, so a family can have little
to gain over uniform, and its regret is then noisy — read it with its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from research.truths import family_from_curves


def family_from_runs(name: str, path: Path):
    from fits import fit_runs, read_runs_csv

    fitset = fit_runs(read_runs_csv(path), "chrf", bootstrap=0, seed=0)
    runs = pd.read_csv(path)
    langs = sorted(fitset.languages)
    curves = [fitset.languages[lang].curve for lang in langs]
    residuals = np.concatenate([fitset.languages[lang].residuals for lang in langs])
    sigma = float(max(np.sqrt(np.mean(residuals ** 2)), 0.1))
    tpp = np.array([fitset.languages[lang].tokens_per_pair or 30.0 for lang in langs])
    sizes, seeds, zero = own_design(runs)
    doc = f"curves fitted to {path.name} ({len(langs)} languages), ±15% jitter, residual σ {sigma:.2f}"
    return family_from_curves(f"real-{name}", doc, curves, sigma, sizes, zero, tpp, seeds=seeds)


def own_design(runs: pd.DataFrame) -> tuple[list[float], int, bool]:
    """The per-language design of a runs table: its sizes, runs per (language, size) and whether it has a
    zero-shot point. Mixture rows are not part of it: they repeat a language at the mixture's sizes (a
    ledger with five mixture runs read as five seeds per size, and probes added their sizes)."""
    if "mixture" in runs.columns:
        runs = runs[runs["mixture"].isna() | (runs["mixture"].astype(str).str.strip() == "")]
    sizes = sorted({float(s) for s in runs["n_pairs"] if s > 0})
    seeds = int(runs.groupby(["language", "n_pairs"]).size().max())
    return sizes, seeds, bool((runs["n_pairs"] == 0).any())


def families_from_results(results: Path) -> dict[str, Callable]:
    out = {}
    for path in sorted(Path(results).glob("*_runs.csv")):
        if "chrf" not in pd.read_csv(path, nrows=0).columns:
            continue  # these worlds are chrF curves; a ledger of a bits-per-byte default has none
        name = path.name[: -len("_runs.csv")]
        if len(own_design(pd.read_csv(path))[0]) < 3:
            continue  # the notebook's curve has three parameters: two sizes of one seed cannot fit it
        family = family_from_runs(name, path)
        out[family.name] = family.draw
    return out
