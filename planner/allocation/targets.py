"""The target objective: what reaching a target means when the curves are uncertain.

`objective: target` asks for the cheapest allocation at which each language reaches its target score.
With the point fits (`risk: mean`) a language needs the pairs at which its fitted curve crosses the
target. With the fits' draws (`risk: expected`, the default) a curve crosses at a different place in
every draw, so the plan needs a rule, and `budget.target_confidence` q is it: each language gets the
fewest pairs at which at least a share q of the draws reach the target (the q-quantile of the draws'
needs, `ExpectedCurves.pairs_reaching`); `p_reach` in the plan is that share at the planned pairs.

Before q existed the plan inverted the mean of the draws. The median (q = 0.5, the default) measured
about the same on the 26 truth families (`benchmarks/target_calibration.py`, docs/results/synthetic-truths.md): the same share
of targets truly reached and the same typical cost on 25 of them (on one real-curve family a dearer
90th percentile); each has its own rare far overspends (targets planned at more than 10× their true
need: 0.76% of 7,330 planned targets for the median, 0.72% of 7,345 for the mean curve). The quantile
is the rule because it is one rule for every q, and the one `p_reach` reports: the mean curve can
cross a target where fewer than half of the draws do (a test shows one at 45%). Higher q reach more
targets at a measured cost, but less often than q says on most families: the draws are calibrated
inside the measured sizes (q = 0.9 reached 90% of such targets) and optimistic beyond them (77% beyond
4× the largest size; 57% on held-out truths).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from core.errors import UserError
from planner.allocation.curves import MAX_PAIRS, CurveBank, ExpectedCurves
from planner.allocation.problem import AllocationProblem

DEFAULT_CONFIDENCE = 0.5


def share_text(q: float) -> str:
    """A share as people write it, never rounded to a different one (0.995 → 99.5%, not 100%)."""
    return f"{100 * q:.10g}%"


def target_array(problem: AllocationProblem, targets: Mapping[str, float] | None) -> np.ndarray:
    """The target metric per language of the problem (NaN: no target)."""
    targets = dict(targets or {})
    unknown = sorted(set(targets) - set(problem.languages))
    if unknown:
        raise UserError(
            f"The targets name {unknown}, which have no fit (fitted: {list(problem.languages)}).",
            "Remove those rows from the targets table or fit those languages first.",
        )
    out = np.full(len(problem.languages), np.nan)
    for i, lang in enumerate(problem.languages):
        if lang in targets:
            t = float(targets[lang])
            if not math.isfinite(t):
                raise UserError(f"The target for '{lang}' is {targets[lang]!r}.", "Give a finite target score.")
            out[i] = t
    return out


def check_confidence(confidence, risk: str, has_draws: bool = True) -> float:
    """The confidence as a float in (0, 1); only the median of the point fit exists without draws."""
    try:
        q = float(confidence)
    except (TypeError, ValueError):
        q = math.nan
    if not 0.0 < q < 1.0:
        raise UserError(f"The target confidence must lie strictly between 0 and 1; got {confidence!r}.",
                        "Use e.g. 0.5 (the default: as likely above the target as below) or 0.9.")
    if risk == "mean" and q != DEFAULT_CONFIDENCE:
        if has_draws:
            why, fix = "the plan uses the point fits (risk mean)", "Use --risk expected"
        else:
            why, fix = "these fits have none (fitted with bootstrap 0)", "Refit with draws (planner fit --bootstrap 1000)"
        raise UserError(f"A target confidence of {q:g} needs the fits' draws, but {why}.",
                        f"{fix}, or leave the confidence at 0.5.")
    return q


def target_needs(curves, target_utility: np.ndarray, confidence: float) -> np.ndarray:
    """Pairs each language needs to reach its target: with the draws, the fewest at which a share
    `confidence` of them do; with the point fits, where the fitted curve does (the median is all they
    have). A language without a target gets the need of utility 0, which the solver ignores."""
    t = np.where(np.isfinite(target_utility), target_utility, 0.0)
    if isinstance(curves, ExpectedCurves):
        return curves.pairs_reaching(t, confidence)
    return curves.pairs_at_utility(t)


def draw_needs_within(draws: CurveBank, target_utility: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(R, L): the pairs each draw needs to reach its language's target within the bounds — the floor
    when the floor already does, +inf when the cap (or MAX_PAIRS) does not, NaN for a draw that does not
    improve with data (left out, as the plan's rule leaves it out); the floor for a language without a
    target. Its quantiles are the plan's allocation interval: the plan itself is its q-quantile."""
    has = np.isfinite(target_utility)
    need = ExpectedCurves.from_bank(draws).draw_needs(np.where(has, target_utility, 0.0))  # NaN: left out
    bounded = np.where(need <= np.minimum(hi, MAX_PAIRS), np.maximum(need, lo), np.inf)
    return np.where(has, np.where(np.isnan(need), np.nan, bounded), lo)


