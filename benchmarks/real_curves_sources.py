"""Published data-scaling curves for benchmarks/real_curves.py: where each comes from and how it is read.

A *source* is one study's metric: several *series* (a language, a language pair × model, an
architecture), each measured at several training-data sizes by the study's authors. Only data whose
licence allows redistribution is shipped (under benchmarks/data/real_curves/, with PROVENANCE.md); the
others are read from a directory holding the raw file as the study's repository ships it (`--fetch-dir`,
see docs/results/real-curves.md for how to get each file). Nothing here fits anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import json

import numpy as np
import pandas as pd

SHIPPED = Path(__file__).resolve().parent / "data" / "real_curves"


@dataclass(frozen=True)
class Curve:
    """One series: y measured at data sizes x (sorted; one value per size in every source here)."""

    series: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Source:
    """One study's metric and where its raw file lives."""

    name: str
    study: str
    metric: str  # the metric's name as the product reads it (sets its bounds: BLEU's ceiling ≤ 100)
    higher_is_better: bool
    unit: str  # what x counts
    file: str  # the raw file's name (in SHIPPED when shipped, else in --fetch-dir)
    shipped: bool
    provenance: str  # repository, commit, path, licence
    read: Callable[[Path], list[Curve]]
    metric_max: float | None = None  # a score's maximum (the careful fit bounds its ceiling by it)

    def path(self, fetch_dir: Path | None) -> Path | None:
        if self.shipped:
            return SHIPPED / self.file
        return None if fetch_dir is None else Path(fetch_dir) / self.file


def _curves(df: pd.DataFrame) -> list[Curve]:
    """Columns series, x, y → one Curve per series (rows with a missing value dropped, x sorted)."""
    df = df.dropna(subset=["x", "y"])
    out = []
    for name, g in df.groupby("series", sort=True):
        g = g.sort_values("x")
        out.append(Curve(str(name), g["x"].to_numpy(float), g["y"].to_numpy(float)))
    return out


def read_revisiting_nmt(path: Path) -> list[Curve]:
    """Alabdulmohsin et al.'s benchmark table, NMT rows (Bansal et al. 2022): one series per architecture,
    x = training examples, y = log-perplexity. Its own train/test flag is ignored (one split rule for all)."""
    df = pd.read_csv(path)
    df = df[df["Domain"] == "NMT"]
    return _curves(pd.DataFrame({"series": df["Model"], "x": df["Seen Examples"], "y": df["Loss"]}))


def read_gordon(path: Path, column: str) -> list[Curve]:
    """Gordon et al.'s tab-separated summary (ducttape; '#' lines are its header comments): one series per
    language pair × model (layers, model width, feed-forward width), x = training-data bytes."""
    df = pd.read_csv(path, sep="\t", comment="#")
    df = df[pd.to_numeric(df[column], errors="coerce").notna()]
    series = (df["Lang"].astype(str) + " L" + df["Layers"].astype(str) + " d" + df["ModelSize"].astype(str)
              + " ff" + df["FeedForward"].astype(str))
    return _curves(pd.DataFrame({"series": series, "x": pd.to_numeric(df["data_bytes"]),
                                 "y": pd.to_numeric(df[column])}))


GOLDFISH_SIZES = (5, 10, 100, 1000)  # MB of (byte-premium scaled) text per model


def read_goldfish(path: Path) -> list[Curve]:
    """Goldfish FLORES log-perplexities: one series per language whose own monolingual models were
    evaluated (flores_lang == goldfish_used; other rows score a related language's model), with all
    four sizes. Sizes 5 and 10 MB train the small architecture, 100 and 1000 MB the base one: the curve
    is the recipe's, as a planner would face it."""
    df = pd.read_csv(path, sep="\t")
    df = df[df["flores_lang"] == df["goldfish_used"]]
    rows = []
    for _, r in df.iterrows():
        values = [pd.to_numeric(r.get(f"goldfish_{mb}mb"), errors="coerce") for mb in GOLDFISH_SIZES]
        if all(np.isfinite(v) for v in values):
            rows += [(r["flores_lang"], float(mb), float(v)) for mb, v in zip(GOLDFISH_SIZES, values)]
    return _curves(pd.DataFrame(rows, columns=["series", "x", "y"]))


GADRE_EVAL = "c4_val"  # the paper's main next-token loss evaluation (C4 validation shards)


