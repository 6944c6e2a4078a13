"""A complete planner output directory built from synthetic runs with known scaling laws.

Every producer's real code runs: known power laws plus noise → runs.csv → `fits.fit_runs` → `save_fits`
→ `planner.allocation.allocate` → `write_allocation`; the final run and the alignment analysis, which
need training, are simulated from the same true laws. Used by the report tests and by
`benchmarks/report_browser_check.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fits import fit_runs, save_fits
from planner.allocation import LanguageLimits, allocate, write_allocation
from core.config import config_from_dict, write_resolved

LANGUAGES = ("ar", "el", "hi", "tr", "vi", "zh", "de", "fr", "ja", "ko", "ru", "fi", "he", "id", "th", "uk")
SIZES = (250, 500, 1000, 2000)
BUDGET = 6000


@dataclass(frozen=True)
class TrueLaw:
    """chrF = ceiling − scale·pairs^(−alpha), and the tokens one pair costs."""

    ceiling: float
    scale: float
    alpha: float
    tokens_per_pair: float

    def chrf(self, pairs):
        return self.ceiling - self.scale * np.asarray(pairs, dtype=float) ** (-self.alpha)


def true_laws(languages, seed: int = 0) -> dict[str, TrueLaw]:
    """Plausible curves: chrF 15–35 at 250 pairs, rising towards a 45–65 ceiling with α in [0.35, 0.65]."""
    rng = np.random.default_rng(seed)
    laws = {}
    for lang in languages:
        ceiling, alpha, at_250 = rng.uniform(45, 65), rng.uniform(0.35, 0.65), rng.uniform(15, 35)
        laws[lang] = TrueLaw(ceiling, (ceiling - at_250) * 250**alpha, alpha, float(rng.uniform(18, 40)))
    return laws


def synthetic_runs(laws: dict[str, TrueLaw], seeds=(0, 1), noise: float = 0.5, seed: int = 0,
                   two_size_language: str | None = None, one_size_language: str | None = None) -> pd.DataFrame:
    """One row per (language, size, seed); optional languages with too few sizes exercise the warnings."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for lang, law in laws.items():
        sizes = (SIZES[0], SIZES[2]) if lang == two_size_language else (SIZES[1],) if lang == one_size_language else SIZES
        for n in sizes:
            for s in seeds:
                rows.append({
                    "language": lang, "n_pairs": n, "n_tokens": int(round(n * law.tokens_per_pair)), "seed": s,
                    "chrf": float(law.chrf(n) + rng.normal(0, noise)), "status": "complete",
                    "train_seconds": round(5 + n / 40 + rng.uniform(0, 3), 2),
                })
    return pd.DataFrame(rows)


def make_output_dir(directory: str | Path, n_languages: int = 6, seed: int = 0, bootstrap: int = 200,
                    final: bool = True, alignment: bool = True, edge_cases: bool = True) -> Path:
    """Write runs.csv, fits.json, allocation.csv (+ summary), final/, alignment/ and resolved_config.yaml."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    languages = list(LANGUAGES[:n_languages])
    laws = true_laws(languages, seed)
    two, one = (languages[-2], languages[-1]) if edge_cases and n_languages >= 4 else (None, None)
    runs = synthetic_runs(laws, seed=seed, two_size_language=two, one_size_language=one)
    runs.to_csv(out / "runs.csv", index=False)

    fitset = fit_runs(runs, "chrf", bootstrap=bootstrap, seed=seed)
    save_fits(fitset, out / "fits.json")
    # Available data per language (the proportional and temperature baselines need it); one language
    # has little, so the plan holds it at its cap.
    available = np.random.default_rng(seed + 4).integers(2000, 8000, len(languages))
    limits = {lang: LanguageLimits(max_pairs=float(n)) for lang, n in zip(languages, available) if lang in fitset.languages}
    if edge_cases:
        limits[languages[1]] = LanguageLimits(max_pairs=600.0)
    plan = allocate(fitset, BUDGET, "pairs", limits=limits, seed=seed)
    write_allocation(plan, out / "allocation.csv")

    if final:
        _write_final(out, plan, fitset, laws, seed)
    if alignment:
        _write_alignment(out, languages, seed)
    config = {"experiment": "synthetic", "languages": languages, "seed": seed,
              "fit": {"bootstrap": bootstrap}, "budget": {"total": BUDGET}}
    write_resolved(config_from_dict(config), out)
    return out


def _write_final(out: Path, plan, fitset, laws: dict[str, TrueLaw], seed: int) -> None:
    """What `planner launch` would measure: the true law at each mixture's amounts, plus run noise."""
    rng = np.random.default_rng(seed + 2)
    mixtures = {"plan": {p.language: p.pairs for p in plan.languages}}
    for name in ("uniform", "temperature-0.5"):
        if name in plan.baselines:
            mixtures[name] = plan.baselines[name].pairs
    rows, objectives = [], []
    for name, pairs in mixtures.items():
        predicted_total = achieved_total = 0.0
        for lang, n in pairs.items():
            fit = fitset.languages[lang]
            predicted = float(fit.predict(n))
            low, high = (float(v) for v in fit.predict_interval(float(n), fitset.level))
            achieved = float(laws[lang].chrf(max(n, 1.0)) + rng.normal(0, 0.7))
            inside = bool(low <= achieved <= high) if np.isfinite(low) else None
            rows.append({"mixture": name, "language": lang, "pairs": n, "tokens": n * laws[lang].tokens_per_pair,
                         "predicted": predicted, "predicted_low": low, "predicted_high": high, "achieved": achieved,
                         "error": achieved - predicted, "inside_interval": inside})
            predicted_total += predicted
            achieved_total += achieved
        objectives.append({"mixture": name, "predicted_objective": predicted_total,
                           "achieved_objective": achieved_total})
    (out / "final").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "final" / "metrics.csv", index=False)
    pd.DataFrame(objectives).to_csv(out / "final" / "objectives.csv", index=False)


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
