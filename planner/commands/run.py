"""`planner run`: run the whole pipeline, resumably"""

from __future__ import annotations

from planner.commands import add_config_option
from planner.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the whole pipeline, resumably", description="run the whole pipeline, resumably")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    raise UserError("`planner run` is not available in this version yet.")