def read_gadre(path: Path) -> list[Curve]:
    """Gadre et al.'s runs (the shipped extract, `extract_gadre`): one series per training set × model
    configuration, x = training tokens, y = the C4 validation loss. Each token budget is its own run (its own
    learning-rate schedule), so a series is a data-scaling curve of one model, not one run's learning curve.
    The 1.4B and 6.9B models (one or two budgets each) leave fewer than three sizes and drop out in the split."""
    df = pd.read_csv(path)
    df = df[df["val_data"].str.contains(GADRE_EVAL, regex=False)]
    series = df["dataset"] + " " + df["model"] + " (" + (df["params"] / 1e6).round().astype(int).astype(str) + "M)"
    return _curves(pd.DataFrame({"series": series, "x": df["tokens"], "y": df["loss"]}))


def extract_gadre(models_dir: Path) -> pd.DataFrame:
    """The shipped extract from the repository's exp_data/models/*.json: one row per run × loss evaluation,
    values copied unchanged (the evaluation's data path shortened to its directory)."""
    rows = []
    for f in sorted(Path(models_dir).glob("*.json")):
        run = json.loads(f.read_text(encoding="utf-8"))
        hp = run["hyperparameters"]
        for r in run["results"]:
            rows.append({"run": run["name"], "dataset": run["dataset_name"], "model": r["model"],
                         "params": hp["params"], "tokens": hp["tokens"],
                         "chinchilla_multiplier": hp["chinchilla_multiplier"],
                         "val_data": "/".join(r["val_data"][0].split("/")[:-1]), "loss": r["loss"]})
    return pd.DataFrame(rows)


GORDON = ("Gordon, Duh & Kaplan 2021, 'Data and parameter scaling laws for neural machine translation': "
          "fetched from github.com/mitchellgordon95/mt-scaling at commit "
          "cb9600d7db86843ffec71c8f1d90e759b17cf9d8, summaries/data_scaling.0126.summary; "
          "no licence file in the repository, so not redistributed")

SOURCES: tuple[Source, ...] = (
    Source(
        name="bansal-nmt", study="Bansal et al. 2022, via Alabdulmohsin et al. 2022",
        metric="log_perplexity", higher_is_better=False, unit="training examples",
        file="revisiting_nmt.csv", shipped=True, read=read_revisiting_nmt,
        provenance="Alabdulmohsin, Neyshabur & Zhai 2022, 'Revisiting neural scaling laws in language and "
                   "vision' (NMT rows from Bansal et al. 2022, 'Data scaling laws in NMT'): fetched from "
                   "github.com/google-research/google-research at commit "
                   "9853680c781781bd8d3de20aa61c7373ce059913, revisiting_neural_scaling_laws/data/"
                   "benchmark.lang.csv (the 54 NMT rows); Apache-2.0, the repository's licence"),
    Source(
        name="gordon-bleu", study="Gordon et al. 2021", metric="bleu", higher_is_better=True,
        unit="training bytes", file="data_scaling.0126.summary", shipped=False, metric_max=100.0,
        read=lambda p: read_gordon(p, "bleu_dev"), provenance=GORDON),
    Source(
        name="gordon-xent", study="Gordon et al. 2021", metric="cross_entropy", higher_is_better=False,
        unit="training bytes", file="data_scaling.0126.summary", shipped=False,
        read=lambda p: read_gordon(p, "ent_dev"), provenance=GORDON),
    Source(
        name="goldfish", study="Chang et al. 2024, Goldfish", metric="flores_log_perplexity",
        higher_is_better=False, unit="MB of text", file="flores_logperplexities.tsv", shipped=False,
        read=read_goldfish,
        provenance="Chang, Arnett, Tu & Bergen 2024, 'Goldfish: monolingual language models for 350 "
                   "languages': fetched from github.com/tylerachang/goldfish at commit "
                   "f0e932209dcf12c7defe4916523dc78c9e29bf28, data/flores_logperplexities.tsv; no licence "
                   "file in the repository, so not redistributed"),
    Source(
        name="gadre-lm", study="Gadre et al. 2024, over-trained language models",
        metric="c4_loss", higher_is_better=False, unit="training tokens", file="gadre_scaling_runs.csv",
        shipped=True, read=read_gadre,
        provenance="Gadre et al. 2024, 'Language models scale reliably with over-training and on downstream "
                   "tasks': extracted from github.com/mlfoundations/scaling at commit "
                   "a003c4913793ac2ae7ef87b28ecb562955d026d5, exp_data/models/*.json (loss evaluations of "
                   "the 104 runs); MIT licence, the repository's"),
)
