"""`planner launch`: train the final multilingual (MuIT) run with an allocation, and baseline mixes."""

from __future__ import annotations

import shlex
import sys

from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "launch",
        help="train the final multilingual (MuIT) run with an allocation",
        description="Build the multilingual mixture exactly as allocated (the first x pairs of each language's "
        "training order; whole extra epochs only past the available pairs, within max_epochs), train one model "
        "with the sweep's trainer, evaluate every language on the sweep's test splits and write "
        "final/metrics.csv (predicted vs achieved) and final/objectives.csv in the config's output_dir.",
    )
    add_config_option(p)
    p.add_argument("--allocation", metavar="ALLOCATION_CSV", required=True, help="written by `planner allocate`")
    p.add_argument("--fits", metavar="FITS_JSON", default=None,
                   help="for baseline intervals (default: fits.json beside the allocation)")
    p.add_argument("--baselines", default=None,
                   help="comma-separated baseline mixtures to train too at the same budget and seed, e.g. "
                   "uniform,temperature-0.3,unimax (default: the config's final.baselines; 'none' for none)")
    p.add_argument("--launcher", choices=["local", "accelerate", "torchrun"], default=None,
                   help="local: in this process; accelerate/torchrun: the same command under that launcher "
                   "(default: final.launcher)")
    p.add_argument("--num-processes", type=int, default=None, help="processes for accelerate/torchrun")
    p.add_argument("--dry-run", action="store_true", help="print the launcher command instead of running it")
    p.set_defaults(func=run)


def parse_baselines(text: str | None, default: list[str]) -> list[str]:
    if text is None:
        return list(default)
    if text.strip().lower() in {"", "none"}:
        return []
    return [name.strip() for name in text.split(",") if name.strip()]


def run(args) -> int:
    from core.config import BASELINE_NAMES, RESOLVED_CONFIG_NAME, baseline_name_problems
    from core.errors import UserError
    from planner.launch import launcher_argv, run_final, run_under_launcher

    if args.num_processes is not None and args.num_processes < 1:
        raise UserError(f"--num-processes must be at least 1 (got {args.num_processes}).")
    named = parse_baselines(args.baselines, [])
    unknown, repeated = baseline_name_problems(named)
    if unknown:
        raise UserError(f"--baselines names unknown baselines {unknown}.",
                        f"Choose from {', '.join(BASELINE_NAMES)} (comma-separated), or 'none'.")
    if repeated:
        raise UserError(f"--baselines names {repeated} more than once.", "Name each baseline once.")
    cfg = config_from_args(args)
    final = cfg.final.model_copy(update={
        "baselines": parse_baselines(args.baselines, cfg.final.baselines),
        "launcher": args.launcher or cfg.final.launcher,
        "num_processes": args.num_processes or cfg.final.num_processes,
    })
    cfg = cfg.model_copy(update={"final": type(final).model_validate(final.model_dump())})
    if args.dry_run and cfg.final.launcher == "local":  # else it would train for real
        raise UserError("--dry-run prints the accelerate/torchrun command, and the launcher is local: there is "
                        "no command to print, and nothing would be a dry run.",
                        "Add --launcher accelerate or --launcher torchrun, or drop --dry-run.")
    if cfg.final.launcher != "local":
        if args.dry_run:
            print(shlex.join(launcher_argv(cfg, args.allocation, args.fits, cfg.out / "final" / RESOLVED_CONFIG_NAME)))
            return 0
        run_under_launcher(cfg, args.allocation, args.fits)
        return 0
    from planner.launch import verdict_lines

    final_dir = run_final(cfg, args.allocation, cfg.final.baselines, args.fits)
    for line in verdict_lines(final_dir, cfg.fit.metric):
        print(line)
    print(f"final runs written to {final_dir}/ (metrics.csv, objectives.csv, comparison.csv, calibration.csv)",
          file=sys.stderr)
    return 0
