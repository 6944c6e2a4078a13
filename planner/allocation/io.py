"""Files in and out of `planner allocate`: the limits and targets tables, allocation.csv and its summary.

Readers turn every malformed cell into a `UserError` naming the file, row and column. Writers are atomic
(write a temporary file beside the target, then rename), so a crash never leaves half a plan behind.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from core.plan_files import (  # noqa: F401  (re-exported: the file contract's readers)
    SUMMARY_SUFFIX, read_allocation, read_summary, read_table, summary_path,
)
from planner.allocation.plan import AllocationResult
from planner.allocation.problem import LanguageLimits
from core.errors import UserError
from core.files import atomic_write_texts, not_a_file
from core.tables import read_csv

LIMIT_COLUMNS = ("min_pairs", "max_pairs", "tokens_per_pair", "weight", "price_per_pair", "held_pairs")


def _number(p: Path, row: int, column: str, text: str, allow_negative: bool = False) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (value < 0 and not allow_negative):
        need = "a finite number" if allow_negative else "a finite number ≥ 0"
        raise UserError(f"{p}: row {row + 2}, column '{column}' is {text!r}.", f"Write {need} or leave the cell empty.")
    return value


def read_limits(path: str | Path) -> dict[str, LanguageLimits]:
    """LIMITS_CSV: `language` plus any of min_pairs, max_pairs, tokens_per_pair, weight, price_per_pair,
    held_pairs (empty = default)."""
    fix = f"Give a CSV with a 'language' column and any of {list(LIMIT_COLUMNS)}."
    df = read_table(path, "limits", fix)
    unknown = [c for c in df.columns if c not in ("language", *LIMIT_COLUMNS)]
    if unknown:
        raise UserError(f"The limits file {path} has unknown columns {unknown}.", f"Known columns: language, {', '.join(LIMIT_COLUMNS)}.")
    p = Path(path)
    out = {}
    for i, row in df.iterrows():
        values = {c: _number(p, i, c, row[c]) for c in LIMIT_COLUMNS if c in df.columns}
        out[row["language"]] = LanguageLimits(**values)
    return out


def read_targets(path: str | Path) -> dict[str, float]:
    """TARGETS_CSV: columns `language` and `target` (the metric value to reach)."""
    fix = "Give a CSV with columns language,target."
    df = read_table(path, "targets", fix)
    if "target" not in df.columns:
        raise UserError(f"The targets file {path} has no 'target' column (columns: {list(df.columns)}).", fix)
    p = Path(path)
    out = {}
    for i, row in df.iterrows():
        value = _number(p, i, "target", row["target"], allow_negative=True)
        if value is not None:
            out[row["language"]] = value
    return out


def write_allocation(result: AllocationResult, path: str | Path) -> tuple[Path, Path]:
    """Write allocation.csv (contract columns first) and allocation_summary.json beside it."""
    path = Path(path)
    table = result.table()
    table["at_bound"] = table["at_bound"].fillna("")
    # Both texts are rendered before either file is touched, and written together (a full disk replaces
    # neither), so a failure leaves both old files alone: a plan beside another plan's baselines would
    # be trained and compared without a word.
    csv_text = table.to_csv(index=False, float_format="%.10g")
    summary_text = json.dumps(result.summary(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    summary = summary_path(path)
    atomic_write_texts({path: csv_text, summary: summary_text})
    return path, summary
