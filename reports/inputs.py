"""Read an output directory's files into one `ReportInputs`, tolerating any of them being absent.

The report is rendered from files alone, so it works on outputs produced elsewhere. Each input is
optional; a present file with a broken shape (missing columns, non-numeric values) is a `UserError`
naming the file, the column or row, and how to fix it — never a traceback from deep in the plotting code.
Files from older planner versions read as they were (`reports.views` fills in what they lack).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fits import FitSet, load_fits
from fits.data import OK_STATUSES, check_data_sizes
from core.plan_files import read_allocation, read_summary, summary_path
from core.errors import UserError
from core.tables import read_csv

RUNS = "runs.csv"
FITS = "fits.json"
ALLOCATION = "allocation.csv"
ALLOCATION_SUMMARY = "allocation_summary.json"
FINAL_METRICS = "final/metrics.csv"
FINAL_OBJECTIVES = "final/objectives.csv"
FINAL_COMPARISON = "final/comparison.csv"
FINAL_CALIBRATION = "final/calibration.csv"
FINAL_TARGETS = "final/targets.csv"  # the target plan checked by training (planner.target_check)
ALIGNMENT = "alignment/alignment.csv"
RESOLVED_CONFIG = "resolved_config.yaml"

ALL_INPUTS = [RUNS, FITS, ALLOCATION, ALLOCATION_SUMMARY, FINAL_METRICS, FINAL_OBJECTIVES, FINAL_COMPARISON,
              FINAL_CALIBRATION, ALIGNMENT, RESOLVED_CONFIG]
# Inputs only some runs have (their absence is not "missing"): target checks.
OPTIONAL_INPUTS = [FINAL_TARGETS]
# Tables derived from final/metrics.csv: worth naming as absent only when the metrics are there.
FINAL_DERIVED = (FINAL_OBJECTIVES, FINAL_COMPARISON, FINAL_CALIBRATION)

# Required columns, and which of them must be numeric. Extra columns are kept (and mostly ignored).
RUNS_REQUIRED = ["language", "n_pairs"]
RUNS_NUMERIC = ["n_pairs", "n_tokens", "seed", "train_seconds"]
FINAL_REQUIRED = ["mixture", "language", "pairs", "predicted", "achieved"]
FINAL_NUMERIC = ["seed", "pairs", "tokens", "predicted", "predicted_low", "predicted_high", "achieved", "error"]
OBJECTIVES_REQUIRED = ["mixture", "predicted_objective", "achieved_objective"]
COMPARISON_REQUIRED = ["mixture", "baseline", "scope", "n_seeds", "mean_difference", "low", "high", "verdict"]
COMPARISON_NUMERIC = ["n_seeds", "mean_difference", "low", "high"]
CALIBRATION_REQUIRED = ["language", "cases", "coverage", "mean_error", "rms_error"]
TARGETS_REQUIRED = ["language", "target", "confidence", "pairs", "predicted", "predicted_low", "predicted_high",
                    "achieved", "reached", "inside"]
ALIGNMENT_REQUIRED = ["stage", "language", "layer", "cos_true", "cos_random"]
ALIGNMENT_NUMERIC = ["layer", "cos_true", "cos_random", "retrieval_en_x", "retrieval_x_en"]


@dataclass
class ReportInputs:
    output_dir: Path
    runs: pd.DataFrame | None = None
    fits: FitSet | None = None
    allocation: pd.DataFrame | None = None
    allocation_summary: dict | None = None
    final_metrics: pd.DataFrame | None = None
    final_objectives: pd.DataFrame | None = None
    final_comparison: pd.DataFrame | None = None  # the plan vs each baseline, paired by seed
    final_calibration: pd.DataFrame | None = None  # how often the prediction intervals held
    alignment: pd.DataFrame | None = None
    config: dict | None = None  # the resolved config, with `planner_version`
    final_targets: pd.DataFrame | None = None  # each language trained at its target plan's need
    missing: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str | None:
        return self.fits.metric if self.fits is not None else None

    def languages(self) -> list[str]:
        """Every language any input mentions (the set colours are assigned over)."""
        langs: set[str] = set()
        for frame in (self.runs, self.allocation, self.final_metrics, self.alignment):
            if frame is not None and "language" in frame:
                langs.update(frame["language"].astype(str))
        if self.fits is not None:
            langs.update(self.fits.languages)
            langs.update(self.fits.skipped)
        return sorted(langs)


def _read_table(path: Path, required: list[str], numeric: list[str]) -> pd.DataFrame:
    try:
        frame = read_csv(path, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(
            f"{path} is not a readable CSV table ({' '.join(str(err).split())}).",
            "Regenerate it with planner, or fix the file so it has one header row and comma-separated values.",
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    absent = [c for c in required if c not in frame.columns]
    if absent:
        raise UserError(
            f"{path} lacks the column(s) {', '.join(absent)} (it has: {', '.join(frame.columns) or 'none'}).",
            f"Add them; the report needs at least: {', '.join(required)}.",
        )
    _to_numeric(frame, numeric, path)
    if "language" in frame:  # as written: "NA" (Namibia) or "None" is a language code, not a missing value
        raw = read_csv(path, dtype=str, keep_default_na=False)
        frame["language"] = raw.iloc[:, list(frame.columns).index("language")].str.strip()
    return frame


def _to_numeric(frame: pd.DataFrame, numeric: list[str], path: Path) -> None:
    """Convert the named columns in place; a cell that is not a number is a UserError naming it."""
    for col in numeric:
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna() & (frame[col].astype(str).str.strip() != "")
        bad |= np.isinf(values.astype(float))  # no planner stage writes an infinite value; it would print as ∞
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            cell = frame[col].iloc[row]
            raise UserError(
                f"{path}, column '{col}', row {row + 2} (counting the header as row 1) holds "
                f"{cell if isinstance(cell, str) else str(cell)!r}, which is not a finite number.",
                "Fix or remove that row.",
            )
        frame[col] = values


def _read_config(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text ({err}).", "Regenerate it, or save it as UTF-8.") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(err).split())}.", "Regenerate it.") from None
    return data if isinstance(data, dict) else {}


def input_paths(root: Path, sources: Mapping[str, str | Path] | None = None) -> dict[str, Path]:
    """Where each input of the report is read: `root`/<name>, unless `sources` names another file for
    `runs`, `fits` or `allocation` (its summary beside it) or another directory for `final`."""
    sources = {key: Path(value) for key, value in (sources or {}).items() if value is not None}
    unknown = set(sources) - {"runs", "fits", "allocation", "final"}
    if unknown:
        raise ValueError(f"unknown report inputs {sorted(unknown)}")
    paths = {name: root / name for name in (*ALL_INPUTS, *OPTIONAL_INPUTS)}
    if "runs" in sources:
        paths[RUNS] = sources["runs"]
    if "fits" in sources:
        paths[FITS] = sources["fits"]
    if "allocation" in sources:
        paths[ALLOCATION] = sources["allocation"]
        paths[ALLOCATION_SUMMARY] = summary_path(sources["allocation"])
    if "final" in sources:
        for name in paths:
            if name.startswith("final/"):
                paths[name] = sources["final"] / name.removeprefix("final/")
    return paths


def load_inputs(output_dir: str | Path, sources: Mapping[str, str | Path] | None = None) -> ReportInputs:
    """Read whatever the output directory holds (or `sources` names instead, `input_paths`); `missing` lists
    the inputs that were absent."""
    root = Path(output_dir)
    at = input_paths(root, sources)
    if not root.is_dir() and not any(value is not None for value in (sources or {}).values()):
        raise UserError(
            f"Output directory {root} {'is a file, not a directory' if root.exists() else 'does not exist'}.",
            "Pass the directory a planner stage wrote (the one holding runs.csv, fits.json, allocation.csv).",
        )
    inputs = ReportInputs(output_dir=root)
    for name in ALL_INPUTS:
        if at[name].exists() and not at[name].is_file():  # not "absent": the user put something there
            raise UserError(f"{at[name]} is not a file (a directory?), so the report cannot read it.",
                            f"Move it away, or replace it with the {name} a planner stage writes.")
        if not at[name].is_file():
            inputs.missing.append(name)
    present = lambda name: name not in inputs.missing  # noqa: E731

    if present(RUNS):
        runs = _read_table(at[RUNS], RUNS_REQUIRED, RUNS_NUMERIC)
        check_data_sizes(runs, str(at[RUNS]))
        inputs.runs = runs[runs["language"] != ""].reset_index(drop=True)  # the fit ignores them too
        inputs.runs["ok"] = _run_ok(inputs.runs)
    if present(FITS):
        inputs.fits = load_fits(at[FITS])
    if present(ALLOCATION):
        inputs.allocation = read_allocation(at[ALLOCATION])
    if present(ALLOCATION_SUMMARY):
        inputs.allocation_summary = read_summary(at[ALLOCATION_SUMMARY])
    if present(FINAL_METRICS):
        inputs.final_metrics = _read_table(at[FINAL_METRICS], FINAL_REQUIRED, FINAL_NUMERIC)
        _refuse_repeats(inputs.final_metrics, ["mixture", "seed", "language"], at[FINAL_METRICS])
        if (inputs.final_metrics["pairs"] < 0).any():
            row = int(np.flatnonzero((inputs.final_metrics["pairs"] < 0).to_numpy())[0])
            raise UserError(f"{at[FINAL_METRICS]}, row {row + 2}: pairs is negative.",
                            "Regenerate it with `planner launch`.")
    if present(FINAL_OBJECTIVES):
        inputs.final_objectives = _read_table(
            at[FINAL_OBJECTIVES], OBJECTIVES_REQUIRED, OBJECTIVES_REQUIRED[1:] + ["seed"]
        )
    if present(FINAL_COMPARISON):
        inputs.final_comparison = _read_comparison(at[FINAL_COMPARISON])
    if present(FINAL_CALIBRATION):
        inputs.final_calibration = _read_table(at[FINAL_CALIBRATION], CALIBRATION_REQUIRED, CALIBRATION_REQUIRED[1:])
    if present(ALIGNMENT):
        inputs.alignment = _read_table(at[ALIGNMENT], ALIGNMENT_REQUIRED, ALIGNMENT_NUMERIC)
        inputs.alignment["stage"] = inputs.alignment["stage"].astype(str)
        _refuse_repeats(inputs.alignment, ["stage", "language", "layer"], at[ALIGNMENT])
    if present(RESOLVED_CONFIG):
        inputs.config = _read_config(at[RESOLVED_CONFIG])
    if at[FINAL_TARGETS].is_file():
        inputs.final_targets = _read_table(at[FINAL_TARGETS], TARGETS_REQUIRED, TARGETS_REQUIRED[1:8])

    planned = (inputs.allocation_summary or {}).get("metric")
    if inputs.fits is not None and isinstance(planned, str) and inputs.fits.metric != planned:
        raise UserError(f"{at[FITS]} fits {inputs.fits.metric!r}, but {at[ALLOCATION_SUMMARY]} was planned on "
                        f"{planned!r}: the report would label one metric's plan with the other's name.",
                        "Put the fits and the allocation of one metric in the directory (re-run `planner fit` or "
                        "`planner allocate`).")
    if all(not present(n) for n in (RUNS, FITS, ALLOCATION, FINAL_METRICS, ALIGNMENT)):
        raise UserError(
            f"{root} holds none of the files a report is made from ({', '.join(ALL_INPUTS[:-1])}).",
            "Run `planner sweep`, `planner fit` or `planner allocate` into it first, or pass the right directory.",
        )
    return inputs


def _refuse_repeats(frame: pd.DataFrame, key: list[str], path: Path) -> None:
    """One row per `key` (the columns of it the table has): a repeated row would count twice, e.g. as two seeds."""
    key = [c for c in key if c in frame.columns]
    repeated = frame.duplicated(key, keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        same = ", ".join(f"{c} {frame[c].iloc[row]}" for c in key)
        raise UserError(f"{path}, row {row + 2} repeats the row of {same}.",
                        "Keep one row for each; regenerate the file with planner if it was merged by hand.")


def _read_comparison(path: Path) -> pd.DataFrame:
    """comparison.csv has one `seed_<s>` column per final seed besides its fixed columns."""
    table = _read_table(path, COMPARISON_REQUIRED, COMPARISON_NUMERIC)
    _to_numeric(table, [c for c in table.columns if c.startswith("seed_")], path)
    for col in ("mixture", "baseline", "scope", "verdict"):
        table[col] = table[col].astype(str)
    return table


def _run_ok(runs: pd.DataFrame) -> pd.Series:
    """Finished runs, by the same rule the fit applies: the points plotted are the points fitted. Others
    (failed, running, ...) are counted in the ledger but never drawn as measurements."""
    if "status" not in runs:
        return pd.Series(True, index=runs.index)
    return runs["status"].fillna("").astype(str).str.strip().str.lower().isin(OK_STATUSES)
