"""The plan as data: one `LanguagePlan` per language, the baselines beside it, and the `AllocationResult`
that `allocate` returns and `write_allocation` writes (allocation.csv: the contract columns, then
`EXTRA_COLUMNS`; its summary JSON: everything else)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import __version__
from core.plan_files import CONTRACT_COLUMNS
from core.units import UNIT_MEANINGS

# cost: in the budget's unit; to_buy: pairs beyond those held (empty: unknown); to_buy_cost: their price (money)
EXTRA_COLUMNS = ["pairs_exact", "pairs_low", "pairs_high", "marginal_gain", "at_bound", "weight", "target", "p_reach", "why",
                 "cost", "to_buy", "to_buy_cost"]


@dataclass(frozen=True)
class LanguagePlan:
    language: str
    pairs: float  # whole pairs: what the launcher trains
    tokens: float  # NaN when tokens per pair are unknown
    share: float  # of the spent budget, in the budget's unit
    predicted: float
    predicted_low: float
    predicted_high: float
    pairs_exact: float  # the real-valued optimum before rounding
    pairs_low: float  # allocation interval from the bootstrap re-solves
    pairs_high: float
    marginal_gain: float  # (weighted) metric gain per extra budget unit at the optimum, better-direction
    at_bound: str | None  # "floor", "cap" or None
    weight: float
    target: float | None
    why: str = ""  # why it gets more or less than an equal share (planner.allocation.explain)
    p_reach: float = math.nan  # target objective: share of the fits' draws reaching the target (targets.py)
    cost: float = math.nan  # pairs × the language's cost per pair, in the budget's unit
    to_buy: float = math.nan  # pairs beyond those held (NaN: the pairs held are unknown)
    to_buy_cost: float = math.nan  # to_buy × price per pair, in money (NaN: no price)
    price_per_pair: float = math.nan  # money per pair (NaN: no price); not a column of allocation.csv


@dataclass(frozen=True)
class BaselineResult:
    name: str
    pairs: dict[str, float]
    tokens: dict[str, float]
    predicted: dict[str, float]
    objective_value: float
    unused_budget: float
    # the central predictive interval of one run's metric at the allocation's level, NaN without draws
    predicted_low: dict[str, float] = field(default_factory=dict)
    predicted_high: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AllocationResult:
    metric: str
    higher_is_better: bool
    objective: str  # "sum" | "maxmin" | "target" | "custom"
    objective_label: str
    objective_higher_is_better: bool
    risk: str
    solver: str
    unit: str
    budget: float
    spent: float
    unused_budget: float
    lam: float | None  # sum: marginal gain per budget unit shared by every interior language
    level: float | None  # maxmin: the common predicted metric of every language not at a bound
    objective_value: float
    languages: tuple[LanguagePlan, ...]
    baselines: dict[str, BaselineResult]
    unavailable_baselines: dict[str, str]
    best_baseline: str | None
    gain_over_best_baseline: float | None  # > 0: the plan beats every baseline on its own objective
    interval_level: float
    bootstrap_draws: int
    seed: int
    warnings: tuple[str, ...] = field(default=())
    # The share of the budget at which the plan's objective reaches uniform's at the full budget (sum
    # objective; planner.allocation.saved), and the plan at that reduced budget.
    budget_saved: float | None = None
    reduced_budget: float | None = None
    reduced_pairs: dict[str, float] | None = None
    # That plan's per-language prediction and predictive interval, on the plan's model (assemble.reduced_predictions).
    reduced_predicted: dict[str, float] | None = None
    reduced_predicted_low: dict[str, float] | None = None
    reduced_predicted_high: dict[str, float] | None = None
    # The transfer-aware plan (planner.allocation.transfer) when the fits carry transfer estimates.
    transfer: dict | None = None
    curves: str = "own curves"  # the curves planned and predicted on: "own curves" or "in-mixture curves"
    target_confidence: float | None = None  # target objective: the share of draws that must reach a target
    # The plan against uniform and against the best baseline (planner.allocation.verdict), as dicts.
    verdicts: dict[str, dict] = field(default_factory=dict)
    currency: str | None = None  # the money label, under unit money or when prices are given
    to_buy: float | None = None  # pairs beyond those held, all languages (None: the pairs held are unknown)
    to_buy_cost: float | None = None  # their price in money (None: no prices)

    @property
    def at_bound(self) -> dict[str, str]:
        return {p.language: p.at_bound for p in self.languages if p.at_bound}

    def table(self) -> pd.DataFrame:
        rows = [{c: getattr(p, c) for c in CONTRACT_COLUMNS + EXTRA_COLUMNS} for p in self.languages]
        return pd.DataFrame(rows, columns=CONTRACT_COLUMNS + EXTRA_COLUMNS)

    def summary(self) -> dict:
        """Everything but the per-language table, JSON-ready (NaN → null)."""

        def clean(v):
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, (float, np.floating)):
                return None if not math.isfinite(v) else float(v)
            if isinstance(v, np.integer):
                return int(v)
            return v

        return clean(
            {
                "planner_version": __version__,
                "metric": self.metric,
                "higher_is_better": self.higher_is_better,
                "objective": self.objective,
                "objective_label": self.objective_label,
                "objective_higher_is_better": self.objective_higher_is_better,
                "risk": self.risk,
                "solver": self.solver,
                "unit": self.unit,
                "unit_meaning": UNIT_MEANINGS.get(self.unit, ""),
                "currency": self.currency,
                "budget": self.budget,
                "spent": self.spent,
                "unused_budget": self.unused_budget,
                "lambda": self.lam,
                "level": self.level,
                "objective_value": self.objective_value,
                "best_baseline": self.best_baseline,
                "gain_over_best_baseline": self.gain_over_best_baseline,
                "at_bound": self.at_bound,
                "curves": self.curves,
                "interval_level": self.interval_level,
                "bootstrap_draws": self.bootstrap_draws,
                "seed": self.seed,
                "baselines": {
                    name: {
                        "objective_value": b.objective_value,
                        "unused_budget": b.unused_budget,
                        "languages": {
                            lang: {"pairs": b.pairs[lang], "tokens": b.tokens[lang], "predicted": b.predicted[lang],
                                   "interval": [b.predicted_low.get(lang), b.predicted_high.get(lang)]}
                            for lang in b.pairs
                        },
                    }
                    for name, b in self.baselines.items()
                },
                "unavailable_baselines": self.unavailable_baselines,
                "budget_saved": self.budget_saved,
                "reduced_budget": self.reduced_budget,
                "reduced_pairs": self.reduced_pairs,
                "reduced_predicted": self.reduced_predicted,
                "reduced_predicted_low": self.reduced_predicted_low,
                "reduced_predicted_high": self.reduced_predicted_high,
                "transfer": self.transfer,
                "target_confidence": self.target_confidence,
                "verdicts": self.verdicts,
                "to_buy": self.to_buy,
                "to_buy_cost": self.to_buy_cost,
                "warnings": list(self.warnings),
            }
        )
