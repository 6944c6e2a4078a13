"""`planner allocate`: allocate a translation-data budget across languages."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import UserError
from core.units import UNITS
from planner.commands import add_config_option, config_from_args

DESCRIPTION = """\
Allocate a budget of translation tokens, pairs or money across the languages of a fits file.

The exact solver equalises the marginal gain per unit of budget across languages (printed as λ with each
language's marginal gain); `maxmin` raises the worst language as far as the budget allows; `target` finds
the cheapest allocation reaching per-language scores. Every plan is compared with the standard baselines
at the same budget (uniform, proportional, temperature sampling, UniMax), and each language gets an
allocation and a prediction interval from the bootstrap fits.

Pairs are whole numbers (rounded by largest remainder without exceeding the budget or a cap). The budget's
unit (--unit) prices each pair: pairs: 1; tokens: its tokens per pair (limits table, else measured in the
runs), where tokens are the pair's English + target text in the model's tokenizer; money: its language's
price_per_pair (limits table; required for every language), labelled with --currency.

Planning a purchase: max_pairs may exceed the pairs you hold (held_pairs, default max_pairs); the plan's
pairs beyond held_pairs are marked to_buy in ALLOCATION_CSV, with their price when price_per_pair is given.

Writes ALLOCATION_CSV (language, pairs, tokens, share, predicted, predicted_low, predicted_high, ...) and
a summary JSON beside it (ALLOCATION_summary.json).

Every option defaults to the config's budget section (the demo preset's without --config). The per-language
settings of budget.languages (caps, floors, weights, prices, targets) and the training pools the data stage
recorded (OUTPUT_DIR/data_stats.csv) are used only with an explicit --config or --preset: a preset's targets
are in its own metric and languages, not a fits file's from elsewhere."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "allocate",
        help="allocate a translation-data budget across languages",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("fits_json", metavar="FITS_JSON", nargs="?", default=None,
                   help="fits file written by `planner fit` (default: OUTPUT_DIR/fits.json)")
    add_config_option(p)
    p.add_argument("--budget", type=float, default=None, help="total budget, in --unit (default: budget.total)")
    p.add_argument("--unit", choices=list(UNITS), default=None,
                   help="the budget's unit (default: budget.unit). tokens: a pair costs its tokens, English + target "
                   "text in the model's tokenizer; pairs: every pair costs 1; money: a pair costs its language's "
                   "price_per_pair (--limits or budget.languages)")
    p.add_argument("--currency", default=None, help="label of money amounts (default: budget.currency)")
    p.add_argument(
        "--limits",
        metavar="LIMITS_CSV",
        default=None,
        help="per-language limits: column `language` and any of min_pairs, max_pairs (pairs held or buyable), "
        "tokens_per_pair, weight, price_per_pair (money per pair), held_pairs (pairs you hold; default max_pairs; "
        "beyond them the plan's pairs are to buy)",
    )
    p.add_argument("--max-epochs", type=float, default=None,
                   help="cap each language at K × max_pairs (default: budget.max_epochs)")
    p.add_argument("--objective", choices=["sum", "maxmin", "target"], default=None, help="default: budget.objective")
    p.add_argument("--targets", metavar="TARGETS_CSV", default=None, help="columns language,target (for --objective target)")
    p.add_argument(
        "--risk",
        choices=["mean", "expected"],
        default=None,
        help="maximise the objective averaged over the fits' draws, i.e. decide under the posterior (expected), "
        "or plan on the point fits (mean) (default: budget.risk)",
    )
    p.add_argument("--solver", choices=["exact", "optuna"], default=None, help="default: budget.solver")
    p.add_argument(
        "--objective-fn",
        metavar="SPEC",
        default=None,
        help="your own objective for --solver optuna: MODULE:FUNCTION, path/to/file.py:FUNCTION, or an entry "
        "point in the `planner.objectives` group; called as f(pairs: dict, problem) -> float to maximise",
    )
    p.add_argument("--trials", type=int, default=300, help="optuna trials (default 300)")
    p.add_argument("--interval", type=float, default=0.9, help="central interval level (default 0.9)")
    p.add_argument("--smallest-run-floor", choices=["auto", "always", "never"], default=None,
                   help="give no language less than its smallest run, where its curve was measured: always, "
                   "never, or auto: under maxmin and --objective-fn, not under sum (default: budget.smallest_run_floor)")
    p.add_argument("--target-confidence", type=float, default=None, metavar="Q",
                   help="--objective target: the share of the fits' draws that must reach each target, e.g. 0.5 "
                        "(the median) or 0.9 (a safer, dearer plan) (default: budget.target_confidence)")
    p.add_argument("--seed", type=int, default=None, help="seed of the optuna search (default: the config's seed)")
    p.add_argument("--out", metavar="ALLOCATION_CSV", default=None,
                   help="where to write the plan (default: allocation.csv beside FITS_JSON)")
    p.set_defaults(func=run)


def run(args) -> int:
    # Imported here so `planner --help` and the other verbs do not pay for scipy or pandas.
    from core.files import check_output_file
    from core.plan_files import ALLOCATION_CSV, FITS_JSON
    from fits import load_fits
    from planner.allocation import allocate, format_result, read_limits, read_targets, summary_path, write_allocation

    cfg = config_from_args(args)
    fits_json = Path(args.fits_json or Path(cfg.output_dir) / FITS_JSON)
    out = Path(args.out or fits_json.with_name(ALLOCATION_CSV))  # beside its input
    inputs = [f for f in (fits_json, args.limits, args.targets) if f]
    check_output_file(out, "The allocation file (--out)", inputs)
    check_output_file(summary_path(out), "The allocation summary beside --out", inputs)
    settings = config_settings(cfg, explicit=args.config is not None)
    flags = dict(budget=args.budget, unit=args.unit, max_epochs=args.max_epochs, risk=args.risk, solver=args.solver,
                 seed=args.seed, smallest_run_floor=args.smallest_run_floor,
                 target_confidence=args.target_confidence, currency=args.currency)
    settings |= {key: value for key, value in flags.items() if value is not None}
    if args.limits:
        settings["limits"] = read_limits(args.limits)
        settings.pop("price_key")  # a missing price is then the limits table's column
    if args.targets:
        settings["targets"] = read_targets(args.targets)
    objective = args.objective or cfg.budget.objective
    if objective == "target" and not settings["targets"]:
        raise UserError("--objective target needs the targets.",
                        "Pass --targets TARGETS_CSV with columns language,target, or set budget.languages.<code>.target "
                        "in the --config.")
    fitset = load_fits(fits_json)
    plan = allocate(fitset, objective=objective, objective_fn=args.objective_fn, trials=args.trials,
                    interval=args.interval, **settings)
    print(format_result(plan))
    csv_path, summary = write_allocation(plan, out)
    print(f"\nwrote {csv_path} and {summary}")
    return 0


def config_settings(cfg, explicit: bool) -> dict:
    """The config's allocation settings. Its per-language ones (limits, targets) and the pools the data stage
    recorded only from a config the user named: the demo preset's belong to the demo's languages and metric."""
    import pandas as pd

    from planner.budget import allocation_settings

    if not explicit:
        return allocation_settings(cfg, None) | {"limits": None, "targets": None}
    pools_csv = Path(cfg.output_dir) / "data_stats.csv"
    pools = (pd.read_csv(pools_csv, index_col="language")["train"].astype(int).to_dict()
             if pools_csv.is_file() else None)
    return allocation_settings(cfg, pools)
