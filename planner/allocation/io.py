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

from planner.allocation.plan import CONTRACT_COLUMNS, AllocationResult
from planner.allocation.problem import LanguageLimits
from core.errors import UserError
from core.files import atomic_write_texts, not_a_file
from core.tables import read_csv

LIMIT_COLUMNS = ("min_pairs", "max_pairs", "tokens_per_pair", "weight")
SUMMARY_SUFFIX = "_summary.json"


def summary_path(allocation_csv: str | Path) -> Path:
    """allocation.csv → allocation_summary.json, beside it."""
    p = Path(allocation_csv)
    return p.with_name(p.stem + SUMMARY_SUFFIX)


def _read_table(path: str | Path, what: str, fix: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"The {what} file {p} {not_a_file(p)}.", fix)
    try:
        df = read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(f"The {what} file {p} is not a readable CSV table: {err}".replace("\n", " "), fix) from None
    df.columns = [str(c).strip() for c in df.columns]
    if "language" not in df.columns:
        raise UserError(f"The {what} file {p} has no 'language' column (columns: {list(df.columns)}).", fix)
    df["language"] = df["language"].str.strip()
    empty = df.index[df["language"] == ""].tolist()
    if empty:
        raise UserError(f"{p}: row {empty[0] + 2} has an empty language.", "Fill in the language code or delete the row.")
    dup = df["language"][df["language"].duplicated()].unique().tolist()
    if dup:
        raise UserError(f"{p}: languages {dup} appear more than once.", "Keep one row per language.")
    return df


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
    """LIMITS_CSV: `language` plus any of min_pairs, max_pairs, tokens_per_pair, weight (empty = default)."""
    fix = f"Give a CSV with a 'language' column and any of {list(LIMIT_COLUMNS)}."
    df = _read_table(path, "limits", fix)
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
    df = _read_table(path, "targets", fix)
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


def _require_columns(p: Path, df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(
            f"{p} is missing columns {missing} (has {list(df.columns)}).",
            f"An allocation file needs columns {CONTRACT_COLUMNS}; write it with `planner allocate`.",
        )


def read_allocation(path: str | Path) -> pd.DataFrame:
    """Read and check allocation.csv: one row per language, whole non-negative pairs, numeric columns.

    Accepts files written by anyone following the contract (extra columns are kept).
    """
    p = Path(path)
    fix = "Write it with `planner allocate`, or follow the allocation.csv contract in the docs."
    df = _read_table(p, "allocation", fix)
    _require_columns(p, df, CONTRACT_COLUMNS)
    numeric = [c for c in CONTRACT_COLUMNS if c != "language"]
    out = df.copy()
    for c in numeric:
        converted = pd.to_numeric(out[c].replace("", np.nan), errors="coerce")
        bad = out.index[~np.isfinite(converted.fillna(0.0)) | (converted.isna() & (out[c].str.strip() != ""))].tolist()
        if bad:
            raise UserError(f"{p}: row {bad[0] + 2}, column '{c}' is {out[c][bad[0]]!r}, not a finite number.", fix)
        out[c] = converted
    pairs = out["pairs"]
    bad = out.index[pairs.isna() | (pairs < 0) | ~np.isfinite(pairs) | (pairs != np.round(pairs))].tolist()
    if bad:
        raise UserError(f"{p}: row {bad[0] + 2} has pairs {df['pairs'][bad[0]]!r}.",
                        "Every language needs a whole number of pairs ≥ 0 (the launcher trains whole pairs).")
    if out.empty:
        raise UserError(f"{p} has a header but no rows: it allocates to no language.", fix)
    for c in ("tokens", "share"):
        if bad := out.index[out[c] < 0].tolist():
            raise UserError(f"{p}: row {bad[0] + 2}, column '{c}' is {df[c][bad[0]]!r}; it cannot be negative.", fix)
    bad = out.index[out["predicted_low"] > out["predicted_high"]].tolist()  # NaN (empty) compares False
    if bad:
        raise UserError(f"{p}: row {bad[0] + 2} has predicted_low {df['predicted_low'][bad[0]]!r} above predicted_high "
                        f"{df['predicted_high'][bad[0]]!r}: no score could fall inside that interval.", fix)
    duplicated = out.index[out["language"].duplicated()].tolist()
    if duplicated:
        raise UserError(f"{p}: row {duplicated[0] + 2} repeats language {out['language'][duplicated[0]]!r}.",
                        "Give each language one row.")
    if "at_bound" in out.columns:
        out["at_bound"] = out["at_bound"].replace("", None)
    for c in out.columns:
        if c not in CONTRACT_COLUMNS and c not in ("at_bound",):
            converted = pd.to_numeric(out[c].replace("", np.nan), errors="coerce")
            if converted.notna().sum() == (out[c].str.strip() != "").sum():
                out[c] = converted
    return out


def read_summary(path: str | Path) -> dict:
    """Read allocation_summary.json (pass either it or the allocation.csv beside it)."""
    p = Path(path)
    if p.suffix == ".csv":
        p = summary_path(p)
    if not p.is_file():
        raise UserError(f"The allocation summary {p} {not_a_file(p)}.", "Write it with `planner allocate` (it sits beside allocation.csv).")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{p} is not valid JSON: {err}.", "Rewrite it with `planner allocate`.") from None
    if not isinstance(data, dict) or "baselines" not in data or "objective_value" not in data:
        raise UserError(f"{p} is not an allocation summary (no 'objective_value'/'baselines').", "Rewrite it with `planner allocate`.")
    _check_summary_shape(p, data)
    return data


def _check_summary_shape(p: Path, data: dict) -> None:
    """The nested objects its readers iterate over are objects (a number or a list there is a broken file)."""
    def fail(where: str, kind: str):
        raise UserError(f"{p}: '{where}' should be {kind}.", "Rewrite it with `planner allocate`.")

    for key in ("baselines", "unavailable_baselines", "reduced_pairs", "at_bound", "transfer"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            fail(key, "an object")
    if data.get("warnings") is not None and not isinstance(data["warnings"], list):
        fail("warnings", "a list")
    for name, entry in (data.get("baselines") or {}).items():
        if not isinstance(entry, dict):
            fail(f"baselines.{name}", "an object")
        languages = entry.get("languages")
        if languages is not None and not (isinstance(languages, dict) and all(isinstance(v, dict) for v in languages.values())):
            fail(f"baselines.{name}.languages", "an object of objects (one per language)")
