"""`planner report`: render the scaling-curve report from an output directory"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="render the scaling-curve report from an output directory", description="render the scaling-curve report from an output directory")
    p.add_argument('output_dir', metavar='OUTPUT_DIR')
    p.add_argument('--out', default=None, help='report path (default OUTPUT_DIR/report.html)')
    p.add_argument('--format', choices=['html', 'md'], default='html')
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner report` is not available in this version yet.")
