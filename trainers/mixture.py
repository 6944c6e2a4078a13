"""The MuIT mixture: turn an allocation (pairs per language) into training pairs, exactly.

Pure functions, no torch: the launcher and tests use them to check that the mixture trained on is the
mixture that was planned.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from planner.errors import UserError


def round_allocation(pairs: Mapping[str, float], budget_pairs: float | None = None) -> dict[str, int]:
    """Round real-valued pairs to integers without exceeding the rounded total (largest remainder).

    The solver works on reals; a training set needs whole pairs. Flooring everything would leave up to one
    pair per language unspent, so the leftover whole pairs go to the largest fractional parts. When
    `budget_pairs` is given the total never exceeds it.
    """
    floors = {lang: math.floor(x + 1e-9) for lang, x in pairs.items()}
    total = sum(pairs.values()) if budget_pairs is None else min(sum(pairs.values()), budget_pairs)
    leftover = int(math.floor(total + 1e-9)) - sum(floors.values())
    by_remainder = sorted(pairs, key=lambda lang: (-(pairs[lang] - floors[lang]), lang))
    for lang in by_remainder[: max(leftover, 0)]:
        floors[lang] += 1
    return floors


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
