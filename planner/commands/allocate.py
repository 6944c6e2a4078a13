"""`planner allocate`: allocate a translation-data budget across languages"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("allocate", help="allocate a translation-data budget across languages", description="allocate a translation-data budget across languages")
    p.add_argument('fits_json', metavar='FITS_JSON')
    p.add_argument('--budget', type=float, required=True)
    p.add_argument('--unit', choices=['pairs', 'tokens'], default='pairs')
    p.add_argument('--limits', metavar='LIMITS_CSV', default=None)
    p.add_argument('--max-epochs', type=float, default=1.0)
    p.add_argument('--objective', choices=['sum', 'maxmin', 'target'], default='sum')
    p.add_argument('--targets', metavar='TARGETS_CSV', default=None)
    p.add_argument('--risk', choices=['mean', 'expected'], default='mean')
    p.add_argument('--solver', choices=['exact', 'optuna'], default='exact')
    p.add_argument('--out', metavar='ALLOCATION_CSV', required=True)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner allocate` is not available in this version yet.")
