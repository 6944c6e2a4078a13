"""A complete planner output directory built from synthetic runs with known scaling laws.

Every producer's real code runs: known offset power laws plus noise (zero-shot evaluations included) →
runs.csv → `fits.fit_runs` (the population fit) → `save_fits` → `planner.allocation.allocate` (a token
budget, why-lines, budget saved) → `write_allocation`; then the final runs are simulated from the same
true laws, once per final seed, and written by the launcher's own functions (`planner.launch`:
mixtures, metrics rows, objectives, paired comparison and calibration tables). Only the training is
simulated, and the alignment analysis. Used by the report tests and by `benchmarks/report_browser_check.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import config_from_dict, write_resolved
from fits import fit_runs, save_fits
from planner.allocation import LanguageLimits, allocate, read_allocation, read_summary, write_allocation
from planner.launch import REDUCED, metrics_rows, mixtures_from_allocation, objective, write_final_tables

LANGUAGES = ("ar", "el", "hi", "tr", "vi", "zh", "de", "fr", "ja", "ko", "ru", "fi", "he", "id", "th", "uk")
SIZES = (250, 500, 1000, 2000)
BUDGET_TOKENS = 170_000  # about 6,000 pairs at the synthetic languages' 18–40 tokens per pair
FINAL_BASELINES = ("uniform", "temperature-0.5")
_SHARED: dict = {}


@dataclass(frozen=True)
class TrueLaw:
    """chrF = ceiling − scale·(pairs + x0)^(−alpha): finite at 0 pairs (the zero-shot score), and the
    tokens one pair costs."""

    ceiling: float
    scale: float
    alpha: float
    tokens_per_pair: float
    x0: float = 0.0

    def chrf(self, pairs):
        return self.ceiling - self.scale * (np.asarray(pairs, dtype=float) + self.x0) ** (-self.alpha)


def true_laws(languages, seed: int = 0) -> dict[str, TrueLaw]:
    """Plausible curves: chrF 3–12 zero-shot, 15–35 at 250 pairs, rising towards a 45–65 ceiling with
    α in [0.35, 0.65]; x0 follows from the three."""
    rng = np.random.default_rng(seed)
    laws = {}
    for lang in languages:
        ceiling, alpha, at_250, zero = rng.uniform(45, 65), rng.uniform(0.35, 0.65), rng.uniform(15, 35), rng.uniform(3, 12)
        # (C − zero) / (C − at_250) = ((250 + x0) / x0)^α
        x0 = 250.0 / (((ceiling - zero) / (ceiling - at_250)) ** (1 / alpha) - 1)
        laws[lang] = TrueLaw(ceiling, (ceiling - at_250) * (250 + x0) ** alpha, alpha, float(rng.uniform(18, 40)), x0)
    return laws


def synthetic_runs(laws: dict[str, TrueLaw], seeds=(0, 1), noise: float = 0.5, seed: int = 0,
                   two_size_language: str | None = None, one_size_language: str | None = None,
                   zero_shot: bool = False) -> pd.DataFrame:
    """One row per (language, size, seed), and with `zero_shot` one evaluation at 0 pairs per language
    (not for the one-size language, which stays unfittable); languages with too few sizes exercise the
    warnings."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for lang, law in laws.items():
        sizes = (SIZES[0], SIZES[2]) if lang == two_size_language else (SIZES[1],) if lang == one_size_language else SIZES
        if zero_shot and lang != one_size_language:
            rows.append({"language": lang, "n_pairs": 0, "n_tokens": 0, "seed": 0,
                         "chrf": float(law.chrf(0) + rng.normal(0, noise)), "status": "complete", "train_seconds": 0.0})
        for n in sizes:
            for s in seeds:
                rows.append({
                    "language": lang, "n_pairs": n, "n_tokens": int(round(n * law.tokens_per_pair)), "seed": s,
                    "chrf": float(law.chrf(n) + rng.normal(0, noise)), "status": "complete",
                    "train_seconds": round(5 + n / 40 + rng.uniform(0, 3), 2),
                })
    return pd.DataFrame(rows)


