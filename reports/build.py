"""Turn `ReportInputs` into a `Document`: which sections the inputs support, their figures and tables.

This is the only module that knows the producers' data shapes (the fits API, the allocation summary,
the CSV columns). It computes what the figures draw (curves, bands, marginal gains) and hands plain
arrays to `reports.figures`; renderers then turn the `Document` into HTML or Markdown.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml

from reports import figures as F
from reports import inputs as I
from reports.document import (
    Callout,
    Cell,
    Document,
    Headline,
    Metric,
    Paragraph,
    Preformatted,
    SavedFigure,
    Section,
    Table,
)
from reports.style import fmt_interval, fmt_num, fmt_pct, fmt_signed, language_colors

DEFAULT_LEVEL = 0.9
GRID_POINTS = 160
# How far past the largest measured size the curves are drawn when no plan point sets the range.
EXTRAPOLATION_FACTOR = 4.0

METRIC_LABELS = {"chrf": "chrF", "bleu": "BLEU", "loss": "test loss", "comet": "COMET"}
PARAM_LABELS = {"power": {"offset": "C", "scale": "A", "alpha": "α"}, "log": {"a": "a", "b": "b"}}
REPORTED_PACKAGES = ["coit-planner", "numpy", "scipy", "pandas", "matplotlib", "torch", "transformers", "optuna", "sacrebleu"]


# ------------------------------------------------------------------------------------ input views


@dataclass(frozen=True)
class Baseline:
    name: str
    objective: float | None
    pairs: dict[str, float]
    tokens: dict[str, float]
    predicted: dict[str, float]


@dataclass(frozen=True)
class AllocationView:
    """allocation.csv and allocation_summary.json (see `planner.allocation`), as the report uses them."""

    table: pd.DataFrame  # indexed by language
    budget: float | None = None
    unit: str = "pairs"
    objective: str = "sum"
    objective_label: str = ""
    objective_higher: bool = True
    lam: float | None = None
    plan_objective: float | None = None
    baselines: list[Baseline] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    gain_over_best: float | None = None
    best_baseline: str | None = None
    unused: float | None = None
    interval_level: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return list(self.table.index)

    def best(self) -> Baseline | None:
        scored = [b for b in self.baselines if b.objective is not None]
        named = [b for b in scored if b.name == self.best_baseline]
        if named or not scored:
            return named[0] if named else None
        sign = 1.0 if self.objective_higher else -1.0
        return max(scored, key=lambda b: sign * b.objective)

    def cost(self, language: str) -> float:
        """Budget units per pair for a language (tokens per pair under a token budget)."""
        if self.unit != "tokens":
            return 1.0
        row = self.table.loc[language]
        return float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else float("nan")


def _float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def allocation_view(table: pd.DataFrame, summary: dict | None, higher_is_better: bool = True) -> AllocationView:
    """`higher_is_better` is the metric's direction, used when there is no summary to say the objective's."""
    summary = summary or {}
    baselines = [
        Baseline(
            name=str(name),
            objective=_float(entry.get("objective_value")),
            pairs={str(k): _float(v.get("pairs")) for k, v in (entry.get("languages") or {}).items()},
            tokens={str(k): _float(v.get("tokens")) for k, v in (entry.get("languages") or {}).items()},
            predicted={str(k): _float(v.get("predicted")) for k, v in (entry.get("languages") or {}).items()},
        )
        for name, entry in (summary.get("baselines") or {}).items()
    ]
    return AllocationView(
        table=table.set_index("language", drop=False),
        budget=_float(summary.get("budget")),
        unit=str(summary.get("unit") or "pairs"),
        objective=str(summary.get("objective") or "sum"),
        objective_label=str(summary.get("objective_label") or ""),
        objective_higher=bool(summary.get("objective_higher_is_better", higher_is_better)),
        lam=_float(summary.get("lambda")),
        plan_objective=_float(summary.get("objective_value")),
        baselines=baselines,
        unavailable={str(k): str(v) for k, v in (summary.get("unavailable_baselines") or {}).items()},
        gain_over_best=_float(summary.get("gain_over_best_baseline")),
        best_baseline=summary.get("best_baseline"),
        unused=_float(summary.get("unused_budget")),
        interval_level=_float(summary.get("interval_level")),
        warnings=[str(w) for w in summary.get("warnings") or []],
    )


def _higher_is_better(fitset) -> bool:
    return True if fitset is None else bool(fitset.higher_is_better)


def metric_label(metric: str | None) -> str:
    if not metric:
        return "metric"
    return METRIC_LABELS.get(metric.lower(), metric)


def language_label(code: str, name_of: Callable[[str], str | None]) -> str:
    name = name_of(code)
    return f"{code} ({name})" if name else code


def language_namer(config: dict | None) -> Callable[[str], str | None]:
    """English names for codes: the config's `data.language_names` first, then the built-in table."""
    try:
        from trainers.languages import LANGUAGE_NAMES
    except ImportError:  # the report also renders where only the planner core is installed
        LANGUAGE_NAMES = {}
    builtin = {k.lower(): v for k, v in LANGUAGE_NAMES.items()}
    configured = ((config or {}).get("data") or {}).get("language_names") or {}
    return lambda code: configured.get(code) or builtin.get(str(code).lower().replace("_", "-"))


