"""`planner status`: show done / running / failed / pending runs of the sweep"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="show done / running / failed / pending runs of the sweep", description="show done / running / failed / pending runs of the sweep")
    add_config_option(p)
    p.add_argument('--storage', metavar='URL', default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner status` is not available in this version yet.")
