"""`planner data`: inspect the parallel data"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect the parallel data", description="inspect the parallel data")
    add_config_option(p)
    p.add_argument('action', choices=['stats'], nargs='?', default='stats')
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner data` is not available in this version yet.")