# ----------------------------------------------------------------------------------- the builder


@dataclass
class ReportBuilder:
    inputs: I.ReportInputs
    figures_dir: Path
    level: float | None = None  # None: the allocation's interval level, else DEFAULT_LEVEL
    saved: list[SavedFigure] = field(default_factory=list)

    def __post_init__(self):
        inp = self.inputs
        self.colors = language_colors(inp.languages())
        self.fits = dict(inp.fits.languages) if inp.fits is not None else {}
        self.skipped = dict(inp.fits.skipped) if inp.fits is not None else {}
        self.higher = _higher_is_better(inp.fits)
        self.metric = inp.metric or self._guess_metric()
        self.metric_label = metric_label(self.metric)
        self.fit_x = inp.fits.x if inp.fits is not None else "pairs"
        self.alloc = (
            allocation_view(inp.allocation, inp.allocation_summary, self.higher) if inp.allocation is not None else None
        )
        self.names = language_namer(inp.config)
        self._panels: dict[str, F.CurvePanel] = {}
        if self.level is None:
            # Match the allocation's intervals so the band, the plan's interval and the tables agree.
            self.level = (
                (self.alloc.interval_level if self.alloc else None)
                or (_float(inp.fits.level) if inp.fits is not None else None)
                or DEFAULT_LEVEL
            )

    def _guess_metric(self) -> str | None:
        runs = self.inputs.runs
        if runs is None:
            return None
        for name in ("chrf", "bleu", "loss"):
            if name in runs:
                return name
        return None

    # ---------------------------------------------------------------------------- figure plumbing

    def _save(self, fig, stem: str, title: str, caption: str) -> SavedFigure:
        png, svg = F.save_figure(fig, self.figures_dir, stem)
        saved = SavedFigure(id=stem, title=title, caption=caption, png=png, svg=svg)
        self.saved.append(saved)
        return saved

    def _paged(self, items: list, per_page: int, draw: Callable, stem: str, title: str, caption: str) -> list:
        """One figure per page of languages; page titles name the languages they hold."""
        pages = F.chunks(items, per_page)
        digits = len(str(len(pages)))  # zero-padded, so file listings sort in page order
        out = []
        for i, page in enumerate(pages, 1):
            if len(pages) > 1:
                held = page[0] if len(page) == 1 else f"{page[0]}–{page[-1]}"
                out.append(self._save(draw(page), f"{stem}_{i:0{digits}d}", f"{title} ({i}/{len(pages)}: {held})",
                                      caption))
            else:
                out.append(self._save(draw(page), stem, title, caption))
        return out

    # ------------------------------------------------------------------------------ data for plots

    def _x_label(self) -> str:
        return f"training {self.fit_x} (log scale)"

    def _run_points(self, language: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        runs = self.inputs.runs
        empty = (np.array([]), np.array([]), np.array([]))
        if runs is None or self.metric not in runs:
            return empty
        sub = runs[(runs["language"] == language) & runs["ok"]]
        xcol = "n_tokens" if self.fit_x == "tokens" and "n_tokens" in sub else "n_pairs"
        y = pd.to_numeric(sub[self.metric], errors="coerce")
        keep = y.notna() & np.isfinite(y) & (sub[xcol] > 0)
        return sub[xcol][keep].to_numpy(float), y[keep].to_numpy(float), _seed_labels(sub)[keep].to_numpy()

    def _plan_x(self, language: str) -> tuple[float, float, float, float] | None:
        if self.alloc is None or language not in self.alloc.table.index:
            return None
        row = self.alloc.table.loc[language]
        x = row["tokens"] if self.fit_x == "tokens" else row["pairs"]
        if not (np.isfinite(x) and x > 0):
            return None
        return float(x), float(row["predicted"]), float(row["predicted_low"]), float(row["predicted_high"])

    def curve_panel(self, language: str) -> F.CurvePanel:
        """The panel data for one language (computed once: the per-language and comparison figures share it)."""
        if language not in self._panels:
            self._panels[language] = self._make_curve_panel(language)
        return self._panels[language]

    def _make_curve_panel(self, language: str) -> F.CurvePanel:
        px, py, ps = self._run_points(language)
        panel = F.CurvePanel(language=language, color=self.colors.get(language, "#555"), points_x=px,
                             points_y=py, points_seed=ps, plan=self._plan_x(language), increasing=self.higher)
        if panel.plan is not None:
            panel.plan_note = _bound_text(self.alloc.table.loc[language].get("at_bound"))
        lf = self.fits.get(language)
        if lf is None:
            if language in self.skipped:
                panel.warnings = [f"not fitted: {self.skipped[language]}"]
                panel.label = "not fitted"
            return panel
        # From just below the smallest run to well past the largest (and past the plan, if further).
        measured = np.concatenate([np.asarray(lf.sizes, dtype=float), px])
        panel.measured_max = float(measured.max())
        reach = [panel.measured_max * EXTRAPOLATION_FACTOR] + ([panel.plan[0] * 1.3] if panel.plan else [])
        panel.grid = np.geomspace(measured.min() / 1.4, max(reach), GRID_POINTS)
        panel.fit = lf.predict(panel.grid)
        panel.band_low, panel.band_high = lf.predict_interval(panel.grid, self.level)
        bt = _backtest(lf)
        if bt is not None:
            panel.backtest = (bt["x_held"], bt["actual"], bt["predicted"])
        r2 = _float(lf.r2)
        panel.label = _law_text(lf) + (f" · R² {r2:.3f}" if r2 is not None else "")
        panel.warnings = [str(w) for w in lf.warnings]
        return panel

    def marginal_line(self, language: str, lf) -> F.MarginalLine:
        """Marginal gain per budget unit against data in budget units: what the solver equalises at λ.

        With c = budget units per pair and k = fitted x units per pair, spending b budget units buys
        b/c pairs = k·b/c units of x, so d(w·u)/db = w·(k/c)·f'(k·b/c) for the fitted curve f.
        """
        a = self.alloc
        row = a.table.loc[language]
        tpp = _float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else None
        tpp = tpp or _float(lf.tokens_per_pair) or 1.0
        cost = tpp if a.unit == "tokens" else 1.0
        k = tpp if self.fit_x == "tokens" else 1.0
        x_per_budget = k / cost
        weight = _float(row.get("weight")) if a.objective == "sum" else 1.0
        weight = 1.0 if weight is None else weight
        # The solver's optimum before rounding to whole pairs is where the KKT conditions hold exactly.
        exact = _float(row.get("pairs_exact")) or _float(row["pairs"])
        plan_b = exact * cost if exact else None
        sizes = np.asarray(lf.sizes or [1.0], dtype=float) / x_per_budget
        lo = min([sizes.min()] + ([plan_b] if plan_b else [])) / 2
        hi = max([sizes.max() * EXTRAPOLATION_FACTOR] + ([plan_b * 2] if plan_b else []))
        grid = np.geomspace(max(lo, 1e-9), hi, GRID_POINTS)

        def gain(b):
            return weight * x_per_budget * np.asarray(lf.curve.marginal_utility(np.asarray(b, dtype=float) * x_per_budget))

        return F.MarginalLine(
            language=language, color=self.colors.get(language, "#555"), grid=grid, gain=gain(grid),
            plan_x=plan_b, plan_gain=float(gain(plan_b)) if plan_b else None,
            at_bound=_bound_text(row.get("at_bound")) != "",
        )

    # -------------------------------------------------------------------------------- sections

    def build(self, title: str) -> Document:
        sections = [self.summary_section()]
        for make in (self.curves_section, self.comparison_section, self.allocation_section,
                     self.marginal_section, self.final_section, self.alignment_section, self.runs_section):
            section = make()
            if section is not None:
                sections.append(section)
        sections.append(self.environment_section())
        metric = f"metric {self.metric_label}" if self.metric else "no metric"
        subtitle = f"{self.inputs.output_dir.name} · {metric} · x = training {self.fit_x}"
        return Document(title=title, subtitle=subtitle, sections=sections)

    def summary_section(self) -> Section:
        s = Section("summary", "Summary")
        metrics: list[Metric] = []
        a = self.alloc
        if a is not None:
            best = a.best()
            if a.plan_objective is not None:
                detail = f"best baseline {best.name}: {fmt_num(best.objective, 4)}" if best else "no baselines"
                metrics.append(Metric("Predicted objective (plan)", fmt_num(a.plan_objective, 4), detail))
            gain = a.gain_over_best
            if gain is not None:
                metrics.append(Metric("Gain over best baseline", fmt_signed(gain, 3), f"vs {best.name if best else ''}",
                                      "good" if gain > 0 else "bad" if gain < 0 else ""))
            budget_detail = f"objective {a.objective}" + (f" · λ {a.lam:.3g}" if a.lam is not None else "")
            if a.unused:
                budget_detail += f" · unused {fmt_num(a.unused)}"
            if a.budget is not None:
                metrics.append(Metric("Budget", f"{fmt_num(a.budget)} {a.unit}", budget_detail))
        achieved = self._achieved_gain()
        if achieved is not None:
            gain, best_name, plan_value = achieved
            metrics.append(Metric("Achieved gain (final run)", fmt_signed(gain, 3),
                                  f"plan {fmt_num(plan_value, 4)} vs {best_name}", "good" if gain > 0 else "bad" if gain < 0 else ""))
        if self.inputs.fits is not None:
            flagged = sum(1 for lf in self.fits.values() if lf.warnings)
            detail = f"{len(self.skipped)} skipped · {flagged} with warnings"
            metrics.append(Metric("Languages fitted", str(len(self.fits)), detail))
        elif self.inputs.runs is not None:
            metrics.append(Metric("Proxy runs", str(len(self.inputs.runs)),
                                  f"{self.inputs.runs['language'].nunique()} languages"))
        if metrics:
            s.blocks.append(Headline(metrics))
        if a is not None:
            s.blocks.append(Paragraph(self._plan_sentence(a)))
            s.blocks.append(self._plan_table(a, compact=True))
        warnings = list(a.warnings) if a else []
        if self.inputs.fits is not None:
            warnings += [str(n) for n in self.inputs.fits.notes]
        for lang in sorted(self.skipped):
            warnings.append(f"{lang}: not fitted — {self.skipped[lang]}")
        for lang, lf in sorted(self.fits.items()):
            for w in lf.warnings:
                warnings.append(f"{lang}: {w}")
        if warnings:
            s.blocks.append(Callout("Warnings", warnings))
        if self.inputs.missing:
            s.blocks.append(Callout("Inputs absent (their sections are left out)",
                                    [f"{name} — {_ABSENT_EFFECT[name]}" for name in self.inputs.missing], "info"))
        return s

    def _plan_sentence(self, a: AllocationView) -> str:
        top = a.table.sort_values("share", ascending=False)
        leaders = ", ".join(f"{lang} {fmt_pct(share, 0)}" for lang, share in zip(top["language"][:3], top["share"][:3]))
        goal = a.objective_label or f"{a.objective} objective"
        return (f"The plan spreads {fmt_num(a.table['pairs'].sum())} translation pairs over {len(a.table)} languages "
                f"(largest shares of the budget: {leaders}), chosen to {'maximise' if a.objective_higher else 'minimise'} "
                f"the {goal}.")

    def _achieved_gain(self):
        obj = self.inputs.final_objectives
        if obj is None:
            return None
        obj = obj[obj["achieved_objective"].notna()]
        plan_rows, others = obj[obj["mixture"] == "plan"], obj[obj["mixture"] != "plan"]
        if plan_rows.empty or others.empty:
            return None
        plan = float(plan_rows["achieved_objective"].iloc[0])
        # The launcher scores every mixture in metric units (a sum, a worst case or a mean of the metric),
        # so the metric's direction decides which is better, whatever the planning objective was.
        sign = 1.0 if self.higher else -1.0
        best = others.loc[(sign * others["achieved_objective"]).idxmax()]
        return sign * (plan - float(best["achieved_objective"])), str(best["mixture"]), plan

    def _plan_table(self, a: AllocationView, compact: bool) -> Table:
        t = a.table
        max_share = float(t["share"].max()) or 1.0
        has = lambda c: c in t and t[c].notna().any()  # noqa: E731
        columns = ["language", f"pairs{' [interval]' if has('pairs_low') else ''}", "tokens", "share",
                   f"predicted {self.metric_label} [{self.level:.0%}]"]
        if not compact:
            columns += [c for c, ok in (("marginal gain", has("marginal_gain")), ("at bound", "at_bound" in t)) if ok]
        rows = []
        for _, r in t.iterrows():
            lang = r["language"]
            row = [
                Cell(language_label(lang, self.names), self._warnings_for(lang) if not compact else ()),
                Cell(fmt_interval(r["pairs"], r.get("pairs_low"), r.get("pairs_high"), 4)),
                Cell(fmt_num(r["tokens"], 4)),
                Cell(fmt_pct(r["share"]), bar=float(r["share"]) / max_share),
                Cell(fmt_interval(r["predicted"], r["predicted_low"], r["predicted_high"])),
            ]
            if not compact:
                if has("marginal_gain"):
                    row.append(Cell(fmt_num(r["marginal_gain"])))
                if "at_bound" in t:
                    row.append(Cell(_bound_text(r["at_bound"])))
            rows.append(row)
        caption = "The plan." if compact else "The plan, per language, with the solver's marginal gain per budget unit."
        return Table(columns, rows, caption, frozenset(range(1, len(columns))) - {3}, id=f"plan-{'compact' if compact else 'full'}")

    def _warnings_for(self, lang: str) -> tuple[str, ...]:
        if lang in self.skipped:
            return (f"not fitted: {self.skipped[lang]}",)
        lf = self.fits.get(lang)
        return tuple(str(w) for w in lf.warnings) if lf is not None else ()

    def curves_section(self) -> Section | None:
        langs = sorted(set(self.fits) | set(self.skipped) | set(self._run_languages()))
        if not langs:
            return None
        s = Section("curves", "Scaling curves per language")
        caption = (
            f"Each panel is one language. Hollow markers are proxy runs (marker shape = seed; points at one size "
            f"are nudged apart); the solid line is the fitted law over the measured sizes and the dashed line its "
            f"extrapolation (grey background); the shaded band is the {self.level:.0%} bootstrap interval. The "
            f"diamond is the backtest: the curve fitted without the largest size predicts it, the line joins "
            f"prediction and measurement. The star is the planned allocation with its predicted interval."
        )
        s.blocks += self._paged(
            langs, F.CURVES_PER_PAGE,
            lambda page: F.scaling_curves_figure([self.curve_panel(lang) for lang in page], self._x_label(),
                                                 self.metric_label, self.level),
            "scaling_curves", "Scaling curves", caption,
        )
        if self.fits or self.skipped:
            s.blocks.append(self.fit_table())
        return s

    def _run_languages(self) -> list[str]:
        runs = self.inputs.runs
        return sorted(runs["language"].unique()) if runs is not None else []

    def fit_table(self) -> Table:
        columns = ["language", "law", f"parameters [{self.level:.0%} interval]", "R²", "RMSE", "runs",
                   "backtest: held-out size: measured vs predicted", "laws tried: backtest error"]
        rows = []
        for lang in sorted(set(self.fits) | set(self.skipped)):
            lf = self.fits.get(lang)
            if lf is None:
                rows.append([Cell(language_label(lang, self.names), self._warnings_for(lang)), Cell("not fitted")]
                            + [Cell("")] * (len(columns) - 2))
                continue
            rows.append([
                Cell(language_label(lang, self.names), self._warnings_for(lang)),
                Cell(_law_text(lf)),
                Cell(_params_text(lf, self.higher)),
                Cell(fmt_num(lf.r2, 3)),
                Cell(fmt_num(lf.rmse, 3)),
                Cell(fmt_num(lf.n_points)),
                Cell(_backtest_text(lf)),
                Cell(_candidates_text(lf)),
            ])
        caption = (f"Fitted laws ({self.metric_label} against training {self.fit_x}). The backtest refits without "
                   f"the largest measured size and predicts it.")
        return Table(columns, rows, caption, frozenset({3, 4, 5}), id="fits")

    def comparison_section(self) -> Section | None:
        langs = sorted(set(self.fits) | set(self._run_languages()))
        if not langs:
            return None
        s = Section("comparison", "All languages compared")
        caption = ("Mean score per measured size (points) and fitted laws (lines) on one log-x axis; dashed lines "
                   "are extrapolations beyond each language's largest measured size.")
        s.blocks += self._paged(
            langs, F.LINES_PER_CHART,
            lambda page: F.comparison_figure([self.curve_panel(lang) for lang in page], self._x_label(), self.metric_label),
            "comparison", "All languages", caption,
        )
        return s

    def mixtures(self, languages: list[str]) -> list[F.MixtureSeries]:
        a = self.alloc
        t = a.table.loc[languages]
        unit = a.unit if a.unit in ("pairs", "tokens") else "pairs"
        col = lambda c: t[c].to_numpy(float) if c in t else None  # noqa: E731
        out = [F.MixtureSeries("plan", amount=col(unit), amount_low=col(f"{unit}_low"), amount_high=col(f"{unit}_high"),
                               predicted=col("predicted"), predicted_low=col("predicted_low"),
                               predicted_high=col("predicted_high"))]
        for b in a.baselines:
            amounts = b.pairs if unit == "pairs" else b.tokens
            amount = np.array([_nan(amounts.get(lang)) for lang in languages])
            predicted = np.array([_nan(b.predicted.get(lang)) for lang in languages])
            low = high = None
            band = self._interval_at(languages, np.array([_nan(b.pairs.get(lang)) for lang in languages]),
                                     np.array([_nan(b.tokens.get(lang)) for lang in languages]))
            if band is not None:
                low, high = band
            out.append(F.MixtureSeries(b.name, amount=amount, predicted=predicted, predicted_low=low, predicted_high=high))
        return out

    def _interval_at(self, languages, pairs, tokens):
        """Bootstrap intervals of each language's prediction at a baseline's allocation (from the fits)."""
        if not self.fits:
            return None
        low, high = np.full(len(languages), np.nan), np.full(len(languages), np.nan)
        for i, lang in enumerate(languages):
            lf = self.fits.get(lang)
            x = tokens[i] if self.fit_x == "tokens" else pairs[i]
            if lf is None or not np.isfinite(x) or x <= 0:
                continue
            lo, hi = lf.predict_interval(np.array([x]), self.level)
            low[i], high[i] = float(np.asarray(lo).ravel()[0]), float(np.asarray(hi).ravel()[0])
        return low, high

    def allocation_section(self) -> Section | None:
        a = self.alloc
        if a is None:
            return None
        s = Section("allocation", "The allocation and its baselines")
        names = ", ".join(b.name for b in a.baselines) or "none recorded"
        caption = (f"Top: {a.unit} each mixture gives each language at the same budget (plan error bars: the "
                   f"{self.level:.0%} bootstrap interval of the allocation itself). Bottom: the predicted "
                   f"{self.metric_label} with its {self.level:.0%} interval. Baselines: {names}.")
        amount_label = f"training {a.unit}"
        s.blocks += self._paged(
            a.languages, F.languages_per_bar_page(1 + len(a.baselines)),
            lambda page: F.allocation_figure(page, self.mixtures(page), amount_label, self.metric_label),
            "allocation", "Plan vs baselines", caption,
        )
        if a.unavailable:
            s.blocks.append(Callout("Baselines not computed", [f"{name}: {why}" for name, why in a.unavailable.items()], "info"))
        s.blocks.append(self._plan_table(a, compact=False))
        if a.baselines:
            s.blocks.append(self.baseline_table(a))
        return s

    def baseline_table(self, a: AllocationView) -> Table:
        unit = a.unit if a.unit in ("pairs", "tokens") else "pairs"
        columns = ["language", "plan"] + [b.name for b in a.baselines]
        rows = []
        for lang in a.languages:
            r = a.table.loc[lang]
            cells = [Cell(lang), Cell(f"{fmt_num(r[unit], 4)} → {fmt_num(r['predicted'], 3)}")]
            for b in a.baselines:
                amount = (b.pairs if unit == "pairs" else b.tokens).get(lang)
                cells.append(Cell(f"{fmt_num(amount, 4)} → {fmt_num(b.predicted.get(lang), 3)}"))
            rows.append(cells)
        best = a.best()
        objective = [Cell("objective"), Cell(fmt_num(a.plan_objective, 4))]
        for b in a.baselines:
            text = fmt_num(b.objective, 4)
            if a.plan_objective is not None and b.objective is not None:
                text += f" ({fmt_signed(b.objective - a.plan_objective, 3)})"
            objective.append(Cell(text + (" ← best baseline" if best and b.name == best.name else "")))
        rows.append(objective)
        caption = (f"Each cell: {unit} → predicted {self.metric_label}, at the same budget. The last row is the "
                   f"objective ({a.objective}) and its difference from the plan.")
        return Table(columns, rows, caption, frozenset(range(1, len(columns))), id="baselines")

    def marginal_section(self) -> Section | None:
        a = self.alloc
        if a is None or not self.fits:
            return None
        langs = [lang for lang in a.languages if lang in self.fits]
        if not langs:
            return None
        lines = {lang: self.marginal_line(lang, self.fits[lang]) for lang in langs}
        s = Section("marginal", "Why the plan is what it is: marginal gain")
        unit = a.unit
        if a.objective == "sum":
            s.blocks.append(Paragraph(
                f"The plan maximises the weighted sum of predicted scores. At the optimum every language not held "
                f"at a floor or cap gains the same from one more {unit[:-1]}: its curve crosses the dashed line "
                f"λ at its planned amount. A language whose curve lies above λ everywhere in reach is capped; one "
                f"below it stays at its floor (hollow markers)."))
        else:
            s.blocks.append(Paragraph(
                f"The objective is {a.objective}, so the plan does not equalise marginal gains; the curves show what "
                f"one more {unit[:-1]} would buy each language at its planned amount."))
        caption = (f"Gain in weighted utility per extra {unit[:-1]} (log-log) against each language's {unit}; points "
                   f"mark the plan.")
        xlabel = f"training {unit} (log scale)"
        ylabel = f"marginal gain per {unit[:-1]}"
        s.blocks += self._paged(
            langs, F.LINES_PER_CHART,
            lambda page: F.marginal_figure([lines[lang] for lang in page], a.lam if a.objective == "sum" else None,
                                                 xlabel, ylabel),
            "marginal_gain", "Marginal gain and λ", caption,
        )
        return s

    def final_section(self) -> Section | None:
        m = self.inputs.final_metrics
        if m is None or m.empty:
            return None
        s = Section("final", "Predicted vs achieved (final run)")
        fig = F.final_figure(m, self.inputs.final_objectives, self.colors, self.metric_label)
        s.blocks.append(self._save(fig, "predicted_vs_achieved", "Predicted vs achieved",
                                   "Left: each language in each trained mixture (star = plan), with the predicted "
                                   "interval as a horizontal bar. Right: the objective each mixture was predicted to "
                                   "reach (hollow) and what it reached (filled)."))
        inside = m["inside_interval"].map(_yes_no) if "inside_interval" in m else pd.Series("", index=m.index)
        known = inside[inside != ""]
        if len(known):
            s.blocks.append(Paragraph(f"{int((known == 'yes').sum())} of {len(known)} achieved scores with a predicted "
                                      f"interval fall inside it."))
        s.blocks.append(self.final_table(m, inside))
        obj = self.inputs.final_objectives
        if obj is not None and not obj.empty:
            rows = [[Cell(str(r["mixture"])), Cell(fmt_num(r["predicted_objective"], 4)),
                     Cell(fmt_num(r["achieved_objective"], 4)),
                     Cell(fmt_signed(r["achieved_objective"] - r["predicted_objective"], 3))] for _, r in obj.iterrows()]
            s.blocks.append(Table(["mixture", "predicted objective", "achieved objective", "achieved − predicted"],
                                  rows, "Objective per mixture.", frozenset({1, 2, 3}), id="final-objectives"))
        return s

    def final_table(self, m: pd.DataFrame, inside: pd.Series) -> Table:
        """One row per language, one column per trained mixture: achieved vs predicted [interval]."""
        mixtures = list(dict.fromkeys(["plan"] * int("plan" in set(m["mixture"])) + list(m["mixture"])))
        cells: dict[tuple[str, str], str] = {}
        for i, r in m.iterrows():
            mark = {"yes": " ✓", "no": " ✗"}.get(inside[i], "")
            cells[(r["language"], r["mixture"])] = (
                f"{fmt_num(r['achieved'], 4)} vs {fmt_interval(r['predicted'], r.get('predicted_low'), r.get('predicted_high'))}{mark}"
            )
        rows = [[Cell(lang)] + [Cell(cells.get((lang, mix), "")) for mix in mixtures]
                for lang in dict.fromkeys(m["language"])]
        caption = (f"Achieved {self.metric_label} vs predicted [{self.level:.0%} interval], per language and trained "
                   f"mixture; ✓ inside the interval, ✗ outside.")
        return Table(["language"] + mixtures, rows, caption, frozenset(range(1, len(mixtures) + 1)), id="final-metrics")

    def alignment_section(self) -> Section | None:
        al = self.inputs.alignment
        if al is None or al.empty:
            return None
        s = Section("alignment", "Representation alignment by layer")
        fig = F.alignment_figure(al, self.colors)
        s.blocks.append(self._save(fig, "alignment", "Cross-lingual alignment",
                                   "Per layer: how much more similar a sentence is to its translation than to a random "
                                   "sentence (cosine of pooled hidden states), and top-1 translation retrieval "
                                   "accuracy, by training stage (line style) and language (colour)."))
        s.blocks.append(self.alignment_table(al))
        return s

    def alignment_table(self, al: pd.DataFrame) -> Table:
        """One row per layer; per stage, the mean over languages of each measure."""
        data = al.assign(cos_gap=al["cos_true"] - al["cos_random"])
        measures = [(c, label) for c, label in _ALIGNMENT_MEASURES if c in data and data[c].notna().any()]
        means = data.groupby(["layer", "stage"], sort=False)[[c for c, _ in measures]].mean()
        stages = list(dict.fromkeys(al["stage"]))
        columns = ["layer"] + [f"{label} ({stage})" for _, label in measures for stage in stages]
        rows = []
        for layer in sorted(data["layer"].unique()):
            cells = [Cell(fmt_num(layer))]
            for col, _ in measures:
                for stage in stages:
                    value = means[col].get((layer, stage), np.nan)
                    cells.append(Cell(fmt_num(value, 3)))
            rows.append(cells)
        caption = f"Means over {al['language'].nunique()} languages, per layer and stage."
        return Table(columns, rows, caption, frozenset(range(len(columns))), id="alignment")

    def runs_section(self) -> Section | None:
        runs = self.inputs.runs
        if runs is None:
            return None
        s = Section("runs", "Run ledger")
        columns = ["language", "runs", "finished", "failed / other", "sizes (pairs)", "seeds", "train time",
                   f"{self.metric_label} at largest size"]
        rows = []
        for lang, sub in runs.groupby("language", sort=True):
            ok = sub[sub["ok"]]
            sizes = sorted(ok["n_pairs"].dropna().unique())
            metric_text = ""
            if self.metric in ok and len(sizes):
                top = pd.to_numeric(ok.loc[ok["n_pairs"] == sizes[-1], self.metric], errors="coerce").dropna()
                if len(top):
                    metric_text = fmt_num(top.mean(), 4) + (f" ± {fmt_num(top.std(ddof=1), 2)}" if len(top) > 1 else "")
            seconds = sub["train_seconds"].sum() if "train_seconds" in sub else np.nan
            rows.append([
                Cell(lang, self._warnings_for(lang) if lang in self.skipped else ()),
                Cell(str(len(sub))), Cell(str(len(ok))), Cell(str(len(sub) - len(ok))),
                Cell(", ".join(fmt_num(v) for v in sizes)),
                Cell(str(ok["seed"].nunique()) if "seed" in ok else ""),
                Cell(_duration(seconds)), Cell(metric_text),
            ])
        statuses = runs["status"].astype(str).value_counts().to_dict() if "status" in runs else {}
        caption = "Proxy runs from runs.csv." + (
            " Status counts: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) + "." if statuses else "")
        s.blocks.append(Table(columns, rows, caption, frozenset({1, 2, 3, 5, 6, 7}), id="runs"))
        return s

    def environment_section(self) -> Section:
        s = Section("environment", "Configuration and versions")
        cfg = self.inputs.config
        producer = (cfg or {}).get("planner_version")
        rows = [[Cell("planner, which produced these outputs"), Cell(str(producer) if producer else "unknown")]]
        for pkg in REPORTED_PACKAGES:
            try:
                rows.append([Cell(pkg), Cell(importlib.metadata.version(pkg))])
            except importlib.metadata.PackageNotFoundError:
                continue
        s.blocks.append(Table(["package", "version"], rows, "The planner version that wrote the outputs (from "
                              "resolved_config.yaml), then the packages that rendered this report.", id="versions"))
        if cfg:
            s.blocks.append(Preformatted(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True),
                                         "Resolved configuration (resolved_config.yaml)"))
        return s


# ------------------------------------------------------------------------------------- helpers


_ALIGNMENT_MEASURES = [
    ("cos_gap", "cos true − random"),
    ("retrieval_en_x", "retrieval en→x"),
    ("retrieval_x_en", "retrieval x→en"),
]

_ABSENT_EFFECT = {
    I.RUNS: "no run points or run ledger",
    I.FITS: "no fitted curves, bands, backtests or marginal gains",
    I.ALLOCATION: "no plan or baseline comparison",
    I.ALLOCATION_SUMMARY: "no objective values, λ or baselines",
    I.FINAL_METRICS: "no predicted-vs-achieved check (run `planner launch`)",
    I.FINAL_OBJECTIVES: "no per-mixture achieved objectives",
    I.ALIGNMENT: "no representation-alignment plot (run `planner align-report`)",
    I.RESOLVED_CONFIG: "configuration and producing version unknown",
}


def _seed_labels(runs: pd.DataFrame) -> pd.Series:
    """Seeds as the legend should show them: 0, 1 (not 0.0, 1.0 from a column with a gap); one seed without a column."""
    if "seed" not in runs:
        return pd.Series(0, index=runs.index)
    seeds = runs["seed"]
    finite = seeds.notna() & np.isfinite(seeds)
    if finite.all() and (seeds == seeds.round()).all():
        return seeds.astype(int)
    return seeds.map(lambda v: "?" if pd.isna(v) else f"{v:g}")


def _nan(v) -> float:
    return float(v) if v is not None else np.nan


def _backtest(lf) -> dict | None:
    bt = lf.backtest
    if bt is None:
        return None
    return {k: _float(getattr(bt, k)) for k in ("x_held", "actual", "predicted", "abs_error", "rel_error")}


def _backtest_text(lf) -> str:
    bt = _backtest(lf)
    if bt is None:
        return "none (too few sizes)"
    error = fmt_pct(bt["rel_error"]) if bt["rel_error"] is not None else f"±{fmt_num(bt['abs_error'], 2)}"
    return f"{fmt_num(bt['x_held'])}: {fmt_num(bt['actual'], 4)} vs {fmt_num(bt['predicted'], 4)} ({error} off)"


def _law_text(lf) -> str:
    return lf.family if lf.law == lf.family else f"{lf.family} ({lf.law})"


def _candidates_text(lf) -> str:
    """Every law tried and its backtest error, the chosen one first (auto picks the smallest error)."""
    items = sorted(lf.candidates.items(), key=lambda kv: (kv[0] != lf.law, kv[1] is None, kv[1] or 0.0))
    return "\n".join(f"{law}: {fmt_num(err, 2) if err is not None else 'n/a'}" for law, err in items)


def _params_text(lf, higher: bool) -> str:
    labels = dict(PARAM_LABELS.get(lf.family, {}))
    if lf.family == "power" and not higher:
        labels["offset"] = "E"
    intervals = lf.intervals or {}
    parts = []
    for name, value in lf.params.items():
        lo_hi = intervals.get(name)
        lo, hi = (lo_hi if lo_hi is not None and len(lo_hi) == 2 else (None, None))
        parts.append(f"{labels.get(name, name)} = {fmt_interval(value, lo, hi, 3)}")
    return "\n".join(parts)


def _bound_text(value) -> str:
    text = str(value).strip()
    return "" if text.lower() in ("", "nan", "none", "false", "0") else text


def _yes_no(value) -> str:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return "yes"
    if text in ("false", "0", "no"):
        return "no"
    return ""


def _duration(seconds) -> str:
    if seconds is None or not np.isfinite(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
