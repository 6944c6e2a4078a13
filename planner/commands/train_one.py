"""`planner train-one`: train and evaluate one CoIT proxy run"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("train-one", help="train and evaluate one CoIT proxy run", description="train and evaluate one CoIT proxy run")
    add_config_option(p)
    p.add_argument('--language', required=True, help='target language code, e.g. de')
    p.add_argument('--pairs', type=int, required=True, help='translation pairs to train on')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', metavar='DIR', default=None, help='run directory')
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner train-one` is not available in this version yet.")
