"""The allocate stage's files as a contract: allocation.csv, its summary and the verdict record in it, and
the names of the final runs' mixtures in final/*.csv.

The conductor (`planner`) writes these files and the report (`reports`) reads them; both import this module
downward, so neither imports the other. Readers turn every malformed cell into a `UserError` naming the
file, row and column, and accept files written by anyone who follows the contract.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from core.errors import UserError
from core.files import not_a_file
from core.tables import read_csv

# The stages' files in an output directory: each verb reads the one the stage before wrote there.
RUNS_CSV = "runs.csv"
FITS_JSON = "fits.json"
ALLOCATION_CSV = "allocation.csv"
CONTRACT_COLUMNS = ["language", "pairs", "tokens", "share", "predicted", "predicted_low", "predicted_high"]
SUMMARY_SUFFIX = "_summary.json"
# The final runs' mixtures beside the baselines (final/*.csv, column `mixture`).
PLAN = "plan"
REDUCED = "plan-reduced"
TRANSFER = "plan-transfer"


def summary_path(allocation_csv: str | Path) -> Path:
    """allocation.csv → allocation_summary.json, beside it."""
    p = Path(allocation_csv)
    return p.with_name(p.stem + SUMMARY_SUFFIX)


def read_table(path: str | Path, what: str, fix: str) -> pd.DataFrame:
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
    df = read_table(p, "allocation", fix)
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


MAX_SEEDS = 1000  # beyond this, "seeds needed" is reported as more than it: no one trains that many
# A gain that takes more paired final seeds than this to show is a tie in practice: final runs are the
# expensive part, and ten is already more than most teams train.
FEASIBLE_SEEDS = 10


@dataclass(frozen=True)
class Verdict:
    baseline: str
    gain: float  # mean expected gain over the draws (objective units, > 0: the plan is better)
    low: float  # interval of the expected gain at `level`
    high: float
    one_seed_low: float  # interval of one paired final seed's difference
    one_seed_high: float
    p_better: float  # share of draws in which the plan's expected objective beats the baseline's
    seeds_needed: int | None  # paired final seeds to see the gain at `level` (None: no gain to see)
    level: float
    tie: bool

    def sentence(self, units: str) -> str:
        g = f"{self.gain:+.3g} {units} [{self.low:+.3g}, {self.high:+.3g}]"
        if self.tie:
            small = ("" if self.seeds_needed is None else
                     f", a gain too small for {FEASIBLE_SEEDS} paired final seeds to show ({self._seeds()} would)")
            return (f"expect a tie with {self.baseline}: plan − {self.baseline} {g} at {self.level:.0%}, "
                    f"P(plan better) {self.p_better:.0%}{small}; {self._safe()} is as good at this budget")
        better = "better" if self.gain > 0 else "worse"
        seeds = "" if self.seeds_needed is None else f"; about {self._seeds()} paired final seeds would show it"
        return (f"the plan is predicted {better} than {self.baseline}: {g} at {self.level:.0%}, "
                f"P(plan better) {self.p_better:.0%}{seeds}")

    def _seeds(self) -> str:
        return str(self.seeds_needed) if self.seeds_needed <= MAX_SEEDS else f"more than {MAX_SEEDS:,}"

    def _safe(self) -> str:
        return "an equal split" if self.baseline == "uniform" else f"the {self.baseline} baseline"

    def as_dict(self) -> dict:
        return asdict(self)
