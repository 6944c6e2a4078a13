"""`planner sweep`: run the grid of proxy runs (languages × sizes × seeds) on an optuna study"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run the grid of proxy runs (languages × sizes × seeds) on an optuna study", description="run the grid of proxy runs (languages × sizes × seeds) on an optuna study")
    add_config_option(p)
    p.add_argument('--storage', metavar='URL', default=None, help='optuna storage (SQLAlchemy URL or journal file)')
    p.add_argument('--workers', type=int, default=None, help='local worker processes')
    p.add_argument('--max-failures', type=int, default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner sweep` is not available in this version yet.")
