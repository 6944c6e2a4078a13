"""From a runs table (runs.csv, written by anyone) to one clean series of (x, y) per language.

The contract (ARCHITECTURE.md): required columns `language`, `n_pairs` and the metric; optional `n_tokens`,
`seed`, `status`, `train_seconds`; anything else is kept and ignored. Nothing is silently fitted: rows
ignored for their status are counted in the table-level notes, rows with a missing, non-numeric or
non-finite value are dropped and counted per language, and a missing column is a `UserError` that lists
the columns the file does have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UserError
from core.files import not_a_file
from core.tables import read_csv

REQUIRED = ("language", "n_pairs")
X_COLUMNS = {"pairs": "n_pairs", "tokens": "n_tokens"}
# A mixture proxy run writes one row per language it evaluates: `mixture` names the run's mixture, and
# other_pairs / other_tokens count the other languages' data it was trained on beside this language's.
MIXTURE_COLUMN = "mixture"
OTHER_COLUMNS = {"pairs": "other_pairs", "tokens": "other_tokens"}
# Every column of runs.csv that counts data (pairs or tokens): what `check_data_sizes` bounds.
DATA_COLUMNS = ("n_pairs", "n_tokens", *OTHER_COLUMNS.values())
# Statuses that mean "this run finished": a runs.csv written by hand often has no status column at all.
OK_STATUSES = {"", "ok", "complete"}
# The fits square and exponentiate metric values: beyond this size (or below its inverse, except 0) they
# overflow or underflow float64, so such a value is refused rather than fitted to nonsense.
MAX_MAGNITUDE = 1e100
# Pairs and tokens: far above any training set, and far below where a law's powers of x overflow float64
# (a size of 1e155 made the bootstrap's weights NaN).
MAX_DATA = 1e15

# Metric direction from the name. Short words only count as whole words ("ter" must not match "after"),
# longer ones anywhere in the name ("val_loss", "evalperplexity"). Lower-is-better words are checked first:
# a name that mentions a loss is a loss even if it also says "score".
_LOWER_WORDS = ("loss", "perplexity", "error", "nll", "ppl", "ter", "bpb", "bits")
_HIGHER_WORDS = ("chrf", "bleu", "comet", "accuracy", "score", "acc")


def runs_text(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _mentions(name: str, word: str) -> bool:
    if len(word) > 3:
        return word in name
    return word in re.findall(r"[a-z]+", name)


def infer_direction(metric: str) -> bool | None:
    """True if higher is better, False if lower is, None if the name says neither."""
    name = metric.lower()
    if any(_mentions(name, w) for w in _LOWER_WORDS):
        return False
    if any(_mentions(name, w) for w in _HIGHER_WORDS):
        return True
    return None


@dataclass
class Series:
    """One language's usable runs, sorted by x (every seed kept: nothing is averaged away)."""

    language: str
    x: np.ndarray
    y: np.ndarray
    tokens_per_pair: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def sizes(self) -> np.ndarray:
        return np.unique(self.x)

    @property
    def zero_shot(self) -> int:
        """Runs at x = 0 (evaluation of the untrained model)."""
        return int(np.sum(self.x == 0))

    def trained(self) -> "Series":
        """The runs with x > 0 (what a law that diverges at 0 can use)."""
        keep = self.x > 0
        return Series(self.language, self.x[keep], self.y[keep], self.tokens_per_pair, list(self.warnings))


@dataclass
class RunsTable:
    series: dict[str, Series]
    notes: list[str]  # table-level remarks (ignored statuses, dropped rows without a language)
    # Rows of mixture proxy runs (`mixture` non-empty): one per language evaluated in a model trained on a
    # mixture, with its own data (x) and the other languages' (other_x) in the fitted unit; the transfer
    # fit (`fits.transfer`) reads them, the per-language curves do not.
    mixtures: pd.DataFrame | None = None


