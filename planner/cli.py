"""The `planner` command line: one verb per pipeline stage.

Each verb lives in its own module under `planner/commands/` exposing `add_parser(subparsers)`, which
registers its options and sets `func(args) -> int`. This module only wires them together and turns
user mistakes (`UserError`) into a one-paragraph message and exit code 2, and other failures that are not bugs
(`Failure`: a full disk, a damaged storage, a diverged run) into one paragraph and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
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


# Every verb's --help ends with this, so scripts and schedulers can act on the code without reading docs.
EXIT_CODES = (
    "Exit codes: 0 done; 1 a failure that is not the input's fault (a full disk, a damaged storage, a diverged "
    "run: what was finished is kept); 2 a mistake in the input or options (one line says which; nothing "
    "is overwritten); 130 interrupted (finished work is kept; run the same command again to resume)."
)


class _ReaderGone:
    """stdout that outlives its reader. `planner allocate … | head -1` closes the pipe after one line; the
    verb must still write its files and exit with its own code, so a write to a closed pipe is dropped
    (and stdout pointed at the null device, so the interpreter's last flush is quiet) instead of raising
    BrokenPipeError out of the middle of the work."""

    def __init__(self, stream):
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._lost()

    def _lost(self) -> None:
        self.gone = True
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
        except (OSError, ValueError):  # a stream without a file descriptor (a test's capture): just drop
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


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
    for verb_parser in {id(p): p for p in sub.choices.values()}.values():
        verb_parser.epilog = f"{verb_parser.epilog} {EXIT_CODES}" if verb_parser.epilog else EXIT_CODES
    parser.epilog = f"{parser.epilog} {EXIT_CODES}"
    return parser


def _print_user_error(err: Reported) -> None:
    text = " ".join(str(err).split())
    # Never break inside a flag or a path (`--save-model` must stay searchable and copyable).
    print(textwrap.fill(f"error: {text}", width=100, break_on_hyphens=False, break_long_words=False), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    stdout = sys.stdout
    sys.stdout = _ReaderGone(stdout)
    try:
        return int(args.func(args) or 0)
    except Reported as err:  # a UserError (exit 2) or a Failure (exit 1)
        _print_user_error(err)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        sys.stdout = stdout


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