def make_output_dir(directory: str | Path, n_languages: int = 6, seed: int = 0, bootstrap: int = 200,
                    final: bool = True, alignment: bool = True, edge_cases: bool = True,
                    final_seeds=(0, 1, 2), zero_shot: bool = True) -> Path:
    """Write runs.csv, fits.json, allocation.csv (+ summary), final/, alignment/ and resolved_config.yaml."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    languages = list(LANGUAGES[:n_languages])
    laws = true_laws(languages, seed)
    two, one = (languages[-2], languages[-1]) if edge_cases and n_languages >= 4 else (None, None)
    runs = synthetic_runs(laws, seed=seed, two_size_language=two, one_size_language=one, zero_shot=zero_shot)
    runs.to_csv(out / "runs.csv", index=False)

    fitset = fit_runs(runs, "chrf", bootstrap=bootstrap, seed=seed)
    save_fits(fitset, out / "fits.json")
    # Available data per language (the proportional and temperature baselines need it); one language
    # has little, so the plan holds it at its cap.
    available = np.random.default_rng(seed + 4).integers(2000, 8000, len(languages))
    limits = {lang: LanguageLimits(max_pairs=float(n)) for lang, n in zip(languages, available) if lang in fitset.languages}
    if edge_cases:
        limits[languages[1]] = LanguageLimits(max_pairs=600.0)
    plan = allocate(fitset, BUDGET_TOKENS, "tokens", limits=limits, seed=seed)
    write_allocation(plan, out / "allocation.csv")

    if final:
        write_final(out, fitset, laws, seed, final_seeds)
    if alignment:
        _write_alignment(out, languages, seed)
    config = {"experiment": "synthetic", "languages": languages, "seed": seed,
              "fit": {"bootstrap": bootstrap}, "budget": {"total": BUDGET_TOKENS, "unit": "tokens"}}
    write_resolved(config_from_dict(config), out)
    return out


def shared_report(tmp_path_factory):
    """The fixture directory and its rendered report, built once per test session: several test modules
    read the same report, and rendering it is most of their time."""
    if "report" not in _SHARED:
        from reports import render_report

        _SHARED["report"] = render_report(make_output_dir(tmp_path_factory.mktemp("shared_report")))
    return _SHARED["report"]


def write_final(out: Path, fitset, laws: dict[str, TrueLaw], seed: int, final_seeds) -> None:
    """What `planner launch` would write, its own functions doing the writing: each mixture scored by the
    true law at its amounts, plus a seed effect every mixture shares (cancelled by pairing) and noise."""
    allocation = read_allocation(out / "allocation.csv")
    summary = read_summary(out / "allocation_summary.json")
    wanted = list(FINAL_BASELINES) + ([REDUCED] if summary.get("reduced_pairs") else [])
    level = summary.get("interval_level", 0.9)
    mixtures = mixtures_from_allocation(allocation, summary, wanted, fitset, level)
    rng = np.random.default_rng(seed + 2)
    shared = {(s, lang): rng.normal(0, 1.0) for s in final_seeds for lang in laws}
    weights = {lang: 1.0 for lang in allocation["language"]}
    tpp = {lang: law.tokens_per_pair for lang, law in laws.items()}
    rows, objectives = [], []
    for mixture in mixtures:
        for s in final_seeds:
            achieved = {lang: float(laws[lang].chrf(n) + shared[(s, lang)] + rng.normal(0, 0.4))
                        for lang, n in mixture.pairs.items()}
            rows += metrics_rows(mixture, achieved, tpp, s)
            objectives.append({"mixture": mixture.name, "seed": s,
                               "predicted_objective": objective(mixture.predicted, weights, "sum", True),
                               "achieved_objective": objective(achieved, weights, "sum", True)})
    (out / "final").mkdir(exist_ok=True)
    write_final_tables(out / "final", rows, objectives, mixtures, True, level)


def _write_alignment(out: Path, languages, seed: int, layers: int = 6) -> None:
    """True-pair similarity rising with depth, more so after alignment training; random pairs flat."""
    rng = np.random.default_rng(seed + 3)
    rows = []
    for stage, boost in (("before", 0.0), ("after", 0.2)):
        for lang in languages:
            affinity = rng.uniform(0.6, 1.0)
            for layer in range(layers + 1):
                depth = layer / layers
                cos_random = 0.2 + 0.1 * depth + rng.normal(0, 0.01)
                cos_true = cos_random + affinity * (0.1 + 0.3 * depth + boost * depth) + rng.normal(0, 0.01)
                retrieval = np.clip(affinity * (0.15 + 0.6 * depth + boost), 0, 1)
                rows.append({"stage": stage, "language": lang, "layer": layer, "cos_true": cos_true,
                             "cos_random": cos_random, "retrieval_en_x": retrieval,
                             "retrieval_x_en": np.clip(retrieval - 0.05, 0, 1)})
    (out / "alignment").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "alignment" / "alignment.csv", index=False)
