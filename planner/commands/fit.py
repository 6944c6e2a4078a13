"""`planner fit`: fit per-language scaling laws to runs.csv"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit per-language scaling laws to runs.csv", description="fit per-language scaling laws to runs.csv")
    p.add_argument('runs_csv', metavar='RUNS_CSV')
    p.add_argument('--metric', required=True)
    p.add_argument('--law', choices=['auto', 'power', 'log', 'shared'], default='auto')
    p.add_argument('--x', choices=['pairs', 'tokens'], default='pairs')
    p.add_argument('--ceiling', type=float, default=None)
    p.add_argument('--bootstrap', type=int, default=1000)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', metavar='FITS_JSON', required=True)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner fit` is not available in this version yet.")
