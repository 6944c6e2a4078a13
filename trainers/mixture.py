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
            f"Allocation gives {language} {n} pairs but only {size} are available and max_epochs is {max_epochs} "
            f"(cap {int(size * max_epochs)}).",
            "Re-run `planner allocate` with the same limits, or raise budget.max_epochs.",
        )
    full, rest = divmod(n, size) if size else (0, 0)
    return list(pool) * full + list(pool[:rest])
