"""CLI verbs: each module registers one subcommand with `add_parser(subparsers)`."""

from __future__ import annotations

import argparse


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="experiment YAML (default: the shipped demo config)",
    )
