"""`planner data stats`: load every configured language, print the per-language table, check capacity.

Capacity is checked before any training so that a language too small for the experiment fails in
seconds, with every short language named, instead of hours into a sweep. Only the sweep needs data held:
its pilot data, the largest proxy run plus the test split. The budget's caps and floors
(`budget.languages.<code>.max_pairs`, `min_pairs`) may exceed the pool: the plan's pairs beyond it are
bought, and the table says how many could be and at what price.
"""

from __future__ import annotations

import math

from tqdm import tqdm

from core.config import PlannerConfig
from core.units import amount, number
from planner.budget import check_budget_languages, check_pilot_data, largest_run
from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data",
        help="inspect the parallel data",
        description="Load the parallel data of every configured language, print per-language statistics "
        "(pairs, training pool, test split, mean lengths, dropped pairs by reason), check that each "
        "pool holds the sweep's pilot data (its largest run; the test split is set aside first), and print "
        "per language the pilot need against the data held and, separately, the budget's cap, what of it "
        "lies beyond the pool (to buy) and its price.",
    )
    add_config_option(p)
    p.add_argument("action", choices=["stats"], nargs="?", default="stats")
    p.set_defaults(func=run)


def purchase_rows(cfg: PlannerConfig, datasets) -> list[dict]:
    """Per language: the pilot data its sweep needs against what it holds, and, separately, the plan's cap
    and what of it lies beyond the pool (to buy), with its price when one is given."""
    largest, _ = largest_run(cfg)
    rows = []
    for code, data in datasets.items():
        own = cfg.budget.languages.get(code)
        pool = len(data.train)
        cap = own.max_pairs if own and own.max_pairs is not None else pool
        cap_pairs = math.floor(cap * cfg.budget.max_epochs + 1e-9)
        price = own.price_per_pair if own else None
        beyond = max(cap - pool, 0)
        rows.append({"language": code, "held": pool + len(data.test), "pilot_need": largest + len(data.test),
                     "pool": pool, "cap": cap_pairs, "beyond_pool": beyond, "price": price,
                     "beyond_cost": None if price is None else beyond * price})
    return rows


def format_purchase(cfg: PlannerConfig, rows: list[dict]) -> str:
    largest, key = largest_run(cfg)
    cur = cfg.budget.currency
    lines = [f"pilot data: each language's sweep needs its largest run ({largest:,} pairs, {key}) + the test split,",
             "held now; the plan's cap (budget.languages.<code>.max_pairs, default the pool, × budget.max_epochs)",
             "may exceed the pool: what lies beyond it is bought"]
    header = ["language", "held (train+test)", "pilot need", "pool", "cap", "beyond pool"]
    priced = any(r["price"] is not None for r in rows)
    if priced:
        header += [f"price/pair ({cur})", f"beyond pool ({cur})"]
    table = []
    for r in rows:
        cells = [r["language"], f"{r['held']:,}", f"{r['pilot_need']:,}", f"{r['pool']:,}", f"{r['cap']:,}",
                 f"{r['beyond_pool']:,}"]
        if priced:
            cells += [number(r["price"], "money") if r["price"] is not None else "-",
                      number(r["beyond_cost"], "money") if r["beyond_cost"] is not None else "-"]
        table.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in table)) for i, h in enumerate(header)]
    for cells in [header, *table]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(lines)


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
    from trainers.data import corpus_stats, load_language
    from trainers.prompts import check_general_tasks

    cfg = config_from_args(args)
    check_budget_languages(cfg)  # a config mistake: refused before any data is read
    # Drawn on a terminal only, and only when loading takes more than a second (a large source).
    progress = tqdm(cfg.languages, desc="loading", unit="language", delay=1.0, leave=False, disable=None)
    datasets = {}
    for code in progress:
        progress.set_postfix_str(code)
        datasets[code] = load_language(cfg.data, code)

    source = "embedded demo corpus (LibreOffice UI translations)" if cfg.data.source == "demo" else cfg.data.source
    fixed = {code: data.test_origin for code, data in datasets.items() if data.test_origin}
    cut = [code for code in datasets if code not in fixed]
    test = "; ".join(
        ([f"test sets from data.test_source ({', '.join(f'{c}: {o}' for c, o in fixed.items())}), up to "
          f"{cfg.data.test_size} sentences each, every training pair sharing a side with one removed "
          "('overlaps test')"] if fixed else [])
        + ([f"test split of {', '.join(cut)} cut from the source: {cfg.data.test_size} pairs per language, "
            f"split_seed {cfg.data.split_seed}"] if cut else []))
    print(f"source: {source}; {test}")
    print(format_stats(corpus_stats(datasets)))
    print("(means over test + train pairs; words are whitespace-separated, so Chinese/Japanese count phrases)")

    largest, _ = largest_run(cfg)
    check_pilot_data(cfg, datasets)
    check_general_tasks(cfg.data, cfg.languages)
    rows = purchase_rows(cfg, datasets)
    print()
    print(format_purchase(cfg, rows))
    print(f"capacity ok: every training pool holds the largest sweep size ({largest:,} pairs)")
    print(f"budget: {amount(cfg.budget.total, cfg.budget.unit, cfg.budget.currency)}")
    supply = sum(r["cap"] for r in rows)
    if cfg.budget.unit == "pairs" and cfg.budget.total > supply:
        print(
            f"note: budget.total ({cfg.budget.total:,.0f} pairs) exceeds what the caps allow at "
            f"budget.max_epochs {cfg.budget.max_epochs:g} ({supply:,.0f}); part of the budget cannot be spent."
        )
    return 0
