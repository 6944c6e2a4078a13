"""The notes a plan carries: what the user should know about it that its numbers do not say."""

from __future__ import annotations

import numpy as np

from fits import FitSet
from planner.allocation.problem import IN_MIXTURE, AllocationProblem
from planner.allocation.solver import Solution
from planner.allocation.targets import target_notes
from core.units import number

# A plan this many times beyond a language's largest run is flagged as an extrapolation.
EXTRAPOLATION_FACTOR = 2.0
# A mixture run measured the transfer-aware plan's mixture for a language when it gave it own data and
# others' data each within this fraction of the plan's (plus `PROBE_SLACK_PAIRS`, which absorbs the tokens of a
# few pairs differing from the pool's mean): the uniform mixtures step by about 3× in size, so a quarter either
# way is well inside one step.
PROBE_TOLERANCE, PROBE_SLACK_PAIRS = 0.25, 10


def plan_notes(problem: AllocationProblem, objective: str, pairs: np.ndarray, solution: Solution | None, target: np.ndarray,
               unused: float, curves, confidence: float, need: np.ndarray | None) -> list[str]:
    """The plan's notes; `curves`, `confidence` and `need` (`targets.target_needs`) serve the target objective."""
    notes = list(problem.notes)
    if objective == "target":
        if unused > 0:
            notes.append(f"the targets need only {problem.describe_amount(problem.budget - unused)}; "
                         f"{number(unused, problem.unit)} are left unused")
        notes += target_notes(problem, curves, target, solution.reachable, pairs, confidence, need)
    elif unused > problem.cost.max():  # more than rounding can leave: every improvable language is capped
        notes.append(
            f"the budget exceeds what the caps allow: {number(unused, problem.unit)} of {problem.describe_amount(problem.budget)} are "
            "unused (every improvable language is at its cap); raise max_pairs or --max-epochs to use them"
        )
    if objective == "maxmin" and np.any(problem.weights != 1):
        notes.append("weights are ignored by the maxmin objective")
    if problem.measured_floor is not None:
        for lang, p, lo, raised in zip(problem.languages, pairs, problem.lo, problem.measured_floor):
            if raised and p <= lo + 0.5:
                notes.append(f"{lang}: kept at {lo:,.0f} pairs, its smallest run: its curve was not measured below "
                             "that (budget.smallest_run_floor: never lets the plan go lower)")
    for lang, p, top in zip(problem.languages, pairs, problem.largest_run):
        if np.isfinite(top) and p > EXTRAPOLATION_FACTOR * top:
            notes.append(f"{lang}: {p:,.0f} pairs is {p / top:.1f}× its largest run ({top:,.0f}); the prediction extrapolates")
    return notes


def starved_notes(fitset: FitSet, problem: AllocationProblem, pairs: np.ndarray, transfer) -> list[str]:
    """A language held at its floor because its own runs got worse with more data. On the pretrained
    default that was the plan's largest loss: Hindi's runs fell below its zero-shot score, the plan gave
    it nothing, and inside the uniform mixture it scored about 3 chrF more (docs/results/truth-tests-chrf-default.md, three final seeds)."""
    notes = []
    for lang, p, lo in zip(problem.languages, pairs, problem.lo):
        if p <= lo + 0.5 and fitset.languages[lang].worsens_with_data:
            check = ("compare with the transfer-aware plan" if transfer is not None
                     else "mixture proxy runs (sweep.mixtures, sweep.leave_one_out) measure what it gains from the others' data")
            notes.append(f"{lang}: kept at its floor ({lo:,.0f} pairs) because its own runs get worse with more "
                         f"data; it may still gain inside the mixture, which its own curve cannot see: {check}")
    return notes


