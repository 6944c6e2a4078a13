"""`planner align-report`: layer-wise cross-lingual representation alignment"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("align-report", help="layer-wise cross-lingual representation alignment", description="layer-wise cross-lingual representation alignment")
    src = p.add_mutually_exclusive_group()
    src.add_argument('--run', metavar='RUN_DIR', default=None)
    src.add_argument('--model', metavar='PATH', default=None)
    p.add_argument('--language', action='append', default=None)
    add_config_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner align-report` is not available in this version yet.")
