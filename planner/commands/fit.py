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
        "--pooling",
        choices=["population", "none"],
        default="population",
        help="population: one law for all languages with a prior learned from all of them and posterior draws "
        "(default); none: each language fitted alone with a bootstrap",
    )
    p.add_argument(
        "--law",
        choices=["auto", "power", "offset", "log", "shared"],
        default="auto",
        help="law family; auto: the offset law when there are zero-shot (0-pair) runs, else power or log by "
        "backtest (jointly with pooling population, per language with none). offset needs population, shared none",
    )
    p.add_argument(
        "--x", choices=["pairs", "tokens"], default="pairs", help="data axis: n_pairs or n_tokens (default: pairs)"
    )
    p.add_argument(
        "--ceiling",
        type=float,
        default=None,
        metavar="V",
        help="pin the power law's asymptote (a score's ceiling or a loss's floor) with --pooling none; by default it is fitted",
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


def run(args) -> int:
    # Imported here so `planner --help` and the other verbs do not pay for scipy.
    from fits import fit_runs, read_runs_csv, save_fits
    from fits.summary import format_fit_table

    from core.errors import UserError
    from core.files import check_output_file

    check_output_file(args.out, "The fits file (--out)", inputs=[args.runs_csv])  # before the work
    runs = read_runs_csv(args.runs_csv)
    fitset = fit_runs(
        runs,
        args.metric,
        law=args.law,
        x=args.x,
        ceiling=args.ceiling,
        bootstrap=args.bootstrap,
        seed=args.seed,
        higher_is_better=None if args.direction is None else args.direction == "higher",
        level=args.level,
        pooling=args.pooling,
    )
    if not fitset.languages:  # nothing usable: say why, and leave any existing fits.json alone
        why = "; ".join(f"{lang}: {reason}" for lang, reason in fitset.skipped.items()) or "no runs"
        raise UserError(
            f"No language of {args.runs_csv} could be fitted ({why}); {args.out} was not written.",
            "Each language needs runs at two or more distinct sizes with finite metric values.",
        )
    path = save_fits(fitset, args.out)
    print(format_fit_table(fitset))
    print(f"wrote {path}")
    return 0
