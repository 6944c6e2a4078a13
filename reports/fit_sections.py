"""The fit sections: scaling curves per language (with zero-shot points and curves drawn from 0 where the
law is finite there), the fitted-law table, and all languages on one chart.

Functions of a `ReportBuilder` (the shared context: inputs, colours, interval level, figure saving).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fits.flags import FitFlag, fit_flags, flagged_params
from reports import figures as F
from reports.document import Cell, Section, Table
from reports.plotting import zero_threshold
from reports.style import fmt_interval, fmt_num, fmt_pct
from reports.views import as_float, language_label

if TYPE_CHECKING:
    from reports.build import ReportBuilder

GRID_POINTS = 160
ZERO_GRID_POINTS = 24  # on the linear part of a zero-slot axis, from 0 to its threshold
# How far past the largest measured size the curves are drawn when no plan point sets the range.
EXTRAPOLATION_FACTOR = 4.0
FLAG_MARK = "⚑"  # beside a parameter the runs do not determine (fits.flags)
PARAM_LABELS = {"power": {"offset": "C", "scale": "A", "alpha": "α", "x0": "x₀"}, "log": {"a": "a", "b": "b"}}


def own_runs(runs: pd.DataFrame) -> pd.Series:
    """Rows of single-language proxy runs: a mixture proxy run's rows (a non-empty `mixture` cell) also
    trained on other languages' data, so they are not points of the language's own curve."""
    if "mixture" not in runs:
        return pd.Series(True, index=runs.index)
    return runs["mixture"].fillna("").astype(str).str.strip() == ""


def needs_zero_slot(b: ReportBuilder) -> bool:
    """The curves get an x axis with a slot for 0 when any language was evaluated zero-shot or any fitted
    curve is finite at 0 (an offset law); one decision for the whole report keeps the figures alike."""
    if any(lf.curve.has_offset for lf in b.fits.values()):
        return True
    runs = b.inputs.runs
    if runs is None or b.metric not in runs:
        return False
    y = pd.to_numeric(runs[b.metric], errors="coerce")
    return bool((runs["ok"] & own_runs(runs) & y.notna() & (runs[_x_column(b, runs)] == 0)).any())


def x_label(b: ReportBuilder) -> str:
    return f"training {b.fit_x} ({'0 = zero-shot; ' if b.zero_axis else ''}log scale)"


def _x_column(b: ReportBuilder, runs: pd.DataFrame) -> str:
    return "n_tokens" if b.fit_x == "tokens" and "n_tokens" in runs else "n_pairs"


def run_points(b: ReportBuilder, language: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, metric, seed) of every finished run of a language, zero-shot evaluations (x = 0) included."""
    runs = b.inputs.runs
    empty = (np.array([]), np.array([]), np.array([]))
    if runs is None or b.metric not in runs:
        return empty
    sub = runs[(runs["language"] == language) & runs["ok"] & own_runs(runs)]
    xcol = _x_column(b, sub)
    y = pd.to_numeric(sub[b.metric], errors="coerce")
    keep = y.notna() & np.isfinite(y) & (sub[xcol] >= 0)
    return sub[xcol][keep].to_numpy(float), y[keep].to_numpy(float), seed_labels(sub)[keep].to_numpy()


def plan_point(b: ReportBuilder, language: str) -> tuple[float, float, float, float] | None:
    """(x, predicted, low, high) of the planned allocation in the fit's x units."""
    if b.alloc is None or language not in b.alloc.table.index:
        return None
    row = b.alloc.table.loc[language]
    x = row["tokens"] if b.fit_x == "tokens" else row["pairs"]
    if not (np.isfinite(x) and (x > 0 or (x == 0 and b.zero_axis))):
        return None
    return float(x), float(row["predicted"]), float(row["predicted_low"]), float(row["predicted_high"])


def make_curve_panel(b: ReportBuilder, language: str) -> F.CurvePanel:
    px, py, ps = run_points(b, language)
    panel = F.CurvePanel(language=language, color=b.colors.get(language, "#555"), points_x=px, points_y=py,
                         points_seed=ps, plan=plan_point(b, language), increasing=b.higher)
    if panel.plan is not None:
        panel.plan_note = bound_text(b.alloc.table.loc[language].get("at_bound"))
    lf = b.fits.get(language)
    xs = np.concatenate([px, np.asarray(lf.sizes if lf else [], dtype=float)]
                        + ([[panel.plan[0]]] if panel.plan else []))
    positive = xs[xs > 0]
    if b.zero_axis:
        panel.zero_threshold = zero_threshold(positive.min() if len(positive) else np.nan)
    if lf is None:
        if language in b.skipped:
            panel.warnings = [f"not fitted: {b.skipped[language]}"]
            panel.label = "not fitted"
        return panel
    _add_fit(b, panel, lf, positive)
    return panel


