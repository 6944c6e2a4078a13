"""The allocation problem: a fit set, a budget and per-language limits, checked and turned into arrays.

Everything inside the solvers is in *pairs* (the unit the launcher samples). A budget in tokens prices a
pair of language l at c_l = tokens per pair; a budget in money at c_l = its price per pair; a budget in
pairs prices every pair at 1 (the units are defined once, in `core.units`). A curve fitted on
tokens is evaluated at x = tokens_per_pair · pairs (see `curves`), so the two choices (fit unit, budget
unit) are independent. Tokens per pair come from the limits table when given, else from the runs the fit
measured; they are required whenever tokens are involved.

Bounds: floor lo_l = min_pairs (rounded up to whole pairs), cap hi_l = max_epochs × max_pairs (rounded
down), or no cap when the available data is unknown. The cap may exceed the pairs held: what lies
beyond them is bought (`held`, `to_buy`); only the sweep is bounded by the data held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np

from fits.extrapolation import Extrapolation
from fits import FitSet
from fits.laws import Curve
from planner.allocation.curves import MAX_PAIRS, CurveBank, ExpectedCurves, UtilityCurves
from core.errors import UserError
from core.units import DEFAULT_CURRENCY, UNITS, amount, number, unit_name

Unit = Literal["pairs", "tokens", "money"]
Risk = Literal["mean", "expected"]


# The model of a problem whose curves were fitted on each language's scores inside mixture proxy runs.
IN_MIXTURE = "in-mixture curves"


@dataclass(frozen=True)
class LanguageLimits:
    """What a user may say about one language (every field optional)."""

    min_pairs: float | None = None  # floor
    max_pairs: float | None = None  # pairs held or buyable; the cap is max_epochs × this
    tokens_per_pair: float | None = None  # overrides the value measured in the runs
    weight: float | None = None  # importance in the weighted-sum objective (default 1)
    price_per_pair: float | None = None  # money per pair (required under unit money)
    held_pairs: float | None = None  # pairs already held (default max_pairs): beyond them the plan buys


@dataclass(frozen=True)
class AllocationProblem:
    languages: tuple[str, ...]
    metric: str
    higher_is_better: bool
    fitted_x: Unit
    unit: Unit
    budget: float
    max_epochs: float
    curves: CurveBank  # point fits, (L,)
    draws: CurveBank | None  # bootstrap fits, (R, L); None when the fit set has none
    cost: np.ndarray  # budget units per pair
    tokens_per_pair: np.ndarray  # NaN where unknown (only allowed when no tokens are involved)
    lo: np.ndarray  # pairs
    hi: np.ndarray  # pairs, inf = uncapped
    available: np.ndarray  # pairs, NaN = unknown
    weights: np.ndarray
    largest_run: np.ndarray  # largest fitted size in pairs (NaN unknown): how far a plan extrapolates
    noise: np.ndarray | None = None  # run-to-run sd of the metric per language (for predictive intervals)
    # per language, the law's error beyond its largest fitted size (fits.extrapolation; None: not estimated),
    # added to the draws of a predictive interval there
    extrapolation: tuple[Extrapolation | None, ...] | None = None
    measured_floor: np.ndarray | None = None  # bool per language: lo raised to its smallest run (plan only)
    notes: tuple[str, ...] = field(default=())
    price: np.ndarray | None = None  # money per pair, NaN where unknown (None: no prices at all)
    held: np.ndarray | None = None  # pairs held, NaN where unknown (None: unknown for every language)
    currency: str | None = None  # the money label (unit money, or prices given)
    model: str = "own curves"  # which curves: each language's own, or IN_MIXTURE (allocation.transfer)

    @property
    def sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0

    def utility_curves(self, risk: Risk) -> UtilityCurves:
        if risk == "mean":
            return self.curves
        if self.draws is None:
            raise UserError(
                "--risk expected averages over the bootstrap fits, but the fits file has none.",
                "Refit with `planner fit --bootstrap 1000` (or more), or use --risk mean.",
            )
        return ExpectedCurves.from_bank(self.draws)

    def predict(self, pairs: np.ndarray, risk: Risk = "mean") -> np.ndarray:
        """The metric each language is predicted to reach with `pairs` (mean over draws for `expected`)."""
        return self.sign * self.utility_curves(risk).utility(pairs)

    def tokens(self, pairs: np.ndarray) -> np.ndarray:
        return pairs * self.tokens_per_pair

    def describe_amount(self, value: float) -> str:
        return amount(value, self.unit, self.currency)

    def to_buy(self, pairs: np.ndarray) -> np.ndarray:
        """Pairs beyond those held (NaN where the pairs held are unknown)."""
        held = np.full(len(self.languages), np.nan) if self.held is None else self.held
        return np.where(np.isfinite(held), np.maximum(pairs - np.nan_to_num(held), 0.0), np.nan)

    def money(self, pairs: np.ndarray) -> np.ndarray:
        """What `pairs` cost at each language's price (NaN where no price)."""
        price = np.full(len(self.languages), np.nan) if self.price is None else self.price
        return pairs * price