def read_runs_csv(path: str | Path) -> pd.DataFrame:
    """Read runs.csv as text (so language codes like "NA" or "no" stay strings); numbers are parsed later."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"Runs file {p} {not_a_file(p)}.", "Pass the runs.csv written by `planner sweep` (or your own).")
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark that would rename `language`.
        return read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(
            f"Runs file {p} is not a readable CSV table: {err}.",
            "It needs a header row with at least the columns language, n_pairs and one metric.",
        ) from None


def _columns_hint(df: pd.DataFrame) -> str:
    return "its columns are: " + (", ".join(map(str, df.columns)) if len(df.columns) else "(none)")


def check_columns(df: pd.DataFrame, metric: str, x: str) -> None:
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(
            f"The runs table has no {' or '.join(repr(c) for c in missing)} column; {_columns_hint(df)}.",
            "runs.csv needs one row per run with columns language, n_pairs and at least one metric.",
        )
    if metric not in df.columns or metric in REQUIRED or metric in ("n_tokens", "seed", "status"):
        raise UserError(
            f"Unknown metric {metric!r}: the runs table has no such metric column; {_columns_hint(df)}.",
            "Pass --metric with one of the metric columns (for example chrf, bleu or loss).",
        )
    if x not in X_COLUMNS:
        raise UserError(f"Unknown x {x!r}.", f"Use one of {sorted(X_COLUMNS)}.")
    if X_COLUMNS[x] not in df.columns:
        raise UserError(
            f"--x {x} needs an {X_COLUMNS[x]!r} column, which the runs table lacks; {_columns_hint(df)}.",
            "Use --x pairs, or add the training-token count of each run as n_tokens.",
        )


def _numeric(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)


def prepare_runs(df: pd.DataFrame, metric: str, x: str = "pairs") -> RunsTable:
    """Validate the table and split it into one `Series` per language (see module docstring)."""
    check_columns(df, metric, x)
    notes: list[str] = []
    if "status" in df.columns:
        status = df["status"].fillna("").astype(str).str.strip()
        ok = status.str.lower().isin(OK_STATUSES)
        if (~ok).any():
            counts = status[~ok].value_counts()
            detail = ", ".join(f"{s}: {n}" for s, n in counts.items())
            notes.append(f"ignored {runs_text(int((~ok).sum()))} whose status is not ok/complete ({detail})")
        df = df[ok.to_numpy()]
    language = df["language"].fillna("").astype(str).str.strip()
    no_language = language == ""
    if no_language.any():
        notes.append(f"ignored {runs_text(int(no_language.sum()))} with an empty language")
    df, language = df[~no_language.to_numpy()], language[~no_language]
    if df.empty:
        raise UserError(
            "The runs table has no usable runs (no rows, or every row has a failed status or no language).",
            "Check the status and language columns of runs.csv.",
        )

    check_data_sizes(df, "the runs table")
    mixtures = None
    if MIXTURE_COLUMN in df.columns:
        mixed = (df[MIXTURE_COLUMN].fillna("").astype(str).str.strip() != "").to_numpy()
        if mixed.any():
            mixtures = _mixture_rows(df[mixed], language[mixed], metric, x)
            notes.append(f"{runs_text(int(mixed.sum()))} from {df.loc[mixed, MIXTURE_COLUMN].nunique()} mixture proxy "
                         "run(s) measure each language inside a mixture (fitted apart from its own curve: τ, and its "
                         "in-mixture curve where it had two or more own sizes there)")
            df, language = df[~mixed], language[~mixed]

    xcol = X_COLUMNS[x]
    xs, ys = _numeric(df[xcol]), _numeric(df[metric])
    _check_magnitude(ys, df.index, metric)
    pairs = _numeric(df["n_pairs"])
    tokens = _numeric(df["n_tokens"]) if "n_tokens" in df.columns else None
    series: dict[str, Series] = {}
    for lang in sorted(set(language)):
        rows = (language == lang).to_numpy()
        xl, yl = xs[rows], ys[rows]
        bad_y = ~np.isfinite(yl)
        # x = 0 is a zero-shot run (the base model evaluated without training): data for the offset law.
        bad_x = ~(np.isfinite(xl) & (xl >= 0))
        keep = ~(bad_x | bad_y)
        warnings = []
        if bad_y.any():
            warnings.append(f"dropped {runs_text(int(bad_y.sum()))} with a missing or non-finite {metric}")
        if (bad_x & ~bad_y).any():
            warnings.append(f"dropped {runs_text(int((bad_x & ~bad_y).sum()))} with a missing or negative {xcol}")
        order = np.argsort(xl[keep], kind="stable")
        series[lang] = Series(
            language=lang,
            x=xl[keep][order],
            y=yl[keep][order],
            tokens_per_pair=_tokens_per_pair(pairs[rows], tokens[rows]) if tokens is not None else None,
            warnings=warnings,
        )
    return RunsTable(series=series, notes=notes, mixtures=mixtures)


def _row_number(index: pd.Index, i: int) -> int | str:
    return index[i] + 2 if isinstance(index[i], (int, np.integer)) else repr(index[i])  # + 2: header, from 1


def check_data_sizes(df: pd.DataFrame, where: str) -> None:
    """Refuse a pair or token count above MAX_DATA in any of DATA_COLUMNS (those `df` has), naming its row."""
    for col in DATA_COLUMNS:
        if col not in df.columns:
            continue
        values = _numeric(df[col])
        bad = np.isfinite(values) & (np.abs(values) > MAX_DATA)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"Row {_row_number(df.index, i)} of {where} has {col} = {values[i]:g}, more than any "
                            f"training set (at most {MAX_DATA:g}).", f"Fix that cell of {col}.")


def _check_magnitude(y: np.ndarray, index: pd.Index, metric: str) -> None:
    size = np.abs(y)
    bad = np.isfinite(y) & ((size > MAX_MAGNITUDE) | ((size > 0) & (size < 1 / MAX_MAGNITUDE)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise UserError(
            f"Row {_row_number(index, i)} of the runs table has {metric} = {y[i]:g}, too {'large' if size[i] > 1 else 'small'} "
            f"to fit: metric values must be 0 or between {1 / MAX_MAGNITUDE:g} and {MAX_MAGNITUDE:g} in size.",
            f"Fix that cell, or rescale the {metric} column.",
        )


def _mixture_rows(df: pd.DataFrame, language: pd.Series, metric: str, x: str) -> pd.DataFrame:
    """The mixture rows as (mixture, language, x, other_x, y), finite values only."""
    other = OTHER_COLUMNS[x]
    if other not in df.columns:
        raise UserError(
            f"The runs table has mixture rows (a non-empty '{MIXTURE_COLUMN}' column) but no '{other}' column.",
            f"A mixture run's row needs the pairs (or tokens) of the other languages in its mixture as {other}.",
        )
    out = pd.DataFrame({
        "mixture": df[MIXTURE_COLUMN].astype(str).str.strip().to_numpy(),
        "language": language.to_numpy(),
        "x": _numeric(df[X_COLUMNS[x]]),
        "other_x": _numeric(df[other]),
        "y": _numeric(df[metric]),
    })
    ok = np.isfinite(out["x"]) & np.isfinite(out["other_x"]) & np.isfinite(out["y"]) & (out["x"] >= 0) & (out["other_x"] >= 0)
    return out[ok.to_numpy()].reset_index(drop=True)


def _tokens_per_pair(pairs: np.ndarray, tokens: np.ndarray) -> float | None:
    """Median training tokens per pair over the runs that report both (the allocator's token price)."""
    ok = np.isfinite(pairs) & np.isfinite(tokens) & (pairs > 0) & (tokens > 0)
    return float(np.median(tokens[ok] / pairs[ok])) if ok.any() else None
