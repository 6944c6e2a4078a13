"""`planner fit`: fit per-language scaling laws to runs.csv and write fits.json."""

from __future__ import annotations

from pathlib import Path

from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fit",
        help="fit per-language scaling laws to runs.csv",
        description="Fit one scaling law per language to the runs in RUNS_CSV (every seed kept), backtest it on "
        "the largest size, bootstrap its uncertainty, and write FITS_JSON. Prints one line per language. Every "
        "option defaults to the config's `fit` section (the demo preset without --config).",
    )
    p.add_argument("runs_csv", metavar="RUNS_CSV", nargs="?", default=None,
                   help="one row per run: language, n_pairs and metric columns (default: OUTPUT_DIR/runs.csv)")
    add_config_option(p)
    p.add_argument("--metric", default=None, help="the metric column to fit, e.g. bpb, loss, chrf, bleu (default: fit.metric)")
    p.add_argument(
        "--pooling",
        choices=["population", "none"],
        default=None,
        help="population: one law for all languages with a prior learned from all of them and posterior draws; "
        "none: each language fitted alone with a bootstrap (default: fit.pooling)",
    )
    p.add_argument(
        "--law",
        choices=["auto", "power", "offset", "log", "shared"],
        default=None,
        help="law family; auto: the offset law when there are zero-shot (0-pair) runs, else power or log by "
        "backtest (jointly with pooling population, per language with none). offset needs population, shared "
        "none (default: fit.law)",
    )
    p.add_argument(
        "--x", choices=["pairs", "tokens"], default=None,
        help="the curves' x axis, not the budget's unit: n_pairs or n_tokens of runs.csv (default: fit.x)",
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
    p.add_argument("--bootstrap", type=int, default=None, metavar="N",
                   help="posterior draws or bootstrap refits, 0 for none (default: fit.bootstrap)")
    p.add_argument("--seed", type=int, default=None, help="seed of the draws (default: the config's seed)")
    p.add_argument("--level", type=float, default=0.9, help="interval level (default: 0.9)")
    p.add_argument("--out", metavar="FITS_JSON", default=None, help="where to write fits.json (default: beside RUNS_CSV)")
    p.set_defaults(func=run)


def run(args) -> int:
    # Imported here so `planner --help` and the other verbs do not pay for scipy (or pandas).
    from core.plan_files import FITS_JSON, RUNS_CSV
    from fits import fit_runs, read_runs_csv, save_fits
    from fits.summary import format_fit_table

    from core.errors import UserError
    from core.files import check_output_file

    cfg = config_from_args(args)
    fc = cfg.fit
    runs_csv = args.runs_csv or str(Path(cfg.output_dir) / RUNS_CSV)
    out = args.out or str(Path(runs_csv).with_name(FITS_JSON))  # beside its input
    check_output_file(out, "The fits file (--out)", inputs=[runs_csv])  # before the work
    runs = read_runs_csv(runs_csv)
    pooling = args.pooling or fc.pooling
    fitset = fit_runs(
        runs,
        args.metric or fc.metric,
        law=args.law or (fc.law if fc.law != "shared" or pooling == "none" else "auto"),
        x=args.x or fc.x,
        ceiling=args.ceiling if args.ceiling is not None else fc.ceiling,
        bootstrap=fc.bootstrap if args.bootstrap is None else args.bootstrap,
        seed=cfg.seed if args.seed is None else args.seed,
        higher_is_better=None if args.direction is None else args.direction == "higher",
        level=args.level,
        pooling=pooling,
    )
    if not fitset.languages:  # nothing usable: say why, and leave any existing fits.json alone
        why = "; ".join(f"{lang}: {reason}" for lang, reason in fitset.skipped.items()) or "no runs"
        raise UserError(
            f"No language of {runs_csv} could be fitted ({why}); {out} was not written.",
            "Each language needs runs at two or more distinct sizes with finite metric values.",
        )
    path = save_fits(fitset, out)
    print(format_fit_table(fitset))
    print(f"wrote {path}")
    return 0
