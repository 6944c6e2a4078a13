"""`planner launch`: train the final multilingual (MuIT) run with an allocation, and baseline mixes."""

from __future__ import annotations

import shlex
import subprocess
import sys

from planner.commands import add_config_option


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
    from planner.config import load_config
    from planner.launch import launch_command, run_final, which

    cfg = load_config(args.config)
    launcher = args.launcher or cfg.final.launcher
    baselines = parse_baselines(args.baselines, cfg.final.baselines)
    if launcher != "local":
        inner = ["launch", "--allocation", args.allocation, "--launcher", "local",
                 "--baselines", ",".join(baselines) or "none"]
        if args.config:
            inner += ["--config", args.config]
        if args.fits:
            inner += ["--fits", args.fits]
        cmd = launch_command(launcher, args.num_processes or cfg.final.num_processes, inner)
        if args.dry_run:
            print(shlex.join(cmd))
            return 0
        return subprocess.call([which(cmd[0]), *cmd[1:]])
    final_dir = run_final(cfg, args.allocation, baselines, args.fits)
    print(f"final runs written to {final_dir}/metrics.csv and {final_dir}/objectives.csv", file=sys.stderr)
    return 0
