"""`planner data stats`: load every configured language, print the per-language table, check capacity.

Capacity is checked before any training so that a language too small for the experiment fails in
seconds, with every short language named, instead of hours into a sweep.
"""

from __future__ import annotations

import math

from tqdm import tqdm

from planner.commands import add_config_option
from core.config import PlannerConfig, load_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data",
        help="inspect the parallel data",
        description="Load the parallel data of every configured language, print per-language statistics "
        "(pairs, training pool, test split, mean lengths, dropped pairs by reason) and check that each "
        "pool is large enough for the sweep sizes and the budget.",
    )
    add_config_option(p)
    p.add_argument("action", choices=["stats"], nargs="?", default="stats")
    p.set_defaults(func=run)


def pair_needs(cfg: PlannerConfig) -> dict[str, int]:
    """Pool sizes the budget section requires per language (checked beside the largest sweep size).

    A `min_pairs` floor may be met by repeating the pool up to `budget.max_epochs` times, so it needs
    ceil(min_pairs / max_epochs) distinct pairs; a `max_pairs` cap claims that many pairs exist.
    """
    needs = {}
    for code, limits in cfg.budget.languages.items():
        floor = math.ceil(limits.min_pairs / cfg.budget.max_epochs) if limits.min_pairs else 0
        needs[code] = max(floor, limits.max_pairs or 0)
    return needs


def _dropped_summary(row, reasons: list[tuple[str, str]]) -> str:
    parts = [f"{reason} {row[column]:,}" for column, reason in reasons if row[column]]
    return f"{row['dropped']:,}" + (f" ({', '.join(parts)})" if parts else "")


# (corpus_stats column, printed header)
_SHOWN = [
    ("language", "language"),
    ("name", "name"),
    ("pairs", "pairs"),
    ("train", "train"),
    ("test", "test"),
    ("en_chars", "en chars"),
    ("x_chars", "X chars"),
    ("en_words", "en words"),
    ("x_words", "X words"),
    ("dropped", "dropped"),
]


def format_stats(stats) -> str:
    """The `corpus_stats` frame as a fixed-width table, drops summarised in one column."""
    from trainers.data import DROP_REASONS, dropped_column

    reasons = [(dropped_column(r), r) for r in DROP_REASONS]
    shown = stats.assign(dropped=[_dropped_summary(row, reasons) for _, row in stats.iterrows()])
    return shown.reset_index().to_string(
        index=False,
        columns=[column for column, _ in _SHOWN],
        header=[header for _, header in _SHOWN],
        float_format=lambda v: f"{v:.1f}",
        formatters={c: "{:,}".format for c in ("pairs", "train", "test")},
    )


def run(args) -> int:
    from trainers.data import check_capacity, corpus_stats, load_language
    from trainers.prompts import check_general_tasks

    cfg = load_config(args.config)
    # Drawn on a terminal only, and only when loading takes more than a second (a large source).
    progress = tqdm(cfg.languages, desc="loading", unit="language", delay=1.0, leave=False, disable=None)
    datasets = {}
    for code in progress:
        progress.set_postfix_str(code)
        datasets[code] = load_language(cfg.data, code)

    source = "embedded demo corpus (LibreOffice UI translations)" if cfg.data.source == "demo" else cfg.data.source
    print(f"source: {source}; test split {cfg.data.test_size} pairs per language, split_seed {cfg.data.split_seed}")
    print(format_stats(corpus_stats(datasets)))
    print("(means over test + train pairs; words are whitespace-separated, so Chinese/Japanese count phrases)")

    largest = cfg.sweep.largest_pairs
    check_capacity(datasets, largest, pair_needs(cfg))
    check_general_tasks(cfg.data, cfg.languages)
    print(f"capacity ok: every training pool holds the largest sweep size ({largest:,} pairs) and any budget floor")
    supply = sum(len(d.train) for d in datasets.values()) * cfg.budget.max_epochs
    if cfg.budget.unit == "pairs" and cfg.budget.total > supply:
        print(
            f"note: budget.total ({cfg.budget.total:,.0f} pairs) exceeds what the pools supply at "
            f"budget.max_epochs {cfg.budget.max_epochs:g} ({supply:,.0f}); part of the budget cannot be spent."
        )
    return 0
