"""The closing sections: representation alignment by layer, the run ledger, and configuration/versions."""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from reports import figures as F
from reports.document import Cell, Preformatted, Section, Table
from reports.fit_sections import own_runs
from reports.style import fmt_num

if TYPE_CHECKING:
    from reports.build import ReportBuilder

REPORTED_PACKAGES = ["coit-planner", "numpy", "scipy", "pandas", "matplotlib", "torch", "transformers", "optuna", "sacrebleu"]
_ALIGNMENT_MEASURES = [
    ("cos_gap", "cos true − random"),
    ("retrieval_en_x", "retrieval en→x"),
    ("retrieval_x_en", "retrieval x→en"),
]


def alignment_section(b: ReportBuilder) -> Section | None:
    al = b.inputs.alignment
    if al is None or al.empty:
        return None
    s = Section("alignment", "Representation alignment by layer")
    s.blocks.append(b.save(F.alignment_figure(al, b.colors), "alignment", "Cross-lingual alignment",
                           "Per layer: how much more similar a sentence is to its translation than to a random "
                           "sentence (cosine of pooled hidden states), and top-1 translation retrieval "
                           "accuracy, by training stage (line style) and language (colour)."))
    s.blocks.append(alignment_table(al))
    return s


def alignment_table(al: pd.DataFrame) -> Table:
    """One row per layer; per stage, the mean over languages of each measure."""
    data = al.assign(cos_gap=al["cos_true"] - al["cos_random"])
    measures = [(c, label) for c, label in _ALIGNMENT_MEASURES if c in data and data[c].notna().any()]
    means = data.groupby(["layer", "stage"], sort=False)[[c for c, _ in measures]].mean()
    stages = list(dict.fromkeys(al["stage"]))
    columns = ["layer"] + [f"{label} ({stage})" for _, label in measures for stage in stages]
    rows = []
    for layer in sorted(data["layer"].unique()):
        cells = [Cell(fmt_num(layer))]
        for col, _ in measures:
            cells += [Cell(fmt_num(means[col].get((layer, stage), np.nan), 3)) for stage in stages]
        rows.append(cells)
    caption = f"Means over {al['language'].nunique()} languages, per layer and stage."
    return Table(columns, rows, caption, frozenset(range(len(columns))), id="alignment")


def runs_section(b: ReportBuilder) -> Section | None:
    runs = b.inputs.runs
    if runs is None:
        return None
    s = Section("runs", "Run ledger")
    columns = ["language", "runs", "finished", "failed / other", "sizes (pairs)", "seeds", "train time",
               f"{b.metric_label} at largest size"]
    rows = [_ledger_row(b, lang, sub) for lang, sub in runs.groupby("language", sort=True)]
    mixtures = _mixture_row(runs[~own_runs(runs)])
    if mixtures:
        rows.append(mixtures)
    statuses = runs["status"].astype(str).value_counts().to_dict() if "status" in runs else {}
    caption = "Proxy runs from runs.csv" + (" (size 0: a zero-shot evaluation)" if (runs["n_pairs"] == 0).any() else "")
    mixed = int((~own_runs(runs)).sum())
    if mixed:
        caption += (f"; {mixed} rows come from mixture proxy runs (counted, but not sizes of the language's own "
                    "curve; their train time is in the last row, once per run)")
    caption += "." + (" Status counts: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + "."
                      if statuses else "")
    s.blocks.append(Table(columns, rows, caption, frozenset({1, 2, 3, 5, 6, 7}), id="runs"))
    return s


def _ledger_row(b: ReportBuilder, lang: str, sub: pd.DataFrame) -> list[Cell]:
    ok = sub[sub["ok"]]
    own = ok[own_runs(ok)]
    sizes = sorted(own["n_pairs"].dropna().unique())
    metric_text = ""
    if b.metric in own and len(sizes):
        top = pd.to_numeric(own.loc[own["n_pairs"] == sizes[-1], b.metric], errors="coerce").dropna()
        if len(top):
            metric_text = fmt_num(top.mean(), 4) + (f" ± {fmt_num(top.std(ddof=1), 2)}" if len(top) > 1 else "")
    # A mixture run trained every language at once: its time is counted once, in the mixture row.
    seconds = sub.loc[own_runs(sub), "train_seconds"].sum() if "train_seconds" in sub else np.nan
    return [
        Cell(lang, b.warnings_for(lang) if lang in b.skipped else ()),
        Cell(str(len(sub))), Cell(str(len(ok))), Cell(str(len(sub) - len(ok))),
        Cell(", ".join(fmt_num(v) for v in sizes)),
        Cell(str(ok["seed"].nunique()) if "seed" in ok else ""),
        Cell(_duration(seconds)), Cell(metric_text),
    ]


def _mixture_row(mixed: pd.DataFrame) -> list[Cell] | None:
    """One row for the mixture proxy runs: each run once (its rows, one per language, share a run)."""
    if mixed.empty:
        return None
    key = "run_dir" if "run_dir" in mixed and mixed["run_dir"].notna().all() else "mixture"
    first = mixed.drop_duplicates(subset=[key] + (["seed"] if key == "mixture" and "seed" in mixed else []))
    ok = first[first["ok"]]
    seconds = first["train_seconds"].sum() if "train_seconds" in first else np.nan
    return [
        Cell("mixture runs"), Cell(str(len(first))), Cell(str(len(ok))), Cell(str(len(first) - len(ok))),
        Cell(", ".join(sorted(first["mixture"].astype(str).unique()))),
        Cell(str(ok["seed"].nunique()) if "seed" in ok else ""), Cell(_duration(seconds)), Cell(""),
    ]


def environment_section(b: ReportBuilder) -> Section:
    s = Section("environment", "Configuration and versions")
    cfg = b.inputs.config
    producer = (cfg or {}).get("planner_version")
    rows = [[Cell("planner, which produced these outputs"), Cell(str(producer) if producer else "unknown")]]
    for pkg in REPORTED_PACKAGES:
        try:
            rows.append([Cell(pkg), Cell(importlib.metadata.version(pkg))])
        except importlib.metadata.PackageNotFoundError:
            continue
    s.blocks.append(Table(["package", "version"], rows, "The planner version that wrote the outputs (from "
                          "resolved_config.yaml), then the packages that rendered this report.", id="versions"))
    if cfg:
        s.blocks.append(Preformatted(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True),
                                     "Resolved configuration (resolved_config.yaml)"))
    return s


def _duration(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
