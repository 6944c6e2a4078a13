"""Views of the producers' files as the report uses them: the allocation (allocation.csv + its summary),
the final runs (metrics, objectives, paired comparison, calibration), and labels for metrics and languages.

Together with the section modules, this is where the report knows the producers' data shapes; older
files are read into the same views (a final/metrics.csv without a seed column is one seed, 0; a missing
comparison or calibration table is derived from the metrics with the launcher's own functions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from core.plan_files import PLAN, REDUCED, TRANSFER
from core.units import amount, unit_name
from fits.final_stats import OBJECTIVE_SCOPE, calibration_table, comparison_table

# The mixtures `planner launch` compares against the baselines (every other mixture is a baseline).
PLANS = (PLAN, REDUCED, TRANSFER)
METRIC_LABELS = {"chrf": "chrF", "bleu": "BLEU", "loss": "test loss", "comet": "COMET"}


def as_float(value) -> float | None:
    """A finite float, or None for anything else (missing, NaN, text)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


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


# ---------------------------------------------------------------------------------------- allocation


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
    currency: str | None = None  # the money label under unit money
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
    risk: str = "mean"
    budget_saved: float | None = None  # share of the budget the plan saves at uniform's predicted objective
    reduced_budget: float | None = None  # the budget at which it does, in `unit`
    reduced_pairs: dict[str, float] = field(default_factory=dict)  # the plan at that budget
    verdicts: dict[str, dict] = field(default_factory=dict)  # baseline -> planner.allocation.verdict fields

    @property
    def languages(self) -> list[str]:
        return list(self.table.index)

    @property
    def unit_label(self) -> str:
        """What an amount of the budget is called: 'pairs', 'tokens' or the currency."""
        return unit_name(self.unit, self.currency)

    def budget_text(self, value: float | None = None) -> str:
        """'16,000 tokens (English + target, model tokenizer)', '600.00 USD': the budget with its unit defined."""
        return amount(self.budget if value is None else value, self.unit, self.currency)

    def cost_per_pair(self, language: str, tokens_per_pair: float) -> float:
        """What one pair of `language` costs in the budget's unit: 1, its tokens, or its price (cost / pairs)."""
        if self.unit == "tokens":
            return tokens_per_pair
        if self.unit == "money":
            row = self.table.loc[language]
            cost, pairs = as_float(row.get("cost")), as_float(row.get("pairs"))
            if cost is not None and pairs:
                return cost / pairs
        return 1.0

    @property
    def amount_unit(self) -> str:
        """The column the budget is counted in (pairs unless the budget is in tokens)."""
        return self.unit if self.unit in ("pairs", "tokens") else "pairs"

    @property
    def reduced_fraction(self) -> float | None:
        if self.budget_saved is not None:
            return 1.0 - self.budget_saved
        if self.reduced_budget is not None and self.budget:
            return self.reduced_budget / self.budget
        return None

    def best(self) -> Baseline | None:
        scored = [b for b in self.baselines if b.objective is not None]
        named = [b for b in scored if b.name == self.best_baseline]
        if named or not scored:
            return named[0] if named else None
        sign = 1.0 if self.objective_higher else -1.0
        return max(scored, key=lambda b: sign * b.objective)

    def has_why(self) -> bool:
        return "why" in self.table and self.table["why"].astype(str).str.strip().ne("").any()


def _languages_of(entry: dict, key: str) -> dict[str, float | None]:
    return {str(k): as_float(v.get(key)) for k, v in (entry.get("languages") or {}).items()}


def allocation_view(table: pd.DataFrame, summary: dict | None, higher_is_better: bool = True) -> AllocationView:
    """`higher_is_better` is the metric's direction, used when there is no summary to say the objective's."""
    summary = summary or {}
    baselines = [
        Baseline(name=str(name), objective=as_float(entry.get("objective_value")), pairs=_languages_of(entry, "pairs"),
                 tokens=_languages_of(entry, "tokens"), predicted=_languages_of(entry, "predicted"))
        for name, entry in (summary.get("baselines") or {}).items()
    ]
    reduced = {str(k): v for k, v in (summary.get("reduced_pairs") or {}).items() if as_float(v) is not None}
    return AllocationView(
        table=table.set_index("language", drop=False),
        budget=as_float(summary.get("budget")),
        unit=str(summary.get("unit") or "pairs"),
        currency=summary.get("currency"),
        objective=str(summary.get("objective") or "sum"),
        objective_label=str(summary.get("objective_label") or ""),
        objective_higher=bool(summary.get("objective_higher_is_better", higher_is_better)),
        lam=as_float(summary.get("lambda")),
        plan_objective=as_float(summary.get("objective_value")),
        baselines=baselines,
        unavailable={str(k): str(v) for k, v in (summary.get("unavailable_baselines") or {}).items()},
        gain_over_best=as_float(summary.get("gain_over_best_baseline")),
        best_baseline=summary.get("best_baseline"),
        unused=as_float(summary.get("unused_budget")),
        interval_level=as_float(summary.get("interval_level")),
        warnings=[str(w) for w in summary.get("warnings") or []],
        risk=str(summary.get("risk") or "mean"),
        budget_saved=as_float(summary.get("budget_saved")),
        reduced_budget=as_float(summary.get("reduced_budget")),
        reduced_pairs={k: float(v) for k, v in reduced.items()},
        verdicts={str(k): dict(v) for k, v in (summary.get("verdicts") or {}).items() if isinstance(v, dict)},
    )