def _add_fit(b: ReportBuilder, panel: F.CurvePanel, lf, positive: np.ndarray) -> None:
    """The curve from just below the smallest run (from 0 when the law is finite there) to well past the
    largest run and the plan."""
    panel.measured_max = float(positive.max())
    reach = [panel.measured_max * EXTRAPOLATION_FACTOR] + ([panel.plan[0] * 1.3] if panel.plan else [])
    if panel.zero_threshold is not None and lf.curve.has_offset:
        start = panel.zero_threshold
        panel.grid = np.concatenate([np.linspace(0.0, start, ZERO_GRID_POINTS, endpoint=False),
                                     np.geomspace(start, max(reach), GRID_POINTS)])
    else:
        panel.grid = np.geomspace(positive.min() / 1.4, max(reach), GRID_POINTS)
    panel.fit = lf.predict(panel.grid)
    panel.band_low, panel.band_high = lf.predict_interval(panel.grid, b.level)
    bt = backtest_values(lf)
    if bt is not None:
        panel.backtest = (bt["x_held"], bt["actual"], bt["predicted"])
    r2 = as_float(lf.r2)
    panel.label = law_text(lf) + (f" · R² {r2:.3f}" if r2 is not None else "")
    # A curve whose backtest it missed by far (fits.flags) is drawn, but its panel says so.
    panel.warnings = [str(w) for w in lf.warnings] + [f.label for f in fit_flags(lf, b.inputs.fits)
                                                      if f.code == "not_predictive"]


def run_languages(b: ReportBuilder) -> list[str]:
    runs = b.inputs.runs
    return sorted(runs["language"].unique()) if runs is not None else []


def curves_section(b: ReportBuilder) -> Section | None:
    langs = sorted(set(b.fits) | set(b.skipped) | set(run_languages(b)))
    if not langs:
        return None
    s = Section("curves", "Scaling curves per language")
    zero = (" The x axis has a slot for 0: linear from 0 to the dotted line, logarithmic beyond, so zero-shot "
            "evaluations (the model before any translation data) are drawn at 0, and a curve that is finite "
            "there (an offset law) is drawn from 0." if b.zero_axis else "")
    caption = (
        f"Each panel is one language. Hollow markers are proxy runs (marker shape = seed; points at one size "
        f"are nudged apart); the solid line is the fitted law over the measured sizes and the dashed line its "
        f"extrapolation (grey background); the shaded band is the {b.level:.0%} {b.interval_kind} interval. The "
        f"diamond is the backtest: the curve fitted without the largest size predicts it, the line joins "
        f"prediction and measurement. The star is the planned allocation with its predicted interval.{zero}"
    )
    s.blocks += b.paged(
        langs, F.CURVES_PER_PAGE,
        lambda page: F.scaling_curves_figure([b.curve_panel(lang) for lang in page], x_label(b), b.metric_label,
                                             b.level, b.interval_kind),
        "scaling_curves", "Scaling curves", caption,
    )
    if b.fits or b.skipped:
        s.blocks.append(fit_table(b))
    return s


def fit_table(b: ReportBuilder) -> Table:
    columns = ["language", "law", f"parameters [{b.level:.0%} {b.interval_kind} interval]", "R²", "RMSE", "runs",
               "backtest: held-out size: measured vs predicted", "laws tried: backtest error", "flags"]
    rows = []
    for lang in sorted(set(b.fits) | set(b.skipped)):
        lf = b.fits.get(lang)
        label = Cell(language_label(lang, b.names), b.warnings_for(lang))
        if lf is None:
            rows.append([label, Cell("not fitted")] + [Cell("")] * (len(columns) - 2))
            continue
        flags = fit_flags(lf, b.inputs.fits)
        rows.append([label, Cell(law_text(lf)), Cell(params_text(lf, b.higher, flags)), Cell(fmt_num(lf.r2, 3)),
                     Cell(fmt_num(lf.rmse, 3)), Cell(fmt_num(lf.n_points)), Cell(_backtest_text(lf)),
                     Cell(_candidates_text(lf)), Cell(flags_text(flags))])
    caption = (f"Fitted laws ({b.metric_label} against training {b.fit_x}). The backtest refits without the "
               f"largest measured size and predicts it. {FLAG_MARK} marks a parameter the runs do not determine "
               f"(at the edge of the fit's search, beyond the data's scale or the metric's bound, or set by "
               f"pooling): read it as the fit's assumption, not a measurement; the flags column says why, and "
               f"'curve not predictive here' marks a backtest missed by more than twice the noise.")
    return Table(columns, rows, caption, frozenset({3, 4, 5}), id="fits")


