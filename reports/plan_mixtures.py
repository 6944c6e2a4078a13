"""The mixtures the allocation chart compares: the plan and each baseline, at the same spend and with the
same kind of interval.

- Same interval: the plan's predicted interval (allocation.csv) is a *predictive* one: the fit's draws at
  the planned amount, the law's extrapolation error beyond the runs, plus one run's noise (what one final
  run would score). Each baseline's interval is made the same way here (`predictive_interval`), so the
  bars differ only by where each mixture puts the data.
- Same spend: a sum or max-min plan spends the budget, as the baselines do. A target plan spends only
  what its targets need, while the baselines were computed at the full budget (often several times as
  much). There each baseline is re-derived at the plan's spend from its recorded allocation
  (`at_spend`) where the recipe allows it, and left out of the chart with a note where it does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reports import plan_figures as PF
from reports.views import Baseline, as_float

if TYPE_CHECKING:
    from reports.build import ReportBuilder

EQUAL_SHARES = ("uniform", "unimax")  # recipes that give every language the same budget share
NOISE_SEED = 1  # the noise draws of the baselines' predictive intervals (fixed: a report is reproducible)


def _nan(v) -> float:
    return float(v) if v is not None else np.nan


def run_noise(b: ReportBuilder, lang: str) -> float:
    """The sd of one run around its curve, as the allocator adds it to the plan's interval: the pooled noise
    level of a population fit, else the language's residual RMS (0 where unknown)."""
    sigma = as_float((b.inputs.fits.population or {}).get("sigma")) if b.inputs.fits is not None else None
    if sigma is None:
        sigma = as_float(b.fits[lang].rmse)
    return sigma or 0.0


