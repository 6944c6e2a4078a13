"""What leave-one-language-out mixture runs change: transfer fitted on uniform mixtures alone against
uniform plus leave-one-out, on a finished sweep's runs table.

For each design it runs the pipeline's own fit and allocate stages (`planner.pipeline`) in a scratch
directory and prints, per language: τ (point, and the 90% interval of its posterior draws), the mixture
rows it rests on, the RMS error of those rows from own data only and with τ, the least own data measured
(`own_min`, the transfer-aware plan's floor), the check of its leave-one-out row (scored with none of its
own data: measured − predicted by the law), and the transfer-aware plan's pairs and prediction. The
per-language curves are the same in both designs (mixture rows never enter them), so every difference is
the mixture design's.

Usage: python benchmarks/transfer_design.py --config benchmarks/demo_adaptive.yaml
       (after `planner run` or `planner sweep` with that config; writes benchmarks/results/transfer_design.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def design_rows(runs: pd.DataFrame, design: str) -> pd.DataFrame:
    """The runs table of one mixture design: 'uniform' keeps only the uniform mixture runs' rows."""
    if design == "uniform + leave-one-out" or "mixture" not in runs:
        return runs
    mixture = runs["mixture"].fillna("").astype(str)
    return runs[~mixture.str.contains("-without-")]


def fit_design(cfg, runs: pd.DataFrame, scratch: Path) -> tuple[dict, dict]:
    """fits.json's transfer block and allocation_summary.json's transfer plan for one runs table."""
    from planner.pipeline import allocate_stage, fit_stage

    scratch.mkdir(parents=True, exist_ok=True)
    runs.to_csv(scratch / "runs.csv", index=False)
    shutil.copy(cfg.out / "data_stats.csv", scratch / "data_stats.csv")
    fit_stage(cfg, scratch / "runs.csv", scratch / "fits.json")
    allocate_stage(cfg, scratch / "fits.json", scratch / "data_stats.csv", scratch / "allocation.csv")
    fits = json.loads((scratch / "fits.json").read_text())
    summary = json.loads((scratch / "allocation_summary.json").read_text())
    return fits.get("transfer") or {}, summary.get("transfer") or {}


def table(cfg, designs: dict[str, tuple[dict, dict]], counts: dict[str, int]) -> str:
    metric = cfg.fit.metric
    lines = [f"Transfer by mixture design ({cfg.experiment}: {', '.join(cfg.languages)}; budget "
             f"{cfg.budget.total:,.0f} {cfg.budget.unit}; {os.cpu_count()} cores). τ: one unit of the other "
             "languages' data in units of the language's own; interval: 5–95% of its posterior draws.", "",
             f"| design | mixture runs | language | τ | τ 90% | rows | RMS own only → with τ ({metric}) | own_min "
             "| without own data: measured − predicted | transfer-aware plan: pairs | predicted |",
             "|---|---:|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for design, (transfer, plan) in designs.items():
        for lang in cfg.languages:
            t = transfer.get(lang)
            if t is None:
                continue
            draws = np.asarray(t.get("draws") or [], dtype=float)
            interval = f"[{np.quantile(draws, 0.05):.2f}, {np.quantile(draws, 0.95):.2f}]" if draws.size else "—"
            pairs = plan.get("pairs", {}).get(lang)
            predicted = plan.get("predicted", {}).get(lang)
            lines.append(
                f"| {design} | {counts[design]} | {lang} | {t['tau']:.3f} | {interval} | {t['rows']} | "
                f"{t['rms_before']:.2f} → {t['rms_after']:.2f} | {t.get('own_min', 0):.0f} | "
                f"{'—' if t.get('alone_gap') is None else format(t['alone_gap'], '+.2f')} | "
                f"{'—' if pairs is None else f'{pairs:.0f}'} | {'—' if predicted is None else f'{predicted:.2f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from core.config import load_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "demo_adaptive.yaml")
    ap.add_argument("--out", type=Path, default=RESULTS / "transfer_design.md")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    runs = pd.read_csv(cfg.out / "runs.csv")
    if "mixture" not in runs or not runs["mixture"].notna().any():
        raise SystemExit(f"{cfg.out / 'runs.csv'} has no mixture rows: run the sweep with sweep.mixtures first")
    designs, counts = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for design in ("uniform", "uniform + leave-one-out"):
            rows = design_rows(runs, design)
            counts[design] = rows["mixture"].dropna().nunique()
            designs[design] = fit_design(cfg, rows, Path(tmp) / design.replace(" ", "_"))
    text = table(cfg, designs, counts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
