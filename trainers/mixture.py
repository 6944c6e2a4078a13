"""The MuIT mixture: turn an allocation (pairs per language) into training pairs, exactly.

Pure functions, no torch: the launcher and tests use them to check that the mixture trained on is the
mixture that was planned.
"""

from __future__ import annotations

from typing import Sequence

from core.errors import UserError


def take_pairs(pool: Sequence, n: int, max_epochs: float, language: str) -> list:
    """The first n items of a language's fixed training order, repeating whole epochs only past the pool.

    n ≤ len(pool): a prefix (sampling without replacement, nested like the sweep's sizes).
    n > len(pool): ⌊n/len⌋ whole passes plus a prefix of the remainder, allowed only within `max_epochs`.
    """
    if n < 0:
        raise UserError(f"Allocation for {language} is negative ({n} pairs).", "Fix the allocation file.")
    size = len(pool)
    if n > size * max_epochs + 1e-9 or (n > 0 and size == 0):
        raise UserError(
            f"Allocation gives {language} {n:,} pairs but its training pool holds {size:,} and max_epochs is "
            f"{max_epochs:g} (at most {int(size * max_epochs):,} trainable).",
            "If the plan buys data (allocation.csv's to_buy), add the bought pairs to the data source and run again; "
            "otherwise re-run `planner allocate` with the pool as the cap, or raise budget.max_epochs.",
        )
    full, rest = divmod(n, size) if size else (0, 0)
    return list(pool) * full + list(pool[:rest])