def reach_notes(fitset: FitSet, problem: AllocationProblem, pairs: np.ndarray) -> list[str]:
    """A plan on in-mixture curves that takes a language far beyond the most own data it had in a mixture
    proxy run, where its own curve and its in-mixture curve disagree by more than two runs' noise: the plan
    follows the second, and neither was measured there. Measured on el/ja/tr/vi (docs/results/truth-tests-chrf-default.md,
    "Where a plan has room"): a plan gave Japanese 738 pairs, 4.9× its largest mixture run's 150; its own
    curve predicted 18.6 chrF, its in-mixture curve 11.7, and three final seeds achieved 16.0 — between
    them, and the predicted gains over uniform of a plan on either curve (+4.8 and +0.04) both missed."""
    if problem.model != IN_MIXTURE:
        return []
    notes = []
    noise = np.full(len(problem.languages), np.nan) if problem.noise is None else np.asarray(problem.noise, float)
    for i, (lang, p) in enumerate(zip(problem.languages, pairs)):
        inside = fitset.transfer[lang].mixture_fit
        k = float(problem.curves.x_per_pair[i])
        top = max(float(np.max(inside.sizes)) / k, 1.0)  # pairs
        if not p > EXTRAPOLATION_FACTOR * top:
            continue
        own, mixed = float(fitset.languages[lang].predict(p * k)), float(inside.predict(p * k))
        if abs(own - mixed) <= 2 * np.nan_to_num(noise[i]):
            continue
        notes.append(
            f"{lang}: {p:,.0f} pairs is {p / top:.1f}× the most own data it had in a mixture proxy run "
            f"({top:,.0f}); there its in-mixture curve, which the plan follows, predicts {mixed:.2f} {problem.metric} and "
            f"its own curve {own:.2f}, and neither was measured there. Mixture runs with more of its own data (a "
            "larger size in sweep.mixtures) measure it"
        )
    return notes


def probe_notes(fitset: FitSet, problem: AllocationProblem, planned: dict[str, float] | None) -> list[str]:
    """The mixture of a plan made with transfer (`planned`: the plan on in-mixture curves, or the
    transfer-aware plan) where no mixture proxy run measured it: languages whose planned own data and others'
    data no mixture row matches. Their predictions come from mixtures elsewhere — the uniform mixtures grow
    every language's data together, and a plan that gives one language most of the budget leaves the others
    little. Measured on el/ja/tr/vi (docs/results/truth-tests-chrf-default.md): the uniform mixtures had Japanese at
    400 own pairs beside 1,200 of the others', the plan put it at 549 beside 250, and six final seeds
    scored it 3.0 chrF below its prediction on average. `sweep.probes` trains that mixture once at proxy
    scale."""
    if planned is None or any(not t.measured for t in fitset.transfer.values()):
        return []  # (fits written before mixture rows were recorded in them cannot tell)
    k = np.asarray(problem.curves.x_per_pair, float)
    own = np.array([planned[lang] for lang in problem.languages], float) * k
    others = own.sum() - own
    away = []
    for i, lang in enumerate(problem.languages):
        t = fitset.transfer.get(lang)
        slack = PROBE_SLACK_PAIRS * k[i]
        near = [abs(a - own[i]) <= PROBE_TOLERANCE * max(a, own[i]) + slack
                and abs(b - others[i]) <= PROBE_TOLERANCE * max(b, others[i]) + slack
                for a, b in (t.measured if t is not None else ())]
        if not any(near):
            away.append(lang)
    if not away:
        return []
    probe = ", ".join(f"{lang}: {planned[lang]:.0f}" for lang in problem.languages)  # YAML as written
    them = "it" if len(away) == 1 else "them"
    which = "the plan's" if problem.model == IN_MIXTURE else "the transfer-aware plan's"
    return [f"{which} mixture was not measured for {', '.join(away)}: no mixture run of the runs "
            f"table gave {them} about the plan's own and other languages' data, so the predictions there come from "
            f"mixtures elsewhere. `sweep.probes: [{{{probe}}}]` trains that mixture once at proxy scale, and the "
            "next fit rests on it"]