# ---------------------------------------------------------------------------------------- final runs


@dataclass(frozen=True)
class FinalView:
    """final/*.csv: every mixture trained once per seed, and what the seeds say."""

    metrics: pd.DataFrame  # with an integer `seed` column
    objectives: pd.DataFrame | None  # with `seed`
    comparison: pd.DataFrame | None  # fits.final_stats.comparison_table
    calibration: pd.DataFrame | None  # fits.final_stats.calibration_table
    level: float  # of the launch's prediction intervals and paired comparisons
    derived: tuple[str, ...] = ()  # tables computed here because their files were absent

    @property
    def mixtures(self) -> list[str]:
        """The plan first, other plans (plan-reduced, plan-transfer) next, then baselines in file order."""
        seen = list(dict.fromkeys(self.metrics["mixture"].astype(str)))
        plans = [m for m in PLANS if m in seen]
        return plans + [m for m in seen if m not in plans]

    @property
    def baselines(self) -> list[str]:
        return [m for m in self.mixtures if m not in PLANS]

    @property
    def seeds(self) -> list:
        return sorted(self.metrics["seed"].unique())

    def objective_rows(self) -> pd.DataFrame:
        """The comparison's objective rows, the plan's first (empty without a comparison)."""
        if self.comparison is None or self.comparison.empty:
            return pd.DataFrame(columns=["mixture", "baseline", "scope", "verdict"])
        rows = self.comparison[self.comparison["scope"].astype(str) == OBJECTIVE_SCOPE]
        order = {m: i for i, m in enumerate(self.mixtures)}
        return rows.sort_values("mixture", key=lambda s: s.map(lambda m: order.get(m, len(order))), kind="stable")

    def achieved_objective(self, mixture: str) -> pd.Series:
        """Achieved objective per seed (empty when the mixture or the objectives are absent)."""
        if self.objectives is None:
            return pd.Series(dtype=float)
        rows = self.objectives[(self.objectives["mixture"] == mixture) & self.objectives["achieved_objective"].notna()]
        return rows.set_index("seed")["achieved_objective"].astype(float)


def with_seed(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Old tables have no seed column: they are one seed, 0."""
    if frame is None:
        return None
    if "seed" not in frame:
        return frame.assign(seed=0)
    seeds = frame["seed"].fillna(0)
    whole = np.isfinite(seeds).all() and (seeds == seeds.round()).all()
    return frame.assign(seed=seeds.astype(int) if whole else seeds)


def final_view(metrics: pd.DataFrame | None, objectives: pd.DataFrame | None, comparison: pd.DataFrame | None,
               calibration: pd.DataFrame | None, higher_is_better: bool, level: float) -> FinalView | None:
    if metrics is None or metrics.empty:
        return None
    metrics, objectives = with_seed(metrics), with_seed(objectives)
    derived = []
    if comparison is None:
        comparison = _derive_comparison(metrics, objectives, higher_is_better, level)
        derived.append("comparison")
    has_intervals = {"predicted_low", "predicted_high"} <= set(metrics)
    if calibration is None and has_intervals:
        calibration = calibration_table(metrics)
        derived.append("calibration")
    if not has_intervals:  # the contract's optional interval columns, blank when a launch had no fits
        metrics = metrics.assign(**{c: metrics.get(c, np.nan) for c in ("predicted_low", "predicted_high")})
    return FinalView(metrics, objectives, comparison, calibration, level, tuple(derived))


def _derive_comparison(metrics, objectives, higher: bool, level: float) -> pd.DataFrame | None:
    """What `planner launch` writes as comparison.csv, for launches that predate it."""
    names = list(dict.fromkeys(metrics["mixture"].astype(str)))
    plans = [m for m in PLANS if m in names]
    baselines = [m for m in names if m not in plans]
    if not plans or not baselines:
        return None
    objs = objectives if objectives is not None else pd.DataFrame(columns=["mixture", "seed", "achieved_objective"])
    table = comparison_table(objs, metrics, plans, baselines, higher, level)
    return table[table["n_seeds"] > 0].reset_index(drop=True)
