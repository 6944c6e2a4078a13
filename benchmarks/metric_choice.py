"""Which metric should the embedded default fit: chrF, held-out loss per token, or bits per byte?

Measured on the default's own recipe and languages (core/demo.yaml), with every metric recorded:
  1. the default's grid (zero-shot + three sizes, one seed), translating so that chrF and BLEU exist too;
  2. two more seeds at the middle size (seed noise at one size, three seeds);
  3. per metric: leave-the-largest-size-out error of the default fit (fit below the largest size, predict
     it), in the metric's units, in seed-noise units and as a share of the measured gain; whether the
     fit's 90% interval covers the held-out run; the seed noise; the spread of the languages' gains
     between the smallest and largest trained size against that noise (what the allocation must tell
     apart); and a chrF prediction through the bits-per-byte law and a per-language link
     chrF = C·exp(−k·bpb) (Gordon et al. 2021 fit BLEU this way from cross-entropy), against fitting
     chrF itself.
The same leave-out check runs on the shipped SmolLM2 ledgers of the earlier recipe (eight languages, two
epochs, 0/50/150 → 400 pairs; chrF and loss only).

    python benchmarks/metric_choice.py                  # trains (about 25 min on 2 cores), then the tables
    python benchmarks/metric_choice.py --runs FILE      # the tables from a runs table already measured

Writes benchmarks/results/metric_choice_ledger.csv (with --measure) and metric_choice.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import config_from_dict, load_config  # noqa: E402
from fits import fit_runs  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SHIPPED = [RESULTS / "smollm2_runs.csv", RESULTS / "smollm2_runs_es_fr_ja_zh.csv"]
METRICS = ("bpb", "loss", "chrf")
SEEDS = (1, 2)  # the extra seeds at the middle size


def measurement_configs(out: Path):
    """The default preset with chrF recorded (fit.metric chrf makes proxy runs translate), and the same
    recipe at the middle size with more seeds. Nothing else differs, so loss and bpb are the default's."""
    body = load_config(preset="demo").model_dump(mode="json")
    body["fit"]["metric"] = "chrf"
    grid = {**body, "output_dir": str(out / "grid"), "experiment": "metric-choice-grid"}
    trained = sorted(s for s in body["sweep"]["sizes"] if s > 0)
    seeds = {**body, "output_dir": str(out / "seeds"), "experiment": "metric-choice-seeds",
             "sweep": {**body["sweep"], "sizes": [trained[len(trained) // 2]], "seeds": list(SEEDS)}}
    return config_from_dict(grid), config_from_dict(seeds)


def measure(out: Path) -> pd.DataFrame:
    from planner.sweep import run_sweep

    frames = []
    for cfg in measurement_configs(out):
        report = run_sweep(cfg, progress=True)
        if not report.complete:
            raise SystemExit(f"the sweep in {cfg.out} did not finish; run again to resume it")
        frames.append(pd.read_csv(cfg.out / "runs.csv"))
    return pd.concat(frames, ignore_index=True)


def seed_noise(runs: pd.DataFrame, metric: str) -> float:
    """Pooled standard deviation over seeds at the sizes with several seeds (per language and size)."""
    groups = [g[metric].to_numpy(float) for _, g in runs.groupby(["language", "n_pairs"]) if len(g) > 1]
    if not groups:
        return float("nan")
    ss = sum(((g - g.mean()) ** 2).sum() for g in groups)
    return float(np.sqrt(ss / sum(len(g) - 1 for g in groups)))


def leave_largest_out(runs: pd.DataFrame, metric: str, draws: int = 400) -> pd.DataFrame:
    """Per language: the default fit of every run below the largest size, against the largest size's mean."""
    largest = runs.groupby("language")["n_pairs"].transform("max")
    fitset = fit_runs(runs[runs["n_pairs"] < largest], metric, bootstrap=draws, seed=0)
    rows = []
    for lang, g in runs.groupby("language", sort=False):
        x = g["n_pairs"].max()
        held = g[g["n_pairs"] == x][metric].mean()
        fit = fitset.languages.get(lang)
        pred = float(fit.predict(x)) if fit else np.nan
        lo, hi = (float(v) for v in fit.predict_interval(x, 0.9)) if fit else (np.nan, np.nan)
        smallest = g[g["n_pairs"] == g.loc[g["n_pairs"] > 0, "n_pairs"].min()][metric].mean()
        rows.append({"language": lang, "size": int(x), "achieved": held, "predicted": pred, "lo": lo, "hi": hi,
                     "error": pred - held, "gain": held - smallest, "covered": bool(lo <= held <= hi)})
    return pd.DataFrame(rows)


def chrf_through_bpb(runs: pd.DataFrame, draws: int = 400) -> pd.DataFrame:
    """chrF at the largest size predicted from the bits-per-byte law: the bpb fit's prediction there, mapped
    by each language's chrF = C·exp(−k·bpb), fitted (log-linear least squares) on the runs below it."""
    pred_bpb = leave_largest_out(runs, "bpb", draws).set_index("language")["predicted"]
    rows = []
    for lang, g in runs.groupby("language", sort=False):
        small = g[g["n_pairs"] < g["n_pairs"].max()]
        ok = small["chrf"] > 0
        slope, intercept = np.polyfit(small.loc[ok, "bpb"], np.log(small.loc[ok, "chrf"]), 1)
        x = g["n_pairs"].max()
        held = g[g["n_pairs"] == x]["chrf"].mean()
        rows.append({"language": lang, "achieved": held, "predicted": float(np.exp(intercept + slope * pred_bpb[lang]))})
    out = pd.DataFrame(rows)
    out["error"] = out["predicted"] - out["achieved"]
    return out


def metric_table(runs: pd.DataFrame, metrics=METRICS) -> pd.DataFrame:
    rows = []
    for m in metrics:
        loo = leave_largest_out(runs, m)
        sigma = seed_noise(runs, m)
        gains = loo["gain"].abs()
        rows.append({
            "metric": m,
            "mean |error|": loo["error"].abs().mean(),
            "|error| / seed σ": loo["error"].abs().mean() / sigma,
            "|error| / gain": (loo["error"].abs() / gains).mean(),
            "90% covered": f"{int(loo['covered'].sum())}/{len(loo)}",
            "seed σ": sigma,
            "gain spread / seed σ": loo["gain"].std(ddof=1) / sigma,
            "mean gain / seed σ": gains.mean() / sigma,
        })
    return pd.DataFrame(rows)


def shipped_table() -> pd.DataFrame:
    runs = pd.concat([pd.read_csv(p) for p in SHIPPED if p.is_file()], ignore_index=True)
    rows = []
    for m in ("loss", "chrf"):
        loo = leave_largest_out(runs, m)
        rows.append({"metric": m, "languages": len(loo), "mean |error|": loo["error"].abs().mean(),
                     "|error| / gain": (loo["error"].abs() / loo["gain"].abs()).mean(),
                     "|error| / achieved": (loo["error"].abs() / loo["achieved"].abs()).mean(),
                     "90% covered": f"{int(loo['covered'].sum())}/{len(loo)}"})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for _, r in table.iterrows()]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, help="a runs table with bpb, loss and chrf (skip the training)")
    ap.add_argument("--work", type=Path, default=ROOT / "outputs" / "metric_choice", help="where the sweeps run")
    ap.add_argument("--out", type=Path, default=RESULTS / "metric_choice.md")
    args = ap.parse_args(argv)
    if args.runs is None:
        runs = measure(args.work)
        runs_path = RESULTS / "metric_choice_ledger.csv"
        runs.drop(columns=[c for c in ("run_dir", "trial") if c in runs], errors="ignore").to_csv(runs_path, index=False)
        print(f"wrote {runs_path}")
    else:
        runs = pd.read_csv(args.runs)
    table = metric_table(runs)
    link = chrf_through_bpb(runs)
    direct = leave_largest_out(runs, "chrf")
    sections = [
        "## The default's recipe and languages (leave the largest size out)", markdown(table),
        "## chrF at the largest size: fitted directly vs through the bpb law",
        markdown(pd.DataFrame({"language": link["language"], "achieved": link["achieved"],
                               "chrF law": direct["predicted"], "bpb law + link": link["predicted"]})),
        f"mean |error|: chrF law {direct['error'].abs().mean():.3g}, bpb law + link {link['error'].abs().mean():.3g}",
        "## The shipped ledgers of the earlier recipe (0/50/150 → 400 pairs, two epochs)", markdown(shipped_table()),
    ]
    text = "\n\n".join(sections) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