def reach_probability(curves, pairs: np.ndarray, target_utility: np.ndarray) -> np.ndarray:
    """Share of the draws reaching each target at `pairs` (NaN: no target, or point fits)."""
    if not isinstance(curves, ExpectedCurves):
        return np.full(len(pairs), np.nan)
    share = curves.reach_share(pairs, np.where(np.isfinite(target_utility), target_utility, 0.0))
    return np.where(np.isfinite(target_utility), share, np.nan)


def target_notes(problem: AllocationProblem, curves, target: np.ndarray, reachable: np.ndarray,
                 pairs: np.ndarray, confidence: float, need: np.ndarray) -> list[str]:
    """A note per language without a target, and per target the plan cannot reach within its cap
    (`need`: the pairs each target needs, `target_needs`)."""
    notes = []
    with_draws = isinstance(curves, ExpectedCurves)
    at_cap = reach_probability(curves, np.minimum(problem.hi, MAX_PAIRS), problem.sign * target)
    for i, (lang, t, ok, p, hi) in enumerate(zip(problem.languages, target, reachable, pairs, problem.hi)):
        if not np.isfinite(t):
            notes.append(f"{lang}: no target, kept at its floor")
            continue
        if ok:
            continue
        # The most any plan gives one language is MAX_PAIRS: "any amount" means up to there.
        where = f"its cap of {hi:,.0f} pairs" if np.isfinite(hi) else "any amount of data"
        if with_draws:
            there = "at the cap" if np.isfinite(hi) else f"within {MAX_PAIRS:.0e} pairs"
            how = (f" at {share_text(confidence)} confidence (only {share_text(round(at_cap[i], 3))} of the fits' draws "
                   f"reach it {there})" if np.isfinite(at_cap[i]) else " (none of its fits' draws improves with data)")
        elif not curves.concave_increasing()[i]:
            how = " (its fitted curve does not improve with data)"
        elif np.isfinite(need[i]):
            where = where if np.isfinite(hi) else f"the most the planner plans for one language ({MAX_PAIRS:.0e} pairs)"
            how = f" (the fitted curve needs {need[i]:,.3g} pairs)"
        else:
            how = " (above the fitted curve's ceiling)"
        notes.append(f"{lang}: target {t:g} is unreachable within {where}{how}; it keeps its floor of {p:,.0f} pairs")
    return notes


def target_why(problem: AllocationProblem, curves, pairs: np.ndarray, uniform: np.ndarray, target: np.ndarray,
               reachable: np.ndarray, confidence: float, need: np.ndarray) -> list[str]:
    """The plan's `why` under the target objective: what each language's amount is for, against an equal
    split of what the plan spends (`uniform`: the budget is only a ceiling here, so an equal split of it
    would say nothing)."""
    rule = (f"at which {share_text(confidence)} of the fits' draws reach" if isinstance(curves, ExpectedCurves)
            else "at which its fitted curve reaches")
    at_equal = problem.predict(uniform, "expected" if isinstance(curves, ExpectedCurves) else "mean")
    lines = []
    for i, lang in enumerate(problem.languages):
        spent, equal = pairs[i] * problem.cost[i], uniform[i] * problem.cost[i]
        ratio = spent / equal if equal > 0 else (1.0 if spent == 0 else np.inf)
        head = "the same as an equal share" if abs(ratio - 1) < 0.05 else f"{ratio:.2f}× an equal share"
        if not np.isfinite(target[i]):
            lines.append(f"{head}: no target, kept at its floor")
        elif not reachable[i]:
            lines.append(f"{head}: its target {target[i]:g} is out of reach (see the notes), kept at its floor")
        elif problem.lo[i] > 0 and need[i] < problem.lo[i]:
            lines.append(f"{head}: its floor of {problem.lo[i]:,.0f} pairs already reaches its target of "
                         f"{target[i]:g} {problem.metric}")
        else:
            lines.append(f"{head}: the fewest pairs {rule} its target of {target[i]:g} {problem.metric} "
                         f"(an equal split of the plan's spend, {uniform[i]:,.0f} pairs, is predicted to give "
                         f"{at_equal[i]:.3g})")
    return lines
