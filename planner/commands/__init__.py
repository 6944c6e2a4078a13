"""CLI verbs: each module registers one subcommand with `add_parser(subparsers)`."""

from __future__ import annotations

import argparse


class _PresetAction(argparse.Action):
    """`--preset NAME` is `--config` pointed at a shipped preset file, so every verb that reads
    `args.config` takes presets without knowing about them."""

    def __call__(self, parser, namespace, values, option_string=None):
        from core.config import preset_path

        setattr(namespace, self.dest, values)
        namespace.config = str(preset_path(values))


def add_config_option(parser: argparse.ArgumentParser) -> None:
    from core.config import presets

    names = sorted(presets())
    group = parser.add_mutually_exclusive_group()  # both at once: argparse exits 2 naming the two options
    group.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="experiment YAML (default: the shipped demo preset)",
    )
    group.add_argument(
        "--preset",
        choices=names,  # an unknown name exits 2 listing these
        default=None,
        action=_PresetAction,
        help=f"a shipped config by name instead of a file: {', '.join(names)} (demo is the default; quick is the "
        "tiny from-scratch model, a few minutes end to end)",
    )