def _positive(value, what: str, fix: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{what} must be a positive number; got {value!r}.", fix)
    return v


def _check_limit(lang: str, name: str, value, allow_zero: bool = True) -> float | None:
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = "≥ 0" if allow_zero else "> 0"
        raise UserError(f"The limits for language '{lang}' give {name} = {value!r}.", f"Set {name} to a finite number {need}.")
    return v


def _known_languages(fitset: FitSet, limits: Mapping[str, LanguageLimits]) -> list[str]:
    fitted = list(fitset.languages)
    if not fitted:
        skipped = "; ".join(f"{k}: {v}" for k, v in fitset.skipped.items())
        raise UserError(
            "The fits file has no fitted language" + (f" (skipped: {skipped})." if skipped else "."),
            "Run more sizes per language in the sweep and refit.",
        )
    for lang in limits:
        if lang in fitset.languages:
            continue
        skipped = fitset.skipped
        why = f"its fit was skipped: {skipped[lang]}" if lang in skipped else f"fitted languages are {fitted}"
        raise UserError(
            f"The limits table names language '{lang}', which has no fit in the fits file ({why}).",
            "Remove that row, or sweep and fit that language first.",
        )
    return fitted


def language_draws(fitset: FitSet, languages: list[str], notes: list[str]) -> list[Curve] | None:
    """Each language's bootstrap draws, cut to a common count; the point fit stands in where none exist."""
    boots = {lang: fitset.languages[lang].boot for lang in languages}
    if all(b is None for b in boots.values()):
        return None

    def n_draws(curve: Curve) -> int:
        return int(np.size(next(iter(curve.params.values()))))

    counts = {lang: n_draws(b) for lang, b in boots.items() if b is not None}
    r = min(counts.values())
    if len(set(counts.values())) > 1:
        notes.append(f"bootstrap draw counts differ across languages {counts}; the first {r} of each are used")
    out = []
    for lang, b in boots.items():
        if b is None:
            notes.append(f"{lang}: no bootstrap draws; its intervals take the point fit as certain")
            point = fitset.languages[lang].curve
            b = Curve(point.family, {k: np.full(r, float(v)) for k, v in point.params.items()}, point.higher_is_better)
        else:
            b = Curve(b.family, {k: np.asarray(v, dtype=float)[:r] for k, v in b.params.items()}, b.higher_is_better)
        out.append(b)
    return out


def build_problem(
    fitset: FitSet,
    budget: float,
    unit: Unit = "tokens",
    limits: Mapping[str, LanguageLimits] | None = None,
    max_epochs: float = 1.0,
    currency: str | None = None,
    price_key: str = "the limits table's price_per_pair column",
) -> AllocationProblem:
    """Validate the inputs against each other and assemble the arrays the solvers use.

    Every user mistake is a `UserError` naming the language and field: a language in the limits without a
    fit, a missing tokens-per-pair where tokens are involved, a missing price under a money budget
    (`price_key` says where prices come from), a floor above its cap, floors that cost more than the
    budget, a non-positive budget.
    """
    limits = dict(limits or {})
    if unit not in UNITS:
        raise UserError(f"Unknown budget unit {unit!r}.", f"Use --unit {', '.join(UNITS)}.")
    budget = _positive(budget, "The budget (--budget)", f"Pass the total {unit_name(unit, currency)} to allocate, e.g. --budget 8000.")
    max_epochs = _positive(max_epochs, "--max-epochs", "Pass how many times a language's data may be repeated, e.g. 1.")
    languages = _known_languages(fitset, limits)
    fitted_x = fitset.x
    notes: list[str] = []

    tpp, lo, hi, available, weights, largest, prices, held = [], [], [], [], [], [], [], []
    for lang in languages:
        fit = fitset.languages[lang]
        lim = limits.get(lang, LanguageLimits())
        t = _check_limit(lang, "tokens_per_pair", lim.tokens_per_pair, allow_zero=False)
        if t is None and fit.tokens_per_pair is not None and math.isfinite(fit.tokens_per_pair):
            t = float(fit.tokens_per_pair)
        if t is None and (unit == "tokens" or fitted_x == "tokens"):
            why = "the budget is in tokens" if unit == "tokens" else "the curves were fitted on tokens"
            raise UserError(
                f"Language '{lang}' has no tokens per pair, but {why}.",
                "Add a tokens_per_pair column to the limits table, or include an n_tokens column in runs.csv and refit.",
            )
        if t is not None and not (math.isfinite(t) and t > 0):
            raise UserError(f"Language '{lang}' has tokens per pair {t!r} in the fits file.", "Give a positive tokens_per_pair in the limits table.")
        floor = _check_limit(lang, "min_pairs", lim.min_pairs) or 0.0
        avail = _check_limit(lang, "max_pairs", lim.max_pairs)
        cap = math.inf if avail is None else math.floor(max_epochs * avail + 1e-9)
        if math.ceil(floor - 1e-9) > cap:
            raise UserError(
                f"Language '{lang}' has min_pairs {floor:g} above its cap of {cap:g} pairs "
                f"(max_pairs {avail:g} × max epochs {max_epochs:g}).",
                "Lower min_pairs, raise max_pairs, or allow more epochs with --max-epochs.",
            )
        w = _check_limit(lang, "weight", lim.weight)
        price = _check_limit(lang, "price_per_pair", lim.price_per_pair, allow_zero=False)
        if price is None and unit == "money":
            raise UserError(f"Language '{lang}' has no price per pair, but the budget is in money.",
                            f"Give its price per pair ({price_key.replace('<code>', lang)}) or plan in --unit pairs or tokens.")
        own = _check_limit(lang, "held_pairs", lim.held_pairs)
        prices.append(math.nan if price is None else price)
        held.append(avail if own is None and avail is not None else (math.nan if own is None else own))
        tpp.append(math.nan if t is None else t)
        lo.append(float(math.ceil(floor - 1e-9)))
        hi.append(float(cap))
        available.append(math.nan if avail is None else avail)
        weights.append(1.0 if w is None else w)
        largest.append(_largest_pairs(fit.sizes, fitted_x, t))

    tpp_a, price_a = np.array(tpp), np.array(prices)
    cost = {"tokens": tpp_a, "money": price_a}.get(unit, np.ones(len(languages)))
    x_per_pair = tpp_a if fitted_x == "tokens" else np.ones(len(languages))
    lo_a, hi_a = np.array(lo), np.array(hi)
    weights_a = np.array(weights)
    if not (weights_a > 0).any():
        raise UserError("Every language has weight 0, so there is nothing to optimise.", "Give at least one language a positive weight in the limits table.")

    floor_cost = float(np.sum(cost * lo_a))
    if floor_cost > budget * (1 + 1e-12):
        parts = ", ".join(f"{lang} {p:,.0f} pairs" for lang, p in zip(languages, lo_a) if p > 0)
        raise UserError(
            f"The floors cost {amount(floor_cost, unit, currency)} ({parts}) but the budget is "
            f"{amount(budget, unit, currency, meaning=False)}.",
            f"Raise --budget to at least {number(floor_cost, unit)} or lower min_pairs in the limits table.",
        )

    cheapest = int(np.argmin(cost))
    if budget < cost[cheapest] * (1 - 1e-12):
        raise UserError(
            f"The budget of {budget:g} {unit_name(unit, currency)} buys less than one pair of any language (the "
            f"cheapest, '{languages[cheapest]}', costs {cost[cheapest]:g} {unit_name(unit, currency)} a pair).",
            f"Raise --budget to at least {cost[cheapest]:g}.",
        )

    curves = CurveBank.from_curves([fitset.languages[lang].curve for lang in languages], x_per_pair)
    for lang, ok in zip(languages, curves.concave_increasing()):
        if not ok:
            law = fitset.languages[lang].curve.family
            notes.append(
                f"{lang}: the fitted {law} curve does not improve with more data, so the exact solver keeps it "
                "at its floor; check its runs, or let --solver optuna "
                "search the curve as fitted"
            )
    draw_curves = language_draws(fitset, languages, notes)
    draws = None if draw_curves is None else CurveBank.from_curves(draw_curves, x_per_pair)
    if draws is not None:
        usable = draws.concave_increasing()
        for lang, n_bad in zip(languages, (~usable).sum(axis=0)):
            if n_bad:
                notes.append(f"{lang}: {n_bad} of {usable.shape[0]} bootstrap fits do not improve with data and stay at the floor in re-solves")

    improvable = curves.concave_increasing() | (False if draws is None else draws.concave_increasing().any(axis=0))
    _check_budget_not_beyond_max_pairs(budget, unit_name(unit, currency), cost, np.where(improvable, hi_a, lo_a))

    return AllocationProblem(
        noise=run_noise(fitset, languages),
        extrapolation=tuple(fitset.languages[lang].extrapolation for lang in languages),
        languages=tuple(languages),
        metric=fitset.metric,
        higher_is_better=bool(fitset.higher_is_better),
        fitted_x=fitted_x,
        unit=unit,
        budget=budget,
        max_epochs=max_epochs,
        curves=curves,
        draws=draws,
        cost=cost,
        tokens_per_pair=tpp_a,
        lo=lo_a,
        hi=hi_a,
        available=np.array(available),
        weights=weights_a,
        largest_run=np.array(largest),
        notes=tuple(notes),
        price=price_a if np.isfinite(price_a).any() else None,
        held=np.array(held) if np.isfinite(held).any() else None,
        currency=(currency or DEFAULT_CURRENCY) if unit == "money" or np.isfinite(price_a).any() else None,
    )


def _check_budget_not_beyond_max_pairs(budget: float, unit: str, cost: np.ndarray, caps: np.ndarray) -> None:
    """A budget that the caps cannot absorb is fine (the rest is reported unused); one that would buy more
    than MAX_PAIRS of an uncapped language is beyond any plan (and the solvers' range)."""
    if float(np.sum(cost * np.minimum(caps, MAX_PAIRS))) <= budget < float(np.sum(cost * caps)):
        raise UserError(
            f"The budget of {budget:g} {unit} would buy more than {MAX_PAIRS:g} pairs of a language without a cap: "
            "far beyond any fitted size, and more than the planner plans for one language.",
            "Lower --budget, or give each language the pairs it has as max_pairs in a limits table (--limits).",
        )


def run_noise(fitset: FitSet, languages: list[str]) -> np.ndarray:
    """The sd of one run's metric around its curve: the pooled noise level of a population fit, else each
    language's residual RMS (NaN where unknown). A final run is one more run, so its score scatters by this
    much around the curve, on top of the curve's own uncertainty."""
    sigma = (fitset.population or {}).get("sigma")
    if sigma is not None and np.isfinite(sigma):
        return np.full(len(languages), float(sigma))
    return np.array([float(fitset.languages[lang].rmse or np.nan) for lang in languages])


def _largest_pairs(sizes, fitted_x: str, tpp: float | None) -> float:
    """The largest fitted size in pairs (sizes are in the fitted unit)."""
    if sizes is None or len(sizes) == 0:
        return math.nan
    top = float(np.max(np.asarray(sizes, dtype=float)))
    if fitted_x == "tokens":
        return top / tpp if tpp else math.nan
    return top


def least_measured(fitset: FitSet, languages) -> list[float]:
    """Per language, the smallest amount of data (fit units) its curve was measured at: its smallest run,
    or 0 when an offset curve also rests on the zero-shot run (the model with no translation data)."""
    least = []
    for lang in languages:
        fit = fitset.languages[lang]
        sizes = np.asarray(fit.sizes, float)
        if not fit.curve.has_offset:  # plain power and log curves are not fitted on x = 0
            sizes = sizes[sizes > 0]
        least.append(float(sizes.min()) if sizes.size else 0.0)
    return least


def floors_where_measured(problem: AllocationProblem, least: list[float]) -> np.ndarray | None:
    """Floors (pairs) that keep every language at or above `least` (fit units) and its own floor; None when
    the budget cannot pay them. A language capped below `least` cannot reach where it was measured: its
    cap stays its binding bound (a floor there would pin it and report the cap as a floor)."""
    # least is the sizes' unit: tokens ÷ tokens per pair can land a rounding error above a whole pair
    need = np.ceil(np.asarray(least, float) / problem.curves.x_per_pair - 1e-9)
    lo = np.where(need <= problem.hi, np.maximum(problem.lo, need), problem.lo)
    return lo if float(lo @ problem.cost) <= problem.budget else None
