"""`planner launch`: train the final multilingual (MuIT) run with an allocation"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("launch", help="train the final multilingual (MuIT) run with an allocation", description="train the final multilingual (MuIT) run with an allocation")
    add_config_option(p)
    p.add_argument('--allocation', metavar='ALLOCATION_CSV', required=True)
    p.add_argument('--baselines', default=None, help='comma-separated, e.g. uniform,temperature-0.3,unimax')
    p.add_argument('--launcher', choices=['local', 'accelerate', 'torchrun'], default='local')
    p.add_argument('--num-processes', type=int, default=1)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner launch` is not available in this version yet.")
