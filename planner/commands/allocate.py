"""`planner allocate`: allocate a translation-data budget across languages."""

from __future__ import annotations

import argparse

from core.errors import UserError
from core.units import DEFAULT_CURRENCY, UNITS

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
a summary JSON beside it (ALLOCATION_summary.json)."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "allocate",
        help="allocate a translation-data budget across languages",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("fits_json", metavar="FITS_JSON", help="fits file written by `planner fit`")
    p.add_argument("--budget", type=float, required=True, help="total budget, in --unit")
    p.add_argument("--unit", choices=list(UNITS), default="tokens",
                   help="the budget's unit (default tokens: a pair costs its tokens, English + target text in the "
                   "model's tokenizer; pairs: every pair costs 1; money: a pair costs its language's price_per_pair "
                   "from --limits)")
    p.add_argument("--currency", default=DEFAULT_CURRENCY,
                   help=f"label of money amounts (--unit money, price_per_pair; default {DEFAULT_CURRENCY})")
    p.add_argument(
        "--limits",
        metavar="LIMITS_CSV",
        default=None,
        help="per-language limits: column `language` and any of min_pairs, max_pairs (pairs held or buyable), "
        "tokens_per_pair, weight, price_per_pair (money per pair), held_pairs (pairs you hold; default max_pairs; "
        "beyond them the plan's pairs are to buy)",
    )
    p.add_argument("--max-epochs", type=float, default=1.0, help="cap each language at K × max_pairs (default 1)")
    p.add_argument("--objective", choices=["sum", "maxmin", "target"], default="sum", help="default: sum")
    p.add_argument("--targets", metavar="TARGETS_CSV", default=None, help="columns language,target (for --objective target)")
    p.add_argument(
        "--risk",
        choices=["mean", "expected"],
        default="expected",
        help="maximise the objective averaged over the fits' draws, i.e. decide under the posterior (expected, "
        "the default), or plan on the point fits (mean)",
    )
    p.add_argument("--solver", choices=["exact", "optuna"], default="exact", help="default: exact")
    p.add_argument(
        "--objective-fn",
        metavar="SPEC",
        default=None,
        help="your own objective for --solver optuna: MODULE:FUNCTION, path/to/file.py:FUNCTION, or an entry "
        "point in the `planner.objectives` group; called as f(pairs: dict, problem) -> float to maximise",
    )
    p.add_argument("--trials", type=int, default=300, help="optuna trials (default 300)")
    p.add_argument("--interval", type=float, default=0.9, help="central interval level (default 0.9)")
    p.add_argument("--smallest-run-floor", choices=["auto", "always", "never"], default="auto",
                   help="give no language less than its smallest run, where its curve was measured: always, "
                   "never, or auto (default: under maxmin and --objective-fn, not under sum)")
    p.add_argument("--target-confidence", type=float, default=0.5, metavar="Q",
                   help="--objective target: the share of the fits' draws that must reach each target "
                        "(default 0.5, the median; e.g. 0.9 for a safer, dearer plan)")
    p.add_argument("--seed", type=int, default=0, help="seed of the optuna search (default 0)")
    p.add_argument("--out", metavar="ALLOCATION_CSV", required=True)
    p.set_defaults(func=run)


def run(args) -> int:
    from core.files import check_output_file
    from fits import load_fits
    from planner.allocation import allocate, format_result, read_limits, read_targets, summary_path, write_allocation

    inputs = [f for f in (args.fits_json, args.limits, args.targets) if f]
    check_output_file(args.out, "The allocation file (--out)", inputs)
    check_output_file(summary_path(args.out), "The allocation summary beside --out", inputs)
    if args.objective == "target" and not args.targets:
        raise UserError("--objective target needs the targets.", "Pass --targets TARGETS_CSV with columns language,target.")
    fitset = load_fits(args.fits_json)
    plan = allocate(
        fitset,
        budget=args.budget,
        unit=args.unit,
        limits=read_limits(args.limits) if args.limits else None,
        max_epochs=args.max_epochs,
        objective=args.objective,
        targets=read_targets(args.targets) if args.targets else None,
        risk=args.risk,
        solver=args.solver,
        seed=args.seed,
        objective_fn=args.objective_fn,
        trials=args.trials,
        interval=args.interval,
        smallest_run_floor=args.smallest_run_floor,
        target_confidence=args.target_confidence,
        currency=args.currency,
    )
    print(format_result(plan))
    csv_path, summary = write_allocation(plan, args.out)
    print(f"\nwrote {csv_path} and {summary}")
    return 0
