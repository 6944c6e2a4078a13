"""The `planner` command line: one verb per pipeline stage.

Each verb lives in its own module under `planner/commands/` exposing `add_parser(subparsers)`, which
registers its options and sets `func(args) -> int`. This module only wires them together and turns
user mistakes (`UserError`) into a one-paragraph message and exit code 2, and other failures that are not bugs
(`Failure`: a full disk, a damaged storage, a diverged run) into one paragraph and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from core import __version__
from core.errors import Reported, UserError

# Pipeline order; `--help` lists them this way.
VERBS = [
    "data",
    "train-one",
    "sweep",
    "status",
    "fit",
    "allocate",
    "launch",
    "report",
    "run",
    "align-report",
]


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors (a bad or missing flag) in the same form as every other user
    mistake: one `error:` paragraph, exit code 2. Subcommand parsers are of this class too."""

    def error(self, message: str):
        _print_user_error(UserError(f"{self.prog}: {message}.", f"See `{self.prog} --help`."))
        sys.exit(UserError.exit_code)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="planner",
        description="Plan how many English→X translation pairs each language gets under a fixed budget: "
        "proxy CoIT runs → scaling-law fits → budget allocation → final multilingual run → report.",
        epilog="Run `planner VERB --help` for the options of one stage. `planner run` runs them all on the "
        "shipped demo config.",
    )
    parser.add_argument("--version", action="version", version=f"planner {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        module = importlib.import_module(f"planner.commands.{verb.replace('-', '_')}")
        module.add_parser(sub)
    return parser


def _print_user_error(err: Reported) -> None:
    text = " ".join(str(err).split())
    print(textwrap.fill(f"error: {text}", width=100), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except Reported as err:  # a UserError (exit 2) or a Failure (exit 1)
        _print_user_error(err)
        return err.exit_code
    except BrokenPipeError:  # e.g. `planner allocate ... | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