def predictive_interval(b: ReportBuilder, lang: str, x: float) -> tuple[float, float]:
    """The central `b.level` interval of one run's score at x: each draw's prediction (with the law's
    extrapolation error beyond the runs) plus one run's noise, as the plan's own interval is made."""
    lf = b.fits.get(lang)
    if lf is None or not np.isfinite(x) or x < 0 or (x == 0 and not lf.curve.has_offset):
        return np.nan, np.nan
    draws = lf.predict_draws(np.array([x]))
    if draws is None:
        return np.nan, np.nan
    draws = np.asarray(draws, dtype=float).ravel()
    noise = np.random.default_rng([NOISE_SEED, sum(map(ord, lang))]).standard_normal(draws.shape) * run_noise(b, lang)
    values = (draws + noise)[np.isfinite(draws)]
    if not len(values):
        return np.nan, np.nan
    tail = (1.0 - b.level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _costs(b: ReportBuilder, languages: list[str]) -> np.ndarray:
    """Budget units per pair of each language (tokens per pair under a token budget, its price under money)."""
    if b.alloc.unit == "money":
        return np.array([b.alloc.cost_per_pair(lang, 1.0) for lang in languages])
    if b.alloc.amount_unit == "pairs":
        return np.ones(len(languages))
    return np.array([_tokens_per_pair(b, lang) for lang in languages])


def plan_spend(b: ReportBuilder) -> float:
    """What the plan spends, in the budget's unit."""
    column = "cost" if b.alloc.unit == "money" and "cost" in b.alloc.table else b.alloc.amount_unit
    return float(b.alloc.table[column].sum())


def compare_at_plan_spend(b: ReportBuilder) -> bool:
    """True for a target plan that leaves budget unspent: its baselines are re-derived at its spend."""
    a = b.alloc
    return a.objective == "target" and a.budget is not None and plan_spend(b) < a.budget * (1 - 1e-9)


def at_spend(base: Baseline, languages: list[str], unit: str, costs: np.ndarray, budget: float,
             spend: float) -> np.ndarray | None:
    """The baseline's amounts (budget units) at `spend` instead of `budget`, or None when its recorded
    allocation does not determine them.

    Every recipe fixes budget shares q and gives each language min(q·B, cap). Without a binding cap (the
    baseline spent its budget) the shares are its amounts over what it spent, at any budget. With caps,
    the equal-share recipes are still determined: a language below the largest amount was capped there,
    and at a smaller spend keeps min(its cap, the equal level) (uniform) or takes part in the water-filling
    (UniMax). Other capped recipes' shares are unknown: None."""
    amounts = np.array([_nan((base.pairs if unit == "pairs" else base.tokens).get(lang)) for lang in languages])
    if not np.isfinite(amounts).all() or amounts.sum() <= 0:
        return None
    spent = float(amounts.sum())
    slack = float(np.nansum(costs)) + 1e-9 * budget  # whole-pair rounding leaves up to a pair per language
    if budget - spent <= slack:
        return amounts * spend / spent
    if base.name not in EQUAL_SHARES:
        return None
    capped = amounts < amounts.max() * (1 - 1e-9)
    caps = np.where(capped, amounts, np.inf)
    if base.name == "uniform":
        return np.minimum(spend / len(amounts), caps)
    return _water_fill(caps, spend)


def _water_fill(caps: np.ndarray, spend: float) -> np.ndarray:
    """Equal amounts, each at most its cap, summing to `spend` (UniMax's redistribution)."""
    order = np.sort(caps)
    left, n = spend, len(caps)
    for i, cap in enumerate(order):
        level = left / (n - i)
        if cap >= level:
            return np.minimum(caps, level)
        left -= cap
    return caps.copy()


def mixtures(b: ReportBuilder, languages: list[str]) -> tuple[list[PF.MixtureSeries], dict[str, str]]:
    """The plan and every baseline drawable beside it, and why any baseline was left out."""
    a = b.alloc
    t = a.table.loc[languages]
    unit = a.amount_unit
    col = lambda c: t[c].to_numpy(float) if c in t else None  # noqa: E731
    out = [PF.MixtureSeries("plan", amount=col(unit), amount_low=col(f"{unit}_low"), amount_high=col(f"{unit}_high"),
                            predicted=col("predicted"), predicted_low=col("predicted_low"),
                            predicted_high=col("predicted_high"))]
    left_out: dict[str, str] = {}
    rescale = compare_at_plan_spend(b)
    all_langs = a.languages
    costs = _costs(b, all_langs)
    index = [all_langs.index(lang) for lang in languages]
    for base in a.baselines:
        if rescale:
            amounts = at_spend(base, all_langs, unit, costs, float(a.budget), plan_spend(b))
            if amounts is None:
                left_out[base.name] = "capped languages: its shares at the plan's spend are not known"
                continue
            amount = amounts[index]
            pairs = amount / costs[index]
            predicted = np.array([_nan(predict_at(b, lang, p)) for lang, p in zip(languages, pairs)])
        else:
            amount = np.array([_nan((base.pairs if unit == "pairs" else base.tokens).get(lang)) for lang in languages])
            pairs = np.array([_nan(base.pairs.get(lang)) for lang in languages])
            predicted = np.array([_nan(base.predicted.get(lang)) for lang in languages])
        tpp = np.array([_tokens_per_pair(b, lang) for lang in languages])
        x = pairs * tpp if b.fit_x == "tokens" else pairs
        band = [predictive_interval(b, lang, xi) for lang, xi in zip(languages, x)] if b.fits else None
        low, high = (np.array([v[0] for v in band]), np.array([v[1] for v in band])) if band else (None, None)
        out.append(PF.MixtureSeries(base.name, amount=amount, predicted=predicted, predicted_low=low, predicted_high=high))
    return out, left_out


def _tokens_per_pair(b: ReportBuilder, lang: str) -> float:
    row = b.alloc.table.loc[lang]
    lf = b.fits.get(lang)
    return (as_float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else None) or (
        as_float(lf.tokens_per_pair) if lf is not None else None) or np.nan


def predict_at(b: ReportBuilder, lang: str, pairs: float) -> float | None:
    """The prediction at `pairs` as the allocator scores it: the point fit, or the posterior mean when the
    plan was made under `risk: expected`."""
    lf, a = b.fits.get(lang), b.alloc
    if lf is None or lang not in a.table.index:
        return None
    row = a.table.loc[lang]
    tpp = as_float(row["tokens"] / row["pairs"]) if row["pairs"] > 0 else as_float(lf.tokens_per_pair)
    x = pairs * (tpp or np.nan) if b.fit_x == "tokens" else pairs
    if not np.isfinite(x) or (x <= 0 and not lf.curve.has_offset):
        return None
    draws = lf.predict_draws(np.array([x])) if a.risk == "expected" else None
    return as_float(np.mean(draws) if draws is not None else lf.predict(np.array([x]))[0])
