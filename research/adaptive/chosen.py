"""What an adaptive sweep has chosen, read from its ledger: pure functions of the study's trials.

Decisions live on the study as trials of their own (`kind: adaptive decision`, no `point` attr, so no
worker ever pops one): a COMPLETE decision trial holds its record (`research.adaptive.design.Decision.record`:
the batch in order, each run's value and cost, the plan's value interval, the budget spent, or why it
stopped). The runs themselves are ordinary grid-point trials, queued and claimed exactly like the grid's.
So the chosen points are the start design (a function of the config) followed by every recorded batch in
order, and any machine, or a sweep resumed after SIGKILL, reads the same list.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from core.config import PlannerConfig
from research.adaptive.design import START_REASON, Decision, start_points
from planner.sweep.export import runs_table
from planner.sweep.identity import A_LANGUAGE, A_PAIRS, A_SEED, GridPoint, mixture_points
from research.adaptive.settings import AdaptiveSettings
from planner.sweep.state import PointStatus, by_point

A_KIND = "kind"
KIND_DECISION = "adaptive decision"
A_DECISION = "decision"  # the Decision record of a COMPLETE decision trial
A_DECIDED_AT = "decided_at"
CHOICES_CSV = "sweep_choices.csv"
CHOICE_COLUMNS = ["order", "round", "language", "n_pairs", "seed", "why", "value", "cost_tokens",
                  "value_per_million_tokens", "status", "result", "value_interval_before", "spent_before",
                  "budget", "decided_at"]


def is_decision(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get(A_KIND) == KIND_DECISION


def decisions(trials: Iterable[FrozenTrial]) -> list[tuple[FrozenTrial, Decision]]:
    """Recorded decisions, oldest first (a decision trial that never completed holds no decision)."""
    done = sorted((t for t in trials if is_decision(t) and t.state == TrialState.COMPLETE and A_DECISION in
                   t.user_attrs), key=lambda t: t.number)
    return [(t, Decision.from_record(t.user_attrs[A_DECISION])) for t in done]


def adaptive_points(cfg: PlannerConfig, a: AdaptiveSettings, trials: Sequence[FrozenTrial]) -> list[GridPoint]:
    """The start design, every recorded batch in order, then any other point with a result in the study
    (e.g. from a grid run on it before): every result informs the fit and counts as spent. Points merely
    queued by another strategy are not taken over."""
    out = list(start_points(cfg, a))
    for _, decision in decisions(trials):
        out += [c.point for c in decision.choices]
    for ts in by_point(trials).values():
        at = ts[0].user_attrs
        if at.get(A_LANGUAGE) in cfg.languages and any(t.state == TrialState.COMPLETE for t in ts):
            out.append(GridPoint(at[A_LANGUAGE], int(at[A_PAIRS]), int(at[A_SEED])))
    return list(dict.fromkeys(out))


class AdaptivePoints:
    """trials → the sweep's points now: the adaptive sweep's growing list, then the mixture proxy runs of
    `sweep.mixtures` (a fixed design: the decisions value per-language runs only). The `points` seam of
    `planner.sweep.run_sweep`; picklable, so worker processes can take it."""

    def __init__(self, cfg: PlannerConfig, a: AdaptiveSettings):
        self.cfg, self.a, self.mixtures = cfg, a, mixture_points(cfg)

    def __call__(self, trials: Sequence[FrozenTrial]) -> list[GridPoint]:
        return adaptive_points(self.cfg, self.a, trials) + self.mixtures


def results_frame(statuses: Sequence[PointStatus]) -> pd.DataFrame:
    """The finished runs as runs.csv would list them (what a decision is made on)."""
    columns, rows = runs_table(statuses)
    return pd.DataFrame(rows, columns=columns)


def choices_table(cfg: PlannerConfig, a: AdaptiveSettings, trials: Sequence[FrozenTrial], statuses: Sequence[PointStatus]) -> pd.DataFrame:
    """sweep_choices.csv: every chosen run in the order it was chosen, what it was worth when chosen, and
    what came of it. The start design is round 0 (chosen by the config, not by value)."""
    state = {s.point: s for s in statuses}
    metric = cfg.fit.metric
    rows: list[dict] = []

    def add(point: GridPoint, round_: int, why: str, value=math.nan, cost=math.nan, per_million=math.nan,
            decision: Decision | None = None, at=None) -> None:
        s = state.get(point)
        result = s.result.user_attrs.get("metrics", {}).get(metric) if s is not None and s.result else None
        rows.append({
            "order": len(rows) + 1, "round": round_, "language": point.language, "n_pairs": point.n_pairs,
            "seed": point.seed, "why": why, "value": value, "cost_tokens": cost,
            "value_per_million_tokens": per_million, "status": s.state.value if s is not None else "pending",
            "result": result, "value_interval_before": decision.value_interval if decision else None,
            "spent_before": decision.spent if decision else None, "budget": decision.budget if decision else None,
            "decided_at": at,
        })

    for p in start_points(cfg, a):
        add(p, 0, START_REASON)
    round_ = 0
    for trial, decision in decisions(trials):
        if not decision.choices:
            continue
        round_ += 1
        for c in decision.choices:
            add(c.point, round_, c.why, c.value, c.cost, c.value_per_million, decision,
                trial.user_attrs.get(A_DECIDED_AT))
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def adaptive_summary(trials: Sequence[FrozenTrial]) -> dict:
    """What `planner status` and the sweep's summary say about the adaptive part: rounds, runs chosen,
    training tokens committed of the budget, the latest value interval, and why it stopped (if it did)."""
    recorded = decisions(trials)
    out = {"rounds": sum(1 for _, d in recorded if d.choices), "chosen": sum(len(d.choices) for _, d in recorded),
           "committed": None, "budget": None, "value_interval": None, "expected_regret": None, "stop": None}
    if recorded:
        last = recorded[-1][1]
        out.update(committed=last.spent + sum(c.cost for c in last.choices), budget=last.budget,
                   value_interval=last.value_interval, expected_regret=last.expected_regret, stop=last.stop)
    return out
