"""`planner fit`: fit per-language scaling laws to runs.csv and write fits.json."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit per-language scaling laws to runs.csv",
        description="Fit one scaling law per language to the runs in RUNS_CSV (every seed kept), backtest it on "
        "the largest size, bootstrap its uncertainty, and write FITS_JSON. Prints one line per language.",
    )
    p.add_argument("runs_csv", metavar="RUNS_CSV", help="one row per run: language, n_pairs and metric columns")
    p.add_argument("--metric", required=True, help="the metric column to fit (e.g. chrf, bleu, loss)")
    p.add_argument(
        "--law",
        choices=["auto", "power", "log", "shared"],
        default="auto",
        help="law family; auto picks, per language, the lowest leave-largest-size-out error (default: auto)",
    )
    p.add_argument(
        "--x", choices=["pairs", "tokens"], default="pairs", help="data axis: n_pairs or n_tokens (default: pairs)"
    )
    p.add_argument(
        "--ceiling",
        type=_ceiling,
        default="auto",
        metavar="V|free",
        help="fix the power law's asymptote: a score's ceiling or a loss's floor; 'free' fits it "
        "(default: 100 for chrF/BLEU, as the pipeline does; fitted for other metrics)",
    )
    p.add_argument(
        "--direction",
        choices=["higher", "lower"],
        default=None,
        help="which way is better (default: from the metric name; unknown names count as higher)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap draws, 0 for none (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument("--level", type=float, default=0.9, help="interval level (default: 0.9)")
    p.add_argument("--out", metavar="FITS_JSON", required=True, help="where to write fits.json")
    p.set_defaults(func=run)


def _ceiling(text: str):
    if text in {"auto", "free"}:
        return text
    try:
        return float(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a number, 'free' or 'auto', got {text!r}") from None


def resolve_ceiling(value, metric: str) -> float | None:
    """'auto' → the metric's natural bound (same default as the config's fit.ceiling), 'free' → fitted."""
    from core.config import BOUNDED_SCORE_CEILINGS

    if value == "auto":
        return BOUNDED_SCORE_CEILINGS.get(metric.lower())
    return None if value == "free" else value


def run(args) -> int:
    # Imported here so `planner --help` and the other verbs do not pay for scipy.
    from fits import fit_runs, read_runs_csv, save_fits
    from fits.summary import format_fit_table

    runs = read_runs_csv(args.runs_csv)
    fitset = fit_runs(
        runs,
        args.metric,
        law=args.law,
        x=args.x,
        ceiling=resolve_ceiling(args.ceiling, args.metric),
        bootstrap=args.bootstrap,
        seed=args.seed,
        higher_is_better=None if args.direction is None else args.direction == "higher",
        level=args.level,
    )
    path = save_fits(fitset, args.out)
    print(format_fit_table(fitset))
    print(f"wrote {path}")
    return 0