def flags_text(flags: list[FitFlag]) -> str:
    return "\n".join(f"{FLAG_MARK} {f.label}: {f.why}" for f in flags)


def comparison_section(b: ReportBuilder) -> Section | None:
    langs = sorted(set(b.fits) | set(run_languages(b)))
    if not langs:
        return None
    s = Section("comparison", "All languages compared")
    caption = ("Mean score per measured size (points) and fitted laws (lines) on one log-x axis; dashed lines "
               "are extrapolations beyond each language's largest measured size."
               + (" Zero-shot means sit at 0 (linear up to the dotted line)." if b.zero_axis else ""))

    def draw(page):
        panels = [b.curve_panel(lang) for lang in page]
        thresholds = [p.zero_threshold for p in panels if p.zero_threshold is not None]
        return F.comparison_figure(panels, x_label(b), b.metric_label, min(thresholds) if thresholds else None)

    s.blocks += b.paged(langs, F.LINES_PER_CHART, draw, "comparison", "All languages", caption)
    return s


# ------------------------------------------------------------------------------------- helpers


def seed_labels(runs: pd.DataFrame) -> pd.Series:
    """Seeds as the legend should show them: 0, 1 (not 0.0, 1.0 from a column with a gap); one seed without a column."""
    if "seed" not in runs:
        return pd.Series(0, index=runs.index)
    seeds = runs["seed"]
    finite = seeds.notna() & np.isfinite(seeds)
    if finite.all() and (seeds == seeds.round()).all():
        return seeds.astype(int)
    return seeds.map(lambda v: "?" if pd.isna(v) else f"{v:g}")


def bound_text(value) -> str:
    """allocation.csv's at_bound cell as shown ("cap", "floor"), empty when the language is interior."""
    text = str(value).strip()
    return "" if text.lower() in ("", "nan", "none", "false", "0") else text


def backtest_values(lf) -> dict | None:
    bt = lf.backtest
    if bt is None:
        return None
    return {k: as_float(getattr(bt, k)) for k in ("x_held", "actual", "predicted", "abs_error", "rel_error")}


def _backtest_text(lf) -> str:
    bt = backtest_values(lf)
    if bt is None:
        return "none (too few sizes)"
    error = fmt_pct(bt["rel_error"]) if bt["rel_error"] is not None else f"±{fmt_num(bt['abs_error'], 2)}"
    return f"{fmt_num(bt['x_held'])}: {fmt_num(bt['actual'], 4)} vs {fmt_num(bt['predicted'], 4)} ({error} off)"


def law_text(lf) -> str:
    if lf.law == "offset":
        return "offset power"
    return lf.family if lf.law == lf.family else f"{lf.family} ({lf.law})"


def _candidates_text(lf) -> str:
    """Every law tried and its backtest error, the chosen one first (auto picks the smallest error)."""
    items = sorted(lf.candidates.items(), key=lambda kv: (kv[0] != lf.law, kv[1] is None, kv[1] or 0.0))
    return "\n".join(f"{law}: {fmt_num(err, 2) if err is not None else 'n/a'}" for law, err in items)


def param_label(family: str, name: str, higher: bool) -> str:
    if family == "power" and name == "offset" and not higher:
        return "E"
    return PARAM_LABELS.get(family, {}).get(name, name)


def params_text(lf, higher: bool, flags: list[FitFlag] | None = None) -> str:
    """Each parameter with its interval. The point fit is the posterior's mode, which can lie outside the
    draws' central interval (a skewed posterior, e.g. an asymptote pressed against its bound): there the
    draws' median is shown with the interval, and the mode named beside it, so no estimate reads as
    contradicting its own interval. A flagged parameter (`fits.flags`) carries the mark and its flag's
    label, so it does not read as a measured number."""
    intervals = lf.intervals or {}
    draws = getattr(getattr(lf, "boot", None), "params", None) or {}
    marked = flagged_params(flags or [])
    parts = []
    for name, value in lf.params.items():
        lo_hi = intervals.get(name)
        lo, hi = (lo_hi if lo_hi is not None and len(lo_hi) == 2 else (None, None))
        label = param_label(lf.family, name, higher)
        outside = lo is not None and hi is not None and not (min(lo, hi) <= value <= max(lo, hi))
        if outside and name in draws and np.isfinite(np.nanmedian(np.asarray(draws[name], float))):
            median = float(np.nanmedian(np.asarray(draws[name], float)))
            text = f"{label} = {fmt_interval(median, lo, hi, 3)} (draws' median; mode {fmt_num(value, 3)})"
        else:
            text = f"{label} = {fmt_interval(value, lo, hi, 3)}"
        if name in marked:
            text += f" {FLAG_MARK} " + "; ".join(f.label for f in marked[name])
        parts.append(text)
    return "\n".join(parts)
